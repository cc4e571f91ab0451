//! `compass doctor`: is this installation ready to take money? Each check is a line with
//! ok, warn or fail and what to do. External services are asked only things that cost nothing
//! and change nothing (Stripe: list one PaymentIntent; Anthropic: look up the configured model; SMTP: connect
//! and log in).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use crate::app::load_config;
use crate::claude::ClaudeClient;
use crate::config::{Config, MailTransport};
use crate::db::Db;
use crate::mail::Mailer;
use crate::stripe::StripeClient;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
    }
}

/// Runs every check against the configuration at `path`.
pub fn run(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    let config = match load_config(path, env) {
        Ok(config) => config,
        Err(err) => return vec![check("config", Level::Fail, format!("{err:#}"))],
    };
    let mut checks = vec![check("config", Level::Ok, path.display().to_string())];
    checks.push(file_mode("config file", path, false));
    checks.push(database(&config));
    checks.push(file_mode("database file", &config.database, true));
    checks.push(public_url(&config));
    checks.push(method(&config));
    checks.push(policies(&config));
    checks.extend(stripe(&config));
    checks.push(claude(&config));
    checks.extend(mail(&config));
    checks
}

/// The config holds no secrets but says where money goes: nobody else may write it. The
/// database holds customers' answers: nobody else may read it.
fn file_mode(name: &'static str, path: &Path, private: bool) -> Check {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(err) => return check(name, Level::Fail, format!("{}: {err}", path.display())),
    };
    if mode & 0o022 != 0 {
        return check(
            name,
            Level::Fail,
            format!(
                "{} is writable by others ({mode:o}): chmod go-w it",
                path.display()
            ),
        );
    }
    if private && mode & 0o044 != 0 {
        return check(
            name,
            Level::Warn,
            format!(
                "{} is readable by others ({mode:o}) and holds customers' answers: chmod 600 it",
                path.display()
            ),
        );
    }
    check(name, Level::Ok, format!("{} ({mode:o})", path.display()))
}

fn database(config: &Config) -> Check {
    let db = match Db::open(&config.database) {
        Ok(db) => db,
        Err(err) => return check("database", Level::Fail, format!("{err:#}")),
    };
    match (db.schema_version(), db.integrity()) {
        (Ok(version), Ok(orders)) => check(
            "database",
            Level::Ok,
            format!(
                "schema version {}, {orders} orders, integrity ok",
                version.unwrap_or(0)
            ),
        ),
        (Err(err), _) | (_, Err(err)) => check("database", Level::Fail, format!("{err:#}")),
    }
}

fn public_url(config: &Config) -> Check {
    let url = &config.public_url;
    if url.starts_with("https://") {
        return check("public url", Level::Ok, url.as_str());
    }
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    if local {
        check(
            "public url",
            Level::Warn,
            format!(
                "{url} is this machine only: set business.public_url to your https address before taking orders"
            ),
        )
    } else {
        check(
            "public url",
            Level::Fail,
            format!(
                "{url} is not https: customers' links and payments need TLS (put Caddy or nginx in front)"
            ),
        )
    }
}

/// The method reads and renders whole, as `compass check` would.
fn method(config: &Config) -> Check {
    let checked = crate::app::current_method(config).and_then(|method| {
        crate::check::render(&method, &config.business_name)?;
        Ok(method)
    });
    match (checked, config.method_dir.folder()) {
        (Ok(method), Some(dir)) => check(
            "method",
            Level::Ok,
            format!(
                "{} ({}), version {}",
                method.assessment.name,
                dir.display(),
                method.short_version()
            ),
        ),
        (Ok(method), None) => check(
            "method",
            Level::Ok,
            format!(
                "the built-in {} method, version {}",
                method.assessment.name,
                method.short_version()
            ),
        ),
        (Err(err), _) => check(
            "method",
            Level::Fail,
            format!("{err:#} (`compass check` lists every problem)"),
        ),
    }
}

/// The policy pages render: the operator's own ones too.
fn policies(config: &Config) -> Check {
    let pages = crate::app::current_method(config)
        .and_then(|method| crate::http::check_policy_pages(config, &method));
    match pages {
        Ok(own) if own.is_empty() => check("policy pages", Level::Ok, "the built-in ones"),
        Ok(own) => check(
            "policy pages",
            Level::Ok,
            format!(
                "yours for {} (from {}), the built-in ones for the rest",
                own.join(", "),
                config.policies_dir.display()
            ),
        ),
        Err(err) => check("policy pages", Level::Fail, format!("{err:#}")),
    }
}

