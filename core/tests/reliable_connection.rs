//! Two RFC 8323 connections exchanging bytes in memory (a simulated TCP stream each way,
//! through the stream framer, or one message per frame for WebSockets): the CSM exchange
//! (§5.3), a request before the CSM, Ping/Pong with Custody (§5.4), Release with
//! Alternative-Address and Hold-Off (§5.5), Abort on a bad CSM option and on an oversized
//! frame (§5.6), token matching and observations ending with the connection (§7).
#![cfg(feature = "reliable")]

use coap_core::reliable::signaling::{self, Signal};
use coap_core::reliable::{
    CloseReason, Connection, ConnectionConfig, Event, Framer, Framing, PeerSettings, ProtocolError,
    ReliableBuilder, ReliableMessage, SendError,
};
use coap_core::{Code, Instant, OptionNumber};

type Conn = Connection<4>;

/// An event with owned data, for comparisons.
#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Settings(PeerSettings),
    Request {
        code: Code,
        token: Vec<u8>,
    },
    Response {
        code: Code,
        token: Vec<u8>,
        payload: Vec<u8>,
        last: bool,
    },
    Pong {
        token: Vec<u8>,
        custody: bool,
    },
    Released {
        addresses: Vec<String>,
        hold_off: Option<u32>,
    },
    PeerAborted {
        bad_csm_option: Option<u16>,
        diagnostic: String,
    },
    Closed(String),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::PeerSettings(s) => Ev::Settings(s),
        Event::Request(m) => Ev::Request {
            code: m.code(),
            token: m.token().to_vec(),
        },
        Event::Response { message, last } => Ev::Response {
            code: message.code(),
            token: message.token().to_vec(),
            payload: message.payload().to_vec(),
            last,
        },
        Event::Pong { token, custody } => Ev::Pong {
            token: token.to_vec(),
            custody,
        },
        Event::Released {
            alternative_addresses,
            hold_off,
        } => Ev::Released {
            addresses: alternative_addresses.map(str::to_owned).collect(),
            hold_off,
        },
        Event::Closed(CloseReason::PeerAborted {
            bad_csm_option,
            diagnostic,
        }) => Ev::PeerAborted {
            bad_csm_option,
            diagnostic: String::from_utf8_lossy(diagnostic).into_owned(),
        },
        Event::Closed(r) => Ev::Closed(format!("{r:?}")),
    }
}

/// One end: its connection and the framer over its receive buffer.
struct End<'b> {
    conn: Conn,
    framer: Framer<'b>,
}

impl<'b> End<'b> {
    fn new(buf: &'b mut [u8], config: ConnectionConfig) -> Self {
        let conn = Conn::new(Instant::ZERO, Framing::Stream, config);
        let framer = Framer::new(buf, conn.local_max_message_size() as usize);
        End { conn, framer }
    }

