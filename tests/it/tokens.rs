//! Activation, password-reset and email-confirmation tokens: preconditions,
//! single use, expiry on the injected clock, revocation.

use crate::harness::{Daemon, PASSWORD, code, id};
use chrono::Duration;
use serde_json::json;

const NEW_PASSWORD: &str = "brand new passphrase";

#[tokio::test]
async fn activation_tokens() {
    let d = Daemon::start().await;
    let pending = id(&d
        .create(json!({ "login": "pend", "status": "pending" }))
        .await);
    let active = d.user("act").await;
    let (status, reply) = d
        .post(
            &format!("/api/v1/users/{active}/activation-token"),
            &d.root,
            json!({}),
        )
        .await;
    assert_eq!((status, code(&reply)), (409, "not_pending"));

    let path = format!("/api/v1/users/{pending}/activation-token");
    let (status, issued) = d.post(&path, &d.root, json!({})).await;
    assert_eq!(status, 201);
    let token = issued["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("gh_act_"));
    assert_eq!(
        issued["link"],
        format!("https://gatehouse.example.org/activate?token={token}")
    );
    assert_eq!(
        issued["expires_at"],
        json!(d.clock_now() + Duration::days(7))
    );

    let (status, reply) = d
        .public_post(
            "/api/v1/activate",
            json!({ "token": token, "password": "short" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("password"))
    );
    let (status, user) = d
        .public_post(
            "/api/v1/activate",
            json!({ "token": token, "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!((status, &user["status"]), (200, &json!("active")));
    assert_eq!(d.login("pend", NEW_PASSWORD).await.0, 200);
    let (status, reply) = d
        .public_post(
            "/api/v1/activate",
            json!({ "token": token, "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!((status, code(&reply)), (400, "invalid_token"), "single use");

    let late = id(&d
        .create(json!({ "login": "late", "status": "pending" }))
        .await);
    let (_, issued) = d
        .post(
            &format!("/api/v1/users/{late}/activation-token"),
            &d.root,
            json!({}),
        )
        .await;
    d.clock.advance(Duration::days(7) + Duration::seconds(1));
    let (status, reply) = d
        .public_post(
            "/api/v1/activate",
            json!({ "token": issued["token"], "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!((status, code(&reply)), (400, "invalid_token"), "expired");

    let (_, issued) = d
        .post(
            &format!("/api/v1/users/{late}/activation-token"),
            &d.root,
            json!({}),
        )
        .await;
    assert_eq!(
        d.delete(&format!("/api/v1/users/{late}/activation-token"), &d.root)
            .await
            .0,
        204
    );
    let (status, reply) = d
        .public_post(
            "/api/v1/activate",
            json!({ "token": issued["token"], "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!((status, code(&reply)), (400, "invalid_token"), "revoked");
    let (status, reply) = d
        .public_post(
            "/api/v1/activate",
            json!({ "token": "gh_act_made-up", "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!((status, code(&reply)), (400, "invalid_token"), "unknown");
    d.stop().await;
}

#[tokio::test]
async fn password_reset_tokens() {
    let d = Daemon::start().await;
    let uid = d.user("forgetful").await;
    let pending = id(&d
        .create(json!({ "login": "pend", "status": "pending" }))
        .await);
    let (status, reply) = d
        .post(
            &format!("/api/v1/users/{pending}/reset-token"),
            &d.root,
            json!({}),
        )
        .await;
    assert_eq!((status, code(&reply)), (409, "not_active"));

    let path = format!("/api/v1/users/{uid}/reset-token");
    let (_, first) = d.post(&path, &d.root, json!({})).await;
    let (_, second) = d.post(&path, &d.root, json!({})).await;
    assert!(
        second["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("gh_rst_"))
    );
    let (_, session) = d.login("forgetful", PASSWORD).await;
    let session = session["token"].as_str().expect("session").to_owned();
    let (status, _) = d
        .public_post(
            "/api/v1/password-reset",
            json!({ "token": first["token"], "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(status, 400, "a new reset token revokes the old one");
    let (status, _) = d
        .public_post(
            "/api/v1/password-reset",
            json!({ "token": second["token"], "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        d.get("/api/v1/me", &session).await.0,
        401,
        "a reset ends existing sessions"
    );
    assert_eq!(d.login("forgetful", PASSWORD).await.0, 401);
    assert_eq!(d.login("forgetful", NEW_PASSWORD).await.0, 200);
    let (status, _) = d
        .public_post(
            "/api/v1/password-reset",
            json!({ "token": second["token"], "password": "yet another phrase" }),
        )
        .await;
    assert_eq!(status, 400, "single use");

    let (_, third) = d.post(&path, &d.root, json!({})).await;
    d.clock.advance(Duration::minutes(61));
    let (status, _) = d
        .public_post(
            "/api/v1/password-reset",
            json!({ "token": third["token"], "password": "yet another phrase" }),
        )
        .await;
    assert_eq!(status, 400, "expired after an hour");
    d.stop().await;
}

#[tokio::test]
async fn email_confirmation() {
    let d = Daemon::start().await;
    let uid = id(&d.create(json!({ "login": "conf", "email": "conf@example.org", "password": PASSWORD, "require_email_confirmation": true })).await);
    assert_eq!(d.login("conf", PASSWORD).await.0, 401);
    let (status, issued) = d
        .post(
            &format!("/api/v1/users/{uid}/email-confirmation-token"),
            &d.root,
            json!({}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(issued["link"].as_str().is_some_and(|l| {
        l.starts_with("https://gatehouse.example.org/confirm-email?token=gh_eml_")
    }));
    let (status, user) = d
        .public_post("/api/v1/confirm-email", json!({ "token": issued["token"] }))
        .await;
    assert_eq!(
        (status, &user["email_confirmed_at"]),
        (200, &json!(d.clock_now()))
    );
    assert_eq!(d.login("conf", PASSWORD).await.0, 200);
    assert_eq!(
        d.public_post("/api/v1/confirm-email", json!({ "token": issued["token"] }))
            .await
            .0,
        400
    );
    d.stop().await;
}
