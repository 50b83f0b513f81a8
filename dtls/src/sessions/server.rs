//! The server side of the session table: handshakes from clients (behind a stateless
//! cookie exchange, RFC 6347 §4.2.1), refused with a fatal alert when the established
//! table is full and the policy says so, and sessions by peer.

use crate::cookie::{Candidate, CookieKeys, ReplayGuard};
use crate::error::{CloseReason, SetupError};
use crate::psk::{IdentitySlot, PskStore, ServerResolver};
use crate::record;
use dimpl::{Dtls, Output};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::*;

impl Sessions<Server> {
    /// A server table; `store` resolves PSK identities to keys.
    pub fn server(config: Config, store: impl PskStore) -> Result<Self, SetupError> {
        Self::server_at(Instant::now(), config, store)
    }

    /// Like [`Sessions::server`] with an explicit start time for the cookie key schedule
    /// (for simulated clocks).
    pub fn server_at(
        now: Instant,
        config: Config,
        store: impl PskStore,
    ) -> Result<Self, SetupError> {
        config.validate()?;
        let keys = CookieKeys::new(now, config.cookie_key_lifetime)
            .map_err(|e| SetupError::Random(e.to_string()))?;
        // Two generations of handshakes at the full session rate fit comfortably.
        let replay = ReplayGuard::new(config.max_sessions.saturating_mul(4).max(64));
        let role = Server {
            store: Arc::new(store),
            keys,
            replay,
        };
        Ok(Self::with_role(config, role))
    }

    /// Builds a server engine whose cookie secret and randomness derive from `seed`.
    fn server_engine(&self, now: Instant, seed: u64) -> Result<(Dtls, IdentitySlot), String> {
        let slot = IdentitySlot::default();
        let resolver = ServerResolver {
            store: self.role.store.clone(),
            seen: slot.clone(),
        };
        let cfg = self
            .config
            .dimpl_builder()
            .with_psk_server(self.config.psk_identity_hint.clone(), Arc::new(resolver))
            .use_server_cookie(true)
            // See `cookie`: the seed is a keyed hash, unpredictable without the server key,
            // and the replay guard keeps a seed from ever serving two handshakes.
            .dangerously_set_rng_seed(seed)
            .build()
            .map_err(|e| e.to_string())?;
        let mut dtls = Dtls::new_12_psk(Arc::new(cfg), now);
        // dimpl needs a first handle_timeout to pick its ServerHello.random.
        dtls.handle_timeout(now).map_err(|e| e.to_string())?;
        Ok((dtls, slot))
    }

    /// Feeds `datagrams` to a throw-away engine and returns its records.
    fn probe(
        &mut self,
        now: Instant,
        seed: u64,
        datagrams: &[&[u8]],
    ) -> Option<(Dtls, IdentitySlot, Vec<Vec<u8>>)> {
        let (mut dtls, slot) = self.server_engine(now, seed).ok()?;
        let mut packets = Vec::new();
        for d in datagrams {
            packets.clear();
            let stats = &mut self.out.stats;
            guarded(stats, || dtls.handle_packet(d)).ok()?;
            for _ in 0..64 {
                match dtls.poll_output(&mut self.out.scratch) {
                    Output::Packet(p) => packets.push(p.to_vec()),
                    Output::Timeout(_) => break,
                    Output::BufferTooSmall { .. } => return None,
                    _ => {}
                }
            }
        }
        Some((dtls, slot, packets))
    }

    /// Answers a ClientHello with a HelloVerifyRequest without keeping anything.
    fn hello_verify(
        &mut self,
        now: Instant,
        from: SocketAddr,
        first_hello: &[u8],
        record_seq: u64,
        c: Candidate,
    ) {
        if let Some((_, _, packets)) = self.probe(now, c.seed, &[first_hello]) {
            for mut p in packets {
                record::set_record_seq(&mut p, record_seq);
                self.out.transmit(from, &p);
                self.out.stats.hello_verify_sent += 1;
            }
        }
    }

    /// A ClientHello from an address with no session, or a new epoch-0 ClientHello on an
    /// established one (RFC 6347 §4.2.8).
    pub(super) fn accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        ch: record::ClientHello<'_>,
    ) {
        let server = &mut self.role;
        server.keys.maybe_rotate(now, &mut server.replay);
        let random = *ch.random;
        let Some(first) = record::without_cookie(datagram, &ch) else {
            self.out.stats.datagrams_dropped += 1;
            return;
        };
        if ch.cookie.is_empty() {
            let c = self.role.keys.issue(from, &random);
            self.hello_verify(now, from, &first, ch.record_seq, c);
            return;
        }
        for c in self.role.keys.candidates(from, &random) {
            let Some((dtls, slot, packets)) = self.probe(now, c.seed, &[&first, datagram]) else {
                continue;
            };
            if !packets.first().is_some_and(|p| record::is_server_hello(p)) {
                continue;
            }
            // The cookie verified: the client receives at `from`.
            let server = &mut self.role;
            if server.replay.contains(c.generation, &random) {
                self.out.stats.replay_rejected += 1;
                return;
            }
            if server.replay.is_full() {
                server.keys.rotate(now, &mut server.replay);
                if server.replay.is_full() {
                    server.keys.rotate(now, &mut server.replay);
                }
            }
            server.replay.insert(c.generation, &random);
            // The client proved its address: it may learn that there is no room for it
            // (a 15-byte answer, no amplification), rather than time out.
            if self.refuses_new_session(from) {
                self.out.stats.handshakes_refused += 1;
                let alert = record::fatal_alert(ch.record_seq, record::INTERNAL_ERROR);
                self.out.transmit(from, &alert);
                return;
            }
            if let Some(old) = self.sessions.remove(&from) {
                self.out.events.push_back(Event::Closed {
                    session: old.id,
                    reason: CloseReason::Replaced,
                });
            }
            let id = self.insert(
                now,
                from,
                dtls,
                State::Handshaking {
                    queued: VecDeque::new(),
                },
                Some(slot),
            );
            for p in packets {
                self.out.transmit(from, &p);
            }
            if let Some(s) = self.sessions.get_mut(&id.addr) {
                // Pick up the engine's retransmission timer (no plaintext can appear yet).
                drain(s, now, &mut self.out, &mut |_, _| {});
            }
            return;
        }
        self.out.stats.cookie_rejected += 1;
        let c = self.role.keys.issue(from, &random);
        self.hello_verify(now, from, &first, ch.record_seq, c);
    }
}
