//! The application's parts, built once per command from the configuration: no globals.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::db::Db;

/// What a command works with.
#[derive(Debug)]
pub struct App {
    /// The checked configuration.
    pub config: Config,
    /// The open, current database.
    pub db: Db,
}

impl App {
    /// Reads the configuration at `config_path` and opens its database.
    pub fn open(config_path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<App> {
        let config = load_config(config_path, env)?;
        let db = Db::open(&config.database)?;
        Ok(App { config, db })
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