fn stripe(config: &Config) -> Vec<Check> {
    let s = &config.stripe;
    let mut checks = Vec::new();
    let key = match s.secret_key.get() {
        Ok(key) => Some(key.expose().to_owned()),
        Err(err) => {
            checks.push(check("stripe key", Level::Fail, format!("{err:#}")));
            None
        }
    };
    if let Some(key) = &key {
        let live = key.starts_with("sk_live_") || key.starts_with("rk_live_");
        let mode = if live { "live" } else { "test" };
        let reached = StripeClient::new(s).and_then(|c| {
            c.list_payment_intents(None)
                .map_err(|err| anyhow::anyhow!("{err}"))
        });
        checks.push(match reached {
            Ok(_) => check(
                "stripe key",
                Level::Ok,
                format!("{mode}-mode key accepted by {}", s.api_base),
            ),
            Err(err) => check("stripe key", Level::Fail, format!("{err:#}")),
        });
        let publishable_live = s.publishable_key.starts_with("pk_live_");
        checks.push(if s.publishable_key.is_empty() {
            check(
                "stripe publishable key",
                Level::Fail,
                "stripe.publishable_key is empty: the payment page cannot load Stripe's form",
            )
        } else if publishable_live != live {
            check(
                "stripe publishable key",
                Level::Fail,
                format!("a {}-mode publishable key with a {mode}-mode secret key: use one mode for both", if publishable_live { "live" } else { "test" }),
            )
        } else {
            check("stripe publishable key", Level::Ok, format!("{mode} mode"))
        });
    }
    checks.push(match s.webhook_secrets.get() {
        Ok(secrets) => {
            let n = secrets
                .expose()
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .count();
            if n == 0 {
                check(
                    "webhook secret",
                    Level::Fail,
                    "COMPASS_STRIPE_WEBHOOK_SECRETS is empty",
                )
            } else {
                check(
                    "webhook secret",
                    Level::Ok,
                    format!("{n} signing secret(s)"),
                )
            }
        }
        Err(err) => check("webhook secret", Level::Fail, format!("{err:#}")),
    });
    checks
}

fn claude(config: &Config) -> Check {
    let client = match ClaudeClient::new(&config.claude) {
        Ok(client) => client,
        Err(err) => return check("anthropic key", Level::Fail, format!("{err:#}")),
    };
    let model = client.model();
    match client.model_info() {
        Ok(Some(info)) if info.lifecycle.as_deref() == Some("retired") => check(
            "anthropic model",
            Level::Fail,
            format!(
                "{model} is retired: every report would fail; set claude.model to a current model"
            ),
        ),
        Ok(Some(info)) if info.lifecycle.as_deref() == Some("deprecated") => check(
            "anthropic model",
            Level::Warn,
            format!(
                "{model} is deprecated and retires {}: set claude.model to a current model before then",
                info.retires_at.as_deref().unwrap_or("soon")
            ),
        ),
        Ok(Some(_)) => check(
            "anthropic model",
            Level::Ok,
            format!(
                "{model} answers at {} (key accepted)",
                config.claude.api_base
            ),
        ),
        Ok(None) => check(
            "anthropic model",
            Level::Fail,
            format!(
                "the API does not know {model} (retired or misspelt): every report would fail; \
                 set claude.model to a current model, e.g. {}",
                crate::config::DEFAULT_CLAUDE_MODEL
            ),
        ),
        Err(err) => check("anthropic key", Level::Fail, err),
    }
}

fn mail(config: &Config) -> Vec<Check> {
    let file = matches!(config.mail.transport, MailTransport::File { .. });
    let mut checks = vec![match Mailer::new(&config.mail)
        .map_err(|e| format!("{e:#}"))
        .and_then(|m| m.check())
    {
        // Fine for trying compass; in production customers would get nothing.
        Ok(detail) if file => check(
            "mail",
            Level::Warn,
            format!("{detail}: customers receive nothing until mail.transport = \"smtp\""),
        ),
        Ok(detail) => check("mail", Level::Ok, detail),
        Err(err) => check("mail", Level::Fail, err),
    }];
    if config.mail.from.contains("@example.com") {
        checks.push(check(
            "mail sender",
            Level::Warn,
            format!(
                "mail.from is still the example ({}): set your own address",
                config.mail.from
            ),
        ));
    }
    if config.mail.operator.ends_with("@example.com") {
        checks.push(check(
            "operator alerts",
            Level::Warn,
            format!(
                "mail.operator is still the example ({}): refunds to review, disputes and \
                 failures are emailed there; set your own address",
                config.mail.operator
            ),
        ));
    }
    checks
}
