//! Thumbnail benchmark (issue: field-data flows). An in-process daemon; one
//! uploader whose FTP home holds 1,000 JPEGs of 12 megapixels (4000 × 3000,
//! hard links to one file, so the disk holds one), and 1,000 records
//! pointing at them. Measured in one run:
//! - the baseline: how fast one core decodes that JPEG (`image`, median of
//!   several), and decodes plus shrinks it;
//! - the job: `POST /api/v1/resources/actions/generate-thumbnails
//!   {"missing":true}` followed to the end through `GET /api/v1/jobs/{id}`:
//!   images/s, against one core's decode rate and against all cores';
//! - peak RSS of the process during the job (VmHWM, reset just before).
//!
//! `THUMB_BENCH_IMAGES` lowers the count for a quick check.
//! Run: `cargo bench --bench thumbnails` (about 3 minutes on 2 cores).

mod common;

use image::{DynamicImage, Rgb, RgbImage};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

/// A 12-megapixel photo-like JPEG: gradients and noise, so it compresses
/// like a camera image rather than like a flat test card.
fn photo() -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let image = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed & 0x1f) as u8;
        Rgb([
            ((x * 255 / WIDTH) as u8).wrapping_add(noise),
            ((y * 255 / HEIGHT) as u8).wrapping_add(noise / 2),
            (((x + y) % 256) as u8) ^ noise,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&DynamicImage::ImageRgb8(image))
        .expect("JPEG encoded");
    out
}

/// Median seconds of `runs` runs of `work`.
fn median(runs: usize, mut work: impl FnMut()) -> f64 {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    samples.sort();
    samples[runs / 2].as_secs_f64()
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> Value {
    let response = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let images: usize = std::env::var("THUMB_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let daemon = common::start(|c| c.http.max_body_bytes = 1 << 20).await;
    let (base, root) = (daemon.base.clone(), daemon.root.clone());
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;

    let user = call(
        &client,
        post.clone(),
        format!("{base}/api/v1/users"),
        &root,
        json!({ "login": "camera", "password": "a sound passphrase" }),
    )
    .await;
    let uid = user["id"].as_u64().expect("id");
    call(
        &client,
        post.clone(),
        format!("{base}/api/v1/users/actions/create-ftp-accounts"),
        &root,
        json!({ "ids": [uid] }),
    )
    .await;
    let token = call(
        &client,
        post.clone(),
        format!("{base}/api/v1/users/{uid}/api-token"),
        &root,
        json!({}),
    )
    .await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let jpeg = photo();
    let home = daemon.dir.path().join("data/ftp").join(uid.to_string());
    std::fs::write(home.join("original.jpg"), &jpeg).expect("photo written");
    for n in 0..images {
        std::fs::hard_link(
            home.join("original.jpg"),
            home.join(format!("IMG_{n:04}.JPG")),
        )
        .expect("link");
    }
    for n in 0..images {
        let body = json!({ "kind": "deployment", "name": format!("D{n}"), "attributes": { "media": format!("IMG_{n:04}.JPG") } });
        call(
            &client,
            post.clone(),
            format!("{base}/api/v1/resources"),
            &token,
            body,
        )
        .await;
    }
    println!(
        "{images} JPEGs of {WIDTH}x{HEIGHT} ({:.1} MiB each), {cores} cores",
        jpeg.len() as f64 / (1 << 20) as f64
    );

    // Baseline on one core: decode, and decode plus shrink to 512.
    let decode = median(5, || {
        image::load_from_memory(&jpeg).expect("decodes");
    });
    let limits = gatehouse::media::ImageLimits {
        max_bytes: 64 << 20,
        max_pixels: 120_000_000,
    };
    let shrink = median(5, || {
        gatehouse::media::resized(&jpeg, 512, limits).expect("thumbnail");
    });
    println!(
        "one core: decode {:.0} ms = {:.2} images/s; decode + orient + shrink + encode {:.0} ms = {:.2} images/s",
        decode * 1000.0,
        1.0 / decode,
        shrink * 1000.0,
        1.0 / shrink
    );

    // The job, with the peak RSS measured from here.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_mib();
    let started = Instant::now();
    let job = call(
        &client,
        post.clone(),
        format!("{base}/api/v1/resources/actions/generate-thumbnails"),
        &root,
        json!({ "missing": true }),
    )
    .await;
    let id = job["id"].as_u64().expect("job id");
    let finished = loop {
        let state = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/v1/jobs/{id}"),
            &root,
            json!(null),
        )
        .await;
        if state["state"] == "finished" {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed().as_secs_f64();
    assert_eq!(finished["succeeded"], images, "{}", finished["results"][0]);
    let rate = images as f64 / took;
    println!(
        "job: {images} thumbnails in {took:.1} s = {rate:.2} images/s = {:.2}x one core's decode rate ({:.0}% of {cores} cores' decode rate)",
        rate * decode,
        100.0 * rate * decode / cores as f64
    );
    println!(
        "peak RSS: {before:.0} MiB before the job, {:.0} MiB during it",
        peak_mib()
    );
    daemon.running.shutdown().await.expect("clean shutdown");
}
