//! The ETSI CoAP plugtest test descriptions (TD_COAP_CORE_*, _BLOCK_*, _OBS_*, _LINK_*)
//! played against our plugtest server (`coap_tools::plugtest`) over loopback, by our
//! client (`coap_tokio::Client`) and, for the message-layer checks of a TD (message type,
//! Message ID, token, empty ACK), by a raw UDP socket speaking CoAP through
//! `coap_core::MessageBuilder`. Each test is named after its TD and checks the TD's
//! "check" and "verify" steps. Every wait is bounded by `support::BOUND`.

#[allow(dead_code)]
#[path = "interop/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "interop/wire.rs"]
mod wire;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use coap_core::{Block, Code, Message, MessageBuilder, MessageType, OptionNumber};
use coap_tokio::{Client, Config, Method, Response};
use coap_tools::plugtest::{self, PlugtestConfig};
use support::{InProcess, BOUND};

/// Short periods, so the observe TDs see several changes quickly.
fn config() -> PlugtestConfig {
    PlugtestConfig {
        obs_period: Duration::from_millis(300),
        pumping_period: Duration::from_millis(50),
        separate_delay: Duration::from_millis(200),
    }
}

fn start() -> InProcess {
    start_with(Config::default())
}

fn start_with(endpoint: Config) -> InProcess {
    InProcess::start_with(endpoint, |server, stop| async move {
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        plugtest::serve(server, config(), shutdown)
            .await
            .expect("plugtest server");
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` with a client of ours on a runtime of this thread, bounded by `BOUND`.
fn with_client<F, Fut>(f: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    with_client_config(Config::default(), f)
}

fn with_client_config<F, Fut>(config: Config, f: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt().block_on(async {
        let client = Client::bind_with((Ipv4Addr::LOCALHOST, 0).into(), config)
            .await
            .unwrap();
        tokio::time::timeout(BOUND * 3, f(client))
            .await
            .expect("the TD did not finish within its bound");
    });
}

async fn send(
    client: &Client,
    method: Method,
    uri: &str,
    edit: impl FnOnce(coap_tokio::RequestBuilder) -> coap_tokio::RequestBuilder,
) -> Response {
    edit(client.request(method, uri))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method:?} {uri}: {e}"))
}

fn uint_of(v: &[u8]) -> u32 {
    v.iter().fold(0, |a, b| (a << 8) | u32::from(*b))
}

// ----- a raw CoAP socket, for the message-layer steps -----------------------------

/// A UDP socket sending hand-built CoAP messages to the server.
struct Raw {
    sock: UdpSocket,
    server: SocketAddr,
}

/// One option of a raw request.
type Opt<'a> = (OptionNumber, &'a [u8]);

impl Raw {
    fn new(server: SocketAddr) -> Raw {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Raw { sock, server }
    }

    /// Sends a message; `opts` in ascending option order.
    fn send(
        &self,
        ty: MessageType,
        code: Code,
        mid: u16,
        token: &[u8],
        opts: &[Opt<'_>],
        payload: &[u8],
    ) {
        let mut buf = [0u8; 1300];
        let mut b = MessageBuilder::new(&mut buf, ty, code, mid, token).unwrap();
        for (n, v) in opts {
            b.option(*n, v).unwrap();
        }
        if !payload.is_empty() {
            b.payload(payload).unwrap();
        }
        let n = b.finish();
        self.sock.send_to(&buf[..n], self.server).unwrap();
    }

    /// A request with Uri-Path `path` (one option per segment) before `opts`.
    fn request(
        &self,
        ty: MessageType,
        code: Code,
        mid: u16,
        token: &[u8],
        path: &str,
        opts: &[Opt<'_>],
    ) {
        let mut all: Vec<Opt<'_>> = opts
            .iter()
            .copied()
            .filter(|(n, _)| n.0 < OptionNumber::URI_PATH.0)
            .collect();
        all.extend(
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(|s| (OptionNumber::URI_PATH, s.as_bytes())),
        );
        all.extend(
            opts.iter()
                .copied()
                .filter(|(n, _)| n.0 >= OptionNumber::URI_PATH.0),
        );
        self.send(ty, code, mid, token, &all, b"");
    }

    /// The next datagram within `within`, if any.
    fn recv_within(&self, within: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        None
    }

    fn recv(&self) -> Vec<u8> {
        self.recv_within(BOUND)
            .expect("no datagram from the server within the bound")
    }

    fn ack(&self, mid: u16) {
        self.send(MessageType::Ack, Code::EMPTY, mid, &[], &[], b"");
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    Message::parse(bytes).expect("a well-formed CoAP message")
}

// ----- CORE ------------------------------------------------------------------------

/// CORE 01–08: one method at /test in CON or NON mode; the raw exchange checks the
/// message layer (RFC 7252 §4.2: piggybacked ACK with the request's MID; §4.3: a NON
/// request is answered NON), our client the transaction.
fn basic(method: Method, non: bool, want: &[Code]) {
    let server = start();
    let code = Code::from(method);
    let raw = Raw::new(server.addr);
    let ty = if non {
        MessageType::Non
    } else {
        MessageType::Con
    };
    let token = [0xc0, 0xa9];
    let mid = 0x4711;
    let payload: &[u8] = if matches!(method, Method::Put | Method::Post) {
        b"plugtest payload"
    } else {
        b""
    };
    let mut opts: Vec<Opt<'_>> = vec![(OptionNumber::URI_PATH, b"test")];
    if !payload.is_empty() {
        opts.push((OptionNumber::CONTENT_FORMAT, &[]));
    }
    raw.send(ty, code, mid, &token, &opts, payload);
    let bytes = raw.recv();
    let m = parse(&bytes);
    assert!(want.contains(&m.code()), "{} not in {want:?}", m.code());
    assert_eq!(m.token(), token, "Token = CTOK");
    if non {
        assert_eq!(
            m.ty(),
            MessageType::Non,
            "a NON request gets a NON response"
        );
    } else {
        assert_eq!(m.ty(), MessageType::Ack, "piggybacked response");
        assert_eq!(m.message_id(), mid, "Message ID = CMID");
    }
    if method == Method::Get {
        assert!(m.content_format().is_some(), "Content-Format option");
        assert!(!m.payload().is_empty(), "non-empty payload");
    }
    with_client(|client| async move {
        let uri = server.uri("/test");
        let r = send(&client, method, &uri, |b| {
            let b = b.confirmable(!non);
            if payload.is_empty() {
                b
            } else {
                b.payload(payload).content_format(0)
            }
        })
        .await;
        assert!(want.contains(&r.code), "{} not in {want:?}", r.code);
        if method == Method::Get {
            let text = r.payload_str().unwrap();
            let ty = if non { "NON" } else { "CON" };
            assert!(text.contains(&format!("Type: {ty}")), "{text}");
            assert_eq!(r.option(OptionNumber::MAX_AGE).map(uint_of), Some(30));
        }
    });
}

#[test]
fn td_coap_core_01_get_con() {
    basic(Method::Get, false, &[Code::CONTENT]);
}

#[test]
fn td_coap_core_02_delete_con() {
    basic(Method::Delete, false, &[Code::DELETED]);
}

#[test]
fn td_coap_core_03_put_con() {
    basic(Method::Put, false, &[Code::CHANGED, Code::CREATED]);
}

#[test]
fn td_coap_core_04_post_con() {
    basic(Method::Post, false, &[Code::CREATED, Code::CHANGED]);
}

#[test]
fn td_coap_core_05_get_non() {
    basic(Method::Get, true, &[Code::CONTENT]);
}

#[test]
fn td_coap_core_06_delete_non() {
    basic(Method::Delete, true, &[Code::DELETED]);
}

#[test]
fn td_coap_core_07_put_non() {
    basic(Method::Put, true, &[Code::CHANGED, Code::CREATED]);
}

#[test]
fn td_coap_core_08_post_non() {
    basic(Method::Post, true, &[Code::CREATED, Code::CHANGED]);
}

/// CON GET of /separate with `token`: an empty ACK with the request's MID, then a CON
/// 2.05 with the token, Content-Format and a payload, which we acknowledge (RFC 7252
/// §5.2.2). Returns the separate response's MID.
fn separate_con(raw: &Raw, token: &[u8]) -> u16 {
    let mid = 0x1234;
    raw.request(MessageType::Con, Code::GET, mid, token, "separate", &[]);
    let first = raw.recv();
    let ack = parse(&first);
    assert_eq!(ack.ty(), MessageType::Ack, "empty ACK first");
    assert_eq!(ack.code(), Code::EMPTY);
    assert_eq!(ack.message_id(), mid, "ACK Message ID = CMID");
    assert!(ack.payload().is_empty() && ack.token().is_empty());
    let second = raw.recv();
    let resp = parse(&second);
    assert_eq!(resp.ty(), MessageType::Con, "separate response is CON");
    assert_eq!(resp.code(), Code::CONTENT);
    assert_eq!(resp.token(), token, "Token = CTOK");
    assert!(resp.content_format().is_some() && !resp.payload().is_empty());
    let smid = resp.message_id();
    raw.ack(smid);
    // Acknowledged: the server does not retransmit it (RFC 7252 §4.2).
    if let Some(again) = raw.recv_within(Duration::from_secs(3)) {
        panic!("unexpected datagram after the ACK: {:?}", parse(&again));
    }
    smid
}

#[test]
fn td_coap_core_09_separate_response_con() {
    let server = start();
    separate_con(&Raw::new(server.addr), &[0x09, 0x09]);
    with_client(|client| async move {
        let r = client.get(&server.uri("/separate")).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert!(r.payload_str().unwrap().contains("Type: CON"));
    });
}

#[test]
fn td_coap_core_10_get_with_token() {
    let server = start();
    let raw = Raw::new(server.addr);
    let token = [1, 2, 3, 4, 5, 6, 7, 8];
    raw.request(MessageType::Con, Code::GET, 0x0a0a, &token, "test", &[]);
    let bytes = raw.recv();
    let m = parse(&bytes);
    assert_eq!((m.code(), m.token()), (Code::CONTENT, &token[..]));
    assert_eq!(m.message_id(), 0x0a0a);
    assert!(m.content_format().is_some() && !m.payload().is_empty());
    assert!(std::str::from_utf8(m.payload())
        .unwrap()
        .contains("Token: 0102030405060708"));
}

#[test]
fn td_coap_core_11_separate_response_with_token() {
    let server = start();
    separate_con(&Raw::new(server.addr), &[0xde, 0xad, 0xbe, 0xef]);
}

#[test]
fn td_coap_core_12_get_with_empty_token() {
    let server = start();
    let raw = Raw::new(server.addr);
    raw.request(MessageType::Con, Code::GET, 0x0c0c, &[], "test", &[]);
    let bytes = raw.recv();
    let m = parse(&bytes);
    assert_eq!(m.code(), Code::CONTENT);
    assert!(m.token().is_empty(), "Token = the empty CTOK");
    assert_eq!(m.message_id(), 0x0c0c);
    assert!(m.content_format().is_some() && !m.payload().is_empty());
}

#[test]
fn td_coap_core_13_several_uri_path_options() {
    let server = start();
    with_client(|client| async move {
        let r = client.get(&server.uri("/seg1/seg2/seg3")).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.content_format().map(u16::from), Some(0));
        assert_eq!(r.payload_str(), Some("/seg1/seg2/seg3"));
        // Only the full path is the resource (RFC 7252 §6.5: one option per segment).
        let r = client.get(&server.uri("/seg1/seg2")).await.unwrap();
        assert_eq!(r.code, Code::NOT_FOUND);
    });
}

#[test]
fn td_coap_core_14_several_uri_query_options() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/query?first=1&second=2&third=3");
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.content_format().map(u16::from), Some(0));
        assert_eq!(r.payload_str(), Some("query: first=1&second=2&third=3"));
    });
}

/// TD_COAP_CORE_15 (lossy context, piggybacked): the response is lost, the client
/// retransmits the same CON; the server's deduplication answers with the same response
/// (RFC 7252 §4.5) — the loss is made by not reading the first answer.
#[test]
fn td_coap_core_15_lossy_piggybacked() {
    let server = start();
    let raw = Raw::new(server.addr);
    raw.request(MessageType::Con, Code::GET, 0x1515, &[0x15], "test", &[]);
    let lost = raw.recv();
    raw.request(MessageType::Con, Code::GET, 0x1515, &[0x15], "test", &[]);
    let again = raw.recv();
    assert_eq!(lost, again, "the retransmission gets the same response");
    let m = parse(&again);
    assert_eq!((m.ty(), m.code()), (MessageType::Ack, Code::CONTENT));
}

/// TD_COAP_CORE_16 (lossy context, separate response): the client's ACK of the separate
/// response is lost, so the server retransmits that CON with the same MID (RFC 7252
/// §4.2) until acknowledged.
#[test]
fn td_coap_core_16_lossy_separate() {
    let server = start();
    let raw = Raw::new(server.addr);
    raw.request(
        MessageType::Con,
        Code::GET,
        0x1616,
        &[0x16],
        "separate",
        &[],
    );
    let ack = raw.recv();
    assert_eq!(parse(&ack).ty(), MessageType::Ack);
    let first = raw.recv();
    let smid = parse(&first).message_id();
    // No ACK: the retransmission follows after ACK_TIMEOUT (2–3 s).
    let again = raw.recv();
    assert_eq!(first, again, "retransmitted unchanged");
    raw.ack(smid);
    let m = parse(&again);
    assert_eq!(
        (m.ty(), m.code(), m.token()),
        (MessageType::Con, Code::CONTENT, &[0x16][..])
    );
}

#[test]
fn td_coap_core_17_separate_response_non() {
    let server = start();
    let raw = Raw::new(server.addr);
    raw.request(
        MessageType::Non,
        Code::GET,
        0x1717,
        &[0x17],
        "separate",
        &[],
    );
    let bytes = raw.recv();
    let m = parse(&bytes);
    assert_ne!(m.ty(), MessageType::Ack, "no ACK for a NON request");
    assert_eq!((m.ty(), m.code()), (MessageType::Non, Code::CONTENT));
    assert_eq!(m.token(), [0x17]);
    assert!(m.content_format().is_some() && !m.payload().is_empty());
    with_client(|client| async move {
        let r = send(&client, Method::Get, &server.uri("/separate"), |b| b.non()).await;
        assert_eq!(r.code, Code::CONTENT);
        assert!(r.payload_str().unwrap().contains("Type: NON"));
    });
}

#[test]
fn td_coap_core_18_post_location_path() {
    let server = start();
    with_client(|client| async move {
        let r = send(&client, Method::Post, &server.uri("/test"), |b| {
            b.payload("x").content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CREATED);
        let path: Vec<&[u8]> = r.options_of(OptionNumber::LOCATION_PATH).collect();
        assert_eq!(path, [&b"location1"[..], b"location2", b"location3"]);
    });
}

#[test]
fn td_coap_core_19_post_location_query() {
    let server = start();
    with_client(|client| async move {
        let r = send(&client, Method::Post, &server.uri("/location-query"), |b| {
            b.payload("x").content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CREATED);
        let q: Vec<&[u8]> = r.options_of(OptionNumber::LOCATION_QUERY).collect();
        assert_eq!(q, [&b"first=1"[..], b"second=2"]);
    });
}

#[test]
fn td_coap_core_20_accept_option() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/multi-format");
        // Part A: text, Part B: XML; and the JSON and CBOR variants of the resource.
        for format in [0u16, 41, 50, 60] {
            let r = send(&client, Method::Get, &uri, |b| b.accept(format)).await;
            assert_eq!(r.code, Code::CONTENT, "Accept {format}");
            assert_eq!(r.content_format().map(u16::from), Some(format));
            assert!(!r.payload.is_empty());
            match format {
                41 => assert!(r.payload_str().unwrap().starts_with("<msg ")),
                50 => {
                    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
                    assert!(v["mid"].is_u64(), "{v}");
                }
                60 => assert_eq!(&r.payload[..6], [0xa1, 0x63, b'm', b'i', b'd', 0x19]),
                _ => assert!(r.payload_str().unwrap().starts_with("mid: ")),
            }
        }
        // A format it does not have: 4.06 (RFC 7252 §5.10.4).
        let r = send(&client, Method::Get, &uri, |b| b.accept(42)).await;
        assert_eq!(r.code, Code::NOT_ACCEPTABLE);
    });
}

#[test]
fn td_coap_core_21_etag_validation() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/validate");
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        let etag1 = r.option(OptionNumber::ETAG).expect("ETag").to_vec();
        // Still current: 2.03 Valid with the ETag, no payload (RFC 7252 §5.10.6.2).
        let r = send(&client, Method::Get, &uri, |b| {
            b.option(OptionNumber::ETAG, etag1.clone())
        })
        .await;
        assert_eq!(r.code, Code::VALID);
        assert_eq!(r.option(OptionNumber::ETAG), Some(&etag1[..]));
        assert!(r.payload.is_empty());
        // Another client changes it.
        let other = Client::bind((Ipv4Addr::LOCALHOST, 0).into()).await.unwrap();
        let r = send(&other, Method::Put, &uri, |b| {
            b.payload("changed by another client").content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        let r = send(&client, Method::Get, &uri, |b| {
            b.option(OptionNumber::ETAG, etag1.clone())
        })
        .await;
        assert_eq!(r.code, Code::CONTENT);
        let etag2 = r.option(OptionNumber::ETAG).expect("ETag").to_vec();
        assert_ne!(etag2, etag1);
        assert_eq!(r.payload_str(), Some("changed by another client"));
    });
}

#[test]
fn td_coap_core_22_if_match() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/validate");
        let r = client.get(&uri).await.unwrap();
        let etag1 = r.option(OptionNumber::ETAG).expect("ETag").to_vec();
        let pl3 = r.payload.clone();
        // Part A: atomic update with If-Match = ETAG1.
        let r = send(&client, Method::Put, &uri, |b| {
            b.option(OptionNumber::IF_MATCH, etag1.clone())
                .payload("step 5")
                .content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        // Part B: the new ETag, then a concurrent update, then If-Match = ETAG2 fails.
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_ne!(r.payload, pl3);
        assert_eq!(r.payload_str(), Some("step 5"));
        let etag2 = r.option(OptionNumber::ETAG).expect("ETag").to_vec();
        assert_ne!(etag2, etag1);
        let r = send(&client, Method::Put, &uri, |b| {
            b.payload("step 13").content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        let r = send(&client, Method::Put, &uri, |b| {
            b.option(OptionNumber::IF_MATCH, etag2.clone())
                .payload("step 17")
                .content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::PRECONDITION_FAILED);
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.payload_str(), Some("step 13"), "not updated by step 17");
    });
}

#[test]
fn td_coap_core_23_if_none_match() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/create1");
        let put = |body: &'static str| {
            send(&client, Method::Put, &uri, move |b| {
                b.option(OptionNumber::IF_NONE_MATCH, Vec::new())
                    .payload(body)
                    .content_format(0)
            })
        };
        assert_eq!(put("first").await.code, Code::CREATED);
        assert_eq!(put("second").await.code, Code::PRECONDITION_FAILED);
        assert_eq!(client.get(&uri).await.unwrap().payload_str(), Some("first"));
        let r = send(&client, Method::Delete, &uri, |b| b).await;
        assert_eq!(r.code, Code::DELETED);
        assert_eq!(put("third").await.code, Code::CREATED);
    });
}

#[test]
fn td_coap_core_31_ping() {
    let server = start();
    let raw = Raw::new(server.addr);
    raw.send(MessageType::Con, Code::EMPTY, 0x3131, &[], &[], b"");
    let bytes = raw.recv();
    assert_eq!(bytes.len(), 4, "a four-byte RST");
    let m = parse(&bytes);
    assert_eq!(
        (m.ty(), m.code(), m.message_id()),
        (MessageType::Rst, Code::EMPTY, 0x3131)
    );
    assert!(m.token().is_empty() && m.payload().is_empty());
}

// ----- BLOCK -----------------------------------------------------------------------

/// The first response to GET /large with `block2` (if any), by a raw request.
fn large_first_block(server: &InProcess, block2: Option<Block>) -> (Block, usize) {
    let raw = Raw::new(server.addr);
    let enc = block2.map(|b| coap_core::option::encode_uint(b.encode(), &mut [0; 4]).to_vec());
    let opts: Vec<Opt<'_>> = enc
        .as_deref()
        .map(|v| vec![(OptionNumber::BLOCK2, v)])
        .unwrap_or_default();
    raw.request(MessageType::Con, Code::GET, 0xb10c, &[0xb1], "large", &opts);
    let bytes = raw.recv();
    let m = parse(&bytes);
    assert_eq!(m.code(), Code::CONTENT);
    let b = Block::of(&m, OptionNumber::BLOCK2).expect("Block2 in the response");
    (b, m.payload().len())
}

fn get_large(server: &InProcess, block2: Option<Block>) {
    let uri = server.uri("/large");
    with_client(|client| async move {
        let r = send(&client, Method::Get, &uri, |b| match block2 {
            Some(b2) => b.option(
                OptionNumber::BLOCK2,
                coap_core::option::encode_uint(b2.encode(), &mut [0; 4]).to_vec(),
            ),
            None => b,
        })
        .await;
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.payload, plugtest::large_body(), "reassembled /large");
    });
}

#[test]
fn td_coap_block_01_get_early_negotiation() {
    let server = start();
    // The client asks for 64-byte blocks at once (RFC 7959 §2.4).
    let early = Block::new(0, false, 2);
    let (b, n) = large_first_block(&server, Some(early));
    assert_eq!((b.num, b.more, b.szx, n), (0, true, 2, 64));
    get_large(&server, Some(early));
}

#[test]
fn td_coap_block_02_get_late_negotiation() {
    let server = start();
    // No Block2 in the request: the server picks the block size.
    let (b, n) = large_first_block(&server, None);
    assert_eq!((b.num, b.more), (0, true));
    assert_eq!(n, b.size());
    get_large(&server, None);
}

#[test]
fn td_coap_block_06_get_early_negotiation_16_bytes() {
    let server = start();
    let early = Block::new(0, false, 0);
    let (b, n) = large_first_block(&server, Some(early));
    assert_eq!((b.num, b.more, b.szx, n), (0, true, 0, 16));
    get_large(&server, Some(early));
}

/// A body larger than a block, different from `/large`.
fn upload_body() -> Vec<u8> {
    (0..1500u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz "[(i * 7 % 27) as usize])
        .collect()
}

/// Our client with 64-byte blocks, so that uploads go in many Block1 requests.
fn small_blocks() -> Config {
    Config {
        max_block_szx: 2,
        ..Config::default()
    }
}

#[test]
fn td_coap_block_03_put_blockwise() {
    let server = start();
    with_client_config(small_blocks(), |client| async move {
        let uri = server.uri("/large-update");
        let r = send(&client, Method::Put, &uri, |b| {
            b.payload(upload_body()).content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        let b1 = Block::decode(r.option(OptionNumber::BLOCK1).expect("Block1")).unwrap();
        assert!(!b1.more, "the last block is echoed");
        assert_eq!(client.get(&uri).await.unwrap().payload, upload_body());
    });
}

#[test]
fn td_coap_block_04_post_blockwise_create() {
    let server = start();
    with_client_config(small_blocks(), |client| async move {
        let r = send(&client, Method::Post, &server.uri("/large-create"), |b| {
            b.payload(upload_body()).content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CREATED);
        let location: Vec<String> = r
            .options_of(OptionNumber::LOCATION_PATH)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect();
        assert_eq!(location.len(), 2, "{location:?}");
        assert_eq!(location[0], "large-create");
        let created = server.uri(&format!("/{}", location.join("/")));
        let r = client.get(&created).await.unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, upload_body()));
    });
}

#[test]
fn td_coap_block_05_post_two_way_blockwise() {
    let server = start();
    with_client_config(small_blocks(), |client| async move {
        let r = send(&client, Method::Post, &server.uri("/large-post"), |b| {
            b.payload(upload_body()).content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        assert_eq!(r.payload, upload_body().to_ascii_uppercase());
    });
}

// ----- OBS -------------------------------------------------------------------------

/// A raw observer of `path`: registers with CON GET Observe=0 and returns the first
/// response (checked: 2.05 with Observe).
fn raw_observe<'a>(raw: &Raw, path: &str, token: &[u8], buf: &'a mut Vec<u8>) -> Message<'a> {
    raw.request(
        MessageType::Con,
        Code::GET,
        0x0b50,
        token,
        path,
        &[(OptionNumber::OBSERVE, &[])],
    );
    *buf = raw.recv();
    let m = parse(buf);
    assert_eq!((m.ty(), m.code()), (MessageType::Ack, Code::CONTENT));
    assert!(
        m.observe().is_some(),
        "Observe in the registration response"
    );
    m
}

/// The next notification (skipping nothing else: the server sends nothing else).
fn next_notification(raw: &Raw) -> Vec<u8> {
    let bytes = raw.recv();
    let m = parse(&bytes);
    if m.ty() == MessageType::Con {
        raw.ack(m.message_id());
    }
    bytes
}

#[test]
fn td_coap_obs_01_observe_con() {
    // `/obs` asks for CON notifications itself (the endpoint's default configuration).
    let server = start();
    let raw = Raw::new(server.addr);
    let token = [0x0b, 0x01];
    let mut buf = Vec::new();
    let first = raw_observe(&raw, "obs", &token, &mut buf);
    let mut last = first.observe().unwrap();
    // The registration may race with a change and carry the value of the first
    // notification; between notifications the value changes.
    let mut last_payload: Option<Vec<u8>> = None;
    assert_eq!(first.uint_option(OptionNumber::MAX_AGE), Some(5));
    for _ in 0..3 {
        let bytes = next_notification(&raw);
        let m = parse(&bytes);
        assert_eq!(
            (m.ty(), m.code(), m.token()),
            (MessageType::Con, Code::CONTENT, &token[..])
        );
        let seq = m.observe().expect("Observe in notifications");
        assert!(seq > last, "increasing Observe ({seq} after {last})");
        if let Some(p) = &last_payload {
            assert_ne!(m.payload(), p, "the value changed");
        }
        assert!(m.content_format().is_some());
        last = seq;
        last_payload = Some(m.payload().to_vec());
    }
    // Our client: the same through the Observation stream.
    with_client(|client| async move {
        let mut obs = client
            .request(Method::Get, &server.uri("/obs"))
            .observe()
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let r = obs.next().await.expect("a notification").unwrap();
            assert_eq!(r.code, Code::CONTENT);
            assert!(r.option(OptionNumber::OBSERVE).is_some());
            seen.push(r.payload_str().unwrap().to_owned());
        }
        // The first response may repeat in the first notification (see above).
        seen.dedup();
        assert!(seen.len() >= 3, "changing values: {seen:?}");
        obs.cancel().await;
    });
}

#[test]
fn td_coap_obs_02_observe_non() {
    let server = start();
    let raw = Raw::new(server.addr);
    let token = [0x0b, 0x02];
    let mut buf = Vec::new();
    let first = raw_observe(&raw, "obs-non", &token, &mut buf);
    let mut last = first.observe().unwrap();
    for _ in 0..2 {
        let bytes = raw.recv();
        let m = parse(&bytes);
        assert_eq!(
            (m.ty(), m.code(), m.token()),
            (MessageType::Non, Code::CONTENT, &token[..])
        );
        let seq = m.observe().unwrap();
        assert!(seq > last);
        last = seq;
    }
}

/// TD_COAP_OBS_04: the server goes away; after Max-Age without a notification the client
/// re-registers and, finding no server, ends the observation (RFC 7641 §3.3.1).
#[test]
fn td_coap_obs_04_client_detects_deregistration_max_age() {
    let server = start();
    let uri = server.uri("/obs");
    let client_config = Config {
        request_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    with_client_config(client_config, |client| async move {
        let mut obs = client.request(Method::Get, &uri).observe().await.unwrap();
        let r = obs.next().await.unwrap().unwrap();
        assert_eq!(r.option(OptionNumber::MAX_AGE).map(uint_of), Some(5));
        drop(server);
        // Max-Age 5 s, then re-registration times out: the stream ends with an error
        // or closes.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the client did not notice");
            match tokio::time::timeout(Duration::from_secs(20), obs.next()).await {
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(_))) => {}
                Err(_) => panic!("the observation did not end within 20 s"),
            }
        }
    });
}

/// TD_COAP_OBS_05: the client is switched off; the server's CON notification goes
/// unacknowledged and, after its retransmissions, the server forgets the observer
/// (RFC 7641 §4.5): later notifications stop.
#[test]
fn td_coap_obs_05_server_detects_client_off() {
    let server = start_with(Config {
        // Shorter retransmission so the give-up comes within the test bound.
        ack_timeout: Duration::from_millis(100),
        max_retransmit: 2,
        ..Config::default()
    });
    let raw = Raw::new(server.addr);
    let mut buf = Vec::new();
    raw_observe(&raw, "obs", &[0x05], &mut buf);
    // Switched off: nothing is acknowledged. Collect what arrives for a while.
    let mut mids = Vec::new();
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        if let Some(b) = raw.recv_within(Duration::from_millis(100)) {
            mids.push(parse(&b).message_id());
        }
    }
    assert!(!mids.is_empty(), "CON notifications were sent");
    // Now silent: the observer was dropped.
    let later = raw.recv_within(Duration::from_secs(2));
    assert!(later.is_none(), "notifications after give-up: {mids:?}");
}

/// TD_COAP_OBS_06: the client answers a notification with RST; the server drops it
/// (RFC 7641 §3.6).
#[test]
fn td_coap_obs_06_server_detects_rst() {
    let server = start();
    let raw = Raw::new(server.addr);
    let mut buf = Vec::new();
    raw_observe(&raw, "obs-non", &[0x06], &mut buf);
    let bytes = raw.recv();
    let mid = parse(&bytes).message_id();
    raw.send(MessageType::Rst, Code::EMPTY, mid, &[], &[], b"");
    // At most one notification may already have been on its way.
    let mut after = 0;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        if raw.recv_within(Duration::from_millis(100)).is_some() {
            after += 1;
        }
    }
    assert!(after <= 1, "{after} notifications after the RST");
}

/// Observes /obs with our client and returns the observation after its first response.
async fn observe_obs(client: &Client, uri: &str) -> coap_tokio::Observation {
    let mut obs = client.request(Method::Get, uri).observe().await.unwrap();
    let r = obs.next().await.unwrap().unwrap();
    assert_eq!(r.code, Code::CONTENT);
    obs
}

/// The next notification that is not a periodic tick.
async fn next_not_tick(obs: &mut coap_tokio::Observation) -> Option<Response> {
    for _ in 0..50 {
        match obs.next().await? {
            Ok(r) if r.payload_str().is_some_and(|p| p.starts_with("obs: tick")) => continue,
            Ok(r) => return Some(r),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("only ticks");
}

#[test]
fn td_coap_obs_07_delete_clears_observers() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/obs");
        let mut obs = observe_obs(&client, &uri).await;
        let other = Client::bind((Ipv4Addr::LOCALHOST, 0).into()).await.unwrap();
        let r = send(&other, Method::Delete, &uri, |b| b).await;
        assert_eq!(r.code, Code::DELETED);
        let r = next_not_tick(&mut obs).await.expect("a 4.04 notification");
        assert_eq!(r.code, Code::NOT_FOUND);
        assert!(obs.next().await.is_none(), "the observation has ended");
        assert_eq!(other.get(&uri).await.unwrap().code, Code::NOT_FOUND);
    });
}

#[test]
fn td_coap_obs_08_content_format_change_clears_observers() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/obs");
        let mut obs = observe_obs(&client, &uri).await;
        let other = Client::bind((Ipv4Addr::LOCALHOST, 0).into()).await.unwrap();
        let r = send(&other, Method::Put, &uri, |b| {
            b.payload("<value>1</value>").content_format(41)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        let r = next_not_tick(&mut obs).await.expect("a 4.06 notification");
        assert_eq!(r.code, Code::NOT_ACCEPTABLE);
        assert!(obs.next().await.is_none(), "the observation has ended");
    });
}

#[test]
fn td_coap_obs_09_update_of_observed_resource() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/obs");
        let mut obs = observe_obs(&client, &uri).await;
        let other = Client::bind((Ipv4Addr::LOCALHOST, 0).into()).await.unwrap();
        let r = send(&other, Method::Put, &uri, |b| {
            b.payload("new value").content_format(0)
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        let r = next_not_tick(&mut obs).await.expect("a notification");
        assert_eq!(
            (r.code, r.payload_str()),
            (Code::CONTENT, Some("new value"))
        );
        assert!(r.option(OptionNumber::OBSERVE).is_some());
        obs.cancel().await;
    });
}

#[test]
fn td_coap_obs_10_get_does_not_cancel() {
    let server = start();
    with_client(|client| async move {
        let uri = server.uri("/obs");
        let mut obs = observe_obs(&client, &uri).await;
        // A plain GET (another token, no Observe) from the same client.
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert!(r.option(OptionNumber::OBSERVE).is_none());
        // Notifications keep coming.
        for _ in 0..2 {
            let r = obs.next().await.expect("still observing").unwrap();
            assert!(r.option(OptionNumber::OBSERVE).is_some());
        }
        obs.cancel().await;
    });
}

/// TD_COAP_OBS_12: GET with Observe=1 deregisters (RFC 7641 §3.6): the answer has no
/// Observe and the notifications stop.
#[test]
fn td_coap_obs_12_observe_1_cancels() {
    let server = start();
    let raw = Raw::new(server.addr);
    let token = [0x12];
    let mut buf = Vec::new();
    raw_observe(&raw, "obs-non", &token, &mut buf);
    raw.request(
        MessageType::Con,
        Code::GET,
        0x0c12,
        &token,
        "obs-non",
        &[(OptionNumber::OBSERVE, &[1])],
    );
    // Skip notifications already sent; the ACK of the deregistration has no Observe.
    let mut answered = false;
    for _ in 0..10 {
        let b = raw.recv();
        let m = parse(&b);
        if m.ty() == MessageType::Ack {
            assert_eq!(m.message_id(), 0x0c12);
            assert!(m.observe().is_none());
            answered = true;
            break;
        }
    }
    assert!(answered);
    assert!(
        raw.recv_within(Duration::from_secs(1)).is_none(),
        "no more notifications"
    );
}

/// TD_COAP_OBS_13: observation of a resource larger than a block: each notification
/// carries the first block, the client fetches the rest (RFC 7959 §2.6).
#[test]
fn td_coap_obs_13_observe_large() {
    let server = start();
    with_client(|client| async move {
        let mut obs = client
            .request(Method::Get, &server.uri("/obs-large"))
            .observe()
            .await
            .unwrap();
        for _ in 0..2 {
            let r = obs.next().await.expect("a notification").unwrap();
            assert_eq!(r.code, Code::CONTENT);
            assert!(
                r.payload.len() > 1024,
                "whole representation: {}",
                r.payload.len()
            );
            let text = r.payload_str().unwrap();
            let tick = text.lines().next().unwrap();
            assert!(text
                .lines()
                .skip(1)
                .all(|l| tick.ends_with(l.rsplit(' ').next().unwrap())));
        }
        obs.cancel().await;
    });
}

/// `/obs-reset`: POST `sesame` ends every observation.
#[test]
fn obs_reset_ends_observations() {
    let server = start();
    with_client(|client| async move {
        let mut obs = observe_obs(&client, &server.uri("/obs")).await;
        let r = send(&client, Method::Post, &server.uri("/obs-reset"), |b| {
            b.payload("wrong")
        })
        .await;
        assert_eq!(r.code, Code::FORBIDDEN);
        let r = send(&client, Method::Post, &server.uri("/obs-reset"), |b| {
            b.payload("sesame")
        })
        .await;
        assert_eq!(r.code, Code::CHANGED);
        let r = next_not_tick(&mut obs).await.expect("a final notification");
        assert_eq!(r.code, Code::SERVICE_UNAVAILABLE);
        assert!(obs.next().await.is_none());
    });
}

// ----- LINK ------------------------------------------------------------------------

/// GET /.well-known/core with `query`; the hrefs listed, in order.
async fn discover(client: &Client, server: &InProcess, query: &str) -> Vec<String> {
    let r = client
        .get(&server.uri(&format!("/.well-known/core{query}")))
        .await
        .unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(
        r.content_format().map(u16::from),
        Some(40),
        "application/link-format"
    );
    hrefs(r.payload_str().unwrap())
}

fn hrefs(links: &str) -> Vec<String> {
    links
        .split(',')
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix('<')?.split('>').next().map(str::to_owned))
        .collect()
}

fn link_td(query: &str, want: &[&str]) {
    let server = start();
    with_client(|client| async move {
        let got = discover(&client, &server, query).await;
        assert_eq!(got, want, "{query}");
    });
}

#[test]
fn td_coap_link_01_well_known_core() {
    let server = start();
    with_client(|client| async move {
        let r = client.get(&server.uri("/.well-known/core")).await.unwrap();
        assert_eq!(
            (r.code, r.content_format().map(u16::from)),
            (Code::CONTENT, Some(40))
        );
        let text = r.payload_str().unwrap();
        let got = hrefs(text);
        for p in [
            "/test",
            "/separate",
            "/obs",
            "/large",
            "/link1",
            "/link2",
            "/link3",
            "/path",
        ] {
            assert!(got.iter().any(|h| h == p), "{p} missing: {got:?}");
        }
        assert!(
            text.contains(r#"</link1>;rt="Type1 Type2";if="If1""#),
            "{text}"
        );
    });
}

#[test]
fn td_coap_link_02_filter_rt() {
    link_td("?rt=Type1", &["/link1", "/link3"]);
}

#[test]
fn td_coap_link_03_filter_rt_wildcard() {
    link_td("?rt=*", &["/link1", "/link2", "/link3"]);
}

#[test]
fn td_coap_link_04_filter_multiple_rt() {
    link_td("?rt=Type2", &["/link1", "/link2"]);
}

#[test]
fn td_coap_link_05_filter_if_prefix() {
    link_td("?if=If*", &["/link1", "/link2"]);
}

#[test]
fn td_coap_link_06_filter_sz_wildcard() {
    link_td("?sz=*", &["/large", "/large-update"]);
}

#[test]
fn td_coap_link_07_filter_href() {
    link_td("?href=/link1", &["/link1"]);
}

#[test]
fn td_coap_link_08_filter_href_prefix() {
    link_td("?href=/link*", &["/link1", "/link2", "/link3"]);
}

#[test]
fn td_coap_link_09_hierarchical_links() {
    let server = start();
    with_client(|client| async move {
        let got = discover(&client, &server, "?ct=40").await;
        assert_eq!(got, ["/path"]);
        let r = client.get(&server.uri("/path")).await.unwrap();
        assert_eq!(
            (r.code, r.content_format().map(u16::from)),
            (Code::CONTENT, Some(40))
        );
        let subs = hrefs(r.payload_str().unwrap());
        assert_eq!(subs, ["/path/sub1", "/path/sub2", "/path/sub3"]);
        for s in subs {
            let r = client.get(&server.uri(&s)).await.unwrap();
            assert_eq!((r.code, r.payload_str()), (Code::CONTENT, Some(s.as_str())));
        }
    });
}

// ----- resources beyond the TDs -------------------------------------------------------

/// `/large-separate`: the empty ACK, then a separate CON response carrying the first
/// block (RFC 7252 §5.2.2, RFC 7959 §2.4); our client fetches the rest.
#[test]
fn large_separate_is_separate_and_blockwise() {
    let server = start();
    let raw = Raw::new(server.addr);
    raw.request(
        MessageType::Con,
        Code::GET,
        0x1a5e,
        &[0x1a],
        "large-separate",
        &[],
    );
    let ack = raw.recv();
    let ack = parse(&ack);
    assert_eq!((ack.ty(), ack.code()), (MessageType::Ack, Code::EMPTY));
    let resp = raw.recv();
    let resp = parse(&resp);
    assert_eq!((resp.ty(), resp.code()), (MessageType::Con, Code::CONTENT));
    let b = Block::of(&resp, OptionNumber::BLOCK2).expect("Block2");
    assert!(b.num == 0 && b.more);
    raw.ack(resp.message_id());
    with_client(|client| async move {
        let r = client.get(&server.uri("/large-separate")).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        let text = r.payload_str().unwrap();
        assert!(text.len() >= 1700, "{}", text.len());
        assert!(text.starts_with("large-separate\n"));
        assert!(text.ends_with('\n'));
    });
}

/// `/obs-pumping` and `/obs-pumping-non`: notifications in a stream, each with a higher
/// Observe number and a new value.
#[test]
fn obs_pumping_notifies_in_order() {
    let server = start();
    for path in ["/obs-pumping", "/obs-pumping-non"] {
        let uri = server.uri(path);
        with_client(|client| async move {
            let mut obs = client.request(Method::Get, &uri).observe().await.unwrap();
            let mut values = Vec::new();
            for _ in 0..6 {
                let r = obs.next().await.expect("a notification").unwrap();
                assert_eq!(r.code, Code::CONTENT);
                values.push(r.payload_str().unwrap().to_owned());
            }
            let ticks: Vec<u64> = values
                .iter()
                .map(|v| v.rsplit(' ').next().unwrap().parse().unwrap())
                .collect();
            // The registration's value may repeat in the first notification (it can
            // race with a change); after that each notification is a new value.
            assert!(ticks.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
            assert!(ticks[1..].windows(2).all(|w| w[0] < w[1]), "{values:?}");
            obs.cancel().await;
        });
    }
}

/// Bad Block1 input to the upload resources (RFC 7959 §2.9): a block without its start
/// gets 4.08 Request Entity Incomplete, a body announced larger than the resource takes
/// gets 4.13 with Size1, a Block2 follow-up of `/large-post` without a response to
/// continue gets 4.08; nothing is stored.
#[test]
fn block1_bad_input_gets_rfc_7959_codes() {
    let server = start();
    let raw = Raw::new(server.addr);
    let enc = |v: u32| coap_core::option::encode_uint(v, &mut [0; 4]).to_vec();
    let middle = enc(Block::new(3, true, 2).encode());
    let mut buf = [0u8; 1300];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::PUT, 0x0b01, &[1]).unwrap();
    b.option(OptionNumber::URI_PATH, b"large-update").unwrap();
    b.option(OptionNumber::BLOCK1, &middle).unwrap();
    b.payload(&[b'x'; 64]).unwrap();
    let n = b.finish();
    raw.sock.send_to(&buf[..n], raw.server).unwrap();
    let r = raw.recv();
    assert_eq!(parse(&r).code(), Code::REQUEST_ENTITY_INCOMPLETE);

    let first = enc(Block::new(0, true, 2).encode());
    let size1 = enc(1_000_000);
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, 0x0b02, &[2]).unwrap();
    b.option(OptionNumber::URI_PATH, b"large-create").unwrap();
    b.option(OptionNumber::BLOCK1, &first).unwrap();
    b.option(OptionNumber::SIZE1, &size1).unwrap();
    b.payload(&[b'x'; 64]).unwrap();
    let n = b.finish();
    raw.sock.send_to(&buf[..n], raw.server).unwrap();
    let r = raw.recv();
    let m = parse(&r);
    assert_eq!(m.code(), Code::REQUEST_ENTITY_TOO_LARGE);
    assert!(
        m.uint_option(OptionNumber::SIZE1).is_some(),
        "Size1 says the limit"
    );

    let later = enc(Block::new(2, false, 2).encode());
    raw.request(
        MessageType::Con,
        Code::POST,
        0x0b03,
        &[3],
        "large-post",
        &[(OptionNumber::BLOCK2, &later)],
    );
    let r = raw.recv();
    assert_eq!(parse(&r).code(), Code::REQUEST_ENTITY_INCOMPLETE);

    with_client(|client| async move {
        let r = client.get(&server.uri("/large-update")).await.unwrap();
        assert_eq!(r.payload, plugtest::large_body(), "unchanged");
    });
}
