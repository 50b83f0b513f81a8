//! Observing resources (RFC 7641): the server's list of observers and notification
//! sequence numbers, and the client's freshness rule for reordered notifications.

use crate::time::Instant;
use crate::token::Token;

/// Observe values are 24-bit (RFC 7641 §2, §4.4).
pub const OBSERVE_MODULUS: u32 = 1 << 24;

/// RFC 7641 §3.4: is a notification with Observe value `v2` received at `t2` newer than
/// the last one delivered (`v1` at `t1`)? Values wrap at 2^24; after 128 s without
/// notifications any value counts as newer.
pub fn is_fresh(v1: u32, t1: Instant, v2: u32, t2: Instant) -> bool {
    const HALF: u32 = 1 << 23;
    let (v1, v2) = (v1 % OBSERVE_MODULUS, v2 % OBSERVE_MODULUS);
    (v1 < v2 && v2 - v1 < HALF)
        || (v1 > v2 && v1 - v2 > HALF)
        || t2.as_millis() > t1.as_millis() + 128_000
}

/// One registered observer (RFC 7641 §4.1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observer<A> {
    pub peer: A,
    pub token: Token,
    /// The application's key for the observed resource.
    pub key: u32,
    /// When the last CON notification went out (§4.5: at least one every 24 h).
    pub last_con: Instant,
    /// NON notifications sent since the last CON one.
    pub since_con: u16,
    /// Message ID of the latest notification, to match a RST to a NON notification.
    pub last_mid: u16,
    /// Slot and generation of a CON notification still awaiting its ACK.
    pub in_flight: Option<(u16, u16)>,
}

/// The observers of all resources, fixed capacity. When full, a registration is answered
/// without registering (§4.1: the response then carries no Observe option).
pub(crate) struct ObserverTable<A, const O: usize> {
    entries: [Option<Observer<A>>; O],
    /// Entries one peer may hold.
    max_per_peer: usize,
}

impl<A: Copy + Eq, const O: usize> ObserverTable<A, O> {
    pub const fn new(max_per_peer: u16) -> Self {
        ObserverTable {
            entries: [None; O],
            max_per_peer: max_per_peer as usize,
        }
    }

    /// Registers, replacing the entry with the same client endpoint and token: RFC 7641
    /// §4.1 keys observers by endpoint and token, so one client may observe one resource
    /// several times with distinct tokens (two tasks sharing one client endpoint) and each
    /// gets its own notifications. Returns false when the table is full or the peer holds
    /// its quota of entries already.
    pub fn register(&mut self, now: Instant, peer: A, token: Token, key: u32) -> bool {
        let same = |o: &Observer<A>| o.peer == peer && o.token == token;
        let pos = match self
            .entries
            .iter()
            .position(|e| e.as_ref().is_some_and(same))
        {
            Some(i) => Some(i),
            None => {
                let held = self
                    .entries
                    .iter()
                    .flatten()
                    .filter(|o| o.peer == peer)
                    .count();
                if held >= self.max_per_peer {
                    return false;
                }
                self.entries.iter().position(Option::is_none)
            }
        };
        let Some(slot) = pos.and_then(|i| self.entries.get_mut(i)) else {
            return false;
        };
        *slot = Some(Observer {
            peer,
            token,
            key,
            last_con: now,
            since_con: 0,
            last_mid: 0,
            in_flight: None,
        });
        true
    }

    /// Removes the observer with this peer and token (GET with Observe=1, RST, failure).
    pub fn remove(&mut self, peer: A, token: &Token) -> bool {
        let mut removed = false;
        for e in self.entries.iter_mut() {
            if matches!(e, Some(o) if o.peer == peer && o.token == *token) {
                *e = None;
                removed = true;
            }
        }
        removed
    }

    /// Removes every observer at `peer` (the network says it cannot be reached).
    pub fn remove_peer(&mut self, peer: A) -> usize {
        let mut removed = 0;
        for e in self.entries.iter_mut() {
            if matches!(e, Some(o) if o.peer == peer) {
                *e = None;
                removed += 1;
            }
        }
        removed
    }

    /// Removes the observer whose latest notification had this Message ID (a RST to it).
    pub fn remove_by_mid(&mut self, peer: A, mid: u16) -> bool {
        let mut removed = false;
        for e in self.entries.iter_mut() {
            if matches!(e, Some(o) if o.peer == peer && o.last_mid == mid) {
                *e = None;
                removed = true;
            }
        }
        removed
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Observer<A>> {
        self.entries.get_mut(i)?.as_mut()
    }

    pub fn remove_index(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            *e = None;
        }
    }

    /// Number of observers of `key`.
    pub fn count(&self, key: u32) -> usize {
        self.entries
            .iter()
            .flatten()
            .filter(|o| o.key == key)
            .count()
    }

    pub const CAPACITY: usize = O;
}

/// Client-side state of an observation (RFC 7641 §3), kept small: it lives in every
/// client exchange slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    /// Observe value of the newest notification delivered (valid if `delivered`).
    pub last_value: u32,
    /// Arrival time of that notification, in ms.
    pub last_at: Instant,
    /// A notification was delivered.
    pub delivered: bool,
    /// Established: the exchange deadline is the re-registration time (Max-Age lapsed,
    /// §3.3.1) rather than a request timeout.
    pub established: bool,
}

impl Observation {
    pub const NEW: Observation = Observation {
        last_value: 0,
        last_at: Instant::ZERO,
        delivered: false,
        established: false,
    };

    /// Whether a notification with value `v` at `now` is newer than the last delivered.
    pub fn is_fresh(&self, v: u32, now: Instant) -> bool {
        !self.delivered || is_fresh(self.last_value, self.last_at, v, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_rule_of_rfc_7641_3_4() {
        let t = Instant::from_millis(1_000_000);
        assert!(is_fresh(1, t, 2, t));
        assert!(!is_fresh(2, t, 1, t));
        assert!(!is_fresh(5, t, 5, t));
        // Wrap-around: 2^24 - 1 then 0 is newer.
        assert!(is_fresh(OBSERVE_MODULUS - 1, t, 0, t));
        assert!(!is_fresh(0, t, OBSERVE_MODULUS - 1, t));
        // More than 2^23 ahead counts as older (it is a reordered old value).
        assert!(!is_fresh(0, t, (1 << 23) + 1, t));
        // After 128 s anything is newer.
        assert!(is_fresh(10, t, 3, t.add_millis(128_001)));
        assert!(!is_fresh(10, t, 3, t.add_millis(128_000)));
    }

    #[test]
    fn table_bounded_replaces_and_removes() {
        let mut t: ObserverTable<u32, 2> = ObserverTable::new(8);
        let tok = |b: u8| Token::new(&[b]).unwrap();
        let now = Instant::ZERO;
        assert!(t.register(now, 1, tok(1), 10));
        assert!(
            t.register(now, 1, tok(1), 10),
            "same peer and token: replaced (RFC 7641 §4.1)"
        );
        assert_eq!(t.count(10), 1);
        assert!(
            t.register(now, 1, tok(2), 10),
            "same peer and resource, another token: a second observer"
        );
        assert_eq!(t.count(10), 2);
        assert!(!t.register(now, 3, tok(1), 10), "full");
        assert!(t.remove(1, &tok(1)));
        assert_eq!(t.count(10), 1);
        assert!(t.register(now, 2, tok(1), 10), "the freed entry is reused");
    }
}
