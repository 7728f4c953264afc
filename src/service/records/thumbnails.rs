//! Thumbnails of record media: a record's `media` attribute names a file in
//! its owner's FTP home; an admin job reads it (never outside the home),
//! makes a thumbnail and stores it with the record, outside the owner's
//! quota. Each record gets its own result; a bad file never stops the job.

use super::Records;
use crate::domain::audit::AuditAction;
use crate::domain::media::{MediaKey, StoredImage};
use crate::domain::permissions::Action;
use crate::domain::projects::{Resource, ResourceId};
use crate::domain::roles::{self, Capability, SystemRole};
use crate::domain::user::User;
use crate::service::jobs::{JobHandle, JobItem};
use crate::service::projects::load_resource;
use crate::service::{Principal, ServiceError, ServiceResult};
use serde_json::json;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which records a thumbnail job covers.
pub enum ThumbnailSelection {
    Ids(Vec<ResourceId>),
    /// Every record with a `media` attribute and no thumbnail yet.
    Missing,
}

/// Why one record got no thumbnail.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl Records {
    /// Checks the caller (admins only) and lists the records of the job.
    pub fn plan_thumbnails(
        &self,
        principal: &Principal,
        selection: ThumbnailSelection,
    ) -> ServiceResult<(JobHandle, Vec<ResourceId>)> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::ManageMedia)?;
        if let Some(running) = self.jobs.running("thumbnails") {
            let message = format!(
                "thumbnail job {running} is still running; follow it at /api/v1/jobs/{running}"
            );
            return Err(ServiceError::conflict("job_running", message));
        }
        let ids = match selection {
            ThumbnailSelection::Ids(ids) => ids,
            ThumbnailSelection::Missing => self
                .snapshot()
                .resources()?
                .into_iter()
                .filter(|r| r.thumbnail.is_none() && r.media().is_some())
                .map(|r| r.id)
                .collect(),
        };
        let job = self
            .jobs
            .start("thumbnails", ids.len(), actor.id, self.now());
        Ok((job, ids))
    }

    /// Runs a planned job on `workers` threads; returns when it is done.
    pub fn run_thumbnails(
        &self,
        actor: &User,
        ids: &[ResourceId],
        job: &JobHandle,
        workers: usize,
    ) {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..workers.clamp(1, ids.len().max(1)) {
                scope.spawn(|| {
                    while let Some(&id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            self.thumbnail_one(actor, id)
                        }));
                        let outcome = made.unwrap_or_else(|_| {
                            Err(Refusal::new("internal", "making this thumbnail failed"))
                        });
                        let item = match outcome {
                            Ok(()) => JobItem {
                                id,
                                ok: true,
                                code: None,
                                message: None,
                            },
                            Err(refusal) => JobItem {
                                id,
                                ok: false,
                                code: Some(refusal.code.to_owned()),
                                message: Some(refusal.message),
                            },
                        };
                        job.record(item);
                    }
                });
            }
        });
        let summary = job.snapshot();
        let details =
            json!({ "job": summary.id, "made": summary.succeeded, "failed": summary.failed });
        if let Err(error) = self.write_as(actor, |unit| {
            unit.audit(AuditAction::ResourceThumbnail, None, details.clone())
        }) {
            tracing::warn!(%error, "the thumbnail job's audit entry was not written");
        }
        job.finish(self.now());
    }

    /// Makes and stores the thumbnail of record `id`.
    fn thumbnail_one(&self, actor: &User, id: ResourceId) -> Result<(), Refusal> {
        let internal = |error: ServiceError| Refusal::new("internal", error.to_string());
        let record = self
            .snapshot()
            .resource(id)
            .map_err(|e| internal(e.into()))?
            .ok_or_else(|| Refusal::new("not_found", "no such record"))?;
        let path = record
            .media()
            .ok_or_else(|| Refusal::new("no_media", "the record has no `media` attribute"))?
            .to_owned();
        let user = |id| self.snapshot().user(id).map_err(|e| internal(e.into()));
        let owner = user(record.owner)?
            .ok_or_else(|| Refusal::new("media_not_found", "the record's owner is gone"))?;
        // A file is read from the owner's home only if the owner (or an
        // admin) named it: an editor of the record may not reach into it.
        let named_by = match record.media_by {
            Some(by) => user(by)?,
            None => None,
        };
        let trusted =
            named_by.is_some_and(|by| by.id == owner.id || by.has_role(SystemRole::Admin));
        if !trusted {
            let message =
                "the record's owner did not name this file; the owner or an admin must set `media`";
            return Err(Refusal::new("media_not_owners", message));
        }
        let bytes = self.read_media(&owner, &path)?;
        let media = self.settings.media;
        let image = crate::media::resized(&bytes, media.thumbnail_max_px, media.source)
            .map_err(|error| Refusal::new(error.code(), error.to_string()))?;
        self.store_thumbnail(actor, &record, &image)
            .map_err(|error| match error {
                ServiceError::Conflict { code, message } => Refusal::new(code, message),
                ServiceError::NotFound(_) => Refusal::new("not_found", "no such record"),
                other => internal(other),
            })
    }

    /// Reads `path` from `owner`'s FTP home; the path may not leave it.
    fn read_media(&self, owner: &User, path: &str) -> Result<Vec<u8>, Refusal> {
        let home = crate::service::ftp::home_of(&self.settings.ftp, owner);
        let missing =
            |error: std::io::Error| Refusal::new("media_not_found", format!("`{path}`: {error}"));
        let dir = cap_std::fs::Dir::open_ambient_dir(&home, cap_std::ambient_authority())
            .map_err(missing)?;
        let relative = path.trim_start_matches('/');
        // Only plain files: opening a FIFO would wait for a writer forever.
        if !dir.metadata(relative).map_err(missing)?.is_file() {
            return Err(Refusal::new(
                "media_not_found",
                format!("`{path}` is not a file"),
            ));
        }
        let file = dir.open(relative).map_err(missing)?;
        let limit = self.settings.media.source.max_bytes;
        let length = file.metadata().map_err(missing)?.len();
        if length > limit {
            let message = format!("`{path}` is {length} bytes, more than the {limit} allowed");
            return Err(Refusal::new("too_large", message));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(missing)?;
        Ok(bytes)
    }

    /// Stores the thumbnail, unless the record's media, who named it, or its
    /// owner changed meanwhile.
    fn store_thumbnail(
        &self,
        actor: &User,
        read: &Resource,
        image: &StoredImage,
    ) -> ServiceResult<()> {
        self.write_as(actor, |unit| {
            let mut record = load_resource(unit, read.id)?;
            let now = (record.media(), record.media_by, record.owner);
            if now != (read.media(), read.media_by, read.owner) {
                return Err(ServiceError::conflict(
                    "media_changed",
                    "the record's media changed while its thumbnail was made",
                ));
            }
            unit.tx.put_media(MediaKey::Thumbnail(read.id), image)?;
            record.thumbnail = Some(image.info());
            unit.tx.put_resource(&record)?;
            Ok(())
        })
    }

    /// The thumbnail of record `id`, for those who may view the record.
    pub fn thumbnail(&self, principal: &Principal, id: ResourceId) -> ServiceResult<StoredImage> {
        let actor = principal.unrestricted()?;
        self.checked_resource(actor, id, Action::View)?;
        self.store()
            .media(MediaKey::Thumbnail(id))?
            .ok_or(ServiceError::NotFound("thumbnail"))
    }
}

