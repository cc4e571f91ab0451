//! Email: composing messages from templates and handing them to SMTP or to `.eml` files.
//! Only this module knows lettre.
//!
//! Each kind of email has three templates in the method's `mail/` folder: a subject and a plain-text
//! body, rendered without escaping (they are not HTML), and an HTML body, rendered with
//! handlebars' HTML escaping inside the shared layout. What customers typed is data in all three.

pub mod outbox;

use std::time::Duration;

use anyhow::Context;
use handlebars::Handlebars;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{FileTransport, Message, SmtpTransport, Transport as _};
use serde::Serialize;

use crate::config::{MailConfig, MailTransport, SmtpSecurity};
use crate::method::{Method, render_error, template_error};
use crate::order::{EmailKind, Status};

/// How long one SMTP conversation may take before it counts as failed (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Every kind of email, each with `mail/{kind}.subject.hbs`, `.txt.hbs` and `.html.hbs` in
/// the method.
const KINDS: [&str; 7] = [
    "payment_confirmation",
    "report_ready",
    "processing_failed",
    "refund_processed",
    "refund_under_review",
    "sign_in_link",
    "operator_alert",
];

const LAYOUT: &str = "mail/layout.html.hbs";
const TEXT_FOOTER: &str = "mail/footer.txt.hbs";

/// A message ready to send.
#[derive(Clone, Debug)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Files to attach: name, MIME type, bytes.
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

/// Renders emails from the embedded templates.
#[derive(Debug)]
pub struct Composer {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    /// The current method's tiers: id and name.
    tiers: Vec<(crate::order::Tier, String)>,
    /// The current method's brand name, if it has one.
    brand: Option<String>,
    /// What the current method assesses: "AI readiness".
    assessment: String,
    /// The name of the report's PDF as attached.
    report_file_stem: String,
    /// The brand's colour.
    primary: String,
    /// Whether the brand has a logo.
    logo: bool,
}

impl Composer {
    /// Compiles `method`'s email templates (the current method's: emails are the business's
    /// voice now, whichever method an order was sold with).
    pub fn new(method: &Method) -> anyhow::Result<Composer> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let source = |path: &str| {
            method
                .text(path)
                .with_context(|| format!("the method has no {path}"))
        };
        html.register_template_string("layout", source(LAYOUT)?)
            .map_err(|err| template_error(LAYOUT, &err))?;
        text.register_template_string("footer", source(TEXT_FOOTER)?)
            .map_err(|err| template_error(TEXT_FOOTER, &err))?;
        for kind in KINDS {
            for (part, name) in [
                ("subject", format!("{kind}.subject")),
                ("txt", format!("{kind}.txt")),
            ] {
                let path = format!("mail/{kind}.{part}.hbs");
                text.register_template_string(&name, source(&path)?)
                    .map_err(|err| template_error(&path, &err))?;
            }
            let path = format!("mail/{kind}.html.hbs");
            html.register_template_string(kind, source(&path)?)
                .map_err(|err| template_error(&path, &err))?;
        }
        let known = |path: &str| {
            path == LAYOUT
                || path == TEXT_FOOTER
                || KINDS.iter().any(|kind| {
                    ["subject", "txt", "html"]
                        .iter()
                        .any(|part| path == format!("mail/{kind}.{part}.hbs"))
                })
        };
        if let Some(path) = method
            .files()
            .keys()
            .find(|p| p.starts_with("mail/") && !known(p))
        {
            anyhow::bail!(
                "{path}: compass sends no such email: the templates are mail/{{kind}}.subject.hbs, \
                 .txt.hbs and .html.hbs for {}, with mail/layout.html.hbs and mail/footer.txt.hbs",
                KINDS.join(", ")
            );
        }
        let tiers = method
            .tiers
            .iter()
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect();
        Ok(Composer {
            html,
            text,
            tiers,
            brand: method.brand.name.clone(),
            assessment: method.assessment.name.clone(),
            report_file_stem: method.report_file_stem(),
            primary: method.brand.primary().to_owned(),
            logo: method.brand.logo.is_some(),
        })
    }

    /// What the current method assesses, as emails name the report: "AI readiness".
    pub fn assessment(&self) -> &str {
        &self.assessment
    }

    /// The name of the report's PDF as attached, without `.pdf`.
    pub fn report_file_stem(&self) -> &str {
        &self.report_file_stem
    }

    /// The name emails sign with: the method's brand, else `business` (`[business] name`).
    pub fn business<'a>(&'a self, business: &'a str) -> &'a str {
        self.brand.as_deref().unwrap_or(business)
    }

    /// A tier's name, as the current method calls it (its id, if it sells it no more).
    pub fn tier_name(&self, tier: &crate::order::Tier) -> String {
        self.tiers
            .iter()
            .find(|(id, _)| id == tier)
            .map_or_else(|| tier.as_str().to_owned(), |(_, name)| name.clone())
    }

    /// Subject, text and HTML of email `kind` for `data`.
    pub fn compose(
        &self,
        kind: EmailKind,
        to: &str,
        data: &impl Serialize,
    ) -> anyhow::Result<Email> {
        let name = kind.as_str();
        // The brand's look, for the layout: its colour, and whether it has a logo to show
        // (served at `{site}/assets/logo`).
        let mut data = serde_json::to_value(data).context("cannot encode the email's data")?;
        if let Some(fields) = data.as_object_mut() {
            fields.insert("primary".into(), self.primary.clone().into());
            fields.insert("logo".into(), self.logo.into());
        }
        let data = &data;
        // A template that names a value the data lacks fails with its file and line.
        let failed = |part: &str| {
            let path = format!("mail/{name}.{part}.hbs");
            move |err: handlebars::RenderError| {
                let path = match err.template_name.as_deref() {
                    Some("layout") => LAYOUT,
                    Some("footer") => TEXT_FOOTER,
                    _ => &path,
                };
                render_error(path, &err)
            }
        };
        let subject = self
            .text
            .render(&format!("{name}.subject"), data)
            .map_err(failed("subject"))?;
        Ok(Email {
            to: to.to_owned(),
            // A header is one line, whatever a customer typed into a name.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self
                .text
                .render(&format!("{name}.txt"), data)
                .map_err(failed("txt"))?,
            html: self.html.render(name, data).map_err(failed("html"))?,
            attachments: Vec::new(),
        })
    }
}

