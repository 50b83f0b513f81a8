//! EDHOC over CoAP (RFC 9528 Appendix A.2) and the combined request (RFC 9668) between
//! two endpoints, each behind an OSCORE layer, on an in-memory network with a virtual
//! clock: the plain and the combined flow, lost and duplicated EDHOC messages, a
//! Responder restart mid-handshake, replays of message_1 and message_3, a full table.

mod edhoc_common;

use coap_core::edhoc::combined::{self, Outcome};
use coap_core::edhoc::initiator::{Established as InitEst, SUITES_I};
use coap_core::edhoc::transport::{parse_response, wrap_combined, write_request, EdhocResource};
use coap_core::edhoc::wire::{
    parse_error, write_continue_request, write_message_1_request, ErrCode,
};
use coap_core::edhoc::{
    ignore_ead, refuse_critical_ead, ConnId, Credential, Error, Initiator, Responder, RustCrypto,
    Transfer,
};
use coap_core::oscore::{ContextId, Incoming, Layer, Secured, Security};
use coap_core::{
    Code, Config, Endpoint, Event, IncomingRequest, Instant, Message, NoServer, OptionNumber,
    Outcome as Handled, RequestId, RequestParams, Resource, ResponseWriter, Route, Router,
};
use edhoc_common::*;

type Peer = Secured<u32>;
const CLIENT: u32 = 1;
const SERVER: u32 = 2;

#[derive(Clone, Debug)]
struct Wire {
    at: Instant,
    from: u32,
    bytes: Vec<u8>,
}

/// Answers only OSCORE-protected requests.
struct Hello;
impl Resource<Peer> for Hello {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Handled {
        if matches!(req.peer().security, Security::Oscore(_)) {
            resp.respond(Code::CONTENT, None, b"hello").unwrap();
        } else {
            resp.respond(Code::UNAUTHORIZED, None, b"").unwrap();
        }
        Handled::Respond
    }
}

/// Drops the datagrams (sender, bytes) for which it returns true.
type LossFn = Box<dyn FnMut(u32, &[u8]) -> bool>;

struct Net {
    now: Instant,
    client: Endpoint<Peer, 8>,
    server: Endpoint<Peer, 8>,
    cl: Layer<u32, 4, 8>,
    sl: Layer<u32, 4, 8>,
    crypto: RustCrypto<TestRng>,
    responder: Responder<'static, RustCrypto<TestRng>, 2>,
    /// The combined request's message_3 and the Message ID of the request that carries it.
    combined: Option<(Vec<u8>, Option<u16>)>,
    to_server: Vec<Wire>,
    to_client: Vec<Wire>,
    sent_by_client: Vec<Vec<u8>>,
    sent_by_server: Vec<Vec<u8>>,
    responses: Vec<(RequestId, Code, Vec<u8>, Security)>,
    lose: LossFn,
    duplicate: bool,
    client_id: coap_core::edhoc::Identity,
    server_cred: Credential,
    last_message_3: Vec<u8>,
    /// An unprotected EDHOC error that answered the combined request (RFC 9668 §3.3.1).
    combined_error: Option<(Code, Vec<u8>)>,
}

fn ids() -> (coap_core::edhoc::Identity, coap_core::edhoc::Identity) {
    (
        generated_identity(11, "client", 0x0a, Transfer::ByKid),
        generated_identity(12, "server", 0x0b, Transfer::ByValue),
    )
}

fn new_responder(
    seed: u64,
    server: coap_core::edhoc::Identity,
    trusted: &'static [Credential],
) -> Responder<'static, RustCrypto<TestRng>, 2> {
    Responder::new(crypto(seed), server, trusted)
}

impl Net {
    fn new() -> Net {
        let (client_id, server_id) = ids();
        let trusted: &'static [Credential] = Box::leak(Box::new([client_id.credential]));
        Net {
            now: Instant::from_millis(1_000),
            client: Endpoint::new(Config::default(), 11),
            server: Endpoint::new(Config::default(), 22),
            cl: Layer::new(100),
            sl: Layer::new(200),
            crypto: crypto(5),
            responder: new_responder(6, server_id, trusted),
            combined: None,
            to_server: Vec::new(),
            to_client: Vec::new(),
            sent_by_client: Vec::new(),
            sent_by_server: Vec::new(),
            responses: Vec::new(),
            lose: Box::new(|_, _| false),
            duplicate: false,
            client_id,
            server_cred: server_id.credential,
            last_message_3: Vec::new(),
            combined_error: None,
        }
    }

