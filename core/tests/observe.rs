//! Observe (RFC 7641), both sides, on the simulator.

mod sim;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use coap_core::message::{MessageBuilder, MessageType};
use coap_core::{
    Code, Config, Endpoint, IncomingRequest, Instant, NoServer, OptionNumber, Outcome as Handled,
    RequestParams, ResponseWriter,
};
use sim::{parse, Link, Outcome, Pair, CLIENT, SERVER};

const KEY: u32 = 7;

/// An observable resource whose state is a shared number.
fn observable(
    state: Rc<Cell<u32>>,
) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled {
    move |_req, resp| {
        resp.observable(KEY);
        resp.option_uint(OptionNumber::MAX_AGE, 60).unwrap();
        resp.respond(Code::CONTENT, None, state.get().to_string().as_bytes())
            .unwrap();
        Handled::Respond
    }
}

fn observe<const N: usize, const O: usize>(
    p: &mut Pair<impl coap_core::Handler<u32>, N, O>,
) -> coap_core::RequestId {
    let now = p.now;
    p.client
        .request(now, SERVER, RequestParams::con(Code::GET), |b| {
            b.option_uint(OptionNumber::OBSERVE, 0)?;
            b.option_str(OptionNumber::URI_PATH, "obs")?;
            Ok(())
        })
        .unwrap()
}

fn notify_all<H: coap_core::Handler<u32>, const N: usize, const O: usize>(
    p: &mut Pair<H, N, O>,
    state: &Rc<Cell<u32>>,
    value: u32,
) -> usize {
    state.set(value);
    let now = p.now;
    p.server.notify(now, KEY, |_peer, w| {
        w.option_uint(OptionNumber::MAX_AGE, 60)?;
        w.payload(value.to_string().as_bytes())?;
        Ok(())
    })
}

fn notifications(p: &Pair<impl coap_core::Handler<u32>>) -> Vec<(u32, String)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Outcome::Notification {
                observe, payload, ..
            } => Some((*observe, String::from_utf8_lossy(payload).into())),
            _ => None,
        })
        .collect()
}

