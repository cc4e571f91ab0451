//! `[mail]`: who sends, who hears the alerts, and how mail leaves (SMTP or `.eml` files).

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;

use super::secrets::{Refused, SMTP_PASSWORD, SecretSlot, secret};
use super::{check_address, non_empty};

/// Outgoing mail.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The sender, `Name <address>`.
    pub from: String,
    /// Where alerts go.
    pub operator: String,
    /// How mail leaves.
    pub transport: MailTransport,
}

/// How mail leaves.
#[derive(Clone, Debug)]
pub enum MailTransport {
    /// Each message becomes an `.eml` file in this directory.
    File {
        /// Where the files go.
        dir: PathBuf,
    },
    /// An SMTP relay.
    Smtp {
        /// The relay's host name.
        host: String,
        /// Its port.
        port: u16,
        /// How the connection is protected.
        security: SmtpSecurity,
        /// Empty for no authentication.
        username: String,
        /// The password for `username`.
        password: SecretSlot,
    },
}

/// How an SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on localhost.
    None,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMail {
    from: String,
    operator: String,
    transport: String,
    file_dir: PathBuf,
    smtp_host: String,
    smtp_port: u16,
    smtp_security: SmtpSecurity,
    smtp_username: String,
    smtp_password_file: Option<PathBuf>,
    pub(super) smtp_password: Refused,
}

impl Default for RawMail {
    fn default() -> Self {
        RawMail {
            from: "Compass AI Readiness <reports@example.com>".into(),
            operator: "you@example.com".into(),
            transport: "file".into(),
            file_dir: "mail".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password_file: None,
            smtp_password: None,
        }
    }
}

impl RawMail {
    pub(super) fn check(
        self,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<MailConfig> {
        check_address("mail.from", &self.from)?;
        check_address("mail.operator", &self.operator)?;
        let transport = match self.transport.as_str() {
            "file" => MailTransport::File {
                dir: dir.join(&self.file_dir),
            },
            "smtp" => {
                non_empty("mail.smtp_host", &self.smtp_host)?;
                if self.smtp_security == SmtpSecurity::None
                    && !matches!(self.smtp_host.as_str(), "localhost" | "127.0.0.1" | "::1")
                {
                    bail!(
                        "mail.smtp_security = \"none\" is only allowed for a relay on localhost, \
                     not {}",
                        self.smtp_host
                    );
                }
                MailTransport::Smtp {
                    host: self.smtp_host,
                    port: self.smtp_port,
                    security: self.smtp_security,
                    username: self.smtp_username,
                    password: secret(
                        "SMTP password",
                        SMTP_PASSWORD,
                        "mail.smtp_password_file",
                        self.smtp_password_file,
                        dir,
                        env,
                    )?,
                }
            }
            other => bail!("mail.transport must be \"file\" or \"smtp\", got \"{other}\""),
        };
        Ok(MailConfig {
            from: self.from,
            operator: self.operator,
            transport,
        })
    }
}