    /// The responder forgets everything (a reboot between message_2 and message_3).
    fn restart_server(&mut self) {
        let (_, server_id) = ids();
        let trusted: &'static [Credential] = Box::leak(Box::new([self.client_id.credential]));
        self.responder = new_responder(66, server_id, trusted);
        self.server = Endpoint::new(Config::default(), 23);
        self.sl = Layer::new(201);
    }

    fn server_contexts(&self) -> usize {
        (0..4)
            .filter(|i| self.sl.context(ContextId(*i)).is_some())
            .count()
    }

    fn put(&mut self, from: u32, bytes: Vec<u8>) {
        if from == CLIENT {
            self.sent_by_client.push(bytes.clone());
        } else {
            self.sent_by_server.push(bytes.clone());
        }
        if (self.lose)(from, &bytes) {
            return;
        }
        let queue = if from == CLIENT {
            &mut self.to_server
        } else {
            &mut self.to_client
        };
        if self.duplicate {
            queue.push(Wire {
                at: self.now.add_millis(25),
                from,
                bytes: bytes.clone(),
            });
        }
        queue.push(Wire {
            at: self.now.add_millis(5),
            from,
            bytes,
        });
    }

    /// Sequence number reservations "written to storage" at once (RFC 8613 Appendix B.1.1).
    fn persist(&mut self) {
        for layer in [&mut self.cl, &mut self.sl] {
            while let Some((c, bound)) = layer.poll_persist() {
                layer.persisted(c, bound);
            }
        }
    }

