//! The data channel: a per-session passive listener (or, when enabled, an
//! active connection back to the control connection's address), the TLS
//! handshake every data connection must make, and moving bytes with a proper
//! end: close_notify sent on what we end, and an upload that ends without the
//! client's close_notify treated as truncated.

use super::storage::{StorageError, StorageResult};
use super::upload::{PendingWrite, Upload};
use crate::config::PortRange;
use rustls::HandshakeKind;
use rustls::ServerConfig;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Bytes moved per read from disk or per write to it.
const CHUNK: usize = 256 * 1024;

pub type DataStream = TlsStream<TcpStream>;

/// Where the next data connection comes from.
#[derive(Debug)]
pub enum DataSource {
    /// PASV/EPSV: a listener of this session's own.
    Passive(TcpListener),
    /// PORT/EPRT: the client listens at this address.
    Active(SocketAddr),
}

/// What a data connection must satisfy.
#[derive(Debug, Clone)]
pub struct DataRules {
    pub tls: Arc<ServerConfig>,
    /// The control connection's peer: the only address data may come from.
    pub peer: IpAddr,
    pub require_session_reuse: bool,
    /// For connecting, the handshake, and each read or write.
    pub timeout: Duration,
    /// Set by ABOR: the transfer stops at its next step (a commit under way
    /// still completes).
    pub cancel: CancellationToken,
}

/// Opens a passive listener on a free port of `ports` at `ip`.
pub async fn listen_passive(ip: IpAddr, ports: PortRange) -> std::io::Result<TcpListener> {
    let span = u32::from(ports.last - ports.first) + 1;
    let offset = rand::random::<u32>() % span;
    for step in 0..span {
        let port = ports.first as u32 + (offset + step) % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if let Ok(listener) = TcpListener::bind(SocketAddr::new(ip, port)).await {
            return Ok(listener);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "every passive port is taken",
    ))
}

/// Establishes the data connection and its TLS session.
pub async fn open(source: DataSource, rules: &DataRules) -> Result<DataStream, String> {
    let tcp = match source {
        DataSource::Passive(listener) => timeout(rules.timeout, accept_from(&listener, rules.peer))
            .await
            .map_err(|_| "no data connection arrived in time".to_owned())?,
        DataSource::Active(address) => timeout(rules.timeout, TcpStream::connect(address))
            .await
            .map_err(|_| "connecting to the client timed out".to_owned())?
            .map_err(|e| format!("cannot connect to {address}: {e}"))?,
    };
    let _ = tcp.set_nodelay(true);
    let acceptor = TlsAcceptor::from(rules.tls.clone());
    let stream = timeout(rules.timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| "the TLS handshake timed out".to_owned())?
        .map_err(|e| {
            tracing::info!(peer = %rules.peer, error = %e, "data connection TLS handshake failed");
            "the TLS handshake failed".to_owned()
        })?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    if rules.require_session_reuse && !resumed {
        tracing::info!(peer = %rules.peer, "data connection refused: it did not resume the control TLS session");
        // Closed cleanly, so the client sees an empty transfer and reads our 425.
        let _ = finish(stream, rules).await;
        return Err("the data connection must resume the control connection's TLS session".into());
    }
    Ok(stream)
}

