//! The server exchange over a reliable connection (`reliable::ServerExchange`), sans-IO: a
//! client connection's requests, through the stream framer, served by a `Router` on a
//! server connection: 4.02 for an unrecognised critical option even in what would be a NON
//! over UDP (RFC 7252 §5.4.1; there is no RST over TCP, RFC 8323 §3.4), Block2 by offset
//! within the peer's Max-Message-Size (RFC 7959 §2.4, RFC 8323 §5.3.1), observe
//! registration and notifications in order (RFC 7641 §4.1 over RFC 8323 §7), deferred
//! answers, an error notification ending the observation (RFC 7641 §4.2), and a request
//! its handler ignores no longer counting as in progress.
#![cfg(feature = "reliable")]

use coap_core::reliable::{
    response_handle, Connection, ConnectionConfig, Event, Framer, Framing, ReliableMessage, Served,
    ServerExchange,
};
use coap_core::{
    Block, Code, IncomingRequest, Instant, Message, OptionNumber, Outcome, Resource,
    ResponseWriter, Route, Router,
};

const BIG: usize = 3000;

struct Big;
impl Resource<u8> for Big {
    fn get(&mut self, _: &IncomingRequest<'_, u8>, w: &mut ResponseWriter<'_>) -> Outcome {
        let body: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        let _ = w.payload_blockwise(&body);
        Outcome::Respond
    }
}

struct Clock;
impl Resource<u8> for Clock {
    fn get(&mut self, _: &IncomingRequest<'_, u8>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.observable(7);
        let _ = w.payload(b"t0");
        Outcome::Respond
    }
}

struct Silent;
impl Resource<u8> for Silent {
    fn get(&mut self, _: &IncomingRequest<'_, u8>, _: &mut ResponseWriter<'_>) -> Outcome {
        Outcome::Ignore
    }
}

struct Later;
impl Resource<u8> for Later {
    fn get(&mut self, _: &IncomingRequest<'_, u8>, _: &mut ResponseWriter<'_>) -> Outcome {
        Outcome::Defer
    }
}

/// A client and a server connection past the CSM exchange.
struct Pair {
    client: Connection,
    server: Connection,
    out: Vec<u8>,
    seq: u32,
}

impl Pair {
    fn new() -> Pair {
        let cfg = ConnectionConfig::default();
        let mut client = Connection::new(Instant::ZERO, Framing::Stream, cfg);
        let mut server = Connection::new(Instant::ZERO, Framing::Stream, cfg);
        let mut buf = [0u8; 64];
        let n = client.poll_transmit(&mut buf).unwrap().unwrap();
        assert!(matches!(
            server.handle_message(&buf[..n]),
            Some(Event::PeerSettings(_))
        ));
        let n = server.poll_transmit(&mut buf).unwrap().unwrap();
        assert!(matches!(
            client.handle_message(&buf[..n]),
            Some(Event::PeerSettings(_))
        ));
        Pair {
            client,
            server,
            out: vec![0; 1152],
            seq: 0,
        }
    }

    /// Sends a GET from the client, serves it, and returns what was served and the
    /// answer's bytes.
    fn get(&mut self, token: &[u8], opts: &[(OptionNumber, Vec<u8>)]) -> (Served, Vec<u8>) {
        let mut req = vec![0u8; 256];
        let n = self
            .client
            .send_request(&mut req, Code::GET, token, |b| {
                for (num, v) in opts {
                    b.option(*num, v)?;
                }
                Ok(())
            })
            .unwrap();
        let mut rx = vec![0u8; 1152];
        let mut framer = Framer::new(&mut rx, 1152);
        framer.push(&req[..n]);
        let frame = framer.next_frame().unwrap().unwrap().to_vec();
        let Some(Event::Request(msg)) = self.server.handle_message(&frame) else {
            panic!("a request");
        };
        let mut router = Router::new(vec![
            Route::new("/big", Box::new(Big) as Box<dyn Resource<u8>>),
            Route::new("/clock", Box::new(Clock)),
            Route::new("/later", Box::new(Later)),
            Route::new("/silent", Box::new(Silent)),
        ]);
        let mut ex = ServerExchange {
            conn: &mut self.server,
            out: &mut self.out,
            observe_seq: &mut self.seq,
        };
        let served = ex
            .serve(&msg, &mut router, 1u8, Instant::ZERO, response_handle(1))
            .unwrap();
        let bytes = match served {
            Served::Response { len, .. } => self.out[..len].to_vec(),
            _ => Vec::new(),
        };
        (served, bytes)
    }
}

fn path(p: &str) -> Vec<(OptionNumber, Vec<u8>)> {
    vec![(OptionNumber::URI_PATH, p.as_bytes().to_vec())]
}

