//! The message layer's bookkeeping (RFC 7252 §4): retransmission timers with randomized
//! exponential back-off, duplicate detection, per-peer Message IDs, NSTART and
//! PROBING_RATE state. Duplicate detection's table is in [`crate::dedup`].

use crate::config::Config;
use crate::rng::Rng;
use crate::time::{duration_ms, Instant};

/// Retransmission state of one CON message (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retransmit {
    /// When the current timeout expires.
    pub next: Instant,
    /// The current timeout, doubled after each retransmission.
    pub timeout_ms: u32,
    /// Retransmissions sent so far.
    pub count: u8,
    /// Retransmissions allowed (MAX_RETRANSMIT, or less for notifications).
    pub max: u8,
}

/// What to do when a retransmission timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetransmitStep {
    /// Send the message again; the timer was re-armed.
    Resend,
    /// MAX_RETRANSMIT reached and the last timeout expired: give up.
    GiveUp,
}

impl Retransmit {
    /// Arms the timer for the first transmission at `now`: the initial timeout is random in
    /// `[ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]` (§4.2).
    pub fn start(now: Instant, config: &Config, rng: &mut Rng) -> Retransmit {
        let (lo, hi) = config.initial_timeout_range_ms();
        let timeout_ms = lo + rng.below_or_eq(hi.saturating_sub(lo));
        let timeout_ms = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        Retransmit {
            next: now.add_millis(u64::from(timeout_ms)),
            timeout_ms,
            count: 0,
            max: config.max_retransmit,
        }
    }

    /// With at most `max` retransmissions (CON notifications give up sooner, so that a
    /// vanished observer is dropped sooner: RFC 7641 §4.5).
    pub fn with_max(self, max: u8) -> Retransmit {
        Retransmit { max, ..self }
    }

    /// The timer fired at `now`: retransmit with a doubled timeout, or give up once
    /// MAX_RETRANSMIT retransmissions have been sent and the last timeout expired.
    pub fn fire(&mut self, now: Instant) -> RetransmitStep {
        if self.count >= self.max {
            return RetransmitStep::GiveUp;
        }
        self.count += 1;
        self.timeout_ms = self.timeout_ms.saturating_mul(2);
        self.next = now.add_millis(u64::from(self.timeout_ms));
        RetransmitStep::Resend
    }
}

/// What a duplicate of a remembered message gets (§4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DupAction {
    /// Send again the response held in a slot (if it is still the same generation).
    Resend { slot: u16, generation: u16 },
    /// Send an empty ACK again (CON responses we acknowledged, deferred requests).
    EmptyAck,
    /// Answer again with a response the endpoint generates itself (4.02, 5.03, ...).
    Control(crate::code::Code),
    /// Ignore (NON duplicates, §4.5).
    Ignore,
}

/// How long a duplicate-detection entry must be kept (RFC 7252 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retention {
    /// May be dropped before it expires when the table needs room: a duplicate of an
    /// idempotent request, or of anything that is not a request, may be processed again.
    Evictable,
    /// Must be kept until it expires: the request was not idempotent (POST, PATCH, or an
    /// unknown method), so a duplicate must never reach the handler again (at most once).
    AtMostOnce,
}

/// Milliseconds as whole seconds, rounded up (table expiries are kept in seconds).
pub(crate) fn secs_ceil(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

/// Per-peer state: the next Message ID, activity for PROBING_RATE.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer<A> {
    pub addr: A,
    pub next_mid: u16,
    /// Seconds of the caller's clock, for least-recently-used eviction.
    pub last_used_s: u32,
    /// The peer has not answered a whole exchange: limit to PROBING_RATE (§4.7).
    pub unresponsive: bool,
    /// Earliest time the next request may go to an unresponsive peer.
    pub probe_not_before: Instant,
    /// The largest block size the path to this peer carries, once a path-MTU error said
    /// so (RFC 7959 §2.2, §2.4, §2.5; RFC 8201 / RFC 1191); `None` until then. It fits in
    /// the entry's padding (`Option<Szx>` is one byte).
    pub path_szx: Option<Szx>,
}

/// A block size exponent (RFC 7959 §2.2: SZX 0 to 6, blocks of 16 to 1024 bytes; 7 is
/// reserved), as a type: every value is valid, and `Option<Szx>` takes one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Szx {
    B16 = 0,
    B32 = 1,
    B64 = 2,
    B128 = 3,
    B256 = 4,
    B512 = 5,
    B1024 = 6,
}

/// Bytes of the largest IP and UDP headers (IPv6's 40 and UDP's 8; IPv4's 20 is less):
/// the core does not know the family, so it assumes the larger.
pub(crate) const IP_UDP_HEADERS: usize = 48;

