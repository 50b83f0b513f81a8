//! Message-layer and exchange rules of RFC 7252 §4 and §5, each checked on the simulator.

mod sim;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use coap_core::message::{MessageBuilder, MessageType};
use coap_core::{
    Code, Config, Endpoint, Event, IncomingRequest, Instant, NoServer, OptionNumber,
    Outcome as Handled, RequestParams, ResponseWriter,
};
use sim::{parse, Link, Outcome, Pair, CLIENT, SERVER};

/// A handler that counts executions and answers 2.04 with the count.
fn counting(
    counter: Rc<Cell<u32>>,
) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled {
    move |_req, resp| {
        counter.set(counter.get() + 1);
        let n = counter.get().to_string();
        resp.respond(Code::CHANGED, None, n.as_bytes()).unwrap();
        Handled::Respond
    }
}

fn post(pair_client: &mut Endpoint<u32>, now: Instant) -> coap_core::RequestId {
    pair_client
        .request(now, SERVER, RequestParams::con(Code::POST), |b| {
            b.option_str(OptionNumber::URI_PATH, "counter")?;
            b.payload(b"x")?;
            Ok(())
        })
        .unwrap()
}

#[test]
fn piggybacked_response_on_a_perfect_link() {
    let count = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(1, Link::PERFECT, counting(count.clone()));
    let id = post(&mut p.client, p.now);
    p.drive();
    assert_eq!(count.get(), 1);
    assert_eq!(p.events.len(), 1);
    match &p.events[0] {
        Outcome::Response {
            id: got,
            code,
            payload,
            ..
        } => {
            assert_eq!(
                (*got, *code, payload.as_slice()),
                (id, Code::CHANGED, b"1".as_slice())
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    // One request, one ACK with the response: nothing else on the wire.
    assert_eq!(p.sent.len(), 2);
    let ack = parse(&p.sent[1].bytes);
    assert_eq!(ack.ty(), MessageType::Ack);
    assert_eq!(ack.message_id(), parse(&p.sent[0].bytes).message_id());
    assert_eq!(ack.token(), parse(&p.sent[0].bytes).token());
}

/// §4.5: a duplicate CON gets the same ACK with the same piggybacked response, and the
/// handler runs once.
#[test]
fn duplicate_con_gets_same_ack_and_is_executed_once() {
    let count = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(2, Link::PERFECT, counting(count.clone()));
    post(&mut p.client, p.now);
    p.flush();
    let req = p.sent[0].bytes.clone();
    let mut buf = [0u8; 1152];
    let mut acks = Vec::new();
    for _ in 0..3 {
        p.inject_to_server(CLIENT, &req);
        while let Some(t) = p.server.poll_transmit(p.now, &mut buf) {
            acks.push(buf[..t.len].to_vec());
        }
    }
    assert_eq!(count.get(), 1);
    assert_eq!(acks.len(), 3);
    assert!(acks.iter().all(|a| a == &acks[0]), "identical ACKs");
    assert_eq!(parse(&acks[0]).payload(), b"1");
    assert_eq!(p.server.stats().duplicates, 2);
}

/// §4.5: NON duplicates are ignored.
#[test]
fn duplicate_non_ignored() {
    let count = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(3, Link::PERFECT, counting(count.clone()));
    p.client
        .request(p.now, SERVER, RequestParams::non(Code::POST), |_| Ok(()))
        .unwrap();
    p.flush();
    let req = p.sent[0].bytes.clone();
    p.inject_to_server(CLIENT, &req);
    p.inject_to_server(CLIENT, &req);
    let mut buf = [0u8; 1152];
    let mut out = Vec::new();
    while let Some(t) = p.server.poll_transmit(p.now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    assert_eq!(count.get(), 1);
    assert_eq!(out.len(), 1);
    assert_eq!(parse(&out[0]).ty(), MessageType::Non);
}

/// §4.2: retransmission timing on the virtual clock: first timeout in [2 s, 3 s], then
/// doubling; four retransmissions, the last within MAX_TRANSMIT_SPAN; Timeout at the end
/// of the last timeout, within MAX_TRANSMIT_WAIT.
#[test]
fn retransmission_timing_is_exactly_rfc_7252_4_2() {
    for seed in 0..200 {
        let link = Link {
            loss: 1000,
            dup: 0,
            delay_ms: (1, 1),
        };
        let mut p: Pair<_> = Pair::new(seed, link, NoServer);
        let t0 = p.now;
        let id = post(&mut p.client, p.now);
        p.drive();
        let tx: Vec<u64> = p
            .sent_by(CLIENT)
            .iter()
            .map(|(t, _)| t.as_millis() - t0.as_millis())
            .collect();
        assert_eq!(tx.len(), 5, "1 transmission + MAX_RETRANSMIT 4");
        let first = tx[1];
        assert!((2000..=3000).contains(&first), "initial timeout {first}");
        for k in 1..5 {
            assert_eq!(tx[k] - tx[k - 1], first << (k - 1), "doubling at {k}");
        }
        assert!(
            tx[4] <= 45_000,
            "last retransmission within MAX_TRANSMIT_SPAN"
        );
        let all: Vec<_> = p.sent_by(CLIENT).iter().map(|(_, b)| b.clone()).collect();
        assert!(
            all.iter().all(|b| b == &all[0]),
            "same MID and bytes on every retransmission"
        );
        assert_eq!(p.events, vec![Outcome::Timeout(id)]);
        let gave_up = p.now.as_millis() - t0.as_millis();
        assert_eq!(gave_up, first * 31);
        assert!(gave_up <= 93_000, "within MAX_TRANSMIT_WAIT");
    }
}

/// §4.3: an Empty CON (ping) is answered with RST.
#[test]
fn ping_gets_rst() {
    let mut p: Pair<_> = Pair::new(4, Link::PERFECT, NoServer);
    p.inject_to_server(CLIENT, &[0x40, 0x00, 0x12, 0x34]);
    let mut buf = [0u8; 64];
    let t = p.server.poll_transmit(p.now, &mut buf).unwrap();
    assert_eq!(&buf[..t.len], &[0x70, 0x00, 0x12, 0x34]);
    assert_eq!(t.peer, CLIENT);
}

/// §4.2/§4.3: a format error in a CON gets RST; in a NON it is silently dropped; an
/// unknown version is ignored.
#[test]
fn malformed_con_rst_non_dropped() {
    let mut p: Pair<_> = Pair::new(5, Link::PERFECT, NoServer);
    let mut buf = [0u8; 64];
    // CON with TKL 9.
    p.inject_to_server(CLIENT, &[0x49, 0x01, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let t = p.server.poll_transmit(p.now, &mut buf).unwrap();
    assert_eq!(&buf[..t.len], &[0x70, 0x00, 0xab, 0xcd]);
    // NON with a payload marker and no payload.
    p.inject_to_server(CLIENT, &[0x50, 0x01, 0, 1, 0xff]);
    // Version 2.
    p.inject_to_server(CLIENT, &[0x80, 0x01, 0, 2]);
    assert!(p.server.poll_transmit(p.now, &mut buf).is_none());
    assert_eq!(p.server.stats().malformed, 3);
}

/// §5.4.1: an unrecognized critical option in a request gets 4.02 Bad Option, and the
/// handler never sees the request.
#[test]
fn unknown_critical_option_in_request_gets_4_02() {
    let count = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(6, Link::PERFECT, counting(count.clone()));
    let id = p
        .client
        .request(p.now, SERVER, RequestParams::con(Code::GET), |b| {
            b.option(OptionNumber(2049), b"?")?;
            Ok(())
        })
        .unwrap();
    p.drive();
    assert_eq!(count.get(), 0);
    assert!(
        matches!(&p.events[..], [Outcome::Response { id: i, code: Code::BAD_OPTION, .. }] if *i == id)
    );
}

/// §5.4.1: an unrecognized critical option in a CON response → RST, not delivered.
#[test]
fn unknown_critical_option_in_con_response_gets_rst() {
    let cfg = Config {
        request_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let mut p: Pair<_> = Pair::with_config(
        7,
        Link {
            loss: 1000,
            ..Link::PERFECT
        },
        NoServer,
        cfg,
    );
    let id = p
        .client
        .request(p.now, SERVER, RequestParams::non(Code::GET), |_| Ok(()))
        .unwrap();
    p.flush();
    let req = parse(&p.sent[0].bytes);
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::Con,
        Code::CONTENT,
        0x4242,
        req.token(),
    )
    .unwrap();
    b.option(OptionNumber(9999), b"!").unwrap();
    let resp = b.into_bytes().to_vec();
    p.client
        .handle_datagram(p.now, SERVER, &resp, &mut NoServer);
    let mut out = [0u8; 64];
    let t = p.client.poll_transmit(p.now, &mut out).unwrap();
    assert_eq!(&out[..t.len], &[0x70, 0x00, 0x42, 0x42]);
    p.drive();
    assert_eq!(p.events, vec![Outcome::Timeout(id)]);
}

/// §5.2.2: a deferred response: empty ACK at once, then a CON response retransmitted
/// until ACKed; the client ACKs it and gets exactly one Response.
#[test]
fn separate_response_con_retransmitted_until_acked() {
    let handle = Rc::new(Cell::new(None));
    let h2 = handle.clone();
    let handler = move |req: &IncomingRequest<'_, u32>, _: &mut ResponseWriter<'_>| {
        h2.set(Some(req.handle()));
        Handled::Defer
    };
    // Lossy from server to client for the first response transmission only.
    let mut p: Pair<_> = Pair::new(8, Link::PERFECT, handler);
    let id = p
        .client
        .request(p.now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    p.drive_until(p.now.add_millis(100));
    // Request + empty ACK.
    assert_eq!(p.sent.len(), 2);
    let ack = parse(&p.sent[1].bytes);
    assert_eq!((ack.ty(), ack.code()), (MessageType::Ack, Code::EMPTY));
    // The app answers 5 s later; drop the first transmission by answering while the link
    // is down.
    p.drive_until(p.now.add_millis(5000));
    p.link = Link {
        loss: 1000,
        ..Link::PERFECT
    };
    let h = handle.get().unwrap();
    let now = p.now;
    p.server
        .respond(now, h, |w| w.respond(Code::CONTENT, None, b"later"))
        .unwrap();
    p.flush();
    p.link = Link::PERFECT;
    p.drive();
    let server_sent: Vec<_> = p.sent_by(SERVER);
    let cons: Vec<_> = server_sent
        .iter()
        .filter(|(_, b)| parse(b).ty() == MessageType::Con)
        .collect();
    assert_eq!(cons.len(), 2, "first CON lost, retransmitted once");
    assert!(
        matches!(&p.events[..], [Outcome::Response { id: i, payload, .. }] if *i == id && payload == b"later")
    );
    // The client ACKed the separate response with its Message ID.
    let last_client = p.sent_by(CLIENT).last().unwrap().1.clone();
    let m = parse(&last_client);
    assert_eq!(
        (m.ty(), m.code(), m.message_id()),
        (
            MessageType::Ack,
            Code::EMPTY,
            parse(&cons[1].1).message_id()
        )
    );
    assert_eq!(
        p.server.slots_in_use(),
        0,
        "server slot freed after the ACK"
    );
}

/// §5.2.2 with a delayed empty ACK: a response ready before the delay is piggybacked.
#[test]
fn deferred_response_piggybacked_when_fast() {
    let handle = Rc::new(Cell::new(None));
    let h2 = handle.clone();
    let handler = move |req: &IncomingRequest<'_, u32>, _: &mut ResponseWriter<'_>| {
        h2.set(Some(req.handle()));
        Handled::Defer
    };
    let cfg = Config {
        separate_ack_delay: Duration::from_millis(500),
        ..Config::default()
    };
    let mut p: Pair<_> = Pair::with_config(9, Link::PERFECT, handler, cfg);
    p.client
        .request(p.now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    p.drive_until(p.now.add_millis(100));
    let h = handle.get().unwrap();
    let now = p.now;
    p.server
        .respond(now, h, |w| w.respond(Code::CONTENT, None, b"quick"))
        .unwrap();
    p.drive();
    assert_eq!(p.sent.len(), 2);
    let ack = parse(&p.sent[1].bytes);
    assert_eq!(
        (ack.ty(), ack.code(), ack.payload()),
        (MessageType::Ack, Code::CONTENT, b"quick".as_slice())
    );
}

/// Requests have a total deadline, NON too: the application gets Timeout.
#[test]
fn non_request_times_out() {
    let cfg = Config {
        request_timeout: Duration::from_secs(7),
        ..Config::default()
    };
    let link = Link {
        loss: 1000,
        ..Link::PERFECT
    };
    let mut p: Pair<_> = Pair::with_config(10, link, NoServer, cfg);
    let t0 = p.now;
    let id = p
        .client
        .request(p.now, SERVER, RequestParams::non(Code::GET), |_| Ok(()))
        .unwrap();
    p.drive();
    assert_eq!(p.events, vec![Outcome::Timeout(id)]);
    assert_eq!(p.now.as_millis() - t0.as_millis(), 7000);
    assert_eq!(p.sent.len(), 1, "NON is never retransmitted");
}

/// §4.7 NSTART = 1: a second request to the same peer waits for the first.
#[test]
fn nstart_queues_further_requests() {
    let count = Rc::new(Cell::new(0));
    let link = Link {
        delay_ms: (50, 50),
        ..Link::PERFECT
    };
    let mut p: Pair<_> = Pair::new(11, link, counting(count.clone()));
    let a = post(&mut p.client, p.now);
    let b = post(&mut p.client, p.now);
    p.flush();
    assert_eq!(p.sent.len(), 1, "only one outstanding");
    p.drive();
    assert_eq!(count.get(), 2);
    let ids: Vec<_> = p.events.iter().map(|e| e.id()).collect();
    assert_eq!(ids, vec![a, b]);
    // The second went out only after the first response arrived (100 ms round trip).
    let client_tx = p.sent_by(CLIENT);
    assert_eq!(client_tx[1].0.as_millis() - client_tx[0].0.as_millis(), 100);
}

/// §4.7 PROBING_RATE: after a peer did not answer, the next request waits len/1 B/s.
#[test]
fn probing_rate_after_unanswered_exchange() {
    let cfg = Config {
        request_timeout: Duration::from_secs(60),
        nstart: 2,
        ..Config::default()
    };
    let link = Link {
        loss: 1000,
        ..Link::PERFECT
    };
    let mut p: Pair<_> = Pair::with_config(12, link, NoServer, cfg);
    p.client
        .request(p.now, SERVER, RequestParams::non(Code::GET), |_| Ok(()))
        .unwrap();
    p.drive();
    // The peer is now unresponsive: two requests back to back; NSTART 2 would let both go
    // at once, PROBING_RATE (1 byte/s) spaces them by the first one's size.
    let t1 = p.now;
    p.client
        .request(p.now, SERVER, RequestParams::non(Code::GET), |_| Ok(()))
        .unwrap();
    p.client
        .request(p.now, SERVER, RequestParams::non(Code::GET), |_| Ok(()))
        .unwrap();
    p.drive();
    let tx = p.sent_by(CLIENT);
    assert_eq!(tx.len(), 3);
    let len = tx[1].1.len() as u64;
    assert_eq!(tx[1].0, t1);
    assert_eq!(tx[2].0.as_millis() - tx[1].0.as_millis(), len * 1000);
}

/// §5.3.1 / §4.4: random tokens of the configured length, Message IDs from a random
/// start, consecutive per peer.
#[test]
fn tokens_random_mids_sequential_per_peer() {
    let mut p: Pair<_> = Pair::new(13, Link::PERFECT, NoServer);
    let cfg_nstart = Config {
        nstart: 8,
        ..Config::default()
    };
    p.client = Endpoint::new(cfg_nstart, 99);
    for _ in 0..3 {
        p.client
            .request(p.now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
            .unwrap();
    }
    p.flush();
    let msgs: Vec<_> = p.sent.iter().map(|d| d.bytes.clone()).collect();
    let m: Vec<_> = msgs.iter().map(|b| parse(b)).collect();
    assert!(m.iter().all(|m| m.token().len() == 8));
    assert_ne!(m[0].token(), m[1].token());
    assert_eq!(m[1].message_id(), m[0].message_id().wrapping_add(1));
    assert_eq!(m[2].message_id(), m[0].message_id().wrapping_add(2));
    let other: Endpoint<u32> = Endpoint::new(cfg_nstart, 100);
    let mut other = other;
    other
        .request(p.now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    let mut buf = [0u8; 64];
    let t = other.poll_transmit(p.now, &mut buf).unwrap();
    assert_ne!(
        parse(&buf[..t.len]).message_id(),
        m[0].message_id(),
        "seed-dependent start"
    );
}

/// A RST to our CON ends the exchange with Reset.
#[test]
fn rst_gives_reset_event() {
    let mut p: Pair<_> = Pair::new(14, Link::PERFECT, NoServer);
    let id = p
        .client
        .request(p.now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    p.flush();
    let mid = parse(&p.sent[0].bytes).message_id().to_be_bytes();
    p.client
        .handle_datagram(p.now, SERVER, &[0x70, 0, mid[0], mid[1]], &mut NoServer);
    p.flush();
    assert_eq!(p.events, vec![Outcome::Reset(id)]);
}

/// A response from the wrong peer, or with the wrong token, is not taken (§5.3.2).
#[test]
fn responses_matched_by_token_and_peer() {
    let mut p: Pair<_> = Pair::new(15, Link::PERFECT, NoServer);
    p.client
        .request(p.now, SERVER, RequestParams::non(Code::GET), |_| Ok(()))
        .unwrap();
    p.flush();
    let req = parse(&p.sent[0].bytes);
    let token = req.token().to_vec();
    let mut buf = [0u8; 64];
    let resp = MessageBuilder::new(&mut buf, MessageType::Non, Code::CONTENT, 1, &token)
        .unwrap()
        .into_bytes()
        .to_vec();
    p.client.handle_datagram(p.now, 77, &resp, &mut NoServer);
    let mut bad = resp.clone();
    bad[4] ^= 0xff;
    p.client.handle_datagram(p.now, SERVER, &bad, &mut NoServer);
    p.flush();
    assert!(p.events.is_empty());
    p.client
        .handle_datagram(p.now, SERVER, &resp, &mut NoServer);
    p.flush();
    assert_eq!(p.events.len(), 1);
}

/// §5.9.3.4: when no slot is free the server answers 5.03 with Max-Age.
#[test]
fn full_tables_answer_5_03_with_max_age() {
    let handler = |_: &IncomingRequest<'_, u32>, _: &mut ResponseWriter<'_>| Handled::Defer;
    // Three peers, each within its share, and every slot allowed to be long-held: the
    // pool itself is what runs out (the shares are core/tests/fairness.rs's subject).
    let config = Config {
        held_slot_share_percent: 100,
        ..Config::default()
    };
    let mut server: Endpoint<u32, 2> = Endpoint::new(config, 1);
    let mut h = handler;
    let mut buf = [0u8; 64];
    let mut out = Vec::new();
    for mid in 0..3u16 {
        let m = mid.to_be_bytes();
        let peer = 9 + u32::from(mid);
        server.handle_datagram(Instant::ZERO, peer, &[0x41, 0x01, m[0], m[1], 0xaa], &mut h);
        while let Some(t) = server.poll_transmit(Instant::ZERO, &mut buf) {
            out.push(buf[..t.len].to_vec());
        }
    }
    // Two empty ACKs (deferred), then 5.03 with Max-Age 2.
    assert_eq!(out.len(), 3);
    let last = parse(&out[2]);
    assert_eq!(last.code(), Code::SERVICE_UNAVAILABLE);
    assert_eq!(last.uint_option(OptionNumber::MAX_AGE), Some(2));
    assert_eq!(last.token(), &[0xaa]);
    assert_eq!(server.stats().busy_rejections, 1);
    // The client API refuses with an error, never grows.
    let mut client: Endpoint<u32, 2> = Endpoint::new(
        Config {
            nstart: 4,
            ..Config::default()
        },
        2,
    );
    client
        .request(Instant::ZERO, 1, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    client
        .request(Instant::ZERO, 1, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    assert_eq!(
        client.request(Instant::ZERO, 1, RequestParams::con(Code::GET), |_| Ok(())),
        Err(coap_core::Error::Busy)
    );
}

/// Cancelled requests report nothing.
#[test]
fn cancel_suppresses_events() {
    let mut p: Pair<_> = Pair::new(16, Link::PERFECT, NoServer);
    let id = p
        .client
        .request(p.now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    assert!(p.client.cancel(id));
    p.drive();
    assert!(p.events.is_empty());
    assert_eq!(p.client.slots_in_use(), 0);
}

/// The endpoint's size with 8 slots of 1152 bytes (goal ≤ 12 KiB plus 64 bytes for the
/// fairness counters of issue 26: a byte per peer entry, the pool's total, three Stats
/// counters), recorded in BENCHMARKS.md.
#[test]
fn endpoint_size() {
    let n = core::mem::size_of::<Endpoint<std::net::SocketAddr, 8, 1152>>();
    let n32 = core::mem::size_of::<Endpoint<u32, 8, 1152>>();
    println!(
        "size_of::<Endpoint<SocketAddr, 8, 1152>>() = {n} bytes; with a 4-byte address: {n32}"
    );
    assert!(
        n <= 12 * 1024 + 64,
        "{n} bytes exceeds the 12 KiB + 64 B goal"
    );
}

/// Event borrowing: a Response borrows the slot until the next poll_event.
#[test]
fn response_event_borrows_until_next_poll() {
    let count = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(17, Link::PERFECT, counting(count));
    post(&mut p.client, p.now);
    // Drive without collecting client events.
    let mut buf = [0u8; 1152];
    let t = p.client.poll_transmit(p.now, &mut buf).unwrap();
    let req = buf[..t.len].to_vec();
    p.inject_to_server(CLIENT, &req);
    let t = p.server.poll_transmit(p.now, &mut buf).unwrap();
    let resp = buf[..t.len].to_vec();
    p.client
        .handle_datagram(p.now, SERVER, &resp, &mut NoServer);
    assert_eq!(p.client.slots_in_use(), 1);
    match p.client.poll_event() {
        Some(Event::Response { message, .. }) => assert_eq!(message.payload(), b"1"),
        e => panic!("{e:?}"),
    }
    assert!(p.client.poll_event().is_none());
    assert_eq!(p.client.slots_in_use(), 0);
}

mod routing {
    use super::*;
    use coap_core::{Resource, Route, Router};

    struct Hello;
    impl Resource<u32> for Hello {
        fn get(&mut self, _: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>) -> Handled {
            resp.respond(
                Code::CONTENT,
                Some(coap_core::ContentFormat::TEXT_PLAIN),
                b"hi",
            )
            .unwrap();
            Handled::Respond
        }
        fn link_attributes(&self) -> &str {
            "rt=\"greeting\";ct=0"
        }
    }
    struct Files;
    impl Resource<u32> for Files {
        fn get(
            &mut self,
            req: &IncomingRequest<'_, u32>,
            resp: &mut ResponseWriter<'_>,
        ) -> Handled {
            let n = req.message().uri_path().count();
            resp.respond(Code::CONTENT, None, n.to_string().as_bytes())
                .unwrap();
            Handled::Respond
        }
    }

    fn get(path: &[&str], method: Code) -> (Code, Vec<u8>, Option<u16>) {
        let mut hello = Hello;
        let mut files = Files;
        let mut hello2 = Hello;
        let mut routes: [Route<'_, &mut dyn Resource<u32>>; 3] = [
            Route::new("/hello", &mut hello),
            Route::prefix("/files", &mut files),
            Route::new("/files/special", &mut hello2),
        ];
        let router = Router::new(&mut routes[..]);
        let mut p: Pair<_> = Pair::new(40, Link::PERFECT, router);
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        p.client
            .request(p.now, SERVER, RequestParams::con(method), |b| {
                for s in &path {
                    b.option_str(OptionNumber::URI_PATH, s)?;
                }
                Ok(())
            })
            .unwrap();
        p.drive();
        let resp = p.sent_by(SERVER).last().unwrap().1.clone();
        let m = parse(&resp);
        (m.code(), m.payload().to_vec(), m.content_format())
    }

    #[test]
    fn dispatch_404_405_prefix_and_exact() {
        assert_eq!(
            get(&["hello"], Code::GET),
            (Code::CONTENT, b"hi".to_vec(), Some(0))
        );
        assert_eq!(get(&["hello"], Code::POST).0, Code::METHOD_NOT_ALLOWED);
        assert_eq!(
            get(&["hello"], Code::new(0, 9)).0,
            Code::METHOD_NOT_ALLOWED,
            "unknown method: 4.05 (§5.8)"
        );
        assert_eq!(get(&["nothing"], Code::GET).0, Code::NOT_FOUND);
        assert_eq!(get(&["hello", "x"], Code::GET).0, Code::NOT_FOUND);
        assert_eq!(get(&["files", "a", "b"], Code::GET).1, b"3");
        assert_eq!(get(&["files"], Code::GET).1, b"1");
        assert_eq!(
            get(&["files", "special"], Code::GET).1,
            b"hi",
            "exact beats prefix"
        );
    }

    #[test]
    fn well_known_core_lists_routes() {
        let (code, body, cf) = get(&[".well-known", "core"], Code::GET);
        assert_eq!(code, Code::CONTENT);
        assert_eq!(cf, Some(40));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "</hello>;rt=\"greeting\";ct=0,</files>,</files/special>;rt=\"greeting\";ct=0"
        );
        assert_eq!(
            get(&[".well-known", "core"], Code::POST).0,
            Code::METHOD_NOT_ALLOWED
        );
    }
}

/// §5.4.1 for NON: a NON request with an unknown critical option is rejected with RST;
/// §5.7.2: Proxy-Uri / Proxy-Scheme to a non-proxy get 5.05; OSCORE without support 4.02.
#[test]
fn non_bad_option_rst_proxy_5_05_oscore_4_02() {
    let mut server: Endpoint<u32> = Endpoint::new(Config::default(), 1);
    let mut h = |_: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
        resp.respond(Code::CONTENT, None, b"served").unwrap();
        Handled::Respond
    };
    let mut exchange = |ty: MessageType, mid: u16, option: OptionNumber, value: &[u8]| {
        let mut buf = [0u8; 128];
        let mut b = MessageBuilder::new(&mut buf, ty, Code::GET, mid, &[7]).unwrap();
        b.option(option, value).unwrap();
        let req = b.into_bytes().to_vec();
        server.handle_datagram(Instant::ZERO, 9, &req, &mut h);
        let mut out = [0u8; 128];
        let t = server.poll_transmit(Instant::ZERO, &mut out).unwrap();
        out[..t.len].to_vec()
    };
    let r = exchange(MessageType::Non, 1, OptionNumber(2049), b"x");
    assert_eq!(&r[..], &[0x70, 0, 0, 1], "RST with the request's MID");
    let r = exchange(
        MessageType::Con,
        2,
        OptionNumber::PROXY_URI,
        b"coap://198.51.100.1/hello",
    );
    assert_eq!(parse(&r).code(), Code::PROXYING_NOT_SUPPORTED);
    let r = exchange(MessageType::Con, 3, OptionNumber::PROXY_SCHEME, b"coap");
    assert_eq!(parse(&r).code(), Code::PROXYING_NOT_SUPPORTED);
    let r = exchange(MessageType::Con, 4, OptionNumber::OSCORE, &[0x09, 0x00]);
    assert_eq!(parse(&r).code(), Code::BAD_OPTION);
}

/// A server that demands freshness (RFC 9175 §2.3): without the Echo value it issued,
/// 4.01 Unauthorized carrying Echo; with it, 2.05. `always` never accepts.
fn echo_demanding(
    seen: Rc<Cell<u32>>,
    always: bool,
) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled {
    move |req, resp| {
        seen.set(seen.get() + 1);
        let echo = req.message().option(OptionNumber::ECHO).map(|o| o.value);
        if echo == Some(b"fresh".as_slice()) && !always {
            resp.respond(Code::CONTENT, None, req.payload()).unwrap();
        } else {
            resp.set_code(Code::UNAUTHORIZED);
            resp.option(OptionNumber::ECHO, b"fresh").unwrap();
        }
        Handled::Respond
    }
}

#[test]
fn unauthorized_with_echo_repeats_the_request_once_with_that_echo() {
    // RFC 9175 §2.4: the client repeats the request with the Echo value it got.
    let seen = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(3, Link::PERFECT, echo_demanding(seen.clone(), false));
    let id = post(&mut p.client, p.now);
    p.drive();
    assert_eq!(seen.get(), 2, "the request reached the server twice");
    let sent = p.sent_by(CLIENT);
    assert_eq!(sent.len(), 2);
    let (first, second) = (parse(&sent[0].1), parse(&sent[1].1));
    assert!(first.option(OptionNumber::ECHO).is_none());
    assert_eq!(
        second.option(OptionNumber::ECHO).map(|o| o.value),
        Some(b"fresh".as_slice())
    );
    // A new exchange on the wire (new Message ID), same request otherwise.
    assert_ne!(first.message_id(), second.message_id());
    assert_eq!(first.token(), second.token());
    assert_eq!(second.payload(), b"x");
    assert_eq!(second.uri_path().next(), Some(b"counter".as_slice()));
    match p.events.as_slice() {
        [Outcome::Response {
            id: got,
            code,
            payload,
            ..
        }] => assert_eq!(
            (*got, *code, payload.as_slice()),
            (id, Code::CONTENT, &b"x"[..])
        ),
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn a_second_echo_challenge_is_delivered_not_followed() {
    // A server that keeps answering 4.01 + Echo cannot make the client loop.
    let seen = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(4, Link::PERFECT, echo_demanding(seen.clone(), true));
    let id = post(&mut p.client, p.now);
    p.drive();
    assert_eq!(seen.get(), 2);
    match p.events.as_slice() {
        [Outcome::Response { id: got, code, .. }] => {
            assert_eq!((*got, *code), (id, Code::UNAUTHORIZED))
        }
        e => panic!("unexpected {e:?}"),
    }
}
