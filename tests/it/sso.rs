//! Single sign-on through a real OpenID Connect provider (npm oidc-provider),
//! the whole code flow over HTTP: accounts and automatic groups both ways,
//! the browser and JSON answers, each refusal (changing nothing), and an SSO
//! user uploading over FTPS with an API token.

use crate::harness::{Daemon, PASSWORD, id};
use crate::oidc::{CLIENT_ID, CLIENT_SECRET, Idp, walk};
use crate::smtp::free_port;
use serde_json::{Value, json};

fn ines(groups: &[&str]) -> Value {
    json!({
        "preferred_username": "ines", "email": "ines@example.org", "email_verified": true,
        "given_name": "Ines", "family_name": "Vidal", "groups": groups,
    })
}

/// A daemon on a known port (its public URL is where the provider sends
/// users back) and a provider with `accounts`.
async fn with_provider(
    accounts: Value,
    adjust: impl FnOnce(&mut gatehouse::config::SsoProviderConfig),
) -> (Daemon, Idp) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&format!("{base}/sso/idp/callback"), &accounts).await;
    let mut provider: gatehouse::config::SsoProviderConfig = toml::from_str(&format!(
        "name = \"idp\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         groups_claim = \"groups\"\nscopes = [\"email\", \"profile\", \"groups\"]\nallowed_groups = [\"staff\", \"guests\"]\nlink_by_email = true\n\
         [[group_map]]\nclaim = \"staff\"\ngroup = \"field-staff\"\n[[group_map]]\nclaim = \"field\"\ngroup = \"field-team\"\n",
        idp.issuer
    ))
    .expect("provider config");
    adjust(&mut provider);
    let daemon = Daemon::start_with(move |config| {
        config.http.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        config.http.public_url = base;
        config.sso.providers = vec![provider];
    })
    .await;
    (daemon, idp)
}

/// Requests `url` as an API client (JSON wanted); status and body.
async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let reply = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    (
        reply.status().as_u16(),
        reply.json().await.unwrap_or(Value::Null),
    )
}

fn groups_of(user: &Value) -> Vec<String> {
    user["automatic_groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_creates_the_account_and_groups_follow_the_claim() {
    let (daemon, idp) =
        with_provider(json!({ "ines-sub": ines(&["staff", "field"]) }), |_| {}).await;

    let flow = walk(&daemon.base, "response=json", "ines-sub").await;
    let (status, session) = flow.finish_json().await;
    assert_eq!(status, 200, "{session}");
    let user = &session["user"];
    assert_eq!(
        (user["type"].as_str(), user["login"].as_str()),
        (Some("sso"), Some("ines"))
    );
    assert_eq!(user["first_name"], "Ines");
    assert_eq!(groups_of(user), ["field-staff", "field-team"]);
    let token = session["token"].as_str().expect("session token");
    let (status, me) = daemon.get("/api/v1/me", token).await;
    assert_eq!((status, me["login"].as_str()), (200, Some("ines")));
    let (_, groups) = daemon.get("/api/v1/groups", &daemon.root).await;
    let automatic = groups["groups"]
        .as_array()
        .map(|g| g.iter().filter(|g| g["automatic"] == true).count());
    assert_eq!(automatic, Some(2), "{groups}");

    // The provider drops a group: the next sign-in drops it here too.
    idp.set_account("ines-sub", &ines(&["staff"])).await;
    let (status, again) = walk(&daemon.base, "response=json", "ines-sub")
        .await
        .finish_json()
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["user"]["id"], user["id"], "the same account");
    assert_eq!(groups_of(&again["user"]), ["field-staff"]);

    // A browser gets a session cookie and goes back where it started, on our origin only.
    for (return_to, expected) in [
        ("/after/sign-in", "/after/sign-in"),
        ("//evil.example/", "/"),
    ] {
        let flow = walk(&daemon.base, &format!("return_to={return_to}"), "ines-sub").await;
        let response = flow
            .client
            .get(&flow.callback)
            .send()
            .await
            .expect("callback");
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], expected);
        let cookies: Vec<&str> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let session = cookies
            .iter()
            .find(|c| c.starts_with("gh_session=gh_ses_"))
            .expect("a session cookie");
        assert!(
            session.contains("HttpOnly") && session.contains("SameSite=Lax"),
            "{session}"
        );
        // The cookie reads (GET), it never changes anything.
        let me = flow
            .client
            .get(format!("{}/api/v1/me", daemon.base))
            .send()
            .await
            .expect("me");
        assert_eq!(me.status(), 200);
        let change = flow
            .client
            .post(format!("{}/api/v1/me/api-token", daemon.base))
            .json(&json!({}))
            .send()
            .await
            .expect("post");
        assert_eq!(change.status(), 401, "a cookie alone authorizes no change");
    }

    let (status, listed) = daemon.get("/api/v1/sso/providers", &daemon.root).await;
    assert_eq!(status, 200);
    let provider = &listed["providers"][0];
    assert_eq!(
        provider["login_url"],
        format!("{}/sso/idp/login", daemon.base)
    );
    assert_eq!(
        provider["logout_url"],
        format!("{}/session/end", idp.issuer)
    );
    daemon.stop().await;
}

