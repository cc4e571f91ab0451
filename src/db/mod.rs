//! The SQLite store: the only module with SQL.
//!
//! One file holds all state. [`Db::open`] sets WAL, foreign keys and a busy timeout, and refuses a
//! database whose schema is not exactly the one this binary embeds, so no command ever runs
//! against a half-migrated file. Every write that changes an order is one `IMMEDIATE`
//! transaction: the step, its timeline row and the rows its actions ask for land together or not
//! at all.

mod customers;
mod invoices;
mod listing;
mod llm;
mod mail;
mod methods;
mod ops;
mod orders;
mod peers;
mod refunds;
mod reports;
mod signin;
mod stripe;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, bail, ensure};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use time::OffsetDateTime;

pub use customers::{FORGOTTEN, Forgotten};
pub use listing::{
    EmailRow, EventRow, OrderDetail, OrderFilter, OrderSummary, PaymentRow, RefundRow,
};
pub use mail::{OrderFacts, OutboxEmail};
pub use ops::{BackupInfo, Stats, StoreCounts, Violation};
pub use orders::{NewOrder, StoredOrder};
pub use peers::PeerRow;
pub use refunds::RefundToIssue;
pub use reports::Artifact;
pub use signin::{CustomerOrder, SignInLimits, SignInRequest};
pub use stripe::{NewStripeEvent, PaymentRecord, StoredEvent};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A migration this binary carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its number, `V{version}__...`.
    pub version: i32,
    /// Its name, from the file name.
    pub name: String,
    /// refinery's checksum of its SQL: a released migration must never change it.
    pub checksum: u64,
}

impl From<&refinery::Migration> for MigrationInfo {
    fn from(m: &refinery::Migration) -> Self {
        MigrationInfo {
            version: m.version(),
            name: m.name().to_owned(),
            checksum: m.checksum(),
        }
    }
}

/// Every migration embedded in this binary, oldest first.
pub fn migrations() -> Vec<MigrationInfo> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(MigrationInfo::from)
        .collect()
}

fn latest_version() -> i32 {
    migrations().iter().map(|m| m.version).max().unwrap_or(0)
}

/// Appends a row to the audit log, inside the caller's transaction (or on its own).
pub(super) fn audit_in(
    conn: &Connection,
    actor: &str,
    action: &str,
    order_id: Option<&str>,
    detail: &serde_json::Value,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    exec(
        conn,
        "INSERT INTO audit_log (at, actor, action, order_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![to_db(now), actor, action, order_id, detail.to_string()],
    )
    .context("cannot write the audit log")?;
    Ok(())
}

/// A file that holds customers' personal data (the database, a backup, an export): only its
/// owner may read it.
pub fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    }
    Ok(())
}

/// A connection to the compass database.
pub struct Db {
    conn: Connection,
    path: Option<PathBuf>,
    /// Shared by the connections of one process (`serve`'s workers), so that they queue for
    /// writes in memory instead of in SQLite's sleeping busy handler.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Set when checkpoints are left to [`Db::checkpoint_if_due`] (`serve`).
    wal: Option<Arc<WalFrames>>,
}

/// The WAL frames (4 KiB pages) after which a commit checkpoints them into the database, or
/// `serve` does so after its answers (`Db::checkpoint_if_due`).
///
/// Measured with webhooks at a steady 3,000/s when the committing request still paid for the
/// checkpoint (p99, median of 3 runs): 1,000 pages (SQLite's default) 4.96 ms, 500 3.10, 250
/// 2.44, 100 2.00 but 15% fewer events/s at full load; 4,000 and 16,000 far worse (20-76 ms).
const CHECKPOINT_FRAMES: i32 = 250;

/// The WAL frames at which `serve` makes its checkpoint complete, holding writes back for it,
/// so that the WAL starts over: about `journal_size_limit`, the length it is cut back to.
const RESTART_FRAMES: i32 = 1_000;

