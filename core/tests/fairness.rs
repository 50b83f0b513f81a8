//! Fairness between peers (issue 26): each peer's share of the message slots and the share
//! of all long-held exchanges (deferred requests, CON responses and notifications awaiting
//! their ACK), unacknowledged separate responses given up when room is needed, and the CON
//! cadence of notifications (RFC 7641 §4.5) with dead observers reaped.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coap_core::message::{Message, MessageBuilder, MessageType};
use coap_core::{
    Code, Config, Endpoint, IncomingRequest, Instant, OptionNumber, Outcome, ResponseHandle,
    ResponseWriter,
};

const KEY: u32 = 5;

type Handles = Rc<RefCell<Vec<ResponseHandle>>>;

/// `/sep` is answered later (deferred, RFC 7252 §5.2.2), `/obs` is observable, anything
/// else at once.
fn handler(
    handles: Handles,
) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Outcome {
    move |req, resp| {
        let path: Vec<&[u8]> = req
            .message()
            .options()
            .filter(|o| o.number == OptionNumber::URI_PATH)
            .map(|o| o.value)
            .collect();
        match path.first().copied() {
            Some(b"sep") => {
                handles.borrow_mut().push(req.handle());
                Outcome::Defer
            }
            Some(b"obs") => {
                resp.observable(KEY);
                resp.respond(Code::CONTENT, None, b"0").unwrap();
                Outcome::Respond
            }
            _ => {
                resp.respond(Code::CONTENT, None, b"now").unwrap();
                Outcome::Respond
            }
        }
    }
}

fn request(ty: MessageType, mid: u16, token: u8, path: &str, observe: bool) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, ty, Code::GET, mid, &[token]).unwrap();
    if observe {
        b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
    }
    b.option_str(OptionNumber::URI_PATH, path).unwrap();
    b.into_bytes().to_vec()
}

/// What the endpoint sends now: (destination, type, code, Max-Age, Message ID).
fn sent<const N: usize, const O: usize>(
    server: &mut Endpoint<u32, N, 1152, 64, O>,
    now: Instant,
) -> Vec<(u32, MessageType, Code, Option<u32>, u16)> {
    let mut out = [0u8; 1152];
    let mut v = Vec::new();
    while let Some(t) = server.poll_transmit(now, &mut out) {
        let m = Message::parse(&out[..t.len]).unwrap();
        v.push((
            t.peer,
            m.ty(),
            m.code(),
            m.uint_option(OptionNumber::MAX_AGE),
            m.message_id(),
        ));
    }
    v
}

type Server = Endpoint<u32, 16, 1152, 64, 16>;

/// One peer beyond its share gets 5.03 with Max-Age for its next deferred request, and
/// another peer is still deferred (its empty ACK) and answered.
#[test]
fn a_greedy_peer_gets_5_03_and_others_are_still_served() {
    let handles = Handles::default();
    let mut h = handler(handles.clone());
    let config = Config {
        peer_slot_share_percent: 25, // 4 of 16 slots
        ..Config::default()
    };
    let mut server: Server = Endpoint::new(config, 1);
    let now = Instant::ZERO;
    let mut answers = Vec::new();
    for mid in 0..6u16 {
        server.handle_datagram(
            now,
            7,
            &request(MessageType::Con, mid, 1, "sep", false),
            &mut h,
        );
        answers.extend(sent(&mut server, now));
    }
    let empty_acks = answers
        .iter()
        .filter(|a| a.1 == MessageType::Ack && a.2 == Code::EMPTY)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.2 == Code::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(empty_acks, 4, "{answers:?}");
    assert_eq!(refused.len(), 2, "{answers:?}");
    assert!(refused.iter().all(|a| a.0 == 7 && a.3 == Some(2)));
    assert_eq!(server.slots_held_by(7), 4);
    assert_eq!(server.stats().share_rejections, 2);
    // Another peer: deferred as usual, then its separate CON response is acknowledged.
    server.handle_datagram(
        now,
        8,
        &request(MessageType::Con, 1, 1, "sep", false),
        &mut h,
    );
    assert_eq!(
        sent(&mut server, now),
        [(8, MessageType::Ack, Code::EMPTY, None, 1)]
    );
    let h8 = *handles.borrow().last().unwrap();
    server
        .respond(now, h8, |w| w.respond(Code::CONTENT, None, b"later"))
        .unwrap();
    let out = sent(&mut server, now);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0, out[0].1, out[0].2),
        (8, MessageType::Con, Code::CONTENT)
    );
    assert_eq!(server.slots_held_by(8), 1, "awaiting its ACK");
    let mut ack = [0u8; 4];
    coap_core::message::write_empty(&mut ack, MessageType::Ack, out[0].4).unwrap();
    server.handle_datagram(now, 8, &ack, &mut h);
    assert_eq!(server.slots_held_by(8), 0, "acknowledged: released");
    assert_eq!(server.slots_held(), 4);
}

