//! Response caching (RFC 7252 §5.6; RFC 8132 §2.2.1 for FETCH): the cache key, freshness
//! from Max-Age, validation with ETag, invalidation by unsafe methods, and LRU eviction.
//!
//! The rules live here; the bytes live in caller-supplied [`Storage`]: [`FixedStorage`]
//! (fixed arrays, for embedded and tests) or a bounded map on std. Clients, proxies and
//! servers share one definition of what a cache may answer.

use crate::code::{Code, CodeClass};
use crate::message::{BuildError, Message, MessageBuilder, MessageType};
use crate::option::{CoapOption, OptionNumber};
use crate::time::Instant;

/// Max-Age when a response carries none (RFC 7252 §5.10.5): 60 seconds.
pub const DEFAULT_MAX_AGE: u32 = 60;

/// Whether an option is part of the cache key: every option except NoCacheKey ones
/// (§5.4.6), those RFC 7959 / RFC 9175 exclude by definition (Block1/Block2 identify a
/// part of a representation, not the resource; Size1/Size2, Echo and Request-Tag are
/// NoCacheKey), ETag, which the cache itself answers (§5.6.2: a request's ETags ask for
/// validation of the same resource), and Hop-Limit (RFC 8768), a per-hop counter that says
/// nothing about the resource: requests arriving over paths of different lengths share
/// their answers.
pub fn in_key(number: OptionNumber) -> bool {
    !number.is_no_cache_key()
        && !matches!(
            number,
            OptionNumber::BLOCK1
                | OptionNumber::BLOCK2
                | OptionNumber::ETAG
                | OptionNumber::HOP_LIMIT
        )
}

fn key_options<'a>(m: &Message<'a>) -> impl Iterator<Item = CoapOption<'a>> {
    m.options().filter(|o| in_key(o.number))
}

/// Whether two requests have the same cache key: same method, same key options in the
/// same order, and for FETCH the same payload (RFC 8132 §2.2.1).
pub fn same_key(a: &Message<'_>, b: &Message<'_>) -> bool {
    a.code() == b.code()
        && key_options(a).eq(key_options(b))
        && (a.code() != Code::FETCH || a.payload() == b.payload())
}

/// A 64-bit FNV-1a hash of the cache key, for bucketing; equal keys hash equally
/// (confirm a hit with [`same_key`]).
pub fn key_hash(m: &Message<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&[m.code().0]);
    for o in key_options(m) {
        eat(&o.number.0.to_be_bytes());
        eat(&(o.value.len() as u32).to_be_bytes());
        eat(o.value);
    }
    if m.code() == Code::FETCH {
        eat(m.payload());
    }
    h
}

/// Whether two requests address the same resource (the Uri-* options), whatever the method:
/// what an unsafe request invalidates (RFC 7252 §5.9.1.1, §5.9.1.2, §5.9.1.4).
fn same_resource(a: &Message<'_>, b: &Message<'_>) -> bool {
    a.options()
        .filter(|o| is_uri_option(o.number))
        .eq(b.options().filter(|o| is_uri_option(o.number)))
}

fn is_uri_option(n: OptionNumber) -> bool {
    matches!(
        n,
        OptionNumber::URI_HOST
            | OptionNumber::URI_PORT
            | OptionNumber::URI_PATH
            | OptionNumber::URI_QUERY
    )
}

/// What the cache knows of a stored response besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// [`key_hash`] of the request.
    pub hash: u64,
    /// When the response was stored or last validated.
    pub stored: Instant,
    /// Its Max-Age at that time, in seconds.
    pub max_age: u32,
    /// Last time it was used (least recently used goes first).
    pub used: Instant,
}

