//! CSV exchange of users against the running daemon: a round trip that gives
//! back exactly the edited file, a file in the source system's layout, every
//! kind of bad input refused by line and column with nothing applied, delete
//! mode, formula escaping, passwords, and the offline CLI.

use crate::harness::{Daemon, id};
use serde_json::{Value, json};

/// Raw request as root: status and body text.
async fn raw(d: &Daemon, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", d.base))
        .bearer_auth(&d.root)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn export(d: &Daemon, query: &str) -> String {
    let (status, body) = raw(
        d,
        reqwest::Method::GET,
        &format!("/api/v1/users.csv{query}"),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

pub async fn import(
    d: &Daemon,
    mode: &str,
    dry_run: bool,
    csv: impl Into<Vec<u8>>,
) -> (u16, Value) {
    let path = format!("/api/v1/users/import?mode={mode}&dry_run={dry_run}");
    let (status, body) = raw(d, reqwest::Method::POST, &path, csv.into()).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Parses CSV text into rows of cells.
fn rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv row").iter().map(str::to_owned).collect())
        .collect()
}

fn to_csv(rows: &[Vec<String>]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(row).expect("csv write");
    }
    String::from_utf8(writer.into_inner().expect("csv bytes")).expect("utf-8")
}

fn column(rows: &[Vec<String>], name: &str) -> usize {
    rows[0]
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("column {name}"))
}

/// Five users with assorted fields; returns their ids.
async fn seed(d: &Daemon) -> Vec<u64> {
    d.post("/api/v1/groups", &d.root, json!({ "name": "field-team" }))
        .await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let user = d
            .create(json!({
                "login": format!("csv{n}"),
                "status": "active",
                "email": format!("csv{n}@example.org"),
                "first_name": format!("First{n}"),
                "company": if n == 0 { "=HYPERLINK(\"http://evil\")" } else { "Acme, Inc." },
                "phone": "+49 30 1234",
                "address": { "street": "Main St", "town": "Berlin", "country": "DE" },
                "database_languages": ["de-DE", "en-US"],
                "custom_data": { "plugin": { "n": n } },
                "remarks": "line one\nline two",
                "groups": if n % 2 == 0 { json!(["field-team"]) } else { json!([]) },
            }))
            .await;
        ids.push(id(&user));
    }
    ids
}

#[tokio::test]
async fn export_edit_three_cells_import_export_gives_the_edited_file_back() {
    let d = Daemon::start().await;
    let ids = seed(&d).await;
    let exported = export(&d, "?q=csv").await;
    let mut table = rows(&exported);
    assert_eq!(table.len(), 6, "{exported}");
    let company = column(&table, "user.company");
    assert!(
        table[1][company].starts_with("'="),
        "formula escaped: {}",
        table[1][company]
    );
    assert!(!exported.contains("argon2"), "no hash in an export");
    let (phone, town, custom, version) = (
        column(&table, "user.phone"),
        column(&table, "user.town"),
        column(&table, "user.custom_data"),
        column(&table, "user._version"),
    );
    // Edited as the file shows it: a cell a spreadsheet would run keeps its `'`.
    table[1][phone] = "'+1 555 0100".into();
    table[2][town] = "Potsdam".into();
    table[3][custom] = r#"{"plugin":{"n":99}}"#.into();
    let edited = to_csv(&table);

    let (status, plan) = import(&d, "update", true, edited.clone()).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["applied"], false);
    let updates = plan["update"].as_array().expect("updates");
    let changed: Vec<usize> = updates
        .iter()
        .map(|u| u["changes"].as_object().map_or(0, |c| c.len()))
        .collect();
    assert_eq!(changed, vec![1, 1, 1, 0, 0], "{plan}");
    assert_eq!(
        updates[0]["changes"]["user.phone"],
        json!({ "from": "+49 30 1234", "to": "+1 555 0100" })
    );
    assert_eq!(updates[1]["changes"]["user.town"]["to"], "Potsdam");

    let (status, report) = import(&d, "update", false, edited.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], true);
    let again = rows(&export(&d, "?q=csv").await);
    let expected = rows(&edited);
    for (row, (got, want)) in again.iter().zip(&expected).enumerate() {
        for (cell, (g, w)) in got.iter().zip(want).enumerate() {
            if cell == version && row > 0 {
                let bump = if (1..=3).contains(&row) { 1 } else { 0 };
                let (g, w): (u64, u64) = (g.parse().expect("version"), w.parse().expect("version"));
                assert_eq!(g, w + bump, "row {row}: version rises by one per change");
            } else {
                assert_eq!(g, w, "row {row}, column {}", expected[0][cell]);
            }
        }
    }
    let (_, user) = d.get(&format!("/api/v1/users/{}", ids[0]), &d.root).await;
    assert_eq!(user["phone"], "+1 555 0100");
    assert_eq!(
        user["company"], "=HYPERLINK(\"http://evil\")",
        "unescaped on the way in"
    );
}

