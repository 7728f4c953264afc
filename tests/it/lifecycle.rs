//! Lifecycle: deactivate and reactivate, archive or delete with ownership passed
//! to deleted_user, GDPR masking, copy, type changes.

use crate::harness::{Daemon, PASSWORD, code, id};
use serde_json::json;

#[tokio::test]
async fn deactivation_keeps_password_and_revokes_tokens() {
    let d = Daemon::start().await;
    let uid = d.user("sleeper").await;
    let (_, issued) = d
        .post(
            &format!("/api/v1/users/{uid}/api-token"),
            &d.root,
            json!({}),
        )
        .await;
    let api = issued["token"].as_str().expect("token").to_owned();
    let (_, session) = d.login("sleeper", PASSWORD).await;
    let session = session["token"].as_str().expect("session").to_owned();
    let reply = d.bulk("deactivate", json!({ "ids": [uid] })).await;
    assert_eq!(reply["results"][0]["user"]["status"], "deactivated");
    assert_eq!(d.get("/api/v1/me", &api).await.0, 401);
    assert_eq!(d.get("/api/v1/me", &session).await.0, 401);
    assert_eq!(d.login("sleeper", PASSWORD).await.0, 401);
    d.bulk("activate", json!({ "ids": [uid] })).await;
    assert_eq!(
        d.login("sleeper", PASSWORD).await.0,
        200,
        "the last password works again"
    );
    assert_eq!(
        d.get("/api/v1/me", &api).await.0,
        401,
        "revoked tokens stay revoked"
    );
    d.stop().await;
}

#[tokio::test]
async fn archive_keeps_login_reserved_and_reassigns_ownership() {
    let d = Daemon::start().await;
    let (creator, creator_token) = d.user_with_roles("creator", &["user_manager"]).await;
    let (_, made) = d
        .post("/api/v1/users", &creator_token, json!({ "login": "made" }))
        .await;
    assert_eq!(made["owner"], creator);
    let (status, archived) = d.delete(&format!("/api/v1/users/{creator}"), &d.root).await;
    assert_eq!(status, 200);
    assert!(archived["archived_at"].is_string());
    let (_, made) = d
        .get(&format!("/api/v1/users/{}", id(&made)), &d.root)
        .await;
    assert_eq!(
        (&made["owner"], &made["updated_by"]),
        (&json!(2), &json!(2)),
        "passed to deleted_user"
    );
    let (_, default_list) = d.get("/api/v1/users?q=creator", &d.root).await;
    assert_eq!(default_list["users"].as_array().map(Vec::len), Some(0));
    let (_, archived_list) = d
        .get(
            "/api/v1/users?q=creator&archived=only&archived_after=2020-01-01T00:00:00Z",
            &d.root,
        )
        .await;
    assert_eq!(archived_list["users"].as_array().map(Vec::len), Some(1));
    let (status, reply) = d
        .post("/api/v1/users", &d.root, json!({ "login": "CREATOR" }))
        .await;
    assert_eq!(
        (status, code(&reply)),
        (409, "duplicate"),
        "an archived login stays reserved"
    );
    assert_eq!(d.get("/api/v1/me", &creator_token).await.0, 401);
    d.stop().await;
}

#[tokio::test]
async fn delete_policy_frees_login_and_email() {
    let d =
        Daemon::start_with(|c| c.accounts.on_delete = gatehouse::config::OnDelete::Delete).await;
    let uid = d.user("gone").await;
    assert_eq!(
        d.delete(&format!("/api/v1/users/{uid}"), &d.root).await.0,
        204
    );
    assert_eq!(d.get(&format!("/api/v1/users/{uid}"), &d.root).await.0, 404);
    let again = d.user("gone").await;
    assert_ne!(again, uid);
    let (_, audit) = d.get("/api/v1/audit", &d.root).await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "user.delete" && e["target"] == uid)
    );
    d.stop().await;
}

