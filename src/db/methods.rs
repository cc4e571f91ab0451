//! The method versions orders were sold with: each kept whole, by its SHA-256, written once.

use super::Db;
use crate::method::Files;
use anyhow::Context;
use rusqlite::{OptionalExtension, params};

impl Db {
    /// Keeps `files` as method `version`, unless it is kept already; true when it was new.
    pub fn keep_method(&mut self, version: &str, files: &Files) -> anyhow::Result<bool> {
        self.write(|tx| {
            let added = tx
                .prepare_cached(
                    "INSERT INTO method_versions (version) VALUES (?1) \
                     ON CONFLICT (version) DO NOTHING",
                )?
                .execute([version])?;
            if added == 1 {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO method_files (version, path, content) VALUES (?1, ?2, ?3)",
                )?;
                for (path, content) in files {
                    insert.execute(params![version, path, content])?;
                }
            }
            Ok(added == 1)
        })
        .with_context(|| format!("cannot keep method version {version}"))
    }

    /// Whether method `version` is kept.
    pub fn has_method(&self, version: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM method_versions WHERE version = ?1")?
            .query_row([version], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The files of method `version`, if it is kept.
    pub fn method_files(&self, version: &str) -> anyhow::Result<Option<Files>> {
        if !self.has_method(version)? {
            return Ok(None);
        }
        let files = self
            .conn
            .prepare_cached("SELECT path, content FROM method_files WHERE version = ?1")?
            .query_map([version], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Files, _>>()
            .with_context(|| format!("cannot read method version {version}"))?;
        Ok(Some(files))
    }
}