    fn flush(&mut self) {
        self.persist();
        let mut buf = [0u8; 1024];
        let mut out = [0u8; 1024];
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let bytes = match t.peer.security {
                Security::Oscore(c) => {
                    let n = self
                        .cl
                        .outgoing(self.now, t.peer.addr, c, &buf[..t.len], &mut out)
                        .unwrap();
                    let mid = Message::parse(&out[..n]).unwrap().message_id();
                    match &mut self.combined {
                        // RFC 9668 §3.2.1: the first OSCORE request (and its retransmissions)
                        // carries message_3.
                        Some((m3, first)) if first.is_none_or(|f| f == mid) => {
                            *first = Some(mid);
                            let mut wrapped = [0u8; 1024];
                            let w = wrap_combined(&out[..n], m3, &mut wrapped).unwrap();
                            wrapped[..w].to_vec()
                        }
                        _ => out[..n].to_vec(),
                    }
                }
                _ => buf[..t.len].to_vec(),
            };
            self.put(CLIENT, bytes);
        }
        self.persist();
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let bytes = match t.peer.security {
                Security::Oscore(c) => {
                    let n = self
                        .sl
                        .outgoing(self.now, t.peer.addr, c, &buf[..t.len], &mut out)
                        .unwrap();
                    out[..n].to_vec()
                }
                _ => buf[..t.len].to_vec(),
            };
            self.put(SERVER, bytes);
        }
        while let Some(ev) = self.client.poll_event() {
            if let Event::Response {
                id, peer, message, ..
            } = ev
            {
                self.responses.push((
                    id,
                    message.code(),
                    message.payload().to_vec(),
                    peer.security,
                ));
            }
        }
    }

    fn deliver_to_server(&mut self, w: &Wire) {
        let mut scratch = [0u8; 1024];
        let mut out = [0u8; 1024];
        let r = match combined::incoming(
            &mut self.responder,
            &mut self.sl,
            self.now,
            w.from,
            &w.bytes,
            &mut scratch,
            &mut out,
        ) {
            Outcome::NotCombined => self.sl.incoming(self.now, w.from, &w.bytes, &mut out),
            Outcome::Oscore { incoming, .. } => incoming,
            Outcome::Reply { len, .. } => return self.put(SERVER, out[..len].to_vec()),
            Outcome::Drop(_) => return,
        };
        let (bytes, security) = match r {
            Incoming::Plain => (&w.bytes[..], Security::Plain),
            Incoming::Inner { len, context } => (&out[..len], Security::Oscore(context)),
            Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                return self.put(SERVER, out[..len].to_vec())
            }
            Incoming::Drop(_) => return,
        };
        let in_use: Vec<Vec<u8>> = (0..4)
            .filter_map(|i| {
                self.sl
                    .context(ContextId(i))
                    .map(|c| c.recipient_id().to_vec())
            })
            .collect();
        let taken = move |id: &[u8]| in_use.iter().any(|i| i == id);
        let mut edhoc: EdhocResource<'_, '_, _, 2, 2> =
            EdhocResource::new(&mut self.responder, &taken);
        let mut hello = Hello;
        {
            let mut routes: [Route<'_, &mut dyn Resource<Peer>>; 2] = [
                Route::new("/.well-known/edhoc", &mut edhoc),
                Route::new("/hello", &mut hello),
            ];
            let mut router = Router::new(&mut routes[..]);
            let peer = Secured {
                addr: w.from,
                security,
            };
            self.server
                .handle_datagram(self.now, peer, bytes, &mut router);
        }
        while let Some(est) = edhoc.poll_established() {
            self.sl.add_context(est.context).unwrap();
        }
    }

    fn deliver_to_client(&mut self, w: &Wire) {
        let mut out = [0u8; 1024];
        let (bytes, security) = match self.cl.incoming(self.now, w.from, &w.bytes, &mut out) {
            Incoming::Plain => {
                // The answer to a combined request may be a plain EDHOC error: the
                // endpoint would not match it to the OSCORE request, so look here.
                let m = Message::parse(&w.bytes).unwrap();
                if let Some((_, Some(mid))) = &self.combined {
                    if m.message_id() == *mid && m.content_format() == Some(64) {
                        self.combined_error = Some((m.code(), m.payload().to_vec()));
                        return;
                    }
                }
                (&w.bytes[..], Security::Plain)
            }
            Incoming::Inner { len, context } => (&out[..len], Security::Oscore(context)),
            _ => return,
        };
        self.client.handle_datagram(
            self.now,
            Secured {
                addr: w.from,
                security,
            },
            bytes,
            &mut NoServer,
        );
    }

    /// Runs until no datagram is in flight and no request waits, or `ms` of virtual time
    /// passed.
    fn run_for(&mut self, ms: u64) {
        self.run(ms, false)
    }

    /// Lets `ms` of virtual time pass, handling what falls due.
    fn wait(&mut self, ms: u64) {
        self.run(ms, true)
    }

    /// Bounded in steps.
    fn run(&mut self, ms: u64, full: bool) {
        let until = self.now.add_millis(ms);
        for _ in 0..10_000 {
            self.flush();
            let next = [
                self.to_server.iter().map(|w| w.at).min(),
                self.to_client.iter().map(|w| w.at).min(),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let busy = !self.to_server.is_empty()
                || !self.to_client.is_empty()
                || self.client.slots_in_use() > 0;
            let Some(next) = next.filter(|n| *n <= until && (full || busy)) else {
                if full {
                    self.now = self.now.max(until);
                }
                return;
            };
            self.now = self.now.max(next);
            for q in [true, false] {
                let queue = if q {
                    &mut self.to_server
                } else {
                    &mut self.to_client
                };
                queue.sort_by_key(|w| w.at);
                let due: Vec<Wire> = queue.iter().filter(|w| w.at <= self.now).cloned().collect();
                queue.retain(|w| w.at > self.now);
                for w in due {
                    if q {
                        self.deliver_to_server(&w)
                    } else {
                        self.deliver_to_client(&w)
                    }
                }
            }
            if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
                self.client.handle_timeout(self.now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
            }
        }
        panic!("no progress within 10000 steps");
    }

    fn post_edhoc(&mut self, payload: &[u8]) -> RequestId {
        let peer = Secured {
            addr: SERVER,
            security: Security::Plain,
        };
        self.client
            .request(self.now, peer, RequestParams::con(Code::POST), |b| {
                write_request(b, payload)
            })
            .unwrap()
    }

    fn response(&self, id: RequestId) -> (Code, Vec<u8>, Security) {
        let (_, c, p, s) = self
            .responses
            .iter()
            .find(|r| r.0 == id)
            .unwrap_or_else(|| panic!("no response to {id:?}"));
        (*c, p.clone(), *s)
    }

    fn edhoc_result(&self, id: RequestId) -> Result<Vec<u8>, Error> {
        let (code, payload, _) = self.response(id);
        let mut buf = [0u8; 256];
        let mut b =
            coap_core::MessageBuilder::new(&mut buf, coap_core::MessageType::Ack, code, 0, &[])
                .unwrap();
        b.payload(&payload).unwrap();
        let n = b.finish();
        parse_response(&Message::parse(&buf[..n]).unwrap()).map(|m| m.to_vec())
    }

    /// message_1 → message_2 → message_3 computed; returns the Initiator's session.
    fn handshake_to_message_3(&mut self) -> Result<InitEst, Error> {
        let mut m1 = [0u8; 256];
        let c_i = ConnId::from_slice(&[0x05]).unwrap();
        let (initiator, n) = Initiator::start(
            &mut self.crypto,
            self.client_id,
            c_i,
            SUITES_I,
            None,
            &mut m1,
        )?;
        let mut payload = [0u8; 300];
        let len = write_message_1_request(&m1[..n], &mut payload).unwrap();
        let id = self.post_edhoc(&payload[..len]);
        self.run_for(60_000);
        let m2 = self.edhoc_result(id)?;
        let trusted = [self.server_cred];
        let mut m3 = [0u8; 256];
        let est = initiator.message_2(&mut self.crypto, &trusted, &m2, ignore_ead, &mut m3)?;
        self.last_message_3 = m3[..est.message_3_len].to_vec();
        Ok(est)
    }

    fn get_hello(&mut self, ctx: ContextId) -> RequestId {
        let peer = Secured {
            addr: SERVER,
            security: Security::Oscore(ctx),
        };
        self.client
            .request(self.now, peer, RequestParams::con(Code::GET), |b| {
                b.option_str(OptionNumber::URI_PATH, "hello")?;
                Ok(())
            })
            .unwrap()
    }
}

