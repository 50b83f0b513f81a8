//! EDHOC (RFC 9528) + OSCORE interop with aiocoap 0.4.17 (lakers-python), with aiocoap's
//! `edhoc-oscore` credentials (EDN files, COSE key files):
//! - our Initiator (coap-core's sans-IO EDHOC, over a loopback UDP socket) →
//!   `aiocoap-fileserver --credentials`: the plain flow (message_3 in its own POST) and the
//!   combined request (RFC 9668), each followed by an OSCORE-protected GET of a file;
//! - `aiocoap-client --credentials` → our Responder (coap-core's endpoint, router, EDHOC
//!   resource and OSCORE layer on a loopback socket): with and without the combined request;
//! - a wrong peer credential fails on both sides with a clear error.

#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use coap_core::edhoc::combined::{self, Outcome};
use coap_core::edhoc::initiator::SUITES_I;
use coap_core::edhoc::transport::{parse_response, wrap_combined, write_request, EdhocResource};
use coap_core::edhoc::wire::{write_continue_request, write_message_1_request};
use coap_core::edhoc::{
    ignore_ead, refuse_critical_ead, ConnId, Credential, Error, Identity, Initiator, Responder,
    RustCrypto, Transfer,
};
use coap_core::oscore::option::PartialIv;
use coap_core::oscore::protect::{protect_request, unprotect_response};
use coap_core::oscore::{ContextId, Incoming, Layer, Secured, Security};
use coap_core::{
    Code, Config, Endpoint, IncomingRequest, Instant, Message, MessageBuilder, MessageType,
    OptionNumber, Outcome as Handled, Resource, ResponseWriter, Route, Router,
};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use support::{PeerServer, Scratch, BOUND};

/// The OS RNG (getrandom) as the `rand_core` 0.6 RNG lakers' backend takes.
struct OsRng;
impl rand_core::RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::fill(dest).expect("the OS RNG");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for OsRng {}

/// A P-256 key pair with its CCS, the way aiocoap-keygen writes them.
struct Party {
    d: [u8; 32],
    x: [u8; 32],
    y: [u8; 32],
    subject: &'static str,
    kid: u8,
}

impl Party {
    fn new(subject: &'static str, kid: u8) -> Party {
        let mut d = [0u8; 32];
        let sk = loop {
            getrandom::fill(&mut d).unwrap();
            if let Ok(sk) = p256::SecretKey::from_slice(&d) {
                break sk;
            }
        };
        let p = sk.public_key().to_encoded_point(false);
        Party {
            d,
            x: p.x().unwrap().as_slice().try_into().unwrap(),
            y: p.y().unwrap().as_slice().try_into().unwrap(),
            subject,
            kid,
        }
    }

    /// The CCS (RFC 9528 §3.5.2) in CBOR, deterministically encoded as aiocoap does.
    fn ccs(&self) -> Vec<u8> {
        let mut c = vec![0xa2, 0x02, 0x60 + self.subject.len() as u8];
        c.extend_from_slice(self.subject.as_bytes());
        c.extend_from_slice(&[
            0x08, 0xa1, 0x01, 0xa5, 0x01, 0x02, 0x02, 0x41, self.kid, 0x20, 0x01, 0x21, 0x58, 0x20,
        ]);
        c.extend_from_slice(&self.x);
        c.extend_from_slice(&[0x22, 0x58, 0x20]);
        c.extend_from_slice(&self.y);
        c
    }

    /// The same CCS in EDN, wrapped in {14: ..} as aiocoap's credentials take it.
    fn ccs_edn(&self) -> String {
        format!(
            "{{14: {{2: \"{}\", 8: {{1: {{1: 2, 2: h'{:02x}', -1: 1, -2: h'{}', -3: h'{}'}}}}}}}}",
            self.subject,
            self.kid,
            hex(&self.x),
            hex(&self.y)
        )
    }

    fn credential(&self) -> Credential {
        Credential::parse_ccs(&self.ccs()).unwrap()
    }

    fn identity(&self) -> Identity {
        Identity {
            private_key: self.d,
            credential: self.credential(),
            transfer: Transfer::ByKid,
        }
    }

