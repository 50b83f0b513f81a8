//! Where a resource directory keeps its registrations: the [`Store`] interface and its
//! three implementations, chosen with `coap rd --store` ([`StoreSpec`]):
//!
//! | store | survives a restart | shared by instances | module |
//! | --- | --- | --- | --- |
//! | `memory` | no | no | [`memory`] |
//! | `sqlite:PATH` (the default) | yes (WAL, synchronous commits) | no | [`sqlite`] |
//! | `redis://host:port/db` | yes (as Redis persists) | yes (pub/sub, key TTLs) | [`redis`] |
//!
//! The store allocates registration ids (so `/reg/N` is unique across instances and
//! restarts) and holds the truth; each instance answers lookups from its
//! [`Directory`](super::Directory), loaded from the store at start and kept current by
//! its own writes and, for a shared store, by the store's [`Change`]s.

pub mod memory;
pub mod redis;
mod spec;
pub mod sqlite;

pub use spec::StoreSpec;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::Registration;

/// Why a store operation failed: the store is unreachable or refused the write. The RD
/// answers 5.03 with Max-Age (RFC 7252 §5.9.3.4) and acknowledges nothing it did not store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// A store operation's future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A change made by any instance sharing the store, for the others' views and observers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A registration was made or updated (as it is now).
    Put(Registration),
    /// A registration was removed.
    Removed(u64),
    /// Changes may have been missed (the subscription was re-established): reload all.
    Resync,
}

/// A registration store.
pub trait Store: Send + Sync {
    /// What it is, for the start-up line (`sqlite:/var/lib/rd.db (WAL)`).
    fn describe(&self) -> String;

    /// Stores `reg` (its id is ignored): under the id of the registration with the same
    /// ep and d if there is one (RFC 9176 §5.3), else under a new id never used before.
    /// The id and whether it is new. Returns once the registration is durable.
    fn register(&self, reg: Registration) -> StoreFuture<'_, (u64, bool)>;

    /// Replaces the registration `reg.id` (an update, §5.3.1); `false` if there is none.
    fn update(&self, reg: Registration) -> StoreFuture<'_, bool>;

    /// Removes a registration (§5.3.2); `false` if there was none.
    fn remove(&self, id: u64) -> StoreFuture<'_, bool>;

    /// A registration by id, if it is still alive.
    fn get(&self, id: u64) -> StoreFuture<'_, Option<Registration>>;

    /// Every live registration (at start, and after a [`Change::Resync`]).
    fn load(&self) -> StoreFuture<'_, Vec<Registration>>;

    /// Removes the registrations whose lifetime ran out; how many (0 where the store
    /// expires them itself).
    fn expire(&self) -> StoreFuture<'_, usize>;

    /// The changes made by other instances, for a store shared between several; `None`
    /// for a store of one instance. Taken once.
    fn changes(&self) -> Option<tokio::sync::mpsc::Receiver<Change>> {
        None
    }
}

/// Milliseconds since the Unix epoch of `at` (the stores keep wall-clock expiry, since an
/// `Instant` means nothing to another process).
pub fn unix_ms(at: Instant) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ahead = at.saturating_duration_since(Instant::now());
    u64::try_from((now + ahead).as_millis()).unwrap_or(u64::MAX)
}

/// The `Instant` of a Unix time in milliseconds (the past is now).
pub fn instant_of(ms: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = Duration::from_millis(ms);
    Instant::now() + at.saturating_sub(now)
}

/// The stored form of a registration (all but its id and expiry, which the stores keep
/// in their own columns or keys): a JSON object.
pub fn encode(reg: &Registration) -> String {
    let attrs: Vec<Value> = reg.attrs.iter().map(|(n, v)| json!([n, v])).collect();
    json!({
        "ep": reg.ep,
        "d": reg.d,
        "base": reg.base,
        "lt": reg.lt,
        "et": reg.et,
        "attrs": attrs,
        "peer": reg.peer.to_string(),
        "links": reg.links,
    })
    .to_string()
}