/// Plain flow: message_3 in its own POST, then an OSCORE GET.
fn plain_flow(net: &mut Net) -> Result<RequestId, Error> {
    let est = net.handshake_to_message_3()?;
    let mut payload = [0u8; 300];
    let len = write_continue_request(&est.c_r, &net.last_message_3.clone(), &mut payload).unwrap();
    let id = net.post_edhoc(&payload[..len]);
    net.run_for(60_000);
    // The 2.04 carries message_4 (RFC 9528 §5.5), which confirms the key.
    let m4 = net.edhoc_result(id)?;
    assert!(!m4.is_empty());
    est.awaiting
        .message_4(&mut net.crypto, &m4, refuse_critical_ead)?;
    let ctx = net.cl.add_context(est.context).unwrap();
    let get = net.get_hello(ctx);
    net.run_for(60_000);
    Ok(get)
}

/// Combined flow: message_3 rides on the first OSCORE request (RFC 9668).
fn combined_flow(net: &mut Net) -> Result<RequestId, Error> {
    let est = net.handshake_to_message_3()?;
    let ctx = net.cl.add_context(est.context).unwrap();
    net.combined = Some((net.last_message_3.clone(), None));
    let get = net.get_hello(ctx);
    net.run_for(60_000);
    Ok(get)
}

#[test]
fn plain_flow_establishes_oscore() {
    let mut net = Net::new();
    let get = plain_flow(&mut net).unwrap();
    let (code, payload, security) = net.response(get);
    assert_eq!((code, &payload[..]), (Code::CONTENT, &b"hello"[..]));
    assert!(matches!(security, Security::Oscore(_)));
    assert_eq!(net.server_contexts(), 1);
    assert_eq!(net.responder.in_progress(), 0);
    // Three requests: message_1, message_3, the OSCORE GET.
    assert_eq!(net.sent_by_client.len(), 3);
}

#[test]
fn combined_flow_saves_a_round_trip() {
    let mut net = Net::new();
    let get = combined_flow(&mut net).unwrap();
    let (code, payload, _) = net.response(get);
    assert_eq!((code, &payload[..]), (Code::CONTENT, &b"hello"[..]));
    assert_eq!(
        net.sent_by_client.len(),
        2,
        "message_1, then message_3 + GET in one request"
    );
    let combined = Message::parse(&net.sent_by_client[1]).unwrap();
    assert!(combined
        .option(coap_core::edhoc::transport::EDHOC_OPTION)
        .is_some());
    assert!(combined.option(OptionNumber::OSCORE).is_some());
    assert_eq!(net.server_contexts(), 1);
}

