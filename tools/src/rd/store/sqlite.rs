//! The SQLite store (`--store sqlite:PATH`, the default): one file, WAL journal, every
//! write committed with `synchronous=FULL` before the RD answers, so a registration
//! acknowledged with 2.01 is on disk.
//!
//! One thread owns the connection; requests reach it over a channel and are answered
//! after their transaction commits. Requests that arrive while a commit is under way are
//! committed together in the next transaction (a group commit: one fsync for many
//! registrations), and none waits on the endpoint's loop.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::{decode, encode, instant_of, unix_ms, Store, StoreError, StoreFuture};
use crate::rd::Registration;

/// The schema, one step per version (`PRAGMA user_version`): a database of an older
/// version is brought up to date at open, step by step, in one transaction.
const MIGRATIONS: &[&str] = &[
    // 1: registrations; the id is never reused (AUTOINCREMENT), so a location path is
    // unique across restarts. `sector` is '' for none (d is 1 to 63 bytes otherwise).
    "CREATE TABLE registrations (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         ep TEXT NOT NULL,
         sector TEXT NOT NULL,
         expires_ms INTEGER NOT NULL,
         record TEXT NOT NULL,
         UNIQUE (sector, ep)
     );
     CREATE INDEX registrations_expiry ON registrations (expires_ms);",
];

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    Register(Registration, Reply<(u64, bool)>),
    Update(Registration, Reply<bool>),
    Remove(u64, Reply<bool>),
    Get(u64, Reply<Option<Registration>>),
    Load(Reply<Vec<Registration>>),
    Expire(Reply<usize>),
}

/// An answer to send once the transaction's fate is known.
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

fn answer<T: Send + 'static>(tx: Reply<T>, r: Result<T, StoreError>) -> Answer {
    Box::new(move |failed| {
        let _ = tx.send(match failed {
            Some(e) => Err(e),
            None => r,
        });
    })
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    StoreError(format!("sqlite: {e}"))
}

/// Registrations in an SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    ops: mpsc::Sender<Op>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens `path`, creating it (and its directory) if needed, in WAL mode, migrated.
fn open_db(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
    }
    let mut conn = Connection::open(path).map_err(sql_error)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sql_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError(format!("sqlite: journal mode {mode}, not WAL")));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;")
        .map_err(sql_error)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_error)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError(format!(
            "{}: schema version {version} is newer than this coap ({known})",
            path.display()
        )));
    }
    let tx = conn.transaction().map_err(sql_error)?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(step).map_err(sql_error)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(sql_error)?;
    }
    tx.commit().map_err(sql_error)?;
    Ok(conn)
}

fn now_ms() -> i64 {
    unix_ms(Instant::now()) as i64
}

fn row_to_reg(id: i64, expires_ms: i64, record: &str) -> Result<Registration, StoreError> {
    decode(id as u64, instant_of(expires_ms.max(0) as u64), record)
}

fn register(conn: &Connection, reg: &Registration) -> Result<(u64, bool), StoreError> {
    let sector = reg.d.as_deref().unwrap_or("");
    let exp = unix_ms(reg.expires) as i64;
    let record = encode(reg);
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM registrations WHERE sector = ?1 AND ep = ?2")
        .and_then(|mut s| {
            s.query_row(params![sector, reg.ep], |r| r.get(0))
                .optional()
        })
        .map_err(sql_error)?;
    match existing {
        Some(id) => {
            conn.prepare_cached(
                "UPDATE registrations SET expires_ms = ?2, record = ?3 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, exp, record]))
            .map_err(sql_error)?;
            Ok((id as u64, false))
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO registrations (ep, sector, expires_ms, record) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![reg.ep, sector, exp, record]))
            .map_err(sql_error)?;
            Ok((conn.last_insert_rowid() as u64, true))
        }
    }
}

fn update(conn: &Connection, reg: &Registration) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE registrations SET expires_ms = ?2, record = ?3 WHERE id = ?1 AND expires_ms > ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                reg.id as i64,
                unix_ms(reg.expires) as i64,
                encode(reg),
                now_ms()
            ])
        })
        .map_err(sql_error)?;
    Ok(n == 1)
}