#[tokio::test]
async fn masking_replaces_personal_data_and_keeps_the_rest() {
    let d = Daemon::start().await;
    d.post("/api/v1/groups", &d.root, json!({ "name": "team" }))
        .await;
    let (masked, token) = d.user_with_roles("privacy", &["user_manager"]).await;
    d.patch(&format!("/api/v1/users/{masked}"), &d.root, json!({
        "email": "privacy@example.org", "first_name": "Pia", "phone": "555", "address": { "street": "Elm" },
        "remarks": "likes cats", "reference": "EMP-9"
    })).await;
    d.bulk(
        "add-to-groups",
        json!({ "ids": [masked], "groups": ["team"] }),
    )
    .await;
    let (_, made) = d
        .post("/api/v1/users", &token, json!({ "login": "owned" }))
        .await;
    let (_, before) = d.get("/api/v1/audit?limit=1000", &d.root).await;
    let trail_before = before["entries"].as_array().map(Vec::len).unwrap_or(0);

    let reply = d.bulk("mask", json!({ "ids": [masked] })).await;
    let user = &reply["results"][0]["user"];
    assert_eq!(user["login"], format!("masked-{masked}"));
    assert_eq!(user["email"], format!("masked-{masked}@invalid"));
    for field in ["first_name", "phone", "remarks", "reference"] {
        assert!(user[field].is_null(), "{field} cleared");
    }
    assert_eq!(user["address"]["street"], json!(null));
    assert_eq!(
        (&user["status"], &user["groups"], &user["system_roles"]),
        (
            &json!("deactivated"),
            &json!(["team"]),
            &json!(["user_manager"])
        )
    );
    assert!(user["masked_at"].is_string());
    assert_eq!(d.get("/api/v1/me", &token).await.0, 401);
    let (_, made) = d
        .get(&format!("/api/v1/users/{}", id(&made)), &d.root)
        .await;
    assert_eq!(made["owner"], masked, "ownership stays with the masked id");
    let (_, after) = d.get("/api/v1/audit?limit=1000", &d.root).await;
    let entries = after["entries"].as_array().expect("entries");
    assert_eq!(
        entries.len(),
        trail_before + 1,
        "the trail is kept and gains the mask entry"
    );
    assert!(
        entries.iter().any(|e| e["actor"] == masked),
        "rows by the masked user remain"
    );
    let trail = after.to_string();
    for secret in ["privacy@example.org", "Pia", "likes cats", "EMP-9"] {
        assert!(
            !trail.contains(secret),
            "audit holds no personal data ({secret})"
        );
    }
    let reply = d.bulk("activate", json!({ "ids": [masked] })).await;
    assert_eq!(
        reply["results"][0]["error"]["code"], "masked",
        "irreversible"
    );
    d.stop().await;
}

#[tokio::test]
async fn copy_and_type_changes() {
    let d = Daemon::start().await;
    d.post("/api/v1/groups", &d.root, json!({ "name": "crew" }))
        .await;
    let source = d.create(json!({
        "login": "template", "password": PASSWORD, "groups": ["crew"], "system_roles": ["auditor"],
        "frontend_language": "de", "origin": "HQ", "first_name": "Tem", "type": "ldap"
    })).await;
    let (status, copy) = d
        .post(
            &format!("/api/v1/users/{}/copy", id(&source)),
            &d.root,
            json!({ "login": "clone" }),
        )
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(
        (&copy["status"], &copy["groups"], &copy["system_roles"]),
        (&json!("pending"), &json!(["crew"]), &json!(["auditor"]))
    );
    assert_eq!(
        (
            &copy["frontend_language"],
            &copy["type"],
            &copy["first_name"]
        ),
        (&json!("de"), &json!("ldap"), &json!(null))
    );
    d.bulk("activate", json!({ "ids": [id(&copy)] })).await;
    assert_eq!(
        d.login("clone", PASSWORD).await.0,
        401,
        "a copy has no password"
    );
    let (status, reply) = d
        .post(
            &format!("/api/v1/users/{}/copy", id(&source)),
            &d.root,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("login"))
    );

    let (status, changed) = d
        .patch(
            &format!("/api/v1/users/{}", id(&source)),
            &d.root,
            json!({ "type": "local" }),
        )
        .await;
    assert_eq!((status, &changed["type"]), (200, &json!("local")));
    let (status, reply) = d
        .patch(
            &format!("/api/v1/users/{}", id(&source)),
            &d.root,
            json!({ "type": "system" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("type"))
    );
    d.stop().await;
}
