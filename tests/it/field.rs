//! Field-data flows as the source systems' users run them, through the HTTP
//! API: a Trap.NZ project without organizations (stations, their entries,
//! roles, the report) and a To The Trails install where editing needs an
//! organization (organizations by code, stewards from CSV, dry-run deletes).

use crate::harness::{Daemon, code, id};
use reqwest::Method;
use serde_json::{Value, json};

async fn put(d: &Daemon, path: &str, token: &str, body: Value) -> (u16, Value) {
    d.call(Method::PUT, path, Some(token), Some(body)).await
}

/// A user with an API token and no organization: (id, token).
async fn volunteer(d: &Daemon, login: &str) -> (u64, String) {
    d.user_with_roles(login, &[]).await
}

/// Adds an entry; returns (status, body).
async fn entry(d: &Daemon, station: u64, token: &str, body: Value) -> (u16, Value) {
    d.post(&format!("/api/v1/resources/{station}/entries"), token, body)
        .await
}

#[tokio::test]
async fn trap_nz_project_without_organizations() {
    let d = Daemon::start().await;
    let (vol_id, vol) = volunteer(&d, "vol").await;
    let (vol2_id, vol2) = volunteer(&d, "vol2").await;
    let (reader_id, reader) = volunteer(&d, "reader").await;
    let (editor_id, editor) = volunteer(&d, "ed").await;
    let (outsider_id, outsider) = volunteer(&d, "outsider").await;
    let (status, project) = d
        .post(
            "/api/v1/projects",
            &d.root,
            json!({ "name": "Predator Free Bay" }),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let pid = id(&project);
    // The admin assigns roles, activating as it goes (Trap.NZ's set-roles).
    let roles = [
        (vol_id, "member"),
        (vol2_id, "member"),
        (reader_id, "readonly"),
    ];
    for (uid, role) in roles {
        let reply = d
            .bulk("set-roles", json!({ "ids": [uid], "projects": [{ "id": pid, "role": role }], "activate": true }))
            .await;
        assert_eq!(reply["succeeded"], 1, "{reply}");
    }
    let path = format!("/api/v1/projects/{pid}/members/{editor_id}");
    assert_eq!(
        put(&d, &path, &d.root, json!({ "role": "editor" })).await.0,
        200
    );

    // A no-role member with no organization adds a station.
    let (status, station) = d
        .post(
            "/api/v1/resources",
            &vol,
            json!({ "kind": "trap", "name": "DOC200 #1", "project": pid }),
        )
        .await;
    assert_eq!(status, 201, "{station}");
    assert_eq!(station["source_organization"], Value::Null);
    assert_eq!(station["owner"], vol_id);
    let sid = id(&station);

    // Trap checks: kind and time given, or defaulted; the author is the caller.
    let (status, check) = entry(&d, sid, &vol, json!({ "kind": "check", "time": "2026-03-01T08:00:00+13:00", "attributes": { "caught": "rat", "bait": "egg" } })).await;
    assert_eq!(status, 201, "{check}");
    assert_eq!(
        (&check["author"], &check["time"], &check["kind"]),
        (
            &json!(vol_id),
            &json!("2026-02-28T19:00:00Z"),
            &json!("check")
        )
    );
    let (status, second) =
        entry(&d, sid, &vol, json!({ "attributes": { "caught": "none" } })).await;
    assert_eq!((status, second["kind"].as_str()), (201, Some("entry")));
    let (status, reply) = entry(
        &d,
        sid,
        &vol,
        json!({ "time": "last tuesday", "attributes": {} }),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("time"))
    );
    let (status, reply) = entry(&d, sid, &vol, json!({ "kind": "check" })).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("attributes"))
    );
    let entry_path = format!("/api/v1/resources/{sid}/entries/{}", id(&check));
    let (status, edited) = d
        .patch(
            &entry_path,
            &vol,
            json!({ "attributes": { "caught": "stoat", "bait": "egg" } }),
        )
        .await;
    assert_eq!(
        (status, &edited["attributes"]["caught"]),
        (200, &json!("stoat"))
    );
    assert_eq!(edited["time"], check["time"], "what was not sent stays");
    let second_path = format!("/api/v1/resources/{sid}/entries/{}", id(&second));
    assert_eq!(d.delete(&second_path, &vol).await.0, 204);
    assert_eq!(d.get(&second_path, &vol).await.0, 404);

    // Another member sees nothing of it until assigned; then adds checks.
    let entries = format!("/api/v1/resources/{sid}/entries");
    assert_eq!(d.get(&entries, &vol2).await.0, 403);
    assert_eq!(
        entry(&d, sid, &vol2, json!({ "attributes": {} })).await.0,
        403
    );
    let assign = |users: Value| json!({ "ids": [sid], "users": users });
    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/assign",
            &d.root,
            assign(json!([vol2_id])),
        )
        .await;
    assert_eq!(reply["succeeded"], 1, "{reply}");
    assert_eq!(
        reply["results"][0]["resource"]["assigned_summary"],
        "1 member(s) assigned"
    );
    assert_eq!(
        entry(
            &d,
            sid,
            &vol2,
            json!({ "kind": "check", "attributes": { "caught": "mouse" } })
        )
        .await
        .0,
        201
    );
    // Assigning someone outside the project is refused, naming them.
    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/assign",
            &d.root,
            assign(json!([outsider_id])),
        )
        .await;
    assert_eq!(
        reply["results"][0]["error"]["code"], "not_a_member",
        "{reply}"
    );
    let message = reply["results"][0]["error"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains(&outsider_id.to_string()), "{message}");
    assert_eq!(d.get(&entries, &outsider).await.0, 403);

    // Read-only members see every station and its entries, and change nothing.
    let (status, listed) = d.get(&entries, &reader).await;
    assert_eq!(
        (status, listed["entries"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    assert_eq!(
        entry(&d, sid, &reader, json!({ "attributes": {} })).await.0,
        403
    );
    assert_eq!(
        d.patch(&entry_path, &reader, json!({ "kind": "x" }))
            .await
            .0,
        403
    );

    // Names of assigned members: for those who manage members, not for readers.
    let station_path = format!("/api/v1/resources/{sid}");
    let (_, as_admin) = d.get(&station_path, &d.root).await;
    assert_eq!(
        as_admin["assigned_members"][0]["login"], "vol2",
        "{as_admin}"
    );
    let (_, as_reader) = d.get(&station_path, &reader).await;
    assert!(as_reader.get("assigned_members").is_none(), "{as_reader}");
    let members = format!("/api/v1/projects/{pid}/members");
    let (_, listed) = d.get(&members, &d.root).await;
    let named = listed["people"].as_array().cloned().unwrap_or_default();
    assert!(
        named
            .iter()
            .any(|p| p["login"] == "vol" && p["role"] == "member"),
        "{listed}"
    );
    let (status, listed) = d.get(&members, &reader).await;
    assert_eq!(status, 200);
    assert!(
        listed["people"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["login"].is_null()))
    );

    // The editor runs the report; below editor it is refused.
    let report = format!("/api/v1/projects/{pid}/report");
    let (status, counts) = d.get(&report, &editor).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        (&counts["total"], &counts["by_kind"]["check"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(counts["records"][0]["by_kind"], json!({ "check": 2 }));
    let (_, march) = d
        .get(&format!("{report}?from=2026-03-01&to=2026-03-31"), &editor)
        .await;
    assert_eq!(
        march["total"], 0,
        "the first check was on 28 February UTC: {march}"
    );
    let (_, february) = d
        .get(&format!("{report}?from=2026-02-28&to=2026-02-28"), &editor)
        .await;
    assert_eq!(february["total"], 1, "a date `to` takes the whole day");
    let (status, reply) = d.get(&format!("{report}?from=soon"), &editor).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("from"))
    );
    assert_eq!(d.get(&report, &reader).await.0, 403);
    let csv = reqwest::Client::new()
        .get(format!("{}{report}", d.base))
        .bearer_auth(&editor)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("report");
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    let text = csv.text().await.expect("csv");
    assert_eq!(
        text,
        format!(
            "record_id,record_name,record_kind,entry_kind,count\n{sid},DOC200 #1,trap,check,2\n"
        )
    );

    // The admin raises a role; the new editor deletes others' entries.
    let reply = d
        .bulk(
            "set-roles",
            json!({ "ids": [vol2_id], "projects": [{ "id": pid, "role": "editor" }] }),
        )
        .await;
    assert_eq!(reply["succeeded"], 1);
    assert_eq!(d.delete(&entry_path, &vol2).await.0, 204);

    // An entry is reached only through its own record.
    let (_, other) = d
        .post(
            "/api/v1/resources",
            &vol,
            json!({ "kind": "trap", "name": "DOC200 #2", "project": pid }),
        )
        .await;
    let (_, third) = entry(&d, id(&other), &vol, json!({ "attributes": {} })).await;
    let wrong = format!("/api/v1/resources/{sid}/entries/{}", id(&third));
    assert_eq!(d.get(&wrong, &d.root).await.0, 404);
    // Deleting a station deletes its entries.
    assert_eq!(
        d.delete(&format!("/api/v1/resources/{}", id(&other)), &vol)
            .await
            .0,
        204
    );
    assert_eq!(
        d.get(
            &format!("/api/v1/resources/{}/entries", id(&other)),
            &d.root
        )
        .await
        .0,
        404
    );
    d.stop().await;
}

#[tokio::test]
async fn to_the_trails_with_organizations_required_for_editing() {
    let d = Daemon::start_with(|c| c.organizations.required_for_editing = true).await;
    // Organizations by code alone; the name defaults to it.
    let (status, doc) = d
        .post("/api/v1/organizations", &d.root, json!({ "code": "DOC" }))
        .await;
    assert_eq!((status, &doc["name"]), (201, &json!("DOC")), "{doc}");
    let (_, club) = d
        .post(
            "/api/v1/organizations",
            &d.root,
            json!({ "code": "TRAMP", "name": "Tramping club" }),
        )
        .await;
    let (status, reply) = d
        .post(
            "/api/v1/organizations",
            &d.root,
            json!({ "name": "No code" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("code"))
    );
    let member = |login: &'static str, org: Option<u64>| {
        let d = &d;
        async move {
            let (uid, token) = d.user_with_roles(login, &[]).await;
            if let Some(org) = org {
                let path = format!("/api/v1/users/{uid}/organization");
                assert_eq!(
                    put(d, &path, &d.root, json!({ "organization": org }))
                        .await
                        .0,
                    204
                );
            }
            (uid, token)
        }
    };
    let (_, ranger) = member("ranger", Some(id(&doc))).await;
    let (_, colleague) = member("colleague", Some(id(&doc))).await;
    let (_, tramper) = member("tramper", Some(id(&club))).await;
    let (_, walker) = member("walker", None).await;

    // Without an organization: read-only at every door.
    let trail = json!({ "kind": "trail", "name": "Routeburn" });
    let (status, reply) = d.post("/api/v1/resources", &walker, trail.clone()).await;
    assert_eq!((status, code(&reply)), (403, "forbidden"), "{reply}");
    assert_eq!(
        d.post("/api/v1/projects", &walker, json!({ "name": "Mine" }))
            .await
            .0,
        403
    );

    // The organization's members edit its records; others do not.
    let (status, record) = d.post("/api/v1/resources", &ranger, trail).await;
    assert_eq!(
        (status, &record["source_organization"]),
        (201, &json!(id(&doc))),
        "{record}"
    );
    let path = format!("/api/v1/resources/{}", id(&record));
    let (status, edited) = d
        .patch(
            &path,
            &colleague,
            json!({ "attributes": { "condition": "open" } }),
        )
        .await;
    assert_eq!(
        (status, &edited["attributes"]["condition"]),
        (200, &json!("open")),
        "{edited}"
    );
    assert_eq!(
        d.patch(&path, &tramper, json!({ "name": "Mine now" }))
            .await
            .0,
        403
    );
    assert_eq!(
        d.patch(&path, &walker, json!({ "name": "Mine now" }))
            .await
            .0,
        403
    );
    assert_eq!(
        d.delete(&path, &colleague).await.0,
        403,
        "members update, not delete"
    );

    // CSV import with a steward column (an organization code that must exist).
    let import = format!("/api/v1/organizations/{}/import", id(&doc));
    let csv =
        "kind,name,source,steward,grade\ntrail,Kepler,DOC,TRAMP,easy\ntrail,Milford,DOC,,hard\n";
    let (status, report) = d.call(Method::POST, &import, Some(&ranger), None).await;
    assert_eq!(status, 400, "an empty body is no CSV: {report}");
    let imported = raw_post(&d, &import, &ranger, csv).await;
    assert_eq!(
        imported["created"].as_array().map(Vec::len),
        Some(2),
        "{imported}"
    );
    let kepler = imported["created"][0].as_u64().unwrap_or_default();
    let (_, record) = d.get(&format!("/api/v1/resources/{kepler}"), &d.root).await;
    assert_eq!(
        (&record["steward_organization"], &record["attributes"]),
        (&json!(id(&club)), &json!({ "grade": "easy" }))
    );
    // The steward's members edit the record too.
    let kepler_path = format!("/api/v1/resources/{kepler}");
    assert_eq!(
        d.patch(
            &kepler_path,
            &tramper,
            json!({ "attributes": { "grade": "moderate" } })
        )
        .await
        .0,
        200
    );
    let bad = raw_post(
        &d,
        &import,
        &ranger,
        "kind,name,source,steward\ntrail,X,DOC,NOPE\n",
    )
    .await;
    assert_eq!(bad["error"]["field"], "line 2", "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("NOPE")
    );

    // Deleting the steward organization: a dry run lists, then the steward is cleared.
    let club_path = format!("/api/v1/organizations/{}", id(&club));
    let (status, plan) = d
        .delete(&format!("{club_path}?dry_run=true"), &d.root)
        .await;
    assert_eq!(
        (status, &plan["steward_cleared"]),
        (200, &json!([kepler])),
        "{plan}"
    );
    assert_eq!(
        d.get(&kepler_path, &d.root).await.1["steward_organization"],
        json!(id(&club))
    );
    let (status, done) = d.delete(&club_path, &d.root).await;
    assert_eq!((status, &done["dry_run"]), (200, &json!(false)));
    assert_eq!(
        d.get(&kepler_path, &d.root).await.1["steward_organization"],
        Value::Null
    );
    d.stop().await;
}

/// Posts a CSV body as `token`; returns the JSON answer.
async fn raw_post(d: &Daemon, path: &str, token: &str, body: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", d.base))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON answer")
}