/// Users and audit entries, to show a refusal changed nothing.
async fn footprint(daemon: &Daemon) -> (usize, Value) {
    let (_, users) = daemon.get("/api/v1/users?limit=1000", &daemon.root).await;
    let (_, audit) = daemon.get("/api/v1/audit?limit=1", &daemon.root).await;
    (
        users["users"].as_array().map_or(0, Vec::len),
        audit["entries"][0]["id"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_gets_one_neutral_answer_and_changes_nothing() {
    let accounts = json!({
        "ines-sub": ines(&["staff"]),
        "guest-sub": { "preferred_username": "gail", "groups": ["outsiders"] },
        "aud-sub": { "preferred_username": "aud", "groups": ["staff"], "_tamper": "audience" },
        "exp-sub": { "preferred_username": "exp", "groups": ["staff"], "_tamper": "expired" },
        "iss-sub": { "preferred_username": "iss", "groups": ["staff"], "_tamper": "issuer" },
        "nonce-sub": { "preferred_username": "nonce", "groups": ["staff"], "_tamper": "nonce" },
        "hmac-sub": { "preferred_username": "hmac", "groups": ["staff"], "_tamper": "hs256" },
        "none-sub": { "preferred_username": "unsigned", "groups": ["staff"], "_tamper": "none" },
        "shadow-sub": { "preferred_username": "lena@example.org", "groups": ["staff"] },
        "nogroups-sub": { "preferred_username": "nogroups" },
        "lena-sub": { "preferred_username": "lena-sso", "email": "lena@example.org", "email_verified": false, "groups": ["staff"] },
        "ada-sub": { "preferred_username": "ada-sso", "email": "ada@example.org", "email_verified": true, "groups": ["staff"] },
    });
    let (daemon, mut idp) = with_provider(accounts, |_| {}).await;
    let lena = daemon.user("lena").await;
    daemon.create(json!({ "login": "ada", "email": "ada@example.org", "password": PASSWORD, "system_roles": ["admin"] })).await;
    let (status, first) = walk(&daemon.base, "response=json", "ines-sub")
        .await
        .finish_json()
        .await;
    assert_eq!(status, 200, "{first}");
    let before = footprint(&daemon).await;

    let mut refusals: Vec<(&str, u16, Value)> = Vec::new();
    for (what, sub) in [
        ("not in the allowed groups", "guest-sub"),
        ("no groups claim at all", "nogroups-sub"),
        ("wrong audience", "aud-sub"),
        ("expired ID token", "exp-sub"),
        ("another issuer", "iss-sub"),
        ("another nonce", "nonce-sub"),
        ("HMAC with the client secret", "hmac-sub"),
        ("unsigned", "none-sub"),
        ("a login spelled like someone's email", "shadow-sub"),
        ("unverified email of an existing account", "lena-sub"),
        ("verified email of an admin", "ada-sub"),
    ] {
        let (status, body) = walk(&daemon.base, "response=json", sub)
            .await
            .finish_json()
            .await;
        refusals.push((what, status, body));
    }
    // The same callback twice: the state (and the code) work once.
    let flow = walk(&daemon.base, "response=json", "ines-sub").await;
    assert_eq!(flow.finish_json().await.0, 200);
    let (status, body) = flow.finish_json().await;
    refusals.push(("reused state and code", status, body));
    // Eight copies of one callback racing: exactly one signs in.
    let flow = walk(&daemon.base, "response=json", "ines-sub").await;
    let racing: Vec<_> = (0..8).map(|_| flow.finish_json()).collect();
    let answers = futures_util::future::join_all(racing).await;
    let signed_in = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(signed_in, 1, "{answers:?}");
    let raced = answers
        .into_iter()
        .find(|(status, _)| *status != 200)
        .expect("a refusal");
    refusals.push(("the same state racing", raced.0, raced.1));
    // A callback in another browser than the one that started the sign-in.
    let flow = walk(&daemon.base, "response=json", "ines-sub").await;
    let stranger = reqwest::Client::new();
    let (status, body) = get_json(&stranger, &flow.callback).await;
    refusals.push(("another browser", status, body));
    let made_up = format!("{}/sso/idp/callback?code=x&state=made-up", daemon.base);
    let (status, body) = get_json(&stranger, &made_up).await;
    refusals.push(("made-up state", status, body));
    // Browsers get the same refusal as a page.
    let page = stranger.get(&made_up).send().await.expect("callback");
    assert_eq!(page.status(), 401);
    assert!(
        page.text()
            .await
            .unwrap_or_default()
            .contains("Sign-in failed")
    );
    // The provider goes down between the login and the callback.
    let flow = walk(&daemon.base, "response=json", "ines-sub").await;
    idp.stop().await;
    let (status, body) = flow.finish_json().await;
    refusals.push(("provider down", status, body));

    // A provider that cannot be reached at all: the login itself is refused.
    let dead_issuer = format!("http://127.0.0.1:{}", free_port());
    let unreachable = Daemon::start_with(move |config| {
        config.sso.providers = vec![
            toml::from_str(&format!(
                "name = \"idp\"\nissuer = \"{dead_issuer}\"\nclient_id = \"x\""
            ))
            .expect("provider config"),
        ];
    })
    .await;
    let login = format!("{}/sso/idp/login", unreachable.base);
    let (status, body) = get_json(&stranger, &login).await;
    refusals.push(("provider unreachable", status, body));
    let (status, _) = unreachable
        .call(reqwest::Method::GET, "/sso/nobody/login", None, None)
        .await;
    assert_eq!(status, 404, "an unknown provider is simply not found");
    unreachable.stop().await;

    let neutral = json!({ "error": { "code": "sso_failed", "message": "single sign-on did not succeed; try again or ask your administrator" } });
    for (what, status, body) in &refusals {
        assert_eq!((*status, body), (401, &neutral), "{what}");
    }
    // The two successful sign-ins above wrote their sessions; nothing else moved.
    let after = footprint(&daemon).await;
    assert_eq!(after.0, before.0, "no account was created");
    let (_, lena_now) = daemon
        .get(&format!("/api/v1/users/{lena}"), &daemon.root)
        .await;
    assert!(
        lena_now["automatic_groups"].is_null() || groups_of(&lena_now).is_empty(),
        "{lena_now}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_accounts_and_links_follow_the_sign_in_rule() {
    let accounts = json!({
        "ines-sub": ines(&["staff"]),
        "lena-sub": { "preferred_username": "lena-sso", "email": "lena@example.org", "email_verified": true, "groups": ["staff"] },
    });
    let (daemon, idp) = with_provider(accounts, |provider| provider.auto_create = false).await;
    // No account and auto_create off: refused.
    assert_eq!(
        walk(&daemon.base, "response=json", "ines-sub")
            .await
            .finish_json()
            .await
            .0,
        401
    );
    // A verified email links to the local account holding it, once that
    // account's own address is confirmed (and never to an admin).
    let lena = daemon.user("lena").await;
    assert_eq!(
        walk(&daemon.base, "response=json", "lena-sub")
            .await
            .finish_json()
            .await
            .0,
        401,
        "unconfirmed"
    );
    let (status, issued) = daemon
        .post(
            &format!("/api/v1/users/{lena}/email-confirmation-token"),
            &daemon.root,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let (status, _) = daemon
        .public_post("/api/v1/confirm-email", json!({ "token": issued["token"] }))
        .await;
    assert_eq!(status, 200);
    let (status, session) = walk(&daemon.base, "response=json", "lena-sub")
        .await
        .finish_json()
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["id"], lena);
    assert_eq!(groups_of(&session["user"]), ["field-staff"]);
    let (_, audit) = daemon.get("/api/v1/audit?limit=20", &daemon.root).await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "sso.link_user" && e["target"] == lena)
    );

    // An account that must use its own second factor cannot take this door.
    let (status, _) = daemon
        .patch(
            &format!("/api/v1/users/{lena}"),
            &daemon.root,
            json!({ "require_2fa": true }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        walk(&daemon.base, "response=json", "lena-sub")
            .await
            .finish_json()
            .await
            .0,
        401,
        "2FA required"
    );
    let (status, _) = daemon
        .patch(
            &format!("/api/v1/users/{lena}"),
            &daemon.root,
            json!({ "require_2fa": false }),
        )
        .await;
    assert_eq!(status, 200);

    // Deactivated: refused, and the provider's new claims are not applied.
    daemon.bulk("deactivate", json!({ "ids": [lena] })).await;
    idp.set_account("lena-sub", &json!({ "preferred_username": "lena-sso", "email": "lena@example.org", "email_verified": true, "groups": ["staff", "field"] })).await;
    assert_eq!(
        walk(&daemon.base, "response=json", "lena-sub")
            .await
            .finish_json()
            .await
            .0,
        401
    );
    let (_, user) = daemon
        .get(&format!("/api/v1/users/{lena}"), &daemon.root)
        .await;
    assert_eq!(groups_of(&user), ["field-staff"], "unchanged while refused");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_user_uploads_over_ftps_with_an_api_token() {
    let (daemon, _idp) = with_provider(json!({ "ines-sub": ines(&["staff"]) }), |_| {}).await;
    let (status, session) = walk(&daemon.base, "response=json", "ines-sub")
        .await
        .finish_json()
        .await;
    assert_eq!(status, 200, "{session}");
    let uid = id(&session["user"]);
    daemon
        .bulk(
            "create-ftp-accounts",
            json!({ "ids": [uid], "quota_mb": 10 }),
        )
        .await;
    let token = session["token"].as_str().expect("token");
    let (status, issued) = daemon.post("/api/v1/me/api-token", token, json!({})).await;
    assert_eq!(status, 201, "{issued}");
    let api_token = issued["token"].as_str().expect("api token");

    let dir = tempfile::tempdir().expect("dir");
    let file = crate::ftp::write_file(dir.path(), "trap-7.jpg", 4096);
    let path = file.to_str().expect("path");
    let upload = crate::ftp::curl(
        &daemon,
        "ines",
        api_token,
        true,
        &["-T", path, "FTP/trap-7.jpg"],
    )
    .await;
    assert_eq!(upload.code, 0, "{}", upload.stderr);
    let stored = crate::ftp::home(&daemon, uid).join("trap-7.jpg");
    assert_eq!(std::fs::metadata(stored).map(|m| m.len()).ok(), Some(4096));
    // The session token is no FTP password, nor is anything else.
    let refused = crate::ftp::curl(&daemon, "ines", token, true, &["FTP/"]).await;
    assert_ne!(refused.code, 0);
    daemon.stop().await;
}
