//! `GET /api/v1/backup`: root downloads a consistent backup of the running
//! daemon (the store and its sealing key), streamed as it is written, so a
//! large directory needs no memory of its size. Outside the request timeout.

use super::AppState;
use super::error::ApiResult;
use super::extract::Auth;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Bytes handed to the response at a time.
const CHUNK: usize = 256 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(backup))
}

/// A writer that hands full chunks to the response body.
struct ToBody {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl std::io::Write for ToBody {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

/// A consistent backup of the running daemon, streamed; root's API token only.
#[utoipa::path(get, path = "/backup", tag = "operations",
    responses((status = 200, description = "The backup file",
        content_type = "application/octet-stream", body = Vec<u8>)))]
async fn backup(State(state): State<AppState>, Auth(principal): Auth) -> ApiResult<Response> {
    state.directory.require_root(&principal)?;
    let actor = Some(principal.user.id);
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let directory = state.directory.clone();
    tokio::task::spawn_blocking(move || {
        let mut body = ToBody {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let written = directory
            .backup(actor, &mut body)
            .map_err(|error| std::io::Error::other(error.to_string()))
            .and_then(|summary| std::io::Write::flush(&mut body).map(|()| summary));
        match written {
            Ok(summary) => tracing::info!(
                entries = summary.entries,
                bytes = summary.bytes,
                "backup taken"
            ),
            Err(error) => {
                tracing::warn!(%error, "backup failed");
                // The body ends in an error: the client sees a broken download.
                let _ = tx.blocking_send(Err(error));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"gatehouse.backup\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