/// Many peers each within their share: the share of all long-held exchanges keeps the
/// rest of the pool, so a request answered at once is still served; and once the separate
/// responses are out, unacknowledged (spoofed peers never answer), a new deferred request
/// gives one of them up instead of being refused.
#[test]
fn many_peers_leave_room_and_unacknowledged_separate_responses_are_given_up() {
    let handles = Handles::default();
    let mut h = handler(handles.clone());
    let config = Config {
        held_slot_share_percent: 50, // 8 of 16 slots
        ..Config::default()
    };
    let mut server: Server = Endpoint::new(config, 2);
    let now = Instant::ZERO;
    let mut refused = 0;
    for peer in 100..120u32 {
        server.handle_datagram(
            now,
            peer,
            &request(MessageType::Con, 1, 1, "sep", false),
            &mut h,
        );
        refused += sent(&mut server, now)
            .iter()
            .filter(|a| a.2 == Code::SERVICE_UNAVAILABLE)
            .count();
    }
    assert_eq!(server.slots_held(), 8);
    assert_eq!(refused, 12);
    // A legitimate peer's request answered at once is served.
    server.handle_datagram(
        now,
        9,
        &request(MessageType::Con, 1, 1, "now", false),
        &mut h,
    );
    let out = sent(&mut server, now);
    assert_eq!((out[0].0, out[0].2), (9, Code::CONTENT), "{out:?}");
    // While the application has not answered, a deferred request is refused (nothing can
    // be given up: the deferred exchanges are the application's).
    server.handle_datagram(
        now,
        9,
        &request(MessageType::Con, 2, 2, "sep", false),
        &mut h,
    );
    assert_eq!(sent(&mut server, now)[0].2, Code::SERVICE_UNAVAILABLE);
    // The application answers: eight separate CON responses nobody acknowledges.
    let t1 = now.add_millis(500);
    for handle in handles.borrow().iter() {
        let _ = server.respond(t1, *handle, |w| w.respond(Code::CONTENT, None, b"x"));
    }
    assert_eq!(sent(&mut server, t1).len(), 8);
    assert_eq!(server.slots_held(), 8);
    // The legitimate peer's deferred request now takes the place of one of them.
    server.handle_datagram(
        t1,
        9,
        &request(MessageType::Con, 3, 3, "sep", false),
        &mut h,
    );
    assert_eq!(
        sent(&mut server, t1),
        [(9, MessageType::Ack, Code::EMPTY, None, 3)]
    );
    assert_eq!(server.stats().unacknowledged_reclaimed, 1);
    assert_eq!(server.slots_held(), 8);
    assert_eq!(server.slots_held_by(9), 1);
    // Everything ends: the legitimate peer's answer is acknowledged, the rest give up
    // after their retransmissions, and the counts come back to zero.
    let handle = *handles.borrow().last().unwrap();
    server
        .respond(t1, handle, |w| w.respond(Code::CONTENT, None, b"y"))
        .unwrap();
    let mid = sent(&mut server, t1)
        .into_iter()
        .find(|a| a.0 == 9)
        .unwrap()
        .4;
    let mut ack = [0u8; 4];
    coap_core::message::write_empty(&mut ack, MessageType::Ack, mid).unwrap();
    server.handle_datagram(t1, 9, &ack, &mut h);
    let mut t = t1;
    // Past EXCHANGE_LIFETIME (247 s), when the cached answer to `/now` goes too.
    for _ in 0..300 {
        t = t.add_millis(1000);
        server.handle_timeout(t);
        sent(&mut server, t);
    }
    assert_eq!(server.slots_held(), 0);
    assert_eq!(server.slots_in_use(), 0);
}