#[test]
fn lost_message_2_and_lost_combined_response_are_retransmitted() {
    let mut net = Net::new();
    let mut losses = 0;
    // Lose the first two server datagrams: message_2 and the response to the combined
    // request. CoAP retransmits the requests; the server's duplicate detection answers
    // them with the same response, so no second handshake starts.
    net.lose = Box::new(move |from, _| {
        if from == SERVER && losses < 2 {
            losses += 1;
            return true;
        }
        false
    });
    let get = combined_flow(&mut net).unwrap();
    assert_eq!(net.response(get).1, b"hello");
    assert!(
        net.sent_by_client.len() >= 4,
        "both requests were retransmitted"
    );
    assert_eq!(net.server_contexts(), 1);
    assert_eq!(net.responder.in_progress(), 0);
}

#[test]
fn duplicated_messages_make_one_session() {
    for flow in [
        plain_flow as fn(&mut Net) -> Result<RequestId, Error>,
        combined_flow,
    ] {
        let mut net = Net::new();
        net.duplicate = true;
        let get = flow(&mut net).unwrap();
        assert_eq!(net.response(get).1, b"hello");
        assert_eq!(net.server_contexts(), 1);
        assert_eq!(net.responder.in_progress(), 0);
    }
}

#[test]
fn responder_restart_mid_handshake_is_an_edhoc_error() {
    // Plain flow: message_3 after the restart finds no handshake: 4.00 with ERR_CODE 1.
    let mut net = Net::new();
    let est = net.handshake_to_message_3().unwrap();
    net.restart_server();
    let mut payload = [0u8; 300];
    let len = write_continue_request(&est.c_r, &net.last_message_3.clone(), &mut payload).unwrap();
    let id = net.post_edhoc(&payload[..len]);
    net.run_for(60_000);
    let (code, body, _) = net.response(id);
    assert_eq!(code, Code::BAD_REQUEST);
    assert_eq!(parse_error(&body).unwrap().code, ErrCode::Unspecified);
    assert_eq!(
        net.edhoc_result(id).unwrap_err(),
        Error::Peer(ErrCode::Unspecified)
    );
    assert_eq!(net.server_contexts(), 0);

    // Combined flow: the same, as the answer to the combined request.
    let mut net = Net::new();
    let est = net.handshake_to_message_3().unwrap();
    net.restart_server();
    let ctx = net.cl.add_context(est.context).unwrap();
    net.combined = Some((net.last_message_3.clone(), None));
    let _get = net.get_hello(ctx);
    net.run_for(60_000);
    let (code, body) = net
        .combined_error
        .clone()
        .expect("an EDHOC error answers the combined request");
    assert_eq!(code, Code::BAD_REQUEST);
    assert_eq!(parse_error(&body).unwrap().code, ErrCode::Unspecified);
    assert_eq!(net.server_contexts(), 0);
}

#[test]
fn replayed_message_1_takes_no_second_slot_and_expires() {
    let mut net = Net::new();
    let _ = net.handshake_to_message_3().unwrap();
    assert_eq!(net.responder.in_progress(), 1);
    let message_1_request = net.sent_by_client[0].clone();
    // Replayed after the server's duplicate detection forgot it (EXCHANGE_LIFETIME).
    for _ in 0..3 {
        net.wait(300_000);
        net.to_server.push(Wire {
            at: net.now,
            from: CLIENT,
            bytes: message_1_request.clone(),
        });
        net.run_for(10);
        assert!(
            net.responder.in_progress() <= 1,
            "a replay replaces its handshake"
        );
    }
    // Nobody can finish it: it expires.
    net.wait(60_000);
    net.responder.expire(net.now);
    assert_eq!(net.responder.in_progress(), 0);
}

