//! Crash tests: the daemon binary killed with SIGKILL right after its last
//! acknowledged write keeps every acknowledged change. (The races for an
//! invariant live beside their areas: project owners, quota, directory sync.)

use crate::process::Process;
use reqwest::{Client, Method};
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const CREATES_PER_CLIENT: usize = 25;
const DEACTIVATIONS_PER_CLIENT: usize = 6;
const RUNS: usize = 20;

async fn call(
    client: &Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let reply = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// One client's acknowledged work: the ids it created, and those it deactivated.
#[derive(Default)]
struct Acknowledged {
    created: Vec<(u64, String)>,
    deactivated: Vec<u64>,
}

async fn client_work(base: String, token: String, run: usize, client_no: usize) -> Acknowledged {
    let client = Client::new();
    let mut done = Acknowledged::default();
    for n in 0..CREATES_PER_CLIENT {
        let login = format!("r{run}c{client_no}n{n}");
        let body = json!({ "login": login, "status": "active" });
        let (status, user) =
            call(&client, &base, &token, Method::POST, "/api/v1/users", body).await;
        assert_eq!(status, 201, "{user}");
        done.created.push((user["id"].as_u64().expect("id"), login));
        if n % 4 == 3 && done.deactivated.len() < DEACTIVATIONS_PER_CLIENT {
            let id = done.created[n - 1].0;
            let body = json!({ "ids": [id] });
            let (status, reply) = call(
                &client,
                &base,
                &token,
                Method::POST,
                "/api/v1/users/actions/deactivate",
                body,
            )
            .await;
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["results"][0]["ok"], true, "{reply}");
            done.deactivated.push(id);
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    for run in 0..RUNS {
        let process = Process::start(&data_dir, "warn");
        let token = std::fs::read_to_string(data_dir.join("root.token")).expect("root token");
        let token = token.trim().to_owned();
        let work: Vec<_> = (0..CLIENTS)
            .map(|client_no| {
                tokio::spawn(client_work(
                    process.base.clone(),
                    token.clone(),
                    run,
                    client_no,
                ))
            })
            .collect();
        let mut acknowledged = Vec::new();
        for task in work {
            acknowledged.push(task.await.expect("client finished"));
        }
        drop(process);

        let process = Process::start(&data_dir, "warn");
        let client = Client::new();
        let deactivated: usize = acknowledged.iter().map(|a| a.deactivated.len()).sum();
        assert_eq!(deactivated, CLIENTS * DEACTIVATIONS_PER_CLIENT);
        for done in &acknowledged {
            for (id, login) in &done.created {
                let (status, user) = call(
                    &client,
                    &process.base,
                    &token,
                    Method::GET,
                    &format!("/api/v1/users/{id}"),
                    Value::Null,
                )
                .await;
                assert_eq!(status, 200, "run {run}: user {id} lost after SIGKILL");
                assert_eq!(user["login"], login.as_str());
                let expected = if done.deactivated.contains(id) {
                    "deactivated"
                } else {
                    "active"
                };
                assert_eq!(user["status"], expected, "run {run}: user {id}");
            }
        }
        drop(process);
    }
}