fn get(conn: &Connection, id: u64) -> Result<Option<Registration>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT expires_ms, record FROM registrations WHERE id = ?1 AND expires_ms > ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![id as i64, now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql_error)?;
    row.map(|(exp, rec)| row_to_reg(id as i64, exp, &rec))
        .transpose()
}

fn load(conn: &Connection) -> Result<Vec<Registration>, StoreError> {
    let mut s = conn
        .prepare(
            "SELECT id, expires_ms, record FROM registrations WHERE expires_ms > ?1 ORDER BY id",
        )
        .map_err(sql_error)?;
    let rows = s
        .query_map(params![now_ms()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, exp, rec) = row.map_err(sql_error)?;
        out.push(row_to_reg(id, exp, &rec)?);
    }
    Ok(out)
}

fn run(conn: &Connection, op: Op) -> Answer {
    match op {
        Op::Register(reg, tx) => answer(tx, register(conn, &reg)),
        Op::Update(reg, tx) => answer(tx, update(conn, &reg)),
        Op::Remove(id, tx) => {
            let r = conn
                .prepare_cached("DELETE FROM registrations WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id as i64]))
                .map(|n| n == 1)
                .map_err(sql_error);
            answer(tx, r)
        }
        Op::Get(id, tx) => answer(tx, get(conn, id)),
        Op::Load(tx) => answer(tx, load(conn)),
        Op::Expire(tx) => {
            let r = conn
                .prepare_cached("DELETE FROM registrations WHERE expires_ms <= ?1")
                .and_then(|mut s| s.execute(params![now_ms()]))
                .map_err(sql_error);
            answer(tx, r)
        }
    }
}

/// The connection's thread: a batch of requests per transaction, answered after commit.
fn serve(conn: Connection, ops: mpsc::Receiver<Op>) {
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let failed = conn.execute_batch("BEGIN IMMEDIATE").err().map(sql_error);
        if let Some(e) = failed {
            for op in batch {
                run_failed(op, e.clone());
            }
            continue;
        }
        let answers: Vec<Answer> = batch.into_iter().map(|op| run(&conn, op)).collect();
        let failed = conn.execute_batch("COMMIT").err().map(sql_error);
        if failed.is_some() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for a in answers {
            a(failed.clone());
        }
    }
}

fn run_failed(op: Op, e: StoreError) {
    match op {
        Op::Register(_, tx) => drop(tx.send(Err(e))),
        Op::Update(_, tx) | Op::Remove(_, tx) => drop(tx.send(Err(e))),
        Op::Get(_, tx) => drop(tx.send(Err(e))),
        Op::Load(tx) => drop(tx.send(Err(e))),
        Op::Expire(tx) => drop(tx.send(Err(e))),
    }
}

impl SqliteStore {
    /// Opens (creates, migrates) the database at `path` on a thread of its own.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let owned = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || open_db(&owned))
            .await
            .map_err(|e| StoreError(e.to_string()))?
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        let (ops, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("coap-rd-sqlite".into())
            .spawn(move || serve(conn, rx))
            .map_err(|e| StoreError(format!("cannot start the sqlite thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            ops,
        })
    }

    fn call<T: Send + 'static>(&self, op: impl FnOnce(Reply<T>) -> Op) -> StoreFuture<'_, T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.ops.send(op(tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError("the sqlite thread has stopped".into()))?;
            rx.await
                .map_err(|_| StoreError("the sqlite thread has stopped".into()))?
        })
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{} (WAL, synchronous=FULL)", self.path.display())
    }

    fn register(&self, reg: Registration) -> StoreFuture<'_, (u64, bool)> {
        self.call(|tx| Op::Register(reg, tx))
    }

    fn update(&self, reg: Registration) -> StoreFuture<'_, bool> {
        self.call(|tx| Op::Update(reg, tx))
    }

    fn remove(&self, id: u64) -> StoreFuture<'_, bool> {
        self.call(|tx| Op::Remove(id, tx))
    }

    fn get(&self, id: u64) -> StoreFuture<'_, Option<Registration>> {
        self.call(|tx| Op::Get(id, tx))
    }

    fn load(&self) -> StoreFuture<'_, Vec<Registration>> {
        self.call(Op::Load)
    }

    fn expire(&self) -> StoreFuture<'_, usize> {
        self.call(Op::Expire)
    }
}
