//! OSCORE between two endpoints (`Endpoint<Secured<u32>>`), each behind an OSCORE
//! `Layer`, on a deterministic in-memory network with a virtual clock (the pattern of
//! tests/sim: jump the clock to the next deadline, bounded steps).
#![cfg(feature = "oscore")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use coap_core::block::{BlockError, Progress, Reassembly};
use coap_core::message::MessageType;
use coap_core::oscore::context::{ContextParams, SecurityContext};
use coap_core::oscore::replay::{ReplayError, ReplayWindow};
use coap_core::oscore::sequence::SequenceReservation;
use coap_core::oscore::{ContextId, Incoming, Layer, Secured, Security, UnprotectError};
use coap_core::server::Understanding;
use coap_core::{
    Block, Code, Config, Endpoint, Event, Handler, IncomingRequest, Instant, Message,
    MessageBuilder, NoServer, OptionNumber, Outcome as Handled, RequestId, RequestParams,
    ResponseWriter,
};

type Peer = Secured<u32>;
const CLIENT: u32 = 1;
const SERVER: u32 = 2;
const KEY: u32 = 9;

#[derive(Clone, Debug)]
struct Wire {
    at: Instant,
    from: u32,
    to: u32,
    bytes: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Response {
        id: RequestId,
        code: Code,
        payload: Vec<u8>,
        security: Security,
        echo: bool,
    },
    Notification {
        observe: u32,
        payload: Vec<u8>,
    },
    Block {
        offset: usize,
        payload: Vec<u8>,
    },
    Continue {
        id: RequestId,
        offset: usize,
        size: usize,
    },
    Other(String),
}

fn params<'a>(secret: &'a [u8], sender: &'a [u8], recipient: &'a [u8]) -> ContextParams<'a> {
    ContextParams {
        master_secret: secret,
        master_salt: b"\x9e\x7c\xa9\x22\x23\x78\x63\x40",
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    }
}

const SECRET: &[u8] = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";

struct Net<H> {
    now: Instant,
    client: Endpoint<Peer, 8>,
    server: Endpoint<Peer, 8>,
    cl: Layer<u32, 2, 8>,
    sl: Layer<u32, 2, 8>,
    cctx: ContextId,
    handler: H,
    in_flight: Vec<Wire>,
    sent: Vec<Wire>,
    events: Vec<Ev>,
    server_results: Vec<Incoming>,
    client_results: Vec<Incoming>,
    /// Sequence number bounds "written to storage" per side (Appendix B.1.1).
    stored: [u64; 2],
    /// Drops the datagrams for which it returns true (loss injection).
    lose: Box<dyn FnMut(&Wire) -> bool>,
    /// Delivers a second copy, 20 ms later, of the datagrams for which it returns true.
    duplicate: Box<dyn FnMut(&Wire) -> bool>,
}

impl<H: Handler<Peer>> Net<H> {
    fn new(handler: H) -> Self {
        Self::with_client_secret(handler, SECRET, b"\x01")
    }

    fn with_client_secret(handler: H, secret: &[u8], client_id: &[u8]) -> Self {
        let mut cl = Layer::new(100);
        let mut sl = Layer::new(200);
        let cctx = cl
            .add_context(SecurityContext::derive(&params(secret, client_id, b"\x02")).unwrap())
            .unwrap();
        sl.add_context(SecurityContext::derive(&params(SECRET, b"\x02", b"\x01")).unwrap())
            .unwrap();
        Net {
            now: Instant::from_millis(1_000),
            client: Endpoint::new(Config::default(), 11),
            server: Endpoint::new(Config::default(), 22),
            cl,
            sl,
            cctx,
            handler,
            in_flight: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
            server_results: Vec::new(),
            client_results: Vec::new(),
            stored: [0; 2],
            lose: Box::new(|_| false),
            duplicate: Box::new(|_| false),
        }
    }

    fn secured(&self) -> Peer {
        Secured {
            addr: SERVER,
            security: Security::Oscore(self.cctx),
        }
    }

    fn persist(&mut self) {
        while let Some((c, bound)) = self.cl.poll_persist() {
            self.stored[0] = bound;
            self.cl.persisted(c, bound);
        }
        while let Some((c, bound)) = self.sl.poll_persist() {
            self.stored[1] = bound;
            self.sl.persisted(c, bound);
        }
    }

