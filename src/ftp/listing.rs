//! Listing formats: `ls -l` style lines for LIST and STAT, bare names for NLST,
//! and machine-readable facts for MLSD and MLST (RFC 3659).

use super::storage::Entry;
use chrono::{DateTime, Utc};
use std::time::SystemTime;

fn modified(entry: &Entry) -> DateTime<Utc> {
    entry
        .meta
        .modified()
        .map(|t| t.into_std())
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .into()
}

/// A `LIST` line as `ls -l` prints it; times older than half a year show the year.
pub fn list_line(entry: &Entry, now: DateTime<Utc>) -> String {
    let time = modified(entry);
    let recent = (now - time).num_days().abs() < 180;
    let when = if recent {
        time.format("%b %d %H:%M")
    } else {
        time.format("%b %d  %Y")
    };
    let (kind, perms) = if entry.meta.is_dir() {
        ('d', "rwxr-xr-x")
    } else {
        ('-', "rw-r--r--")
    };
    format!(
        "{kind}{perms} 1 ftp ftp {:>12} {when} {}",
        entry.meta.len(),
        entry.name
    )
}

/// The facts of one entry for MLSD and MLST: `type=...;size=...; name`.
pub fn facts(entry: &Entry, name: &str) -> String {
    let modify = modified(entry).format("%Y%m%d%H%M%S");
    if entry.meta.is_dir() {
        format!("type=dir;modify={modify};perm=flcdmpe; {name}")
    } else {
        format!(
            "type=file;size={};modify={modify};perm=adfrw; {name}",
            entry.meta.len()
        )
    }
}

/// The body a listing sends over the data connection, CRLF-terminated lines.
pub fn body(lines: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// An MDTM answer: `YYYYMMDDHHMMSS` in UTC.
pub fn timestamp(time: SystemTime) -> String {
    DateTime::<Utc>::from(time)
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// Parses an MFMT time (`YYYYMMDDHHMMSS`, UTC).
pub fn parse_timestamp(raw: &str) -> Option<SystemTime> {
    let time = chrono::NaiveDateTime::parse_from_str(raw, "%Y%m%d%H%M%S").ok()?;
    Some(time.and_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let time = parse_timestamp("20260105090000").unwrap_or(SystemTime::UNIX_EPOCH);
        assert_eq!(timestamp(time), "20260105090000");
        assert!(parse_timestamp("20261305090000").is_none());
        assert!(parse_timestamp("x").is_none());
        assert_eq!(
            body(["a".to_owned(), "b".to_owned()].into_iter()),
            b"a\r\nb\r\n"
        );
    }
}
