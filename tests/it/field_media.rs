//! A Trapper camera-trap team: roles set with activation, JPEGs uploaded
//! over FTPS with curl, records pointing at them, thumbnails of the missing
//! ones made by a background job (bad files reported per record, the upload
//! quota untouched), and user pictures.

use crate::ftp::{curl, ftp_state};
use crate::harness::{Daemon, PASSWORD, id};
use image::{DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};
use std::io::Cursor;
use std::path::Path;

/// A TIFF-style EXIF block saying "rotate 90° clockwise to display" (6).
const EXIF_ROTATE_90: [u8; 26] = [
    0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// A `width`×`height` JPEG, with the EXIF orientation block when `rotated`.
fn camera_jpeg(width: u32, height: u32, rotated: bool) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    if rotated {
        encoder
            .set_exif_metadata(EXIF_ROTATE_90.to_vec())
            .expect("EXIF accepted");
    }
    encoder
        .write_image(
            image.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .expect("JPEG encoded");
    out
}

/// A real 1×1 PNG whose header declares 100,000 × 100,000 pixels.
fn png_bomb() -> Vec<u8> {
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::new(1, 1))
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .expect("PNG encoded");
    png[16..24].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
    let mut crc = !0u32;
    for byte in &png[12..29] {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    png
}

/// Uploads `bytes` as `remote` (folders created) over FTPS with curl.
async fn upload(d: &Daemon, login: &str, dir: &Path, remote: &str, bytes: &[u8]) {
    let local = dir.join(remote.replace('/', "_"));
    std::fs::write(&local, bytes).expect("local file");
    let target = format!("FTP/{remote}");
    let args = [
        "--ftp-create-dirs",
        "-T",
        local.to_str().expect("path"),
        &target,
    ];
    let run = curl(d, login, PASSWORD, true, &args).await;
    assert_eq!(run.code, 0, "{remote}: {}", run.stderr);
}

/// GETs `path` as `token`: (status, content type, body bytes).
async fn fetch(d: &Daemon, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", d.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, response.bytes().await.expect("body").to_vec())
}

/// Follows job `job` until it finishes; returns it.
async fn finished(d: &Daemon, job: u64) -> Value {
    for _ in 0..600 {
        let (status, state) = d.get(&format!("/api/v1/jobs/{job}"), &d.root).await;
        assert_eq!(status, 200, "{state}");
        if state["state"] == "finished" {
            return state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {job} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapper_team_uploads_photos_and_gets_thumbnails() {
    let d = Daemon::start_with(|c| c.thumbnails.max_source_megapixels = 50).await;
    let (status, project) = d
        .post(
            "/api/v1/projects",
            &d.root,
            json!({ "name": "Deer survey", "kind": "classification" }),
        )
        .await;
    assert_eq!(status, 201);
    let pid = id(&project);
    // A pending photographer: set-roles with activate, then an FTP account.
    let photographer = d
        .create(json!({ "login": "cam", "password": PASSWORD, "status": "pending" }))
        .await;
    let cam = id(&photographer);
    let reply = d
        .bulk("set-roles", json!({ "ids": [cam], "projects": [{ "id": pid, "role": "member" }], "activate": true }))
        .await;
    assert_eq!(reply["results"][0]["user"]["status"], "active", "{reply}");
    let reply = d
        .bulk(
            "create-ftp-accounts",
            json!({ "ids": [cam], "quota_mb": 20 }),
        )
        .await;
    assert_eq!(reply["succeeded"], 1);
    let (_, issued) = d
        .post(
            &format!("/api/v1/users/{cam}/api-token"),
            &d.root,
            json!({}),
        )
        .await;
    let cam_token = issued["token"].as_str().expect("token").to_owned();

    let work = tempfile::tempdir().expect("work dir");
    let photo = camera_jpeg(1600, 1200, true);
    let files: [(&str, Vec<u8>); 4] = [
        ("cam1/IMG_0001.JPG", photo.clone()),
        (
            "cam1/broken.jpg",
            b"\xff\xd8\xff\xe0 not really a JPEG".to_vec(),
        ),
        ("notes.txt", b"battery 80%".to_vec()),
        ("bomb.png", png_bomb()),
    ];
    let mut uploaded = 0;
    for (remote, bytes) in &files {
        upload(&d, "cam", work.path(), remote, bytes).await;
        uploaded += bytes.len();
    }
    assert_eq!(ftp_state(&d, cam).await["used_bytes"], uploaded);

    // Records (deployments) pointing at the uploads, and some that cannot work.
    let medias = [
        Some("cam1/IMG_0001.JPG"),
        Some("cam1/broken.jpg"),
        Some("notes.txt"),
        Some("bomb.png"),
        Some("cam1/missing.jpg"),
        Some("../../../etc/passwd"),
        Some("/etc/passwd"),
        None,
    ];
    let mut records = Vec::new();
    for (n, media) in medias.iter().enumerate() {
        let attributes = match media {
            Some(path) => json!({ "media": path }),
            None => json!({}),
        };
        let body = json!({ "kind": "deployment", "name": format!("D{n}"), "project": pid, "attributes": attributes });
        let (status, record) = d.post("/api/v1/resources", &cam_token, body).await;
        assert_eq!(status, 201, "{record}");
        records.push(id(&record));
    }

    // An editor of the project names a file on a record the photographer
    // owns: the job will not reach into the owner's home for it.
    let (editor, editor_token) = d.user_with_roles("editor", &[]).await;
    let membership = format!("/api/v1/projects/{pid}/members/{editor}");
    let (status, _) = d
        .call(
            reqwest::Method::PUT,
            &membership,
            Some(&d.root),
            Some(json!({ "role": "editor" })),
        )
        .await;
    assert_eq!(status, 200);
    let planted = format!("/api/v1/resources/{}", records[7]);
    let (status, _) = d
        .patch(
            &planted,
            &editor_token,
            json!({ "attributes": { "media": "cam1/IMG_0001.JPG" } }),
        )
        .await;
    assert_eq!(status, 200);

    // Only admins start the job; it covers every record with media and no thumbnail.
    let missing = json!({ "missing": true });
    let path = "/api/v1/resources/actions/generate-thumbnails";
    assert_eq!(d.post(path, &cam_token, missing.clone()).await.0, 403);
    let (status, reply) = d.post(path, &d.root, json!({})).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("ids"))
    );
    let (status, job) = d.post(path, &d.root, missing.clone()).await;
    assert_eq!((status, &job["total"]), (202, &json!(8)), "{job}");
    let job = finished(&d, id(&job)).await;
    assert_eq!(
        (&job["succeeded"], &job["failed"]),
        (&json!(1), &json!(7)),
        "{job}"
    );
    let outcome = |record: u64| {
        let item = job["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"] == record);
        item.map(|r| {
            if r["ok"] == true {
                "ok".to_owned()
            } else {
                r["code"].as_str().unwrap_or("").to_owned()
            }
        })
    };
    let expected = [
        "ok",
        "damaged_image",
        "not_an_image",
        "too_many_pixels",
        "media_not_found",
        "media_not_found",
        "media_not_found",
        "media_not_owners",
    ];
    for (record, code) in records.iter().zip(expected) {
        assert_eq!(
            outcome(*record).as_deref(),
            Some(code),
            "record {record}: {job}"
        );
    }

    // The thumbnail: upright (the EXIF rotation applied), at most 512 a side.
    let thumb = format!("/api/v1/resources/{}/thumbnail", records[0]);
    let (status, kind, bytes) = fetch(&d, &thumb, &cam_token).await;
    assert_eq!((status, kind.as_str()), (200, "image/jpeg"));
    let image = image::load_from_memory(&bytes).expect("a JPEG");
    assert_eq!((image.width(), image.height()), (384, 512));
    let (_, record) = d
        .get(&format!("/api/v1/resources/{}", records[0]), &cam_token)
        .await;
    assert_eq!(record["thumbnail"]["width"], 384, "{record}");
    let (outsider, outsider_token) = d.user_with_roles("outsider", &[]).await;
    assert!(outsider > 0);
    assert_eq!(fetch(&d, &thumb, &outsider_token).await.0, 403);
    let none = format!("/api/v1/resources/{}/thumbnail", records[7]);
    assert_eq!(fetch(&d, &none, &cam_token).await.0, 404);
    // Once the owner names the file, it is theirs to show.
    let (status, _) = d
        .patch(
            &planted,
            &cam_token,
            json!({ "attributes": { "media": "cam1/IMG_0001.JPG", "site": "B" } }),
        )
        .await;
    assert_eq!(
        status, 200,
        "only `site` changed: media_by stays the editor"
    );
    let (status, _) = d
        .patch(
            &planted,
            &cam_token,
            json!({ "attributes": { "media": "./cam1/IMG_0001.JPG" } }),
        )
        .await;
    assert_eq!(status, 200);
    // Outside the photographer's quota, and nothing was written to the home.
    assert_eq!(ftp_state(&d, cam).await["used_bytes"], uploaded);

    // A second run has only the failures left to try.
    let (_, again) = d.post(path, &d.root, missing).await;
    assert_eq!(again["total"], 7, "{again}");
    let again = finished(&d, id(&again)).await;
    assert_eq!(
        again["succeeded"], 1,
        "the record its owner pointed at: {again}"
    );
    assert_eq!(fetch(&d, &none, &cam_token).await.0, 200);
    // Changing the media drops the thumbnail, in the same change.
    let (_, record) = d
        .patch(
            &planted,
            &cam_token,
            json!({ "attributes": { "media": "cam1/broken.jpg" } }),
        )
        .await;
    assert_eq!(record["thumbnail"], Value::Null, "{record}");
    assert_eq!(fetch(&d, &none, &cam_token).await.0, 404);

    // Set-owner hands the deployment over; the thumbnail goes with the record.
    let (helper, _) = d.user_with_roles("helper", &[]).await;
    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/set-owner",
            &d.root,
            json!({ "ids": [records[0]], "owner": helper }),
        )
        .await;
    assert_eq!(reply["results"][0]["resource"]["owner"], helper, "{reply}");
    assert_eq!(fetch(&d, &thumb, &d.root).await.0, 200);
    // Deleting the record deletes its thumbnail.
    assert_eq!(
        d.delete(&format!("/api/v1/resources/{}", records[0]), &d.root)
            .await
            .0,
        204
    );
    assert_eq!(fetch(&d, &thumb, &d.root).await.0, 404);
    d.stop().await;
}

