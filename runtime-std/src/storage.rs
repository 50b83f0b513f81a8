//! Growable storage for the core endpoint's tables (`coap_core::storage`): the core never
//! allocates, so the std crates hand it stores that start small and grow on demand (by
//! doubling) up to a limit set at run time. Memory then follows the load instead of the
//! worst case, and the limit, not a compile-time constant, bounds it.

use coap_core::dedup::{DedupEntry, DedupParts, DedupStore};
use coap_core::storage::Index;

/// The most Message IDs remembered for duplicate detection (RFC 7252 §4.5). The store
/// starts small and doubles as needed ([`GrowableDedup`], about 52 bytes
/// an entry: 54 MB at the limit). A non-idempotent request (POST, PATCH) is remembered for
/// its whole EXCHANGE_LIFETIME (247 s) so that a duplicate never runs twice; an endpoint
/// therefore takes about 4,200 of them per second sustained (any number in bursts up to
/// this limit) and answers 5.03 + Max-Age beyond, while idempotent requests are never
/// refused.
pub const DEDUP_LIMIT: usize = 1 << 20;
/// How far the store grows for entries that may be forgotten early (of idempotent
/// requests, RFC 7252 §4.5): beyond it, only at-most-once entries grow it. Keeps a flood of
/// GETs in a table the cache can hold, as the fixed 65,535-entry table did.
pub const DEDUP_SOFT_LIMIT: usize = 65_535;

/// Duplicate detection (RFC 7252 §4.5) in vectors, `u32`-indexed, up to `limit` entries.
#[derive(Debug)]
pub struct GrowableDedup<A> {
    entries: Vec<DedupEntry<A, u32>>,
    heads: Vec<u32>,
    limit: usize,
    soft_limit: usize,
}

impl<A> GrowableDedup<A> {
    /// An empty store that grows up to `limit` entries (at most `u32::MAX - 1`).
    pub fn with_limit(limit: usize) -> Self {
        GrowableDedup {
            entries: Vec::new(),
            heads: Vec::new(),
            limit: limit.min(u32::MAX as usize - 1),
            soft_limit: DEDUP_SOFT_LIMIT.min(limit),
        }
    }
}

impl<A: Copy> DedupStore<A> for GrowableDedup<A> {
    type Index = u32;

    fn empty() -> Self {
        Self::with_limit(DEDUP_LIMIT)
    }

    fn entries(&self) -> &[DedupEntry<A, u32>] {
        &self.entries
    }

    fn heads(&self) -> &[u32] {
        &self.heads
    }

    fn parts_mut(&mut self) -> DedupParts<'_, A, u32> {
        (&mut self.entries, &mut self.heads)
    }

    fn grow_to(&mut self, len: usize) -> bool {
        if len > self.limit {
            return false;
        }
        self.entries.resize(len, DedupEntry::EMPTY);
        self.heads.resize(len, u32::NONE);
        true
    }

    fn limit(&self) -> usize {
        self.limit
    }

    fn soft_limit(&self) -> usize {
        self.soft_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_core::message::{Message, MessageBuilder, MessageType};
    use coap_core::{Code, Config, Endpoint, IncomingRequest, Instant, Outcome, ResponseWriter};

    /// An endpoint with this store holds the at-most-once window up to the store's limit
    /// (growing from nothing as POSTs come), refuses beyond it with 5.03, and never runs a
    /// duplicate again.
    #[test]
    fn endpoint_window_grows_to_the_limit() {
        let store = GrowableDedup::with_limit(300);
        let mut ep: Box<Endpoint<u32, 16, 256, 0, 4, GrowableDedup<u32>>> =
            Box::new(Endpoint::with_dedup_store(Config::default(), 1, store));
        assert_eq!(ep.dedup_capacity(), 0);
        let mut runs = 0;
        let mut post = |ep: &mut Endpoint<u32, 16, 256, 0, 4, GrowableDedup<u32>>, peer, mid| {
            let mut buf = [0u8; 32];
            let b = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, mid, &[1]).unwrap();
            let n = b.finish();
            let mut handler = |_: &IncomingRequest<'_, u32>, w: &mut ResponseWriter<'_>| {
                runs += 1;
                w.set_code(Code::CHANGED);
                Outcome::Respond
            };
            ep.handle_datagram(Instant::ZERO, peer, &buf[..n], &mut handler);
            let mut out = [0u8; 256];
            let t = ep.poll_transmit(Instant::ZERO, &mut out).unwrap();
            Message::parse(&out[..t.len]).unwrap().code()
        };
        for k in 0..300u32 {
            assert_eq!(post(&mut ep, k, 7), Code::CHANGED, "POST {k}");
        }
        assert_eq!(ep.dedup_capacity(), 300);
        assert_eq!(post(&mut ep, 1000, 7), Code::SERVICE_UNAVAILABLE);
        assert_eq!(runs, 300, "each POST ran once; the refused one did not");
        // The first POST's duplicate is recognised (its cached response was evicted from
        // the 16 slots long ago, so it gets nothing rather than a second run).
        let before = ep.stats().duplicates;
        let mut buf = [0u8; 32];
        let n = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, 7, &[1])
            .unwrap()
            .finish();
        let mut count = 0;
        let mut handler = |_: &IncomingRequest<'_, u32>, w: &mut ResponseWriter<'_>| {
            count += 1;
            w.set_code(Code::CHANGED);
            Outcome::Respond
        };
        ep.handle_datagram(Instant::ZERO, 0, &buf[..n], &mut handler);
        assert_eq!(count, 0, "the duplicate did not run");
        assert_eq!(ep.stats().duplicates, before + 1);
    }
}