#[test]
fn replayed_message_3_is_refused_and_adds_no_context() {
    let mut net = Net::new();
    let get = plain_flow(&mut net).unwrap();
    assert_eq!(net.response(get).1, b"hello");
    let message_3_request = net.sent_by_client[1].clone();
    let sent_before = net.sent_by_server.len();
    net.wait(300_000);
    net.to_server.push(Wire {
        at: net.now,
        from: CLIENT,
        bytes: message_3_request,
    });
    net.run_for(10);
    let reply = Message::parse(&net.sent_by_server[sent_before]).unwrap();
    assert_eq!(reply.code(), Code::BAD_REQUEST);
    assert_eq!(
        parse_error(reply.payload()).unwrap().code,
        ErrCode::Unspecified
    );
    assert_eq!(net.server_contexts(), 1);

    // The combined request replayed later: the layer's replay window refuses it.
    let mut net = Net::new();
    let get = combined_flow(&mut net).unwrap();
    assert_eq!(net.response(get).1, b"hello");
    let combined_request = net.sent_by_client[1].clone();
    let sent_before = net.sent_by_server.len();
    net.wait(300_000);
    net.to_server.push(Wire {
        at: net.now,
        from: CLIENT,
        bytes: combined_request,
    });
    net.run_for(10);
    let reply = Message::parse(&net.sent_by_server[sent_before]).unwrap();
    assert_eq!(
        reply.code(),
        Code::UNAUTHORIZED,
        "OSCORE replay protection (RFC 8613 §7.4)"
    );
    assert_eq!(net.server_contexts(), 1);
}

#[test]
fn full_table_answers_service_unavailable() {
    let mut net = Net::new();
    for _ in 0..2 {
        let _ = net.handshake_to_message_3().unwrap();
    }
    assert_eq!(net.responder.in_progress(), 2);
    let e = net.handshake_to_message_3().unwrap_err();
    assert_eq!(e, Error::Peer(ErrCode::Unspecified));
    let last = Message::parse(net.sent_by_server.last().unwrap()).unwrap();
    assert_eq!(last.code(), Code::SERVICE_UNAVAILABLE);
}

#[test]
fn untrusted_client_gets_unknown_credential() {
    let mut net = Net::new();
    net.client_id = generated_identity(99, "intruder", 0x0a, Transfer::ByKid);
    let est = net.handshake_to_message_3().unwrap();
    let mut payload = [0u8; 300];
    let len = write_continue_request(&est.c_r, &net.last_message_3.clone(), &mut payload).unwrap();
    let id = net.post_edhoc(&payload[..len]);
    net.run_for(60_000);
    // Same kid as the trusted client, other key: MAC_3 fails (RFC 9528 §5.4.3).
    assert_eq!(
        net.edhoc_result(id).unwrap_err(),
        Error::Peer(ErrCode::Unspecified)
    );
    assert_eq!(net.server_contexts(), 0);
    assert_eq!(net.responder.in_progress(), 0);
}

#[test]
fn edhoc_option_without_oscore_kid_is_answered_with_an_edhoc_error() {
    // RFC 9668 §3.3.1: the combined request names its handshake by the kid of the OSCORE
    // option (C_R). A request with the EDHOC option but no OSCORE option cannot be
    // processed: 4.00 with an EDHOC error message (ERR_CODE 1), unprotected,
    // application/edhoc+cbor-seq, and no context or handshake state comes of it.
    let mut net = Net::new();
    let mut buf = [0u8; 64];
    let mut b = coap_core::MessageBuilder::new(
        &mut buf,
        coap_core::MessageType::Con,
        Code::GET,
        0x1234,
        &[0x77],
    )
    .unwrap();
    b.option(coap_core::edhoc::transport::EDHOC_OPTION, &[])
        .unwrap();
    b.payload(&[0x41, 0x00]).unwrap();
    let n = b.finish();
    let (mut scratch, mut out) = ([0u8; 256], [0u8; 256]);
    let outcome = combined::incoming(
        &mut net.responder,
        &mut net.sl,
        net.now,
        CLIENT,
        &buf[..n],
        &mut scratch,
        &mut out,
    );
    let len = match outcome {
        Outcome::Reply { len, error } => {
            assert_eq!(error, Error::Malformed);
            len
        }
        other => panic!("{other:?}"),
    };
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!(reply.ty(), coap_core::MessageType::Ack);
    assert_eq!((reply.message_id(), reply.token()), (0x1234, &[0x77][..]));
    assert_eq!(reply.code(), Code::BAD_REQUEST);
    assert_eq!(
        reply.uint_option(OptionNumber::CONTENT_FORMAT),
        Some(u32::from(coap_core::edhoc::wire::EDHOC_CBOR_SEQ.0))
    );
    assert!(reply.option(OptionNumber::OSCORE).is_none());
    assert_eq!(
        parse_error(reply.payload()).unwrap().code,
        ErrCode::Unspecified
    );
    assert_eq!(net.server_contexts(), 0);
    assert_eq!(net.responder.in_progress(), 0);
}
