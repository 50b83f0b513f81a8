//! The demo resources on a core endpoint.

use super::*;

#[test]
fn time_is_rfc3339_utc() {
    let t = utc_now();
    assert_eq!(t.len(), 20, "{t}");
    assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
}

#[test]
fn routes_are_listed_with_attributes() {
    let r = router();
    let paths: Vec<_> = r.routes().iter().map(|r| r.path()).collect();
    assert_eq!(
        paths,
        ["/hello", "/time", "/echo", "/large", "/upload", "/config"]
    );
}

use coap_core::{Block, Config, Endpoint, Instant, Message, MessageBuilder, MessageType};

/// One request through the demo router on a core endpoint; the response datagram.
struct Exchange {
    server: Endpoint<coap_tokio::Peer>,
    router: DemoRouter,
    mid: u16,
    /// The client's address (another address: another client).
    ip: [u8; 4],
    /// The client's port.
    port: u16,
}

impl Exchange {
    fn new() -> Exchange {
        Exchange {
            server: Endpoint::new(Config::default(), 1),
            router: router(),
            mid: 0,
            ip: [127, 0, 0, 1],
            port: 5683,
        }
    }

    fn ask(
        &mut self,
        code: Code,
        path: &str,
        options: &[(OptionNumber, u32)],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut buf = [0u8; 1300];
        self.mid += 1;
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, code, self.mid, &[7]).unwrap();
        b.option_str(OptionNumber::URI_PATH, path).unwrap();
        for &(n, v) in options {
            b.option_uint(n, v).unwrap();
        }
        if !payload.is_empty() {
            b.payload(payload).unwrap();
        }
        let req = b.into_bytes().to_vec();
        self.raw(&req)
    }

    /// One request datagram from the current client; the response datagram.
    fn raw(&mut self, req: &[u8]) -> Vec<u8> {
        let peer = coap_tokio::glue::oscore::plain((self.ip, self.port).into());
        let now = Instant::from_millis(u64::from(self.mid));
        self.server
            .handle_datagram(now, peer, req, &mut self.router);
        let mut out = [0u8; 1300];
        let t = self
            .server
            .poll_transmit(now, &mut out)
            .expect("a response");
        out[..t.len].to_vec()
    }

    /// GETs `path` block by block at `szx`; the body and the responses' ETags.
    fn get_blockwise(&mut self, path: &str, szx: u8) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut body = Vec::new();
        let mut etags = Vec::new();
        for num in 0.. {
            let block = Block::new(num, false, szx).encode();
            let r = self.ask(Code::GET, path, &[(OptionNumber::BLOCK2, block)], b"");
            let m = Message::parse(&r).unwrap();
            assert_eq!(m.code(), Code::CONTENT);
            etags.push(m.option(OptionNumber::ETAG).unwrap().value.to_vec());
            let b = Block::of(&m, OptionNumber::BLOCK2).unwrap();
            assert_eq!((b.num, b.szx, b.offset()), (num, szx, body.len()));
            body.extend_from_slice(m.payload());
            if !b.more {
                break;
            }
        }
        (body, etags)
    }
}

#[test]
fn large_is_10_kib_of_numbered_lines() {
    let body = large_representation();
    assert_eq!(body.len(), LARGE_LEN);
    let text = std::str::from_utf8(&body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 160);
    assert!(lines.iter().all(|l| l.len() == 63));
    assert!(lines[0].starts_with("line 001 of 160: "), "{}", lines[0]);
    assert!(
        lines[159].starts_with("line 160 of 160: "),
        "{}",
        lines[159]
    );
    assert_eq!(body, large_representation(), "deterministic");
}

#[test]
fn large_is_served_blockwise_with_size2_and_etag() {
    let mut x = Exchange::new();
    // No Block2 asked for: the first 1024-byte block, Size2, ct=0.
    let r = x.ask(Code::GET, "large", &[], b"");
    let m = Message::parse(&r).unwrap();
    assert_eq!(
        Block::of(&m, OptionNumber::BLOCK2),
        Some(Block::new(0, true, 6))
    );
    assert_eq!(m.uint_option(OptionNumber::SIZE2), Some(LARGE_LEN as u32));
    assert_eq!(m.content_format(), Some(0));
    assert_eq!(m.payload(), &large_representation()[..1024]);
    for szx in [0, 2, 6] {
        let (body, etags) = x.get_blockwise("large", szx);
        assert_eq!(body, large_representation(), "szx {szx}");
        assert!(etags.iter().all(|e| *e == etag_of(&body)));
    }
}