    /// The private key as a COSE_Key file, written by the std glue (what `coap keygen`
    /// writes): aiocoap must load it.
    fn key_file(&self, path: &Path) -> String {
        let key = coap_tokio::glue::edhoc::EdhocKey::from_private(self.d).unwrap();
        key.write_new(path).unwrap();
        assert_eq!(fs::metadata(path).unwrap().permissions().mode() & 0o077, 0);
        // The glue's CCS is the one aiocoap derives from the key file.
        assert_eq!(
            key.ccs(Some(&[self.kid]), Some(self.subject)).cbor(),
            self.ccs()
        );
        path.display().to_string()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An aiocoap `edhoc-oscore` credential entry.
fn edhoc_entry(own: &Party, key_file: &str, peer: &Party, combined: Option<bool>) -> String {
    let combined = combined
        .map(|c| format!(", \"use_combined_edhoc\": {c}"))
        .unwrap_or_default();
    format!(
        "{{\"edhoc-oscore\": {{\"suite\": 2, \"method\": 3, \"own_cred_style\": \"by-key-id\", \"own_cred\": {}, \"private_key_file\": \"{key_file}\", \"peer_cred\": {}{combined}}}}}",
        own.ccs_edn(),
        peer.ccs_edn()
    )
}

/// One confirmable request over `sock`, retransmitted (bounded); returns the response
/// datagram (piggybacked or separate; a separate one is acknowledged).
fn exchange(sock: &UdpSocket, to: SocketAddr, request: &[u8]) -> Vec<u8> {
    let token = Message::parse(request).unwrap().token().to_vec();
    let mut buf = [0u8; 2048];
    for _ in 0..4 {
        sock.send_to(request, to).unwrap();
        let until = StdInstant::now() + Duration::from_secs(2);
        while StdInstant::now() < until {
            let Ok((n, _)) = sock.recv_from(&mut buf) else {
                break;
            };
            let Ok(m) = Message::parse(&buf[..n]) else {
                continue;
            };
            if m.ty() == MessageType::Con {
                let mut ack = [0u8; 4];
                let a = coap_core::message::write_empty(&mut ack, MessageType::Ack, m.message_id())
                    .unwrap();
                sock.send_to(&ack[..a], to).unwrap();
            }
            if m.code().is_response() && m.token() == token {
                return buf[..n].to_vec();
            }
        }
    }
    panic!("no response from {to}");
}

struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    mid: u16,
}

impl Client {
    fn request(&mut self, code: Code, build: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
        self.mid = self.mid.wrapping_add(1);
        let mut buf = [0u8; 1024];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::Con,
            code,
            self.mid,
            &self.mid.to_be_bytes(),
        )
        .unwrap();
        build(&mut b);
        let n = b.finish();
        buf[..n].to_vec()
    }

    fn edhoc_post(&mut self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let req = self.request(Code::POST, |b| write_request(b, payload).unwrap());
        let resp = exchange(&self.sock, self.server, &req);
        parse_response(&Message::parse(&resp).unwrap()).map(<[u8]>::to_vec)
    }

    /// EDHOC with the server, then a GET of `path` under the new OSCORE context; the
    /// combined request carries message_3 if `combined`.
    fn edhoc_then_get(
        &mut self,
        me: &Party,
        server: &Party,
        combined: bool,
        path: &str,
    ) -> Result<(Code, Vec<u8>), Error> {
        let mut crypto = RustCrypto::new(OsRng);
        let mut m1 = [0u8; 256];
        let c_i = ConnId::from_slice(&[0x05]).unwrap();
        let (init, n) = Initiator::start(&mut crypto, me.identity(), c_i, SUITES_I, None, &mut m1)?;
        let mut payload = [0u8; 300];
        let len = write_message_1_request(&m1[..n], &mut payload).unwrap();
        let m2 = self.edhoc_post(&payload[..len])?;
        let mut m3 = [0u8; 256];
        let est = init.message_2(
            &mut crypto,
            &[server.credential()],
            &m2,
            ignore_ead,
            &mut m3,
        )?;
        let m3 = &m3[..est.message_3_len];
        if !combined {
            let len = write_continue_request(&est.c_r, m3, &mut payload).unwrap();
            let m4 = self.edhoc_post(&payload[..len])?;
            // aiocoap answers message_3 with message_4 (RFC 9528 §5.5): key confirmation.
            assert!(!m4.is_empty(), "aiocoap sends message_4");
            est.awaiting
                .message_4(&mut crypto, &m4, refuse_critical_ead)?;
        }
        let plain = self.request(Code::GET, |b| {
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                b.option_str(OptionNumber::URI_PATH, seg).unwrap();
            }
        });
        let mut protected = [0u8; 1024];
        let (n, binding) = protect_request(
            &est.context,
            &plain,
            PartialIv::new(0).unwrap(),
            &mut protected,
        )
        .unwrap();
        let mut wrapped = [0u8; 1024];
        let datagram = if combined {
            let w = wrap_combined(&protected[..n], m3, &mut wrapped)?;
            &wrapped[..w]
        } else {
            &protected[..n]
        };
        let resp = exchange(&self.sock, self.server, datagram);
        let mut inner = [0u8; 1024];
        let v = unprotect_response(&est.context, &binding, &resp, &mut inner).map_err(|_| {
            // Not OSCORE: an EDHOC error answering the combined request (RFC 9668 §3.3.1).
            parse_response(&Message::parse(&resp).unwrap())
                .err()
                .unwrap_or(Error::Malformed)
        })?;
        let m = Message::parse(&inner[..v.len]).unwrap();
        Ok((m.code(), m.payload().to_vec()))
    }
}

