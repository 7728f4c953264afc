//! Enterprise LDAP against a real slapd: directory sign-in, automatic groups,
//! fail-closed outage, sync with its safety guards, TLS, and FTPS for directory users.

use crate::harness::{Daemon, PASSWORD, code, id};
use crate::slapd::{SUFFIX, Slapd, point_config_at};
use gatehouse::config::{Config, GroupMapping};
use serde_json::{Value, json};

const LDAP_PW: &str = "directory secret 1";

fn use_ldap(config: &mut Config, url: &str) {
    point_config_at(config, url);
    config.ldap.group_map = vec![
        GroupMapping {
            ldap_group: "staff".into(),
            group: "staff".into(),
        },
        GroupMapping {
            ldap_group: format!("cn=field,ou=groups,{SUFFIX}"),
            group: "field-team".into(),
        },
    ];
    config.ldap.sync_interval = std::time::Duration::from_secs(3600);
    config.ldap.max_missing_ratio = 0.5;
    config.ldap.page_size = 3;
}

fn seeded() -> Slapd {
    let slapd = Slapd::start();
    let mut ldif = String::new();
    for (uid, given) in [("ann", "Ann"), ("bo", "Bo"), ("cy", "Cy"), ("di", "Di")] {
        ldif += &Slapd::person(uid, given, "Smith", LDAP_PW);
    }
    ldif += &Slapd::group("staff", &["ann", "bo", "cy", "di"]);
    ldif += &Slapd::group("field", &["ann", "bo"]);
    slapd.ldif(&ldif);
    slapd
}

async fn login_as(d: &Daemon, login: &str, password: &str) -> (u16, Value) {
    d.login(login, password).await
}

async fn user_by_login(d: &Daemon, login: &str) -> Value {
    let (_, page) = d
        .get(
            &format!("/api/v1/users?q={login}&search_fields=login&archived=include"),
            &d.root,
        )
        .await;
    page["users"][0].clone()
}

#[tokio::test]
async fn first_sign_in_creates_the_account_and_groups_follow_the_directory() {
    let slapd = seeded();
    let d = Daemon::start_with(|c| use_ldap(c, &slapd.url)).await;
    let (status, session) = login_as(&d, "ann", LDAP_PW).await;
    assert_eq!(status, 200, "{session}");
    let user = &session["user"];
    assert_eq!(
        (&user["type"], &user["status"], &user["email"]),
        (&json!("ldap"), &json!("active"), &json!("ann@example.org"))
    );
    assert_eq!(
        (&user["first_name"], &user["company"]),
        (&json!("Ann"), &json!("Example Org"))
    );
    assert_eq!(user["automatic_groups"], json!(["field-team", "staff"]));
    assert_eq!(login_as(&d, "ann", "wrong password").await.0, 401);
    assert_eq!(login_as(&d, "nobody", LDAP_PW).await.0, 401);

    slapd.ldif(&format!("dn: cn=field,ou=groups,{SUFFIX}\nchangetype: modify\ndelete: member\nmember: uid=ann,ou=people,{SUFFIX}\n"));
    slapd.ldif(&format!("dn: uid=ann,ou=people,{SUFFIX}\nchangetype: modify\nreplace: givenName\ngivenName: Annika\n"));
    let (_, session) = login_as(&d, "ann", LDAP_PW).await;
    assert_eq!(
        session["user"]["automatic_groups"],
        json!(["staff"]),
        "a group left in the directory is removed"
    );
    assert_eq!(session["user"]["first_name"], "Annika");

    let uid = id(&session["user"]);
    let (_, groups) = d.get("/api/v1/groups", &d.root).await;
    assert!(
        groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "staff" && g["automatic"] == true)
    );
    let reply = d
        .bulk(
            "add-to-groups",
            json!({ "ids": [uid], "groups": ["field-team"] }),
        )
        .await;
    assert_eq!(reply["results"][0]["error"]["code"], "automatic_group");
    let (status, reply) = d.delete("/api/v1/groups/staff", &d.root).await;
    assert_eq!((status, code(&reply)), (409, "automatic_group"));
    d.stop().await;
}