#[test]
fn upload_reassembles_block1_and_get_returns_it() {
    let mut x = Exchange::new();
    let body: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let chunks: Vec<&[u8]> = body.chunks(256).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let more = n + 1 < chunks.len();
        let block = Block::new(n as u32, more, 4).encode();
        let mut opts = vec![(OptionNumber::BLOCK1, block)];
        if n == 0 {
            opts.push((OptionNumber::CONTENT_FORMAT, 42));
        }
        let r = x.ask(Code::PUT, "upload", &opts, chunk);
        let m = Message::parse(&r).unwrap();
        let want = if more { Code::CONTINUE } else { Code::CHANGED };
        assert_eq!(m.code(), want, "block {n}");
        assert_eq!(
            Block::of(&m, OptionNumber::BLOCK1),
            Some(Block::new(n as u32, more, 4))
        );
    }
    let (got, _) = x.get_blockwise("upload", 3);
    assert_eq!(got, body);
    let r = x.ask(Code::GET, "upload", &[], b"");
    assert_eq!(Message::parse(&r).unwrap().content_format(), Some(42));

    // A block out of order: 4.08; the stored body stays.
    let r = x.ask(
        Code::PUT,
        "upload",
        &[(OptionNumber::BLOCK1, Block::new(3, true, 4).encode())],
        &[0; 256],
    );
    assert_eq!(
        Message::parse(&r).unwrap().code(),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    // Too large by Size1: 4.13 with Size1 = the limit.
    let r = x.ask(
        Code::PUT,
        "upload",
        &[
            (OptionNumber::BLOCK1, Block::new(0, true, 4).encode()),
            (OptionNumber::SIZE1, 100_000),
        ],
        &[0; 256],
    );
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.code(), Code::REQUEST_ENTITY_TOO_LARGE);
    assert_eq!(m.uint_option(OptionNumber::SIZE1), Some(UPLOAD_CAP as u32));
    assert_eq!(x.get_blockwise("upload", 6).0, body);

    // A small PUT without Block1 replaces the body at once.
    let r = x.ask(Code::PUT, "upload", &[], b"small");
    assert_eq!(Message::parse(&r).unwrap().code(), Code::CHANGED);
    let r = x.ask(Code::GET, "upload", &[], b"");
    let m = Message::parse(&r).unwrap();
    assert_eq!((m.payload(), m.content_format()), (&b"small"[..], None));
}

/// A two-block PUT to `/upload` (256 + 44 bytes of `body`) from client `ip`, block `num`,
/// with `options`; the response code.
fn put_block(
    x: &mut Exchange,
    ip: [u8; 4],
    num: u32,
    body: &[u8],
    options: &[(OptionNumber, u32)],
) -> Code {
    x.ip = ip;
    let more = num == 0;
    let part = if more { &body[..256] } else { &body[256..] };
    let mut opts = vec![(OptionNumber::BLOCK1, Block::new(num, more, 4).encode())];
    opts.extend_from_slice(options);
    let r = x.ask(Code::PUT, "upload", &opts, part);
    Message::parse(&r).unwrap().code()
}

const A: [u8; 4] = [127, 77, 0, 1];
const B: [u8; 4] = [127, 77, 0, 2];