/// A full pool gives up an unacknowledged separate response for any new exchange, even
/// one answered at once (RFC 7252 §5.9.3.4's 5.03 is then not needed).
#[test]
fn a_full_pool_gives_up_an_unacknowledged_separate_response() {
    let handles = Handles::default();
    let mut h = handler(handles.clone());
    let config = Config {
        held_slot_share_percent: 100,
        ..Config::default()
    };
    let mut server: Server = Endpoint::new(config, 3);
    let now = Instant::ZERO;
    for peer in 100..116u32 {
        server.handle_datagram(
            now,
            peer,
            &request(MessageType::Con, 1, 1, "sep", false),
            &mut h,
        );
    }
    sent(&mut server, now);
    assert_eq!(server.slots_in_use(), 16);
    for handle in handles.borrow().iter() {
        server
            .respond(now, *handle, |w| w.respond(Code::CONTENT, None, b"x"))
            .unwrap();
    }
    sent(&mut server, now);
    server.handle_datagram(
        now,
        9,
        &request(MessageType::Con, 1, 1, "now", false),
        &mut h,
    );
    let out = sent(&mut server, now);
    assert_eq!((out[0].0, out[0].2), (9, Code::CONTENT), "{out:?}");
    assert_eq!(server.stats().busy_rejections, 0);
    assert_eq!(server.stats().unacknowledged_reclaimed, 1);
}

fn register(server: &mut Server, h: &mut impl coap_core::Handler<u32>, peer: u32, token: u8) {
    let now = Instant::ZERO;
    let req = request(MessageType::Con, u16::from(token), token, "obs", true);
    server.handle_datagram(now, peer, &req, h);
    let out = sent(server, now);
    assert_eq!(out.len(), 1);
}

