//! At most once (RFC 7252 §4.5): a duplicate of a non-idempotent request never reaches the
//! handler again within its lifetime, whatever the load. When duplicate detection cannot
//! hold the window, new non-idempotent requests are refused with 5.03 + Max-Age, idempotent
//! ones are still served.

use std::cell::Cell;

use coap_core::message::{Message, MessageBuilder, MessageType};
use coap_core::{Code, Config, Endpoint, Instant, OptionNumber, Outcome};

/// A server with room for `D` duplicate-detection entries and plenty of slots.
type Server<const D: usize> = Endpoint<u32, 64, 256, D, 4>;

fn request(code: Code, mid: u16, token: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let b = MessageBuilder::new(&mut buf, MessageType::Con, code, mid, &[token]).unwrap();
    b.into_bytes().to_vec()
}

/// Feeds `bytes` from `peer` and returns every answer the server sends at once.
fn exchange<const D: usize>(
    server: &mut Server<D>,
    now: Instant,
    peer: u32,
    bytes: &[u8],
    runs: &Cell<u32>,
) -> Vec<Vec<u8>> {
    let mut handler = |req: &coap_core::IncomingRequest<'_, u32>,
                       w: &mut coap_core::ResponseWriter<'_>| {
        runs.set(runs.get() + 1);
        let code = if req.message().code() == Code::POST {
            Code::CHANGED
        } else {
            Code::CONTENT
        };
        w.respond(code, None, b"done").unwrap();
        Outcome::Respond
    };
    server.handle_datagram(now, peer, bytes, &mut handler);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Some(t) = server.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

fn code_of(bytes: &[u8]) -> Code {
    Message::parse(bytes).unwrap().code()
}

#[test]
fn full_window_refuses_new_posts_and_never_reexecutes() {
    let mut server: Server<8> = Server::new(Config::default(), 1);
    let runs = Cell::new(0);
    let t0 = Instant::ZERO;
    let first = request(Code::POST, 100, 1);
    for k in 0..8u16 {
        let r = exchange(&mut server, t0, 1, &request(Code::POST, 100 + k, 1), &runs);
        assert_eq!(code_of(&r[0]), Code::CHANGED);
    }
    assert_eq!(runs.get(), 8);
    // The table holds 8 unexpired POSTs: a ninth waits, with a Max-Age up to the oldest
    // entry's expiry (EXCHANGE_LIFETIME, 247 s).
    let r = exchange(
        &mut server,
        t0.add_millis(1000),
        2,
        &request(Code::POST, 7, 2),
        &runs,
    );
    assert_eq!(code_of(&r[0]), Code::SERVICE_UNAVAILABLE);
    let max_age = Message::parse(&r[0])
        .unwrap()
        .uint_option(OptionNumber::MAX_AGE)
        .unwrap();
    assert!((240..=247).contains(&max_age), "Max-Age {max_age}");
    assert_eq!(runs.get(), 8, "refused, not executed");
    assert_eq!(server.stats().at_most_once_rejections, 1);
    // Idempotent requests are still served (and not remembered).
    let r = exchange(
        &mut server,
        t0.add_millis(1000),
        3,
        &request(Code::GET, 9, 3),
        &runs,
    );
    assert_eq!(code_of(&r[0]), Code::CONTENT);
    assert_eq!(runs.get(), 9);
    // A duplicate of the first POST is answered from the cache, not run again.
    let r = exchange(&mut server, t0.add_millis(2000), 1, &first, &runs);
    assert_eq!(code_of(&r[0]), Code::CHANGED);
    assert_eq!(runs.get(), 9);
    // Once the window has passed, room is made and POSTs run again.
    let later = t0.add_millis(248_000);
    let r = exchange(&mut server, later, 2, &request(Code::POST, 8, 2), &runs);
    assert_eq!(code_of(&r[0]), Code::CHANGED);
    assert_eq!(runs.get(), 10);
}

