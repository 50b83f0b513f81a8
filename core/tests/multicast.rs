//! Group communication (RFC 7252 §8) on a simulated network: one client, N servers that
//! listen on a group address, seeded loss, a virtual clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use coap_core::message::MessageType;
use coap_core::rng::Rng;
use coap_core::{
    Code, Config, Delivery, Endpoint, Event, IncomingRequest, Instant, Message, MessageBuilder,
    NoServer, OptionNumber, Outcome, RequestId, RequestParams, ResponseWriter,
};

const CLIENT: u32 = 0;
const GROUP: u32 = 1000;

type Handler = Box<dyn FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Outcome>;

/// A representation that differs per server, larger than one message.
fn big(server: u32) -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 + server * 13) as u8).collect()
}

/// The servers' resources: /id names the server, /big is 3000 bytes, /missing is 4.04,
/// /quiet says nothing to multicast requests (but answers unicast ones).
fn handler(server: u32) -> Handler {
    let body = big(server);
    Box::new(move |req, resp| {
        let path: Vec<&[u8]> = req.message().uri_path().collect();
        match path.as_slice() {
            [b"id"] => {
                let text = format!("server {server}");
                resp.respond(Code::CONTENT, None, text.as_bytes()).unwrap();
            }
            [b"big"] => {
                resp.payload_blockwise(&body).unwrap();
            }
            [b"quiet"] if req.delivery() == Delivery::Multicast => return Outcome::Ignore,
            [b"quiet"] => {
                resp.respond(Code::CONTENT, None, b"unicast").unwrap();
            }
            _ => {
                resp.set_code(Code::NOT_FOUND);
            }
        }
        Outcome::Respond
    })
}

struct Wire {
    at: Instant,
    from: u32,
    to: u32,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Response {
        peer: u32,
        code: Code,
        payload: Vec<u8>,
    },
    Block {
        peer: u32,
        offset: usize,
        payload: Vec<u8>,
    },
    Timeout,
    Other(String),
}

struct Net {
    now: Instant,
    client: Endpoint<u32, 32>,
    servers: Vec<Endpoint<u32>>,
    handlers: Vec<Handler>,
    queue: Vec<Wire>,
    loss_percent: u64,
    rng: Rng,
    /// Every datagram sent: (time, from, to, bytes).
    log: Vec<(Instant, u32, u32, Vec<u8>)>,
    events: Vec<(RequestId, Seen)>,
}

impl Net {
    fn new(seed: u64, servers: u32, loss_percent: u64, server_config: Config) -> Self {
        Net {
            now: Instant::from_millis(0),
            client: Endpoint::new(Config::default(), seed),
            servers: (1..=servers)
                .map(|s| Endpoint::new(server_config, seed.wrapping_mul(31) + u64::from(s)))
                .collect(),
            handlers: (1..=servers).map(handler).collect(),
            queue: Vec::new(),
            loss_percent,
            rng: Rng::new(seed ^ 0x5eed),
            log: Vec::new(),
            events: Vec::new(),
        }
    }

    fn send(&mut self, from: u32, to: u32, bytes: &[u8]) {
        self.log.push((self.now, from, to, bytes.to_vec()));
        let targets: Vec<u32> = if to == GROUP {
            (1..=self.servers.len() as u32).collect()
        } else {
            vec![to]
        };
        for t in targets {
            // Each copy of a multicast datagram is lost independently.
            if self.rng.below_or_eq(99) < self.loss_percent {
                continue;
            }
            let wire = Wire {
                at: self.now.add_millis(1 + self.rng.below_or_eq(3)),
                from,
                to: if to == GROUP { GROUP + t } else { t },
                bytes: bytes.to_vec(),
            };
            self.queue.push(wire);
        }
    }