fn client_to(server: SocketAddr) -> Client {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    Client {
        sock,
        server,
        mid: 0x4000,
    }
}

fn fileserver(dir: &Path, server: &Party, client: &Party) -> PeerServer {
    let aio = support::aiocoap().expect("aiocoap");
    let files = dir.join("files");
    fs::create_dir_all(&files).unwrap();
    fs::write(files.join("hello.txt"), b"hello over EDHOC").unwrap();
    let key = server.key_file(&dir.join("server.cosekey"));
    let fileserver = aio.python.with_file_name("aiocoap-fileserver");
    let entry = edhoc_entry(server, &key, client, None);
    let creds = dir.join("server.diag");
    PeerServer::start("aiocoap-fileserver --credentials (EDHOC)", |port| {
        // aiocoap finds its own EDHOC identity under the origin's pattern.
        fs::write(
            &creds,
            format!("{{\"coap://127.0.0.1:{port}/*\": {entry}}}"),
        )
        .unwrap();
        let mut cmd = Command::new(&fileserver);
        cmd.arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials")
            .arg(&creds)
            .arg(&files);
        cmd
    })
}

#[test]
fn our_initiator_against_aiocoap_fileserver() {
    if support::aiocoap().is_none() {
        return;
    }
    let dir = Scratch::new("edhoc-aiocoap-server");
    let (server, client) = (Party::new("server", 0x0b), Party::new("client", 0x0a));
    let mut peer = fileserver(dir.path(), &server, &client);
    for combined in [false, true] {
        let mut c = client_to(peer.addr);
        let (code, body) = c
            .edhoc_then_get(&client, &server, combined, "/hello.txt")
            .unwrap();
        assert_eq!(
            (code, &body[..]),
            (Code::CONTENT, &b"hello over EDHOC"[..]),
            "combined={combined}"
        );
    }
    // Wrong peer credential on our side: the server's MAC_2 does not verify with it.
    let impostor = Party::new("server", 0x0b);
    let mut c = client_to(peer.addr);
    assert_eq!(
        c.edhoc_then_get(&client, &impostor, false, "/hello.txt")
            .unwrap_err(),
        Error::Unauthenticated
    );
    // A client the server does not know: aiocoap refuses message_3 (an error response).
    let stranger = Party::new("client", 0x0a);
    let mut c = client_to(peer.addr);
    let e = c
        .edhoc_then_get(&stranger, &server, false, "/hello.txt")
        .unwrap_err();
    assert!(matches!(e, Error::Peer(_) | Error::Malformed), "{e:?}");
    peer.assert_running();
}

/// Answers OSCORE-protected GETs only.
struct Hello;
impl Resource<Secured<SocketAddr>> for Hello {
    fn get(
        &mut self,
        req: &IncomingRequest<'_, Secured<SocketAddr>>,
        resp: &mut ResponseWriter<'_>,
    ) -> Handled {
        let (code, body): (Code, &[u8]) = match req.peer().security {
            Security::Oscore(_) => (Code::CONTENT, b"hello from coap-core"),
            _ => (Code::UNAUTHORIZED, b""),
        };
        resp.respond(code, None, body).unwrap();
        Handled::Respond
    }
}

