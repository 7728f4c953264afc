//! Mail templates (minijinja): built-in defaults, overridden by files in
//! `[mail] templates_dir`. `<kind>.txt` is the plain text, its first line
//! `Subject: ...`; `<kind>.html` is the HTML part (else `layout.html` wraps
//! the text). `<kind>.<language>.txt` (say `welcome.de.txt`) is picked for
//! users whose `frontend_language` is that language.

use crate::domain::mail::MailKind;
use crate::service::mail::Outgoing;
use minijinja::{Environment, Value, context};
use std::collections::BTreeMap;
use std::path::Path;

const BUILT_IN: [(&str, &str); 13] = [
    ("activation.txt", include_str!("templates/activation.txt")),
    ("welcome.txt", include_str!("templates/welcome.txt")),
    (
        "email_confirmation.txt",
        include_str!("templates/email_confirmation.txt"),
    ),
    (
        "password_reset.txt",
        include_str!("templates/password_reset.txt"),
    ),
    (
        "password_changed.txt",
        include_str!("templates/password_changed.txt"),
    ),
    (
        "two_factor_reset.txt",
        include_str!("templates/two_factor_reset.txt"),
    ),
    (
        "email_changed.txt",
        include_str!("templates/email_changed.txt"),
    ),
    (
        "account_approved.txt",
        include_str!("templates/account_approved.txt"),
    ),
    (
        "account_deactivated.txt",
        include_str!("templates/account_deactivated.txt"),
    ),
    ("message.txt", include_str!("templates/message.txt")),
    ("test.txt", include_str!("templates/test.txt")),
    ("digest.txt", include_str!("templates/digest.txt")),
    ("layout.html", include_str!("templates/layout.html")),
];

/// A template that could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read mail template {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("mail template {name}: {source}")]
    Syntax {
        name: String,
        source: minijinja::Error,
    },
    #[error("mail template {name} must start with a `Subject:` line")]
    NoSubject { name: String },
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every template, built-in or overridden, parsed once at start.
pub struct Templates {
    env: Environment<'static>,
    /// Where links point and how the site calls itself.
    site: String,
    site_name: String,
}

