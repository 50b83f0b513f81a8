//! The Redis store (`--store redis://host:port/db`): one directory served by several
//! `coap rd` processes, on one machine or many.
//!
//! Keys (prefix `coap-rd:`): `reg:ID` holds a registration (its stored form) and
//! `ep:LEN:SECTOR ENDPOINT` its id, both with the registration's remaining lifetime as
//! their TTL, so that Redis expires each registration once, whichever instances run;
//! `next` allocates ids (INCR: unique across instances and restarts). Every write runs
//! as one Lua script (atomic: two instances registering one endpoint get one location)
//! and publishes `put ID INSTANCE TTL RECORD` or `del ID INSTANCE` on the `changes`
//! channel, which every other instance follows to keep its view current and notify its
//! observers (RFC 7641 §4.2), without reading the registration back. After the
//! subscription is lost and re-established, or when an instance falls behind by more
//! than [`BACKLOG`] changes, it reloads everything.
//!
//! When Redis is unreachable, writes fail ([`StoreError`], answered 5.03 + Max-Age) and
//! the connection is retried on the next request; lookups go on from the instance's view.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::{decode, encode, Change, Store, StoreError, StoreFuture};
use crate::rd::Registration;

const PREFIX: &str = "coap-rd:";

/// How long a command may take before the store counts as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Changes queued for the instance's view at most; beyond, it reloads instead.
pub const BACKLOG: usize = 4096;
/// The pause between attempts to subscribe again.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(250);

/// KEYS: ep key, id counter. ARGV: reg key prefix, record, TTL ms, channel, the highest id
/// this instance has seen (a Redis that lost its data must not hand out an id again),
/// instance.
const REGISTER: &str = r"
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[5]) then
  redis.call('SET', KEYS[2], ARGV[5])
end
local id = redis.call('GET', KEYS[1])
local new = 0
if (not id) or redis.call('EXISTS', ARGV[1] .. id) == 0 then
  id = tostring(redis.call('INCR', KEYS[2]))
  new = 1
end
redis.call('SET', ARGV[1] .. id, ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[1], id, 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], 'put ' .. id .. ' ' .. ARGV[6] .. ' ' .. ARGV[3] .. ' ' .. ARGV[2])
return {tonumber(id), new}
";

/// KEYS: reg key, ep key. ARGV: record, TTL ms, channel, id, instance.
const UPDATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'put ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[2] .. ' ' .. ARGV[1])
return 1
";

/// KEYS: reg key, ep key. ARGV: id, channel, instance.
const REMOVE: &str = r"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[2], 'del ' .. ARGV[1] .. ' ' .. ARGV[3])
return 1
";

fn reg_key(id: u64) -> String {
    format!("{PREFIX}reg:{id}")
}

fn ep_key(ep: &str, d: Option<&str>) -> String {
    let d = d.unwrap_or("");
    format!("{PREFIX}ep:{}:{d} {ep}", d.len())
}

fn channel() -> String {
    format!("{PREFIX}changes")
}