/// Where a cache keeps its entries: a fixed number of slots, each holding the request that
/// keys it and the response. Implementations decide how much each slot can hold.
pub trait Storage {
    /// Number of slots.
    fn slots(&self) -> usize;
    /// The metadata of slot `i`, if it holds an entry.
    fn meta(&self, i: usize) -> Option<Meta>;
    /// Updates the metadata of an occupied slot.
    fn set_meta(&mut self, i: usize, meta: Meta);
    /// The request and response stored in slot `i`.
    fn entry(&self, i: usize) -> Option<(&[u8], &[u8])>;
    /// Stores an entry in slot `i`, replacing what was there; `false` if it does not fit
    /// (the slot is then empty).
    fn put(&mut self, i: usize, meta: Meta, request: &[u8], response: &[u8]) -> bool;
    /// Empties slot `i`.
    fn clear(&mut self, i: usize);
}

/// [`Storage`] in fixed arrays: `N` slots of `M` bytes each (request and response
/// together). No allocation; entries that do not fit are not cached.
pub struct FixedStorage<const N: usize, const M: usize> {
    slots: [(Option<Meta>, u16, u16, [u8; M]); N],
}

impl<const N: usize, const M: usize> FixedStorage<N, M> {
    /// Empty storage.
    pub fn new() -> Self {
        FixedStorage {
            slots: [(None, 0, 0, [0; M]); N],
        }
    }
}

impl<const N: usize, const M: usize> Default for FixedStorage<N, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const M: usize> Storage for FixedStorage<N, M> {
    fn slots(&self) -> usize {
        N
    }
    fn meta(&self, i: usize) -> Option<Meta> {
        self.slots.get(i).and_then(|s| s.0)
    }
    fn set_meta(&mut self, i: usize, meta: Meta) {
        if let Some(s) = self.slots.get_mut(i).filter(|s| s.0.is_some()) {
            s.0 = Some(meta);
        }
    }
    fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let (meta, req_len, resp_len, buf) = self.slots.get(i)?;
        meta.as_ref()?;
        let (req, rest) = buf.split_at_checked(usize::from(*req_len))?;
        Some((req, rest.get(..usize::from(*resp_len))?))
    }
    fn put(&mut self, i: usize, meta: Meta, request: &[u8], response: &[u8]) -> bool {
        let Some(slot) = self.slots.get_mut(i) else {
            return false;
        };
        slot.0 = None;
        let total = request.len() + response.len();
        let (Some(dst), Ok(rl), Ok(sl)) = (
            slot.3.get_mut(..total),
            u16::try_from(request.len()),
            u16::try_from(response.len()),
        ) else {
            return false;
        };
        let (a, b) = dst.split_at_mut(request.len());
        a.copy_from_slice(request);
        b.copy_from_slice(response);
        *slot = (Some(meta), rl, sl, slot.3);
        true
    }
    fn clear(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            s.0 = None;
        }
    }
}

/// The answer of [`Cache::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'c> {
    /// A fresh response: serve it with Max-Age set to `max_age`, the freshness left
    /// (§5.6.1), e.g. with [`write_cached`].
    Fresh {
        /// The stored response.
        response: Message<'c>,
        /// Seconds of freshness left.
        max_age: u32,
    },
    /// The request carried an ETag equal to the fresh stored response's: answer 2.03 Valid
    /// with that ETag and Max-Age `max_age` (§5.6.2, §5.10.6.2).
    Valid {
        /// The matching ETag.
        etag: &'c [u8],
        /// Seconds of freshness left.
        max_age: u32,
    },
    /// A stored response that is no longer fresh but has an ETag: forward the request with
    /// that ETag to validate it (§5.6.2); a 2.03 Valid answer refreshes it
    /// ([`Cache::store`]).
    Stale {
        /// The ETag to validate.
        etag: &'c [u8],
    },
    /// Nothing usable: forward the request.
    Miss,
}

/// What [`Cache::store`] did with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored (possibly evicting the least recently used entry).
    Stored,
    /// A 2.03 Valid refreshed the stored response with this ETag (§5.6.2).
    Refreshed,
    /// An unsafe request's success made stored responses of its resource stale; this many
    /// were removed.
    Invalidated(usize),
    /// Not cacheable (method, code, Max-Age 0, a partial Block2 response) or too large.
    NotStored,
}

/// A response cache over caller-supplied [`Storage`].
pub struct Cache<S> {
    storage: S,
}