impl Templates {
    /// Loads the built-ins, then every `*.txt` and `*.html` in `dir` (a
    /// missing folder means no overrides). A broken template stops start-up.
    pub fn load(dir: &Path, site: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        let mut add = |name: String, source: String| {
            env.add_template_owned(name.clone(), source)
                .map_err(|source| TemplateError::Syntax { name, source })
        };
        for (name, source) in BUILT_IN {
            add(name.to_owned(), source.to_owned())?;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(error),
        };
        let read_error = |source| TemplateError::Read {
            path: dir.to_owned(),
            source,
        };
        for entry in entries.map_err(read_error)? {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.ends_with(".txt") || name.ends_with(".html")) {
                continue;
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|source| TemplateError::Read { path, source })?;
            add(name, source)?;
        }
        let site = site.trim_end_matches('/').to_owned();
        let site_name = site.split("://").nth(1).unwrap_or(&site).to_owned();
        let templates = Self {
            env,
            site,
            site_name,
        };
        for name in templates
            .env
            .templates()
            .map(|(name, _)| name.to_owned())
            .collect::<Vec<_>>()
        {
            if name.ends_with(".txt") && !templates.has_subject_line(&name) {
                return Err(TemplateError::NoSubject { name });
            }
        }
        Ok(templates)
    }

    fn has_subject_line(&self, name: &str) -> bool {
        self.env
            .get_template(name)
            .map(|template| template.source().trim_start().starts_with("Subject:"))
            .unwrap_or(false)
    }

    /// The template name for `kind` in `language`: `kind.de-DE.txt`, then
    /// `kind.de.txt`, then `kind.txt`.
    fn pick(&self, kind: MailKind, language: Option<&str>, extension: &str) -> Option<String> {
        let base = kind.name();
        let mut names = Vec::new();
        if let Some(language) = language.filter(|l| !l.is_empty()) {
            names.push(format!("{base}.{language}.{extension}"));
            if let Some((primary, _)) = language.split_once(['-', '_']) {
                names.push(format!("{base}.{primary}.{extension}"));
            }
        }
        names.push(format!("{base}.{extension}"));
        names
            .into_iter()
            .find(|name| self.env.get_template(name).is_ok())
    }

    fn values(&self, mail: &Outgoing) -> BTreeMap<String, Value> {
        let mut values: BTreeMap<String, Value> = mail
            .params
            .iter()
            .map(|(key, value)| (key.clone(), Value::from(value.clone())))
            .collect();
        values.insert("site".into(), Value::from(self.site.clone()));
        values.insert("site_name".into(), Value::from(self.site_name.clone()));
        values.insert(
            "link".into(),
            Value::from(mail.link.clone().unwrap_or_default()),
        );
        values.insert("language".into(), Value::from(mail.language.clone()));
        values
    }

    /// Renders subject, text and HTML of `mail` (a digest with its parts).
    pub fn render(&self, mail: &Outgoing) -> Result<Rendered, minijinja::Error> {
        let mut values = self.values(mail);
        if mail.kind == MailKind::Digest {
            let parts = mail
                .parts
                .iter()
                .map(|part| {
                    let rendered = self.render(part)?;
                    Ok(context! { subject => rendered.subject, text => rendered.text })
                })
                .collect::<Result<Vec<_>, minijinja::Error>>()?;
            values.insert("parts".into(), Value::from(parts));
        }
        let missing =
            || minijinja::Error::new(minijinja::ErrorKind::TemplateNotFound, mail.kind.name());
        let name = self
            .pick(mail.kind, mail.language.as_deref(), "txt")
            .ok_or_else(missing)?;
        let full = self.env.get_template(&name)?.render(values.clone())?;
        let (first, text) = full.trim_start().split_once('\n').unwrap_or((&full, ""));
        let subject = first
            .trim_start_matches("Subject:")
            .trim()
            .replace(['\r', '\n'], " ");
        let text = format!("{}\n", text.trim());
        let html = match self.pick(mail.kind, mail.language.as_deref(), "html") {
            Some(name) => self.env.get_template(&name)?.render(values.clone())?,
            None => {
                let paragraphs: Vec<Value> = text
                    .split("\n\n")
                    .map(|paragraph| paragraph.lines().map(Value::from).collect::<Vec<_>>())
                    .filter(|lines| !lines.is_empty())
                    .map(Value::from)
                    .collect();
                values.insert("subject".into(), Value::from(subject.clone()));
                values.insert("paragraphs".into(), Value::from(paragraphs));
                self.env
                    .get_template("layout.html")?
                    .render(values.clone())?
            }
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(kind: MailKind, language: Option<&str>) -> Outgoing {
        Outgoing {
            id: 1,
            kind,
            to: "ana@example.org".into(),
            language: language.map(str::to_owned),
            params: [("name", "Ana <b>"), ("login", "ana")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            link: Some("https://gh.example.org/activate?token=gh_act_x".into()),
            message_id: "<1@x>".into(),
            parts: Vec::new(),
        }
    }

    fn built_in() -> Templates {
        Templates::load(Path::new("/nonexistent"), "https://gh.example.org/")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_kind_renders_with_a_subject_and_both_parts() {
        let templates = built_in();
        for kind in MailKind::ALL {
            let rendered = templates
                .render(&outgoing(kind, None))
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(
                !rendered.subject.is_empty() || kind == MailKind::Message,
                "{kind:?}"
            );
            assert!(rendered.html.contains("<html"), "{kind:?}");
        }
        let activation = templates
            .render(&outgoing(MailKind::Activation, None))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            activation.subject,
            "Activate your account at gh.example.org"
        );
        assert!(
            activation
                .text
                .contains("https://gh.example.org/activate?token=gh_act_x")
        );
        let html = activation.html.replace("&#x2f;", "/");
        assert!(
            html.contains("<a href=\"https://gh.example.org/activate?token=gh_act_x\">"),
            "{html}"
        );
        assert!(
            activation.html.contains("Ana &lt;b&gt;"),
            "HTML escapes values: {}",
            activation.html
        );
        assert!(activation.text.contains("Hello Ana <b>,"));
    }

    #[test]
    fn files_override_and_languages_pick_variants() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"))
        };
        write(
            "welcome.de.txt",
            "Subject: Willkommen {{ name }}\n\nHallo!\n",
        );
        write("welcome.html", "<html><b>{{ name }}</b></html>");
        let templates =
            Templates::load(dir.path(), "https://x.org").unwrap_or_else(|e| panic!("{e}"));
        let german = templates
            .render(&outgoing(MailKind::Welcome, Some("de-AT")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(german.subject, "Willkommen Ana <b>");
        assert_eq!(german.html, "<html><b>Ana &lt;b&gt;</b></html>");
        let english = templates
            .render(&outgoing(MailKind::Welcome, Some("fr")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(english.subject, "Welcome to x.org");

        write("test.txt", "no subject line\n");
        assert!(matches!(
            Templates::load(dir.path(), "https://x.org"),
            Err(TemplateError::NoSubject { .. })
        ));
        write("test.txt", "Subject: {% if %}\n");
        assert!(matches!(
            Templates::load(dir.path(), "https://x.org"),
            Err(TemplateError::Syntax { .. })
        ));
    }

    #[test]
    fn a_digest_carries_its_parts() {
        let mut digest = outgoing(MailKind::Digest, None);
        digest.params.insert("count".into(), "2".into());
        digest.parts = vec![
            outgoing(MailKind::PasswordChanged, None),
            outgoing(MailKind::AccountApproved, None),
        ];
        let rendered = built_in().render(&digest).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rendered.subject, "2 notifications from gh.example.org");
        assert!(rendered.text.contains("== Your password was changed =="));
        assert!(rendered.text.contains("== Your account was approved =="));
    }
}
