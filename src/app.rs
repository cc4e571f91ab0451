//! The application's parts, built once per command (once per `serve` worker) from the
//! configuration: no globals.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::db::Db;
use crate::questionnaire::Questionnaire;
use crate::stripe::StripeClient;

/// What a command works with.
#[derive(Debug)]
pub struct App {
    /// The checked configuration.
    pub config: Config,
    /// The open, current database.
    pub db: Db,
    /// The Stripe API, when its secret key is set.
    stripe: Option<StripeClient>,
    /// The intake questions.
    pub questionnaire: Questionnaire,
}

impl App {
    /// Reads the configuration at `config_path` and opens its database.
    pub fn open(config_path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<App> {
        let config = load_config(config_path, env)?;
        let db = Db::open(&config.database)?;
        App::new(config, db)
    }

    /// The parts for a checked configuration and an open database (an in-memory one in the
    /// routes' tests).
    pub fn new(config: Config, db: Db) -> anyhow::Result<App> {
        let stripe = if config.stripe.secret_key.is_set() {
            Some(StripeClient::new(&config.stripe)?)
        } else {
            None
        };
        Ok(App {
            config,
            db,
            stripe,
            questionnaire: Questionnaire::builtin(),
        })
    }

    /// Gives every Stripe call of this App a deadline: for `serve`'s web workers, where a
    /// customer waits on the answer (an order's PaymentIntent is created then; when Stripe
    /// misses the deadline the order is kept and its payment page asks again).
    pub fn stripe_deadline(&mut self, per_call: std::time::Duration, retries: u32) {
        self.stripe = self
            .stripe
            .as_ref()
            .map(|stripe| stripe.with_deadline(per_call, retries));
    }

    /// The Stripe API client, or the error that says which variable to set.
    pub fn stripe(&self) -> anyhow::Result<&StripeClient> {
        match &self.stripe {
            Some(stripe) => Ok(stripe),
            None => {
                self.config.stripe.secret_key.get()?;
                anyhow::bail!("the Stripe client was not built")
            }
        }
    }

    /// The webhook signing secrets, several while rolling them.
    pub fn webhook_secrets(&self) -> anyhow::Result<Vec<String>> {
        let secrets: Vec<String> = self
            .config
            .stripe
            .webhook_secrets
            .get()?
            .expose()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        anyhow::ensure!(
            !secrets.is_empty(),
            "the Stripe webhook signing secret is empty"
        );
        Ok(secrets)
    }
}

/// Reads the configuration, with a hint when there is none yet.
pub fn load_config(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "no configuration at {}: create one with `compass init`, or point --config \
             (or COMPASS_CONFIG) at yours",
            path.display()
        );
    }
    Config::load(path, env).context("invalid configuration")
}
