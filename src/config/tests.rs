//! Loading the configuration: layering, the documented file, bad values.
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_without_file() {
    let config = Config::load_from(None, env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.data_dir, PathBuf::from("data"));
    assert!(!config.registration.enabled);
    assert_eq!(config.passwords.min_length, 12);
}

#[test]
fn file_then_env_layering() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("g.toml");
    std::fs::write(
        &path,
        "[http]\nlisten = \"127.0.0.1:1\"\n[passwords]\nmin_length = 20\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let vars = env(&[
        ("GATEHOUSE_HTTP__LISTEN", "127.0.0.1:9000"),
        ("GATEHOUSE_REGISTRATION__ENABLED", "true"),
        ("GATEHOUSE_TOKENS__SESSION_TTL", "2h"),
        ("GATEHOUSE_DATA_DIR", "/var/lib/gh"),
        // Not config keys: the CLI's own, a wrapper script's.
        ("GATEHOUSE_TOKEN", "gh_api_x"),
        ("GATEHOUSE_URL", "http://127.0.0.1:8080"),
        ("GATEHOUSE_WRAPPER_VERSION", "3"),
        ("OTHER", "x"),
    ]);
    let config = Config::load_from(Some(&path), vars).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(config.passwords.min_length, 20);
    assert!(config.registration.enabled);
    assert_eq!(config.tokens.session_ttl, Duration::from_secs(7200));
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/gh"));
}

/// config/gatehouse.toml stays true: with every documented key uncommented it
/// still loads (no key the code does not know, every value well-formed).
#[test]
fn documented_config_file_loads_with_every_key_set() {
    let documented = include_str!("../../config/gatehouse.toml");
    let is_key = |line: &str| {
        let line = line.trim_start_matches("# ");
        line.starts_with('[')
            || line
                .split_once(" = ")
                .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    };
    let uncommented: String = documented
        .lines()
        .map(|line| {
            if line.starts_with("# ") && is_key(line) {
                &line[2..]
            } else {
                line
            }
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("all.toml");
    std::fs::write(&path, &uncommented).unwrap_or_else(|e| panic!("{e}"));
    let config =
        Config::load_from(Some(&path), env(&[])).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(config.ldap.group_map.len(), 1);
    assert_eq!(
        config.ftp.passive_ports,
        PortRange {
            first: 50000,
            last: 50999
        }
    );
    assert_eq!(
        config.tokens.activation_ttl,
        Duration::from_secs(7 * 24 * 3600)
    );
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (vec![("GATEHOUSE_HTTP__LISTN", "x")], "listn"),
        (vec![("GATEHOUSE_HTTP__LISTEN", "nope")], "http.listen"),
        (
            vec![("GATEHOUSE_PASSWORDS__MIN_LENGTH", "0")],
            "passwords.min_length",
        ),
        (
            vec![("GATEHOUSE_ACCOUNTS__ON_DELETE", "shred")],
            "accounts.on_delete",
        ),
    ];
    for (vars, needle) in cases {
        let vars: Vec<(&str, &str)> = vars;
        let error = Config::load_from(None, env(&vars))
            .err()
            .map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains(needle)),
            "{error:?} lacks {needle}"
        );
    }
}
