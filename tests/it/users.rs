//! Foundation: user CRUD, filters, bulk actions, groups, roles, guards, errors.

use crate::harness::{Daemon, PASSWORD, code, id};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn health_and_authentication() {
    let d = Daemon::start().await;
    let (status, _) = d.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
    let (status, body) = d.call(Method::GET, "/api/v1/users", None, None).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let (status, _) = d.get("/api/v1/users", "gh_api_not-a-real-token").await;
    assert_eq!(status, 401);
    let (status, body) = d.get("/api/v1/nowhere", &d.root).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(d.dir.path().join("data/root.token")).expect("token file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    d.stop().await;
}

#[tokio::test]
async fn system_users_exist_and_are_guarded() {
    let d = Daemon::start().await;
    let (_, page) = d
        .get("/api/v1/users?type=system&fields=login", &d.root)
        .await;
    let logins: Vec<&str> = page["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["login"].as_str())
        .collect();
    assert_eq!(logins, ["root", "deleted_user", "deep_link", "oai_pmh"]);
    let (status, body) = d.delete("/api/v1/users/2", &d.root).await;
    assert_eq!((status, code(&body)), (409, "system_user"));
    let reply = d.bulk("deactivate", json!({ "ids": [3, 4] })).await;
    assert_eq!(reply["failed"], 2);
    assert_eq!(reply["results"][0]["error"]["code"], "system_user");
    let (status, body) = d
        .patch("/api/v1/users/3", &d.root, json!({ "type": "local" }))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("type"))
    );
    d.stop().await;
}

#[tokio::test]
async fn create_read_update_and_malformed_input() {
    let d = Daemon::start().await;
    let user = d
        .create(json!({
            "login": "Jane.Doe", "email": "Jane@Example.org", "password": PASSWORD,
            "first_name": "Jane", "last_name": "Doe", "company": "Field Lab",
            "address": { "town": "Lund", "country": "SE" }, "reference": "R-1"
        }))
        .await;
    assert_eq!(user["effective_display_name"], "Jane Doe");
    assert_eq!(user["owner"], 1);
    assert_eq!(user["status"], "active");
    assert_eq!(user["type"], "local");
    let path = format!("/api/v1/users/{}", id(&user));
    let (status, fetched) = d.get(&path, &d.root).await;
    assert_eq!((status, &fetched["address"]["town"]), (200, &json!("Lund")));
    assert!(fetched.get("password").is_none() && fetched.get("password_hash").is_none());

    let duplicates = [
        (
            json!({ "login": "other", "email": "jane@example.ORG" }),
            "email",
        ),
        (json!({ "login": "JANE.DOE" }), "login"),
        (json!({ "login": "third", "reference": "r-1" }), "reference"),
    ];
    for (body, field) in duplicates {
        let (status, reply) = d.post("/api/v1/users", &d.root, body).await;
        assert_eq!(
            (status, code(&reply), reply["error"]["field"].as_str()),
            (409, "duplicate", Some(field))
        );
    }

    let (status, reply) = d
        .patch(
            &path,
            &d.root,
            json!({ "phone": "+46 1", "display_name": "JD" }),
        )
        .await;
    assert_eq!(
        (status, &reply["phone"], &reply["effective_display_name"]),
        (200, &json!("+46 1"), &json!("JD"))
    );
    let (status, reply) = d.patch(&path, &d.root, json!({ "login": "renamed" })).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("login"))
    );

    let bad_fields = [
        (json!({ "login": "x1", "email": "not-an-email" }), "email"),
        (json!({ "login": "x2", "shoe_size": 44 }), "shoe_size"),
        (
            json!({ "login": "x3", "system_roles": ["emperor"] }),
            "system_roles[0]",
        ),
        (json!({ "login": "has space" }), "login"),
        (json!({ "login": ".." }), "login"),
        (json!({ "login": "." }), "login"),
        (json!({ "login": "../../etc" }), "login"),
        (json!({ "login": "a\u{FF0F}b" }), "login"),
        (json!({ "login": "bell\u{7}" }), "login"),
        (json!({ "first_name": "nobody" }), "login"),
        (json!({ "login": "x4", "password": "short" }), "password"),
        (
            json!({ "login": "x5", "groups": ["no-such-group"] }),
            "groups",
        ),
    ];
    for (body, field) in bad_fields {
        let (status, reply) = d.post("/api/v1/users", &d.root, body.clone()).await;
        assert_eq!(
            (status, reply["error"]["field"].as_str()),
            (400, Some(field)),
            "{body} -> {reply}"
        );
    }
    let raw = d
        .client_raw(Method::POST, "/api/v1/users", "{\"login\": ")
        .await;
    assert_eq!((raw.0, code(&raw.1)), (400, "malformed_json"));
    let big = json!({ "login": "big", "remarks": "x".repeat(2 * 1024 * 1024) });
    let (status, reply) = d.post("/api/v1/users", &d.root, big).await;
    assert_eq!((status, code(&reply)), (413, "body_too_large"));
    assert_eq!(d.get("/api/v1/users/99999", &d.root).await.0, 404);
    assert_eq!(d.get("/api/v1/users/abc", &d.root).await.0, 400);
    let (_, page) = d
        .get("/api/v1/users?q=x&search_fields=login", &d.root)
        .await;
    assert_eq!(
        page["users"].as_array().map(Vec::len),
        Some(0),
        "no half-created users: {page}"
    );
    d.stop().await;
}

