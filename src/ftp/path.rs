//! Virtual paths: what a client names, resolved against its working directory
//! into a normalised absolute path inside the home (`/` is the home itself).
//! `..` never climbs above `/`; cap-std then keeps symlinks from leaving it.

use std::path::PathBuf;

/// A normalised absolute path inside a home, e.g. `/incoming/a.txt`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualPath(String);

impl VirtualPath {
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// Resolves `arg` against `self` (the working directory).
    pub fn join(&self, arg: &str) -> Self {
        let mut parts: Vec<&str> = if arg.starts_with('/') {
            Vec::new()
        } else {
            self.components().collect()
        };
        for part in arg.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                name => parts.push(name),
            }
        }
        Self(format!("/{}", parts.join("/")))
    }

    pub fn parent(&self) -> Self {
        self.join("..")
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The last component ("" for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|p| !p.is_empty())
    }

    /// The path relative to the home, as cap-std wants it ("." for the home).
    pub fn relative(&self) -> PathBuf {
        if self.is_root() {
            PathBuf::from(".")
        } else {
            PathBuf::from(&self.0[1..])
        }
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn is_within(&self, other: &Self) -> bool {
        other.is_root() || self.0 == other.0 || self.0.starts_with(&format!("{}/", other.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_never_leaves_the_home() {
        let cwd = VirtualPath::root().join("incoming/day1");
        assert_eq!(cwd.as_str(), "/incoming/day1");
        for (arg, expected) in [
            ("a.txt", "/incoming/day1/a.txt"),
            ("../a.txt", "/incoming/a.txt"),
            ("../../../../etc/passwd", "/etc/passwd"),
            ("/", "/"),
            ("/x//y/./z/", "/x/y/z"),
            ("..", "/incoming"),
            ("", "/incoming/day1"),
            ("...", "/incoming/day1/..."),
        ] {
            assert_eq!(cwd.join(arg).as_str(), expected, "{arg}");
        }
        assert_eq!(VirtualPath::root().relative(), PathBuf::from("."));
        assert_eq!(cwd.relative(), PathBuf::from("incoming/day1"));
        assert_eq!(cwd.name(), "day1");
        assert_eq!(cwd.parent().as_str(), "/incoming");
        assert!(cwd.is_within(&VirtualPath::root().join("incoming")));
        assert!(
            !VirtualPath::root()
                .join("incomingx")
                .is_within(&cwd.parent())
        );
    }
}
