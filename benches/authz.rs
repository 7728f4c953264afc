//! Permission benchmark (issue: projects and records). One project with 1,000
//! members and 10,000 records; measures authorization checks per second
//! in-process and over HTTP (wrk on GET /api/v1/authz/check, against GET
//! /healthz in the same run), and `set-roles` for 10,000 users in one request.
//! Run: `cargo bench --bench authz` (wrk for the HTTP figure).

mod common;

use common::wrk;
use gatehouse::domain::permissions::Action;
use gatehouse::domain::user_input::NewUser;
use gatehouse::service::organizations::OrganizationInput;
use gatehouse::service::projects::ProjectInput;
use gatehouse::service::records::ResourceInput;
use serde_json::json;
use std::time::Instant;

const MEMBERS: u64 = 1_000;
const RECORDS: u64 = 10_000;
const ROLE_USERS: usize = 10_000;

fn new_user(login: String) -> NewUser {
    serde_json::from_value(json!({ "login": login })).expect("valid user")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let daemon = common::start(|c| {
        c.ftp.enabled = false;
        c.http.max_body_bytes = 8 * 1024 * 1024;
    })
    .await;
    let directory = daemon.running.directory.clone();
    let root = directory.signin.authenticate(&daemon.root).expect("root");
    let org = directory
        .organizations
        .create_organization(
            &root,
            OrganizationInput {
                code: Some("BENCH".into()),
                name: Some("Bench".into()),
                ..Default::default()
            },
        )
        .expect("organization");
    let project = directory
        .projects
        .create_project(
            &root,
            ProjectInput {
                name: Some("Big".into()),
                ..Default::default()
            },
        )
        .expect("project")
        .project;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let user = directory
            .accounts
            .create_user(&root, new_user(format!("member{i}")))
            .await
            .expect("member");
        let role = [
            gatehouse::domain::projects::ProjectRole::Member,
            gatehouse::domain::projects::ProjectRole::Readonly,
        ][i as usize % 2];
        directory
            .projects
            .set_member(&root, project.id, user.id, Some(role))
            .expect("membership");
        members.push(user.id);
    }
    let started = Instant::now();
    let mut records = Vec::new();
    for i in 0..RECORDS {
        let input = ResourceInput {
            kind: Some("station".into()),
            name: Some(format!("S{i}")),
            project: Some(project.id),
            source_organization: Some(org.id),
            ..Default::default()
        };
        records.push(
            directory
                .records
                .create_resource(&root, input)
                .expect("record")
                .id,
        );
    }
    println!(
        "setup: {MEMBERS} members, {RECORDS} records ({:.1} s for the records)",
        started.elapsed().as_secs_f64()
    );

    let checks = 100_000u64;
    let started = Instant::now();
    let mut allowed = 0u64;
    for i in 0..checks {
        let user = members[(i * 7 % MEMBERS) as usize];
        let record = records[(i * 13 % RECORDS) as usize];
        let decision = directory
            .records
            .check_permission(&root, user, Action::View, record)
            .expect("check");
        allowed += u64::from(decision.allowed);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "in-process checks: {:.0}/s ({allowed} of {checks} allowed)",
        checks as f64 / elapsed
    );

    let check_url = format!(
        "{}/api/v1/authz/check?user={}&action=view&resource={}",
        daemon.base, members[1], records[4242]
    );
    let health_url = format!("{}/healthz", daemon.base);
    match (
        wrk(&health_url, &daemon.root, 10),
        wrk(&check_url, &daemon.root, 10),
    ) {
        (Some(health), Some(check)) => println!(
            "wrk -t2 -c64 -d10s: GET /healthz {health:.0} req/s, GET /api/v1/authz/check {check:.0} req/s ({:.0}% of healthz)",
            100.0 * check / health
        ),
        _ => println!("wrk not found: install it for the HTTP figure"),
    }

    let mut ids = Vec::with_capacity(ROLE_USERS);
    for i in 0..ROLE_USERS {
        ids.push(
            directory
                .accounts
                .create_user(&root, new_user(format!("student{i}")))
                .await
                .expect("user")
                .id,
        );
    }
    let body = json!({ "ids": ids, "projects": [{ "id": project.id, "role": "annotator" }], "activate": true });
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/users/actions/set-roles", daemon.base))
        .bearer_auth(&daemon.root)
        .json(&body)
        .send()
        .await
        .expect("set-roles");
    let status = response.status();
    let reply: serde_json::Value = response.json().await.expect("reply");
    println!(
        "set-roles for {ROLE_USERS} users in one request: HTTP {status}, {} succeeded, {:.2} s",
        reply["succeeded"],
        started.elapsed().as_secs_f64()
    );
    daemon.running.shutdown().await.expect("shutdown");
}
