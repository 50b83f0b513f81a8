//! RFC 8323 §5.4: every Ping is answered with a Pong. A peer that keeps sending Pings and
//! never reads the Pongs must not make the connection hold an unbounded number of answers:
//! the answer queue is bounded and, when it is full, the connection aborts (§5.6) with the
//! diagnostic "too many answers queued" (our choice; the RFC names no reaction).
#![cfg(feature = "reliable")]

use coap_core::reliable::signaling::{self, Signal};
use coap_core::reliable::{
    CloseReason, Connection, ConnectionConfig, Event, Framing, ProtocolError, ReliableMessage,
};
use coap_core::{Code, Instant};

/// Far more Pings than any answer queue of this layer holds.
const FLOOD: usize = 64;

/// A server-side connection that has sent its CSM and received the peer's.
fn open() -> Connection<4> {
    let mut conn = Connection::new(Instant::ZERO, Framing::Stream, ConnectionConfig::default());
    let mut buf = [0u8; 64];
    let n = conn.poll_transmit(&mut buf).unwrap().unwrap();
    let ours = ReliableMessage::parse(&buf[..n], Framing::Stream).unwrap();
    assert_eq!(ours.code(), Code::CSM);
    let n = signaling::write_csm(&mut buf, Framing::Stream, 1152, false).unwrap();
    assert!(matches!(
        conn.handle_message(&buf[..n]),
        Some(Event::PeerSettings(_))
    ));
    conn
}

fn ping(token: u8) -> Vec<u8> {
    let mut buf = [0u8; 16];
    let n =
        signaling::write_ping_pong(&mut buf, Framing::Stream, Code::PING, &[token], false).unwrap();
    buf[..n].to_vec()
}

/// What the connection sends now, one message per entry.
fn drain(conn: &mut Connection<4>) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let mut buf = [0u8; 128];
    for _ in 0..FLOOD {
        match conn.poll_transmit(&mut buf).unwrap() {
            Some(n) => sent.push(buf[..n].to_vec()),
            None => return sent,
        }
    }
    panic!("more than {FLOOD} messages queued");
}

#[test]
fn pings_whose_pongs_are_read_are_all_answered() {
    // The bound is on unread answers, not on Pings: a peer that reads every Pong may
    // ping as often as it likes.
    let mut conn = open();
    for t in 0..FLOOD as u8 {
        assert!(conn.handle_message(&ping(t)).is_none(), "ping {t}");
        let sent = drain(&mut conn);
        assert_eq!(sent.len(), 1, "one Pong for ping {t}");
        let pong = ReliableMessage::parse(&sent[0], Framing::Stream).unwrap();
        assert_eq!(pong.code(), Code::PONG);
        assert_eq!(pong.token(), &[t]);
    }
    assert!(!conn.is_closed());
}

#[test]
fn unread_pongs_fill_a_bounded_queue_then_abort() {
    let mut conn = open();
    let mut accepted = 0;
    let mut closed = None;
    for t in 0..FLOOD as u8 {
        match conn.handle_message(&ping(t)) {
            None => accepted += 1,
            Some(Event::Closed(reason)) => {
                let overloaded = matches!(
                    reason,
                    CloseReason::ProtocolError(ProtocolError::Overloaded)
                );
                closed = Some((overloaded, format!("{reason:?}")));
                break;
            }
            Some(other) => panic!("ping {t}: {other:?}"),
        }
    }
    assert!(
        matches!(closed, Some((true, _))),
        "after {accepted} unread Pongs: {closed:?}"
    );
    assert!(accepted >= 1, "at least one answer is queued before Abort");

    // The queued Pongs are dropped; what goes out is one Abort with its diagnostic (§5.6).
    let sent = drain(&mut conn);
    assert_eq!(sent.len(), 1, "only the Abort: {sent:02x?}");
    let abort = ReliableMessage::parse(&sent[0], Framing::Stream).unwrap();
    match signaling::parse(&abort).unwrap() {
        Signal::Abort {
            bad_csm_option,
            diagnostic,
        } => {
            assert_eq!(bad_csm_option, None);
            assert_eq!(diagnostic, b"too many answers queued");
        }
        other => panic!("{other:?}"),
    }
    // After Abort nothing more is processed (§5.6): a further Ping gets no Pong.
    assert!(conn.is_closed());
    assert!(conn.handle_message(&ping(0xff)).is_none());
    assert!(drain(&mut conn).is_empty());
}
