//! Running the real binary in a throwaway directory with a pinned clock.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compass::db::Db;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every test binary runs at, unless a test says otherwise.
pub const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

/// A compass installation in a temporary directory.
pub struct Install {
    pub dir: TempDir,
}

impl Install {
    /// `compass init` in a fresh directory.
    pub fn new() -> Install {
        let dir = tempfile::tempdir().expect("temp dir");
        let install = Install { dir };
        let out = install.compass(&["init"]);
        assert!(out.status.success(), "init failed: {}", text(&out.stderr));
        install
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("compass.toml")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("compass.db")
    }

    pub fn db(&self) -> Db {
        Db::open(&self.database()).expect("open the test database")
    }

    /// Runs `compass ARGS` with this installation's configuration, at `NOW`.
    pub fn compass(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run compass")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        compass_command(&self.config(), args)
    }
}

/// `compass ARGS` with `config`, at `NOW`, and none of the caller's compass variables.
pub fn compass_command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_compass"));
    for (name, _) in std::env::vars() {
        if name.starts_with("COMPASS_") && !name.starts_with("COMPASS_TEST_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("COMPASS_CONFIG", config)
        .env("COMPASS_NOW", compass::clock::rfc3339(NOW))
        .env_remove("RUST_LOG");
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout of a run that must succeed.
pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "compass failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts a failed run: exit status 1, one line `error: ...` on stderr, nothing on stdout.
pub fn one_error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    lines[0].to_owned()
}

/// A snapshot of every file in a directory, to show that a failed command wrote nothing.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = if path.is_file() {
                std::fs::read(&path).expect("read file")
            } else {
                Vec::new()
            };
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Replaces each of `ids` found in `text` by `fake(n)`, numbered in order of first appearance,
/// so that random ids become stable without changing the width of a table.
pub fn redact(text: &str, ids: &[String], fake: impl Fn(usize) -> String) -> String {
    let mut found: Vec<(usize, &String)> = ids
        .iter()
        .filter_map(|id| text.find(id.as_str()).map(|at| (at, id)))
        .collect();
    found.sort();
    let mut out = text.to_owned();
    for (n, (_, id)) in found.into_iter().enumerate() {
        let replacement = fake(n + 1);
        assert_eq!(replacement.len(), id.len(), "redaction keeps widths");
        out = out.replace(id.as_str(), &replacement);
    }
    out
}