/// PUTs `body` as an image to `path` as `token`.
async fn put_image(d: &Daemon, path: &str, token: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(format!("{}{path}", d.base))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sets a small picture of one's own.
async fn set_small_picture(d: &Daemon, token: &str) {
    let (status, user) =
        put_image(d, "/api/v1/me/picture", token, camera_jpeg(300, 200, false)).await;
    assert_eq!(status, 200, "{user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_are_reencoded_guarded_and_gone_after_masking() {
    let d = Daemon::start_with(|c| c.pictures.max_mb = 1).await;
    let (uid, token) = d.user_with_roles("portrait", &[]).await;
    let (_, other) = d.user_with_roles("nosy", &[]).await;
    let photo = camera_jpeg(2000, 1500, false);
    let (status, user) = put_image(&d, "/api/v1/me/picture", &token, photo).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        (&user["picture"]["width"], &user["picture"]["height"]),
        (&json!(1024), &json!(768))
    );
    let picture = format!("/api/v1/users/{uid}/picture");
    let (status, kind, bytes) = fetch(&d, &picture, &d.root).await;
    assert_eq!((status, kind.as_str()), (200, "image/jpeg"));
    assert_eq!(
        image::load_from_memory(&bytes).map(|i| i.width()).ok(),
        Some(1024)
    );
    let (_, _, small) = fetch(&d, &format!("{picture}?size=thumbnail"), &token).await;
    assert_eq!(
        image::load_from_memory(&small).map(|i| i.width()).ok(),
        Some(512)
    );
    assert_eq!(
        fetch(&d, &format!("{picture}?size=huge"), &token).await.0,
        400
    );
    // Another plain user neither reads nor sets it.
    assert_eq!(fetch(&d, &picture, &other).await.0, 403);
    let (status, _) = put_image(&d, &picture, &other, camera_jpeg(10, 10, false)).await;
    assert_eq!(status, 403);
    // Not an image, a bomb, and too large for the limit: refused, the old one kept.
    let (status, reply) = put_image(&d, "/api/v1/me/picture", &token, b"<svg/>".to_vec()).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("picture")),
        "{reply}"
    );
    let (status, _) = put_image(&d, "/api/v1/me/picture", &token, png_bomb()).await;
    assert_eq!(status, 400);
    let (status, reply) = put_image(&d, "/api/v1/me/picture", &token, vec![0xff; 2 << 20]).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
    assert_eq!(fetch(&d, &picture, &token).await.0, 200);
    // Setting `picture` by PATCH is refused; `null` removes the image too.
    let user_path = format!("/api/v1/users/{uid}");
    let (status, reply) = d
        .patch(&user_path, &d.root, json!({ "picture": { "url": "x" } }))
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("picture"))
    );
    let (status, user) = d
        .patch(&user_path, &d.root, json!({ "picture": null }))
        .await;
    assert_eq!((status, &user["picture"]), (200, &Value::Null));
    assert_eq!(fetch(&d, &picture, &token).await.0, 404);
    set_small_picture(&d, &token).await;
    let (status, user) = d.delete("/api/v1/me/picture", &token).await;
    assert_eq!((status, &user["picture"]), (200, &Value::Null));
    assert_eq!(fetch(&d, &picture, &token).await.0, 404);
    set_small_picture(&d, &token).await;
    assert_eq!(d.delete(&picture, &other).await.0, 403);
    // Masking removes it.
    let reply = d.bulk("mask", json!({ "ids": [uid] })).await;
    assert_eq!(reply["succeeded"], 1);
    assert_eq!(fetch(&d, &picture, &d.root).await.0, 404);
    assert_eq!(
        fetch(&d, &format!("{picture}?size=thumbnail"), &d.root)
            .await
            .0,
        404
    );
    assert_eq!(
        d.get(&format!("/api/v1/users/{uid}"), &d.root).await.1["picture"],
        Value::Null
    );
    d.stop().await;
}