/// A registration from its stored form.
pub fn decode(id: u64, expires: Instant, text: &str) -> Result<Registration, StoreError> {
    let bad = |what: &str| StoreError(format!("registration {id} in the store: bad {what}"));
    let v: Value = serde_json::from_str(text).map_err(|_| bad("JSON"))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let strings = |k: &str| -> Option<Vec<String>> {
        v.get(k)?
            .as_array()?
            .iter()
            .map(|e| e.as_str().map(str::to_owned))
            .collect()
    };
    let attrs = v
        .get("attrs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("attrs"))?
        .iter()
        .map(|a| {
            let n = a.get(0)?.as_str()?.to_owned();
            Some((n, a.get(1).and_then(Value::as_str).map(str::to_owned)))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("attrs"))?;
    let peer: SocketAddr = s("peer")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad("peer"))?;
    Ok(Registration {
        id,
        ep: s("ep").ok_or_else(|| bad("ep"))?,
        d: s("d"),
        base: s("base"),
        lt: v
            .get("lt")
            .and_then(Value::as_u64)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or_else(|| bad("lt"))?,
        et: strings("et").ok_or_else(|| bad("et"))?,
        attrs,
        peer,
        expires,
        links: s("links").ok_or_else(|| bad("links"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(ep: &str, lt: u32) -> Registration {
        Registration {
            id: 0,
            ep: ep.into(),
            d: Some("floor-3".into()),
            base: None,
            lt,
            et: vec!["oic.d.sensor".into()],
            attrs: vec![("proxy".into(), None), ("x".into(), Some("\"q\"".into()))],
            peer: "[2001:db8::1]:5683".parse().unwrap(),
            expires: Instant::now() + Duration::from_secs(u64::from(lt)),
            links: r#"</t>;rt="temperature""#.into(),
        }
    }

    #[test]
    fn the_stored_form_round_trips() {
        let r = reg("a", 60);
        let back = decode(7, r.expires, &encode(&r)).unwrap();
        assert_eq!(back, Registration { id: 7, ..r });
        assert!(decode(1, Instant::now(), "{}").is_err());
    }

    #[test]
    fn specs_parse() {
        assert_eq!(StoreSpec::parse("memory"), Ok(StoreSpec::Memory));
        assert_eq!(
            StoreSpec::parse("sqlite:/x/rd.db"),
            Ok(StoreSpec::Sqlite("/x/rd.db".into()))
        );
        assert!(StoreSpec::parse("sqlite:").is_err());
        assert!(StoreSpec::parse("postgres://h").is_err());
        assert_eq!(
            StoreSpec::parse("redis://127.0.0.1:6379/2"),
            Ok(StoreSpec::Redis("redis://127.0.0.1:6379/2".into()))
        );
    }

    /// SQLite: ids never reused, the same endpoint keeps its id, a reopened file has what
    /// was stored (with its expiry), expired rows go, and a newer schema is refused.
    #[tokio::test]
    async fn sqlite_keeps_registrations_across_opens() {
        let dir = std::env::temp_dir().join(format!("coap-rd-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/rd.sqlite3");
        let s = sqlite::SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.register(reg("a", 60)).await, Ok((1, true)));
        assert_eq!(s.register(reg("b", 60)).await, Ok((2, true)));
        assert_eq!(s.register(reg("a", 90)).await, Ok((1, false)));
        assert_eq!(s.remove(2).await, Ok(true));
        assert_eq!(s.remove(2).await, Ok(false));
        assert_eq!(s.register(reg("c", 1)).await, Ok((3, true)));
        let mut short = reg("d", 1);
        short.expires = Instant::now();
        assert_eq!(s.register(short).await, Ok((4, true)));
        assert_eq!(s.expire().await, Ok(1));
        drop(s);
        let s = sqlite::SqliteStore::open(&path).await.unwrap();
        let all = s.load().await.unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 3]);
        let a = s.get(1).await.unwrap().unwrap();
        assert_eq!(a.lt, 90);
        let left = a.expires.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(85) && left <= Duration::from_secs(90));
        let mut upd = a.clone();
        upd.lt = 5;
        assert_eq!(s.update(upd).await, Ok(true));
        assert_eq!(s.get(1).await.unwrap().unwrap().lt, 5);
        assert_eq!(s.update(Registration { id: 99, ..a }).await, Ok(false));
        // A removed id is not handed out again (AUTOINCREMENT).
        assert_eq!(s.register(reg("e", 60)).await, Ok((5, true)));
        drop(s);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = sqlite::SqliteStore::open(&path).await.unwrap_err();
        assert!(e.0.contains("newer"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
