//! The HC proxy's HTTP connections: bounded in all and per client address, and a client
//! that is slow to send its request head cannot keep others out.
//!
//! Slow-header clients ("slowloris") open connections and send a head a byte at a time.
//! The header-read timeout ends each such connection, but an attacker opening connections
//! faster than `max_connections / timeout` would still hold every place, and a waiting
//! legitimate connection would sit in the listen backlog behind theirs. So when every
//! place is taken, a new connection takes the place of the one that has waited longest
//! for a request head (a fresh connection, or a keep-alive one between requests): a
//! connection whose request is being served is never closed for another. Only when every
//! connection is mid-request is the new one refused (503). One client address holds at
//! most `per_client` places (503 beyond), so one host cannot evict everyone else either.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// One open connection.
struct Open {
    id: u64,
    /// Serving a request now (its head has arrived and the answer is not yet written).
    active: bool,
    /// Since when it has been waiting for a request head.
    idle_since: Instant,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: Vec<Open>,
    per_client: HashMap<IpAddr, usize>,
}

/// The connection table.
#[derive(Clone)]
pub(super) struct Connections {
    table: Arc<Mutex<Table>>,
    max: usize,
    per_client: usize,
}

/// Whether a new connection may be served.
pub(super) enum Admission {
    /// Yes, in this place.
    Admitted(Slot),
    /// Its client address holds `per_client` connections already.
    ClientFull,
    /// Every connection is serving a request.
    Full,
}

/// A connection's place, given back when dropped.
pub(super) struct Slot {
    table: Arc<Mutex<Table>>,
    id: u64,
    ip: IpAddr,
    /// Notified when the place is given to a newer connection: the connection is closed.
    pub(super) evict: Arc<Notify>,
}

impl Connections {
    /// At most `max` connections in all and `per_client` from one address (each at least 1).
    pub(super) fn new(max: usize, per_client: usize) -> Connections {
        Connections {
            table: Arc::default(),
            max: max.max(1),
            per_client: per_client.max(1),
        }
    }

    /// A place for a connection from `ip`, evicting the longest-waiting idle connection
    /// when every place is taken.
    pub(super) fn admit(&self, ip: IpAddr) -> Admission {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if t.per_client.get(&ip).copied().unwrap_or(0) >= self.per_client {
            return Admission::ClientFull;
        }
        if t.open.len() >= self.max {
            let victim = t
                .open
                .iter()
                .enumerate()
                .filter(|(_, o)| !o.active)
                .min_by_key(|(_, o)| o.idle_since)
                .map(|(i, _)| i);
            let Some(i) = victim else {
                return Admission::Full;
            };
            let evicted = t.open.swap_remove(i);
            evicted.evict.notify_one();
        }
        let id = t.next_id;
        t.next_id += 1;
        let evict = Arc::new(Notify::new());
        t.open.push(Open {
            id,
            active: false,
            idle_since: Instant::now(),
            evict: evict.clone(),
        });
        *t.per_client.entry(ip).or_insert(0) += 1;
        Admission::Admitted(Slot {
            table: self.table.clone(),
            id,
            ip,
            evict,
        })
    }
}

impl Slot {
    /// The connection starts (`true`) or ends (`false`) serving a request.
    pub(super) fn set_active(&self, active: bool) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = t.open.iter_mut().find(|o| o.id == self.id) {
            o.active = active;
            if !active {
                o.idle_since = Instant::now();
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.open.retain(|o| o.id != self.id);
        if let Some(n) = t.per_client.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_client.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) => s,
            _ => panic!("not admitted"),
        }
    }

    #[tokio::test]
    async fn the_longest_idle_connection_makes_room_and_active_ones_stay() {
        let c = Connections::new(2, 8);
        let slow = admitted(c.admit(ip("127.0.0.2")));
        let busy = admitted(c.admit(ip("127.0.0.3")));
        busy.set_active(true);
        // Full: the idle one is evicted for the newcomer.
        let newcomer = admitted(c.admit(ip("127.0.0.4")));
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.evict.notified())
            .await
            .expect("the idle connection is told to close");
        drop(slow);
        // Both remaining are... one active, one idle (the newcomer): it goes next.
        let _later = admitted(c.admit(ip("127.0.0.5")));
        tokio::time::timeout(std::time::Duration::from_secs(1), newcomer.evict.notified())
            .await
            .expect("the newcomer, idle, is next");
        drop(newcomer);
        // With every connection active, a new one is refused.
        _later.set_active(true);
        assert!(matches!(c.admit(ip("127.0.0.6")), Admission::Full));
        drop(busy);
        assert!(matches!(c.admit(ip("127.0.0.6")), Admission::Admitted(_)));
    }

    #[test]
    fn one_address_holds_its_share_only() {
        let c = Connections::new(8, 2);
        let a = admitted(c.admit(ip("10.0.0.1")));
        let _b = admitted(c.admit(ip("10.0.0.1")));
        assert!(matches!(c.admit(ip("10.0.0.1")), Admission::ClientFull));
        assert!(matches!(c.admit(ip("10.0.0.2")), Admission::Admitted(_)));
        drop(a);
        assert!(matches!(c.admit(ip("10.0.0.1")), Admission::Admitted(_)));
    }
}