#[tokio::test]
async fn directory_outage_fails_closed_for_directory_users_only() {
    let slapd = seeded();
    let d = Daemon::start_with(|c| use_ldap(c, &slapd.url)).await;
    d.user("localuser").await;
    assert_eq!(login_as(&d, "bo", LDAP_PW).await.0, 200);
    let before = user_by_login(&d, "bo").await;
    slapd.stop();
    assert_eq!(
        login_as(&d, "bo", LDAP_PW).await.0,
        401,
        "directory users are refused"
    );
    assert_eq!(
        login_as(&d, "localuser", PASSWORD).await.0,
        200,
        "local accounts keep working"
    );
    let after = user_by_login(&d, "bo").await;
    assert_eq!(before, after, "nothing in the store changes");
    let (_, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert!(
        report["aborted"]
            .as_str()
            .is_some_and(|r| r.contains("unreachable")),
        "{report}"
    );
    d.stop().await;
}

#[tokio::test]
async fn sync_creates_deactivates_reactivates_and_guards() {
    let slapd = seeded();
    let d = Daemon::start_with(|c| use_ldap(c, &slapd.url)).await;
    let (status, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["created"], &report["seen"], &report["aborted"]),
        (&json!(4), &json!(4), &json!(null))
    );
    let di = user_by_login(&d, "di").await;
    assert_eq!(di["automatic_groups"], json!(["staff"]));

    slapd.ldif(&format!(
        "dn: uid=di,ou=people,{SUFFIX}\nchangetype: delete\n"
    ));
    let (_, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert_eq!(report["deactivated"], 1, "{report}");
    assert_eq!(user_by_login(&d, "di").await["status"], "deactivated");
    assert_eq!(login_as(&d, "di", LDAP_PW).await.0, 401);

    slapd.ldif(&Slapd::person("di", "Di", "Smith", LDAP_PW));
    let (_, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert_eq!(report["reactivated"], 1, "{report}");
    assert_eq!(user_by_login(&d, "di").await["status"], "active");

    for uid in ["bo", "cy", "di"] {
        slapd.ldif(&format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nchangetype: delete\n"
        ));
    }
    let (_, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert!(
        report["aborted"]
            .as_str()
            .is_some_and(|r| r.contains("max_missing_ratio")),
        "{report}"
    );
    assert_eq!(
        user_by_login(&d, "bo").await["status"],
        "active",
        "a suspicious run changes nothing"
    );

    slapd.ldif(&format!("dn: uid=ann,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\nmail: ann.new@example.org\n"));
    let (_, report) = d
        .post("/api/v1/ldap/sync?mode=incremental", &d.root, json!({}))
        .await;
    assert_eq!(
        (&report["mode"], &report["aborted"]),
        (&json!("incremental"), &json!(null)),
        "{report}"
    );
    assert_eq!(
        user_by_login(&d, "ann").await["email"],
        "ann.new@example.org"
    );
    assert_eq!(
        report["deactivated"], 0,
        "incremental runs never deactivate"
    );

    let (_, status) = d.get("/api/v1/ldap/status", &d.root).await;
    assert_eq!(
        (&status["configured"], &status["running"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(status["last_run"]["mode"], "incremental");
    d.stop().await;
}

#[tokio::test]
async fn empty_directory_result_changes_nothing_and_local_types_are_left_alone() {
    let slapd = seeded();
    let d = Daemon::start_with(|c| use_ldap(c, &slapd.url)).await;
    d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    let ann = id(&user_by_login(&d, "ann").await);
    d.patch(
        &format!("/api/v1/users/{ann}"),
        &d.root,
        json!({ "type": "local" }),
    )
    .await;
    slapd.ldif(&format!(
        "dn: uid=ann,ou=people,{SUFFIX}\nchangetype: delete\n"
    ));
    let (_, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert_eq!(
        (&report["deactivated"], &report["aborted"]),
        (&json!(0), &json!(null)),
        "{report}"
    );
    assert_eq!(
        user_by_login(&d, "ann").await["status"],
        "active",
        "a user no longer of type ldap is not synced"
    );
    d.stop().await;

    let d = Daemon::start_with(|c| {
        use_ldap(c, &slapd.url);
        c.ldap.user_filter = "(uid=no-such-user-*)".into();
    })
    .await;
    d.user("bystander").await;
    let (_, report) = d.post("/api/v1/ldap/sync", &d.root, json!({})).await;
    assert!(
        report["aborted"]
            .as_str()
            .is_some_and(|r| r.contains("no users")),
        "{report}"
    );
    let (_, status) = d.get("/api/v1/ldap/status", &d.root).await;
    assert_eq!(status["last_run"]["aborted"], report["aborted"]);
    d.stop().await;
}

#[tokio::test]
async fn ldaps_and_starttls_with_a_private_ca() {
    let slapd = seeded();
    let ca = slapd.ca_file.clone();
    let d = Daemon::start_with(|c| {
        use_ldap(c, &slapd.ldaps_url);
        c.ldap.ca_file = Some(ca.clone());
    })
    .await;
    assert_eq!(login_as(&d, "cy", LDAP_PW).await.0, 200, "ldaps://");
    d.stop().await;
    let d = Daemon::start_with(|c| {
        use_ldap(c, &slapd.url);
        c.ldap.starttls = true;
        c.ldap.ca_file = Some(ca.clone());
    })
    .await;
    assert_eq!(login_as(&d, "cy", LDAP_PW).await.0, 200, "StartTLS");
    d.stop().await;
    let untrusted = tempfile::NamedTempFile::new().expect("temp file");
    gatehouse::tls::generate_self_signed(untrusted.path(), &untrusted.path().with_extension("key"))
        .expect("cert");
    let d = Daemon::start_with(|c| {
        use_ldap(c, &slapd.ldaps_url);
        c.ldap.ca_file = Some(untrusted.path().to_owned());
    })
    .await;
    assert_eq!(
        login_as(&d, "cy", LDAP_PW).await.0,
        401,
        "an untrusted server certificate is refused"
    );
    d.stop().await;
}

#[tokio::test]
async fn directory_user_uploads_over_ftps_through_a_mapped_group() {
    let slapd = seeded();
    let d = Daemon::start_with(|c| {
        use_ldap(c, &slapd.url);
        c.ftp.allowed_groups = vec!["staff".into()];
    })
    .await;
    let work = tempfile::tempdir().expect("work dir");
    let file = work.path().join("field-notes.txt");
    std::fs::write(&file, b"observations").expect("write");
    let output = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--ssl-reqd",
            "--user",
            &format!("bo:{LDAP_PW}"),
            "-T",
        ])
        .arg(&file)
        .arg(format!("ftp://{}/", d.ftp))
        .output()
        .await
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bo = user_by_login(&d, "bo").await;
    assert_eq!(
        (&bo["type"], &bo["ftp"]["enabled"], &bo["ftp"]["used_bytes"]),
        (&json!("ldap"), &json!(true), &json!(12))
    );
    let home = d.dir.path().join("data/ftp").join(bo["id"].to_string());
    assert!(
        home.join("field-notes.txt").exists(),
        "the home is named by id"
    );
    d.stop().await;
}