/// Accepts the first connection from `peer`; others are closed and logged.
async fn accept_from(listener: &TcpListener, peer: IpAddr) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, from)) if from.ip().to_canonical() == peer => return stream,
            Ok((_, from)) => {
                tracing::warn!(%from, expected = %peer, "data connection from a foreign address refused");
            }
            Err(error) => {
                tracing::debug!(%error, "passive accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Sends `bytes` and ends the connection with close_notify.
pub async fn send_bytes(
    mut stream: DataStream,
    bytes: &[u8],
    rules: &DataRules,
) -> StorageResult<()> {
    timed(rules, stream.write_all(bytes)).await?;
    finish(stream, rules).await
}

/// Chunks read ahead of the network on a download.
const READ_AHEAD: usize = 4;

/// Sends `file` from its current position, then close_notify. A blocking
/// reader keeps a few chunks ahead, so disk reads overlap the encryption and
/// sending. Returns bytes sent.
pub async fn send_file(
    mut stream: DataStream,
    file: std::fs::File,
    rules: &DataRules,
) -> StorageResult<u64> {
    let (chunks, mut ahead) = tokio::sync::mpsc::channel(READ_AHEAD);
    // Sent buffers go back to the reader: a fresh large buffer per chunk
    // costs a mapping and its page faults every time.
    let (give_back, reuse) = std::sync::mpsc::channel();
    // Stops by itself once the receiver is gone (the transfer ended).
    tokio::task::spawn_blocking(move || read_ahead(file, &chunks, &reuse));
    let mut sent = 0u64;
    while let Some(chunk) = ahead.recv().await {
        let chunk: Vec<u8> = chunk?;
        timed(rules, stream.write_all(&chunk)).await?;
        sent += chunk.len() as u64;
        let _ = give_back.send(chunk);
    }
    finish(stream, rules).await?;
    Ok(sent)
}

/// Reads `file` to its end in chunks into `chunks`.
fn read_ahead(
    mut file: std::fs::File,
    chunks: &tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    reuse: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut buffer = reuse.try_recv().unwrap_or_default();
        buffer.resize(CHUNK, 0);
        let read = match std::io::Read::read(&mut file, &mut buffer) {
            Ok(0) => return,
            Ok(read) => read,
            Err(error) => {
                let _ = chunks.blocking_send(Err(error));
                return;
            }
        };
        buffer.truncate(read);
        if chunks.blocking_send(Ok(buffer)).is_err() {
            return;
        }
    }
}

/// Receives an upload into `upload` until the client's close_notify and
/// commits it; answers with our own close_notify whatever happened (Python's
/// ftplib waits for it even when the upload is refused). Returns bytes received.
pub async fn receive_file(
    mut stream: DataStream,
    upload: Upload,
    rules: &DataRules,
) -> StorageResult<u64> {
    let outcome = receive_into(&mut stream, upload, rules).await;
    let _ = finish(stream, rules).await;
    outcome
}

async fn receive_into(
    stream: &mut DataStream,
    mut upload: Upload,
    rules: &DataRules,
) -> StorageResult<u64> {
    let mut buffer = vec![0u8; CHUNK];
    // One chunk is written while the next arrives.
    let mut pending: Option<PendingWrite> = None;
    loop {
        buffer.resize(CHUNK, 0);
        let mut filled = 0;
        let mut ended = false;
        while filled < CHUNK {
            match timed(rules, stream.read(&mut buffer[filled..])).await {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(read) => filled += read,
                Err(StorageError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(StorageError::Truncated);
                }
                Err(error) => return Err(error),
            }
        }
        if filled > 0 {
            buffer.truncate(filled);
            let spare = match pending.take() {
                Some(previous) => previous.done().await?,
                None => Vec::with_capacity(CHUNK),
            };
            pending = Some(upload.start_write(std::mem::replace(&mut buffer, spare))?);
        }
        if ended {
            if let Some(last) = pending.take() {
                last.done().await?;
            }
            return upload.commit().await;
        }
    }
}

/// Sends close_notify and closes.
async fn finish(mut stream: DataStream, rules: &DataRules) -> StorageResult<()> {
    timed(rules, stream.shutdown()).await
}

/// Runs one I/O step under the data timeout, unless the transfer is aborted.
async fn timed<T>(
    rules: &DataRules,
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> StorageResult<T> {
    let step = tokio::select! {
        biased;
        () = rules.cancel.cancelled() => return Err(StorageError::Aborted),
        step = timeout(rules.timeout, step) => step,
    };
    match step {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(StorageError::Io(error))
        }
        Ok(Err(error)) => Err(StorageError::Data(error.to_string())),
        Err(_) => Err(StorageError::Data("the data connection stalled".into())),
    }
}
