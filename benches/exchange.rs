//! CSV exchange benchmark (issue: CSV exchange of users). Runs the real
//! `gatehouse` binary (built by Cargo for this bench) as a child process and
//! measures, in one run:
//! - `gatehouse users export --out FILE` of a 1,000,000-user store: rows/s,
//!   file size and the child's peak RSS (VmHWM), and the peak RSS of the same
//!   command on a 100,000-user store, to judge constant-memory behaviour (the
//!   in-memory user index loaded at start does grow with the user count);
//! - `gatehouse users import --mode add FILE` of 100,000 users with 20-char
//!   random passwords on a fresh data dir: users/s, against the raw argon2id
//!   hash rate on one thread per core measured just before (aim: 90%). When
//!   that raw rate predicts more than 20 minutes, 20,000 users are imported
//!   instead, and the table says so.
//!
//! Users are seeded in-process through the store seam, 10,000 per unit of
//! work, into a data dir the binary initialised. Peak RSS and CPU time are
//! polled from /proc every 5 ms. Counts can be lowered for a quick check with
//! EXCHANGE_EXPORT_USERS / EXCHANGE_IMPORT_USERS.
//! Run: `cargo bench --bench exchange` (about 25 minutes on 2 cores).

use gatehouse::domain::clock::{Clock, SystemClock, Timestamp};
use gatehouse::domain::names::{Email, Login};
use gatehouse::domain::user::{Status, User, UserType};
use gatehouse::service::hash_blocking;
use gatehouse::store::sled::SledStore;
use gatehouse::store::{Store, StoreError};
use rand::Rng;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const EXPORT_USERS: usize = 1_000_000;
const SMALL_EXPORT_USERS: usize = 100_000;
const IMPORT_USERS: usize = 100_000;
const IMPORT_FALLBACK: usize = 20_000;
const IMPORT_BUDGET: Duration = Duration::from_secs(20 * 60);
const SEED_BATCH: usize = 10_000;
const RAW_HASHING: Duration = Duration::from_secs(10);
const FIRST: [&str; 8] = [
    "Anna", "Bruno", "Chen", "Dara", "Emil", "Fatima", "Gustav", "Hana",
];
const LAST: [&str; 8] = [
    "Berg", "Costa", "Dahl", "Eriksen", "Fischer", "Garcia", "Holm", "Ito",
];
const COMPANIES: [&str; 4] = ["Field Lab", "Marine Unit", "Forest Survey", "Data Office"];

/// A finished child: wall time, peak RSS and CPU time as last seen in /proc.
struct Measured {
    seconds: f64,
    peak_mib: f64,
    cpu_seconds: f64,
    stdout: String,
    stderr: String,
}

/// Kills the child if the bench stops early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `gatehouse ARGS` on `data_dir` until it exits, polling its peak RSS
/// (VmHWM) and CPU time; panics (with its stderr) when it fails.
fn gatehouse(data_dir: &Path, scratch: &Path, args: &[&str]) -> Measured {
    let (out, err) = (scratch.join("child.out"), scratch.join("child.err"));
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("child stdout file"))
        .stderr(std::fs::File::create(&err).expect("child stderr file"))
        .spawn()
        .expect("gatehouse starts");
    let mut child = Guard(child);
    let pid = child.0.id();
    let (mut peak_kib, mut cpu_ticks) = (0.0f64, 0.0f64);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for gatehouse") {
            break status;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        // utime and stime: fields 14 and 15, counted after the ")" ending the name.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<f64> = rest
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect();
            if fields.len() > 12 {
                cpu_ticks = cpu_ticks.max(fields[11] + fields[12]);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(
        status.success(),
        "gatehouse {args:?} failed: {status}\n{stderr}"
    );
    Measured {
        seconds,
        peak_mib: peak_kib / 1024.0,
        cpu_seconds: cpu_ticks / 100.0, // USER_HZ is 100 on Linux
        stdout,
        stderr,
    }
}

