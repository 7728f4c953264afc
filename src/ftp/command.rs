//! The FTP command parser: one control line in, one typed [`Command`] out.
//! Pure (no I/O), so every verb and bad argument is covered by table tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Longest control line accepted, CRLF included (RFC 959 leaves it open; paths
/// of 4 KiB plus the verb fit).
pub const MAX_LINE: usize = 8 * 1024;

/// A parsed control command. Path arguments are raw; the session resolves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Auth(String),
    Pbsz(String),
    Prot(char),
    Ccc,
    Feat,
    Opts(String),
    Syst,
    Type(TransferType),
    Mode(char),
    Stru(char),
    Pwd,
    Cwd(String),
    Cdup,
    Mkd(String),
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    Size(String),
    Mdtm(String),
    /// MFMT: the new modification time (YYYYMMDDHHMMSS, UTC) and the path.
    Mfmt(String, String),
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Stor(String),
    Appe(String),
    Stou,
    Retr(String),
    Rest(u64),
    Abor,
    Stat(Option<String>),
    Noop,
    Quit,
    Help,
    Allo,
    Pasv,
    Epsv,
    /// EPSV ALL: from now on only EPSV opens data connections (RFC 2428).
    EpsvAll,
    /// PORT or EPRT: where the client listens for an active data connection.
    Port(SocketAddr),
    /// A verb we know but do not offer (SITE, SMNT, REIN, ACCT...).
    NotImplemented(String),
}

/// The representation type asked for; both are moved as bytes unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii,
    Binary,
}

/// Why a line is not a command we can run; the session answers it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    BadArgument(&'static str),
    #[error("command line is not UTF-8")]
    NotUtf8,
}

/// Parses one control line (with or without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = strip_telnet(line);
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let (verb, arg) = match line.split_once(' ') {
        Some((verb, arg)) => (verb, arg),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    if arg.contains('\0') {
        return Err(ParseError::BadArgument("arguments may not contain NUL"));
    }
    let path = || required(arg, "a path is required");
    let optional = || optional_path(arg);
    Ok(match verb.as_str() {
        "USER" => Command::User(required(arg, "a user name is required")?),
        "PASS" => Command::Pass(arg.to_owned()),
        "AUTH" => Command::Auth(required(arg, "AUTH needs a mechanism")?.to_ascii_uppercase()),
        "PBSZ" => Command::Pbsz(required(arg, "PBSZ needs a size")?),
        "PROT" => Command::Prot(single_letter(arg, "PROT needs one of C, S, E, P")?),
        "CCC" => Command::Ccc,
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(required(arg, "OPTS needs an option")?),
        "SYST" => Command::Syst,
        "TYPE" => Command::Type(transfer_type(arg)?),
        "MODE" => Command::Mode(single_letter(arg, "MODE needs S, B or C")?),
        "STRU" => Command::Stru(single_letter(arg, "STRU needs F, R or P")?),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => Command::Cwd(path()?),
        "CDUP" | "XCUP" => Command::Cdup,
        "MKD" | "XMKD" => Command::Mkd(path()?),
        "RMD" | "XRMD" => Command::Rmd(path()?),
        "DELE" => Command::Dele(path()?),
        "RNFR" => Command::Rnfr(path()?),
        "RNTO" => Command::Rnto(path()?),
        "SIZE" => Command::Size(path()?),
        "MDTM" => Command::Mdtm(path()?),
        "MFMT" => mfmt(arg)?,
        "LIST" => Command::List(list_path(arg)),
        "NLST" => Command::Nlst(list_path(arg)),
        "MLSD" => Command::Mlsd(optional()),
        "MLST" => Command::Mlst(optional()),
        "STOR" => Command::Stor(path()?),
        "APPE" => Command::Appe(path()?),
        "STOU" => Command::Stou,
        "RETR" => Command::Retr(path()?),
        "REST" => Command::Rest(
            arg.trim()
                .parse()
                .map_err(|_| ParseError::BadArgument("REST needs a byte offset"))?,
        ),
        "ABOR" => Command::Abor,
        "STAT" => Command::Stat(list_path(arg)),
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "HELP" => Command::Help,
        "ALLO" => Command::Allo,
        "PASV" => Command::Pasv,
        "EPSV" if arg.trim().eq_ignore_ascii_case("ALL") => Command::EpsvAll,
        "EPSV" => Command::Epsv,
        "PORT" => Command::Port(port_argument(arg)?),
        "EPRT" => Command::Port(eprt_argument(arg)?),
        "SITE" | "SMNT" | "REIN" | "ACCT" | "LPRT" | "LPSV" | "ADAT" | "MIC" | "CONF" | "ENC" => {
            Command::NotImplemented(verb)
        }
        _ => return Err(ParseError::Unknown),
    })
}

