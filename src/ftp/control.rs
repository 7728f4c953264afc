//! The control connection: plain TCP until AUTH TLS, then TLS; reads whole
//! command lines (cancel-safe, bounded) and writes replies.

use super::command::MAX_LINE;
use super::reply::Reply;
use rustls::ServerConfig;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the TLS handshake has the socket.
    Upgrading,
}

/// A control connection with its read buffer.
pub struct Control {
    stream: Stream,
    buffer: Vec<u8>,
    /// How long a reply may wait for a client that does not read.
    send_timeout: Duration,
}

/// What reading a line gave.
pub enum Line {
    Complete(Vec<u8>),
    /// The client closed the connection.
    Closed,
    /// No line end within [`MAX_LINE`] bytes.
    TooLong,
}

impl Control {
    pub fn new(stream: TcpStream, send_timeout: Duration) -> Self {
        Self {
            stream: Stream::Plain(stream),
            buffer: Vec::with_capacity(256),
            send_timeout,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Reads the next line. Cancel-safe: bytes read stay in the buffer.
    pub async fn read_line(&mut self) -> io::Result<Line> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buffer) {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Ok(Line::Complete(line));
            }
            if self.buffer.len() >= MAX_LINE {
                return Ok(Line::TooLong);
            }
            let mut chunk = [0u8; 1024];
            let want = chunk.len().min(MAX_LINE - self.buffer.len());
            let read = self.read(&mut chunk[..want]).await?;
            if read == 0 {
                return Ok(Line::Closed);
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// Sends a reply; a client that does not read it in time is dropped
    /// (so pipelined commands cannot hold a session past every timeout).
    pub async fn send(&mut self, reply: &Reply) -> io::Result<()> {
        let encoded = reply.encode();
        let sent = tokio::time::timeout(self.send_timeout, async {
            self.write_all(&encoded).await?;
            self.flush().await
        });
        sent.await.map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, "the client does not read replies")
        })?
    }

    /// Switches to TLS after the 234 reply. Bytes the client sent before our
    /// reply (a ClientHello it should have held back) are a protocol error.
    pub async fn upgrade(&mut self, config: Arc<ServerConfig>, within: Duration) -> io::Result<()> {
        if !self.buffer.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "data after AUTH TLS before its reply",
            ));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(io::Error::other("the control connection is already TLS"));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = tokio::time::timeout(within, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Sends close_notify (on TLS) and closes.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.shutdown()).await;
    }
}

fn upgrading() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS upgrade in progress")
}

impl AsyncRead for Control {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl AsyncWrite for Control {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}
