//! Secrets: never read from compass.toml, but from an environment variable, a file it names
//! (`<VAR>_FILE`) or a file a `*_file` key names; held in a [`Secret`] whose `Debug` shows
//! nothing, and redacted from any error that quotes the file.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// A key that would hold a secret: present only to refuse it with a useful message.
pub(super) type Refused = Option<toml::Value>;

/// A secret value: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the environment or a file.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret that may or may not be set, and how to set it.
#[derive(Clone, Debug)]
pub struct SecretSlot {
    value: Option<Secret>,
    what: &'static str,
    var: &'static str,
    key: &'static str,
}

impl SecretSlot {
    /// The secret, or an error that says how to provide it.
    pub fn get(&self) -> anyhow::Result<&Secret> {
        self.value.as_ref().with_context(|| {
            format!(
                "missing the {}: set {} (or {}_FILE, or {} in compass.toml, to a file that holds it)",
                self.what, self.var, self.var, self.key
            )
        })
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.value.is_some()
    }
}

pub(super) const STRIPE_KEY: &str = "COMPASS_STRIPE_SECRET_KEY";

pub(super) const WEBHOOK_SECRETS: &str = "COMPASS_STRIPE_WEBHOOK_SECRETS";

pub(super) const ANTHROPIC_KEY: &str = "COMPASS_ANTHROPIC_API_KEY";

pub(super) const SMTP_PASSWORD: &str = "COMPASS_SMTP_PASSWORD";

pub(super) const CAPTCHA_SECRET: &str = "COMPASS_CAPTCHA_SECRET";

/// Reads a secret from `var`, else from the file named by `var_FILE`, else from the file named
/// in compass.toml. A named file that cannot be read is an error now, not when it is needed.
pub(super) fn secret(
    what: &'static str,
    var: &'static str,
    key: &'static str,
    file: Option<PathBuf>,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<SecretSlot> {
    let from_file = |path: PathBuf, named_by: &str| -> anyhow::Result<Option<Secret>> {
        if looks_secret(&path.to_string_lossy()) {
            bail!(
                "{named_by} should name a file that holds the {what}, but its value looks like \
                 the secret itself: set {var} instead"
            );
        }
        let path = dir.join(path);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the {what} from {} ({named_by})",
                path.display()
            )
        })?;
        let value = text.trim();
        if value.is_empty() {
            bail!("the {what} file {} ({named_by}) is empty", path.display());
        }
        Ok(Some(Secret::new(value)))
    };
    let value = match env(var).filter(|v| !v.trim().is_empty()) {
        Some(value) => Some(Secret::new(value.trim())),
        None => match (env(&format!("{var}_FILE")), file) {
            (Some(path), _) => from_file(path.into(), &format!("{var}_FILE"))?,
            (None, Some(path)) => from_file(path, key)?,
            (None, None) => None,
        },
    };
    Ok(SecretSlot {
        value,
        what,
        var,
        key,
    })
}

/// A message with its quoted values and anything shaped like a key taken out: a secret pasted
/// into the wrong line must not end up in a terminal or a log.
pub(super) fn redact_secrets(message: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut unquoted = String::with_capacity(message.len());
    for (i, part) in message.split('"').enumerate() {
        unquoted.push_str(if i % 2 == 1 { "\"…\"" } else { part });
    }
    unquoted
        .split_inclusive(|c: char| !is_word(c))
        .map(|piece| {
            let word = piece.trim_end_matches(|c: char| !is_word(c));
            if looks_secret(word) {
                piece.replacen(word, "[redacted]", 1)
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

/// Whether a word looks like an API key or password rather than a name: a known key prefix, or
/// a long run of letters and digits.
pub(super) fn looks_secret(word: &str) -> bool {
    const PREFIXES: [&str; 5] = ["sk_", "rk_", "whsec_", "sk-ant-", "sk-"];
    if PREFIXES.iter().any(|p| word.starts_with(p)) {
        return true;
    }
    word.len() >= 24
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Refuses a secret written into compass.toml: each key, whether the file sets it, and the
/// variable that should hold it instead.
pub(super) fn refuse_in_file(found: &[(&str, bool, &str)]) -> anyhow::Result<()> {
    if let Some((key, _, var)) = found.iter().find(|(_, present, _)| *present) {
        bail!(
            "{key}: secrets are not read from compass.toml; set {var} in the environment, or \
             {key}_file to a file that holds it"
        );
    }
    Ok(())
}
