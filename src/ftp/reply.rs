//! FTP replies: the one table of reply codes the engine uses, and the one place
//! where storage and service errors become reply codes.

use super::command::ParseError;
use super::storage::StorageError;
use crate::service::ServiceError;
use std::fmt::Write;

/// A reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
    /// Extra lines of a multi-line reply, between the first and the last.
    pub body: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
            body: Vec::new(),
        }
    }

    /// A multi-line reply: `code-text`, the body lines indented, `code End`.
    pub fn multi(code: u16, text: impl Into<String>, body: Vec<String>) -> Self {
        Self {
            code,
            text: text.into(),
            body,
        }
    }

    /// The reply as sent on the wire. CR and LF inside text are dropped, so a
    /// file name cannot forge a reply line.
    pub fn encode(&self) -> Vec<u8> {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let mut out = String::new();
        if self.body.is_empty() {
            let _ = write!(out, "{} {}\r\n", self.code, clean(&self.text));
        } else {
            let _ = write!(out, "{}-{}\r\n", self.code, clean(&self.text));
            for line in &self.body {
                let _ = write!(out, " {}\r\n", clean(line));
            }
            let _ = write!(out, "{} End\r\n", self.code);
        }
        out.into_bytes()
    }

    /// Whether the session ends after this reply.
    pub fn closes(&self) -> bool {
        self.code == 221 || self.code == 421
    }
}

// The reply table. Codes per RFC 959, 2228, 2389, 2428, 3659 and 4217.
pub fn greeting() -> Reply {
    Reply::new(220, "gatehouse FTPS ready: AUTH TLS required")
}
pub fn ok(text: impl Into<String>) -> Reply {
    Reply::new(200, text)
}
pub fn superfluous(text: &str) -> Reply {
    Reply::new(202, text)
}
pub fn file_status(text: impl Into<String>) -> Reply {
    Reply::new(213, text)
}
pub fn goodbye() -> Reply {
    Reply::new(221, "Goodbye")
}
pub fn transfer_complete() -> Reply {
    Reply::new(226, "Transfer complete")
}
pub fn logged_in() -> Reply {
    Reply::new(230, "Logged in")
}
pub fn auth_ok() -> Reply {
    Reply::new(234, "Proceed with TLS negotiation")
}
pub fn done(text: impl Into<String>) -> Reply {
    Reply::new(250, text)
}
pub fn path_created(path: &str) -> Reply {
    Reply::new(257, format!("{} created", quote_path(path)))
}
pub fn current_dir(path: &str) -> Reply {
    Reply::new(
        257,
        format!("{} is the current directory", quote_path(path)),
    )
}
pub fn need_password() -> Reply {
    Reply::new(331, "Password required")
}
pub fn pending(text: impl Into<String>) -> Reply {
    Reply::new(350, text)
}
pub fn closing(text: &str) -> Reply {
    Reply::new(421, text)
}
pub fn no_data_connection(text: &str) -> Reply {
    Reply::new(425, format!("Cannot open data connection: {text}"))
}
pub fn transfer_aborted(text: &str) -> Reply {
    Reply::new(426, format!("Transfer aborted: {text}"))
}
pub fn local_error() -> Reply {
    Reply::new(451, "Local error; the action was not taken")
}
pub fn syntax_error(text: &str) -> Reply {
    Reply::new(500, text)
}
pub fn bad_argument(text: &str) -> Reply {
    Reply::new(501, text)
}
pub fn not_implemented() -> Reply {
    Reply::new(502, "Command not implemented")
}
pub fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, text)
}
pub fn unsupported_parameter(text: &str) -> Reply {
    Reply::new(504, text)
}
pub fn protection_required() -> Reply {
    Reply::new(
        521,
        "Data connections must be protected: send PBSZ 0 and PROT P",
    )
}
pub fn not_logged_in(text: &str) -> Reply {
    Reply::new(530, text)
}
pub fn ccc_refused() -> Reply {
    Reply::new(533, "The control connection stays encrypted")
}
pub fn policy_refused(text: &str) -> Reply {
    Reply::new(534, text)
}

/// A path in a 257 reply: quoted, inner quotes doubled (RFC 959 appendix II).
fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

impl From<&ParseError> for Reply {
    fn from(error: &ParseError) -> Self {
        match error {
            ParseError::Unknown => syntax_error("Unknown command"),
            ParseError::BadArgument(message) => bad_argument(message),
            ParseError::NotUtf8 => syntax_error("Command line is not UTF-8"),
        }
    }
}

impl From<&StorageError> for Reply {
    fn from(error: &StorageError) -> Self {
        match error {
            StorageError::NotFound => Reply::new(550, "No such file or directory"),
            StorageError::NotAFile => Reply::new(550, "Not a plain file"),
            StorageError::NotADirectory => Reply::new(550, "Not a directory"),
            StorageError::Exists => Reply::new(550, "It already exists"),
            StorageError::NotEmpty => Reply::new(550, "The directory is not empty"),
            StorageError::Denied => Reply::new(550, "Permission denied"),
            StorageError::Busy => Reply::new(450, "The file is being uploaded; try again later"),
            StorageError::BadName(why) => Reply::new(553, format!("File name not allowed: {why}")),
            StorageError::BadOffset => {
                Reply::new(554, "The restart offset is beyond the file's end")
            }
            StorageError::QuotaBytes => Reply::new(552, "The upload would exceed your quota"),
            StorageError::QuotaFiles => {
                Reply::new(552, "The upload would exceed your file-count quota")
            }
            StorageError::Aborted => transfer_aborted("aborted by the client"),
            StorageError::Truncated => {
                transfer_aborted("the upload ended without TLS close_notify; nothing was kept")
            }
            StorageError::Data(why) => transfer_aborted(why),
            StorageError::Io(error) => {
                tracing::warn!(%error, "FTP storage error");
                local_error()
            }
            StorageError::Service(error) => {
                tracing::warn!(%error, "FTP accounting error");
                local_error()
            }
        }
    }
}

/// The reply to a refused PASS: wrong credentials, or locked out (and closed).
pub fn sign_in_refused(error: &ServiceError) -> Reply {
    match error {
        ServiceError::InvalidCredentials => not_logged_in("Login incorrect"),
        ServiceError::TooManyAttempts { retry_after } => closing(&format!(
            "Too many failed sign-ins; try again in {} s",
            retry_after.as_secs().max(1)
        )),
        other => {
            tracing::warn!(error = %other, "FTP sign-in failed");
            closing("Sign-in is not available right now")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_encoding() {
        assert_eq!(ok("fine").encode(), b"200 fine\r\n");
        let feat = Reply::multi(211, "Features:", vec!["UTF8".into(), "EPSV".into()]);
        assert_eq!(
            feat.encode(),
            b"211-Features:\r\n UTF8\r\n EPSV\r\n211 End\r\n"
        );
        let forged = done("a\r\n200 b");
        assert_eq!(forged.encode(), b"250 a  200 b\r\n");
        assert_eq!(path_created("/a\"b").text, "\"/a\"\"b\" created");
        assert!(closing("x").closes() && goodbye().closes() && !ok("x").closes());
    }
}
