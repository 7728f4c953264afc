//! Argon2id hashing and verification on a small pool of dedicated threads, so a
//! sign-in storm never stalls the async runtime and the pool never idles
//! between jobs waiting for an async task to be scheduled.

use super::error::{ServiceError, ServiceResult};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;
/// Jobs waiting for a hashing thread before callers wait to enqueue.
const QUEUE_DEPTH: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// Shared hasher; clones share the pool.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    /// A real hash verified for unknown users, so their timing matches known ones.
    decoy: Arc<str>,
}

fn argon2() -> ServiceResult<Argon2<'static>> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(argon2::password_hash::Error::from)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes on the calling thread; use [`PasswordHasher::hash`] from async code.
pub fn hash_blocking(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(ServiceError::from)
}

/// Verifies on the calling thread; a malformed stored hash counts as a mismatch.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    argon2().is_ok_and(|argon| argon.verify_password(password.as_bytes(), &parsed).is_ok())
}

impl PasswordHasher {
    /// Starts `threads` hashing threads; 0 means one per available core.
    pub fn new(threads: usize) -> ServiceResult<Self> {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        let threads = if threads == 0 { cores } else { threads };
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("gatehouse-argon2-{index}"))
                .spawn(move || run_jobs(&queue))
                .map_err(ServiceError::io("start a hashing thread", "argon2"))?;
        }
        let decoy = hash_blocking("decoy password that matches nothing")?;
        Ok(Self {
            jobs,
            decoy: decoy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let (reply, outcome) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(job());
        });
        let closed = || ServiceError::HasherStopped;
        self.jobs.send(job).await.map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())
    }

    pub async fn hash(&self, password: String) -> ServiceResult<String> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Verifies `password` against `phc`, or against a decoy when there is no hash.
    pub async fn verify(&self, password: String, phc: Option<String>) -> ServiceResult<bool> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.decoy.to_string());
        let matched = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(known && matched)
    }
}

/// A hashing thread: takes the next job as soon as it is free; ends when every
/// sender is gone.
fn run_jobs(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let next = queue.lock().map(|mut queue| queue.blocking_recv());
        match next {
            Ok(Some(job)) => job(),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_with_owasp_parameters() {
        let hash = hash_blocking("correct horse").unwrap_or_default();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("wrong horse", &hash));
        assert!(!verify_blocking("x", "not a phc string"));
    }
}
