//! Request ids: each request gets one (a well-formed `X-Request-Id` from the
//! client or a proxy is kept, anything else replaced), carried by the log
//! span of the request, sent back in the `X-Request-Id` header, and quoted in
//! every JSON error body, so a user's report leads to the log lines.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being answered, inside its task.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Whether a received id is short and plain enough to keep and log.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A fresh id: unique enough to find log lines, not a secret (so the
/// thread's own generator, not a system call per request).
fn generate() -> String {
    format!("{:016x}", rand::thread_rng().next_u64())
}

/// Gives the request its id and answers with it.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(generate, str::to_owned);
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(HEADER, value);
    }
    let mut response = CURRENT.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_kept() {
        assert!(acceptable("req-42.a_b"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"x".repeat(65)));
        assert!(!acceptable("evil\r\nheader"));
        assert!(!acceptable("spaces are not ok"));
        assert_eq!(generate().len(), 16);
    }
}