    fn put(&mut self, from: u32, to: u32, bytes: Vec<u8>) {
        let w = Wire {
            at: self.now.add_millis(5),
            from,
            to,
            bytes,
        };
        self.sent.push(w.clone());
        if (self.duplicate)(&w) {
            let mut copy = w.clone();
            copy.at = copy.at.add_millis(20);
            self.in_flight.push(copy);
        }
        if !(self.lose)(&w) {
            self.in_flight.push(w);
        }
    }

    fn flush(&mut self) {
        let mut buf = [0u8; 2048];
        let mut out = [0u8; 2048];
        self.persist();
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let bytes = match t.peer.security {
                Security::Oscore(c) => {
                    let n = self
                        .cl
                        .outgoing(self.now, t.peer.addr, c, &buf[..t.len], &mut out)
                        .expect("client protects");
                    out[..n].to_vec()
                }
                _ => buf[..t.len].to_vec(),
            };
            self.put(CLIENT, t.peer.addr, bytes);
        }
        self.persist();
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let bytes = match t.peer.security {
                Security::Oscore(c) => {
                    let n = self
                        .sl
                        .outgoing(self.now, t.peer.addr, c, &buf[..t.len], &mut out)
                        .expect("server protects");
                    out[..n].to_vec()
                }
                _ => buf[..t.len].to_vec(),
            };
            self.put(SERVER, t.peer.addr, bytes);
        }
        while let Some(ev) = self.client.poll_event() {
            self.events.push(match ev {
                Event::Response {
                    id, peer, message, ..
                } => Ev::Response {
                    id,
                    code: message.code(),
                    payload: message.payload().to_vec(),
                    security: peer.security,
                    echo: message.option(OptionNumber::ECHO).is_some(),
                },
                Event::Notification { message, .. } => Ev::Notification {
                    observe: message.observe().unwrap_or(u32::MAX),
                    payload: message.payload().to_vec(),
                },
                Event::Block { message, .. } => Ev::Block {
                    offset: Block::of(&message, OptionNumber::BLOCK2).unwrap().offset(),
                    payload: message.payload().to_vec(),
                },
                Event::Continue { id, offset, size } => Ev::Continue { id, offset, size },
                other => Ev::Other(format!("{other:?}")),
            });
        }
    }

    /// Delivers one datagram through the receiving side's layer.
    fn deliver(&mut self, w: Wire) {
        let mut out = [0u8; 4096];
        let (layer, results) = if w.to == SERVER {
            (&mut self.sl, &mut self.server_results)
        } else {
            (&mut self.cl, &mut self.client_results)
        };
        let r = layer.incoming(self.now, w.from, &w.bytes, &mut out);
        results.push(r);
        let (bytes, security) = match r {
            Incoming::Plain => (&w.bytes[..], Security::Plain),
            Incoming::Inner { len, context } => (&out[..len], Security::Oscore(context)),
            Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                let reply = out[..len].to_vec();
                self.put(w.to, w.from, reply);
                return;
            }
            Incoming::Drop(_) => return,
        };
        let peer = Secured {
            addr: w.from,
            security,
        };
        if w.to == SERVER {
            self.server
                .handle_datagram(self.now, peer, bytes, &mut self.handler);
        } else {
            self.client
                .handle_datagram(self.now, peer, bytes, &mut NoServer);
        }
    }

    fn step(&mut self) -> bool {
        self.flush();
        let next = [
            self.in_flight.iter().map(|d| d.at).min(),
            self.client.poll_timeout(),
            self.server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        self.in_flight.sort_by_key(|d| d.at);
        while self.in_flight.first().is_some_and(|d| d.at <= self.now) {
            let w = self.in_flight.remove(0);
            self.deliver(w);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.flush();
        true
    }

    /// Drives until the clock passes `ms` more milliseconds or all is idle.
    fn run_for(&mut self, ms: u64) {
        let until = self.now.add_millis(ms);
        for _ in 0..100_000 {
            self.flush();
            let next = [
                self.in_flight.iter().map(|d| d.at).min(),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            if next.is_none_or(|n| n > until) {
                self.now = self.now.max(until);
                return;
            }
            self.step();
        }
        panic!("no progress within 100000 steps");
    }

    fn get(&mut self, path: &str) -> RequestId {
        let (now, peer) = (self.now, self.secured());
        self.client
            .request(now, peer, RequestParams::con(Code::GET), |b| {
                b.option_str(OptionNumber::URI_PATH, path)?;
                Ok(())
            })
            .unwrap()
    }

    fn response(&self, id: RequestId) -> Option<(Code, Vec<u8>, Security, bool)> {
        self.events.iter().find_map(|e| match e {
            Ev::Response {
                id: i,
                code,
                payload,
                security,
                echo,
            } if *i == id => Some((*code, payload.clone(), *security, *echo)),
            _ => None,
        })
    }

    fn sent_by(&self, from: u32) -> Vec<Vec<u8>> {
        self.sent
            .iter()
            .filter(|w| w.from == from)
            .map(|w| w.bytes.clone())
            .collect()
    }
}

/// Shared server state, inspected by the tests.
#[derive(Default)]
struct State {
    calls: Cell<u32>,
    observed: Cell<u32>,
    uploaded: RefCell<Vec<u8>>,
}

fn representation(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(3))
        .collect()
}

/// The demo server: answers only requests that came protected (an application's
/// authorisation check), and serves /hello, /echo, /obs, /large and /upload.
fn server(state: Rc<State>) -> impl Handler<Peer> {
    let mut upload: Box<Reassembly<_, 8192>> = Box::default();
    let large = representation(3000);
    Understanding::new(
        move |req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>| {
            state.calls.set(state.calls.get() + 1);
            if req.peer().security == Security::Plain {
                resp.respond(Code::UNAUTHORIZED, None, b"").unwrap();
                return Handled::Respond;
            }
            let path: Vec<u8> = req.message().uri_path().flatten().copied().collect();
            match &path[..] {
                b"hello" => resp.respond(Code::CONTENT, None, b"hello").unwrap(),
                b"echo" => {
                    let p = req.payload().to_vec();
                    resp.respond(Code::CHANGED, None, &p).unwrap()
                }
                b"obs" => {
                    resp.observable(KEY);
                    let v = state.observed.get().to_string();
                    resp.respond(Code::CONTENT, None, v.as_bytes()).unwrap()
                }
                b"large" => resp.payload_blockwise(&large).unwrap(),
                b"upload" => match upload.accept(req.now(), &req.peer(), req.message()) {
                    Ok(Progress::Continue(b)) => {
                        resp.set_code(Code::CONTINUE);
                        resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                    }
                    Ok(Progress::Complete(body, echo)) => {
                        *state.uploaded.borrow_mut() = body.to_vec();
                        resp.set_code(Code::CHANGED);
                        if let Some(b) = echo {
                            resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                        }
                    }
                    Err(e) => {
                        resp.set_code(e.code());
                        if let BlockError::TooLarge { limit } = e {
                            resp.option_uint(OptionNumber::SIZE1, limit as u32).unwrap();
                        }
                    }
                },
                _ => resp.respond(Code::NOT_FOUND, None, b"").unwrap(),
            }
            Handled::Respond
        },
        &[OptionNumber::BLOCK1],
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn get_and_post_are_protected_end_to_end() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let id = n.get("hello");
    n.run_for(1_000);
    assert_eq!(
        n.response(id),
        Some((
            Code::CONTENT,
            b"hello".to_vec(),
            n.secured().security,
            false
        ))
    );
    let (now, peer) = (n.now, n.secured());
    let post = n
        .client
        .request(now, peer, RequestParams::con(Code::POST), |b| {
            b.option_str(OptionNumber::URI_PATH, "echo")?;
            b.payload(b"top secret payload")?;
            Ok(())
        })
        .unwrap();
    n.run_for(1_000);
    assert_eq!(
        n.response(post).map(|r| (r.0, r.1)),
        Some((Code::CHANGED, b"top secret payload".to_vec()))
    );
    // On the wire: outer POST / 2.04 (RFC 8613 §4.2), an OSCORE option, and neither the
    // path nor the payloads in clear.
    for w in &n.sent {
        let m = Message::parse(&w.bytes).unwrap();
        assert!(m.option(OptionNumber::OSCORE).is_some(), "{w:?}");
        assert!(m.option(OptionNumber::URI_PATH).is_none());
        assert!(!contains(&w.bytes, b"hello") && !contains(&w.bytes, b"secret"));
        let expect = if w.from == CLIENT {
            Code::POST
        } else {
            Code::CHANGED
        };
        assert_eq!(m.code(), expect);
    }
    assert_eq!(state.calls.get(), 2);
}

#[test]
fn observe_notifications_arrive_in_partial_iv_order() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let (now, peer) = (n.now, n.secured());
    n.client
        .request(now, peer, RequestParams::con(Code::GET), |b| {
            b.option_uint(OptionNumber::OBSERVE, 0)?;
            b.option_str(OptionNumber::URI_PATH, "obs")?;
            Ok(())
        })
        .unwrap();
    n.run_for(1_000);
    assert_eq!(n.server.observers(KEY), 1);
    for v in 1..=4u32 {
        state.observed.set(v);
        let now = n.now;
        let sent = n.server.notify(now, KEY, |_peer, w| {
            w.payload(v.to_string().as_bytes())?;
            Ok(())
        });
        assert_eq!(sent, 1);
        n.run_for(1_000);
    }
    let got: Vec<(u32, Vec<u8>)> = n
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Notification { observe, payload } => Some((*observe, payload.clone())),
            _ => None,
        })
        .collect();
    let payloads: Vec<&[u8]> = got.iter().map(|g| &g.1[..]).collect();
    assert_eq!(payloads, [&b"0"[..], b"1", b"2", b"3", b"4"]);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "{got:?}");
    // Registration went as FETCH (§4.2); every notification carries its own Partial IV
    // (§4.1.3.5.2) and an Outer Observe; the Inner Observe is empty.
    let req = Message::parse(&n.sent_by(CLIENT)[0]).unwrap().code();
    assert_eq!(req, Code::FETCH);
    let notes: Vec<Vec<u8>> = n
        .sent_by(SERVER)
        .into_iter()
        .filter(|b| Message::parse(b).unwrap().code() != Code::EMPTY)
        .collect();
    assert_eq!(notes.len(), 5);
    let mut pivs = Vec::new();
    for b in &notes {
        let m = Message::parse(b).unwrap();
        assert_eq!(m.code(), Code::CONTENT);
        assert!(m.observe().is_some());
        let o =
            coap_core::oscore::OscoreOption::parse(m.option(OptionNumber::OSCORE).unwrap().value)
                .unwrap();
        pivs.push(
            o.partial_iv
                .expect("notifications carry a Partial IV")
                .value(),
        );
    }
    assert!(pivs.windows(2).all(|w| w[0] < w[1]), "{pivs:?}");

    // A replayed notification (new Message ID, old Partial IV: an older one, or the
    // latest one again) is dropped (§7.4.1: only newer than the Notification Number).
    for replayed in [&notes[1], &notes[4]] {
        let mut old = replayed.clone();
        old[2] ^= 0x55;
        let before = n.events.len();
        n.put(SERVER, CLIENT, old);
        n.run_for(1_000);
        assert_eq!(
            n.client_results.last(),
            Some(&Incoming::Drop(UnprotectError::Replay(
                ReplayError::Replayed
            )))
        );
        assert_eq!(n.events.len(), before);
    }
}