    fn flush(&mut self) {
        let mut buf = [0u8; 1152];
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let bytes = buf[..t.len].to_vec();
            self.send(CLIENT, t.peer, &bytes);
        }
        for s in 0..self.servers.len() {
            while let Some(t) = self.servers[s].poll_transmit(self.now, &mut buf) {
                let bytes = buf[..t.len].to_vec();
                self.send(s as u32 + 1, t.peer, &bytes);
            }
        }
        while let Some(e) = self.client.poll_event() {
            let (id, seen) = match e {
                Event::Response { id, peer, message } => (
                    id,
                    Seen::Response {
                        peer,
                        code: message.code(),
                        payload: message.payload().to_vec(),
                    },
                ),
                Event::Block { id, peer, message } => {
                    let b = coap_core::Block::of(&message, OptionNumber::BLOCK2).unwrap();
                    (
                        id,
                        Seen::Block {
                            peer,
                            offset: b.offset(),
                            payload: message.payload().to_vec(),
                        },
                    )
                }
                Event::Timeout { id } => (id, Seen::Timeout),
                other => (RequestId(u32::MAX), Seen::Other(format!("{other:?}"))),
            };
            self.events.push((id, seen));
        }
    }

    /// Runs until nothing is queued and no timer is armed; bounded in steps.
    fn run(&mut self) {
        for _ in 0..100_000 {
            self.flush();
            // Deliver what is due, in time order.
            self.queue.sort_by_key(|w| w.at);
            if self.queue.first().is_some_and(|w| w.at <= self.now) {
                let w = self.queue.remove(0);
                if w.to == CLIENT {
                    self.client
                        .handle_datagram(self.now, w.from, &w.bytes, &mut NoServer);
                } else if w.to > GROUP {
                    let s = (w.to - GROUP - 1) as usize;
                    self.servers[s].handle_group_datagram(
                        self.now,
                        w.from,
                        &w.bytes,
                        &mut self.handlers[s],
                    );
                } else {
                    let s = (w.to - 1) as usize;
                    self.servers[s].handle_datagram(
                        self.now,
                        w.from,
                        &w.bytes,
                        &mut self.handlers[s],
                    );
                }
                continue;
            }
            // Nothing due now: jump to the next delivery or timer.
            let mut next = self.queue.first().map(|w| w.at);
            let timers = std::iter::once(self.client.poll_timeout())
                .chain(self.servers.iter().map(|s| s.poll_timeout()))
                .flatten();
            for t in timers {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
            let Some(next) = next else { return };
            self.now = self.now.max(next);
            self.client.handle_timeout(self.now);
            for s in &mut self.servers {
                s.handle_timeout(self.now);
            }
        }
        panic!("the simulation did not settle");
    }

    fn group_get(
        &mut self,
        path: &str,
        window: Duration,
        extra: Option<(OptionNumber, u32)>,
    ) -> RequestId {
        let id = self
            .client
            .request_group(
                self.now,
                GROUP,
                RequestParams::con(Code::GET).timeout(window),
                |b| {
                    b.option_str(OptionNumber::URI_PATH, path)?;
                    if let Some((n, v)) = extra {
                        b.option_uint(n, v)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
        self.run();
        id
    }

    fn sent_by_servers(&self) -> Vec<(Instant, u32, Message<'_>)> {
        self.log
            .iter()
            .filter(|(_, from, _, _)| *from != CLIENT)
            .map(|(t, from, _, b)| (*t, *from, Message::parse(b).unwrap()))
            .collect()
    }
}

fn fast_leisure() -> Config {
    Config {
        default_leisure: Duration::from_millis(500),
        ..Config::default()
    }
}

#[test]
fn every_member_answers_and_the_window_closes() {
    let mut net = Net::new(1, 4, 0, Config::default());
    let id = net.group_get("id", Duration::from_secs(10), None);
    // The request went out once, NON, to the group (§8.1), even though CON was asked for.
    let requests: Vec<_> = net.log.iter().filter(|l| l.1 == CLIENT).collect();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].2, GROUP);
    assert_eq!(
        Message::parse(&requests[0].3).unwrap().ty(),
        MessageType::Non
    );
    // Every member's response, with its address, then the end of the window.
    let mut peers = BTreeSet::new();
    for (got, seen) in &net.events[..4] {
        assert_eq!(*got, id);
        match seen {
            Seen::Response {
                peer,
                code,
                payload,
            } => {
                assert_eq!(*code, Code::CONTENT);
                assert_eq!(payload, format!("server {peer}").as_bytes());
                peers.insert(*peer);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(peers, (1..=4).collect());
    assert_eq!(net.events[4], (id, Seen::Timeout));
    assert_eq!(net.events.len(), 5);
    // Responses are NON from each member's own address; no ACK or RST to the group request.
    for (_, from, m) in net.sent_by_servers() {
        assert_eq!(m.ty(), MessageType::Non, "from {from}");
        assert_eq!(m.code(), Code::CONTENT);
    }
    // The window is the request's deadline: 10 s.
    assert!(net.now >= Instant::from_millis(10_000));
}

#[test]
fn leisure_spreads_the_responses() {
    let mut net = Net::new(7, 8, 0, Config::default());
    net.group_get("id", Duration::from_secs(10), None);
    let times: Vec<u64> = net
        .sent_by_servers()
        .iter()
        .map(|(t, _, _)| t.as_millis())
        .collect();
    assert_eq!(times.len(), 8);
    // Every response waits a random time within DEFAULT_LEISURE (5 s, §8.2) after the
    // request arrived (1–4 ms after it was sent at 0).
    assert!(times.iter().all(|t| *t <= 5_004), "{times:?}");
    let distinct: BTreeSet<u64> = times.iter().copied().collect();
    assert!(distinct.len() >= 6, "responses bunched up: {times:?}");
    let spread = times.iter().max().unwrap() - times.iter().min().unwrap();
    assert!(spread >= 1_000, "responses not spread: {times:?}");
}

#[test]
fn errors_are_suppressed_unless_asked_for() {
    let mut net = Net::new(2, 3, 0, fast_leisure());
    let id = net.group_get("missing", Duration::from_secs(2), None);
    assert!(net.sent_by_servers().is_empty(), "an error went out");
    assert_eq!(net.events, vec![(id, Seen::Timeout)]);
    assert_eq!(net.servers[0].stats().multicast_suppressed, 1);
    // No-Response 0: interested in every class (RFC 7967 §2.1) — the errors come.
    let id = net.group_get(
        "missing",
        Duration::from_secs(2),
        Some((OptionNumber::NO_RESPONSE, 0)),
    );
    let codes: Vec<Code> = net
        .events
        .iter()
        .filter(|(got, _)| *got == id)
        .filter_map(|(_, s)| match s {
            Seen::Response { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![Code::NOT_FOUND; 3]);
}

#[test]
fn no_response_is_honoured_for_success_too() {
    let mut net = Net::new(3, 3, 0, fast_leisure());
    // No-Response 2: not interested in 2.xx (RFC 7967).
    let id = net.group_get(
        "id",
        Duration::from_secs(2),
        Some((OptionNumber::NO_RESPONSE, 2)),
    );
    assert!(net.sent_by_servers().is_empty());
    // The client suppressed some classes and heard nothing: for a group request the
    // window simply closes.
    assert_eq!(net.events.len(), 1);
    assert_eq!(net.events[0].0, id);
}

#[test]
fn a_handler_may_ignore_multicast_requests() {
    let mut net = Net::new(4, 3, 0, fast_leisure());
    let id = net.group_get("quiet", Duration::from_secs(2), None);
    assert!(net.sent_by_servers().is_empty());
    assert_eq!(net.events, vec![(id, Seen::Timeout)]);
    // The same resource answers unicast requests.
    let id = net
        .client
        .request(net.now, 2, RequestParams::con(Code::GET), |b| {
            b.option_str(OptionNumber::URI_PATH, "quiet").map(|_| ())
        })
        .unwrap();
    net.run();
    assert!(matches!(
        net.events.last(),
        Some((got, Seen::Response { peer: 2, payload, .. })) if *got == id && payload == b"unicast"
    ));
}

#[test]
fn no_ack_or_rst_ever_goes_to_a_multicast_request() {
    let mut server: Endpoint<u32> = Endpoint::new(fast_leisure(), 9);
    let mut h = handler(1);
    let now = Instant::from_millis(0);
    let mut buf = [0u8; 64];
    // A CON request to the group (§8.1 says NON; treated as NON): no ACK.
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 0x1234, &[7]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "id").unwrap();
    let n = b.finish();
    server.handle_group_datagram(now, 5, &buf[..n], &mut h);
    // CoAP ping (empty CON): a unicast ping gets RST, a multicast one nothing.
    server.handle_group_datagram(now, 5, &[0x40, 0x00, 0x00, 0x01], &mut h);
    // Malformed CON (reserved option delta 15): no RST.
    server.handle_group_datagram(now, 5, &[0x40, 0x01, 0x00, 0x02, 0xf0], &mut h);
    // Unknown critical option in a NON: no RST, and no 4.02 nobody asked for.
    let mut b = MessageBuilder::new(&mut buf, MessageType::Non, Code::GET, 0x1235, &[8]).unwrap();
    b.option(OptionNumber(9999), b"x").unwrap();
    let n = b.finish();
    server.handle_group_datagram(now, 5, &buf[..n], &mut h);
    // A response or an ACK sent to a group address is meaningless: ignored.
    server.handle_group_datagram(now, 5, &[0x60, 0x45, 0x00, 0x03], &mut h);
    let mut out = [0u8; 1152];
    assert!(
        server.poll_transmit(now, &mut out).is_none(),
        "nothing before the leisure"
    );
    let later = server
        .poll_timeout()
        .expect("the response waits for its leisure");
    assert!(later <= Instant::from_millis(500));
    server.handle_timeout(later);
    let t = server.poll_transmit(later, &mut out).unwrap();
    let m = Message::parse(&out[..t.len]).unwrap();
    assert_eq!(
        (t.peer, m.ty(), m.code(), m.token()),
        (5, MessageType::Non, Code::CONTENT, &[7][..])
    );
    assert_ne!(
        m.message_id(),
        0x1234,
        "a NON response has a Message ID of its own"
    );
    assert!(server.poll_transmit(later, &mut out).is_none());
    // The same ping by unicast is answered with RST (§4.3), as a control.
    server.handle_datagram(later, 5, &[0x40, 0x00, 0x00, 0x01], &mut h);
    let t = server.poll_transmit(later, &mut out).unwrap();
    assert_eq!(
        Message::parse(&out[..t.len]).unwrap().ty(),
        MessageType::Rst
    );
}

/// Reassembles each responder's body from `Block` events and its final `Response`.
fn bodies(events: &[(RequestId, Seen)], id: RequestId) -> BTreeMap<u32, Vec<u8>> {
    let mut partial: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut done = BTreeMap::new();
    for (got, seen) in events {
        if *got != id {
            continue;
        }
        match seen {
            Seen::Block {
                peer,
                offset,
                payload,
            } => {
                let body = partial.entry(*peer).or_default();
                assert_eq!(body.len(), *offset, "blocks in order from {peer}");
                body.extend_from_slice(payload);
            }
            Seen::Response { peer, payload, .. } => {
                let mut body = partial.remove(peer).unwrap_or_default();
                body.extend_from_slice(payload);
                assert!(
                    done.insert(*peer, body).is_none(),
                    "two answers from {peer}"
                );
            }
            Seen::Timeout => {}
            Seen::Other(e) => panic!("{e}"),
        }
    }
    done
}

#[test]
fn block2_after_multicast_continues_by_unicast_with_each_responder() {
    let config = Config {
        max_block_szx: 2, // 64-byte blocks: 47 blocks of /big
        ..fast_leisure()
    };
    let mut net = Net::new(5, 3, 0, config);
    let id = net.group_get("big", Duration::from_secs(3), None);
    let got = bodies(&net.events, id);
    assert_eq!(got.len(), 3);
    for (peer, body) in &got {
        assert_eq!(body, &big(*peer), "body from {peer}");
    }
    assert_eq!(net.events.last(), Some(&(id, Seen::Timeout)));
    // One multicast request; every later block was asked for by unicast CON, from the
    // member that sent the first block (RFC 7959 §2.8).
    let client_sent: Vec<(u32, Message<'_>)> = net
        .log
        .iter()
        .filter(|l| l.1 == CLIENT)
        .map(|l| (l.2, Message::parse(&l.3).unwrap()))
        .collect();
    assert_eq!(client_sent.iter().filter(|(to, _)| *to == GROUP).count(), 1);
    for peer in 1..=3u32 {
        let nums: Vec<u32> = client_sent
            .iter()
            .filter(|(to, m)| *to == peer && m.code() == Code::GET)
            .map(|(_, m)| {
                assert_eq!(m.ty(), MessageType::Con);
                coap_core::Block::of(m, OptionNumber::BLOCK2).unwrap().num
            })
            .collect();
        assert_eq!(nums, (1..47).collect::<Vec<u32>>(), "follow-ups to {peer}");
    }
}

#[test]
fn lossy_groups_deliver_exact_answers_or_none() {
    let config = Config {
        max_block_szx: 3,
        ..fast_leisure()
    };
    let mut complete = 0;
    for seed in 0..150 {
        let mut net = Net::new(seed, 5, 20, config);
        let path = if seed % 2 == 0 { "id" } else { "big" };
        let id = net.group_get(path, Duration::from_secs(3), None);
        let got = bodies(&net.events, id);
        for (peer, body) in &got {
            let want = if path == "id" {
                format!("server {peer}").into_bytes()
            } else {
                big(*peer)
            };
            assert_eq!(body, &want, "seed {seed} peer {peer}");
        }
        complete += got.len();
        // The window always closes, exactly once, last.
        let timeouts = net
            .events
            .iter()
            .filter(|(_, s)| *s == Seen::Timeout)
            .count();
        assert_eq!(timeouts, 1, "seed {seed}");
        assert_eq!(net.events.last().map(|e| &e.1), Some(&Seen::Timeout));
        // Nothing is left behind in the client.
        assert_eq!(net.client.slots_in_use(), 0, "seed {seed}");
    }
    // With 20 % loss per datagram most answers still arrive (sanity of the test itself).
    assert!(complete > 150 * 5 / 3, "only {complete} answers");
}
