//! Sign-in rules: every refusal answers alike, lockout, sessions, obligations, 2FA.

use crate::harness::{Daemon, PASSWORD, code, id};
use chrono::Duration;
use gatehouse::domain::totp;
use serde_json::{Value, json};

const REFUSAL: &str = "invalid login or password";

#[tokio::test]
async fn every_refusal_reason_answers_the_same() {
    let d = Daemon::start_with(|c| c.signin.max_failures = 100).await;
    let now = d.clock_now();
    let setups: [(&str, Value); 6] = [
        ("pending", json!({ "status": "pending" })),
        (
            "future",
            json!({ "login_valid_from": (now + Duration::days(1)).to_rfc3339() }),
        ),
        ("past", json!({ "login_valid_to": now.to_rfc3339() })),
        ("unconfirmed", json!({ "require_email_confirmation": true })),
        ("deact", json!({})),
        ("archived", json!({})),
    ];
    for (login, extra) in &setups {
        let mut body = json!({ "login": login, "email": format!("{login}@example.org"), "password": PASSWORD });
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        d.create(body).await;
    }
    let deact = d.get("/api/v1/users?q=deact", &d.root).await.1["users"][0]["id"]
        .as_u64()
        .expect("id");
    d.bulk("deactivate", json!({ "ids": [deact] })).await;
    let archived = d.get("/api/v1/users?q=archived", &d.root).await.1["users"][0]["id"]
        .as_u64()
        .expect("id");
    d.bulk("delete", json!({ "ids": [archived] })).await;
    let mut attempts: Vec<(String, String)> = setups
        .iter()
        .map(|(login, _)| (login.to_string(), PASSWORD.to_owned()))
        .collect();
    attempts.push(("nobody".into(), PASSWORD.into()));
    d.user("wrongpw").await;
    attempts.push(("wrongpw".into(), "not the password".into()));
    for (login, password) in attempts {
        let (status, reply) = d.login(&login, &password).await;
        assert_eq!(
            (status, code(&reply), reply["error"]["message"].as_str()),
            (401, "invalid_credentials", Some(REFUSAL)),
            "{login}"
        );
    }
    assert_eq!(
        d.login("wrongpw@EXAMPLE.org", PASSWORD).await.0,
        200,
        "email works as login"
    );
    d.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_out_login_and_address() {
    let d = Daemon::start().await;
    d.user("target").await;
    for _ in 0..5 {
        assert_eq!(d.login("target", "bad guess").await.0, 401);
    }
    let (status, reply) = d.login("target", PASSWORD).await;
    assert_eq!(
        (status, code(&reply)),
        (429, "too_many_attempts"),
        "even the right password waits"
    );
    d.clock.advance(Duration::minutes(16));
    let (status, session) = d.login("target", PASSWORD).await;
    assert_eq!(status, 200);
    let token = session["token"].as_str().expect("token");
    assert!(token.starts_with("gh_ses_"));
    let (_, me) = d.get("/api/v1/me", token).await;
    assert_eq!(me["last_active_at"], json!(d.clock_now()));
    d.clock.advance(Duration::hours(13));
    assert_eq!(d.get("/api/v1/me", token).await.0, 401, "sessions expire");
    d.stop().await;
}

/// The login and the email of one account share one budget: alternating
/// spellings gets no more guesses.
#[tokio::test]
async fn login_and_email_count_as_one_account() {
    let d = Daemon::start().await;
    d.user("twin").await;
    for n in 0..5 {
        let name = if n % 2 == 0 {
            "twin"
        } else {
            "TWIN@example.org"
        };
        assert_eq!(d.login(name, "bad guess").await.0, 401, "guess {n}");
    }
    for name in ["twin", "twin@example.org"] {
        assert_eq!(d.login(name, PASSWORD).await.0, 429, "{name}");
    }
    d.stop().await;
}

#[tokio::test]
async fn password_change_obligation_blocks_everything_else() {
    let d = Daemon::start().await;
    let uid = id(&d.create(json!({ "login": "fresh", "password": PASSWORD, "require_password_change": true, "system_roles": ["auditor"] })).await);
    let (_, session) = d.login("fresh", PASSWORD).await;
    let token = session["token"].as_str().expect("token");
    let (status, reply) = d.get("/api/v1/users", token).await;
    assert_eq!((status, code(&reply)), (403, "password_change_required"));
    for route in ["/api/v1/me", "/api/v1/me/projects"] {
        let (status, reply) = d.get(route, token).await;
        assert_eq!(
            (status, code(&reply)),
            (403, "password_change_required"),
            "{route}"
        );
    }
    let (status, reply) = d
        .post(
            "/api/v1/me/password",
            token,
            json!({ "old_password": "wrong", "new_password": "another sound phrase" }),
        )
        .await;
    assert_eq!((status, code(&reply)), (401, "invalid_credentials"));
    let (status, reply) = d
        .post(
            "/api/v1/me/password",
            token,
            json!({ "old_password": PASSWORD, "new_password": "fresh" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("password"))
    );
    let (status, _) = d
        .post(
            "/api/v1/me/password",
            token,
            json!({ "old_password": PASSWORD, "new_password": "another sound phrase" }),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        d.get("/api/v1/users", token).await.0,
        401,
        "changing the password ends every session"
    );
    assert_eq!(d.login("fresh", PASSWORD).await.0, 401);
    let (status, session) = d.login("fresh", "another sound phrase").await;
    assert_eq!(status, 200);
    let token = session["token"].as_str().expect("token");
    assert_eq!(d.get("/api/v1/users", token).await.0, 200);
    assert_eq!(d.get("/api/v1/me", token).await.0, 200);
    let (_, user) = d.get(&format!("/api/v1/users/{uid}"), &d.root).await;
    assert_eq!(user["require_password_change"], false);
    d.stop().await;
}

fn code_for(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("base32 secret");
    totp::code_at(&bytes, at.timestamp())
}

#[tokio::test]
async fn two_factor_enrolment_sign_in_and_reset() {
    let d = Daemon::start().await;
    let uid = d.user("otp").await;
    let (_, session) = d.login("otp", PASSWORD).await;
    let token = session["token"].as_str().expect("token").to_owned();
    let (status, enrolment) = d.post("/api/v1/me/2fa", &token, json!({})).await;
    assert_eq!(status, 201);
    let secret = enrolment["secret"].as_str().expect("secret").to_owned();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("otpauth://totp/gatehouse"))
    );
    let (status, reply) = d
        .post(
            "/api/v1/me/2fa/confirm",
            &token,
            json!({ "code": "000000" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("code"))
    );
    let (status, _) = d.post("/api/v1/me/2fa", &token, json!({})).await;
    assert_eq!(status, 201, "a fresh enrolment may start again");
    let secret = d.post("/api/v1/me/2fa", &token, json!({})).await.1["secret"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or(secret);
    let (status, me) = d
        .post(
            "/api/v1/me/2fa/confirm",
            &token,
            json!({ "code": code_for(&secret, d.clock_now()) }),
        )
        .await;
    assert_eq!((status, &me["two_factor_enabled"]), (200, &json!(true)));

    assert_eq!(d.login("otp", PASSWORD).await.0, 401, "code missing");
    let wrong = json!({ "login": "otp", "password": PASSWORD, "totp": "123456" });
    assert_eq!(d.public_post("/api/v1/login", wrong).await.0, 401);
    assert_eq!(
        d.public_post("/api/v1/login", json!({ "login": "otp", "password": PASSWORD, "totp": code_for(&secret, d.clock_now()) })).await.0,
        401,
        "the code that confirmed enrolment is used up"
    );
    d.clock.advance(Duration::seconds(30));
    let right =
        json!({ "login": "otp", "password": PASSWORD, "totp": code_for(&secret, d.clock_now()) });
    assert_eq!(d.public_post("/api/v1/login", right.clone()).await.0, 200);
    assert_eq!(
        d.public_post("/api/v1/login", right).await.0,
        401,
        "a code works once, even within its 30 seconds"
    );
    let store = d.stored_bytes();
    assert!(!store.is_empty());
    assert!(
        !store.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the TOTP seed is sealed at rest"
    );

    let (status, user) = d.delete(&format!("/api/v1/users/{uid}/2fa"), &d.root).await;
    assert_eq!((status, &user["two_factor_enabled"]), (200, &json!(false)));
    d.patch(
        &format!("/api/v1/users/{uid}"),
        &d.root,
        json!({ "require_2fa": true }),
    )
    .await;
    let (status, session) = d.login("otp", PASSWORD).await;
    assert_eq!(status, 200, "sign-in works, then enrolment is forced");
    let token = session["token"].as_str().expect("token");
    let (status, reply) = d.post("/api/v1/me/api-token", token, json!({})).await;
    assert_eq!(
        (status, code(&reply)),
        (403, "two_factor_enrolment_required")
    );
    let secret = d.post("/api/v1/me/2fa", token, json!({})).await.1["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    d.post(
        "/api/v1/me/2fa/confirm",
        token,
        json!({ "code": code_for(&secret, d.clock_now()) }),
    )
    .await;
    let (status, issued) = d.post("/api/v1/me/api-token", token, json!({})).await;
    assert_eq!(status, 201);
    let api = issued["token"].as_str().expect("api token");
    assert_eq!(
        d.get("/api/v1/me", api).await.1["login"],
        "otp",
        "an API token acts as its user"
    );
    d.clock.advance(Duration::seconds(30));
    let (status, reply) = d
        .call(
            reqwest::Method::DELETE,
            "/api/v1/me/2fa",
            Some(api),
            Some(json!({ "code": code_for(&secret, d.clock_now()) })),
        )
        .await;
    assert_eq!((status, code(&reply)), (409, "2fa_required"));
    d.stop().await;
}

/// A client whose requests come from `address` (any 127.x.y.z works on loopback).
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .build()
        .expect("client")
}

async fn login_from(base: &str, client: &reqwest::Client, password: &str) -> u16 {
    client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "login": "victim", "password": password }))
        .send()
        .await
        .expect("login request")
        .status()
        .as_u16()
}

/// 100 concurrent guesses from one address: at most the limit (5) reach the
/// password check, the right password is refused inside the burst, and the
/// owner signing in from another address still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_gets_at_most_the_limit_and_cannot_lock_out_the_owner() {
    let d = Daemon::start().await;
    d.user("victim").await;
    let attacker = client_from([127, 0, 0, 1]);
    let guesses: Vec<_> = (0..100)
        .map(|n| {
            let (base, attacker) = (d.base.clone(), attacker.clone());
            tokio::spawn(async move { login_from(&base, &attacker, &format!("guess {n}")).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("guess"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 5, "guesses that reached the password check");
    assert_eq!(checked + locked, 100, "{statuses:?}");
    assert_eq!(
        login_from(&d.base, &attacker, PASSWORD).await,
        429,
        "the right password from the locked address waits too"
    );
    let owner = client_from([127, 0, 0, 2]);
    assert_eq!(
        login_from(&d.base, &owner, PASSWORD).await,
        200,
        "the owner elsewhere gets in"
    );
    d.stop().await;
}