fn seed_user(id: u64, n: usize, now: Timestamp) -> User {
    let mut user = User::new(id, UserType::Local, Status::Active, now);
    user.login = Some(Login::parse(&format!("user{n:07}")).expect("login"));
    user.email = Some(Email::parse(&format!("user{n:07}@example.org")).expect("email"));
    user.first_name = Some(FIRST[n % 8].to_owned());
    user.last_name = Some(LAST[(n / 8) % 8].to_owned());
    user.company = Some(COMPANIES[n % 4].to_owned());
    user.department = Some(format!("Dept {}", n % 50));
    user.phone = Some(format!("+49 30 {n:07}"));
    user.address.town = Some("Berlin".to_owned());
    user.frontend_language = Some("en-US".to_owned());
    user.database_languages = vec!["de-DE".to_owned(), "en-US".to_owned()];
    user.version = 1;
    user
}

/// Adds users `from..to` to the store in `data_dir`, `SEED_BATCH` per unit of work.
fn seed(data_dir: &Path, from: usize, to: usize) -> f64 {
    let started = Instant::now();
    let store = SledStore::open(data_dir, 64 * 1024 * 1024).expect("open the store");
    let store: &dyn Store = &store;
    let now = SystemClock.now();
    for start in (from..to).step_by(SEED_BATCH) {
        let ((), commit) = store
            .write(|unit| -> Result<(), StoreError> {
                for n in start..(start + SEED_BATCH).min(to) {
                    unit.put_user(&seed_user(unit.next_id("user")?, n, now))?;
                }
                Ok(())
            })
            .expect("seed batch");
        store.wait_durable(commit).expect("seed batch durable");
    }
    store.flush().expect("flush");
    started.elapsed().as_secs_f64()
}

