//! The web console in a real browser: Playwright (npm `playwright-core`,
//! under `target/web-peer`) driving Debian's chromium, both installed by
//! scripts/test.sh. Screenshots of the main pages land in
//! `target/screenshots/`. Also, with a plain HTTP client: forms without the
//! CSRF token are refused, and every page carries the security headers.

use crate::ftp::{curl, ftp_state};
use crate::harness::{Daemon, PASSWORD, id};
use serde_json::{Value, json};
use std::process::Stdio;

/// Runs `scenario` of `console.mjs` with `config`; returns what it saw.
pub async fn browser(scenario: &str, config: Value) -> Value {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let modules = std::path::Path::new(manifest).join("target/web-peer/node_modules");
    assert!(
        modules.join("playwright-core").is_dir(),
        "npm playwright-core is missing: run bash scripts/test.sh"
    );
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        format!("{manifest}/tests/it/peers/web/console.mjs"),
        dir.path().join("console.mjs"),
    )
    .expect("script");
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).expect("modules link");
    let screenshots = std::path::Path::new(manifest).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).expect("screenshot dir");
    let mut config = config;
    config["screenshots"] = json!(screenshots);
    config["chromium"] =
        json!(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let output = tokio::process::Command::new("node")
        .arg(dir.path().join("console.mjs"))
        .arg(scenario)
        .arg(config.to_string())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "{scenario}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(seen.get("error").is_none(), "{scenario}: {seen}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_approve_assign_and_give_ftp_in_the_browser() {
    let d = Daemon::start().await;
    d.create(json!({ "login": "ada", "password": PASSWORD, "system_roles": ["admin"] }))
        .await;
    let penny = id(&d
        .create(json!({ "login": "penny", "password": PASSWORD, "status": "pending" }))
        .await);
    let uploader = d.user("ulrich").await;
    let (_, project) = d
        .post("/api/v1/projects", &d.root, json!({ "name": "Survey" }))
        .await;
    let config = json!({
        "base": d.base, "admin": "ada", "password": PASSWORD,
        "pending": "penny", "uploader": "ulrich", "project": "Survey",
    });
    let seen = browser("approve", config.clone()).await;
    assert!(
        seen["pendingRow"]
            .as_str()
            .unwrap_or("")
            .contains("pending\t1"),
        "{seen}"
    );
    assert_eq!(seen["pendingListed"], 1, "{seen}");
    // ada's sign-in is the one bar of the chart.
    assert_eq!(seen["bars"], 1, "{seen}");
    assert!(
        seen["barTitle"]
            .as_str()
            .unwrap_or("")
            .ends_with("1 signed in, 0 refused"),
        "{seen}"
    );
    assert_eq!(seen["approve"], json!(["penny: done"]), "{seen}");
    assert_eq!(seen["approved"]["status"], "active");
    assert_eq!(seen["ftp"], json!(["ulrich: done"]));
    assert_eq!(seen["uploaderRow"]["ftp"], "0.0 of 5 MB");
    // The user page made a one-time reset link and shows the user's history.
    let link = seen["resetLink"].as_str().unwrap_or("");
    assert!(link.contains("token=gh_rst_"), "{seen}");
    assert!(
        seen["history"]
            .as_str()
            .unwrap_or("")
            .contains("user.activate"),
        "{seen}"
    );
    assert!(
        seen["audit"]
            .as_str()
            .unwrap_or("")
            .contains("ftp.create_account"),
        "{seen}"
    );
    // What the browser did is what the API sees.
    let (_, user) = d.get(&format!("/api/v1/users/{penny}"), &d.root).await;
    assert_eq!(user["status"], "active");
    let (_, members) = d
        .get(
            &format!("/api/v1/projects/{}/members", id(&project)),
            &d.root,
        )
        .await;
    assert_eq!(members["members"][penny.to_string()], "editor", "{members}");
    assert_eq!(ftp_state(&d, uploader).await["quota_mb"], 5);

    // An upload over FTPS, then the usage on the pages.
    let work = tempfile::tempdir().expect("dir");
    let file = work.path().join("counts.csv");
    std::fs::write(&file, vec![b'x'; 1_572_864]).expect("file");
    let run = curl(
        &d,
        "ulrich",
        PASSWORD,
        true,
        &["-T", file.to_str().expect("path"), "FTP/"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = browser("usage", config).await;
    assert_eq!(seen["uploaderRow"]["ftp"], "1.5 of 5 MB", "{seen}");
    assert_eq!(seen["meter"], "1.5", "{seen}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_enrol_totp_and_see_no_admin_page() {
    let d = Daemon::start().await;
    d.user("tessa").await;
    let config = |extra: Value| {
        let mut config = json!({ "base": d.base, "user": "tessa", "password": PASSWORD });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        config
    };
    let seen = browser("no-admin", config(json!({}))).await;
    assert_eq!(seen["landed"], "/account");
    assert_eq!(seen["adminStatus"], 403, "{seen}");
    assert!(
        seen["adminText"]
            .as_str()
            .unwrap_or("")
            .contains("for administrators")
    );
    assert_eq!(seen["navHasUsers"], 0);

    let now = d.clock_now().timestamp();
    let seen = browser("totp-enrol", config(json!({ "now": now }))).await;
    assert_eq!(
        (&seen["qr"], &seen["notice"]),
        (&json!(1), &json!("Two-factor sign-in is on.")),
        "{seen}"
    );
    assert_eq!(
        (&seen["afterSignOut"], &seen["accountAfterSignOut"]),
        (&json!("/login"), &json!("/login"))
    );
    // Signing out ended the session on the server, not only in the browser.
    let old = seen["session"]
        .as_str()
        .expect("the session cookie")
        .to_owned();
    assert_eq!(d.get("/api/v1/me", &old).await.0, 401);
    // The next sign-in a step later (a code works once).
    d.clock.advance(chrono::Duration::seconds(30));
    let later = d.clock_now().timestamp();
    let seen = browser(
        "totp-signin",
        config(json!({ "now": later, "secret": seen["secret"] })),
    )
    .await;
    assert!(
        seen["withoutCode"]
            .as_str()
            .unwrap_or("")
            .contains("Sign-in failed"),
        "{seen}"
    );
    assert_eq!(
        (&seen["withCode"], &seen["state"]),
        (&json!("/account"), &json!("on")),
        "{seen}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_keep_groups_and_organizations() {
    let d = Daemon::start().await;
    d.create(json!({ "login": "ada", "password": PASSWORD, "system_roles": ["admin"] }))
        .await;
    let (_, org) = d
        .post("/api/v1/organizations", &d.root, json!({ "code": "TRAMP" }))
        .await;
    let member = d.user("walker").await;
    let path = format!("/api/v1/users/{member}/organization");
    let body = json!({ "organization": id(&org) });
    let (status, _) = d
        .call(reqwest::Method::PUT, &path, Some(&d.root), Some(body))
        .await;
    assert_eq!(status, 204);
    let record = json!({ "kind": "hut", "name": "Hut", "source_organization": id(&org) });
    assert_eq!(d.post("/api/v1/resources", &d.root, record).await.0, 201);
    let config = json!({ "base": d.base, "admin": "ada", "password": PASSWORD, "doomed": "TRAMP" });
    let seen = browser("directory", config).await;
    assert_eq!(seen["groupAdded"], "group field-team added", "{seen}");
    assert!(seen["groups"].as_str().unwrap_or("").contains("field-team"));
    assert!(
        seen["organizations"].as_str().unwrap_or("").contains("DOC"),
        "{seen}"
    );
    assert_eq!(
        seen["plan"],
        "delete 1 record(s)\nclear the steward of 0 record(s)\nleave 1 member(s) without an organization",
        "{seen}"
    );
    assert_eq!(seen["deleted"], "organization TRAMP deleted");
    assert!(
        !seen["organizationsAfter"]
            .as_str()
            .unwrap_or("")
            .contains("TRAMP")
    );
    let (_, user) = d.get(&format!("/api/v1/users/{member}"), &d.root).await;
    assert_eq!(user["organization"], Value::Null);
    let (_, groups) = d.get("/api/v1/groups", &d.root).await;
    assert_eq!(groups["groups"][0]["name"], "field-team", "{groups}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changelist_filters_exports_imports_and_acts() {
    let d = Daemon::start().await;
    d.create(json!({ "login": "ada", "password": PASSWORD, "system_roles": ["admin"] }))
        .await;
    let (_, org) = d
        .post("/api/v1/organizations", &d.root, json!({ "code": "DOC" }))
        .await;
    let member = d.user("ranger").await;
    d.user("outsider").await;
    let path = format!("/api/v1/users/{member}/organization");
    let body = json!({ "organization": id(&org) });
    assert_eq!(
        d.call(reqwest::Method::PUT, &path, Some(&d.root), Some(body))
            .await
            .0,
        204
    );
    for group in ["rangers", "volunteers"] {
        assert_eq!(
            d.post("/api/v1/groups", &d.root, json!({ "name": group }))
                .await
                .0,
            201
        );
    }
    let csv = "user.login,user.email\nnewbie,newbie@example.org\n";
    let config = json!({
        "base": d.base, "admin": "ada", "password": PASSWORD,
        "organization": "DOC", "member": "ranger", "csv": csv,
    });
    let seen = browser("changelist", config).await;
    assert_eq!(seen["inOrganization"], 1, "{seen}");
    assert_eq!(
        (&seen["exportStatus"], &seen["exportHasMember"]),
        (&json!(200), &json!(true)),
        "{seen}"
    );
    assert_eq!(seen["grouped"], json!(["ranger: done"]), "{seen}");
    assert_eq!(seen["roles"], json!(["ranger: done"]), "{seen}");
    assert_eq!(seen["plan"], json!(["line 2: add newbie"]), "{seen}");
    assert_eq!(seen["applied"], "The plan was applied.");
    let (_, user) = d.get(&format!("/api/v1/users/{member}"), &d.root).await;
    assert_eq!(user["groups"], json!(["rangers", "volunteers"]), "{user}");
    assert_eq!(user["system_roles"], json!(["auditor"]));
    let (_, page) = d.get("/api/v1/users?q=newbie", &d.root).await;
    assert_eq!(page["users"].as_array().map(Vec::len), Some(1), "{page}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_edit_a_user_one_change_at_a_time() {
    let d = Daemon::start().await;
    d.create(json!({ "login": "ada", "password": PASSWORD, "system_roles": ["admin"] }))
        .await;
    let target = d.user("hemi").await;
    let (_, org) = d
        .post("/api/v1/organizations", &d.root, json!({ "code": "DOC" }))
        .await;
    assert_eq!(
        d.post("/api/v1/groups", &d.root, json!({ "name": "rangers" }))
            .await
            .0,
        201
    );
    let config = json!({
        "base": d.base, "admin": "ada", "password": PASSWORD, "id": target,
        "organization": "DOC", "group": "rangers",
    });
    let seen = browser("edit-user", config).await;
    assert_eq!(seen["profile"], "Done.", "{seen}");
    assert!(
        seen["groups"].as_str().unwrap_or("").contains("rangers"),
        "{seen}"
    );
    let (_, user) = d.get(&format!("/api/v1/users/{target}"), &d.root).await;
    assert_eq!(
        (&user["last_name"], &user["login_valid_to"]),
        (&json!("Whero"), &json!("2027-04-01T00:00:00Z")),
        "{user}"
    );
    assert_eq!(user["system_roles"], json!(["user_manager"]));
    assert_eq!(user["organization"], id(&org));
    assert_eq!(user["groups"], json!(["rangers"]));
    assert_eq!(user["email"], "hemi@example.org", "{user}");
    d.stop().await;
}

/// A session cookie for `login`, from the API's sign-in.
async fn session(d: &Daemon, login: &str) -> String {
    let (status, answer) = d.login(login, PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    answer["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let d = Daemon::start().await;
    d.create(json!({ "login": "ada", "password": PASSWORD, "system_roles": ["admin"] }))
        .await;
    let victim = id(&d
        .create(json!({ "login": "vic", "password": PASSWORD }))
        .await);
    let token = session(&d, "ada").await;
    // Both names: the cookie is `__Host-` prefixed when the daemon is on https.
    let cookie = format!("gh_session={token}; __Host-gh_session={token}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = |form: Vec<(&'static str, String)>| {
        client
            .post(format!("{}/admin/users", d.base))
            .header("cookie", cookie.clone())
            .form(&form)
            .send()
    };
    let mask = vec![
        ("ids", victim.to_string()),
        ("action", "mask".to_owned()),
        ("confirm", "yes".to_owned()),
    ];
    let answer = post(mask.clone()).await.expect("post");
    assert_eq!(answer.status(), 403, "no token");
    let mut forged = mask.clone();
    forged.push(("csrf", "0".repeat(64)));
    assert_eq!(
        post(forged).await.expect("post").status(),
        403,
        "a wrong token"
    );
    let (_, user) = d.get(&format!("/api/v1/users/{victim}"), &d.root).await;
    assert_eq!(user["masked_at"], Value::Null, "nothing happened");
    // The page's own token works; the headers hold on every page.
    let page = client
        .get(format!("{}/admin/users", d.base))
        .header("cookie", cookie.clone())
        .send()
        .await
        .expect("page");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_owned();
    let mut genuine = mask;
    genuine.push(("csrf", csrf));
    assert_eq!(post(genuine).await.expect("post").status(), 200);
    let (_, user) = d.get(&format!("/api/v1/users/{victim}"), &d.root).await;
    assert!(user["masked_at"].is_string(), "{user}");
    // Another site cannot post the sign-in form (login CSRF), whatever it sends.
    let answer = client
        .post(format!("{}/login", d.base))
        .header("origin", "https://evil.example")
        .form(&[("login", "ada"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 403);
    assert!(answer.headers().get("set-cookie").is_none());
    // The API never takes the cookie for a change.
    let answer = client
        .post(format!("{}/api/v1/users/actions/activate", d.base))
        .header("cookie", cookie.clone())
        .json(&json!({ "ids": [victim] }))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 401);
    d.stop().await;
}
