//! State on disk: an SQLite database in the data directory (`--data-dir`), written before any change is answered.
//!
//! Every write to a partition ([`super::Store::write`]) marks the rows it changed and queues a ticket; a
//! commit thread takes the marked rows ([`crate::store::document::RowChange`]) of every partition written since its
//! last turn and saves them in one transaction (group commit, `crate::store::commit`), and each answer waits for its
//! commit. A failed commit (a full disk) fails
//! its writes, whose partitions are reloaded from the database, so memory and disk never disagree, and the callers
//! answer 503.
//!
//! The database is in WAL mode. By default a commit reaches the operating system before the answer (it survives the
//! server being killed) and the disk at the next checkpoint; `--full-sync` makes every commit wait for the disk too.
//!
//! Tables: `meta` (clock offset, event sequence, behaviour rules), `collections` (a partition's custom action types,
//! webhooks, ... one row each, whole), `pipelines`, `definitions` (pipeline versions), `executions` (one row per
//! execution) and `items` (jobs, the current job of each action run, client request tokens). Each body is the
//! JSON of that piece of the state document ([`crate::store::document`]), so `sqlite3` shows it readably.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::Unavailable;
use crate::state::{PartitionData, Scope};
use crate::store::document::{
    self, Document, DocumentError, PartitionDocument, PipelineDocument, PipelineRow, RowChange, parse_row,
};

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "codepipeline-local.db";
/// The lock file that keeps a second server off the same directory.
pub const LOCK_FILE: &str = "codepipeline-local.lock";
/// `PRAGMA application_id` of our databases ("CPLL"), telling them from other SQLite files.
const APPLICATION_ID: i32 = 0x4350_4C4C;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE collections (account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (account, region, kind));
CREATE TABLE pipelines (account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (account, region, name));
CREATE TABLE definitions (account TEXT NOT NULL, region TEXT NOT NULL, pipeline TEXT NOT NULL,
    version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (account, region, pipeline, version));
CREATE TABLE executions (account TEXT NOT NULL, region TEXT NOT NULL, pipeline TEXT NOT NULL,
    position INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (account, region, pipeline, position));
CREATE TABLE items (account TEXT NOT NULL, region TEXT NOT NULL, pipeline TEXT NOT NULL, kind TEXT NOT NULL,
    key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (account, region, pipeline, kind, key));
";

/// Pages the write-ahead log may hold before they are copied into the database (SQLite's default is 1,000). A
/// page that many commits change (an index page, the newest executions) is copied once per checkpoint, so fewer
/// checkpoints write less; the log grows to about 32 MiB before each.
const WAL_CHECKPOINT_PAGES: u32 = 8_000;
/// How far ahead of the next event's number the saved sequence is kept, so that it is written once per this many
/// events instead of with every commit (its page would be in each). After a restart numbering goes on from the
/// saved number: a gap, never a number used twice, so a stream reader's `Last-Event-ID` stays meaningful.
const SEQUENCE_RESERVE: u64 = 10_000;

/// The page size of new databases (SQLite's default is 4 KiB). A finished execution's row is about 2 KB, just too
/// big for two to share a 4 KiB page, so nearly every execution took a page of its own.
const PAGE_SIZE: u32 = 8_192;
/// The page cache, in KiB (SQLite's default is 2 MiB): enough to keep the tables' upper levels and recent pages.
const CACHE_KIB: u32 = 16 * 1024;

/// How the data directory is used.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Wait for the disk at every commit (`synchronous=FULL`), not only at checkpoints.
    pub full_sync: bool,
    /// The most the database may grow to, in bytes; writes beyond it fail as on a full disk.
    pub max_bytes: Option<u64>,
}

/// Why the data directory cannot be used. Each is a start-up error: the server does not start, and nothing in the
/// directory is changed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use data directory {0}: {1}")]
    Directory(String, String),
    #[error("data directory {0} is in use by another codepipeline-local server (it holds {LOCK_FILE})")]
    Locked(String),
    #[error("{0} is not a readable codepipeline-local database: {1}")]
    Unreadable(String, String),
    #[error("{0} is an SQLite database of another application; refusing to touch it")]
    Foreign(String),
    #[error(
        "{0} was written by a newer codepipeline-local (schema version {1}; this build reads up to {supported}); \
         upgrade, or use another directory",
        supported = document::VERSION
    )]
    Newer(String, u32),
    #[error("{0} holds state that cannot be loaded: {1}")]
    Corrupt(String, LoadError),
    #[error("cannot keep state in {0}: {1}")]
    Start(String, std::io::Error),
}