/// Argon2id hashes per second with one thread per core for `duration`.
fn raw_hash_rate(duration: Duration, threads: usize) -> f64 {
    let count = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let count = count.clone();
            std::thread::spawn(move || {
                while started.elapsed() < duration {
                    hash_blocking(&format!("raw-rate password {t}")).expect("hash");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    workers
        .into_iter()
        .for_each(|w| w.join().expect("hashing thread"));
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The import file: login, email, first name and a 20-char random password.
fn import_csv(users: usize) -> Vec<u8> {
    let mut rng = rand::thread_rng();
    let mut csv = b"user.login,user.email,user.first_name,_password\n".to_vec();
    for n in 0..users {
        let password: String = (&mut rng)
            .sample_iter(rand::distributions::Alphanumeric)
            .take(20)
            .map(char::from)
            .collect();
        let row = format!(
            "imp{n:06},imp{n:06}@example.net,{},{password}\n",
            FIRST[n % 8]
        );
        csv.extend_from_slice(row.as_bytes());
    }
    csv
}

fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let bench_started = Instant::now();
    let export_users = count_from_env("EXCHANGE_EXPORT_USERS", EXPORT_USERS);
    let small_users = SMALL_EXPORT_USERS.min(export_users / 10).max(1);
    let import_wanted = count_from_env("EXCHANGE_IMPORT_USERS", IMPORT_USERS);
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let scratch = tempfile::tempdir().expect("temp dir");
    let load_before = load();
    let mut rows: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // Raw argon2id first: it decides whether the full import fits the budget.
    let raw = raw_hash_rate(RAW_HASHING, cores);
    eprintln!("raw argon2id on {cores} threads: {raw:.1} hashes/s");
    let predicted = Duration::from_secs_f64(import_wanted as f64 / raw);
    let import_users = if predicted > IMPORT_BUDGET {
        notes.push(format!(
            "IMPORT REDUCED to {IMPORT_FALLBACK} users: {import_wanted} predicted {:.0} min at the raw rate (> 20 min)",
            predicted.as_secs_f64() / 60.0
        ));
        IMPORT_FALLBACK.min(import_wanted)
    } else {
        import_wanted
    };

    // Import on a fresh data dir (initialised by the binary, otherwise empty).
    let import_dir = scratch.path().join("import");
    gatehouse(
        &import_dir,
        scratch.path(),
        &["users", "export", "--out", "/dev/null"],
    );
    let csv_path = scratch.path().join("import.csv");
    std::fs::write(&csv_path, import_csv(import_users)).expect("write the import file");
    let csv_arg = csv_path.to_str().expect("utf-8 path");
    eprintln!("importing {import_users} users with passwords ...");
    let import = gatehouse(
        &import_dir,
        scratch.path(),
        &["users", "import", "--mode", "add", csv_arg],
    );
    let report: serde_json::Value = serde_json::from_str(&import.stdout).expect("import report");
    assert_eq!(
        report["applied"], true,
        "import not applied: {}",
        import.stderr
    );
    assert_eq!(report["add"].as_array().map(Vec::len), Some(import_users));
    let import_rate = import_users as f64 / import.seconds;
    rows.push(format!(
        "{:<30} {:>9} {:>8.1} {:>10.1} {:>9.0} {:>8.1}  {:.0}% of raw; CPU {:.0}% of {cores} cores",
        "users import --mode add",
        import_users,
        import.seconds,
        import_rate,
        import.peak_mib,
        import.cpu_seconds,
        100.0 * import_rate / raw,
        100.0 * import.cpu_seconds / (import.seconds * cores as f64)
    ));
    rows.push(format!(
        "{:<30} {:>9} {:>8.1} {:>10.1} {:>9} {:>8}  hash_blocking on {cores} threads, before the import",
        "raw argon2id", "-", RAW_HASHING.as_secs_f64(), raw, "-", "-"
    ));
    std::fs::remove_dir_all(&import_dir).expect("remove the import dir");
    std::fs::remove_file(&csv_path).expect("remove the import file");

    // Export: a 100k store, then the same store grown to 1M.
    let data_dir = scratch.path().join("export");
    let out_path = scratch.path().join("users.csv");
    let out_arg = out_path.to_str().expect("utf-8 path");
    gatehouse(
        &data_dir,
        scratch.path(),
        &["users", "export", "--out", "/dev/null"],
    );
    let mut seeded = 0;
    for target in [small_users, export_users] {
        let seconds = seed(&data_dir, seeded, target);
        eprintln!("seeded users {seeded}..{target} in {seconds:.1} s");
        seeded = target;
        let export = gatehouse(
            &data_dir,
            scratch.path(),
            &["users", "export", "--out", out_arg],
        );
        let written: usize = export
            .stderr
            .split("exported ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("the exported count");
        assert!(written >= target, "{}", export.stderr);
        let size = std::fs::metadata(&out_path).expect("export file").len();
        rows.push(format!(
            "{:<30} {:>9} {:>8.1} {:>10.0} {:>9.0} {:>8.1}  file {:.1} MiB ({:.0} B/row)",
            format!("users export ({target} users)"),
            written,
            export.seconds,
            written as f64 / export.seconds,
            export.peak_mib,
            export.cpu_seconds,
            size as f64 / (1024.0 * 1024.0),
            size as f64 / written as f64
        ));
        std::fs::remove_file(&out_path).expect("remove the export file");
    }
    notes.push(format!(
        "load average before {load_before}, after {}; total {:.1} min",
        load(),
        bench_started.elapsed().as_secs_f64() / 60.0
    ));

    println!("\nreproduce: cargo bench --bench exchange   ({cores} cores)");
    println!(
        "{:<30} {:>9} {:>8} {:>10} {:>9} {:>8}  notes",
        "part", "rows", "time s", "rows/s", "peak MiB", "CPU s"
    );
    rows.iter().for_each(|row| println!("{row}"));
    notes.iter().for_each(|note| println!("note: {note}"));
}
