//! The `--store` argument of `coap rd`: which [`Store`] implementation, and where. Kept
//! apart from the interface in `mod.rs`, which the implementations import: opening a
//! store names every implementation.

use std::path::PathBuf;

use super::{memory, redis, sqlite, Store, StoreError};

/// The `--store` argument: which store, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory`.
    Memory,
    /// `sqlite:PATH`.
    Sqlite(PathBuf),
    /// `redis://host:port/db` (the URL as given).
    Redis(String),
}

impl StoreSpec {
    /// Parses `memory`, `sqlite:PATH` or `redis://...`.
    pub fn parse(s: &str) -> Result<StoreSpec, String> {
        if s == "memory" {
            Ok(StoreSpec::Memory)
        } else if let Some(p) = s.strip_prefix("sqlite:") {
            if p.is_empty() {
                return Err("sqlite: needs a path (sqlite:PATH)".into());
            }
            Ok(StoreSpec::Sqlite(PathBuf::from(p)))
        } else if s.starts_with("redis://") {
            Ok(StoreSpec::Redis(s.to_owned()))
        } else {
            Err(format!(
                "{s}: not a store (memory, sqlite:PATH or redis://host:port/db)"
            ))
        }
    }

    /// The default: `coap-rd.sqlite3` under `$XDG_STATE_HOME/coap` when that is set, else
    /// in the working directory.
    pub fn default_sqlite() -> StoreSpec {
        let dir = match std::env::var_os("XDG_STATE_HOME") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join("coap"),
            _ => PathBuf::from("."),
        };
        StoreSpec::Sqlite(dir.join("coap-rd.sqlite3"))
    }

    /// Opens (connects to) the store; an unreachable or unusable store is an error.
    pub async fn open(&self) -> Result<std::sync::Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreSpec::Memory => std::sync::Arc::new(memory::MemoryStore::new()),
            StoreSpec::Sqlite(p) => std::sync::Arc::new(sqlite::SqliteStore::open(p).await?),
            StoreSpec::Redis(url) => std::sync::Arc::new(redis::RedisStore::connect(url).await?),
        })
    }
}