/// Why stored state could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// The open database.
#[derive(Debug)]
pub struct Storage {
    connection: Mutex<Connection>,
    path: PathBuf,
    /// Held for the life of the storage: the operating system releases it when the process ends, however it ends.
    _lock: File,
    /// The event sequence number saved: at least the next event's, reserved ahead (see `SEQUENCE_RESERVE`).
    saved_sequence: AtomicU64,
}

/// What a change refused because the data directory is full (or cannot be written) is answered; the commit thread
/// tells a full disk from other failures by it (see `commit::StorageHealth`).
pub(super) const FULL: &str =
    "The emulator's data directory is full or cannot be written; the change was not made. Retry once there is space.";

fn unavailable(error: rusqlite::Error) -> Unavailable {
    let full = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen)
    );
    // Logged by the commit thread, once per run of failures (see `commit::StorageHealth`).
    Unavailable(if full {
        FULL.to_string()
    } else {
        format!("The emulator could not save the change, which was not made: {error}")
    })
}

impl Storage {
    /// Opens (or creates) the database in `options.dir`, takes the directory's lock, and loads the state.
    pub fn open(options: &Options) -> Result<(Storage, Document), OpenError> {
        let dir = options.dir.display().to_string();
        // The database holds secrets (OAuth tokens, secret configuration values, webhook secrets): a directory this
        // creates is its owner's alone, and so is every file in it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&options.dir)
            .map_err(|e| OpenError::Directory(dir.clone(), e.to_string()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(options.dir.join(LOCK_FILE))
            .map_err(|e| OpenError::Directory(dir.clone(), e.to_string()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir)),
            Err(std::fs::TryLockError::Error(e)) => return Err(OpenError::Directory(dir, e.to_string())),
        }
        let path = options.dir.join(DATABASE_FILE);
        let shown = path.display().to_string();
        let unreadable = |e: rusqlite::Error| OpenError::Unreadable(shown.clone(), e.to_string());
        // Created here with the owner's permissions alone (SQLite would follow the umask); its journal files take
        // the same permissions from it.
        File::options()
            .create(true)
            .truncate(false)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| OpenError::Unreadable(shown.clone(), e.to_string()))?;
        let connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unreadable)?;
        // Read before writing anything: a file that is not ours is left exactly as it is.
        let application: i32 = connection.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(unreadable)?;
        let version: u32 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(unreadable)?;
        let tables: i64 =
            connection.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(unreadable)?;
        let fresh = application == 0 && version == 0 && tables == 0;
        if !fresh && application != APPLICATION_ID {
            return Err(OpenError::Foreign(shown));
        }
        if version > document::VERSION {
            return Err(OpenError::Newer(shown, version));
        }
        if fresh {
            // Only an empty database takes a page size (before it is in WAL mode); see PAGE_SIZE.
            connection.execute_batch(&format!("PRAGMA page_size={PAGE_SIZE};")).map_err(unreadable)?;
        }
        connection
            .execute_batch(&format!(
                "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}; \
                 PRAGMA cache_size=-{CACHE_KIB};",
                if options.full_sync { "FULL" } else { "NORMAL" }
            ))
            .map_err(unreadable)?;
        if let Some(max) = options.max_bytes {
            let page: i64 = connection.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(unreadable)?;
            let pages = i64::try_from(max).unwrap_or(i64::MAX) / page.max(1);
            connection
                .query_row(&format!("PRAGMA max_page_count = {}", pages.max(1)), [], |_| Ok(()))
                .map_err(unreadable)?;
        }
        if fresh {
            let batch = format!(
                "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {}; COMMIT;",
                document::VERSION
            );
            connection.execute_batch(&batch).map_err(unreadable)?;
        }
        let document = load(&connection, None).map_err(|e| OpenError::Corrupt(shown.clone(), e))?;
        let storage = Storage {
            connection: Mutex::new(connection),
            path,
            _lock: lock,
            saved_sequence: AtomicU64::new(document.next_event_sequence.unwrap_or(0)),
        };
        Ok((storage, document))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the changed rows of a batch of writes (each to its partition), and the event sequence if it passed
    /// what is saved, in one transaction.
    pub fn save_batch(&self, writes: &[(&Scope, &[RowChange])], next_event: u64) -> Result<(), Unavailable> {
        let sequence_moved = next_event > self.saved_sequence.load(Ordering::Relaxed);
        if writes.iter().all(|(_, rows)| rows.is_empty()) && !sequence_moved {
            return Ok(());
        }
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(unavailable)?;
        for (scope, rows) in writes {
            write_rows(&transaction, scope, rows.iter()).map_err(unavailable)?;
        }
        let reserved =
            if sequence_moved { Some(put_sequence(&transaction, next_event).map_err(unavailable)?) } else { None };
        transaction.commit().map_err(unavailable)?;
        if let Some(reserved) = reserved {
            self.saved_sequence.store(reserved, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The partition as the database holds it (to roll memory back after a failed save).
    pub fn load_partition(&self, scope: &Scope) -> Result<PartitionData, LoadError> {
        let connection = self.connection();
        let mut document = load(&connection, Some(scope))?;
        match document.partitions.pop() {
            Some(partition) => Ok(partition.into_partition()?),
            None => Ok(PartitionData::default()),
        }
    }

    /// Saves one setting (the clock offset, the behaviour rules).
    pub fn save_meta(&self, key: &str, value: &str) -> Result<(), Unavailable> {
        let connection = self.connection();
        put_meta(&connection, key, value).map_err(unavailable)
    }

    /// Replaces everything with `partitions`, `meta` and the event sequence, in one transaction.
    pub fn replace_all(
        &self,
        partitions: &mut [(Scope, PartitionData)],
        meta: &[(&str, String)],
        next_event: u64,
    ) -> Result<(), Unavailable> {
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(unavailable)?;
        transaction
            .execute_batch(
                "DELETE FROM meta; DELETE FROM collections; DELETE FROM pipelines; DELETE FROM definitions; \
                 DELETE FROM executions; DELETE FROM items;",
            )
            .map_err(unavailable)?;
        for (key, value) in meta {
            put_meta(&transaction, key, value).map_err(unavailable)?;
        }
        let reserved = put_sequence(&transaction, next_event).map_err(unavailable)?;
        for (scope, data) in partitions.iter_mut() {
            write_rows(&transaction, scope, &data.all_rows()).map_err(unavailable)?;
        }
        transaction.commit().map_err(unavailable)?;
        // The database now holds exactly this reservation, which may be below the one saved before.
        self.saved_sequence.store(reserved, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes the rows of the accounts and regions `selected` picks (all when `None`), settings included then.
    pub fn delete(&self, scopes: &[Scope], everything: bool) -> Result<(), Unavailable> {
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(unavailable)?;
        if everything {
            transaction
                .execute_batch(
                    "DELETE FROM collections; DELETE FROM pipelines; DELETE FROM definitions; \
                     DELETE FROM executions; DELETE FROM items; DELETE FROM meta WHERE key <> 'nextEventSequence';",
                )
                .map_err(unavailable)?;
        }
        for scope in scopes {
            for table in ["collections", "pipelines", "definitions", "executions", "items"] {
                transaction
                    .execute(
                        &format!("DELETE FROM {table} WHERE account = ?1 AND region = ?2"),
                        params![scope.account, scope.region],
                    )
                    .map_err(unavailable)?;
            }
        }
        transaction.commit().map_err(unavailable)
    }
}

/// `meta` keys.
pub const META_CLOCK_OFFSET: &str = "clockOffsetMillis";
pub const META_EVENT_SEQUENCE: &str = "nextEventSequence";
pub const META_BEHAVIORS: &str = "behaviors";

/// Saves the event sequence, reserved ahead of `next_event` (see `SEQUENCE_RESERVE`); returns the number saved.
fn put_sequence(connection: &Connection, next_event: u64) -> rusqlite::Result<u64> {
    let reserved = next_event.saturating_add(SEQUENCE_RESERVE);
    put_meta(connection, META_EVENT_SEQUENCE, &reserved.to_string())?;
    Ok(reserved)
}

fn put_meta(connection: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")?
        .execute(params![key, value])?;
    Ok(())
}

fn write_rows<'a>(
    connection: &Connection,
    scope: &Scope,
    rows: impl IntoIterator<Item = &'a RowChange>,
) -> rusqlite::Result<()> {
    let (account, region) = (&scope.account, &scope.region);
    for row in rows {
        match row {
            RowChange::Collection { kind, body: Some(body) } => {
                connection
                    .prepare_cached(
                        "INSERT INTO collections (account, region, kind, body) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (account, region, kind) DO UPDATE SET body = ?4",
                    )?
                    .execute(params![account, region, kind.as_str(), body])?;
            }
            RowChange::Collection { kind, body: None } => {
                connection
                    .prepare_cached("DELETE FROM collections WHERE account = ?1 AND region = ?2 AND kind = ?3")?
                    .execute(params![account, region, kind.as_str()])?;
            }
            RowChange::Pipeline { name, body: Some(body) } => {
                connection
                    .prepare_cached(
                        "INSERT INTO pipelines (account, region, name, body) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (account, region, name) DO UPDATE SET body = ?4",
                    )?
                    .execute(params![account, region, name, body])?;
            }
            RowChange::Pipeline { name, body: None } => {
                connection
                    .prepare_cached("DELETE FROM pipelines WHERE account = ?1 AND region = ?2 AND name = ?3")?
                    .execute(params![account, region, name])?;
                for table in ["definitions", "executions", "items"] {
                    connection
                        .prepare_cached(&format!(
                            "DELETE FROM {table} WHERE account = ?1 AND region = ?2 AND pipeline = ?3"
                        ))?
                        .execute(params![account, region, name])?;
                }
            }
            RowChange::Definition { pipeline, version, body } => {
                connection
                    .prepare_cached(
                        "INSERT INTO definitions (account, region, pipeline, version, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (account, region, pipeline, version) DO UPDATE SET body = ?5",
                    )?
                    .execute(params![account, region, pipeline, version, body])?;
            }
            RowChange::Execution { pipeline, position, body: None } => {
                let position = i64::try_from(*position).unwrap_or(i64::MAX);
                connection
                    .prepare_cached(
                        "DELETE FROM executions WHERE account = ?1 AND region = ?2 AND pipeline = ?3 AND position = ?4",
                    )?
                    .execute(params![account, region, pipeline, position])?;
            }
            RowChange::Execution { pipeline, position, body: Some(body) } => {
                let position = i64::try_from(*position).unwrap_or(i64::MAX);
                connection
                    .prepare_cached(
                        "INSERT INTO executions (account, region, pipeline, position, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (account, region, pipeline, position) DO UPDATE SET body = ?5",
                    )?
                    .execute(params![account, region, pipeline, position, body])?;
            }
            RowChange::Item { pipeline, kind, key, body: Some(body) } => {
                connection
                    .prepare_cached(
                        "INSERT INTO items (account, region, pipeline, kind, key, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (account, region, pipeline, kind, key) DO UPDATE SET body = ?6",
                    )?
                    .execute(params![account, region, pipeline, kind.as_str(), key, body])?;
            }
            RowChange::Item { pipeline, kind, key, body: None } => {
                connection
                    .prepare_cached(
                        "DELETE FROM items WHERE account = ?1 AND region = ?2 AND pipeline = ?3 AND kind = ?4 \
                         AND key = ?5",
                    )?
                    .execute(params![account, region, pipeline, kind.as_str(), key])?;
            }
        }
    }
    Ok(())
}

type Key = (String, String);

/// Runs `f` on every row `sql` selects.
fn each_row(
    connection: &Connection,
    sql: &str,
    bind: &[&dyn rusqlite::ToSql],
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), LoadError>,
) -> Result<(), LoadError> {
    let mut statement = connection.prepare(sql)?;
    let mut rows = statement.query(bind)?;
    while let Some(row) = rows.next()? {
        f(row)?;
    }
    Ok(())
}

/// Column `index` of `row` as text.
fn text(row: &rusqlite::Row<'_>, index: usize) -> Result<String, LoadError> {
    Ok(row.get(index)?)
}

/// A row that belongs to something that is not there.
fn orphan(what: String) -> LoadError {
    LoadError::Document(DocumentError::Dangling(what))
}

/// Reads the whole state (or one partition's) into a document.
fn load(connection: &Connection, only: Option<&Scope>) -> Result<Document, LoadError> {
    let filter = if only.is_some() { " WHERE account = ?1 AND region = ?2" } else { "" };
    let bind: Vec<&dyn rusqlite::ToSql> = match only {
        Some(scope) => vec![&scope.account, &scope.region],
        None => Vec::new(),
    };
    let mut partitions: BTreeMap<Key, PartitionDocument> = BTreeMap::new();
    let mut pipelines: BTreeMap<(String, String, String), PipelineDocument> = BTreeMap::new();
    let partition = |partitions: &mut BTreeMap<Key, PartitionDocument>, account: &str, region: &str| {
        partitions.entry((account.to_string(), region.to_string())).or_insert_with(|| PartitionDocument {
            account: account.to_string(),
            region: region.to_string(),
            ..PartitionDocument::default()
        });
    };

    let bind = bind.as_slice();
    each_row(connection, &format!("SELECT account, region, kind, body FROM collections{filter}"), bind, |row| {
        let (account, region, kind, body) = (text(row, 0)?, text(row, 1)?, text(row, 2)?, text(row, 3)?);
        partition(&mut partitions, &account, &region);
        match partitions.get_mut(&(account, region)) {
            Some(p) => Ok(document::add_collection(p, &kind, &body)?),
            None => Ok(()),
        }
    })?;
    each_row(connection, &format!("SELECT account, region, name, body FROM pipelines{filter}"), bind, |row| {
        let (account, region, name, body) = (text(row, 0)?, text(row, 1)?, text(row, 2)?, text(row, 3)?);
        let pipeline_row: PipelineRow = parse_row(&format!("pipeline {name}"), &body)?;
        let pipeline = PipelineDocument {
            row: pipeline_row,
            definitions: Vec::new(),
            executions: Vec::new(),
            positions: Vec::new(),
            jobs: Vec::new(),
            job_of_run: Vec::new(),
            client_tokens: BTreeMap::new(),
        };
        pipelines.insert((account, region, name), pipeline);
        Ok(())
    })?;
    let sql = format!(
        "SELECT account, region, pipeline, body FROM definitions{filter} ORDER BY account, region, pipeline, version"
    );
    each_row(connection, &sql, bind, |row| {
        let key = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
        let pipeline =
            pipelines.get_mut(&key).ok_or_else(|| orphan(format!("a version of missing pipeline {}", key.2)))?;
        pipeline.definitions.push(parse_row(&format!("a version of pipeline {}", key.2), &text(row, 3)?)?);
        Ok(())
    })?;
    let sql = format!(
        "SELECT account, region, pipeline, body, position FROM executions{filter} \
         ORDER BY account, region, pipeline, position"
    );
    each_row(connection, &sql, bind, |row| {
        let key = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
        let position: i64 = row.get(4)?;
        let pipeline =
            pipelines.get_mut(&key).ok_or_else(|| orphan(format!("an execution of missing pipeline {}", key.2)))?;
        // Rows come in position order; retention leaves gaps before the positions still kept.
        let position = usize::try_from(position)
            .ok()
            .filter(|p| pipeline.positions.last().is_none_or(|last| p > last))
            .ok_or_else(|| orphan(format!("execution {position} of pipeline {} is out of sequence", key.2)))?;
        pipeline.executions.push(parse_row(&format!("an execution of pipeline {}", key.2), &text(row, 3)?)?);
        pipeline.positions.push(position);
        Ok(())
    })?;
    let sql = format!("SELECT account, region, pipeline, kind, key, body FROM items{filter}");
    each_row(connection, &sql, bind, |row| {
        let key = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
        let (kind, item, body) = (text(row, 3)?, text(row, 4)?, text(row, 5)?);
        let pipeline =
            pipelines.get_mut(&key).ok_or_else(|| orphan(format!("a {kind} of missing pipeline {}", key.2)))?;
        Ok(document::add_item(pipeline, &kind, &item, &body)?)
    })?;

    for ((account, region, _), pipeline) in pipelines {
        partition(&mut partitions, &account, &region);
        if let Some(p) = partitions.get_mut(&(account, region)) {
            p.pipelines.push(pipeline);
        }
    }
    let meta = |key: &str| -> Result<Option<String>, LoadError> {
        Ok(connection.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    };
    let number = |key: &str| -> Result<Option<i64>, LoadError> {
        let parsed = meta(key)?.map(|v| v.parse::<i64>());
        let unreadable =
            |e: std::num::ParseIntError| DocumentError::Unreadable { what: key.into(), reason: e.to_string() };
        Ok(parsed.transpose().map_err(unreadable)?)
    };
    Ok(Document {
        format: document::FORMAT.to_string(),
        version: document::VERSION,
        clock_offset_millis: number(META_CLOCK_OFFSET)?.unwrap_or(0),
        next_event_sequence: number(META_EVENT_SEQUENCE)?.and_then(|n| u64::try_from(n).ok()),
        behaviors: meta(META_BEHAVIORS)?.map(|b| parse_row(META_BEHAVIORS, &b)).transpose()?,
        partitions: partitions.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(pipeline: &str, position: usize, body: &str) -> RowChange {
        RowChange::Execution { pipeline: pipeline.into(), position, body: Some(body.into()) }
    }

    fn pipeline(name: &str, body: Option<&str>) -> RowChange {
        RowChange::Pipeline { name: name.into(), body: body.map(str::to_string) }
    }

    #[test]
    fn a_batch_saves_the_rows_of_several_partitions_and_the_event_sequence_at_once() {
        let dir = std::env::temp_dir().join(format!("cpl-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = Options { dir: dir.clone(), full_sync: false, max_bytes: None };
        let (storage, _) = Storage::open(&options).expect("opens");
        let here = Scope { account: "000000000000".into(), region: "us-east-1".into() };
        let there = Scope { account: "000000000000".into(), region: "eu-west-1".into() };
        let row = |arn: &str| serde_json::json!({"name": "p", "arn": arn}).to_string();
        let first = [pipeline("p", Some(&row("arn:1")))];
        let second = [pipeline("p", Some(&row("arn:2"))), execution("p", 0, "{}")];
        storage.save_batch(&[(&here, &first), (&there, &second)], 7).expect("saved");
        let connection = storage.connection();
        let count = |sql: &str| -> i64 { connection.query_row(sql, [], |r| r.get(0)).expect("counts") };
        assert_eq!(count("SELECT count(*) FROM pipelines"), 2);
        assert_eq!(count("SELECT count(*) FROM executions WHERE region = 'eu-west-1'"), 1);
        let sequence: String = connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [META_EVENT_SEQUENCE], |r| r.get(0))
            .expect("the sequence");
        assert_eq!(sequence, (7 + SEQUENCE_RESERVE).to_string(), "saved ahead of the next event");
        drop(connection);
        // Replacing everything saves the new sequence reserved ahead, even below the one saved before, and a later
        // commit reserves again once events pass it.
        storage.replace_all(&mut [], &[], 3).expect("replaced");
        let saved = |storage: &Storage| -> String {
            storage
                .connection()
                .query_row("SELECT value FROM meta WHERE key = ?1", [META_EVENT_SEQUENCE], |r| r.get(0))
                .expect("the sequence")
        };
        assert_eq!(saved(&storage), (3 + SEQUENCE_RESERVE).to_string());
        storage.save_batch(&[], 4 + SEQUENCE_RESERVE).expect("saved");
        assert_eq!(saved(&storage), (4 + 2 * SEQUENCE_RESERVE).to_string());
        drop(storage);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
