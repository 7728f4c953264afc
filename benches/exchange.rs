//! CSV exchange benchmark (issue: CSV exchange of users). Runs the real
//! `gatehouse` binary (built by Cargo for this bench) as a child process and
//! measures, in one run:
//! - `gatehouse users export --out FILE` of a 1,000,000-user store: rows/s,
//!   file size and the child's peak RSS (VmHWM), and the peak RSS of the same
//!   command on a 100,000-user store, to judge constant-memory behaviour (what
//!   is loaded at start, the store's in-memory mirror and the user index, does
//!   grow with the user count; the mirror's size is shown);
//! - `gatehouse users import --mode add FILE` of 100,000 users with 20-char
//!   random passwords on a fresh data dir: users/s, against the raw argon2id
//!   hash rate on one thread per core measured just before (aim: 90%) and
//!   again just after (a difference shows contention on the machine). When
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const EXPORT_USERS: usize = 1_000_000;
const SMALL_EXPORT_USERS: usize = 100_000;
const IMPORT_USERS: usize = 100_000;
const IMPORT_FALLBACK: usize = 20_000;
const IMPORT_BUDGET: Duration = Duration::from_secs(20 * 60);
const SEED_BATCH: usize = 10_000;
const RAW_HASHING: Duration = Duration::from_secs(10);
const FIRST: [&str; 4] = ["Anna", "Bruno", "Chen", "Fatima"];
const LAST: [&str; 4] = ["Berg", "Costa", "Eriksen", "Garcia"];
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
fn gatehouse(binary: &Path, data_dir: &Path, args: &[&str]) -> Measured {
    let (out, err) = (
        data_dir.with_extension("out"),
        data_dir.with_extension("err"),
    );
    let started = Instant::now();
    let child = Command::new(binary)
        .args(args)
        .env("GATEHOUSE_DATA_DIR", data_dir)
        // Keeps the "store loaded into memory ... mib=N" log line (on stderr), uncoloured.
        .env("RUST_LOG", "warn,gatehouse::store::sled=info")
        .env("NO_COLOR", "1")
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
        let read = |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}"));
        let status = read("status").unwrap_or_default();
        let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
        peak_kib = peak_kib.max(number(hwm.and_then(|v| v.split_whitespace().next())));
        // utime and stime: fields 14 and 15, counted after the ")" ending the name.
        let stat = read("stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = number(fields.get(11).copied()) + number(fields.get(12).copied());
        cpu_ticks = cpu_ticks.max(ticks);
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

fn number(text: Option<&str>) -> f64 {
    text.and_then(|t| t.parse().ok()).unwrap_or(0.0)
}

fn seed_user(id: u64, n: usize, now: Timestamp) -> User {
    let mut user = User::new(id, UserType::Local, Status::Active, now);
    user.login = Some(Login::parse(&format!("user{n:07}")).expect("login"));
    user.email = Some(Email::parse(&format!("user{n:07}@example.org")).expect("email"));
    user.first_name = Some(FIRST[n % 4].to_owned());
    user.last_name = Some(LAST[(n / 4) % 4].to_owned());
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
    let count = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let count = &count;
            scope.spawn(move || {
                while started.elapsed() < duration {
                    hash_blocking(&format!("raw-rate password {t}")).expect("hash");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
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
            FIRST[n % 4]
        );
        csv.extend_from_slice(row.as_bytes());
    }
    csv
}

/// One line of the table for a measured child.
fn row(part: &str, rows: usize, run: &Measured, note: String) -> String {
    format!(
        "{part:<28} {rows:>8} {:>7.1} {:>9.1} {:>8.0} {:>7.1}  {note}",
        run.seconds,
        rows as f64 / run.seconds,
        run.peak_mib,
        run.cpu_seconds
    )
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
    // A copy, so a `cargo build` elsewhere during the run cannot swap it.
    let binary = scratch.path().join("gatehouse");
    std::fs::copy(env!("CARGO_BIN_EXE_gatehouse"), &binary).expect("copy the binary");
    let run = |dir: &Path, args: &[&str]| gatehouse(&binary, dir, args);
    // The first start creates the data dir, store, keys and root user.
    let initialise = |dir: &Path| run(dir, &["users", "export", "--out", "/dev/null"]);
    let load_before = load();
    let (mut rows, mut notes) = (Vec::new(), Vec::new());

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
    initialise(&import_dir);
    let csv_path = scratch.path().join("import.csv");
    std::fs::write(&csv_path, import_csv(import_users)).expect("write the import file");
    let csv_arg = csv_path.to_str().expect("utf-8 path");
    eprintln!("importing {import_users} users with passwords ...");
    let import = run(&import_dir, &["users", "import", "--mode", "add", csv_arg]);
    // The report is what the command prints (logs go to standard error).
    let json = import
        .stdout
        .find('{')
        .map_or("", |at| &import.stdout[at..]);
    let report: serde_json::Value = serde_json::from_str(json).expect("import report");
    assert_eq!(
        report["applied"], true,
        "import not applied: {}",
        import.stderr
    );
    assert_eq!(report["add"].as_array().map(Vec::len), Some(import_users));
    let import_rate = import_users as f64 / import.seconds;
    let busy = 100.0 * import.cpu_seconds / (import.seconds * cores as f64);
    let note = format!("CPU busy {busy:.0}% of {cores} cores");
    rows.push(row("users import --mode add", import_users, &import, note));
    // Again after, so contention from other processes shows as a difference.
    let raw_after = raw_hash_rate(RAW_HASHING, cores);
    notes.push(format!(
        "import {import_rate:.1} users/s vs raw argon2id (hash_blocking on {cores} threads, \
         {RAW_HASHING:?}) {raw:.1} hashes/s before = {:.1}% (aim 90%); {raw_after:.1} after = {:.1}%",
        100.0 * import_rate / raw,
        100.0 * import_rate / raw_after
    ));

    // Export: a 100k store, then the same store grown to 1M.
    let data_dir = scratch.path().join("export");
    let out_path = scratch.path().join("users.csv");
    let out_arg = out_path.to_str().expect("utf-8 path");
    initialise(&data_dir);
    let mut seeded = 0;
    for target in [small_users, export_users] {
        let seconds = seed(&data_dir, seeded, target);
        eprintln!("seeded users {seeded}..{target} in {seconds:.1} s");
        seeded = target;
        let export = run(&data_dir, &["users", "export", "--out", out_arg]);
        let count = export.stderr.split("exported ").nth(1).unwrap_or("");
        let written = number(count.split_whitespace().next()) as usize; // root etc. too
        assert!(written >= target, "{}", export.stderr);
        let size = std::fs::metadata(&out_path).expect("export file").len() as f64;
        let mirrored = export.stderr.split("mib=").nth(1).unwrap_or("");
        let file = format!(
            "file {:.1} MiB; store mirrored in memory {} MiB",
            size / (1024.0 * 1024.0),
            number(mirrored.split_whitespace().next())
        );
        let part = format!("users export, {target}");
        rows.push(row(&part, written, &export, file));
    }
    notes.push(format!(
        "load average before {load_before}, after {}; total {:.1} min",
        load(),
        bench_started.elapsed().as_secs_f64() / 60.0
    ));

    println!("\nreproduce: cargo bench --bench exchange   ({cores} cores)");
    println!(
        "{:<28} {:>8} {:>7} {:>9} {:>8} {:>7}  notes",
        "part", "rows", "time s", "rows/s", "peak MiB", "CPU s"
    );
    rows.iter().for_each(|row| println!("{row}"));
    notes.iter().for_each(|note| println!("note: {note}"));
}