    /// Everything the connection wants to send, as the bytes of the stream.
    fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Some(n) = self.conn.poll_transmit(&mut buf).unwrap() {
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Feeds stream bytes (in `chunk`-sized reads) and collects the events.
    fn receive(&mut self, bytes: &[u8], chunk: usize) -> Vec<Ev> {
        let mut evs = Vec::new();
        for mut c in bytes.chunks(chunk.max(1)) {
            while !c.is_empty() {
                let n = self.framer.push(c);
                c = &c[n..];
                loop {
                    match self.framer.next_frame() {
                        Ok(Some(frame)) => evs.extend(self.conn.handle_message(frame).map(own)),
                        Ok(None) => break,
                        Err(e) => {
                            evs.extend(self.conn.frame_error(e).map(own));
                            return evs;
                        }
                    }
                }
                if n == 0 {
                    return evs;
                }
            }
        }
        evs
    }
}

/// Moves `from`'s pending bytes to `to`, returning `to`'s events.
fn pump(from: &mut End<'_>, to: &mut End<'_>) -> Vec<Ev> {
    let bytes = from.drain();
    to.receive(&bytes, 3)
}

fn request(
    end: &mut End<'_>,
    code: Code,
    token: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, SendError> {
    let mut buf = vec![0u8; 8192];
    let n = end.conn.send_request(&mut buf, code, token, |b| {
        b.option_str(OptionNumber::URI_PATH, "r")?;
        b.payload(payload)?;
        Ok(())
    })?;
    buf.truncate(n);
    Ok(buf)
}

fn response(
    end: &mut End<'_>,
    code: Code,
    token: &[u8],
    observe: Option<u32>,
    payload: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let n = end
        .conn
        .send_response(&mut buf, code, token, |b| {
            if let Some(o) = observe {
                b.option_uint(OptionNumber::OBSERVE, o)?;
            }
            b.payload(payload)?;
            Ok(())
        })
        .unwrap();
    buf.truncate(n);
    buf
}

fn bwt(max_message_size: u32) -> ConnectionConfig {
    ConnectionConfig {
        max_message_size,
        block_wise_transfer: true,
        ..ConnectionConfig::default()
    }
}

/// Client and server with their CSMs exchanged.
fn established<'b>(
    cb: &'b mut [u8],
    sb: &'b mut [u8],
    cc: ConnectionConfig,
    sc: ConnectionConfig,
) -> (End<'b>, End<'b>) {
    let mut c = End::new(cb, cc);
    let mut s = End::new(sb, sc);
    assert!(matches!(pump(&mut c, &mut s)[..], [Ev::Settings(_)]));
    assert!(matches!(pump(&mut s, &mut c)[..], [Ev::Settings(_)]));
    (c, s)
}

#[test]
fn csm_exchange_and_bert() {
    let (mut cb, mut sb) = (vec![0u8; 8192], vec![0u8; 8192]);
    let mut c = End::new(&mut cb, bwt(4096));
    let mut s = End::new(&mut sb, bwt(8192));
    assert!(!c.conn.is_established());
    // Requests wait for this side's own CSM (§5.3: the CSM is the first message).
    assert_eq!(
        request(&mut c, Code::GET, &[1], b"").unwrap_err(),
        SendError::CsmNotSent
    );
    let csm = c.drain();
    // Len 4 | TKL 0, 7.01, Max-Message-Size (delta 2, length 2) 4096, Block-Wise-Transfer (delta 2, length 0).
    assert_eq!(csm, [0x40, 0xe1, 0x22, 0x10, 0x00, 0x20]);
    assert_eq!(
        s.receive(&csm, 1),
        vec![Ev::Settings(PeerSettings {
            max_message_size: 4096,
            block_wise_transfer: true
        })]
    );
    assert!(s.conn.is_established());
    assert!(!c.conn.is_established());
    assert_eq!(
        pump(&mut s, &mut c),
        vec![Ev::Settings(PeerSettings {
            max_message_size: 8192,
            block_wise_transfer: true
        })]
    );
    assert!(c.conn.is_established());
    // BERT (§6): both announced Block-Wise-Transfer; payloads of whole 1024-byte blocks.
    assert!(c.conn.bert() && s.conn.bert());
    assert_eq!(c.conn.bert_payload(20), Some(8 * 1024 - 1024)); // 8192 − 21 → 7 blocks
    assert_eq!(s.conn.bert_payload(20), Some(3 * 1024));
    // Without Block-Wise-Transfer on one side, no BERT.
    let (mut cb2, mut sb2) = (vec![0u8; 2048], vec![0u8; 2048]);
    let (c2, _s2) = established(&mut cb2, &mut sb2, bwt(4096), ConnectionConfig::default());
    assert!(!c2.conn.bert());
    assert_eq!(c2.conn.bert_payload(0), None);
    assert_eq!(c2.conn.peer_settings(), PeerSettings::default());
}

#[test]
fn peer_max_message_size_bounds_what_is_sent() {
    let (mut cb, mut sb) = (vec![0u8; 8192], vec![0u8; 8192]);
    let mut c = End::new(&mut cb, ConnectionConfig::default());
    let mut s = End::new(&mut sb, bwt(4096));
    pump(&mut c, &mut s);
    // Before the server's CSM the default 1152 applies (§5.3.1).
    assert!(matches!(
        request(&mut c, Code::POST, &[1], &[0; 1500]),
        Err(SendError::TooLarge { limit: 1152, .. })
    ));
    pump(&mut s, &mut c);
    let req = request(&mut c, Code::POST, &[1], &[0; 1500]).unwrap();
    assert_eq!(
        s.receive(&req, 100),
        vec![Ev::Request {
            code: Code::POST,
            token: vec![1]
        }]
    );
}

#[test]
fn request_before_csm_is_aborted() {
    let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut c = End::new(&mut cb, ConnectionConfig::default());
    let mut s = End::new(&mut sb, ConnectionConfig::default());
    pump(&mut s, &mut c); // the server's CSM reaches the client; not the other way
                          // A raw GET as the client's first message on the stream.
    let mut buf = [0u8; 32];
    let n = ReliableBuilder::new(&mut buf, Framing::Stream, Code::GET, &[5])
        .unwrap()
        .finish()
        .unwrap();
    let evs = s.receive(&buf[..n], 1);
    assert_eq!(
        evs,
        vec![Ev::Closed(format!(
            "{:?}",
            CloseReason::ProtocolError(ProtocolError::CsmNotFirst)
        ))]
    );
    assert!(s.conn.is_closed());
    // The server's Abort carries a diagnostic; the client sees the connection end.
    assert_eq!(
        pump(&mut s, &mut c),
        vec![Ev::PeerAborted {
            bad_csm_option: None,
            diagnostic: "CSM expected as the first message".into()
        }]
    );
    assert!(c.conn.is_closed());
    // Nothing more is processed or sent after Abort.
    assert_eq!(s.receive(&[0x00, 0xe1], 2), vec![]);
    assert!(s.drain().is_empty());
    assert_eq!(
        request(&mut c, Code::GET, &[1], b"").unwrap_err(),
        SendError::Closed
    );
}

#[test]
fn csm_timeout_aborts() {
    let mut b = vec![0u8; 2048];
    let mut s = End::new(
        &mut b,
        ConnectionConfig {
            csm_timeout_ms: 500,
            ..Default::default()
        },
    );
    assert_eq!(s.conn.poll_timeout(), Some(Instant::from_millis(500)));
    assert!(s.conn.handle_timeout(Instant::from_millis(499)).is_none());
    let e = s.conn.handle_timeout(Instant::from_millis(500)).map(own);
    assert_eq!(
        e,
        Some(Ev::Closed(format!(
            "{:?}",
            CloseReason::ProtocolError(ProtocolError::CsmTimeout)
        )))
    );
    let bytes = s.drain();
    // Its own CSM first (always the first message), then the Abort.
    assert_eq!(&bytes[..2], &[0x00, 0xe1]);
    let abort = ReliableMessage::parse(&bytes[2..], Framing::Stream).unwrap();
    assert_eq!(abort.code(), Code::ABORT);
    assert_eq!(abort.payload(), b"no CSM received");
    assert_eq!(s.conn.poll_timeout(), None);
}

#[test]
fn requests_and_responses_matched_by_token_and_observe_ends_with_connection() {
    let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
    let (mut c, mut s) = established(
        &mut cb,
        &mut sb,
        ConnectionConfig::default(),
        ConnectionConfig::default(),
    );
    let get = request(&mut c, Code::GET, &[0xa1], b"").unwrap();
    let obs = request(&mut c, Code::GET, &[0xb2, 0xb3], b"").unwrap();
    let mut both = get.clone();
    both.extend(&obs);
    assert_eq!(
        s.receive(&both, 1),
        vec![
            Ev::Request {
                code: Code::GET,
                token: vec![0xa1]
            },
            Ev::Request {
                code: Code::GET,
                token: vec![0xb2, 0xb3]
            },
        ]
    );
    // Responses in any order; notifications (Observe) keep the exchange, in the order
    // they were sent (§7: no reordering check over a reliable transport).
    let mut stream = response(&mut s, Code::CONTENT, &[0xb2, 0xb3], Some(5), b"n1");
    stream.extend(response(&mut s, Code::CONTENT, &[0xa1], None, b"hello"));
    stream.extend(response(
        &mut s,
        Code::CONTENT,
        &[0xb2, 0xb3],
        Some(3),
        b"n2",
    ));
    stream.extend(response(
        &mut s,
        Code::CONTENT,
        &[0x99],
        None,
        b"nobody asked",
    ));
    stream.extend(response(
        &mut s,
        Code::CONTENT,
        &[0xa1],
        None,
        b"late duplicate",
    ));
    assert!(s.conn.is_idle());
    assert_eq!(
        c.receive(&stream, 7),
        vec![
            Ev::Response {
                code: Code::CONTENT,
                token: vec![0xb2, 0xb3],
                payload: b"n1".to_vec(),
                last: false
            },
            Ev::Response {
                code: Code::CONTENT,
                token: vec![0xa1],
                payload: b"hello".to_vec(),
                last: true
            },
            Ev::Response {
                code: Code::CONTENT,
                token: vec![0xb2, 0xb3],
                payload: b"n2".to_vec(),
                last: false
            },
        ]
    );
    assert!(!c.conn.is_idle()); // the observation goes on
                                // The transport goes away: the observation ends with it.
    assert_eq!(
        c.conn.connection_lost().map(own),
        Some(Ev::Closed("ConnectionLost".into()))
    );
    assert!(c.conn.is_idle());
    assert!(c.conn.connection_lost().is_none());
    assert_eq!(
        request(&mut c, Code::GET, &[1], b"").unwrap_err(),
        SendError::Closed
    );
}

#[test]
fn observation_ends_with_an_error_or_a_response_without_observe() {
    let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
    let (mut c, mut s) = established(
        &mut cb,
        &mut sb,
        ConnectionConfig::default(),
        ConnectionConfig::default(),
    );
    let get = request(&mut c, Code::GET, &[1], b"").unwrap();
    s.receive(&get, 64);
    let n = response(&mut s, Code::NOT_FOUND, &[1], Some(9), b"");
    assert!(matches!(
        c.receive(&n, 64)[..],
        [Ev::Response { last: true, .. }]
    ));
    assert!(c.conn.is_idle());
    // forget() ends an exchange without a response.
    request(&mut c, Code::GET, &[2], b"").unwrap();
    c.conn.forget(&[2]);
    assert!(c.conn.is_idle());
}

#[test]
fn ping_pong_with_custody() {
    let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
    let (mut c, mut s) = established(
        &mut cb,
        &mut sb,
        ConnectionConfig::default(),
        ConnectionConfig::default(),
    );
    // Plain Ping: the Pong echoes the token.
    c.conn.ping(&[0x42], false).unwrap();
    assert!(pump(&mut c, &mut s).is_empty());
    assert_eq!(
        pump(&mut s, &mut c),
        vec![Ev::Pong {
            token: vec![0x42],
            custody: false
        }]
    );

    // Custody: a request is pending at the server when the Ping arrives; the Pong waits
    // until it is answered (§5.4.1), a request after the Ping does not hold it back.
    let req = request(&mut c, Code::GET, &[7], b"").unwrap();
    s.receive(&req, 64);
    c.conn.ping(&[0x43], true).unwrap();
    let ping = c.drain();
    let p = ReliableMessage::parse(&ping, Framing::Stream).unwrap();
    assert!(matches!(
        signaling::parse(&p),
        Ok(Signal::Ping { custody: true })
    ));
    s.receive(&ping, 64);
    let later = request(&mut c, Code::GET, &[8], b"").unwrap();
    s.receive(&later, 64);
    assert!(s.drain().is_empty(), "Pong held back by custody");
    let resp = response(&mut s, Code::CONTENT, &[7], None, b"done");
    let mut stream = resp;
    stream.extend(s.drain());
    assert_eq!(
        c.receive(&stream, 5),
        vec![
            Ev::Response {
                code: Code::CONTENT,
                token: vec![7],
                payload: b"done".to_vec(),
                last: true
            },
            Ev::Pong {
                token: vec![0x43],
                custody: true
            },
        ]
    );
}

#[test]
fn release_with_alternative_address_and_hold_off() {
    let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
    let (mut c, mut s) = established(
        &mut cb,
        &mut sb,
        ConnectionConfig::default(),
        ConnectionConfig::default(),
    );
    let req = request(&mut c, Code::GET, &[1], b"").unwrap();
    s.receive(&req, 64);
    s.conn.release(Some("coap+tcp://[::1]:61616"), Some(30));
    let rel = s.drain();
    let m = ReliableMessage::parse(&rel, Framing::Stream).unwrap();
    assert_eq!(m.code(), Code::RELEASE);
    assert_eq!(
        c.receive(&rel, 2),
        vec![Ev::Released {
            addresses: vec!["coap+tcp://[::1]:61616".into()],
            hold_off: Some(30)
        }]
    );
    // No new requests in either direction; the outstanding response still arrives.
    assert_eq!(
        request(&mut c, Code::GET, &[2], b"").unwrap_err(),
        SendError::Released
    );
    assert_eq!(
        request(&mut s, Code::GET, &[3], b"").unwrap_err(),
        SendError::Released
    );
    assert!(!c.conn.is_idle());
    let resp = response(&mut s, Code::CONTENT, &[1], None, b"last");
    assert!(matches!(
        c.receive(&resp, 64)[..],
        [Ev::Response { last: true, .. }]
    ));
    assert!(c.conn.is_idle() && s.conn.is_idle());
}

#[test]
fn abort_on_unknown_critical_csm_option() {
    let mut sb = vec![0u8; 2048];
    let mut s = End::new(&mut sb, ConnectionConfig::default());
    // A CSM with an unknown elective option (6) is fine: it is ignored.
    let mut buf = [0u8; 32];
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::CSM, &[]).unwrap();
    b.option(OptionNumber(6), b"x").unwrap();
    let n = b.finish().unwrap();
    assert_eq!(
        s.receive(&buf[..n], 64),
        vec![Ev::Settings(PeerSettings::default())]
    );
    // A later CSM with an unknown critical option (3): Abort with Bad-CSM-Option 3.
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::CSM, &[]).unwrap();
    b.option(OptionNumber(3), &[]).unwrap();
    let n = b.finish().unwrap();
    assert!(matches!(s.receive(&buf[..n], 64)[..], [Ev::Closed(_)]));
    let out = s.drain();
    let abort = ReliableMessage::parse(&out[2..], Framing::Stream).unwrap();
    match signaling::parse(&abort).unwrap() {
        Signal::Abort {
            bad_csm_option,
            diagnostic,
        } => {
            assert_eq!(bad_csm_option, Some(3));
            assert_eq!(diagnostic, b"unknown critical signaling option");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn abort_on_oversized_frame() {
    let (mut cb, mut sb) = (vec![0u8; 8192], vec![0u8; 8192]);
    // The server announces the default 1152 although its buffer is larger.
    let (mut c, mut s) = established(&mut cb, &mut sb, bwt(8192), ConnectionConfig::default());
    // A client ignoring the server's Max-Message-Size: a 2000-byte message.
    let mut buf = vec![0u8; 4096];
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::POST, &[1]).unwrap();
    b.payload(&[0x11; 2000]).unwrap();
    let n = b.finish().unwrap();
    // Only its header arrives: the error comes before the body.
    let evs = s.receive(&buf[..5], 5);
    assert_eq!(evs.len(), 1);
    assert!(
        matches!(&evs[0], Ev::Closed(r) if r.contains("TooLarge")),
        "{evs:?}"
    );
    assert!(n > 2000);
    assert_eq!(
        pump(&mut s, &mut c),
        vec![Ev::PeerAborted {
            bad_csm_option: None,
            diagnostic: "message exceeds Max-Message-Size".into()
        }]
    );
}

#[test]
fn other_protocol_errors_abort_and_empty_messages_are_ignored() {
    for (bytes, what) in [
        (&[0x00, 0xe6][..], "UnknownCode"),                 // 7.06
        (&[0x00, 0x21][..], "ReservedCode"),                // 1.01
        (&[0x10, 0x01, 0xf0][..], "Wire"),                  // option delta nibble 15
        (&[0x10, 0xe2, 0x10][..], "UnknownCriticalOption"), // Ping with option 1
    ] {
        let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
        let (_c, mut s) = established(
            &mut cb,
            &mut sb,
            ConnectionConfig::default(),
            ConnectionConfig::default(),
        );
        assert!(
            s.receive(&[0x00, 0x00, 0x00, 0x00], 1).is_empty(),
            "0.00 ignored (§3.4)"
        );
        let evs = s.receive(bytes, 64);
        assert!(
            matches!(&evs[..], [Ev::Closed(r)] if r.contains(what)),
            "{what}: {evs:?}"
        );
        assert!(s.conn.is_closed());
        let out = s.drain();
        assert_eq!(
            ReliableMessage::parse(&out, Framing::Stream)
                .unwrap()
                .code(),
            Code::ABORT
        );
    }
    // Over WebSockets a frame is a whole message: a token running past its end is an error.
    let mut ws = Conn::new(
        Instant::ZERO,
        Framing::WebSocket,
        ConnectionConfig::default(),
    );
    ws.poll_transmit(&mut [0u8; 16]).unwrap();
    assert!(matches!(
        ws.handle_message(&[0x00, 0xe1]),
        Some(Event::PeerSettings(_))
    ));
    let e = ws.handle_message(&[0x02, 0xe2, 0x01]).map(own);
    assert!(
        matches!(e, Some(Ev::Closed(ref r)) if r.contains("Wire")),
        "{e:?}"
    );
}

#[test]
fn requests_beyond_the_tracked_number_get_5_03() {
    let (mut cb, mut sb) = (vec![0u8; 4096], vec![0u8; 4096]);
    let (mut c, mut s) = established(
        &mut cb,
        &mut sb,
        ConnectionConfig::default(),
        ConnectionConfig::default(),
    );
    let mut stream = Vec::new();
    for t in 0..4u8 {
        stream.extend(request(&mut c, Code::GET, &[t], b"").unwrap());
    }
    assert_eq!(s.receive(&stream, 64).len(), 4);
    // The client tracks 4 exchanges too: a fifth is refused there.
    assert_eq!(
        request(&mut c, Code::GET, &[9], b"").unwrap_err(),
        SendError::TooManyExchanges
    );
    c.conn.forget(&[3]);
    let fifth = request(&mut c, Code::GET, &[4], b"").unwrap();
    assert!(s.receive(&fifth, 64).is_empty());
    assert_eq!(
        pump(&mut s, &mut c),
        vec![Ev::Response {
            code: Code::SERVICE_UNAVAILABLE,
            token: vec![4],
            payload: b"too many requests in progress".to_vec(),
            last: true
        }]
    );
}

#[test]
fn websocket_framing_one_message_per_frame() {
    let cfg = ConnectionConfig::default();
    let mut c = Conn::new(Instant::ZERO, Framing::WebSocket, cfg);
    let mut s = Conn::new(Instant::ZERO, Framing::WebSocket, cfg);
    let mut frame = [0u8; 256];
    let n = c.poll_transmit(&mut frame).unwrap().unwrap();
    assert_eq!(&frame[..n], &[0x00, 0xe1]); // §4.2: Len 0, CSM
    assert!(matches!(
        s.handle_message(&frame[..n]),
        Some(Event::PeerSettings(_))
    ));
    let n = s.poll_transmit(&mut frame).unwrap().unwrap();
    assert!(matches!(
        c.handle_message(&frame[..n]),
        Some(Event::PeerSettings(_))
    ));
    let n = c
        .send_request(&mut frame, Code::GET, &[1, 2], |b| {
            b.option_str(OptionNumber::URI_PATH, "hello")?;
            Ok(())
        })
        .unwrap();
    assert_eq!(frame[0], 0x02); // Len 0 | TKL 2, whatever the length
    match s.handle_message(&frame[..n]) {
        Some(Event::Request(m)) => assert_eq!(m.uri_path().next(), Some(&b"hello"[..])),
        other => panic!("{other:?}"),
    }
    let n = s
        .send_response(&mut frame, Code::CONTENT, &[1, 2], |b| {
            b.payload(&[b'x'; 100])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(frame[0], 0x02);
    assert!(matches!(
        c.handle_message(&frame[..n]),
        Some(Event::Response { last: true, .. })
    ));
}

#[test]
fn small_max_message_size_and_csm_updates() {
    let (mut cb, mut sb) = (vec![0u8; 256], vec![0u8; 4096]);
    let small = ConnectionConfig {
        max_message_size: 256,
        ..ConnectionConfig::default()
    };
    let (mut c, mut s) = established(&mut cb, &mut sb, small, bwt(4096));
    assert_eq!(s.conn.peer_settings().max_message_size, 256);
    // The server respects the client's 256 bytes ...
    let req = request(&mut c, Code::GET, &[1], b"").unwrap();
    s.receive(&req, 64);
    let mut buf = [0u8; 512];
    assert!(matches!(
        s.conn.send_response(&mut buf, Code::CONTENT, &[1], |b| b
            .payload(&[0; 300])
            .map(|_| ())),
        Err(SendError::TooLarge { limit: 256, .. })
    ));
    // ... and a later CSM raises the limit; options it leaves out keep their values.
    let mut csm = [0u8; 16];
    let n = signaling::write_csm(&mut csm, Framing::Stream, 2048, false).unwrap();
    assert_eq!(
        s.receive(&csm[..n], 1),
        vec![Ev::Settings(PeerSettings {
            max_message_size: 2048,
            block_wise_transfer: false
        })]
    );
    let n = signaling::write_csm(&mut csm, Framing::Stream, 1152, true).unwrap();
    // Max-Message-Size 1152 is the default and left out of the CSM: 2048 stays.
    assert_eq!(&csm[..n], &[0x10, 0xe1, 0x40]);
    assert_eq!(
        s.receive(&csm[..n], 1),
        vec![Ev::Settings(PeerSettings {
            max_message_size: 2048,
            block_wise_transfer: true
        })]
    );
}

#[test]
fn signaling_option_formats() {
    // Release with two Alternative-Addresses (one empty, outside 1–255: skipped) and a
    // 4-byte Hold-Off (outside 0–3 bytes: ignored as an unknown elective option would be).
    let mut buf = [0u8; 64];
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::RELEASE, &[]).unwrap();
    b.option_str(OptionNumber(2), "10.0.0.1:5683").unwrap();
    b.option(OptionNumber(2), b"").unwrap();
    b.option_str(OptionNumber(2), "[::1]:5683").unwrap();
    b.option(OptionNumber(4), &[0, 0, 0, 1]).unwrap();
    b.payload(b"maintenance").unwrap();
    let n = b.finish().unwrap();
    let m = ReliableMessage::parse(&buf[..n], Framing::Stream).unwrap();
    match signaling::parse(&m).unwrap() {
        Signal::Release {
            alternative_addresses,
            hold_off,
            diagnostic,
        } => {
            assert_eq!(
                alternative_addresses.collect::<Vec<_>>(),
                vec!["10.0.0.1:5683", "[::1]:5683"]
            );
            assert_eq!(hold_off, None);
            assert_eq!(diagnostic, b"maintenance");
        }
        other => panic!("{other:?}"),
    }
    // The writers produce what the parser reads.
    let n = signaling::write_release(&mut buf, Framing::WebSocket, Some("h:1"), Some(600), "x")
        .unwrap();
    let m = ReliableMessage::parse(&buf[..n], Framing::WebSocket).unwrap();
    assert!(matches!(
        signaling::parse(&m),
        Ok(Signal::Release {
            hold_off: Some(600),
            ..
        })
    ));
    let n = signaling::write_abort(&mut buf, Framing::Stream, Some(2), "bad").unwrap();
    let m = ReliableMessage::parse(&buf[..n], Framing::Stream).unwrap();
    assert!(matches!(
        signaling::parse(&m),
        Ok(Signal::Abort {
            bad_csm_option: Some(2),
            diagnostic: b"bad"
        })
    ));
    // Custody with a value is not the empty option it must be: no custody.
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::PING, &[1]).unwrap();
    b.option(OptionNumber(2), &[1]).unwrap();
    let n = b.finish().unwrap();
    let m = ReliableMessage::parse(&buf[..n], Framing::Stream).unwrap();
    assert!(matches!(
        signaling::parse(&m),
        Ok(Signal::Ping { custody: false })
    ));
}

#[test]
fn a_buffer_too_small_keeps_the_message_queued() {
    let (mut cb, mut sb) = (vec![0u8; 2048], vec![0u8; 2048]);
    let (mut c, mut s) = established(
        &mut cb,
        &mut sb,
        ConnectionConfig::default(),
        ConnectionConfig::default(),
    );
    s.conn.release(Some("coap+tcp://example.net"), None);
    let mut tiny = [0u8; 8];
    assert_eq!(
        s.conn.poll_transmit(&mut tiny),
        Err(coap_core::BuildError::BufferTooSmall)
    );
    assert_eq!(
        pump(&mut s, &mut c),
        vec![Ev::Released {
            addresses: vec!["coap+tcp://example.net".into()],
            hold_off: None
        }]
    );
    // A second release is a no-op.
    s.conn.release(None, Some(1));
    assert!(s.drain().is_empty());
}