/// Drops the Telnet IP and Synch (IAC IP, IAC DM) clients send before an
/// urgent ABOR (RFC 959 section 4.1.3).
fn strip_telnet(mut line: &[u8]) -> &[u8] {
    while let [0xff, _, rest @ ..] = line {
        line = rest;
    }
    line.strip_prefix(&[0xf2]).unwrap_or(line)
}

fn required(arg: &str, missing: &'static str) -> Result<String, ParseError> {
    if arg.is_empty() {
        Err(ParseError::BadArgument(missing))
    } else {
        Ok(arg.to_owned())
    }
}

fn optional_path(arg: &str) -> Option<String> {
    (!arg.is_empty()).then(|| arg.to_owned())
}

/// LIST and NLST: clients add `ls` options (`-a`, `-la`); they are dropped.
fn list_path(arg: &str) -> Option<String> {
    let mut rest = arg;
    while let Some(stripped) = rest.strip_prefix('-') {
        let end = stripped.find(' ').unwrap_or(stripped.len());
        rest = stripped[end..].trim_start();
    }
    optional_path(rest)
}

fn single_letter(arg: &str, message: &'static str) -> Result<char, ParseError> {
    let mut letters = arg.trim().chars();
    match (letters.next(), letters.next()) {
        (Some(letter), None) => Ok(letter.to_ascii_uppercase()),
        _ => Err(ParseError::BadArgument(message)),
    }
}

fn transfer_type(arg: &str) -> Result<TransferType, ParseError> {
    let mut words = arg.split_whitespace().map(str::to_ascii_uppercase);
    match (words.next().as_deref(), words.next().as_deref()) {
        (Some("A"), None | Some("N")) => Ok(TransferType::Ascii),
        (Some("I"), None) | (Some("L"), Some("8")) => Ok(TransferType::Binary),
        _ => Err(ParseError::BadArgument("TYPE needs A, I or L 8")),
    }
}

fn mfmt(arg: &str) -> Result<Command, ParseError> {
    let bad = ParseError::BadArgument("MFMT needs YYYYMMDDHHMMSS and a path");
    let (time, path) = arg.split_once(' ').ok_or(bad.clone())?;
    if time.len() != 14 || !time.bytes().all(|b| b.is_ascii_digit()) || path.is_empty() {
        return Err(bad);
    }
    Ok(Command::Mfmt(time.to_owned(), path.to_owned()))
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959).
fn port_argument(arg: &str) -> Result<SocketAddr, ParseError> {
    let bad = ParseError::BadArgument("PORT needs h1,h2,h3,h4,p1,p2");
    let numbers: Vec<u8> = arg
        .trim()
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad.clone())?;
    let [a, b, c, d, high, low] = numbers[..] else {
        return Err(bad);
    };
    let port = (u16::from(high) << 8) | u16::from(low);
    Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port))
}

