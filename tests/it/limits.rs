//! Connection limits at the doors: 2,000 idle HTTP connections leave
//! `/healthz` and FTPS sign-in answering; an idle connection is closed after
//! the header timeout; one address cannot hold more than its share; behind a
//! trusted proxy the forwarded client is who gets locked out.

use crate::harness::{Daemon, PASSWORD};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const IDLE: usize = 2_000;
const ADDRESSES: u8 = 10;

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(from), 0))?;
    socket.connect(to).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_neither_starve_the_api_nor_ftps() {
    let d = Daemon::start().await;
    d.user("steady").await;
    let reply = d
        .bulk(
            "create-ftp-accounts",
            json!({ "ids": [d.user("uploader").await] }),
        )
        .await;
    assert_eq!(reply["succeeded"], 1);
    let api: SocketAddr = d
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    let mut idle = Vec::with_capacity(IDLE);
    for n in 0..IDLE {
        let from = [127, 0, 1, (n % usize::from(ADDRESSES)) as u8 + 1];
        idle.push(connect_from(from, api).await.expect("idle connection"));
    }
    let health = tokio::time::timeout(Duration::from_secs(1), async {
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 2, 1]))
            .build()
            .expect("client")
            .get(format!("{}/healthz", d.base))
            .send()
            .await
            .map(|r| r.status().as_u16())
    })
    .await;
    assert!(
        matches!(health, Ok(Ok(200))),
        "{health:?} with {IDLE} idle connections"
    );
    let ftp = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::process::Command::new("curl")
            .args([
                "-sS",
                "-k",
                "--ssl-reqd",
                "--user",
                &format!("uploader:{PASSWORD}"),
            ])
            .arg(format!("ftp://{}/", d.ftp))
            .output(),
    )
    .await;
    let code = ftp.ok().and_then(|o| o.ok()).and_then(|o| o.status.code());
    assert_eq!(
        code,
        Some(0),
        "FTPS sign-in and listing with {IDLE} idle HTTP connections"
    );
    drop(idle);
    d.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_one_address_gets_its_share_only() {
    let d = Daemon::start_with(|c| {
        c.http.header_timeout = Duration::from_millis(500);
        c.http.max_connections_per_address = 4;
    })
    .await;
    let api: SocketAddr = d
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 3, 1], api).await.expect("connect"));
    }
    // The fifth from the same address is closed at once.
    let mut fifth = connect_from([127, 0, 3, 1], api).await.expect("connect");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), fifth.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed beyond the cap: {read:?}"
    );
    // The held ones, idle, are closed after the header timeout.
    for mut connection in held {
        let read = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "idle closed: {read:?}"
        );
    }
    // And the address may connect again.
    let status = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 3, 1]))
        .build()
        .expect("client")
        .get(format!("{}/healthz", d.base))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(200));
    d.stop().await;
}

/// Garbage instead of HTTP gets a 400 and a closed connection; the server
/// keeps answering everybody else.
#[tokio::test]
async fn garbage_on_the_api_port_is_refused_and_harmless() {
    use tokio::io::AsyncWriteExt;
    let d = Daemon::start().await;
    let api: SocketAddr = d
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"\0\0\0\0\r\n\r\n",
        b"POST /api/v1/login HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(api).await.expect("connect");
        stream.write_all(garbage).await.expect("write");
        let mut reply = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "the connection is closed, not left hanging");
        let text = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || text.starts_with("HTTP/1.1 400"),
            "{garbage:?} -> {text}"
        );
    }
    let status = reqwest::get(format!("{}/healthz", d.base))
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(200));
    d.stop().await;
}

/// Signs in as `login` with `password`, as the client `forwarded_for` says.
async fn login_via_proxy(d: &Daemon, forwarded_for: &str, login: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/v1/login", d.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&serde_json::json!({ "login": login, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_lockouts_follow_the_forwarded_client() {
    let d = Daemon::start_with(|config| {
        config.http.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    d.user("target").await;
    for _ in 0..5 {
        assert_eq!(
            login_via_proxy(&d, "203.0.113.5", "target", "bad guess").await,
            401
        );
    }
    assert_eq!(
        login_via_proxy(&d, "203.0.113.5", "target", PASSWORD).await,
        429,
        "that client is locked"
    );
    // Another client behind the same proxy is not locked out (only slowed).
    assert_eq!(
        login_via_proxy(&d, "203.0.113.6", "target", PASSWORD).await,
        200
    );
    // A forged entry left of the proxy's own changes nothing.
    assert_eq!(
        login_via_proxy(&d, "198.51.100.1, 203.0.113.5", "target", PASSWORD).await,
        429
    );
    d.stop().await;
}

#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_are_ignored() {
    let d = Daemon::start().await;
    d.user("target").await;
    for n in 0..5 {
        let forged = format!("203.0.113.{n}");
        assert_eq!(
            login_via_proxy(&d, &forged, "target", "bad guess").await,
            401
        );
    }
    assert_eq!(
        login_via_proxy(&d, "198.51.100.99", "target", PASSWORD).await,
        429,
        "the peer (127.0.0.1) is who failed five times, whatever the header says"
    );
    d.stop().await;
}
