//! Argon2id hashing and verification on a small pool of dedicated threads, so a
//! sign-in storm never stalls the async runtime and the pool never idles
//! between jobs waiting for an async task to be scheduled.

use super::error::{ServiceError, ServiceResult};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;
/// What unknown logins are verified against, so they take as long as known
/// ones: an argon2id hash, with the parameters above, of a password nobody
/// knows (it and the salt were random; nothing depends on them).
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$1PWs7bUS3rVTTjgrFjfmcw$q93HHjrG9XTzj2TtpEdIsEuTWJHT44upLfsuFbOU2gA";

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

thread_local! {
    /// The argon2 working memory (19 MiB) of this thread, kept between jobs:
    /// allocating it afresh for every hash left the allocator holding many
    /// such blocks after a burst of sign-ins.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `argon` over `password` and raw `salt` into `out`, in this thread's memory.
fn argon2_into(
    argon: &Argon2,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let needed = argon.params().block_count();
        if blocks.len() != needed {
            *blocks = vec![Block::default(); needed];
        }
        argon.hash_password_into_with_memory(password, salt, out, blocks.as_mut_slice())
    })
}

/// Hashes on the calling thread; use [`PasswordHasher::hash`] from async code.
pub fn hash_blocking(password: &str) -> ServiceResult<String> {
    let argon = argon2()?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt)?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(argon2_into(&argon, password.as_bytes(), raw_salt, out)?)
    })?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Verifies on the calling thread; a malformed stored hash counts as a mismatch.
/// The stored hash's own parameters are used, so older hashes still verify.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(stored.algorithm),
        Params::try_from(&stored),
    ) else {
        return false;
    };
    let version = stored
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let argon = Argon2::new(algorithm, version, params);
    let mut raw_salt = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon2_into(&argon, password.as_bytes(), raw_salt, out)?)
    });
    // `Output` compares in constant time.
    computed.is_ok_and(|computed| computed == expected)
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
        Ok(Self {
            jobs,
            decoy: DECOY.into(),
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
        let parameters = format!("$argon2id$v=19$m={MEMORY_KIB},t={PASSES},p={LANES}$");
        assert!(
            DECOY.starts_with(&parameters),
            "the decoy costs what a real hash costs"
        );
        assert!(!verify_blocking("", DECOY));
    }

    #[test]
    fn hashes_of_the_argon2_crate_itself_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let light = Params::new(1024, 1, 1, None)
            .map(|p| Argon2::new(Algorithm::Argon2id, Version::V0x13, p));
        let Ok(light) = light else { panic!("params") };
        let reference = light
            .hash_password(b"field station", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            verify_blocking("field station", &reference),
            "older parameters verify"
        );
        assert!(!verify_blocking("field statio", &reference));
        let ours = hash_blocking("field station").unwrap_or_default();
        let parsed = PasswordHash::new(&ours);
        let verified = parsed.is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(b"field station", &parsed)
                .is_ok()
        });
        assert!(verified, "the argon2 crate verifies ours");
    }
}