impl Szx {
    /// Largest first, for the search in [`Szx::for_path_mtu`].
    const DESCENDING: [Szx; 7] = [
        Szx::B1024,
        Szx::B512,
        Szx::B256,
        Szx::B128,
        Szx::B64,
        Szx::B32,
        Szx::B16,
    ];

    /// The exponent's value for a Block option.
    pub const fn get(self) -> u8 {
        self as u8
    }

    /// The largest block size whose message fits in one `mtu`-byte IP packet, keeping
    /// `room` bytes for the CoAP header, token and options besides the IP and UDP headers
    /// (RFC 7252 §4.6: a message should fit in one datagram, not be fragmented). 16-byte
    /// blocks, the smallest there are, when even those do not fit.
    pub fn for_path_mtu(mtu: usize, room: usize) -> Szx {
        let budget = mtu.saturating_sub(IP_UDP_HEADERS + room);
        Szx::DESCENDING
            .into_iter()
            .find(|s| (16usize << s.get()) <= budget)
            .unwrap_or(Szx::B16)
    }
}

/// Peers this endpoint talks to, least recently used evicted first. A new peer starts its
/// Message IDs at a random value (§4.4).
pub(crate) struct PeerTable<A, const N: usize> {
    peers: [Option<Peer<A>>; N],
    /// Beside each entry: the message slots that peer's long-held server exchanges occupy
    /// now (deferred requests, CON responses and notifications awaiting their ACK), for its
    /// share of the pool (`Config::peer_slot_share_percent`). Kept beside the entries
    /// rather than in them so that `Peer` does not grow past its alignment (two bytes a
    /// peer instead of eight). An entry holding slots is never evicted, so the count
    /// cannot be lost while a slot it names is in use.
    held: [u8; N],
}

impl<A: Copy + Eq, const N: usize> PeerTable<A, N> {
    pub const fn new() -> Self {
        PeerTable {
            peers: [None; N],
            held: [0; N],
        }
    }

    fn index(&self, addr: A) -> Option<usize> {
        self.peers
            .iter()
            .position(|p| matches!(p, Some(p) if p.addr == addr))
    }

    /// Slots `addr`'s long-held exchanges occupy; `None` for a peer without an entry.
    pub fn held(&self, addr: A) -> Option<u8> {
        self.index(addr).and_then(|i| self.held.get(i).copied())
    }