impl<S: Storage> Cache<S> {
    /// A cache over `storage`.
    pub fn new(storage: S) -> Self {
        Cache { storage }
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        (0..self.storage.slots())
            .filter(|&i| self.storage.meta(i).is_some())
            .count()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, request: &Message<'_>) -> Option<usize> {
        let hash = key_hash(request);
        (0..self.storage.slots()).find(|&i| {
            self.storage.meta(i).is_some_and(|m| m.hash == hash)
                && self
                    .storage
                    .entry(i)
                    .and_then(|(req, _)| Message::parse(req).ok())
                    .is_some_and(|stored| same_key(&stored, request))
        })
    }

    /// What the cache can answer to `request` at `now`.
    pub fn lookup(&mut self, now: Instant, request: &Message<'_>) -> Lookup<'_> {
        if !matches!(request.code(), Code::GET | Code::FETCH) {
            return Lookup::Miss;
        }
        let Some(i) = self.find(request) else {
            return Lookup::Miss;
        };
        let Some(mut meta) = self.storage.meta(i) else {
            return Lookup::Miss;
        };
        meta.used = now;
        self.storage.set_meta(i, meta);
        let age = now.saturating_since(meta.stored).as_secs();
        let left = u64::from(meta.max_age).saturating_sub(age);
        let Some(response) = self
            .storage
            .entry(i)
            .and_then(|(_, resp)| Message::parse(resp).ok())
        else {
            return Lookup::Miss;
        };
        let etag = response.option(OptionNumber::ETAG).map(|o| o.value);
        if left == 0 {
            return match etag {
                Some(etag) => Lookup::Stale { etag },
                None => Lookup::Miss,
            };
        }
        let max_age = u32::try_from(left).unwrap_or(u32::MAX);
        match etag {
            Some(e) if request.options_of(OptionNumber::ETAG).any(|r| r == e) => {
                Lookup::Valid { etag: e, max_age }
            }
            _ => Lookup::Fresh { response, max_age },
        }
    }

    /// Takes the response to `request` received at `now`: stores it if cacheable, refreshes
    /// the stored one on 2.03 Valid, or invalidates the resource after an unsafe method's
    /// success (2.01 Created, 2.02 Deleted, 2.04 Changed; §5.9.1).
    pub fn store(&mut self, now: Instant, request: &Message<'_>, response: &[u8]) -> Stored {
        let Ok(resp) = Message::parse(response) else {
            return Stored::NotStored;
        };
        let code = resp.code();
        let method = request.code();
        if !matches!(method, Code::GET | Code::FETCH) {
            if matches!(code, Code::CREATED | Code::DELETED | Code::CHANGED) {
                let mut removed = 0;
                for i in 0..self.storage.slots() {
                    let hit = self
                        .storage
                        .entry(i)
                        .and_then(|(req, _)| Message::parse(req).ok())
                        .is_some_and(|stored| same_resource(&stored, request));
                    if hit {
                        self.storage.clear(i);
                        removed += 1;
                    }
                }
                return Stored::Invalidated(removed);
            }
            return Stored::NotStored;
        }
        let max_age = resp
            .uint_option(OptionNumber::MAX_AGE)
            .unwrap_or(DEFAULT_MAX_AGE);
        if code == Code::VALID {
            // §5.6.2: the stored response with this ETag is fresh again, for the new Max-Age.
            let etag = resp.option(OptionNumber::ETAG).map(|o| o.value);
            if let Some(i) = self.find(request) {
                let matches = self
                    .storage
                    .entry(i)
                    .and_then(|(_, r)| Message::parse(r).ok())
                    .is_some_and(|r| r.option(OptionNumber::ETAG).map(|o| o.value) == etag);
                if let (true, Some(mut meta)) = (matches, self.storage.meta(i)) {
                    meta.stored = now;
                    meta.used = now;
                    meta.max_age = max_age;
                    self.storage.set_meta(i, meta);
                    return Stored::Refreshed;
                }
            }
            return Stored::NotStored;
        }
        // Cacheable: 2.05 Content and errors (§5.9.2, §5.9.3; "cacheable" per §5.6), whole
        // representations only, and only when Max-Age allows.
        let cacheable = code == Code::CONTENT
            || matches!(code.kind(), CodeClass::ClientError | CodeClass::ServerError);
        let partial = crate::block::Block::of(&resp, OptionNumber::BLOCK2).is_some();
        if !cacheable || partial || max_age == 0 {
            return Stored::NotStored;
        }
        // The request as the key: its bytes with an empty token (any token matches).
        let mut key = [0u8; KEY_BUF];
        let Ok(key_len) = key_request(request, &mut key) else {
            return Stored::NotStored;
        };
        let meta = Meta {
            hash: key_hash(request),
            stored: now,
            max_age,
            used: now,
        };
        let slot = self.find(request).or_else(|| self.victim());
        let Some(i) = slot else {
            return Stored::NotStored;
        };
        match self
            .storage
            .put(i, meta, key.get(..key_len).unwrap_or_default(), response)
        {
            true => Stored::Stored,
            false => Stored::NotStored,
        }
    }

    /// An empty slot, else the least recently used one.
    fn victim(&self) -> Option<usize> {
        let n = self.storage.slots();
        (0..n)
            .find(|&i| self.storage.meta(i).is_none())
            .or_else(|| (0..n).min_by_key(|&i| self.storage.meta(i).map(|m| m.used)))
    }
}

/// Largest request kept as a cache key.
const KEY_BUF: usize = 1152;

/// The request reduced to what keys the cache: code, key options, FETCH payload.
fn key_request(request: &Message<'_>, buf: &mut [u8]) -> Result<usize, BuildError> {
    let mut b = MessageBuilder::new(buf, MessageType::Con, request.code(), 0, &[])?;
    for o in key_options(request) {
        b.option(o.number, o.value)?;
    }
    if request.code() == Code::FETCH {
        b.payload(request.payload())?;
    }
    Ok(b.finish())
}

/// Writes a cached response's code, options and payload into `b` (whose header — type,
/// Message ID, token — is the caller's), with Max-Age set to the freshness left (§5.6.1).
pub fn write_cached(
    b: &mut MessageBuilder<'_>,
    cached: &Message<'_>,
    max_age: u32,
) -> Result<(), BuildError> {
    b.set_code(cached.code());
    for o in cached
        .options()
        .filter(|o| o.number != OptionNumber::MAX_AGE)
    {
        b.option(o.number, o.value)?;
    }
    b.option_uint(OptionNumber::MAX_AGE, max_age)?;
    b.payload(cached.payload())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageBuilder, MessageType};
    extern crate std;
    use std::vec::Vec;

