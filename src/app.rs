//! The application's parts, built once per command (once per `serve` worker) from the
//! configuration: no globals.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;

use crate::config::Config;
use crate::db::Db;
use crate::method::Method;
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
    /// The method on sale now: the folder's, or the built-in one.
    pub method: Arc<Method>,
    /// The methods orders were sold with.
    methods: Arc<Methods>,
}

/// The methods orders were sold with, each read from the store once and shared.
#[derive(Debug)]
pub struct Methods {
    current: Arc<Method>,
    builtin: Arc<Method>,
    sold_with: Mutex<HashMap<String, Arc<Method>>>,
}

impl Methods {
    /// The method an order was sold with, read through `db`: `version` as kept in the store,
    /// or the built-in method for orders from before versions were kept.
    pub fn of(&self, db: &Db, version: Option<&str>) -> anyhow::Result<Arc<Method>> {
        let Some(version) = version else {
            return Ok(self.builtin.clone());
        };
        if version == self.current.version {
            return Ok(self.current.clone());
        }
        let mut cache = self
            .sold_with
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(method) = cache.get(version) {
            return Ok(method.clone());
        }
        let files = db
            .method_files(version)?
            .with_context(|| format!("method version {version} is not in the store"))?;
        let method = Arc::new(
            Method::from_files(files)
                .with_context(|| format!("method version {version} no longer reads"))?,
        );
        cache.insert(version.to_owned(), method.clone());
        Ok(method)
    }
}

impl App {
    /// Reads the configuration at `config_path` and opens its database.
    pub fn open(config_path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<App> {
        let config = load_config(config_path, env)?;
        let db = Db::open(&config.database)?;
        App::new(config, db)
    }

    /// The parts for a checked configuration and an open database (an in-memory one in the
    /// routes' tests). The method is read and checked; a version the store has not kept yet is
    /// checked whole (every template rendered) and then kept, so every order can name it.
    pub fn new(config: Config, mut db: Db) -> anyhow::Result<App> {
        let stripe = if config.stripe.secret_key.is_set() {
            Some(StripeClient::new(&config.stripe)?)
        } else {
            None
        };
        let method = Arc::new(keep_current_method(&config, &mut db)?);
        let methods = Arc::new(Methods {
            current: method.clone(),
            builtin: Arc::new(Method::builtin()),
            sold_with: Mutex::new(HashMap::new()),
        });
        Ok(App {
            config,
            db,
            stripe,
            method,
            methods,
        })
    }

    /// The method an order was sold with (its `method_version`).
    pub fn method_of(&self, version: Option<&str>) -> anyhow::Result<Arc<Method>> {
        self.methods.of(&self.db, version)
    }

    /// The methods orders were sold with, for threads with connections of their own.
    pub fn methods(&self) -> Arc<Methods> {
        self.methods.clone()
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

/// The method the configuration names: its folder, checked, or the built-in method (with the
/// prices of `[tiers]`, for installations from before methods were files).
pub fn current_method(config: &Config) -> anyhow::Result<Method> {
    match config.method_dir.folder() {
        Some(dir) => {
            anyhow::ensure!(
                config.prices.is_none(),
                "compass.toml has [tiers], but the method in {} sets its own prices: move them \
                 into its method.toml and remove [tiers]",
                dir.display()
            );
            Method::load_dir(dir)
                .with_context(|| format!("cannot use the method in {}", dir.display()))
        }
        None => {
            let mut method = Method::builtin();
            if let Some(prices) = &config.prices {
                method.set_prices(&prices.currency, |id| prices.of(id));
            }
            Ok(method)
        }
    }
}

/// The method on sale, kept in the store: a version the store does not have yet is first
/// rendered whole (`check::render`; the built-in one is tested instead), so a broken method
/// never reaches a customer and every order can name the version it was sold with.
pub fn keep_current_method(config: &Config, db: &mut Db) -> anyhow::Result<Method> {
    let method = current_method(config)?;
    if !db.has_method(&method.version)? {
        if !method.is_builtin() {
            crate::check::render(&method, &config.business_name).with_context(|| {
                format!(
                    "cannot use the method in {}",
                    config.method_dir.path().display()
                )
            })?;
        }
        db.keep_method(&method.version, method.files())?;
    }
    Ok(method)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration in a fresh directory, with `extra` appended to the example.
    fn config(dir: &Path, extra: &str) -> Config {
        let text = format!("{}\n{extra}", crate::config::EXAMPLE);
        Config::parse(&text, &dir.join("compass.toml"), &|_| None).expect("valid")
    }

    #[test]
    fn prices_in_compass_toml_beside_a_method_folder_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("method")).expect("mkdir");
        let config = config(dir.path(), "[tiers]\nstarter = 5900\n");
        let err = current_method(&config).expect_err("refused");
        assert!(
            format!("{err:#}").contains("move them into its method.toml and remove [tiers]"),
            "{err:#}"
        );
        // Without a folder they are the built-in method's prices.
        std::fs::remove_dir(dir.path().join("method")).expect("rmdir");
        let method = current_method(&config).expect("the built-in method");
        let starter = method.tier(&"starter".parse().expect("id")).expect("sold");
        assert_eq!(starter.price, 5_900);
    }

    #[test]
    fn an_order_naming_a_method_the_store_does_not_keep_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = App::new(config(dir.path(), ""), Db::open_in_memory().expect("db")).expect("app");
        assert!(app.method_of(None).expect("built-in").is_builtin());
        assert_eq!(
            app.method_of(Some(&app.method.version))
                .expect("current")
                .version,
            app.method.version
        );
        let missing = "0".repeat(64);
        let err = app.method_of(Some(&missing)).expect_err("not kept");
        assert_eq!(
            format!("{err:#}"),
            format!("method version {missing} is not in the store")
        );
    }
}
