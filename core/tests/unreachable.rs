//! A peer the network says is unreachable (`Endpoint::handle_unreachable`, the sans-IO input
//! for ICMP errors): waiting exchanges end at once with the reason, observations on both
//! sides end, and nothing more is sent to that peer for them.

mod sim;

use coap_core::message::MessageType;
use coap_core::{
    Code, Config, Endpoint, FailReason, Instant, OptionNumber, Outcome as Handled, RequestParams,
    Unreachable,
};
use sim::{parse, Link, Outcome, Pair, CLIENT, SERVER};

/// A request to a silent peer fails at the first unreachable report, long before its
/// retransmissions would end (RFC 7252 §4.2: MAX_TRANSMIT_WAIT 93 s).
#[test]
fn waiting_request_fails_at_once_with_the_reason() {
    let mut ep: Endpoint<u32> = Endpoint::new(Config::default(), 7);
    let now = Instant::ZERO;
    let id = ep
        .request(now, 9, RequestParams::con(Code::GET), |b| {
            b.option_str(OptionNumber::URI_PATH, "x")?;
            Ok(())
        })
        .unwrap();
    let other = ep
        .request(now, 10, RequestParams::con(Code::GET), |_| Ok(()))
        .unwrap();
    let mut buf = [0u8; 1152];
    while ep.poll_transmit(now, &mut buf).is_some() {}
    assert_eq!(
        ep.handle_unreachable(now.add_millis(3), 9, Unreachable::Port),
        1
    );
    let ev = ep.poll_event().expect("an event");
    assert_eq!(ev.id(), id);
    assert!(matches!(
        ev,
        coap_core::Event::Failed {
            reason: FailReason::Unreachable(Unreachable::Port),
            ..
        }
    ));
    assert!(ep.poll_event().is_none(), "the request to peer 10 goes on");
    assert_eq!(ep.slots_in_use(), 1);
    // Its retransmissions stop: only peer 10's request is retransmitted.
    let later = now.add_millis(10_000);
    ep.handle_timeout(later);
    while let Some(t) = ep.poll_transmit(later, &mut buf) {
        assert_eq!(t.peer, 10);
    }
    assert!(ep.cancel(other));
}

fn observable(
    _: &coap_core::IncomingRequest<'_, u32>,
    w: &mut coap_core::ResponseWriter<'_>,
) -> Handled {
    w.observable(1);
    w.respond(Code::CONTENT, None, b"v").unwrap();
    Handled::Respond
}

/// An observation ends on the client when the server becomes unreachable, and the server
/// forgets an observer that became unreachable (no notifications to it any more).
#[test]
fn observations_end_on_both_sides() {
    let mut p: Pair<_> = Pair::new(5, Link::PERFECT, observable);
    let now = p.now;
    let id = p
        .client
        .request(now, SERVER, RequestParams::con(Code::GET), |b| {
            b.option_uint(OptionNumber::OBSERVE, 0)?;
            Ok(())
        })
        .unwrap();
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(p.server.observers(1), 1);
    assert!(p
        .events
        .iter()
        .any(|e| matches!(e, Outcome::Notification { id: i, .. } if *i == id)));
    // Server side: the observer's address is unreachable.
    let now = p.now;
    p.server.handle_unreachable(now, CLIENT, Unreachable::Host);
    assert_eq!(p.server.observers(1), 0);
    let sent = p.sent_by(SERVER).len();
    assert_eq!(
        p.server.notify(now, 1, |_, w| w.payload(b"w").map(|_| ())),
        0
    );
    p.drive_until(p.now.add_millis(1000));
    assert_eq!(
        p.sent_by(SERVER).len(),
        sent,
        "nothing more to the observer"
    );
    // Client side: the server is unreachable; the observation ends with the reason.
    let now = p.now;
    assert_eq!(
        p.client.handle_unreachable(now, SERVER, Unreachable::Port),
        1
    );
    p.drive();
    assert!(matches!(
        p.events.last(),
        Some(Outcome::Failed(i, FailReason::Unreachable(Unreachable::Port))) if *i == id
    ));
}

/// A CON notification awaiting its ACK is not retransmitted to an unreachable observer.
#[test]
fn con_notification_stops_retransmitting() {
    let mut server: Endpoint<u32> = Endpoint::new(Config::default(), 3);
    let mut buf = [0u8; 64];
    let mut b =
        coap_core::MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[7]).unwrap();
    b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
    let req = b.into_bytes().to_vec();
    let mut h = observable;
    let now = Instant::ZERO;
    server.handle_datagram(now, 4, &req, &mut h);
    let mut out = [0u8; 1152];
    while server.poll_transmit(now, &mut out).is_some() {}
    let n = server.notify(now, 1, |_, w| {
        w.confirmable(true);
        w.payload(b"con").map(|_| ())
    });
    assert_eq!(n, 1);
    let t = server.poll_transmit(now, &mut out).unwrap();
    assert_eq!(parse(&out[..t.len]).ty(), MessageType::Con);
    server.handle_unreachable(now, 4, Unreachable::Port);
    assert_eq!(server.observers(1), 0);
    let later = now.add_millis(60_000);
    server.handle_timeout(later);
    assert!(server.poll_transmit(later, &mut out).is_none());
}