#[test]
fn register_notify_in_order_and_deregister_with_observe_1() {
    let state = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(1, Link::PERFECT, observable(state.clone()));
    let id = observe(&mut p);
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(p.server.observers(KEY), 1);
    for v in 1..=3 {
        assert_eq!(notify_all(&mut p, &state, v), 1);
        p.drive_until(p.now.add_millis(1000));
    }
    let got = notifications(&p);
    assert_eq!(
        got.iter().map(|(_, b)| b.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "Observe values increase: {got:?}"
    );
    // Notifications carry the registration's token and are NON by default.
    let token = parse(&p.sent_by(CLIENT)[0].1).token().to_vec();
    let last = p.sent_by(SERVER).last().unwrap().1.clone();
    assert_eq!(parse(&last).token(), &token[..]);
    assert_eq!(parse(&last).ty(), MessageType::Non);
    // Active cancel (§3.6): GET with Observe=1, same token; the answer is final.
    let now = p.now;
    p.client.cancel_observe(now, id).unwrap();
    p.drive();
    let dereg = parse(&p.sent_by(CLIENT).last().unwrap().1.clone()).observe();
    assert!(p
        .sent_by(CLIENT)
        .iter()
        .any(|(_, b)| parse(b).observe() == Some(1) && parse(b).token() == &token[..]));
    let _ = dereg;
    assert_eq!(p.server.observers(KEY), 0);
    assert!(
        matches!(p.events.last(), Some(Outcome::Response { id: i, code: Code::CONTENT, .. }) if *i == id)
    );
    assert_eq!(notify_all(&mut p, &state, 9), 0);
}

/// §3.6 passive cancel: the client forgets; its next notification is answered with RST
/// and the server removes the observer.
#[test]
fn passive_cancel_rst_removes_observer() {
    let state = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(2, Link::PERFECT, observable(state.clone()));
    let id = observe(&mut p);
    p.drive_until(p.now.add_millis(1000));
    assert!(p.client.cancel(id));
    notify_all(&mut p, &state, 1);
    p.drive();
    let rst = parse(&p.sent_by(CLIENT).last().unwrap().1.clone()).ty();
    assert_eq!(rst, MessageType::Rst);
    assert_eq!(p.server.observers(KEY), 0);
}

/// §4.5: a CON notification that is never acknowledged ends the observation; and the
/// endpoint sends CON at least every `observe_con_interval`.
#[test]
fn failed_con_notification_deregisters_and_con_interval() {
    let state = Rc::new(Cell::new(0));
    let cfg = Config {
        observe_con_interval: Duration::from_secs(10),
        ..Config::default()
    };
    let mut p: Pair<_> = Pair::with_config(3, Link::PERFECT, observable(state.clone()), cfg);
    observe(&mut p);
    p.drive_until(p.now.add_millis(1000));
    notify_all(&mut p, &state, 1); // NON: last CON (registration) is recent
    p.drive_until(p.now.add_millis(11_000));
    notify_all(&mut p, &state, 2); // CON: 10 s passed
    p.drive_until(p.now.add_millis(1000));
    let types: Vec<_> = p
        .sent_by(SERVER)
        .iter()
        .map(|(_, b)| parse(b).ty())
        .collect();
    assert_eq!(
        types,
        [MessageType::Ack, MessageType::Non, MessageType::Con]
    );
    assert_eq!(p.server.observers(KEY), 1, "acknowledged CON keeps it");
    // Now the client vanishes: every datagram is lost; the next CON notification gives up.
    p.link = Link {
        loss: 1000,
        ..Link::PERFECT
    };
    p.drive_until(p.now.add_millis(11_000));
    notify_all(&mut p, &state, 3);
    p.drive_until(p.now.add_millis(100_000));
    assert_eq!(p.server.observers(KEY), 0);
}

/// §4.2: an error notification ends the observation at both ends.
#[test]
fn error_notification_ends_observation() {
    let state = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(4, Link::PERFECT, observable(state.clone()));
    let id = observe(&mut p);
    p.drive_until(p.now.add_millis(1000));
    let now = p.now;
    p.server.notify(now, KEY, |_, w| {
        w.set_code(Code::NOT_FOUND);
        Ok(())
    });
    p.drive();
    assert_eq!(p.server.observers(KEY), 0);
    assert!(
        matches!(p.events.last(), Some(Outcome::Response { id: i, code: Code::NOT_FOUND, .. }) if *i == id)
    );
    let last = p.sent_by(SERVER).last().unwrap().1.clone();
    assert_eq!(
        parse(&last).observe(),
        None,
        "error responses carry no Observe"
    );
}

/// §4.1: when the observer table is full, the server answers without registering.
#[test]
fn full_observer_table_answers_without_observe() {
    let state = Rc::new(Cell::new(0));
    let mut h = observable(state);
    let mut server: Endpoint<u32, 8, 1152, 16, 2> = Endpoint::new(Config::default(), 1);
    let mut buf = [0u8; 128];
    let mut answers = Vec::new();
    for peer in 10..13u32 {
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::Con,
            Code::GET,
            peer as u16,
            &[peer as u8],
        )
        .unwrap();
        b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
        let req = b.into_bytes().to_vec();
        server.handle_datagram(Instant::ZERO, peer, &req, &mut h);
        let mut out = [0u8; 1152];
        let t = server.poll_transmit(Instant::ZERO, &mut out).unwrap();
        answers.push(parse(&out[..t.len]).observe());
    }
    assert!(answers[0].is_some() && answers[1].is_some());
    assert_eq!(answers[2], None);
    assert_eq!(server.observers(KEY), 2);
}

/// §3.4: reordered notifications are not delivered; after 128 s any value is fresh.
#[test]
fn client_reordering_rule() {
    let mut p: Pair<_> = Pair::new(
        5,
        Link {
            loss: 1000,
            ..Link::PERFECT
        },
        NoServer,
    );
    let id = observe(&mut p);
    p.flush();
    let token = parse(&p.sent[0].bytes).token().to_vec();
    let mut mid = 100u16;
    let mut deliver = |p: &mut Pair<NoServer>, obs: u32, body: &str| {
        let mut buf = [0u8; 128];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::Non, Code::CONTENT, mid, &token).unwrap();
        mid += 1;
        b.option_uint(OptionNumber::OBSERVE, obs).unwrap();
        b.payload(body.as_bytes()).unwrap();
        let bytes = b.into_bytes().to_vec();
        let now = p.now;
        p.client.handle_datagram(now, SERVER, &bytes, &mut NoServer);
        p.flush();
    };
    deliver(&mut p, 10, "a");
    deliver(&mut p, 12, "c");
    deliver(&mut p, 11, "b (late, stale)");
    deliver(&mut p, 13, "d");
    p.now = p.now.add_millis(129_000);
    deliver(&mut p, 5, "e (after 128 s)");
    let got: Vec<_> = notifications(&p).into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, ["a", "c", "d", "e (after 128 s)"]);
    assert_eq!(p.client.stats().stale_notifications, 1);
    assert!(p.events.iter().all(|e| e.id() == id));
}