impl crate::service::Directory {
    /// Starts a thumbnail job in the background (admins only) and returns
    /// it as it starts; `GET /api/v1/jobs/{id}` follows it.
    pub fn generate_thumbnails(
        self: &std::sync::Arc<Self>,
        principal: &Principal,
        selection: ThumbnailSelection,
    ) -> ServiceResult<crate::service::jobs::Job> {
        let (job, ids) = self.records.plan_thumbnails(principal, selection)?;
        let actor = principal.unrestricted()?.clone();
        let started = job.snapshot();
        if !ids.is_empty() {
            let directory = self.clone();
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            std::thread::Builder::new()
                .name("thumbnails".into())
                .spawn(move || {
                    directory
                        .records
                        .run_thumbnails(&actor, &ids, &job, workers)
                })
                .map_err(ServiceError::io("start the thumbnail job", "thumbnails"))?;
        }
        Ok(started)
    }

    /// A job, for the admin who started it or any media admin.
    pub fn job(
        &self,
        principal: &Principal,
        id: crate::service::jobs::JobId,
    ) -> ServiceResult<crate::service::jobs::Job> {
        let actor = principal.unrestricted()?;
        let job = self
            .records
            .jobs
            .get(id)
            .ok_or(ServiceError::NotFound("job"))?;
        if job.started_by != actor.id {
            roles::require(actor, Capability::ManageMedia)?;
        }
        Ok(job)
    }
}