fn parsed(bytes: &[u8]) -> Message<'_> {
    ReliableMessage::parse(bytes, Framing::Stream)
        .unwrap()
        .as_udp_view()
}

#[test]
fn unrecognised_critical_option_gets_4_02() {
    let mut p = Pair::new();
    let mut opts = path("big");
    opts.push((OptionNumber(9), b"x".to_vec()));
    let (served, bytes) = p.get(&[1], &opts);
    assert!(matches!(
        served,
        Served::Response {
            observing: None,
            ..
        }
    ));
    assert_eq!(parsed(&bytes).code(), Code::BAD_OPTION);
}

#[test]
fn block2_by_offset_within_max_message_size() {
    let mut p = Pair::new();
    let mut body = Vec::new();
    let mut num = 0;
    loop {
        let mut opts = path("big");
        if num > 0 {
            opts.push((OptionNumber::BLOCK2, vec![((num << 4) | 6) as u8]));
        }
        let (_, bytes) = p.get(&[2, num as u8], &opts);
        assert!(bytes.len() <= 1152, "within Max-Message-Size");
        let m = parsed(&bytes);
        assert_eq!(m.code(), Code::CONTENT);
        let b = Block::of(&m, OptionNumber::BLOCK2).expect("Block2");
        assert_eq!(b.num, num);
        body.extend_from_slice(m.payload());
        if !b.more {
            break;
        }
        num += 1;
        assert!(num < 10, "bounded");
    }
    let expected: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    assert_eq!(body, expected);
}

#[test]
fn observe_registers_notifies_in_order_and_an_error_ends_it() {
    let mut p = Pair::new();
    let mut opts = vec![(OptionNumber::OBSERVE, Vec::new())];
    opts.extend(path("clock"));
    let (served, bytes) = p.get(&[3], &opts);
    assert!(matches!(
        served,
        Served::Response {
            observing: Some(7),
            ..
        }
    ));
    let first = parsed(&bytes).observe().expect("Observe in the answer");
    let mut ex = ServerExchange {
        conn: &mut p.server,
        out: &mut p.out,
        observe_seq: &mut p.seq,
    };
    let (n, goes_on) = ex.notify(&[3], |w| w.payload(b"t1").map(|_| ())).unwrap();
    assert!(goes_on);
    let second = parsed(&p.out[..n]).observe().unwrap();
    assert!(second > first, "{first} then {second}");
    // The client's connection takes it as a notification of the running exchange.
    let note = p.out[..n].to_vec();
    assert!(matches!(
        p.client.handle_message(&note),
        Some(Event::Response { last: false, .. })
    ));
    let mut ex = ServerExchange {
        conn: &mut p.server,
        out: &mut p.out,
        observe_seq: &mut p.seq,
    };
    let (n, goes_on) = ex
        .notify(&[3], |w| {
            w.set_code(Code::NOT_FOUND);
            Ok(())
        })
        .unwrap();
    assert!(!goes_on, "an error ends the observation");
    let end = p.out[..n].to_vec();
    assert!(parsed(&end).observe().is_none());
    assert!(matches!(
        p.client.handle_message(&end),
        Some(Event::Response { last: true, .. })
    ));
}

#[test]
fn deferred_answer_goes_out_later() {
    let mut p = Pair::new();
    let (served, _) = p.get(&[4], &path("later"));
    let Served::Deferred(d) = served else {
        panic!("{served:?}");
    };
    assert_eq!(d.token(), &[4]);
    let mut ex = ServerExchange {
        conn: &mut p.server,
        out: &mut p.out,
        observe_seq: &mut p.seq,
    };
    let Served::Response { len, .. } = ex
        .respond(&d, |w| w.respond(Code::CHANGED, None, b"done"))
        .unwrap()
    else {
        panic!("a response");
    };
    let m = parsed(&p.out[..len]);
    assert_eq!(
        (m.code(), m.token(), m.payload()),
        (Code::CHANGED, &[4][..], &b"done"[..])
    );
}

#[test]
fn an_ignored_request_is_no_longer_in_progress() {
    let mut p = Pair::new();
    let (served, _) = p.get(&[5], &path("silent"));
    assert_eq!(served, Served::Ignored);
    // A Ping with Custody (RFC 8323 §5.4.1) waits for the requests before it to be
    // answered; the ignored one does not hold it back.
    let mut ping = [0u8; 16];
    p.client.ping(&[9], true).unwrap();
    let n = p.client.poll_transmit(&mut ping).unwrap().unwrap();
    assert!(p.server.handle_message(&ping[..n]).is_none());
    let mut pong = [0u8; 16];
    let n = p
        .server
        .poll_transmit(&mut pong)
        .unwrap()
        .expect("the Pong at once");
    assert!(matches!(
        p.client.handle_message(&pong[..n]),
        Some(Event::Pong { custody: true, .. })
    ));
    assert!(p.server.is_idle());
}
