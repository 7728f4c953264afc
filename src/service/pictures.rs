//! User pictures: an uploaded image, size-limited, decoded within limits and
//! re-encoded (so nothing but its pixels is kept), stored with a thumbnail.
//! The user sets their own; those who may change the user set theirs. Masking
//! and deleting remove both.

use super::accounts::Accounts;
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::domain::audit::AuditAction;
use crate::domain::media::{MediaKey, StoredImage};
use crate::domain::roles;
use crate::domain::user::{Right, User, UserId};
use serde_json::json;
use std::sync::Arc;

/// Removes a user's picture and its thumbnail inside `unit`.
pub(super) fn forget_picture(unit: &Unit, id: UserId) -> ServiceResult<()> {
    unit.tx.remove_media(MediaKey::Picture(id))?;
    unit.tx.remove_media(MediaKey::PictureThumbnail(id))?;
    Ok(())
}

/// The user sets their own picture; those who may change the user theirs;
/// a masked user has none.
fn may_set_picture(actor: &User, user: &User) -> ServiceResult<()> {
    if actor.id != user.id {
        roles::may_touch_record(actor, user, Right::Write)?;
    }
    if user.masked_at.is_some() {
        return Err(ServiceError::conflict(
            "masked",
            "a masked user has no picture",
        ));
    }
    Ok(())
}

impl Accounts {
    /// Sets user `id`'s picture from an uploaded image. CPU-heavy: call it
    /// off the async runtime.
    pub fn set_picture(
        &self,
        principal: &Principal,
        id: UserId,
        upload: &[u8],
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        may_set_picture(actor, &*self.current_user(id)?)?;
        let media = self.settings.media;
        if upload.len() as u64 > media.picture_max_bytes {
            let message = format!("at most {} bytes", media.picture_max_bytes);
            return Err(crate::domain::ValidationError::new("picture", message).into());
        }
        let invalid = |error: crate::media::ImageError| {
            crate::domain::ValidationError::new("picture", error.to_string())
        };
        let picture =
            crate::media::resized(upload, media.picture_max_px, media.source).map_err(invalid)?;
        let thumbnail = crate::media::resized(&picture.data, media.thumbnail_max_px, media.source)
            .map_err(invalid)?;
        self.write_as(actor, |unit| {
            // Again inside the unit: a mask or a role change may have landed
            // while the image was decoded.
            let mut user = unit.user(id)?;
            may_set_picture(actor, &user)?;
            unit.tx.put_media(MediaKey::Picture(id), &picture)?;
            unit.tx
                .put_media(MediaKey::PictureThumbnail(id), &thumbnail)?;
            let info = picture.info();
            user.picture = Some(json!({
                "content_type": info.content_type,
                "width": info.width,
                "height": info.height,
                "bytes": info.bytes,
                "url": format!("/api/v1/users/{id}/picture"),
                "updated_at": unit.now,
            }));
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.audit(
                AuditAction::UserSetPicture,
                Some(id),
                json!({ "bytes": info.bytes }),
            )
        })?;
        self.current_user(id)
    }

    /// Removes user `id`'s picture: the user, or those who may change the user.
    pub fn remove_picture(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let mut user = unit.user(id)?;
            if actor.id != id {
                roles::may_touch_record(actor, &user, Right::Write)?;
            }
            forget_picture(unit, id)?;
            user.picture = None;
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.audit(
                AuditAction::UserSetPicture,
                Some(id),
                json!({ "removed": true }),
            )
        })?;
        self.current_user(id)
    }

    /// User `id`'s picture (or its thumbnail), for those who may read the user.
    pub fn picture(
        &self,
        principal: &Principal,
        id: UserId,
        thumbnail: bool,
    ) -> ServiceResult<StoredImage> {
        self.get_user(principal, id)?;
        let key = match thumbnail {
            true => MediaKey::PictureThumbnail(id),
            false => MediaKey::Picture(id),
        };
        self.store()
            .media(key)?
            .ok_or(ServiceError::NotFound("picture"))
    }
}