#[tokio::test]
async fn status_changes_by_patch_and_hidden_user_types() {
    let d = Daemon::start().await;
    let (uid, token) = d.user_with_roles("patched", &[]).await;
    let path = format!("/api/v1/users/{uid}");
    let (status, user) = d
        .patch(
            &path,
            &d.root,
            json!({ "status": "deactivated", "phone": "+64 3 555 0100" }),
        )
        .await;
    assert_eq!(
        (status, &user["status"], &user["phone"]),
        (200, &json!("deactivated"), &json!("+64 3 555 0100"))
    );
    assert_eq!(
        d.get("/api/v1/me", &token).await.0,
        401,
        "deactivation ends tokens, as the action does"
    );
    let (status, reply) = d
        .patch(&path, &d.root, json!({ "status": "pending" }))
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("status"))
    );
    let (status, reply) = d.patch(&path, &d.root, json!({ "status": "asleep" })).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("status"))
    );
    let (status, reply) = d
        .patch(
            &path,
            &d.root,
            json!({ "status": "active", "nickname": "x" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("nickname")),
        "nothing half-applied"
    );
    assert_eq!(d.get(&path, &d.root).await.1["status"], "deactivated");
    let (status, user) = d.patch(&path, &d.root, json!({ "status": "active" })).await;
    assert_eq!((status, &user["status"]), (200, &json!("active")));
    // A user manager may not deactivate an admin through PATCH either.
    let (admin_id, _) = d.user_with_roles("boss", &["admin"]).await;
    let (_, manager) = d.user_with_roles("manager", &["user_manager"]).await;
    let boss = format!("/api/v1/users/{admin_id}");
    assert_eq!(
        d.patch(&boss, &manager, json!({ "status": "deactivated" }))
            .await
            .0,
        403
    );

    // Anonymous and collection users are listed only when asked for by type.
    d.create(json!({ "login": "guest", "type": "anonymous" }))
        .await;
    d.create(json!({ "login": "herbarium", "type": "collection" }))
        .await;
    let logins = |page: &Value| -> Vec<String> {
        page["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["login"].as_str().map(str::to_owned))
            .collect()
    };
    let (_, page) = d.get("/api/v1/users", &d.root).await;
    assert!(
        !logins(&page)
            .iter()
            .any(|l| l == "guest" || l == "herbarium"),
        "{page}"
    );
    assert!(logins(&page).iter().any(|l| l == "patched"));
    let (_, page) = d
        .get("/api/v1/users?type=anonymous,collection", &d.root)
        .await;
    assert_eq!(logins(&page), ["guest", "herbarium"]);
    d.stop().await;
}