#[test]
fn upload_keeps_each_clients_blocks_apart() {
    // A's and B's block-wise PUTs interleave; one shared buffer made A's last block
    // fail (or complete someone else's body).
    let mut x = Exchange::new();
    let a: Vec<u8> = vec![b'a'; 300];
    let b: Vec<u8> = vec![b'b'; 300];
    assert_eq!(put_block(&mut x, A, 0, &a, &[]), Code::CONTINUE);
    assert_eq!(put_block(&mut x, B, 0, &b, &[]), Code::CONTINUE);
    assert_eq!(put_block(&mut x, B, 1, &b, &[]), Code::CHANGED);
    assert_eq!(x.get_blockwise("upload", 6).0, b);
    assert_eq!(put_block(&mut x, A, 1, &a, &[]), Code::CHANGED);
    assert_eq!(x.get_blockwise("upload", 6).0, a);
    // More first blocks than uploads may be under way, each from its own address: first
    // blocks have a pool of their own, so each completes.
    let clients = UPLOADS_IN_PROGRESS as u8 + 4;
    for c in 0..clients {
        let code = put_block(&mut x, [127, 78, 0, c + 1], 0, &a, &[]);
        assert_eq!(code, Code::CONTINUE, "client {c}");
    }
    for c in 0..clients {
        let code = put_block(&mut x, [127, 78, 0, c + 1], 1, &a, &[]);
        assert_eq!(code, Code::CHANGED, "client {c}");
    }
    // One client holds at most its share: its third upload (another Request-Tag) drops its
    // own oldest, nobody else's.
    let mut x = Exchange::new();
    assert_eq!(put_block(&mut x, B, 0, &b, &[]), Code::CONTINUE);
    let tag = |t: u32| [(OptionNumber::REQUEST_TAG, t)];
    for t in 1..=3 {
        assert_eq!(
            put_block(&mut x, A, 0, &a, &tag(t)),
            Code::CONTINUE,
            "tag {t}"
        );
    }
    assert_eq!(
        put_block(&mut x, A, 1, &a, &tag(1)),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    assert_eq!(put_block(&mut x, A, 1, &a, &tag(3)), Code::CHANGED);
    assert_eq!(put_block(&mut x, B, 1, &b, &[]), Code::CHANGED);
}

#[test]
fn upload_if_match_holds_until_the_last_block() {
    let mut x = Exchange::new();
    // Nothing was put yet: If-Match fails, If-None-Match holds.
    let if_none = [(OptionNumber::IF_NONE_MATCH, 0)];
    let first: Vec<u8> = vec![b'0'; 300];
    assert_eq!(put_block(&mut x, A, 0, &first, &if_none), Code::CONTINUE);
    assert_eq!(put_block(&mut x, A, 1, &first, &[]), Code::CHANGED);
    assert_eq!(
        put_block(&mut x, B, 0, &first, &if_none),
        Code::PRECONDITION_FAILED
    );
    let r = x.ask(Code::GET, "upload", &[], b"");
    let etag = Message::parse(&r)
        .unwrap()
        .option(OptionNumber::ETAG)
        .unwrap()
        .value
        .to_vec();
    assert_eq!(etag, etag_of(&first));
    // A's block 0 passes If-Match; B's PUT then succeeds; A's last block must not
    // overwrite B's body: 4.12 (the lost update of issue 26).
    let if_match = etag_of(&first);
    let mut buf = [0u8; 1300];
    let a_body: Vec<u8> = vec![b'a'; 300];
    x.ip = A;
    x.mid += 1;
    let mut m = MessageBuilder::new(&mut buf, MessageType::Con, Code::PUT, x.mid, &[7]).unwrap();
    m.option_str(OptionNumber::URI_PATH, "upload").unwrap();
    m.option(OptionNumber::IF_MATCH, &if_match).unwrap();
    m.option_uint(OptionNumber::BLOCK1, Block::new(0, true, 4).encode())
        .unwrap();
    m.payload(&a_body[..256]).unwrap();
    let req = m.into_bytes().to_vec();
    let r = x.raw(&req);
    assert_eq!(Message::parse(&r).unwrap().code(), Code::CONTINUE);
    x.ip = B;
    let r = x.ask(Code::PUT, "upload", &[], b"B's update");
    assert_eq!(Message::parse(&r).unwrap().code(), Code::CHANGED);
    assert_eq!(
        put_block(&mut x, A, 1, &a_body, &[]),
        Code::PRECONDITION_FAILED
    );
    let r = x.ask(Code::GET, "upload", &[], b"");
    assert_eq!(Message::parse(&r).unwrap().payload(), b"B's update");
}

#[test]
fn config_cannot_grow_without_bound() {
    let mut x = Exchange::new();
    let cf = [(OptionNumber::CONTENT_FORMAT, 52)];
    // One patch larger than the bound: 4.13 with Size1.
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1100));
    let r = x.ask(Code::IPATCH, "config", &cf, big.as_bytes());
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.code(), Code::REQUEST_ENTITY_TOO_LARGE);
    assert_eq!(m.uint_option(OptionNumber::SIZE1), Some(CONFIG_CAP as u32));
    // Many small patches: accepted until the object would pass the bound, then 4.13.
    let mut refused = false;
    for i in 0..100 {
        let patch = format!(r#"{{"k{i}":"{}"}}"#, "v".repeat(100));
        let r = x.ask(Code::IPATCH, "config", &cf, patch.as_bytes());
        match Message::parse(&r).unwrap().code() {
            Code::CHANGED => assert!(!refused),
            Code::REQUEST_ENTITY_TOO_LARGE => refused = true,
            other => panic!("{other:?}"),
        }
    }
    assert!(refused);
    let r = x.ask(Code::GET, "config", &[], b"");
    let m = Message::parse(&r).unwrap();
    assert!(m.payload().len() <= CONFIG_CAP);
    let v: serde_json::Value = serde_json::from_slice(m.payload()).unwrap();
    assert_eq!(v["version"], 1);
    // Removing members makes room again.
    let r = x.ask(Code::IPATCH, "config", &cf, br#"{"k0":null,"k1":null}"#);
    assert_eq!(Message::parse(&r).unwrap().code(), Code::CHANGED);
}

#[test]
fn block1_is_refused_where_not_supported() {
    let mut x = Exchange::new();
    let block = Block::new(0, true, 4).encode();
    let r = x.ask(
        Code::POST,
        "echo",
        &[(OptionNumber::BLOCK1, block)],
        &[1; 256],
    );
    assert_eq!(Message::parse(&r).unwrap().code(), Code::BAD_OPTION);
}

#[test]
fn upload_counts_partial_uploads_and_a_timer_frees_them() {
    let upload = Upload::new();
    let mut x = Exchange::new();
    x.router = Router::new(routes_with(&upload));
    let body: Vec<u8> = vec![b'p'; 300];
    for c in 0..4u8 {
        assert_eq!(
            put_block(&mut x, [127, 79, 0, c + 1], 0, &body, &[]),
            Code::CONTINUE
        );
    }
    assert_eq!(upload.in_progress(), (4, 4 * 256));
    assert_eq!(upload.expire(std::time::Instant::now()), 0);
    let later = std::time::Instant::now() + crate::uploads::IDLE;
    assert_eq!(upload.expire(later), 4);
    assert_eq!(upload.in_progress(), (0, 0));
    assert_eq!(
        put_block(&mut x, [127, 79, 0, 1], 1, &body, &[]),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
}