/// Every column of the source system, `;`-separated, with a BOM.
fn source_layout_file() -> Vec<u8> {
    let header = "ID;user._version;user.login;user.type;user.frontend_language;user.database_languages;\
user.search_languages;user.frontend_prefs;user.custom_data;user.first_name;user.last_name;user.displayname;\
user.company;user.department;user.phone;user.remarks;user.address_supplement;user.street;user.house_number;\
user.postal_code;user.town;user.state;user.country;user.login_disabled;user.login_valid_from;user.login_valid_to;\
user.require_password_change;user.mail_schedule;user.email;user.confirm_email;user.confirm_email_sent_at;\
user.welcome_email;user._generated_displayname;user.picture;_groups#find;_groups#easydb;_password";
    let rows = [
        ";;maria;local;de-DE;de-DE,en-US;de-DE;{\"theme\":\"dark\"};{\"x\":1};Maria;Muster;;Museum;Archive;\
+49 40 5;kept;2. OG;Hafenstr.;12;20457;Hamburg;HH;DE;false;2026-01-01;2027-01-01T00:00:00Z;false;\
{\"preset\":\"daily\",\"hour\":7};maria@example.org;true;;true;Maria Muster;{\"url\":\"m.jpg\"};field-team;field-team;\
a long enough passphrase",
        ";;otto;local;;;;;;Otto;;;;;;;;;;;;;;true;;;;;otto@example.org;false;;false;Otto;;;;",
    ];
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for row in rows {
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(row.as_bytes());
    }
    bytes
}

#[tokio::test]
async fn a_file_in_the_source_systems_layout_imports_unchanged() {
    let d = Daemon::start().await;
    d.post("/api/v1/groups", &d.root, json!({ "name": "field-team" }))
        .await;
    let (status, report) = import(&d, "add", false, source_layout_file()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["add"].as_array().map(Vec::len), Some(2), "{report}");
    assert!(
        !report.to_string().contains("passphrase"),
        "a password is never echoed"
    );
    let (_, list) = d.get("/api/v1/users?q=maria", &d.root).await;
    let maria = &list["users"][0];
    assert_eq!(maria["address"]["street"], "Hafenstr.");
    assert_eq!(maria["database_languages"], json!(["de-DE", "en-US"]));
    assert_eq!(maria["frontend_prefs"], json!({ "theme": "dark" }));
    assert_eq!(maria["mail_schedule"]["preset"], "daily");
    assert_eq!(maria["groups"], json!(["field-team"]));
    assert_eq!(maria["login_valid_from"], "2026-01-01T00:00:00Z");
    assert_eq!(
        (&maria["confirm_email"], &maria["welcome_email"]),
        (&json!(true), &json!(true))
    );
    let (_, otto) = d.get("/api/v1/users?q=otto", &d.root).await;
    assert_eq!(
        otto["users"][0]["status"], "deactivated",
        "login_disabled = true"
    );
    let (status, _) = d.login("maria", "a long enough passphrase").await;
    assert_eq!(status, 200, "the imported password signs in");
}

/// Mode, what is wrong, the file, the line and column the error must name.
type BadCase = (
    &'static str,
    &'static str,
    Vec<u8>,
    u64,
    Option<&'static str>,
);