/// §3.3.1: when Max-Age lapses without a notification, the client registers again; if
/// the server is gone, the observation ends with Timeout.
#[test]
fn reregistration_after_max_age_and_timeout_when_gone() {
    let state = Rc::new(Cell::new(0));
    let cfg = Config {
        request_timeout: Duration::from_secs(20),
        ..Config::default()
    };
    let handler = {
        let state = state.clone();
        move |_req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
            resp.observable(KEY);
            resp.option_uint(OptionNumber::MAX_AGE, 5).unwrap();
            resp.respond(Code::CONTENT, None, state.get().to_string().as_bytes())
                .unwrap();
            Handled::Respond
        }
    };
    let mut p: Pair<_> = Pair::with_config(6, Link::PERFECT, handler, cfg);
    let id = observe(&mut p);
    p.drive_until(p.now.add_millis(6_000));
    assert_eq!(p.sent_by(CLIENT).len(), 1);
    p.drive_until(p.now.add_millis(2_000)); // Max-Age 5 s + 2 s slack passed
    let regs: Vec<_> = p
        .sent_by(CLIENT)
        .iter()
        .map(|(_, b)| parse(b).observe())
        .collect();
    assert_eq!(regs, [Some(0), Some(0)], "re-registered");
    assert_eq!(notifications(&p).len(), 2);
    // The server disappears: the next re-registration times out.
    p.link = Link {
        loss: 1000,
        ..Link::PERFECT
    };
    p.drive();
    assert_eq!(p.events.last(), Some(&Outcome::Timeout(id)));
}

/// Under loss and reordering, notifications are never delivered out of order, and the
/// observation survives (re-registration) or ends with Timeout — never hangs.
#[test]
fn lossy_observation_in_order_over_seeds() {
    for seed in 0..300 {
        let state = Rc::new(Cell::new(0));
        let link = Link {
            loss: 250,
            dup: 100,
            delay_ms: (1, 800),
        };
        let cfg = Config {
            request_timeout: Duration::from_secs(30),
            ..Config::default()
        };
        let mut p: Pair<_> = Pair::with_config(seed, link, observable(state.clone()), cfg);
        let id = observe(&mut p);
        let sent = RefCell::new(0);
        for v in 1..=30 {
            p.drive_until(p.now.add_millis(300));
            let n = notify_all(&mut p, &state, v);
            *sent.borrow_mut() += n;
        }
        p.drive_until(p.now.add_millis(5_000));
        let got = notifications(&p);
        let values: Vec<u32> = got.iter().map(|(_, b)| b.parse().unwrap()).collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: out of order {values:?}"
        );
        assert!(
            got.windows(2).all(|w| w[0].0 != w[1].0),
            "seed {seed}: duplicate"
        );
        assert!(p.events.iter().all(|e| e.id() == id));
        p.client.cancel(id);
        p.drive();
    }
}

/// RFC 7641 §4.1 for a deferred answer (what a proxy does while it asks upstream): the
/// registration happens when the application answers a deferred Observe=0 request with
/// an observable success, and notifications follow; a deferred error registers nothing.
#[test]
fn deferred_answer_registers_the_observer() {
    let handle = Rc::new(Cell::new(None));
    let h2 = handle.clone();
    let handler = move |req: &IncomingRequest<'_, u32>, _: &mut ResponseWriter<'_>| {
        h2.set(Some(req.handle()));
        Handled::Defer
    };
    let state = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(11, Link::PERFECT, handler);
    observe(&mut p);
    p.drive_until(p.now.add_millis(3000));
    assert_eq!(
        p.server.observers(KEY),
        0,
        "nothing registered before the answer"
    );
    let now = p.now;
    p.server
        .respond(now, handle.take().unwrap(), |w| {
            w.observable(KEY);
            w.respond(Code::CONTENT, None, b"0")
        })
        .unwrap();
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(p.server.observers(KEY), 1);
    assert_eq!(notify_all(&mut p, &state, 1), 1);
    p.drive_until(p.now.add_millis(1000));
    let got = notifications(&p);
    assert_eq!(
        got.iter().map(|(_, b)| b.as_str()).collect::<Vec<_>>(),
        ["0", "1"]
    );
    assert!(got[0].0 < got[1].0, "Observe values increase: {got:?}");

    // A deferred error answer to a second registration registers nothing.
    observe(&mut p);
    p.drive_until(p.now.add_millis(3000));
    let now = p.now;
    p.server
        .respond(now, handle.take().unwrap(), |w| {
            w.observable(KEY);
            w.respond(Code::NOT_FOUND, None, b"")
        })
        .unwrap();
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(p.server.observers(KEY), 1);
}