#[test]
fn block2_and_block1_through_oscore() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let id = n.get("large");
    n.run_for(5_000);
    let mut body = Vec::new();
    for e in &n.events {
        if let Ev::Block { offset, payload } = e {
            assert_eq!(*offset, body.len());
            body.extend_from_slice(payload);
        }
    }
    let (code, last, _, _) = n.response(id).expect("final block");
    assert_eq!(code, Code::CONTENT);
    body.extend_from_slice(&last);
    assert_eq!(body, representation(3000));

    // Block1 upload of 3000 bytes: inner Block1 options (Class E, §4.1.3.4.1).
    let upload = representation(3000)
        .iter()
        .map(|b| b ^ 0xa5)
        .collect::<Vec<u8>>();
    let (now, peer) = (n.now, n.secured());
    let size = n.client.upload_block_size();
    let up = n
        .client
        .upload(
            now,
            peer,
            RequestParams::con(Code::POST),
            upload.len(),
            |b| {
                b.option_str(OptionNumber::URI_PATH, "upload")?;
                Ok(())
            },
            &upload[..size],
        )
        .unwrap();
    let mut seen = n.events.len();
    for _ in 0..10_000 {
        if !n.step() {
            break;
        }
        while seen < n.events.len() {
            if let Ev::Continue { id, offset, size } = n.events[seen].clone() {
                let end = (offset + size).min(upload.len());
                let now = n.now;
                n.client
                    .upload_next(now, id, &upload[offset..end], end == upload.len())
                    .unwrap();
            }
            seen += 1;
        }
    }
    assert_eq!(n.response(up).map(|r| r.0), Some(Code::CHANGED));
    assert_eq!(*state.uploaded.borrow(), upload);
    for w in n.sent.iter().filter(|w| w.from == CLIENT) {
        let m = Message::parse(&w.bytes).unwrap();
        assert!(m.option(OptionNumber::BLOCK1).is_none(), "no outer Block1");
    }
}