#[tokio::test]
async fn bad_input_names_line_and_column_and_applies_nothing() {
    let d = Daemon::start().await;
    let ids = seed(&d).await;
    d.post("/api/v1/groups", &d.root, json!({ "name": "auto" }))
        .await;
    let before = export(&d, "").await;
    let cases: Vec<BadCase> = vec![
        (
            "add",
            "latin-1",
            b"user.login,user.last_name\nok1,fine\nok2,M\xfcller\n".to_vec(),
            3,
            None,
        ),
        (
            "add",
            "no login column",
            b"user.first_name\nAnn\n".to_vec(),
            1,
            None,
        ),
        (
            "add",
            "unknown column",
            b"user.login,user.shoe_size\nann,42\n".to_vec(),
            1,
            Some("user.shoe_size"),
        ),
        (
            "add",
            "duplicate in file",
            b"user.login\nann\nbob\nANN\n".to_vec(),
            4,
            Some("user.login"),
        ),
        (
            "add",
            "taken in store",
            b"user.login,user.email\nnewbie,csv1@example.org\n".to_vec(),
            2,
            Some("user.email"),
        ),
        (
            "add",
            "unknown group",
            b"user.login,_groups#find\nann,nope\n".to_vec(),
            2,
            Some("_groups#find"),
        ),
        (
            "add",
            "bad json",
            b"user.login,user.custom_data\nann,{oops\n".to_vec(),
            2,
            Some("user.custom_data"),
        ),
        (
            "add",
            "bad date",
            b"user.login,user.login_valid_to\nann,31.12.2026\n".to_vec(),
            2,
            Some("user.login_valid_to"),
        ),
        (
            "add",
            "weak password",
            b"user.login,_password\nann,short\n".to_vec(),
            2,
            Some("_password"),
        ),
        (
            "update",
            "protected user",
            b"ID,user.phone\n1,123\n".to_vec(),
            2,
            Some("ID"),
        ),
        (
            "update",
            "unknown user",
            b"ID,user.phone\n999999,123\n".to_vec(),
            2,
            Some("ID"),
        ),
        (
            "delete",
            "root by login",
            b"user.login\nroot\n".to_vec(),
            2,
            Some("ID"),
        ),
        (
            "add",
            "ragged row",
            b"user.login,user.phone\nann,1\nbob\n".to_vec(),
            3,
            None,
        ),
    ];
    for (mode, what, csv, line, column) in cases {
        let (status, body) = import(&d, mode, false, csv).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_csv", "{what}: {body}");
        assert_eq!(body["error"]["line"], line, "{what}: {body}");
        if let Some(column) = column {
            assert_eq!(body["error"]["field"], column, "{what}: {body}");
        }
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nothing was imported")),
            "{what}"
        );
    }
    // A file of good rows and one bad row adds none of them.
    let (status, _) = import(
        &d,
        "add",
        false,
        b"user.login,user.email\ngood1,g1@x.org\ngood2,bad-email\ngood3,g3@x.org\n".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(export(&d, "").await, before, "nothing changed");

    // A row changed since its export: 409 naming the line.
    let stale = export(&d, "?q=csv0").await;
    d.patch(
        &format!("/api/v1/users/{}", ids[0]),
        &d.root,
        json!({ "phone": "0" }),
    )
    .await;
    let (status, body) = import(&d, "update", false, stale).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (&body["error"]["code"], &body["error"]["line"]),
        (&json!("version_conflict"), &json!(2))
    );
}

#[tokio::test]
async fn delete_mode_removes_by_id_or_login() {
    let d = Daemon::start().await;
    let ids = seed(&d).await;
    let csv = format!("ID,user.login\n{},\n,csv1\n", ids[0]);
    let (status, plan) = import(&d, "delete", true, csv.clone()).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["delete"].as_array().map(Vec::len), Some(2));
    let (status, report) = import(&d, "delete", false, csv).await;
    assert_eq!(status, 200, "{report}");
    let remaining = rows(&export(&d, "?q=csv").await);
    assert_eq!(remaining.len(), 4, "two of five deleted");
    let unknown = import(&d, "add", false, "user.login\n".as_bytes().to_vec()).await;
    assert_eq!(unknown.0, 200, "an empty file adds nothing: {}", unknown.1);
}