/// RFC 7641 §4.1: observers are keyed by client endpoint and token. Ten observations of one
/// resource from one client endpoint (ten tokens) are ten observers, each notified on its
/// own token; a registration repeated with the same token replaces its entry.
#[test]
fn ten_observations_from_one_client_all_notified() {
    let state = Rc::new(Cell::new(0));
    let mut p: Pair<_, 32, 16> = Pair::new(3, Link::PERFECT, observable(state.clone()));
    let ids: Vec<_> = (0..10).map(|_| observe(&mut p)).collect();
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(p.server.observers(KEY), 10);
    assert_eq!(notify_all(&mut p, &state, 1), 10);
    p.drive_until(p.now.add_millis(1000));
    for id in &ids {
        let got: Vec<_> = p
            .events
            .iter()
            .filter_map(|e| match e {
                Outcome::Notification { id: i, payload, .. } if i == id => {
                    Some(String::from_utf8_lossy(payload).into_owned())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            ["0", "1"],
            "observation {id:?}: {:?} {:?}",
            p.client.stats(),
            p.server.stats()
        );
    }
    // The same token again (a client reinforcing its interest) replaces, never adds.
    let first = p
        .sent_by(CLIENT)
        .iter()
        .map(|(_, b)| b.clone())
        .find(|b| parse(b).observe() == Some(0))
        .unwrap();
    let mut again = first.clone();
    again[2] ^= 0x55; // a new Message ID: not a duplicate, a new registration
    let now = p.now;
    let mut h = observable(state.clone());
    p.server.handle_datagram(now, CLIENT, &again, &mut h);
    assert_eq!(p.server.observers(KEY), 10);
}

fn register_raw<const O: usize>(
    server: &mut Endpoint<u32, 8, 1152, 16, O>,
    h: &mut impl coap_core::Handler<u32>,
    now: Instant,
    peer: u32,
    token: u8,
) -> Option<u32> {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::Con,
        Code::GET,
        u16::from(token),
        &[token],
    )
    .unwrap();
    b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
    let req = b.into_bytes().to_vec();
    server.handle_datagram(now, peer, &req, h);
    let mut out = [0u8; 1152];
    let mut observe = None;
    while let Some(t) = server.poll_transmit(now, &mut out) {
        if t.peer == peer {
            observe = parse(&out[..t.len]).observe();
        }
    }
    observe
}

/// RFC 7641 §4.5 with the default configuration: an observer that vanished (it never
/// acknowledges) is sent a CON notification within 20 s or 16 notifications, dropped when
/// that goes unanswered — within about a minute of a resource changing every second —
/// and its entry serves the next client at once.
#[test]
fn vanished_observer_is_reaped_within_a_minute_and_its_entry_reused() {
    let state = Rc::new(Cell::new(0));
    let mut h = observable(state);
    let mut server: Endpoint<u32, 8, 1152, 16, 1> = Endpoint::new(Config::default(), 9);
    let t0 = Instant::ZERO;
    assert!(register_raw(&mut server, &mut h, t0, 10, 1).is_some());
    assert!(
        register_raw(&mut server, &mut h, t0, 11, 2).is_none(),
        "table full"
    );
    let mut out = [0u8; 1152];
    let mut cons = 0;
    let mut gone_at = None;
    for s in 1..=90u64 {
        let now = t0.add_millis(s * 1000);
        server.handle_timeout(now);
        server.notify(now, KEY, |_, w| w.payload(b"x").map(|_| ()));
        while let Some(t) = server.poll_transmit(now, &mut out) {
            if parse(&out[..t.len]).ty() == MessageType::Con {
                cons += 1;
            }
        }
        if server.observers(KEY) == 0 {
            gone_at = Some(s);
            break;
        }
    }
    let gone_at = gone_at.expect("the vanished observer was never dropped");
    assert!(gone_at <= 60, "dropped after {gone_at} s");
    assert!(cons >= 1);
    let now = t0.add_millis(gone_at * 1000);
    assert!(
        register_raw(&mut server, &mut h, now, 11, 3).is_some(),
        "the freed entry serves the next client at once"
    );
}

/// One peer cannot hold more than `Config::max_observers_per_peer` entries: its next
/// registration is answered without Observe, and another peer still registers.
#[test]
fn per_peer_observer_quota() {
    let state = Rc::new(Cell::new(0));
    let mut h = observable(state);
    let config = Config {
        max_observers_per_peer: 3,
        ..Config::default()
    };
    let mut server: Endpoint<u32, 8, 1152, 16, 8> = Endpoint::new(config, 4);
    let now = Instant::ZERO;
    for token in 1..=3 {
        assert!(register_raw(&mut server, &mut h, now, 10, token).is_some());
    }
    assert!(
        register_raw(&mut server, &mut h, now, 10, 4).is_none(),
        "over the quota"
    );
    // The same token again (a new Message ID, not a duplicate): renewed, not added.
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 99, &[2]).unwrap();
    b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
    let again = b.into_bytes().to_vec();
    server.handle_datagram(now, 10, &again, &mut h);
    assert_eq!(server.observers(KEY), 3, "same token: renewed");
    assert!(
        register_raw(&mut server, &mut h, now, 11, 1).is_some(),
        "another peer"
    );
    assert_eq!(server.observers(KEY), 4);
}