/// Our EDHOC + OSCORE server on a loopback socket, until `stop`; returns how many
/// sessions a combined request established.
fn serve(sock: UdpSocket, me: Identity, trusted: Credential, stop: Arc<AtomicBool>) -> usize {
    let mut combined_established = 0;
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let trusted = [trusted];
    let mut responder: Responder<'_, _, 4> = Responder::new(RustCrypto::new(OsRng), me, &trusted);
    let mut layer: Layer<SocketAddr, 4, 16> = Layer::new(7);
    let mut endpoint: Endpoint<Secured<SocketAddr>, 8> = Endpoint::new(Config::default(), 9);
    let start = StdInstant::now();
    let now = || Instant::from_millis(start.elapsed().as_millis() as u64);
    let (mut buf, mut scratch, mut out, mut tx, mut prot) = (
        [0u8; 2048],
        [0u8; 2048],
        [0u8; 2048],
        [0u8; 2048],
        [0u8; 2048],
    );
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let datagram = &buf[..n];
            let r = match combined::incoming(
                &mut responder,
                &mut layer,
                now(),
                from,
                datagram,
                &mut scratch,
                &mut out,
            ) {
                Outcome::NotCombined => layer.incoming(now(), from, datagram, &mut out),
                Outcome::Oscore {
                    incoming,
                    established,
                } => {
                    combined_established += usize::from(established.is_some());
                    incoming
                }
                Outcome::Reply { len, .. } => {
                    sock.send_to(&out[..len], from).unwrap();
                    continue;
                }
                Outcome::Drop(_) => continue,
            };
            let (bytes, security) = match r {
                Incoming::Plain => (datagram, Security::Plain),
                Incoming::Inner { len, context } => (&out[..len], Security::Oscore(context)),
                Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                    sock.send_to(&out[..len], from).unwrap();
                    continue;
                }
                Incoming::Drop(_) => continue,
            };
            let in_use: Vec<Vec<u8>> = (0..4)
                .filter_map(|i| {
                    layer
                        .context(ContextId(i))
                        .map(|c| c.recipient_id().to_vec())
                })
                .collect();
            let taken = move |id: &[u8]| in_use.iter().any(|i| i == id);
            let mut edhoc: EdhocResource<'_, '_, _, 4, 2> =
                EdhocResource::new(&mut responder, &taken);
            let mut hello = Hello;
            {
                let mut routes: [Route<'_, &mut dyn Resource<Secured<SocketAddr>>>; 2] = [
                    Route::new("/.well-known/edhoc", &mut edhoc),
                    Route::new("/hello", &mut hello),
                ];
                let mut router = Router::new(&mut routes[..]);
                endpoint.handle_datagram(
                    now(),
                    Secured {
                        addr: from,
                        security,
                    },
                    bytes,
                    &mut router,
                );
            }
            while let Some(est) = edhoc.poll_established() {
                // EDHOC contexts are fresh keys each time: nothing to persist first.
                let _ = layer.add_context(est.context);
            }
        }
        while let Some((c, bound)) = layer.poll_persist() {
            layer.persisted(c, bound);
        }
        while let Some(t) = endpoint.poll_transmit(now(), &mut tx) {
            let bytes = match t.peer.security {
                Security::Oscore(c) => {
                    match layer.outgoing(now(), t.peer.addr, c, &tx[..t.len], &mut prot) {
                        Ok(n) => &prot[..n],
                        Err(_) => continue,
                    }
                }
                _ => &tx[..t.len],
            };
            sock.send_to(bytes, t.peer.addr).unwrap();
            while let Some((c, bound)) = layer.poll_persist() {
                layer.persisted(c, bound);
            }
        }
        if endpoint.poll_timeout().is_some_and(|t| t <= now()) {
            endpoint.handle_timeout(now());
        }
    }
    combined_established
}

#[test]
fn aiocoap_client_against_our_responder() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = Scratch::new("edhoc-aiocoap-client");
    let (server, client) = (Party::new("server", 0x0b), Party::new("client", 0x0a));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (me, trusted, stop) = (server.identity(), client.credential(), stop.clone());
        std::thread::spawn(move || serve(sock, me, trusted, stop))
    };
    let key = client.key_file(&dir.path().join("client.cosekey"));
    let run = |peer: &Party, combined: bool| {
        let creds = dir.path().join(format!("client-{combined}.diag"));
        fs::write(
            &creds,
            format!(
                "{{\"coap://{addr}/*\": {}}}",
                edhoc_entry(&client, &key, peer, Some(combined))
            ),
        )
        .unwrap();
        let mut cmd = Command::new(&aio.client);
        cmd.arg("--credentials")
            .arg(&creds)
            .arg(format!("coap://{addr}/hello"));
        support::run("aiocoap-client --credentials (EDHOC)", cmd)
    };
    for combined in [false, true] {
        let r = run(&server, combined);
        assert!(
            r.status.success() && r.stdout.contains("hello from coap-core"),
            "combined={combined}: {}",
            r.show()
        );
    }
    // aiocoap with a wrong credential for us: MAC_2 fails on its side, it exits non-zero.
    let r = run(&Party::new("server", 0x0b), true);
    assert!(!r.status.success(), "{}", r.show());
    assert!(!r.stdout.contains("hello from coap-core"), "{}", r.show());
    assert!(
        r.stderr.contains("rror"),
        "a stated error, not a silent failure: {}",
        r.show()
    );
    stop.store(true, Ordering::Relaxed);
    // aiocoap used the combined request exactly when told to (RFC 9668).
    assert_eq!(thread.join().unwrap(), 1);
    let _ = BOUND;
}