/// RFC 7641 §4.5 cadence: CON at least every `observe_con_every` notifications.
#[test]
fn con_every_n_notifications() {
    let mut h = handler(Handles::default());
    let config = Config {
        observe_con_every: 4,
        observe_con_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    let mut server: Server = Endpoint::new(config, 4);
    register(&mut server, &mut h, 10, 1);
    let mut types = Vec::new();
    for n in 1..=8u64 {
        let now = Instant::from_millis(n * 10);
        server.notify(now, KEY, |_, w| w.payload(b"v").map(|_| ()));
        for (peer, ty, _, _, mid) in sent(&mut server, now) {
            types.push(ty);
            if ty == MessageType::Con {
                let mut ack = [0u8; 4];
                coap_core::message::write_empty(&mut ack, MessageType::Ack, mid).unwrap();
                server.handle_datagram(now, peer, &ack, &mut h);
            }
        }
    }
    use MessageType::{Con, Non};
    assert_eq!(types, [Non, Non, Non, Con, Non, Non, Non, Con]);
    assert_eq!(server.observers(KEY), 1, "acknowledged: kept");
}

/// Sixteen dead observers (never an ACK) on a 16-slot server with half the slots for
/// long-held exchanges: their CON notifications beyond the share go NON (and try CON again
/// next time), all are reaped within the bound the configuration gives, a request answered
/// at once is served throughout, and a new client then registers.
#[test]
fn dead_observers_are_reaped_within_the_share_and_requests_still_served() {
    let mut h = handler(Handles::default());
    let config = Config {
        observe_con_every: 2,
        observe_con_interval: Duration::from_secs(2),
        observe_max_retransmit: 1,
        ack_timeout: Duration::from_millis(200),
        held_slot_share_percent: 50,
        ..Config::default()
    };
    let mut server: Server = Endpoint::new(config, 5);
    for peer in 200..216u32 {
        register(&mut server, &mut h, peer, 1);
    }
    assert_eq!(server.observers(KEY), 16);
    let mut refused_register = Vec::new();
    server.handle_datagram(
        Instant::ZERO,
        9,
        &request(MessageType::Con, 1, 1, "obs", true),
        &mut h,
    );
    let mut out = [0u8; 1152];
    while let Some(t) = server.poll_transmit(Instant::ZERO, &mut out) {
        refused_register.push(Message::parse(&out[..t.len]).unwrap().observe());
    }
    assert_eq!(
        refused_register,
        [None],
        "table full: answered without Observe"
    );
    let mut reaped_at = None;
    for step in 1..=200u64 {
        let now = Instant::from_millis(step * 100);
        server.handle_timeout(now);
        if step % 2 == 0 {
            server.notify(now, KEY, |_, w| w.payload(b"v").map(|_| ()));
        }
        sent(&mut server, now);
        assert!(server.slots_held() <= 8, "within the share");
        server.handle_datagram(
            now,
            9,
            &request(
                MessageType::Con,
                1000 + u16::try_from(step).unwrap(),
                2,
                "now",
                false,
            ),
            &mut h,
        );
        let answers = sent(&mut server, now);
        assert!(
            answers.iter().any(|a| a.0 == 9 && a.2 == Code::CONTENT),
            "served at {step}: {answers:?}"
        );
        if server.observers(KEY) == 0 {
            reaped_at = Some(now);
            break;
        }
    }
    let reaped_at = reaped_at.expect("dead observers never reaped");
    // Two rounds of CON (8 at a time), each given up after 200–300 ms + 400–600 ms.
    assert!(reaped_at.as_millis() <= 10_000, "reaped at {reaped_at:?}");
    assert!(server.stats().share_demotions > 0);
    assert_eq!(server.slots_held(), 0);
    register(&mut server, &mut h, 9, 3);
    assert_eq!(
        server.observers(KEY),
        1,
        "the freed entry serves the next client"
    );
}

/// The counts never leak and the shares always hold: a random mix of deferred requests,
/// late answers (some to stale handles), registrations, notifications, plain requests,
/// and peers that acknowledge, reset or stay silent, over simulated time; at every step
/// the shares bound what is held, and once everything has ended nothing is held.
#[test]
fn counts_stay_within_the_shares_and_return_to_zero() {
    for seed in 1..=20u64 {
        let handles = Handles::default();
        let mut h = handler(handles.clone());
        let config = Config {
            peer_slot_share_percent: 25,
            held_slot_share_percent: 50,
            observe_con_every: 2,
            // Half the runs answer quickly enough for a late answer to be piggybacked.
            separate_ack_delay: Duration::from_millis(if seed % 2 == 0 { 300 } else { 0 }),
            ..Config::default()
        };
        let mut server: Server = Endpoint::new(config, seed);
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut now = Instant::ZERO;
        let mut mid = 0u16;
        let mut out = [0u8; 1152];
        for _ in 0..400 {
            let peer = 300 + next(12) as u32;
            mid = mid.wrapping_add(1);
            let token = (mid & 0xff) as u8;
            match next(5) {
                0 | 1 => {
                    // Some NON (answered NON later, RFC 7252 §5.2.3).
                    let ty = if next(3) == 0 {
                        MessageType::Non
                    } else {
                        MessageType::Con
                    };
                    let req = request(ty, mid, token, "sep", false);
                    server.handle_datagram(now, peer, &req, &mut h);
                }
                2 => {
                    let req = request(MessageType::Con, mid, token, "obs", true);
                    server.handle_datagram(now, peer, &req, &mut h);
                }
                3 => {
                    let pending = handles.borrow().len() as u64;
                    if pending > 0 {
                        let handle = handles.borrow_mut().remove(next(pending) as usize);
                        let _ =
                            server.respond(now, handle, |w| w.respond(Code::CONTENT, None, b"l"));
                    }
                }
                _ => {
                    server.notify(now, KEY, |_, w| w.payload(b"v").map(|_| ()));
                }
            }
            // Peers 300–305 acknowledge CON messages, 306–308 reset them, the rest are
            // silent (spoofed).
            while let Some(t) = server.poll_transmit(now, &mut out) {
                let m = Message::parse(&out[..t.len]).unwrap();
                if m.ty() != MessageType::Con || t.peer >= 309 {
                    continue;
                }
                let ty = if t.peer < 306 {
                    MessageType::Ack
                } else {
                    MessageType::Rst
                };
                let mut reply = [0u8; 4];
                coap_core::message::write_empty(&mut reply, ty, m.message_id()).unwrap();
                server.handle_datagram(now, t.peer, &reply, &mut h);
            }
            assert!(
                server.slots_held() <= 8,
                "seed {seed}: {}",
                server.slots_held()
            );
            for p in 300..312 {
                assert!(server.slots_held_by(p) <= 4, "seed {seed}, peer {p}");
            }
            now = now.add_millis(next(400));
            server.handle_timeout(now);
        }
        // Everything ends: the application answers what is left, observers are told the
        // resource is gone (4.04 ends the observations, RFC 7641 §4.2), and the clock runs
        // past every retransmission and lifetime.
        for handle in handles.borrow_mut().drain(..) {
            let _ = server.respond(now, handle, |w| w.respond(Code::CONTENT, None, b"e"));
        }
        server.notify(now, KEY, |_, w| {
            w.set_code(Code::NOT_FOUND);
            Ok(())
        });
        for _ in 0..400 {
            while server.poll_transmit(now, &mut out).is_some() {}
            now = now.add_millis(1000);
            server.handle_timeout(now);
        }
        assert_eq!(server.slots_held(), 0, "seed {seed}");
        for p in 300..312 {
            assert_eq!(server.slots_held_by(p), 0, "seed {seed}, peer {p}");
        }
        assert_eq!(server.slots_in_use(), 0, "seed {seed}");
    }
}