/// `EPRT |1|h|port|` or `|2|h|port|` (RFC 2428); any delimiter character.
fn eprt_argument(arg: &str) -> Result<SocketAddr, ParseError> {
    let bad = ParseError::BadArgument("EPRT needs |proto|address|port|");
    let arg = arg.trim();
    let delimiter = arg.chars().next().ok_or(bad.clone())?;
    let parts: Vec<&str> = arg.split(delimiter).collect();
    let ["", proto, host, port, ""] = parts[..] else {
        return Err(bad);
    };
    let ip: IpAddr = host.parse().map_err(|_| bad.clone())?;
    let matches = matches!((proto, &ip), ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)));
    let port: u16 = port.parse().map_err(|_| bad.clone())?;
    if !matches {
        return Err(bad);
    }
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command as C;

    #[test]
    fn verbs_and_arguments() {
        let cases: Vec<(&[u8], Command)> = vec![
            (b"USER ann\r\n", C::User("ann".into())),
            (b"user ann\n", C::User("ann".into())),
            (b"PASS \r\n", C::Pass(String::new())),
            (b"PASS two words\r\n", C::Pass("two words".into())),
            (b"AUTH tls\r\n", C::Auth("TLS".into())),
            (b"PBSZ 0\r\n", C::Pbsz("0".into())),
            (b"PROT p\r\n", C::Prot('P')),
            (b"TYPE I\r\n", C::Type(TransferType::Binary)),
            (b"TYPE A N\r\n", C::Type(TransferType::Ascii)),
            (b"TYPE L 8\r\n", C::Type(TransferType::Binary)),
            (b"CWD /a b/c\r\n", C::Cwd("/a b/c".into())),
            (b"XPWD\r\n", C::Pwd),
            (b"LIST\r\n", C::List(None)),
            (b"LIST -la\r\n", C::List(None)),
            (b"LIST -a dir\r\n", C::List(Some("dir".into()))),
            (b"NLST x\r\n", C::Nlst(Some("x".into()))),
            (b"MLSD\r\n", C::Mlsd(None)),
            (b"REST 100\r\n", C::Rest(100)),
            (
                b"MFMT 20260105090000 a.txt\r\n",
                C::Mfmt("20260105090000".into(), "a.txt".into()),
            ),
            (
                b"PORT 127,0,0,1,4,1\r\n",
                C::Port(SocketAddr::from(([127, 0, 0, 1], 1025))),
            ),
            (
                b"EPRT |1|127.0.0.1|2000|\r\n",
                C::Port(SocketAddr::from(([127, 0, 0, 1], 2000))),
            ),
            (
                b"EPRT |2|::1|2000|\r\n",
                C::Port(SocketAddr::new(
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    2000,
                )),
            ),
            (b"SITE CHMOD 777 x\r\n", C::NotImplemented("SITE".into())),
            (b"EPSV\r\n", C::Epsv),
            (b"EPSV ALL\r\n", C::EpsvAll),
            (b"\xff\xf4\xff\xf2ABOR\r\n", C::Abor),
            (b"\xff\xf4\xf2ABOR\r\n", C::Abor),
            (b"STAT\r\n", C::Stat(None)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                parse(line),
                Ok(expected),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        let cases: Vec<&[u8]> = vec![
            b"USER\r\n",
            b"REST abc\r\n",
            b"REST -1\r\n",
            b"TYPE X\r\n",
            b"PROT\r\n",
            b"PROT PP\r\n",
            b"MFMT 2026 x\r\n",
            b"MFMT 20260105090000\r\n",
            b"PORT 1,2,3\r\n",
            b"PORT 1,2,3,4,5,300\r\n",
            b"EPRT |1|::1|20|\r\n",
            b"EPRT |3|x|20|\r\n",
            b"EPRT\r\n",
            b"STOR\r\n",
            b"CWD a\0b\r\n",
            b"\xff\xfe\r\n",
            b"\r\n",
            b"BOGUS x\r\n",
        ];
        for line in cases {
            assert!(parse(line).is_err(), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..10_000 {
            let len = (state % 40) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state & 0xff) as u8
                })
                .collect();
            let _ = parse(&line);
        }
    }
}