    fn req(code: Code, mid: u16, opts: &[(OptionNumber, &[u8])], payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::Con, code, mid, &[mid as u8]).unwrap();
        for (n, v) in opts {
            b.option(*n, v).unwrap();
        }
        b.payload(payload).unwrap();
        b.into_bytes().to_vec()
    }

    fn msg(bytes: &[u8]) -> Message<'_> {
        Message::parse(bytes).unwrap()
    }

    fn response(code: Code, opts: &[(OptionNumber, &[u8])], payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut b = MessageBuilder::new(&mut buf, MessageType::Ack, code, 9, &[9]).unwrap();
        for (n, v) in opts {
            b.option(*n, v).unwrap();
        }
        b.payload(payload).unwrap();
        b.into_bytes().to_vec()
    }

    const T0: Instant = Instant::from_millis(1_000);

    fn secs(s: u64) -> Instant {
        T0.add_millis(s * 1000)
    }

    fn get(path: &[u8], mid: u16) -> Vec<u8> {
        req(Code::GET, mid, &[(OptionNumber::URI_PATH, path)], b"")
    }

    #[test]
    fn fresh_for_max_age_then_gone_without_etag() {
        let mut c = Cache::new(FixedStorage::<4, 512>::new());
        let r = get(b"t", 1);
        let resp = response(Code::CONTENT, &[(OptionNumber::MAX_AGE, &[10])], b"22 C");
        assert_eq!(c.store(T0, &msg(&r), &resp), Stored::Stored);
        // Another request for the same resource (other token, MID) hits.
        let again = get(b"t", 2);
        match c.lookup(secs(4), &msg(&again)) {
            Lookup::Fresh { response, max_age } => {
                assert_eq!(response.payload(), b"22 C");
                assert_eq!(max_age, 6, "Max-Age reduced by the age (§5.6.1)");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.lookup(secs(10), &msg(&again)), Lookup::Miss);
        // Default Max-Age is 60 s.
        let resp = response(Code::CONTENT, &[], b"x");
        c.store(T0, &msg(&r), &resp);
        assert!(matches!(
            c.lookup(secs(59), &msg(&again)),
            Lookup::Fresh { max_age: 1, .. }
        ));
        assert_eq!(c.lookup(secs(60), &msg(&again)), Lookup::Miss);
    }

    #[test]
    fn etag_validation_refreshes_and_answers_valid() {
        let mut c = Cache::new(FixedStorage::<4, 512>::new());
        let r = get(b"v", 1);
        let resp = response(
            Code::CONTENT,
            &[(OptionNumber::ETAG, b"e1"), (OptionNumber::MAX_AGE, &[5])],
            b"body",
        );
        c.store(T0, &msg(&r), &resp);
        // A client that has e1 gets 2.03 Valid from the cache (§5.6.2).
        let with_etag = req(
            Code::GET,
            3,
            &[(OptionNumber::ETAG, b"e1"), (OptionNumber::URI_PATH, b"v")],
            b"",
        );
        assert_eq!(
            c.lookup(secs(1), &msg(&with_etag)),
            Lookup::Valid {
                etag: b"e1",
                max_age: 4
            }
        );
        // Stale: validate upstream with the stored ETag; 2.03 refreshes it.
        assert_eq!(c.lookup(secs(6), &msg(&r)), Lookup::Stale { etag: b"e1" });
        let valid = response(
            Code::VALID,
            &[(OptionNumber::ETAG, b"e1"), (OptionNumber::MAX_AGE, &[30])],
            b"",
        );
        assert_eq!(c.store(secs(6), &msg(&r), &valid), Stored::Refreshed);
        match c.lookup(secs(7), &msg(&r)) {
            Lookup::Fresh { response, max_age } => {
                assert_eq!((response.payload(), max_age), (&b"body"[..], 29));
            }
            other => panic!("{other:?}"),
        }
        // A 2.03 for another ETag refreshes nothing.
        let other = response(Code::VALID, &[(OptionNumber::ETAG, b"zz")], b"");
        assert_eq!(c.store(secs(8), &msg(&r), &other), Stored::NotStored);
    }

    #[test]
    fn unsafe_methods_invalidate_and_uncacheable_responses_are_not_kept() {
        let mut c = Cache::new(FixedStorage::<4, 512>::new());
        let r = get(b"a", 1);
        c.store(T0, &msg(&r), &response(Code::CONTENT, &[], b"old"));
        let put = req(Code::PUT, 2, &[(OptionNumber::URI_PATH, b"a")], b"new");
        // A failed PUT changes nothing; a successful one invalidates (§5.9.1.4).
        assert_eq!(
            c.store(secs(1), &msg(&put), &response(Code::BAD_REQUEST, &[], b"")),
            Stored::NotStored
        );
        assert!(matches!(c.lookup(secs(1), &msg(&r)), Lookup::Fresh { .. }));
        assert_eq!(
            c.store(secs(1), &msg(&put), &response(Code::CHANGED, &[], b"")),
            Stored::Invalidated(1)
        );
        assert_eq!(c.lookup(secs(1), &msg(&r)), Lookup::Miss);
        // Not cacheable: 2.04 to a GET, Max-Age 0, a partial Block2 response, POST.
        assert_eq!(
            c.store(T0, &msg(&r), &response(Code::CHANGED, &[], b"")),
            Stored::NotStored
        );
        let zero = response(Code::CONTENT, &[(OptionNumber::MAX_AGE, &[])], b"x");
        assert_eq!(c.store(T0, &msg(&r), &zero), Stored::NotStored);
        let block = response(Code::CONTENT, &[(OptionNumber::BLOCK2, &[0x08])], b"x");
        assert_eq!(c.store(T0, &msg(&r), &block), Stored::NotStored);
        // Errors are cacheable (§5.9.2).
        let nf = response(Code::NOT_FOUND, &[], b"");
        assert_eq!(c.store(T0, &msg(&r), &nf), Stored::Stored);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn least_recently_used_goes_first_and_oversized_entries_are_refused() {
        let mut c = Cache::new(FixedStorage::<2, 64>::new());
        let (a, b, d) = (get(b"a", 1), get(b"b", 2), get(b"d", 3));
        c.store(secs(0), &msg(&a), &response(Code::CONTENT, &[], b"A"));
        c.store(secs(1), &msg(&b), &response(Code::CONTENT, &[], b"B"));
        // Use a, so b is the least recently used.
        assert!(matches!(c.lookup(secs(2), &msg(&a)), Lookup::Fresh { .. }));
        c.store(secs(3), &msg(&d), &response(Code::CONTENT, &[], b"D"));
        assert!(matches!(c.lookup(secs(4), &msg(&a)), Lookup::Fresh { .. }));
        assert_eq!(c.lookup(secs(4), &msg(&b)), Lookup::Miss);
        assert!(matches!(c.lookup(secs(4), &msg(&d)), Lookup::Fresh { .. }));
        assert_eq!(c.len(), 2);
        let big = response(Code::CONTENT, &[], &[7; 100]);
        assert_eq!(c.store(secs(5), &msg(&a), &big), Stored::NotStored);
    }

    #[test]
    fn serving_adjusts_max_age() {
        let cached = response(
            Code::CONTENT,
            &[
                (OptionNumber::CONTENT_FORMAT, &[]),
                (OptionNumber::MAX_AGE, &[60]),
            ],
            b"hi",
        );
        let mut buf = [0u8; 64];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::Non, Code::EMPTY, 5, &[1, 2]).unwrap();
        write_cached(&mut b, &msg(&cached), 17).unwrap();
        let n = b.finish();
        let out = Message::parse(&buf[..n]).unwrap();
        assert_eq!(out.code(), Code::CONTENT);
        assert_eq!(out.uint_option(OptionNumber::MAX_AGE), Some(17));
        assert_eq!(out.options_of(OptionNumber::MAX_AGE).count(), 1);
        assert_eq!((out.token(), out.payload()), (&[1u8, 2][..], &b"hi"[..]));
    }

    #[test]
    fn fetch_payload_is_part_of_the_key_and_nocachekey_options_are_not() {
        let path: &[(OptionNumber, &[u8])] = &[(OptionNumber::URI_PATH, b"q")];
        let a = req(Code::FETCH, 1, path, b"{\"x\":1}");
        let b = req(Code::FETCH, 2, path, b"{\"x\":2}");
        let c = req(
            Code::FETCH,
            3,
            &[(OptionNumber::URI_PATH, b"q"), (OptionNumber::SIZE1, &[9])],
            b"{\"x\":1}",
        );
        let (a, b, c) = (
            Message::parse(&a).unwrap(),
            Message::parse(&b).unwrap(),
            Message::parse(&c).unwrap(),
        );
        assert!(!same_key(&a, &b), "different FETCH bodies");
        assert!(
            same_key(&a, &c),
            "Size1 is NoCacheKey; token and MID are not in the key"
        );
        assert_eq!(key_hash(&a), key_hash(&c));
        assert_ne!(key_hash(&a), key_hash(&b));
        // GET ignores the payload; Block2 is not part of the key.
        let g1 = req(
            Code::GET,
            4,
            &[
                (OptionNumber::URI_PATH, b"q"),
                (OptionNumber::BLOCK2, &[0x16]),
            ],
            b"",
        );
        let g2 = req(Code::GET, 5, path, b"");
        assert!(same_key(
            &Message::parse(&g1).unwrap(),
            &Message::parse(&g2).unwrap()
        ));
        let p = req(Code::POST, 6, path, b"");
        assert!(!same_key(
            &Message::parse(&p).unwrap(),
            &Message::parse(&g2).unwrap()
        ));
    }
}