/// Many other requests after a POST (from many peers, as on a busy server) never make its
/// duplicate look new: idempotent ones may be forgotten, the POST is not.
#[test]
fn duplicate_post_after_fifty_thousand_requests_is_not_reexecuted() {
    let mut server: Server<512> = Server::new(Config::default(), 2);
    let runs = Cell::new(0);
    let post = request(Code::POST, 4242, 9);
    let t0 = Instant::ZERO;
    exchange(&mut server, t0, 7, &post, &runs);
    assert_eq!(runs.get(), 1);
    for k in 0..50_000u32 {
        let now = t0.add_millis(u64::from(k) * 2); // 100 s of load at 500 req/s
        let peer = 1000 + k;
        let r = exchange(
            &mut server,
            now,
            peer,
            &request(Code::GET, k as u16, 1),
            &runs,
        );
        assert_eq!(code_of(&r[0]), Code::CONTENT);
    }
    assert_eq!(runs.get(), 50_001);
    let r = exchange(&mut server, t0.add_millis(100_500), 7, &post, &runs);
    assert_eq!(runs.get(), 50_001, "the duplicate POST did not run again");
    // Its cached response was evicted by the load; an empty answer is the safe one.
    assert!(r.iter().all(|b| code_of(b) != Code::SERVICE_UNAVAILABLE));
    assert!(server.stats().duplicates >= 1);
}

/// PATCH is not idempotent either (RFC 8132 §3); iPATCH, PUT and DELETE are.
#[test]
fn patch_is_protected_ipatch_is_not() {
    let mut server: Server<2> = Server::new(Config::default(), 3);
    let runs = Cell::new(0);
    let t0 = Instant::ZERO;
    exchange(&mut server, t0, 1, &request(Code::PATCH, 1, 1), &runs);
    exchange(&mut server, t0, 1, &request(Code::PATCH, 2, 1), &runs);
    let r = exchange(&mut server, t0, 1, &request(Code::PATCH, 3, 1), &runs);
    assert_eq!(code_of(&r[0]), Code::SERVICE_UNAVAILABLE);
    for (mid, code) in [(4, Code::IPATCH), (5, Code::PUT), (6, Code::DELETE)] {
        let r = exchange(&mut server, t0, 1, &request(code, mid, 1), &runs);
        assert_ne!(code_of(&r[0]), Code::SERVICE_UNAVAILABLE, "{code}");
    }
    assert_eq!(runs.get(), 5);
}

/// A resource whose POST replaces state (an RD registration, RFC 9176 §5.3) declares it
/// idempotent: with the window full of at-most-once POSTs it is still served, while a
/// plain POST elsewhere gets 5.03. The declaration reaches the endpoint through the router.
#[test]
fn resource_declared_idempotent_post_is_served_when_the_window_is_full() {
    use coap_core::router::Resource;
    use coap_core::{Idempotence, IncomingRequest, ResponseWriter, Route, Router};

    struct Counter<'c>(&'c Cell<u32>, Idempotence);
    impl Resource<u32> for Counter<'_> {
        fn post(&mut self, _: &IncomingRequest<'_, u32>, w: &mut ResponseWriter<'_>) -> Outcome {
            self.0.set(self.0.get() + 1);
            w.set_code(Code::CHANGED);
            Outcome::Respond
        }
        fn idempotence(&self, _: &Message<'_>) -> Idempotence {
            self.1
        }
    }
    let (replacing, plain) = (Cell::new(0), Cell::new(0));
    let mut a = Counter(&replacing, Idempotence::Idempotent);
    let mut b = Counter(&plain, Idempotence::AtMostOnce);
    let mut router = Router::new([
        Route::new("/replace", &mut a as &mut dyn Resource<u32>),
        Route::new("/append", &mut b as &mut dyn Resource<u32>),
    ]);
    let mut server: Server<2> = Server::new(Config::default(), 4);
    let t0 = Instant::ZERO;
    let post = |path: &str, mid: u16| {
        let mut buf = [0u8; 64];
        let mut m = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, mid, &[1]).unwrap();
        m.option(OptionNumber::URI_PATH, path.as_bytes()).unwrap();
        m.into_bytes().to_vec()
    };
    let mut send = |server: &mut Server<2>, bytes: Vec<u8>| {
        server.handle_datagram(t0, 1, &bytes, &mut router);
        let mut buf = [0u8; 256];
        let t = server.poll_transmit(t0, &mut buf).unwrap();
        code_of(&buf[..t.len])
    };
    assert_eq!(send(&mut server, post("append", 1)), Code::CHANGED);
    assert_eq!(send(&mut server, post("append", 2)), Code::CHANGED);
    // Two at-most-once POSTs fill the window.
    assert_eq!(
        send(&mut server, post("append", 3)),
        Code::SERVICE_UNAVAILABLE
    );
    for mid in 10..20 {
        assert_eq!(send(&mut server, post("replace", mid)), Code::CHANGED);
    }
    assert_eq!((plain.get(), replacing.get()), (2, 10));
    assert_eq!(server.stats().at_most_once_rejections, 1);
}
