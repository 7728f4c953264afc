//! The admin CLI's commands that talk to a running daemon: users, groups and
//! FTP accounts. Each returns the text to print: a table, or with `--json`
//! the API's own answer.

use super::{ApiClient, ClientError, Target, print_results, print_users};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// How to reach the running daemon.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The daemon's base URL.
    #[arg(
        long,
        env = "GATEHOUSE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API token (prefer --token-file or the variable).
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the API token.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    fn client(&self) -> Result<ApiClient, ClientError> {
        ApiClient::new(Target {
            url: self.url.clone(),
            token: self.token.clone(),
            token_file: self.token_file.clone(),
        })
    }
}

/// User commands against the running daemon.
#[derive(clap::Subcommand, Debug)]
pub enum UserAction {
    /// List users (every page), filtered like GET /api/v1/users.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "type")]
        user_type: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// Text searched in login, email and names.
        #[arg(long)]
        search: Option<String>,
    },
    /// Show one user (by id or login).
    Show { user: String },
    /// Create a user; without --password-stdin a local user is pending and
    /// gets an activation link.
    Create {
        #[arg(long)]
        login: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        /// A system role (admin, user_manager, auditor); repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A group; repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// pending or active.
        #[arg(long)]
        status: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Approve pending users or reactivate deactivated ones.
    Activate { users: Vec<String> },
    /// Deactivate users (data kept, tokens revoked).
    Deactivate { users: Vec<String> },
    /// GDPR-mask users (irreversible).
    Mask { users: Vec<String> },
    /// Delete (or archive, per accounts.on_delete) users.
    Delete { users: Vec<String> },
    /// Set users' system roles (replacing theirs).
    SetRoles {
        users: Vec<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
    },
}

/// Group commands against the running daemon.
#[derive(clap::Subcommand, Debug)]
pub enum GroupAction {
    /// List groups with member counts.
    List,
    /// Create a group.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group.
    Delete { name: String },
}

/// FTP account commands against the running daemon.
#[derive(clap::Subcommand, Debug)]
pub enum FtpAction {
    /// Give users FTP accounts (home, layout, quota).
    CreateAccounts {
        users: Vec<String>,
        #[arg(long)]
        quota_mb: Option<u64>,
        #[arg(long)]
        quota_files: Option<u64>,
        /// Activate the users too.
        #[arg(long)]
        activate: bool,
    },
    /// Remove users' FTP accounts and homes.
    DeleteAccounts { users: Vec<String> },
}

async fn ids(client: &ApiClient, users: &[String]) -> Result<Vec<u64>, ClientError> {
    let mut ids = Vec::with_capacity(users.len());
    for user in users {
        ids.push(client.user_id(user).await?);
    }
    Ok(ids)
}

/// Runs the bulk action `action` on `users` (logins or ids), with the
/// action's own parameters in `extra`, and renders the per-id results.
async fn bulk(
    client: &ApiClient,
    connection: &Connection,
    action: &str,
    users: &[String],
    mut extra: Value,
) -> Result<String, ClientError> {
    extra["ids"] = json!(ids(client, users).await?);
    let reply = client
        .call(
            Method::POST,
            &format!("/users/actions/{action}"),
            &[],
            Some(extra),
        )
        .await?;
    Ok(render(connection, &reply, print_results))
}

fn render(connection: &Connection, reply: &Value, table: fn(&Value) -> String) -> String {
    match connection.json {
        true => serde_json::to_string_pretty(reply).unwrap_or_default(),
        false => table(reply),
    }
}

/// Runs a user command; `progress` hears how many users were read so far.
pub async fn users(
    connection: &Connection,
    action: UserAction,
    password: Option<String>,
    progress: &dyn Fn(usize),
) -> Result<String, ClientError> {
    let client = connection.client()?;
    match action {
        UserAction::List {
            status,
            user_type,
            group,
            search,
        } => {
            let query: Vec<(&str, String)> = [
                ("status", status),
                ("type", user_type),
                ("group", group),
                ("q", search),
            ]
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect();
            let users = client.all_users(&query, progress).await?;
            Ok(match connection.json {
                true => serde_json::to_string_pretty(&users).unwrap_or_default(),
                false => print_users(&users),
            })
        }
        UserAction::Show { user } => {
            let id = client.user_id(&user).await?;
            let reply = client
                .call(Method::GET, &format!("/users/{id}"), &[], None)
                .await?;
            Ok(render(connection, &reply, |user| {
                print_users(std::slice::from_ref(user))
            }))
        }
        UserAction::Create {
            login,
            email,
            first_name,
            last_name,
            roles,
            groups,
            status,
            ..
        } => {
            let mut body = json!({ "login": login, "system_roles": roles, "groups": groups });
            for (key, value) in [
                ("email", email),
                ("first_name", first_name),
                ("last_name", last_name),
                ("status", status),
            ] {
                if let Some(value) = value {
                    body[key] = json!(value);
                }
            }
            if let Some(password) = password {
                body["password"] = json!(password);
            }
            let reply = client.call(Method::POST, "/users", &[], Some(body)).await?;
            Ok(render(connection, &reply, |user| {
                print_users(std::slice::from_ref(user))
            }))
        }
        UserAction::Activate { users } => {
            bulk(&client, connection, "activate", &users, json!({})).await
        }
        UserAction::Deactivate { users } => {
            bulk(&client, connection, "deactivate", &users, json!({})).await
        }
        UserAction::Mask { users } => bulk(&client, connection, "mask", &users, json!({})).await,
        UserAction::Delete { users } => {
            bulk(&client, connection, "delete", &users, json!({})).await
        }
        UserAction::SetRoles { users, roles } => {
            let roles = json!({ "roles": roles });
            bulk(&client, connection, "set-system-roles", &users, roles).await
        }
    }
}

/// Runs a group command.
pub async fn groups(connection: &Connection, action: GroupAction) -> Result<String, ClientError> {
    let client = connection.client()?;
    let reply = match action {
        GroupAction::List => client.call(Method::GET, "/groups", &[], None).await?,
        GroupAction::Create { name, description } => {
            let body = json!({ "name": name, "description": description });
            client
                .call(Method::POST, "/groups", &[], Some(body))
                .await?
        }
        GroupAction::Delete { name } => {
            client
                .call(Method::DELETE, &format!("/groups/{name}"), &[], None)
                .await?;
            json!({ "deleted": name })
        }
    };
    Ok(render(connection, &reply, |reply| {
        let groups = reply["groups"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![reply.clone()]);
        groups
            .iter()
            .map(|g| {
                format!(
                    "{}\t{}",
                    g["name"].as_str().or(g["deleted"].as_str()).unwrap_or("-"),
                    g["members"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }))
}

/// Runs an FTP account command.
pub async fn ftp(connection: &Connection, action: FtpAction) -> Result<String, ClientError> {
    let client = connection.client()?;
    match action {
        FtpAction::CreateAccounts {
            users,
            quota_mb,
            quota_files,
            activate,
        } => {
            let account =
                json!({ "quota_mb": quota_mb, "quota_files": quota_files, "activate": activate });
            bulk(&client, connection, "create-ftp-accounts", &users, account).await
        }
        FtpAction::DeleteAccounts { users } => {
            bulk(
                &client,
                connection,
                "delete-ftp-accounts",
                &users,
                json!({}),
            )
            .await
        }
    }
}