/// How far the WAL has grown, as the commits of `serve`'s connections report it, and whether
/// one of them is checkpointing it now.
#[derive(Debug, Default)]
pub struct WalFrames {
    /// Frames in the WAL after the last commit.
    frames: std::sync::atomic::AtomicI32,
    /// Frames copied into the database by the last checkpoint.
    checkpointed: std::sync::atomic::AtomicI32,
    running: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens an existing database and checks that its schema is the one this binary expects.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        let db = Db::open_existing(path)?;
        db.check_schema()?;
        db.use_wal()?;
        Ok(db)
    }

    /// Opens an existing database without checking its schema: for `migrate`.
    pub fn open_for_migration(path: &Path) -> anyhow::Result<Db> {
        Db::open_existing(path)
    }

    /// Opens the database at `path`, creating the file if there is none, and migrates it.
    pub fn create(path: &Path) -> anyhow::Result<(Db, Vec<MigrationInfo>)> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot create database {}", path.display()))?;
        let mut db = Db::configure(conn, Some(path.to_owned()))?;
        let applied = db.migrate()?;
        Ok((db, applied))
    }

    /// A private in-memory database with the same migrations as a file: for tests.
    pub fn open_in_memory() -> anyhow::Result<Db> {
        let conn = Connection::open_in_memory().context("cannot open an in-memory database")?;
        let mut db = Db::configure(conn, None)?;
        db.migrate()?;
        Ok(db)
    }

    fn open_existing(path: &Path) -> anyhow::Result<Db> {
        if !path.exists() {
            bail!(
                "no database at {}: create it with `compass init` (or set paths.database in compass.toml)",
                path.display()
            );
        }
        // Without SQLITE_OPEN_CREATE a wrong path can never leave an empty file behind.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        Db::configure(conn, Some(path.to_owned()))
    }

    fn configure(conn: Connection, path: Option<PathBuf>) -> anyhow::Result<Db> {
        let name = path
            .as_deref()
            .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            bail!(
                "database {name} is read-only: compass writes to it and to its directory \
                 (check their owner and permissions)"
            );
        }
        // Reading the schema first turns a file that is not SQLite into one clear error before
        // any pragma could write to it.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
            row.get::<_, i64>(0)
        })
        .with_context(|| format!("cannot read database {name}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .context("cannot set the busy timeout")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .context("cannot enable foreign keys")?;
        // Without the planner's stability guarantee, a statement whose parameter SQLite
        // compares with a partial index's condition (`status_token = ?1` against the
        // `status = 'paid'` of orders_due) is compiled again whenever the parameter changes:
        // 15% of serve's time on the status page, measured. compass queries name the values
        // their partial indexes need as literals, so no plan depends on a parameter.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .context("cannot enable the query planner stability guarantee")?;
        Ok(Db {
            conn,
            path,
            write_lock: None,
            wal: None,
        })
    }

    /// WAL lets `serve` read while `process` writes. It is set only once the file is known to be
    /// compass's: switching the journal mode writes to the file.
    fn use_wal(&self) -> anyhow::Result<()> {
        if self.path.is_none() {
            return Ok(());
        }
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .with_context(|| format!("cannot switch database {} to WAL", self.name()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "database {} cannot use WAL (journal mode stays {mode})",
                self.name()
            );
        }
        // The commit that crosses this many WAL pages checkpoints them into the database (unless
        // `defer_checkpoints` takes that over).
        self.conn
            .pragma_update(None, "wal_autocheckpoint", CHECKPOINT_FRAMES)
            .context("cannot set wal_autocheckpoint")?;
        // A WAL that a burst made long is cut back to this when it starts over.
        self.conn
            .pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)
            .context("cannot set journal_size_limit")?;
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .context("cannot set synchronous")
    }

    /// Applies the migrations this database lacks, each in its own transaction; returns them.
    pub fn migrate(&mut self) -> anyhow::Result<Vec<MigrationInfo>> {
        self.migrate_to(None)
    }

    /// Migrates up to and including `version` only: for testing upgrades from older schemas.
    #[doc(hidden)]
    pub fn migrate_to(&mut self, version: Option<i32>) -> anyhow::Result<Vec<MigrationInfo>> {
        match self.schema_version()? {
            Some(current) if current > latest_version() => bail!(
                "database {} is at schema version {current}, newer than this compass knows \
                 ({}): upgrade compass",
                self.name(),
                latest_version()
            ),
            // Never add compass's tables to another application's database.
            None if self.table_count()? > 0 => bail!(
                "{} is an SQLite database but not a compass one (it has no schema history)",
                self.name()
            ),
            _ => {}
        }
        self.use_wal()?;
        let target = version.map_or(refinery::Target::Latest, refinery::Target::Version);
        // SQLite's procedure for changing a table others refer to: foreign keys off while the
        // migrations run (each in its transaction), checked whole afterwards, then on again.
        self.conn
            .pragma_update(None, "foreign_keys", "OFF")
            .context("cannot turn foreign keys off to migrate")?;
        let report = embedded::migrations::runner()
            .set_target(target)
            .run(&mut self.conn)
            .with_context(|| format!("cannot migrate database {}", self.name()));
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .context("cannot turn foreign keys back on")?;
        let report = report?;
        let broken: i64 = self
            .conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .context("cannot check foreign keys after migrating")?;
        ensure!(
            broken == 0,
            "database {} has {broken} row(s) whose references broke while migrating: restore \
             the backup taken before the upgrade",
            self.name()
        );
        Ok(report
            .applied_migrations()
            .iter()
            .map(MigrationInfo::from)
            .collect())
    }

    /// The newest migration applied, or `None` for a database compass never touched.
    pub fn schema_version(&self) -> anyhow::Result<Option<i32>> {
        let has_history: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                 WHERE type = 'table' AND name = 'refinery_schema_history')",
                [],
                |row| row.get(0),
            )
            .context("cannot read the schema")?;
        if !has_history {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT MAX(version) FROM refinery_schema_history",
                [],
                |row| row.get(0),
            )
            .optional()
            .map(Option::flatten)
            .context("cannot read the schema history")
    }

    fn check_schema(&self) -> anyhow::Result<()> {
        let latest = latest_version();
        match self.schema_version()? {
            Some(version) if version == latest => Ok(()),
            Some(version) if version < latest => bail!(
                "database {} is at schema version {version}, this compass needs {latest}: \
                 back it up, then run `compass migrate`",
                self.name()
            ),
            Some(version) => bail!(
                "database {} is at schema version {version}, newer than this compass knows \
                 ({latest}): upgrade compass",
                self.name()
            ),
            None => {
                if self.table_count()? == 0 {
                    bail!(
                        "database {} is empty: run `compass migrate` to create the schema",
                        self.name()
                    )
                }
                bail!(
                    "{} is an SQLite database but not a compass one (it has no schema history)",
                    self.name()
                )
            }
        }
    }

    fn table_count(&self) -> anyhow::Result<i64> {
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .context("cannot read the schema")
    }

    /// Makes this connection take `lock` around every write, with the process's others.
    pub fn share_write_lock(&mut self, lock: Arc<Mutex<()>>) {
        self.write_lock = Some(lock);
    }

    /// Leaves this connection's checkpoints to [`Db::checkpoint_if_due`], with `wal` shared by
    /// the process's connections: a commit no longer copies the WAL into the database and
    /// syncs it while the request that made it waits.
    pub fn defer_checkpoints(&mut self, wal: Arc<WalFrames>) -> anyhow::Result<()> {
        let reported = Arc::clone(&wal);
        self.conn
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames| {
                reported
                    .frames
                    .store(frames, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }))
            .context("cannot watch the WAL")?;
        self.wal = Some(wal);
        Ok(())
    }

    /// Checkpoints the WAL if it has grown by [`CHECKPOINT_FRAMES`] since the last checkpoint
    /// and no other connection is at it: `serve`'s workers call this after they have answered,
    /// so no request waits for the copy and its fsync. The frames are copied while the others
    /// go on writing. Such a checkpoint is never complete under steady writes, and only a
    /// complete one lets the WAL start over; so once the WAL holds [`RESTART_FRAMES`], the few
    /// frames written meanwhile are copied again with writes held back (the shared write lock).
    ///
    /// Measured with webhooks at a steady 3,000/s, p99 of the median run of 3: commits that
    /// checkpoint themselves 3.19-8.85 ms; this with writes held back every time 2.12-4.45 ms;
    /// this 2.26-2.42 ms (`cargo bench --bench webhooks`, twice each).
    pub fn checkpoint_if_due(&self) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let frames = wal.frames.load(Relaxed);
        // Fewer frames than last checkpointed: the WAL has started over since.
        let checkpointed = wal.checkpointed.load(Relaxed);
        let base = if frames >= checkpointed {
            checkpointed
        } else {
            0
        };
        if frames - base < CHECKPOINT_FRAMES || wal.running.swap(true, Acquire) {
            return Ok(());
        }
        let passive = || {
            self.conn
                .wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE)
                .context("cannot checkpoint the WAL")
        };
        let result = passive().and_then(|copied| {
            if frames < RESTART_FRAMES {
                return Ok(copied);
            }
            let lock = self.write_lock.clone();
            let _guard = lock
                .as_deref()
                .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner));
            passive()
        });
        if let Ok((_, done)) = result {
            wal.checkpointed.store(done, Relaxed);
        }
        wal.running.store(false, Release);
        result.map(|_| ())
    }

    /// Runs `f` in a transaction that holds the write lock from its first statement (so what
    /// it reads cannot change before it writes), and commits if `f` succeeds.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let lock = self.write_lock.clone();
        let _guard = lock
            .as_deref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner));
        let name = self.name();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| format!("cannot start a write to database {name}"))?;
        let out = f(&tx)?;
        tx.commit()
            .with_context(|| format!("cannot commit a write to database {name}"))?;
        Ok(out)
    }

    /// Runs one writing statement under the write lock.
    fn execute(&mut self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        let lock = self.write_lock.clone();
        let _guard = lock
            .as_deref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner));
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// The file's path, or `:memory:`.
    pub fn name(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string())
    }

    /// The schema as SQL, tables and indexes sorted by name: for snapshot tests of migrations.
    #[doc(hidden)]
    pub fn schema_sql(&self) -> anyhow::Result<String> {
        let mut stmt = self.conn.prepare(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL \
             AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name",
        )?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = String::new();
        for sql in rows {
            out.push_str(&sql?);
            out.push_str(";\n");
        }
        Ok(out)
    }

    /// Writes an audit row: who did what to which order.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        order_id: Option<&str>,
        detail: &serde_json::Value,
        now: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.write(|tx| audit_in(tx, actor, action, order_id, detail, now))
    }

    /// Whether the database answers: for `/healthz`.
    pub fn ping(&self) -> anyhow::Result<()> {
        self.conn
            .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
            .context("the database does not answer")?;
        Ok(())
    }
}

/// Seconds since the Unix epoch, as stored.
fn to_db(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

fn from_db(seconds: i64) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(err))
    })
}

fn from_db_opt(seconds: Option<i64>) -> rusqlite::Result<Option<OffsetDateTime>> {
    seconds.map(from_db).transpose()
}

#[cfg(test)]
mod tests;

/// The form in which customers are matched: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A new row id: a UUIDv7, so ids sort by creation time.
fn new_id(now: OffsetDateTime) -> String {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        now.unix_timestamp().max(0).unsigned_abs(),
        now.nanosecond(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// 256 random bits, URL-safe: the status page's only key.
fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    Ok(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        bytes,
    ))
}

/// Reads a column stored as the `as_str` name of one of our enums.
fn parse_col<T: std::str::FromStr<Err = String>>(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e| conversion_error(idx, e))
}

fn conversion_error(idx: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, message.into())
}

/// Runs a statement through the connection's statement cache: the hot paths run the same few.
fn exec(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