fn logins(page: &Value) -> Vec<String> {
    page["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["login"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn listing_filters_search_and_pages() {
    let d = Daemon::start().await;
    for group in ["field", "lab"] {
        assert_eq!(
            d.post("/api/v1/groups", &d.root, json!({ "name": group }))
                .await
                .0,
            201
        );
    }
    d.create(
        json!({ "login": "ann", "status": "active", "first_name": "Ann", "last_name": "Berg", "groups": ["field"] }),
    )
    .await;
    d.create(
        json!({ "login": "bob", "email": "bob@lab.org", "groups": ["lab"], "status": "pending" }),
    )
    .await;
    d.create(json!({ "login": "cid", "status": "active", "company": "Bergen AS", "type": "email", "groups": ["field", "lab"] })).await;
    let cases = [
        ("type=local", vec!["ann", "bob"]),
        ("status=pending", vec!["bob"]),
        ("group=field", vec!["ann", "cid"]),
        ("group=lab&exclude_group=field", vec!["bob"]),
        ("q=BERG", vec!["ann"]),
        ("q=berg&search_fields=company", vec!["cid"]),
        ("q=lab.org", vec!["bob"]),
        ("type=local,email&status=active", vec!["ann", "cid"]),
    ];
    for (query, expected) in cases {
        let (status, page) = d.get(&format!("/api/v1/users?{query}"), &d.root).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(logins(&page), expected, "{query}");
    }
    let (_, page) = d
        .get("/api/v1/users?type=local&fields=login,status", &d.root)
        .await;
    let keys: Vec<&String> = page["users"][0].as_object().expect("user").keys().collect();
    assert_eq!(keys, ["id", "login", "status"]);

    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=3".to_owned();
    loop {
        let (_, page) = d.get(&path, &d.root).await;
        seen.extend(logins(&page));
        match page["next_cursor"].as_u64() {
            Some(cursor) => path = format!("/api/v1/users?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "root",
            "deleted_user",
            "deep_link",
            "oai_pmh",
            "ann",
            "bob",
            "cid"
        ]
    );

    let bad = [
        ("type=wizard", "type"),
        ("limit=0", "limit"),
        ("archived=sometimes", "archived"),
        ("fields=shoe", "fields"),
        ("colour=red", "colour"),
        ("archived_after=yesterday", "archived_after"),
    ];
    for (query, field) in bad {
        let (status, reply) = d.get(&format!("/api/v1/users?{query}"), &d.root).await;
        assert_eq!(
            (status, reply["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn bulk_activate_roles_and_groups() {
    let d = Daemon::start().await;
    let pending: Vec<u64> = {
        let mut ids = Vec::new();
        for login in ["p1", "p2"] {
            ids.push(id(&d
                .create(json!({ "login": login, "password": PASSWORD, "status": "pending" }))
                .await));
        }
        ids
    };
    assert_eq!(d.login("p1", PASSWORD).await.0, 401);
    let reply = d
        .bulk(
            "activate",
            json!({ "ids": [pending[0], pending[1], 424242] }),
        )
        .await;
    assert_eq!(
        (reply["succeeded"].as_u64(), reply["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(reply["results"][0]["user"]["status"], "active");
    assert_eq!(reply["results"][2]["error"]["code"], "not_found");
    assert_eq!(d.login("p1", PASSWORD).await.0, 200);

    d.post(
        "/api/v1/groups",
        &d.root,
        json!({ "name": "crew", "description": "boat crew" }),
    )
    .await;
    let (status, reply) = d
        .post("/api/v1/groups", &d.root, json!({ "name": "CREW" }))
        .await;
    assert_eq!((status, code(&reply)), (409, "duplicate"));
    let reply = d
        .bulk(
            "add-to-groups",
            json!({ "ids": pending, "groups": ["crew"] }),
        )
        .await;
    assert_eq!(reply["results"][1]["user"]["groups"], json!(["crew"]));
    let (_, groups) = d.get("/api/v1/groups", &d.root).await;
    assert_eq!(groups["groups"][0]["members"], 2);
    d.bulk(
        "remove-from-groups",
        json!({ "ids": [pending[0]], "groups": ["crew"] }),
    )
    .await;
    assert_eq!(d.delete("/api/v1/groups/crew", &d.root).await.0, 204);
    let (_, user) = d
        .get(&format!("/api/v1/users/{}", pending[1]), &d.root)
        .await;
    assert_eq!(user["groups"], json!([]));

    let reply = d
        .bulk(
            "set-system-roles",
            json!({ "ids": [pending[0]], "roles": ["auditor"] }),
        )
        .await;
    assert_eq!(
        reply["results"][0]["user"]["system_roles"],
        json!(["auditor"])
    );
    let (status, reply) = d
        .post(
            "/api/v1/users/actions/set-system-roles",
            &d.root,
            json!({ "ids": [5] }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("roles"))
    );
    assert_eq!(
        d.post(
            "/api/v1/users/actions/explode",
            &d.root,
            json!({ "ids": [5] })
        )
        .await
        .0,
        404
    );

    let (_, audit) = d.get("/api/v1/audit?limit=3", &d.root).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "user.set_system_roles",
            "group.delete",
            "user.remove_from_groups"
        ]
    );
    assert_eq!(audit["entries"][0]["actor"], 1);
    assert_eq!(audit["entries"][0]["target"], pending[0]);
    d.stop().await;
}

#[tokio::test]
async fn roles_limit_what_callers_may_do() {
    let d = Daemon::start().await;
    let (_, auditor) = d.user_with_roles("audrey", &["auditor"]).await;
    let (_, manager) = d.user_with_roles("manny", &["user_manager"]).await;
    let (admin_id, _) = d.user_with_roles("ada", &["admin"]).await;
    let plain = d.user("plain").await;

    assert_eq!(d.get("/api/v1/users", &auditor).await.0, 200);
    assert_eq!(d.get("/api/v1/audit", &auditor).await.0, 200);
    let (status, reply) = d
        .post("/api/v1/users", &auditor, json!({ "login": "nope" }))
        .await;
    assert_eq!((status, code(&reply)), (403, "forbidden"));

    assert_eq!(
        d.post(
            "/api/v1/users",
            &manager,
            json!({ "login": "made-by-manny" })
        )
        .await
        .0,
        201
    );
    assert_eq!(
        d.patch(
            &format!("/api/v1/users/{plain}"),
            &manager,
            json!({ "phone": "1" })
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.patch(
            &format!("/api/v1/users/{admin_id}"),
            &manager,
            json!({ "phone": "1" })
        )
        .await
        .0,
        403
    );
    let (status, _) = d
        .post(
            "/api/v1/users",
            &manager,
            json!({ "login": "boss", "system_roles": ["admin"] }),
        )
        .await;
    assert_eq!(status, 403);
    let (_, reply) = d
        .post(
            "/api/v1/users/actions/set-system-roles",
            &manager,
            json!({ "ids": [plain], "roles": ["auditor"] }),
        )
        .await;
    assert_eq!(reply["results"][0]["error"]["code"], "forbidden");

    let (_, session) = d.login("plain", crate::harness::PASSWORD).await;
    let token = session["token"].as_str().expect("session");
    assert_eq!(d.get("/api/v1/users", token).await.0, 403);
    assert_eq!(
        d.get(&format!("/api/v1/users/{plain}"), token).await.0,
        200,
        "users may read themselves"
    );
    assert_eq!(
        d.get(&format!("/api/v1/users/{admin_id}"), token).await.0,
        403
    );
    d.stop().await;
}

#[tokio::test]
async fn api_tokens_issue_replace_revoke() {
    let d = Daemon::start().await;
    let uid = d.user("tok").await;
    let path = format!("/api/v1/users/{uid}/api-token");
    let (_, first) = d.post(&path, &d.root, json!({})).await;
    let first = first["token"].as_str().expect("token").to_owned();
    assert!(first.starts_with("gh_api_"));
    assert_eq!(d.get("/api/v1/me", &first).await.1["login"], "tok");
    let (_, second) = d.post(&path, &d.root, json!({})).await;
    let second = second["token"].as_str().expect("token").to_owned();
    assert_eq!(
        d.get("/api/v1/me", &first).await.0,
        401,
        "regenerating replaces the old token"
    );
    assert_eq!(d.get("/api/v1/me", &second).await.0, 200);
    assert_eq!(d.delete(&path, &d.root).await.0, 204);
    assert_eq!(d.get("/api/v1/me", &second).await.0, 401);
    assert_eq!(d.delete(&path, &d.root).await.0, 404);
    let raw = d.stored_bytes();
    d.stop().await;
    assert!(
        !raw.windows(second.len()).any(|w| w == second.as_bytes()),
        "tokens are stored only as hashes"
    );
}

#[tokio::test]
async fn root_keeps_its_powers_and_admins_are_out_of_reach_below_admin() {
    let d = Daemon::start().await;
    let (_, ada_token) = d.user_with_roles("ada", &["admin"]).await;
    // Root never loses the admin role or its active status, whoever asks.
    for token in [&d.root, &ada_token] {
        let (_, reply) = d
            .post(
                "/api/v1/users/actions/set-system-roles",
                token,
                json!({ "ids": [1], "roles": ["auditor"] }),
            )
            .await;
        let refused = &reply["results"][0]["error"]["code"];
        assert!(
            refused == "root_protected" || refused == "forbidden",
            "{reply}"
        );
    }
    for action in ["deactivate", "mask", "delete"] {
        let (_, reply) = d
            .post(
                &format!("/api/v1/users/actions/{action}"),
                &d.root,
                json!({ "ids": [1] }),
            )
            .await;
        assert_eq!(reply["failed"], 1, "{action}: {reply}");
    }
    let (status, reply) = d
        .patch(
            "/api/v1/users/1",
            &d.root,
            json!({ "login_valid_to": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!((status, code(&reply)), (409, "root_protected"), "{reply}");
    // Nobody but root changes root: not another admin.
    let (status, reply) = d
        .post(
            "/api/v1/users/1/password",
            &ada_token,
            json!({ "password": "a new sound passphrase" }),
        )
        .await;
    assert_eq!((status, code(&reply)), (403, "forbidden"), "{reply}");
    let (status, _) = d
        .post("/api/v1/users/1/api-token", &ada_token, json!({}))
        .await;
    assert_eq!(status, 403);
    let (_, root) = d.get("/api/v1/users/1", &d.root).await;
    assert_eq!(
        (root["status"].as_str(), root["system_roles"].clone()),
        (Some("active"), json!(["admin"]))
    );

    // A user manager who created an account keeps no hold on it once it is an admin.
    let (_, manager_token) = d.user_with_roles("manny", &["user_manager"]).await;
    let (status, created) = d
        .post(
            "/api/v1/users",
            &manager_token,
            json!({ "login": "max", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let max = id(&created);
    d.bulk(
        "set-system-roles",
        json!({ "ids": [max], "roles": ["admin"] }),
    )
    .await;
    let (status, reply) = d
        .patch(
            &format!("/api/v1/users/{max}"),
            &manager_token,
            json!({ "first_name": "Mallory" }),
        )
        .await;
    assert_eq!((status, code(&reply)), (403, "forbidden"), "{reply}");
    let (status, reply) = d
        .delete(&format!("/api/v1/users/{max}"), &manager_token)
        .await;
    assert_eq!((status, code(&reply)), (403, "forbidden"), "{reply}");
    let grant = json!({ "grants": [{ "user": 1, "read": true, "write": true }] });
    let path = format!("/api/v1/users/{max}/access");
    let (status, _) = d
        .call(Method::PUT, &path, Some(&manager_token), Some(grant))
        .await;
    assert_eq!(
        status, 403,
        "owning the record does not reach an admin's access list"
    );
    let (_, user) = d.get(&format!("/api/v1/users/{max}"), &d.root).await;
    assert_eq!(
        (user["status"].as_str(), user["archived_at"].is_null()),
        (Some("active"), true)
    );
    // Nor may a user manager run a directory sync or read its reports.
    assert_eq!(
        d.post("/api/v1/ldap/sync", &manager_token, json!({}))
            .await
            .0,
        403
    );
    assert_eq!(d.get("/api/v1/ldap/status", &manager_token).await.0, 403);
    d.stop().await;
}

/// An admin setting a user's password, resetting their 2FA or deactivating
/// them ends every session and API token of that user.
#[tokio::test]
async fn admin_changes_end_the_users_sessions_and_tokens() {
    let d = Daemon::start().await;
    for change in ["password", "2fa", "deactivate"] {
        let login = format!("victim-{change}");
        let (uid, api_token) = d.user_with_roles(&login, &["auditor"]).await;
        let (_, session) = d.login(&login, PASSWORD).await;
        let session = session["token"].as_str().expect("session").to_owned();
        for token in [&api_token, &session] {
            assert_eq!(d.get("/api/v1/me", token).await.0, 200);
        }
        let (status, reply) = match change {
            "password" => {
                d.post(
                    &format!("/api/v1/users/{uid}/password"),
                    &d.root,
                    json!({ "password": "an admin's new phrase" }),
                )
                .await
            }
            "2fa" => d.delete(&format!("/api/v1/users/{uid}/2fa"), &d.root).await,
            _ => {
                d.post(
                    "/api/v1/users/actions/deactivate",
                    &d.root,
                    json!({ "ids": [uid] }),
                )
                .await
            }
        };
        assert!(status < 300, "{change}: {status} {reply}");
        for token in [&api_token, &session] {
            assert_eq!(d.get("/api/v1/me", token).await.0, 401, "{change}");
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn registration_is_off_by_default_and_pending_when_on() {
    let d = Daemon::start().await;
    let body = json!({ "email": "new@example.org", "password": PASSWORD, "first_name": "New" });
    let (status, reply) = d.public_post("/api/v1/register", body.clone()).await;
    assert_eq!((status, code(&reply)), (403, "disabled"));
    d.stop().await;

    let d = Daemon::start_with(|c| c.registration.enabled = true).await;
    let (status, user) = d.public_post("/api/v1/register", body.clone()).await;
    assert_eq!(
        (status, &user["status"], &user["type"]),
        (201, &json!("pending"), &json!("self_registered"))
    );
    assert_eq!(
        d.login("new@example.org", PASSWORD).await.0,
        401,
        "pending users cannot sign in"
    );
    let (status, reply) = d
        .public_post(
            "/api/v1/register",
            json!({ "email": "x@example.org", "password": PASSWORD, "status": "active" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("status"))
    );
    d.bulk("activate", json!({ "ids": [id(&user)] })).await;
    assert_eq!(d.login("NEW@example.org", PASSWORD).await.0, 200);
    let (_, org) = d
        .post(
            "/api/v1/organizations",
            &d.root,
            json!({ "code": "FIELD", "name": "Field crew" }),
        )
        .await;
    let joining =
        json!({ "email": "joiner@example.org", "password": PASSWORD, "organization": "field" });
    let (status, user) = d.public_post("/api/v1/register", joining).await;
    assert_eq!(
        (status, &user["organization"]),
        (201, &org["id"]),
        "registration may pick an organization"
    );
    let unknown =
        json!({ "email": "lost@example.org", "password": PASSWORD, "organization": "nowhere" });
    let (status, reply) = d.public_post("/api/v1/register", unknown).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("organization"))
    );
    d.stop().await;
}

#[tokio::test]
async fn user_records_carry_their_own_access_list() {
    let d = Daemon::start().await;
    let target = d.user("target").await;
    let (reader, reader_token) = d.user_with_roles("reader", &[]).await;
    let (_, admin_token) = d.user_with_roles("adm", &["admin"]).await;
    let path = format!("/api/v1/users/{target}");
    assert_eq!(d.get(&path, &reader_token).await.0, 403);
    let access = format!("{path}/access");
    let grant = |read: bool, write: bool, delete: bool| json!({ "grants": [{ "user": reader, "read": read, "write": write, "delete": delete }] });
    let (status, user) = d
        .call(
            Method::PUT,
            &access,
            Some(&d.root),
            Some(grant(true, false, false)),
        )
        .await;
    assert_eq!((status, &user["access"][0]["read"]), (200, &json!(true)));
    assert_eq!(
        d.get(&path, &reader_token).await.0,
        200,
        "a read grant lets a plain user read the record"
    );
    assert_eq!(
        d.patch(&path, &reader_token, json!({ "phone": "1" }))
            .await
            .0,
        403
    );
    d.call(
        Method::PUT,
        &access,
        Some(&d.root),
        Some(grant(false, true, false)),
    )
    .await;
    assert_eq!(
        d.patch(&path, &reader_token, json!({ "phone": "1" }))
            .await
            .0,
        200
    );
    assert_eq!(d.delete(&path, &reader_token).await.0, 403);
    let (status, reply) = d
        .call(
            Method::PUT,
            &access,
            Some(&d.root),
            Some(json!({ "grants": [{ "read": true }] })),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("grants[0]"))
    );

    let owner = format!("{path}/owner");
    let (status, _) = d
        .call(
            Method::PUT,
            &owner,
            Some(&admin_token),
            Some(json!({ "owner": reader })),
        )
        .await;
    assert_eq!(status, 403, "only root changes ownership");
    let (status, user) = d
        .call(
            Method::PUT,
            &owner,
            Some(&d.root),
            Some(json!({ "owner": reader })),
        )
        .await;
    assert_eq!((status, &user["owner"]), (200, &json!(reader)));
    assert_eq!(
        d.delete(&path, &reader_token).await.0,
        200,
        "the owner holds every right"
    );
    d.stop().await;
}