/// Why a message did not go out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(String);

/// Hands messages to the configured transport.
pub struct Mailer {
    from: Mailbox,
    domain: String,
    transport: Transport,
}

enum Transport {
    File(FileTransport),
    Smtp(Box<SmtpTransport>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match self.transport {
            Transport::File(_) => "file",
            Transport::Smtp(_) => "smtp",
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

impl Mailer {
    /// The transport the configuration names. The file transport's directory is created.
    pub fn new(config: &MailConfig) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .from
            .parse()
            .with_context(|| format!("mail.from is not an address: {}", config.from))?;
        let domain = from.email.domain().to_owned();
        let transport = match &config.transport {
            MailTransport::File { dir } => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the mail directory {}", dir.display())
                })?;
                Transport::File(FileTransport::new(dir))
            }
            MailTransport::Smtp {
                host,
                port,
                security,
                username,
                password,
            } => {
                let tls = || {
                    TlsParameters::new(host.clone())
                        .with_context(|| format!("cannot set up TLS for {host}"))
                };
                let mut builder = SmtpTransport::builder_dangerous(host.as_str())
                    .port(*port)
                    .timeout(Some(SMTP_TIMEOUT));
                builder = match security {
                    SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
                    SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
                    SmtpSecurity::None => builder.tls(Tls::None),
                };
                if !username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        username.clone(),
                        password.get()?.expose().to_owned(),
                    ));
                }
                Transport::Smtp(Box::new(builder.build()))
            }
        };
        Ok(Mailer {
            from,
            domain,
            transport,
        })
    }

    /// Whether mail can leave: an SMTP connection with its greeting, TLS and login (no message
    /// is sent), or a writable directory for the file transport.
    pub fn check(&self) -> Result<String, String> {
        match &self.transport {
            Transport::Smtp(transport) => match transport.test_connection() {
                Ok(true) => Ok("the SMTP server accepts our connection and login".to_owned()),
                Ok(false) => Err("the SMTP server did not accept the connection".to_owned()),
                Err(err) => Err(format!("SMTP: {err}")),
            },
            Transport::File(_) => Ok("mail is written as .eml files (no SMTP)".to_owned()),
        }
    }

    /// Sends `email`; its Message-ID on success.
    pub fn send(&self, email: &Email) -> Result<String, SendError> {
        let to: Mailbox = email.to.parse().map_err(|err| {
            SendError(format!(
                "the recipient {} is not an address: {err}",
                email.to
            ))
        })?;
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7(), self.domain);
        let body = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
        let body = if email.attachments.is_empty() {
            body
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for (name, mime, bytes) in &email.attachments {
                let mime = ContentType::parse(mime)
                    .map_err(|err| SendError(format!("bad attachment type {mime}: {err}")))?;
                mixed = mixed.singlepart(Attachment::new(name.clone()).body(bytes.clone(), mime));
            }
            mixed
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(message_id.clone()))
            .multipart(body)
            .map_err(|err| SendError(format!("cannot build the message: {err}")))?;
        match &self.transport {
            Transport::File(transport) => transport
                .send(&message)
                .map(drop)
                .map_err(|err| SendError(format!("cannot write the message file: {err}"))),
            Transport::Smtp(transport) => transport
                .send(&message)
                .map(drop)
                .map_err(|err| SendError(format!("SMTP: {err}"))),
        }?;
        Ok(message_id)
    }
}

/// Whether email `kind` makes sense for an order in `status` (for a deliberate resend).
pub fn applies(kind: EmailKind, status: Status, refunded_cents: i64) -> Result<(), String> {
    let fits = match kind {
        EmailKind::PaymentConfirmation => status.is_paid(),
        EmailKind::ReportReady => matches!(status, Status::Completed | Status::RefundRequested),
        EmailKind::ProcessingFailed => matches!(
            status,
            Status::Failed | Status::Refunding | Status::Refunded
        ),
        EmailKind::RefundProcessed => refunded_cents > 0,
        EmailKind::RefundUnderReview => status == Status::RefundRequested,
        EmailKind::SignInLink | EmailKind::OperatorAlert => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "a {kind} email does not apply to an order that is {status}"
        ))
    }
}

#[cfg(test)]
mod tests;