#[test]
fn lost_response_retransmitted_request_reaches_dedup() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let mut lost = false;
    n.lose = Box::new(move |w| {
        if w.from == SERVER && !lost {
            lost = true;
            return true;
        }
        false
    });
    let id = n.get("hello");
    n.run_for(20_000);
    assert_eq!(n.response(id).map(|r| r.0), Some(Code::CONTENT));
    let reqs = n.sent_by(CLIENT);
    assert!(reqs.len() >= 2, "retransmitted");
    // The retransmission is the same protected message (same Partial IV, same bytes).
    assert_eq!(reqs[0], reqs[1]);
    // The handler ran once; the endpoint answered the duplicate from its cache.
    assert_eq!(state.calls.get(), 1);
    assert!(n.server.stats().duplicates >= 1);
    let responses = n.sent_by(SERVER);
    assert_eq!(
        responses[0], responses[1],
        "the cached response is protected identically"
    );
}

#[test]
fn replayed_request_is_rejected_with_4_01() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let id = n.get("hello");
    n.run_for(1_000);
    assert!(n.response(id).is_some());
    // The same protected request under another Message ID (the outer header is not
    // protected, so the tag still verifies): a replay (§7.4).
    let mut replay = n.sent_by(CLIENT)[0].clone();
    replay[2] ^= 0x01;
    let mut out = [0u8; 4096];
    let r = n.sl.incoming(n.now, CLIENT, &replay, &mut out);
    let Incoming::Reply { len, error } = r else {
        panic!("{r:?}")
    };
    assert_eq!(error, UnprotectError::Replay(ReplayError::Replayed));
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!(reply.code(), Code::UNAUTHORIZED);
    assert_eq!(reply.ty(), MessageType::Ack);
    assert_eq!(
        reply.message_id(),
        Message::parse(&replay).unwrap().message_id()
    );
    assert_eq!(reply.payload(), b"Replay detected");
    assert!(reply.option(OptionNumber::OSCORE).is_none());
    assert_eq!(state.calls.get(), 1);
    // The exact same datagram (same Message ID) soon after is a retransmission: it goes
    // to the endpoint, whose duplicate detection answers it without the handler. Once
    // MAX_TRANSMIT_SPAN has passed it is a replay like any other.
    let original = n.sent_by(CLIENT)[0].clone();
    let r = n.sl.incoming(n.now, CLIENT, &original, &mut out);
    assert!(matches!(r, Incoming::Inner { .. }), "{r:?}");
    let later = n.now.add_millis(46_000);
    let r = n.sl.incoming(later, CLIENT, &original, &mut out);
    assert!(
        matches!(
            r,
            Incoming::Reply {
                error: UnprotectError::Replay(ReplayError::Replayed),
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn unknown_kid_gets_4_01_and_wrong_key_4_00_without_reaching_the_handler() {
    for (secret, kid, code, diag) in [
        (
            SECRET,
            &b"\x07"[..],
            Code::UNAUTHORIZED,
            &b"Security context not found"[..],
        ),
        (
            &b"another secret!!"[..],
            &b"\x01"[..],
            Code::BAD_REQUEST,
            &b"Decryption failed"[..],
        ),
    ] {
        let state = Rc::new(State::default());
        let mut n = Net::with_client_secret(server(state.clone()), secret, kid);
        let id = n.get("hello");
        n.run_for(1_000);
        let replies = n.sent_by(SERVER);
        let reply = Message::parse(&replies[0]).unwrap();
        assert_eq!(reply.code(), code);
        assert_eq!(reply.payload(), diag);
        assert_eq!(reply.max_age(), 0, "Outer Max-Age 0 (§8.2)");
        assert!(reply.option(OptionNumber::OSCORE).is_none());
        assert!(matches!(n.server_results[0], Incoming::Reply { .. }));
        assert_eq!(state.calls.get(), 0);
        // The unprotected error is not taken as the protected exchange's response.
        assert!(n.response(id).is_none());
    }
}

#[test]
fn plain_requests_pass_as_plain_and_the_application_sees_it() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let now = n.now;
    let plain = Secured {
        addr: SERVER,
        security: Security::Plain,
    };
    let id = n
        .client
        .request(now, plain, RequestParams::con(Code::GET), |b| {
            b.option_str(OptionNumber::URI_PATH, "hello")?;
            Ok(())
        })
        .unwrap();
    n.run_for(1_000);
    assert_eq!(
        n.response(id).map(|r| (r.0, r.2)),
        Some((Code::UNAUTHORIZED, Security::Plain))
    );
    assert_eq!(n.server_results, [Incoming::Plain]);
}

#[test]
fn server_restart_recovers_the_replay_window_with_echo() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let id = n.get("hello");
    n.run_for(1_000);
    assert!(n.response(id).is_some());
    let old_request = n.sent_by(CLIENT)[0].clone();
    // Reboot: the server restores its context with the persisted sequence bound
    // (Appendix B.1.1) and an unknown replay window (Appendix B.1.2).
    let mut ctx = SecurityContext::derive(&params(SECRET, b"\x02", b"\x01")).unwrap();
    ctx.sequence = SequenceReservation::resume(n.stored[1]);
    ctx.replay = ReplayWindow::unknown();
    n.sl = Layer::new(300);
    n.sl.add_context(ctx).unwrap();
    n.server = Endpoint::new(Config::default(), 33);
    n.server_results.clear();
    let sent_before = n.sent.len();

    // The old request replayed after the reboot does not reach the handler.
    let calls = state.calls.get();
    n.put(CLIENT, SERVER, old_request);
    n.run_for(1_000);
    assert!(matches!(
        n.server_results[0],
        Incoming::Reply {
            error: UnprotectError::EchoRequired,
            ..
        }
    ));
    assert_eq!(state.calls.get(), calls);

    // A new request: 4.01 with Echo (protected), the endpoint repeats it with the Echo
    // (RFC 9175 §2.4), and the server accepts it and initialises its window.
    let id = n.get("hello");
    n.run_for(5_000);
    assert_eq!(
        n.response(id).map(|r| (r.0, r.1)),
        Some((Code::CONTENT, b"hello".to_vec()))
    );
    let echo_reply = n.sent[sent_before..]
        .iter()
        .filter(|w| w.from == SERVER)
        .nth(1)
        .expect("4.01 with Echo to the new request");
    let m = Message::parse(&echo_reply.bytes).unwrap();
    let o = coap_core::oscore::OscoreOption::parse(m.option(OptionNumber::OSCORE).unwrap().value)
        .unwrap();
    assert!(o.partial_iv.is_some(), "own Partial IV after reboot");
    assert!(o.partial_iv.unwrap().value() >= n.stored[1] - 64);
    assert_eq!(state.calls.get(), calls + 1);
}

#[test]
fn sequence_numbers_are_persisted_ahead_and_never_reused_after_restart() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let mut pivs = Vec::new();
    for _ in 0..40 {
        n.get("hello");
        n.run_for(1_000);
    }
    for b in n.sent_by(CLIENT) {
        let m = Message::parse(&b).unwrap();
        if let Some(o) = m.option(OptionNumber::OSCORE) {
            pivs.push(
                coap_core::oscore::OscoreOption::parse(o.value)
                    .unwrap()
                    .partial_iv
                    .unwrap()
                    .value(),
            );
        }
    }
    assert!(
        n.stored[0] > *pivs.iter().max().unwrap(),
        "stored bound ahead of use"
    );
    // Client restart: resume from the stored bound; the next request's PIV is above all
    // PIVs used before (no nonce reuse).
    let mut ctx = SecurityContext::derive(&params(SECRET, b"\x01", b"\x02")).unwrap();
    ctx.sequence = SequenceReservation::resume(n.stored[0]);
    let max_before = *pivs.iter().max().unwrap();
    n.cl = Layer::new(400);
    n.cctx = n.cl.add_context(ctx).unwrap();
    n.client = Endpoint::new(Config::default(), 44);
    let before = n.sent.len();
    let id = n.get("hello");
    n.run_for(1_000);
    assert_eq!(n.response(id).map(|r| r.0), Some(Code::CONTENT));
    let first = &n.sent[before..]
        .iter()
        .find(|w| w.from == CLIENT)
        .unwrap()
        .bytes;
    let m = Message::parse(first).unwrap();
    let piv = coap_core::oscore::OscoreOption::parse(m.option(OptionNumber::OSCORE).unwrap().value)
        .unwrap()
        .partial_iv
        .unwrap()
        .value();
    assert!(piv > max_before);
}