/// An observation keeps its slot, and its notifications need another: the observation
/// that would take a client's last free slot is refused at once with `Busy` (it could not
/// hear its own first answer), while a plain request may still take that slot.
#[test]
fn an_observation_never_takes_the_last_slot() {
    let mut client: Endpoint<u32, 4, 256, 8, 4> = Endpoint::new(Config::default(), 3);
    let observe_req = |c: &mut Endpoint<u32, 4, 256, 8, 4>, peer: u32| {
        c.request(Instant::ZERO, peer, RequestParams::con(Code::GET), |b| {
            b.option_uint(OptionNumber::OBSERVE, 0)?;
            b.option_str(OptionNumber::URI_PATH, "obs")?;
            Ok(())
        })
    };
    for peer in 1..=3 {
        assert!(observe_req(&mut client, peer).is_ok(), "observation {peer}");
    }
    assert_eq!(
        observe_req(&mut client, 4),
        Err(coap_core::endpoint::Error::Busy)
    );
    assert_eq!(
        client.slots_in_use(),
        3,
        "the refused one left nothing behind"
    );
    let plain = client.request(Instant::ZERO, 5, RequestParams::con(Code::GET), |b| {
        b.option_str(OptionNumber::URI_PATH, "x")?;
        Ok(())
    });
    assert!(plain.is_ok(), "{plain:?}");
}

/// §3.6: a notification the server sent before it saw the deregistering GET (Observe=1)
/// crosses that GET. It carries Observe and is not the GET's answer: the client drops it
/// and waits for the answer, which has no Observe (the server served a plain GET).
#[test]
fn a_notification_crossing_the_deregistration_is_not_its_answer() {
    let state = Rc::new(Cell::new(0));
    let mut p: Pair<_> = Pair::new(5, Link::PERFECT, observable(state.clone()));
    let id = observe(&mut p);
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(p.server.observers(KEY), 1);
    let before = p.events.len();
    // Both in flight at once: the client's Observe=1 GET and the server's notification.
    let now = p.now;
    p.client.cancel_observe(now, id).unwrap();
    state.set(4);
    let sent = p.server.notify(now, KEY, |_peer, w| {
        w.payload(b"crossing")?;
        Ok(())
    });
    assert_eq!(sent, 1);
    p.drive();
    assert_eq!(p.server.observers(KEY), 0);
    let after: Vec<_> = p.events[before..].iter().filter(|e| e.id() == id).collect();
    assert!(
        matches!(after.as_slice(), [Outcome::Response { code: Code::CONTENT, payload, .. }] if payload == b"4"),
        "the deregistration's answer, and nothing else: {after:?}"
    );
}
