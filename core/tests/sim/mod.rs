//! A deterministic network simulator for endpoints: a virtual clock, and a seeded link
//! with loss, duplication, reordering (random delay) — the main tool for protocol logic.
//! Modelled on quinn-proto's test `Pair`: jump the clock to the next deadline and drive
//! until idle, with a step bound that catches livelock.
#![allow(dead_code)]

use coap_core::endpoint::DEFAULT_MESSAGE_SIZE;
use coap_core::rng::Rng;
use coap_core::{Endpoint, Event, Handler, Instant, Message, NoServer, RequestId};

pub type Addr = u32;
pub const CLIENT: Addr = 1;
pub const SERVER: Addr = 2;

/// Link behaviour, applied independently to every datagram.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// Probability (per mille) that a datagram is lost.
    pub loss: u32,
    /// Probability (per mille) that a datagram is delivered twice.
    pub dup: u32,
    /// Delay range in ms; a spread reorders datagrams.
    pub delay_ms: (u64, u64),
}

impl Link {
    pub const PERFECT: Link = Link {
        loss: 0,
        dup: 0,
        delay_ms: (5, 5),
    };
}

#[derive(Clone, Debug)]
pub struct Datagram {
    pub at: Instant,
    pub from: Addr,
    pub to: Addr,
    pub bytes: Vec<u8>,
}

/// Owned copy of a client event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Response {
        id: RequestId,
        code: coap_core::Code,
        payload: Vec<u8>,
        bytes: Vec<u8>,
    },
    Notification {
        id: RequestId,
        observe: u32,
        payload: Vec<u8>,
    },
    Block {
        id: RequestId,
        block: coap_core::Block,
        payload: Vec<u8>,
    },
    Failed(RequestId, coap_core::FailReason),
    NoResponse(RequestId),
    Continue {
        id: RequestId,
        offset: usize,
        size: usize,
    },
    Timeout(RequestId),
    Reset(RequestId),
}

impl Outcome {
    pub fn id(&self) -> RequestId {
        match self {
            Outcome::Response { id, .. }
            | Outcome::Notification { id, .. }
            | Outcome::Block { id, .. }
            | Outcome::Failed(id, _)
            | Outcome::NoResponse(id)
            | Outcome::Continue { id, .. }
            | Outcome::Timeout(id)
            | Outcome::Reset(id) => *id,
        }
    }
}

/// Application code run against the server endpoint after every step.
pub type ServerApp<const N: usize, const O: usize = 4> =
    Box<dyn FnMut(Instant, &mut Endpoint<Addr, N, DEFAULT_MESSAGE_SIZE, 12, O>)>;

/// A client and a server endpoint joined by a simulated link.
/// `N` message slots and `O` observers on each side.
pub struct Pair<H, const N: usize = 8, const O: usize = 4> {
    pub now: Instant,
    pub client: Endpoint<Addr, N, DEFAULT_MESSAGE_SIZE, 12, O>,
    pub server: Endpoint<Addr, N, DEFAULT_MESSAGE_SIZE, 12, O>,
    pub handler: H,
    pub link: Link,
    rng: Rng,
    in_flight: Vec<Datagram>,
    /// Every datagram put on the wire (before loss), for inspection.
    pub sent: Vec<Datagram>,
    pub events: Vec<Outcome>,
    /// Called with the server endpoint after every step (e.g. to send deferred responses).
    pub server_app: Option<ServerApp<N, O>>,
}

impl<H: Handler<Addr>, const N: usize, const O: usize> Pair<H, N, O> {
    pub fn new(seed: u64, link: Link, handler: H) -> Self {
        Self::with_config(seed, link, handler, coap_core::Config::default())
    }

    pub fn with_config(seed: u64, link: Link, handler: H, config: coap_core::Config) -> Self {
        Pair {
            now: Instant::from_millis(1_000),
            client: Endpoint::new(config, seed ^ 0xc1),
            server: Endpoint::new(config, seed ^ 0x5e),
            handler,
            link,
            rng: Rng::new(seed),
            in_flight: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
            server_app: None,
        }
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.rng.below_or_eq(999) < u64::from(per_mille)
    }