#[tokio::test]
async fn the_cli_exports_and_imports_on_a_stopped_daemon() {
    let d = Daemon::start().await;
    seed(&d).await;
    let d = d
        .restart(|config| {
            let out = config.data_dir.join("../export.csv");
            let run = |args: &[&str]| {
                crate::harness::offline_cli(config)
                    .args(args)
                    .output()
                    .expect("gatehouse runs")
            };
            let exported = run(&["users", "export", "--out", out.to_str().expect("path")]);
            assert!(
                exported.status.success(),
                "{}",
                String::from_utf8_lossy(&exported.stderr)
            );
            let text = std::fs::read_to_string(&out).expect("export file");
            assert_eq!(
                rows(&text).len(),
                1 + 4 + 5,
                "header, system users and five more"
            );
            let edited = text.replace("First2", "Second2");
            std::fs::write(&out, edited).expect("edit");
            let dry = run(&[
                "users",
                "import",
                "--mode",
                "update",
                "--dry-run",
                out.to_str().expect("path"),
            ]);
            assert!(
                dry.status.success(),
                "{}",
                String::from_utf8_lossy(&dry.stderr)
            );
            assert!(String::from_utf8_lossy(&dry.stdout).contains("Second2"));
            let bad = config.data_dir.join("../bad.csv");
            std::fs::write(&bad, "user.login,user.custom_data\nx,{oops\n").expect("bad file");
            let refused = run(&[
                "users",
                "import",
                "--mode",
                "add",
                bad.to_str().expect("path"),
            ]);
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(
                !refused.status.success() && stderr.contains("line 2, column user.custom_data"),
                "{stderr}"
            );
            let applied = run(&[
                "users",
                "import",
                "--mode",
                "update",
                out.to_str().expect("path"),
            ]);
            assert!(
                applied.status.success(),
                "{}",
                String::from_utf8_lossy(&applied.stderr)
            );
        })
        .await;
    let (_, list) = d.get("/api/v1/users?q=Second2", &d.root).await;
    assert_eq!(list["users"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn imports_do_what_the_api_does_to_sessions_versions_and_names() {
    let d = Daemon::start().await;
    let ids = seed(&d).await;
    let password = "a sound passphrase";
    for login in ["csv1", "csv2"] {
        d.post(
            &format!(
                "/api/v1/users/{}/password",
                ids[login[3..].parse::<usize>().expect("n")]
            ),
            &d.root,
            json!({ "password": password }),
        )
        .await;
    }
    let (_, one) = d.login("csv1", password).await;
    let (_, two) = d.login("csv2", password).await;
    let (one, two) = (
        one["token"].as_str().expect("token"),
        two["token"].as_str().expect("token"),
    );
    // Signing in is activity, not a change: an earlier export is not stale.
    let export_before = export(&d, "?q=csv").await;
    let (status, _) = d.login("csv2", password).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&export(&d, "?q=csv").await), rows(&export_before));

    let csv = format!(
        "ID,user.login,_password,user.login_disabled\n{},csv1,another sound passphrase,false\n{},csv2,,true\n",
        ids[1], ids[2]
    );
    let (status, report) = import(&d, "update", false, csv).await;
    assert_eq!(status, 200, "{report}");
    for token in [one, two] {
        let (status, _) = d.get("/api/v1/me", token).await;
        assert_eq!(
            status, 401,
            "a new password and a deactivation end the sessions"
        );
    }
    let (_, audit) = d.get("/api/v1/audit?limit=5", &d.root).await;
    assert!(audit.to_string().contains("csv import"), "{audit}");

    // ID and login naming different users, and a login equal to an email.
    let (status, body) = import(
        &d,
        "update",
        false,
        format!("ID,user.login\n{},csv4\n", ids[0]),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("user.login")),
        "{body}"
    );
    let (status, body) = import(
        &d,
        "add",
        false,
        "user.login\ncsv4@example.org\n".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("user.login")),
        "{body}"
    );
}
