//! The admin CLI's side of the API: a small client for a running daemon
//! (base URL and token from `--url`/`GATEHOUSE_URL` and
//! `--token`/`--token-file`/`GATEHOUSE_TOKEN`), each command one or a few API
//! calls, answers printed as a table or as the API's own JSON. Errors are the
//! API's (code, message, field), so the CLI refuses exactly what the API does.

pub mod commands;
mod table;

pub use table::{print_results, print_users};

use serde_json::Value;

/// The daemon answered with an error, or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the answer from {url} is not JSON: {source}")]
    Garbled { url: String, source: reqwest::Error },
    #[error("no API token: give --token, --token-file or GATEHOUSE_TOKEN")]
    NoToken,
    #[error("cannot read the token file {0}: {1}")]
    TokenFile(String, std::io::Error),
}

/// A client for one daemon.
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Where the daemon is and who is asking.
pub struct Target {
    pub url: String,
    pub token: Option<String>,
    pub token_file: Option<std::path::PathBuf>,
}

impl ApiClient {
    pub fn new(target: Target) -> Result<Self, ClientError> {
        // A file named on the command line wins over --token/GATEHOUSE_TOKEN.
        let token = match (&target.token_file, target.token) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| ClientError::TokenFile(path.display().to_string(), e))?,
            (None, Some(token)) => token,
            (None, None) => return Err(ClientError::NoToken),
        };
        Ok(Self {
            base: format!("{}/api/v1", target.url.trim_end_matches('/')),
            token: token.trim().to_owned(),
            http: reqwest::Client::new(),
        })
    }

    /// One API call; a non-2xx answer becomes [`ClientError::Api`].
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Garbled {
                url: url.clone(),
                source,
            })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(ClientError::Api {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("error").to_owned(),
            message: error["message"]
                .as_str()
                .map_or(text.clone(), str::to_owned),
        })
    }

    /// Every user matching `query`, page after page; `progress` hears the count.
    pub async fn all_users(
        &self,
        query: &[(&str, String)],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Value>, ClientError> {
        let mut users = Vec::new();
        let mut cursor: Option<u64> = None;
        loop {
            let mut page_query = query.to_vec();
            page_query.push(("limit", "1000".to_owned()));
            if let Some(cursor) = cursor {
                page_query.push(("cursor", cursor.to_string()));
            }
            let page = self
                .call(reqwest::Method::GET, "/users", &page_query, None)
                .await?;
            users.extend(page["users"].as_array().cloned().unwrap_or_default());
            progress(users.len());
            match page["next_cursor"].as_u64() {
                Some(next) => cursor = Some(next),
                None => return Ok(users),
            }
        }
    }

    /// The id of `user`: a number as it is, else the account with that login.
    pub async fn user_id(&self, user: &str) -> Result<u64, ClientError> {
        if let Ok(id) = user.parse() {
            return Ok(id);
        }
        let query = [
            ("q", user.to_owned()),
            ("search_fields", "login".to_owned()),
        ];
        let page = self
            .call(reqwest::Method::GET, "/users", &query, None)
            .await?;
        page["users"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| {
                u["login"]
                    .as_str()
                    .is_some_and(|l| l.eq_ignore_ascii_case(user))
            })
            .and_then(|u| u["id"].as_u64())
            .ok_or_else(|| ClientError::Api {
                status: 404,
                code: "not_found".into(),
                message: format!("no user with login `{user}`"),
            })
    }
}