    fn put(&mut self, from: Addr, to: Addr, bytes: &[u8]) {
        let d = Datagram {
            at: self.now,
            from,
            to,
            bytes: bytes.to_vec(),
        };
        self.sent.push(d);
        if self.chance(self.link.loss) {
            return;
        }
        let copies = if self.chance(self.link.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let (lo, hi) = self.link.delay_ms;
            let delay = lo + self.rng.below_or_eq(hi - lo);
            self.in_flight.push(Datagram {
                at: self.now.add_millis(delay),
                from,
                to,
                bytes: bytes.to_vec(),
            });
        }
    }

    /// Moves everything the endpoints want to send onto the link, and collects events.
    pub fn flush(&mut self) {
        let mut buf = [0u8; 2048];
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let b = buf[..t.len].to_vec();
            self.put(CLIENT, t.peer, &b);
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let b = buf[..t.len].to_vec();
            self.put(SERVER, t.peer, &b);
        }
        while let Some(ev) = self.client.poll_event() {
            self.events.push(match ev {
                Event::Response { id, message, .. } => Outcome::Response {
                    id,
                    code: message.code(),
                    payload: message.payload().to_vec(),
                    bytes: Vec::new(),
                },
                Event::Notification { id, message, .. } => Outcome::Notification {
                    id,
                    observe: message.observe().unwrap_or(u32::MAX),
                    payload: message.payload().to_vec(),
                },
                Event::Block { id, message, .. } => Outcome::Block {
                    id,
                    block: coap_core::Block::of(&message, coap_core::OptionNumber::BLOCK2)
                        .expect("Block2"),
                    payload: message.payload().to_vec(),
                },
                Event::Failed { id, reason } => Outcome::Failed(id, reason),
                Event::NoResponse { id } => Outcome::NoResponse(id),
                Event::Continue { id, offset, size } => Outcome::Continue { id, offset, size },
                Event::Timeout { id } => Outcome::Timeout(id),
                Event::Reset { id } => Outcome::Reset(id),
            });
        }
    }

    /// One step: deliver what is due, fire due timers. Returns false when idle.
    pub fn step(&mut self) -> bool {
        self.flush();
        let next_dgram = self.in_flight.iter().map(|d| d.at).min();
        let next = [
            next_dgram,
            self.client.poll_timeout(),
            self.server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        if next > self.now {
            self.now = next;
        }
        // Deliver every datagram due now, in arrival order.
        self.in_flight.sort_by_key(|d| d.at);
        while self.in_flight.first().is_some_and(|d| d.at <= self.now) {
            let d = self.in_flight.remove(0);
            match d.to {
                SERVER => {
                    self.server
                        .handle_datagram(self.now, d.from, &d.bytes, &mut self.handler)
                }
                CLIENT => self
                    .client
                    .handle_datagram(self.now, d.from, &d.bytes, &mut NoServer),
                _ => {}
            }
        }
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        if let Some(app) = self.server_app.as_mut() {
            app(self.now, &mut self.server);
        }
        self.flush();
        true
    }

    /// Drives until nothing is in flight and no timer is armed, bounded in steps.
    pub fn drive(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("simulation did not go idle within 100000 steps (livelock?)");
    }

    /// Drives until the virtual clock reaches `until` or idle.
    pub fn drive_until(&mut self, until: Instant) {
        for _ in 0..100_000 {
            self.flush();
            let next_dgram = self.in_flight.iter().map(|d| d.at).min();
            let next = [
                next_dgram,
                self.client.poll_timeout(),
                self.server.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            if next.is_none_or(|n| n > until) {
                self.flush();
                self.now = self.now.max(until);
                return;
            }
            self.step();
        }
        panic!("no progress");
    }

    /// Injects a raw datagram to the server as if from `from`.
    pub fn inject_to_server(&mut self, from: Addr, bytes: &[u8]) {
        self.server
            .handle_datagram(self.now, from, bytes, &mut self.handler);
    }

    /// Datagrams sent by `from`, parsed.
    pub fn sent_by(&self, from: Addr) -> Vec<(Instant, Vec<u8>)> {
        self.sent
            .iter()
            .filter(|d| d.from == from)
            .map(|d| (d.at, d.bytes.clone()))
            .collect()
    }
}

/// Parses a datagram, panicking on malformed bytes (test helper).
pub fn parse(b: &[u8]) -> Message<'_> {
    Message::parse(b).expect("well-formed")
}
