//! The project pages in the browser: a project manager assigns members to
//! records and hands one over; an admin makes the missing thumbnails and
//! follows the job's progress (htmx).

use crate::harness::{Daemon, PASSWORD, id};
use crate::web::browser;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_manager_assigns_members_to_two_records() {
    let d = Daemon::start().await;
    let manager = d.user("mia").await;
    let rob = d.user("rob").await;
    let (_, project) = d
        .post(
            "/api/v1/projects",
            &d.root,
            json!({ "name": "Possum lines" }),
        )
        .await;
    let pid = id(&project);
    for (uid, role) in [(manager, "manager"), (rob, "member")] {
        let path = format!("/api/v1/projects/{pid}/members/{uid}");
        let (status, _) = d
            .call(
                reqwest::Method::PUT,
                &path,
                Some(&d.root),
                Some(json!({ "role": role })),
            )
            .await;
        assert_eq!(status, 200);
    }
    let mut records = Vec::new();
    for name in ["Line A", "Line B", "Line C"] {
        let body = json!({ "kind": "line", "name": name, "project": pid });
        let (status, record) = d.post("/api/v1/resources", &d.root, body).await;
        assert_eq!(status, 201);
        records.push(id(&record));
    }
    let config = json!({
        "base": d.base, "user": "mia", "password": PASSWORD, "project": "Possum lines",
        "records": ["Line A", "Line B"], "member": "rob", "handOver": "Line C",
    });
    let seen = browser("assign", config).await;
    assert_eq!(
        seen["results"],
        json!([
            "Line A: 1 member(s) assigned",
            "Line B: 1 member(s) assigned"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["assigned"],
        json!([
            "1 member(s) assigned: rob",
            "1 member(s) assigned: rob",
            "0 member(s) assigned"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["handedOver"],
        json!(["Line C: owner changed"]),
        "{seen}"
    );
    assert_eq!(seen["owners"][2], "rob", "{seen}");
    for (record, expected) in records.iter().zip([json!([rob]), json!([rob]), json!([])]) {
        let (_, view) = d.get(&format!("/api/v1/resources/{record}"), &d.root).await;
        assert_eq!(view["assigned"], expected, "{view}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_make_missing_thumbnails_and_follow_the_job() {
    let d = Daemon::start().await;
    d.create(json!({ "login": "ada", "password": PASSWORD, "system_roles": ["admin"] }))
        .await;
    let (cam, cam_token) = d.user_with_roles("cam", &[]).await;
    d.bulk("create-ftp-accounts", json!({ "ids": [cam] })).await;
    // The photo, as an upload would have left it in the home.
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        900,
        600,
        image::Rgb([40, 120, 60]),
    ))
    .write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .expect("JPEG");
    std::fs::write(crate::ftp::home(&d, cam).join("deer.jpg"), jpeg).expect("photo");
    let (_, project) = d
        .post("/api/v1/projects", &cam_token, json!({ "name": "Deer" }))
        .await;
    for (name, media) in [("Camera 1", "deer.jpg"), ("Camera 2", "gone.jpg")] {
        let body = json!({ "kind": "camera", "name": name, "project": id(&project), "attributes": { "media": media } });
        assert_eq!(d.post("/api/v1/resources", &cam_token, body).await.0, 201);
    }
    let config = json!({ "base": d.base, "admin": "ada", "password": PASSWORD, "project": "Deer" });
    let seen = browser("thumbnails", config).await;
    let job = seen["job"].as_str().unwrap_or("");
    assert!(
        job.starts_with("Thumbnails: 2 of 2 done, 1 made, 1 not, finished."),
        "{seen}"
    );
    assert!(job.contains("media_not_found"), "{seen}");
    assert_eq!(seen["thumbnails"], json!(["yes", "missing"]), "{seen}");
    d.stop().await;
}
