//! Background jobs (thumbnail generation): an id, progress, and a result per
//! item. Jobs live in memory for the daemon's life; the newest
//! [`KEPT_JOBS`] are kept, and a restart forgets them (what they wrote stays).

use crate::domain::clock::Timestamp;
use crate::domain::user::UserId;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub type JobId = u64;

/// How many finished and running jobs are remembered.
const KEPT_JOBS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
}

/// One item's outcome: done, or why not.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobItem {
    pub id: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A job as `GET /api/v1/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub state: JobState,
    pub total: usize,
    pub done: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub started_by: UserId,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub results: Vec<JobItem>,
}

/// The registry of jobs.
#[derive(Default)]
pub struct Jobs {
    last: AtomicU64,
    jobs: Mutex<VecDeque<Arc<Mutex<Job>>>>,
}

/// A running job's handle, for its worker to report through.
#[derive(Clone)]
pub struct JobHandle(Arc<Mutex<Job>>);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Jobs {
    /// Registers a running job of `kind` over `total` items.
    pub fn start(&self, kind: &str, total: usize, started_by: UserId, now: Timestamp) -> JobHandle {
        let job = Arc::new(Mutex::new(Job {
            id: self.last.fetch_add(1, Ordering::Relaxed) + 1,
            kind: kind.to_owned(),
            state: if total == 0 {
                JobState::Finished
            } else {
                JobState::Running
            },
            total,
            done: 0,
            succeeded: 0,
            failed: 0,
            started_by,
            started_at: now,
            finished_at: (total == 0).then_some(now),
            results: Vec::with_capacity(total),
        }));
        let mut jobs = lock(&self.jobs);
        if jobs.len() >= KEPT_JOBS {
            // The oldest finished one goes; running jobs stay to be followed.
            if let Some(oldest) = jobs
                .iter()
                .position(|j| lock(j).state == JobState::Finished)
            {
                jobs.remove(oldest);
            }
        }
        jobs.push_back(job.clone());
        JobHandle(job)
    }

    /// A running job of `kind`, if any.
    pub fn running(&self, kind: &str) -> Option<JobId> {
        let jobs = lock(&self.jobs);
        jobs.iter().find_map(|job| {
            let job = lock(job);
            (job.kind == kind && job.state == JobState::Running).then_some(job.id)
        })
    }

    /// The job `id` as it stands, if still remembered.
    pub fn get(&self, id: JobId) -> Option<Job> {
        let jobs = lock(&self.jobs);
        let job = jobs.iter().find(|job| lock(job).id == id)?;
        Some(lock(job).clone())
    }
}

impl JobHandle {
    pub fn snapshot(&self) -> Job {
        lock(&self.0).clone()
    }

    /// Records one item's outcome.
    pub fn record(&self, item: JobItem) {
        let mut job = lock(&self.0);
        job.done += 1;
        match item.ok {
            true => job.succeeded += 1,
            false => job.failed += 1,
        }
        job.results.push(item);
    }

    pub fn finish(&self, now: Timestamp) {
        let mut job = lock(&self.0);
        job.state = JobState::Finished;
        job.finished_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_count_progress_and_only_the_newest_are_kept() {
        let jobs = Jobs::default();
        let now = chrono::Utc::now();
        let job = jobs.start("thumbnails", 2, 7, now);
        job.record(JobItem {
            id: 1,
            ok: true,
            code: None,
            message: None,
        });
        let running = jobs.get(1).map(|j| (j.state, j.done, j.succeeded));
        assert_eq!(running, Some((JobState::Running, 1, 1)));
        job.record(JobItem {
            id: 2,
            ok: false,
            code: Some("no_media".into()),
            message: None,
        });
        job.finish(now);
        let done = jobs
            .get(1)
            .map(|j| (j.state, j.done, j.failed, j.results.len()));
        assert_eq!(done, Some((JobState::Finished, 2, 1, 2)));
        assert_eq!(
            jobs.start("x", 0, 7, now).snapshot().state,
            JobState::Finished
        );
        let running = jobs.start("x", 1, 7, now);
        for _ in 0..KEPT_JOBS {
            jobs.start("x", 0, 7, now);
        }
        assert!(jobs.get(1).is_none(), "finished jobs make room");
        assert_eq!(
            jobs.running("x"),
            Some(running.snapshot().id),
            "running jobs stay"
        );
        assert_eq!(jobs.running("thumbnails"), None);
    }
}