#[test]
fn empty_acks_of_separate_responses_and_plain_messages_are_routed() {
    // A NON request gets a NON response; a ping (empty CON) is answered with RST by the
    // endpoint as plain traffic.
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let (now, peer) = (n.now, n.secured());
    let id = n
        .client
        .request(now, peer, RequestParams::non(Code::GET), |b| {
            b.option_str(OptionNumber::URI_PATH, "hello")?;
            Ok(())
        })
        .unwrap();
    n.run_for(1_000);
    assert_eq!(n.response(id).map(|r| r.0), Some(Code::CONTENT));
    let mut ping = [0u8; 8];
    let len = MessageBuilder::new(&mut ping, MessageType::Con, Code::EMPTY, 77, &[])
        .unwrap()
        .finish();
    let mut out = [0u8; 64];
    assert_eq!(
        n.sl.incoming(n.now, CLIENT, &ping[..len], &mut out),
        Incoming::Plain
    );
}

#[test]
fn malformed_oscore_option_gets_4_02_and_non_requests_get_non_replies() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    let mut out = [0u8; 4096];
    // Reserved flag bit set (RFC 8613 §6.1): "Failed to decode COSE" 4.02, as an ACK to
    // a CON request.
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, 0x1234, &[9]).unwrap();
    b.option(OptionNumber::OSCORE, &[0x29, 0x01]).unwrap();
    b.payload(&[0u8; 12]).unwrap();
    let len = b.finish();
    let r = n.sl.incoming(n.now, CLIENT, &buf[..len], &mut out);
    let Incoming::Reply { len: rl, error } = r else {
        panic!("{r:?}")
    };
    assert!(matches!(error, UnprotectError::Option(_)));
    let m = Message::parse(&out[..rl]).unwrap();
    assert_eq!(
        (m.code(), m.ty(), m.message_id()),
        (Code::BAD_OPTION, MessageType::Ack, 0x1234)
    );
    assert_eq!(m.token(), &[9]);
    assert_eq!(m.payload(), b"Failed to decode COSE");

    // A NON request with an unknown kid: a NON 4.01 with a Message ID of its own.
    let mut b = MessageBuilder::new(&mut buf, MessageType::Non, Code::POST, 0x4321, &[7]).unwrap();
    b.option(OptionNumber::OSCORE, &[0x09, 0x05, 0x63]).unwrap();
    b.payload(&[0u8; 12]).unwrap();
    let len = b.finish();
    let r = n.sl.incoming(n.now, CLIENT, &buf[..len], &mut out);
    let Incoming::Reply { len: rl, error } = r else {
        panic!("{r:?}")
    };
    assert_eq!(error, UnprotectError::ContextNotFound);
    let m = Message::parse(&out[..rl]).unwrap();
    assert_eq!(
        (m.code(), m.ty(), m.token()),
        (Code::UNAUTHORIZED, MessageType::Non, &[7][..])
    );
    assert_ne!(m.message_id(), 0x4321);

    // A request without kid cannot be attributed: 4.02.
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, 1, &[]).unwrap();
    b.option(OptionNumber::OSCORE, &[0x01, 0x05]).unwrap();
    b.payload(&[0u8; 12]).unwrap();
    let len = b.finish();
    let r = n.sl.incoming(n.now, CLIENT, &buf[..len], &mut out);
    assert!(
        matches!(
            r,
            Incoming::Reply {
                error: UnprotectError::Fields,
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(state.calls.get(), 0);
}

#[test]
fn responses_that_fail_verification_are_dropped_and_never_delivered() {
    let state = Rc::new(State::default());
    let mut n = Net::new(server(state.clone()));
    // Hold back the server's genuine response.
    n.lose = Box::new(|w| w.from == SERVER);
    let id = n.get("hello");
    n.run_for(100);
    let genuine = n.sent_by(SERVER)[0].clone();
    let mut out = [0u8; 4096];
    // Its tag altered: dropped (§8.4 step 9), nothing delivered.
    let mut forged = genuine.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let r = n.cl.incoming(n.now, SERVER, &forged, &mut out);
    assert_eq!(r, Incoming::Drop(UnprotectError::DecryptionFailed));
    // Another token (a request never sent under OSCORE): no binding.
    let mut other = genuine.clone();
    other[4] ^= 0xff;
    let r = n.cl.incoming(n.now, SERVER, &other, &mut out);
    assert_eq!(r, Incoming::Drop(UnprotectError::NoBinding));
    assert!(n.response(id).is_none());
    // The genuine one still verifies and completes the exchange.
    n.lose = Box::new(|_| false);
    n.put(SERVER, CLIENT, genuine.clone());
    n.run_for(100);
    assert_eq!(n.response(id).map(|r| r.0), Some(Code::CONTENT));
    // Replayed with another Message ID, the single response per request is not taken
    // twice (it reused the request nonce; §7.4.1).
    let mut replay = genuine;
    replay[2] ^= 0x10;
    let r = n.cl.incoming(n.now, SERVER, &replay, &mut out);
    assert_eq!(
        r,
        Incoming::Drop(UnprotectError::Replay(ReplayError::Replayed))
    );
}

/// A seeded xorshift generator for loss and duplication decisions.
fn chance(seed: u64, per_mille: u64) -> impl FnMut(&Wire) -> bool {
    let mut x = seed | 1;
    move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % 1000 < per_mille
    }
}

/// On a lossy, duplicating link, the replay protection never rejects a genuine
/// retransmission or duplicate, and duplicates never run a handler twice: every request
/// ends in exactly one response or timeout, and the handler runs at most once per request.
#[test]
fn lossy_duplicating_link_no_false_replays_no_double_execution() {
    for seed in 1..=25u64 {
        let state = Rc::new(State::default());
        let mut n = Net::new(server(state.clone()));
        n.lose = Box::new(chance(seed * 7919, 150));
        n.duplicate = Box::new(chance(seed * 104_729, 150));
        let mut ids = Vec::new();
        for _ in 0..15 {
            ids.push(n.get("hello"));
            n.run_for(60_000);
        }
        for id in &ids {
            let outcomes = n
                .events
                .iter()
                .filter(|e| match e {
                    Ev::Response { id: i, code, .. } => {
                        assert_eq!(*code, Code::CONTENT, "seed {seed}");
                        i == id
                    }
                    Ev::Other(text) => text.contains(&format!("{id:?}")),
                    _ => false,
                })
                .count();
            assert_eq!(outcomes, 1, "seed {seed}: {id:?} {:?}", n.events);
        }
        let answered = ids.iter().filter(|id| n.response(**id).is_some()).count() as u32;
        assert!(
            answered >= 13,
            "seed {seed}: only {answered} of 15 answered"
        );
        assert!(
            state.calls.get() >= answered && state.calls.get() <= 15,
            "seed {seed}"
        );
        for r in n.server_results.iter().chain(&n.client_results) {
            assert!(
                matches!(r, Incoming::Inner { .. }),
                "seed {seed}: {r:?} (a genuine datagram was rejected)"
            );
        }
    }
}

#[test]
fn removed_context_takes_its_bindings_along() {
    let mut cl: Layer<u32, 2, 8> = Layer::new(100);
    let mut sl: Layer<u32, 2, 8> = Layer::new(200);
    let c = cl
        .add_context(SecurityContext::derive(&params(SECRET, b"\x01", b"\x02")).unwrap())
        .unwrap();
    let s_params = params(SECRET, b"\x02", b"\x01");
    let s = sl
        .add_context(SecurityContext::derive(&s_params).unwrap())
        .unwrap();
    for l in [&mut cl, &mut sl] {
        while let Some((id, bound)) = l.poll_persist() {
            l.persisted(id, bound);
        }
    }
    let now = Instant::from_millis(1_000);
    let mut buf = [0u8; 128];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 7, b"tk").unwrap();
    b.option_str(OptionNumber::URI_PATH, "x").unwrap();
    let n = b.finish();
    let mut wire = [0u8; 256];
    let w = cl.outgoing(now, SERVER, c, &buf[..n], &mut wire).unwrap();
    let mut inner = [0u8; 256];
    assert!(matches!(
        sl.incoming(now, CLIENT, &wire[..w], &mut inner),
        Incoming::Inner { context, .. } if context == s
    ));
    let mut resp = [0u8; 64];
    let r = MessageBuilder::new(&mut resp, MessageType::Ack, Code::CONTENT, 7, b"tk")
        .unwrap()
        .finish();
    let mut out = [0u8; 256];
    // Before removal the response is protected with the request's binding.
    assert!(sl.outgoing(now, CLIENT, s, &resp[..r], &mut out).is_ok());
    assert!(sl.remove_context(s).is_some());
    assert!(sl.context(s).is_none());
    assert!(sl.outgoing(now, CLIENT, s, &resp[..r], &mut out).is_err());
    // A new context in the freed slot: the old request's binding is gone with the old
    // context, so the answer to it is not protected under the new one.
    let again = sl
        .add_context(SecurityContext::derive(&s_params).unwrap())
        .unwrap();
    assert_eq!(again, s, "the slot is reused");
    assert!(sl
        .outgoing(now, CLIENT, again, &resp[..r], &mut out)
        .is_err());
    assert!(sl.remove_context(ContextId(1)).is_none());
}