fn redis_error(e: ::redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

/// The TTL of a registration: its remaining lifetime in ms (at least 1).
fn ttl_ms(reg: &Registration) -> u64 {
    let left = reg.expires.saturating_duration_since(Instant::now());
    u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Registrations in a Redis database shared by the instances of one directory.
pub struct RedisStore {
    url: String,
    con: ConnectionManager,
    changes: Mutex<Option<mpsc::Receiver<Change>>>,
    /// This instance's name in the changes it publishes (its own are not applied twice).
    instance: String,
    /// The highest id seen: ids stay unique even if Redis restarts without its data.
    highest: AtomicU64,
    register: Script,
    update: Script,
    remove: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`); fails when Redis does not answer.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(redis_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let mut con = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(redis_error)?;
        let _: String = ::redis::cmd("PING")
            .query_async(&mut con)
            .await
            .map_err(redis_error)?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let instance = format!("{:x}-{nanos:x}", std::process::id());
        tokio::spawn(follow(client, instance.clone(), tx));
        Ok(RedisStore {
            url: url.to_owned(),
            con,
            changes: Mutex::new(Some(rx)),
            instance,
            highest: AtomicU64::new(0),
            register: Script::new(REGISTER),
            update: Script::new(UPDATE),
            remove: Script::new(REMOVE),
        })
    }

    /// A registration and its remaining TTL.
    async fn fetch(&self, id: u64) -> Result<Option<Registration>, StoreError> {
        let mut con = self.con.clone();
        let key = reg_key(id);
        let (record, pttl): (Option<String>, i64) = ::redis::pipe()
            .get(&key)
            .pttl(&key)
            .query_async(&mut con)
            .await
            .map_err(redis_error)?;
        match record {
            Some(r) if pttl > 0 => {
                self.highest.fetch_max(id, Ordering::Relaxed);
                let expires = Instant::now() + Duration::from_millis(pttl as u64);
                decode(id, expires, &r).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn load_all(&self) -> Result<Vec<Registration>, StoreError> {
        let mut con = self.con.clone();
        let pattern = format!("{PREFIX}reg:*");
        let mut ids = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(redis_error)?;
            ids.extend(keys.iter().filter_map(|k| {
                k.strip_prefix(PREFIX)?
                    .strip_prefix("reg:")?
                    .parse::<u64>()
                    .ok()
            }));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut p = ::redis::pipe();
            for id in chunk {
                p.get(reg_key(*id)).pttl(reg_key(*id));
            }
            let rows: Vec<(Option<String>, i64)> =
                p.query_async(&mut con).await.map_err(redis_error)?;
            let now = Instant::now();
            for (id, (record, pttl)) in chunk.iter().zip(rows) {
                if let Some(r) = record.filter(|_| pttl > 0) {
                    out.push(decode(*id, now + Duration::from_millis(pttl as u64), &r)?);
                }
            }
        }
        if let Some(max) = out.iter().map(|r| r.id).max() {
            self.highest.fetch_max(max, Ordering::Relaxed);
        }
        Ok(out)
    }
}

/// A change published by another instance (`None` for this instance's own, and for
/// what is not a change).
fn parse_change(text: &str, own: &str) -> Option<Change> {
    let mut parts = text.splitn(5, ' ');
    let (kind, id, instance) = (parts.next()?, parts.next()?, parts.next()?);
    let id: u64 = id.parse().ok()?;
    if instance == own {
        return None;
    }
    match kind {
        "put" => {
            let ttl: u64 = parts.next()?.parse().ok()?;
            let expires = Instant::now() + Duration::from_millis(ttl);
            match decode(id, expires, parts.next()?) {
                Ok(reg) => Some(Change::Put(reg)),
                Err(e) => {
                    tracing::warn!("rd: {e}");
                    None
                }
            }
        }
        "del" => Some(Change::Removed(id)),
        _ => None,
    }
}

/// Queues `change` for the view; when the queue is full the change is dropped and a
/// reload queued as soon as there is room. `false` once nobody listens.
fn deliver(tx: &mpsc::Sender<Change>, change: Change, behind: &mut bool) -> bool {
    use mpsc::error::TrySendError;
    if *behind {
        match tx.try_send(Change::Resync) {
            // The reload covers this change too.
            Ok(()) => {
                *behind = false;
                return true;
            }
            Err(TrySendError::Full(_)) => return true,
            Err(TrySendError::Closed(_)) => return false,
        }
    }
    match tx.try_send(change) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            *behind = true;
            true
        }
        Err(TrySendError::Closed(_)) => false,
    }
}

/// Follows the `changes` channel for as long as the store is in use, subscribing again
/// (and asking for a reload) whenever the subscription is lost.
async fn follow(client: Client, own: String, tx: mpsc::Sender<Change>) {
    let mut behind = false;
    while !tx.is_closed() {
        if let Ok(mut sub) = client.get_async_pubsub().await {
            if sub.subscribe(channel()).await.is_ok() {
                if !deliver(&tx, Change::Resync, &mut behind) {
                    return;
                }
                let mut messages = sub.into_on_message();
                while let Some(m) = messages.next().await {
                    let Ok(text) = m.get_payload::<String>() else {
                        continue;
                    };
                    if let Some(c) = parse_change(&text, &own) {
                        if !deliver(&tx, c, &mut behind) {
                            return;
                        }
                    }
                }
                tracing::warn!("rd: lost the Redis subscription; subscribing again");
            }
        }
        tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
    }
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        format!("{} (shared; pub/sub on {})", self.url, channel())
    }

    fn register(&self, reg: Registration) -> StoreFuture<'_, (u64, bool)> {
        Box::pin(async move {
            let mut con = self.con.clone();
            let (id, new): (u64, u8) = self
                .register
                .key(ep_key(&reg.ep, reg.d.as_deref()))
                .key(format!("{PREFIX}next"))
                .arg(format!("{PREFIX}reg:"))
                .arg(encode(&reg))
                .arg(ttl_ms(&reg))
                .arg(channel())
                .arg(self.highest.load(Ordering::Relaxed))
                .arg(&self.instance)
                .invoke_async(&mut con)
                .await
                .map_err(redis_error)?;
            self.highest.fetch_max(id, Ordering::Relaxed);
            Ok((id, new == 1))
        })
    }

    fn update(&self, reg: Registration) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let mut con = self.con.clone();
            let done: u8 = self
                .update
                .key(reg_key(reg.id))
                .key(ep_key(&reg.ep, reg.d.as_deref()))
                .arg(encode(&reg))
                .arg(ttl_ms(&reg))
                .arg(channel())
                .arg(reg.id)
                .arg(&self.instance)
                .invoke_async(&mut con)
                .await
                .map_err(redis_error)?;
            Ok(done == 1)
        })
    }

    fn remove(&self, id: u64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let Some(reg) = self.fetch(id).await? else {
                return Ok(false);
            };
            let mut con = self.con.clone();
            let done: u8 = self
                .remove
                .key(reg_key(id))
                .key(ep_key(&reg.ep, reg.d.as_deref()))
                .arg(id)
                .arg(channel())
                .arg(&self.instance)
                .invoke_async(&mut con)
                .await
                .map_err(redis_error)?;
            Ok(done == 1)
        })
    }

    fn get(&self, id: u64) -> StoreFuture<'_, Option<Registration>> {
        Box::pin(self.fetch(id))
    }

    fn load(&self) -> StoreFuture<'_, Vec<Registration>> {
        Box::pin(self.load_all())
    }

    fn expire(&self) -> StoreFuture<'_, usize> {
        // Redis expires the keys itself (their TTL), once for all instances.
        Box::pin(std::future::ready(Ok(0)))
    }

    fn changes(&self) -> Option<mpsc::Receiver<Change>> {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_of_other_instances_are_parsed_and_own_ones_skipped() {
        let record = r#"{"ep":"a","d":null,"base":null,"lt":60,"et":[],"attrs":[],"peer":"127.0.0.1:1","links":"</x y>"}"#;
        let text = format!("put 7 other 60000 {record}");
        match parse_change(&text, "me") {
            Some(Change::Put(r)) => {
                assert_eq!((r.id, r.ep.as_str(), r.links.as_str()), (7, "a", "</x y>"));
                let left = r.expires.saturating_duration_since(Instant::now());
                assert!(left > Duration::from_secs(59));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_change(&text, "other"), None);
        assert_eq!(parse_change("del 7 other", "me"), Some(Change::Removed(7)));
        assert_eq!(parse_change("del x other", "me"), None);
        assert_eq!(parse_change("put 7 other", "me"), None);
    }

    #[test]
    fn a_full_backlog_turns_into_one_reload() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut behind = false;
        for id in 0..5 {
            assert!(deliver(&tx, Change::Removed(id), &mut behind));
        }
        assert!(behind);
        assert_eq!(rx.try_recv(), Ok(Change::Removed(0)));
        assert!(deliver(&tx, Change::Removed(9), &mut behind));
        assert!(!behind);
        assert_eq!(rx.try_recv(), Ok(Change::Removed(1)));
        assert_eq!(rx.try_recv(), Ok(Change::Resync));
        drop(rx);
        assert!(!deliver(&tx, Change::Removed(10), &mut behind));
    }
}
