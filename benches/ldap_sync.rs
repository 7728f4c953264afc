//! LDAP sync benchmark (issue: enterprise LDAP). Loads 10,000 users in 100
//! groups into a private slapd, then times a full sync and an incremental sync
//! after 10 users changed. Run: `cargo bench --bench ldap_sync` (needs slapd and
//! ldap-utils: `apt-get install slapd ldap-utils`).

mod common;
#[allow(dead_code)]
#[path = "../tests/it/slapd.rs"]
mod slapd;

use gatehouse::config::GroupMapping;
use gatehouse::service::sync::SyncMode;
use slapd::{SUFFIX, Slapd};
use std::time::Instant;

const USERS: usize = 10_000;
const GROUPS: usize = 100;

fn directory_ldif() -> String {
    let mut ldif = String::with_capacity(USERS * 300);
    for i in 0..USERS {
        ldif += &Slapd::person(
            &format!("user{i:05}"),
            &format!("Given{i}"),
            "Surname",
            "pw",
        );
    }
    for g in 0..GROUPS {
        let members: Vec<String> = (0..USERS)
            .filter(|i| i % GROUPS == g)
            .map(|i| format!("user{i:05}"))
            .collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        ldif += &Slapd::group(&format!("group{g:03}"), &members);
    }
    ldif
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let slapd = Slapd::start();
    let loading = Instant::now();
    slapd.ldif(&directory_ldif());
    println!(
        "loaded {USERS} users in {GROUPS} groups into slapd in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    let daemon = common::start(|c| {
        c.ftp.enabled = false;
        slapd::point_config_at(c, &slapd.url);
        c.ldap.group_map = (0..GROUPS)
            .map(|g| GroupMapping {
                ldap_group: format!("group{g:03}"),
                group: format!("team{g:03}"),
            })
            .collect();
    })
    .await;
    let directory = daemon.running.directory.clone();

    let started = Instant::now();
    let report = directory
        .sync
        .sync_directory(SyncMode::Full, &|_| {})
        .await
        .expect("full sync");
    let full = started.elapsed();
    assert_eq!(
        (report.created, report.aborted.as_deref()),
        (USERS, None),
        "{report:?}"
    );
    println!(
        "full sync: {USERS} users created in {:.2} s = {:.0} users/s",
        full.as_secs_f64(),
        USERS as f64 / full.as_secs_f64()
    );
    let started = Instant::now();
    let report = directory
        .sync
        .sync_directory(SyncMode::Full, &|_| {})
        .await
        .expect("second full sync");
    let again = started.elapsed();
    println!(
        "full sync, nothing changed: {} unchanged in {:.2} s = {:.0} users/s",
        report.unchanged,
        again.as_secs_f64(),
        USERS as f64 / again.as_secs_f64()
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut changes = String::new();
    for i in (0..USERS).step_by(USERS / 10).take(10) {
        changes += &format!(
            "dn: uid=user{i:05},ou=people,{SUFFIX}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 9{i:04}\n\n"
        );
    }
    slapd.ldif(&changes);
    let started = Instant::now();
    let report = directory
        .sync
        .sync_directory(SyncMode::Incremental, &|_| {})
        .await
        .expect("incremental sync");
    println!(
        "incremental sync after 10 changed users: read {}, updated {}, in {:.0} ms",
        report.seen,
        report.updated,
        started.elapsed().as_secs_f64() * 1000.0
    );
    daemon.running.shutdown().await.expect("shutdown");
}