    /// Counts one more long-held slot for `addr`, creating its entry if needed; false when
    /// no entry can be had (every one holds slots).
    pub fn hold(&mut self, now: Instant, addr: A, rng: &mut Rng) -> bool {
        if self.entry(now, addr, rng).is_none() {
            return false;
        }
        match self.index(addr).and_then(|i| self.held.get_mut(i)) {
            Some(h) => {
                *h = h.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// Counts one less for `addr`.
    pub fn release(&mut self, addr: A) {
        if let Some(h) = self.index(addr).and_then(|i| self.held.get_mut(i)) {
            *h = h.saturating_sub(1);
        }
    }

    /// A copy of the entry for `addr`, without touching its LRU state.
    pub fn find(&self, addr: A) -> Option<Peer<A>> {
        self.peers
            .iter()
            .flatten()
            .find(|p| p.addr == addr)
            .copied()
    }

    pub fn get(&mut self, addr: A) -> Option<&mut Peer<A>> {
        self.peers.iter_mut().flatten().find(|p| p.addr == addr)
    }

    /// The entry for `addr`, created (evicting the least recently used) if needed.
    pub fn entry(&mut self, now: Instant, addr: A, rng: &mut Rng) -> Option<&mut Peer<A>> {
        let flat = &mut self.peers;
        let pos = match flat
            .iter()
            .position(|p| matches!(p, Some(p) if p.addr == addr))
        {
            Some(i) => i,
            None => {
                // Entries holding slots are kept: at most N peers can hold any (each
                // held slot names one), so when every entry does, the pool is full too.
                let i = match flat.iter().position(Option::is_none) {
                    Some(i) => i,
                    None => flat
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| self.held.get(*i).is_none_or(|h| *h == 0))
                        .min_by_key(|(_, p)| p.map(|p| p.last_used_s))
                        .map(|(i, _)| i)?,
                };
                *flat.get_mut(i)? = Some(Peer {
                    addr,
                    next_mid: rng.next_u64() as u16,
                    last_used_s: secs_ceil(now.as_millis()),
                    unresponsive: false,
                    probe_not_before: Instant::ZERO,
                    path_szx: None,
                });
                if let Some(h) = self.held.get_mut(i) {
                    *h = 0;
                }
                i
            }
        };
        let p = flat.get_mut(pos)?.as_mut()?;
        p.last_used_s = secs_ceil(now.as_millis());
        Some(p)
    }

    /// Every entry, for changes that concern several peers at once (a path-MTU error names
    /// a path, which several peers may share).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer<A>> {
        self.peers.iter_mut().flatten()
    }

    /// Allocates the next Message ID for `addr`.
    pub fn next_mid(&mut self, now: Instant, addr: A, rng: &mut Rng) -> u16 {
        match self.entry(now, addr, rng) {
            Some(p) => {
                let mid = p.next_mid;
                p.next_mid = p.next_mid.wrapping_add(1);
                mid
            }
            None => rng.next_u64() as u16,
        }
    }
}

/// The time a PROBING_RATE-limited peer must wait after `bytes` were sent to it.
pub(crate) fn probing_delay_ms(config: &Config, bytes: usize) -> u64 {
    let rate = u64::from(config.probing_rate.max(1));
    (bytes as u64).saturating_mul(1000) / rate
}

/// Milliseconds of a lifetime, for dedup entries.
pub(crate) fn lifetime_ms(d: core::time::Duration) -> u64 {
    duration_ms(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_gives_up() {
        let c = Config::default();
        let mut rng = Rng::new(1);
        for seed in 0..200 {
            rng = Rng::new(seed);
            let r = Retransmit::start(Instant::ZERO, &c, &mut rng);
            assert!((2000..=3000).contains(&r.timeout_ms));
        }
        let mut r = Retransmit::start(Instant::ZERO, &c, &mut rng);
        let t0 = r.timeout_ms;
        let mut now = r.next;
        for k in 1..=4u32 {
            assert_eq!(r.fire(now), RetransmitStep::Resend);
            assert_eq!(r.timeout_ms, t0 << k);
            now = r.next;
        }
        assert_eq!(r.fire(now), RetransmitStep::GiveUp);
        // Give-up time = t0 * 31, at most MAX_TRANSMIT_WAIT.
        assert_eq!(now.as_millis(), u64::from(t0) * 31);
        assert!(now.as_millis() <= 93_000);
    }

    #[test]
    fn block_size_for_path_mtu() {
        // 1500 - 48 - 128 = 1324: 1024-byte blocks.
        assert_eq!(Szx::for_path_mtu(1500, 128), Szx::B1024);
        // 600 - 176 = 424: 256.
        assert_eq!(Szx::for_path_mtu(600, 128), Szx::B256);
        assert_eq!(Szx::for_path_mtu(1200, 128), Szx::B1024);
        assert_eq!(Szx::for_path_mtu(1199, 128), Szx::B512);
        assert_eq!(Szx::for_path_mtu(1199, 0), Szx::B1024);
        assert_eq!(Szx::for_path_mtu(1071, 0), Szx::B512);
        assert_eq!(Szx::for_path_mtu(0, 128), Szx::B16);
        assert_eq!(core::mem::size_of::<Option<Szx>>(), 1);
    }

    #[test]
    fn peers_lru_and_random_mid_start() {
        let mut rng = Rng::new(7);
        let mut t: PeerTable<u32, 2> = PeerTable::new();
        let a = t.next_mid(Instant::from_millis(1000), 1, &mut rng);
        assert_eq!(
            t.next_mid(Instant::from_millis(2000), 1, &mut rng),
            a.wrapping_add(1)
        );
        t.next_mid(Instant::from_millis(3000), 2, &mut rng);
        t.next_mid(Instant::from_millis(4000), 3, &mut rng); // evicts peer 1 (LRU)
        assert!(t.get(1).is_none());
        assert!(t.get(2).is_some() && t.get(3).is_some());
        // An entry holding slots is not evicted, however old; with every entry holding
        // slots a new peer gets none.
        assert!(t.hold(Instant::from_millis(4500), 2, &mut rng));
        assert_eq!(t.held(2), Some(1));
        t.next_mid(Instant::from_millis(5000), 4, &mut rng); // evicts 3, not 2
        assert!(t.get(2).is_some() && t.get(3).is_none());
        assert!(t.hold(Instant::from_millis(5500), 4, &mut rng));
        assert!(t.entry(Instant::from_millis(6000), 5, &mut rng).is_none());
        assert!(!t.hold(Instant::from_millis(6000), 5, &mut rng));
        assert!(t.get(2).is_some() && t.get(4).is_some());
        // Released, the entry is evictable again, and a new peer starts at zero.
        t.release(2);
        assert_eq!(t.held(2), Some(0));
        assert!(t.hold(Instant::from_millis(7000), 5, &mut rng));
        assert!(t.get(2).is_none());
        assert_eq!(t.held(5), Some(1));
    }
}
