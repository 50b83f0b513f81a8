//! Our server against hand-made datagrams from a raw UDP socket (RFC 7252 §3, §4.2, §4.3,
//! §5.4.1). No peer needed.
//!
//! "Nothing arrives" is checked with a barrier: after the datagram under test, a ping
//! (Empty CON) with a fresh MID; the server handles datagrams in order, so the next
//! datagram received must be the ping's RST. A short quiet period at the end catches
//! anything late.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use super::our_server::OurServer;
use super::support::BOUND;
use super::wire::{self, decode, encode, Msg, ACK, CON, EMPTY, GET, NON, POST, RST};

/// A raw socket connected to a fresh server of ours.
struct Raw {
    server: OurServer,
    sock: UdpSocket,
    next_mid: u16,
}

impl Raw {
    fn new() -> Raw {
        let server = OurServer::start();
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.connect(server.addr).unwrap();
        Raw {
            server,
            sock,
            next_mid: 0x5000,
        }
    }

    fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    fn send(&self, bytes: &[u8]) {
        self.sock.send(bytes).unwrap();
    }

    /// The next datagram within `wait`, raw.
    fn recv_within(&self, wait: Duration) -> Option<Vec<u8>> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 2048];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("recv from our server {}: {e}", self.server.addr),
        }
    }

    /// The next datagram, decoded; fails the test after [`BOUND`].
    fn recv(&self, after: &str) -> Msg {
        let bytes = self
            .recv_within(BOUND)
            .unwrap_or_else(|| panic!("no answer within {BOUND:?} to {after}"));
        decode(&bytes)
            .unwrap_or_else(|e| panic!("undecodable answer to {after}: {e}: {bytes:02x?}"))
    }

    /// Asserts that nothing was sent in response to the datagrams before (barrier ping).
    fn assert_nothing_for(&mut self, what: &str) {
        let mid = self.mid();
        self.send(&encode(CON, EMPTY, mid, &[], &[], b""));
        let m = self.recv(&format!("the ping after {what}"));
        assert!(
            m.ty == RST && m.mid == mid,
            "{what}: expected no answer, got {m:?} (before the RST of ping {mid:#06x})"
        );
    }

    /// Asserts that the answer is an RST for `mid`: Empty, no token, no payload.
    fn assert_rst(&self, what: &str, mid: u16) {
        let m = self.recv(what);
        assert_eq!(
            (
                m.ty,
                m.code,
                m.mid,
                m.token.as_slice(),
                m.options.len(),
                m.payload.len()
            ),
            (RST, EMPTY, mid, &[][..], 0, 0),
            "{what}: expected RST for MID {mid:#06x}, got {m:?}"
        );
    }

    /// Nothing at all within `wait`.
    fn assert_quiet(&self, wait: Duration) {
        if let Some(b) = self.recv_within(wait) {
            panic!("unexpected datagram: {:?}", decode(&b));
        }
    }

    /// The server still answers a normal request.
    fn assert_alive(&mut self) {
        let mid = self.mid();
        self.send(&encode(CON, GET, mid, &[0x42], &[(11, b"hello")], b""));
        let m = self.recv("GET /hello");
        assert_eq!(
            (m.ty, m.code, m.mid, m.payload.as_slice()),
            (ACK, wire::code(2, 5), mid, &b"Hello, world!"[..]),
            "{m:?}"
        );
    }
}

/// A CON request with an unrecognized critical option (odd number) is answered 4.02 Bad
/// Option, piggybacked: ACK, same MID, same token. An unrecognized elective one (even) is
/// ignored.
#[test]
fn unknown_critical_option_gets_4_02_piggybacked() {
    let mut raw = Raw::new();
    for (critical, value) in [
        (2049u16, &b"x"[..]),
        (65001, &b""[..]),
        (9999, &[1, 2, 3][..]),
    ] {
        let mid = raw.mid();
        let token = [0xC0, 0xFF, 0xEE, critical as u8];
        raw.send(&encode(
            CON,
            GET,
            mid,
            &token,
            &[(11, b"hello"), (critical, value)],
            b"",
        ));
        let m = raw.recv(&format!("CON GET /hello with option {critical}"));
        assert_eq!(
            (m.ty, m.code, m.mid, m.token.as_slice()),
            (ACK, wire::code(4, 2), mid, &token[..]),
            "option {critical}: {m:?}"
        );
    }
    // Also before the path is known (no Uri-Path at all) and with a payload.
    let mid = raw.mid();
    raw.send(&encode(CON, POST, mid, &[7], &[(2049, b"")], b"body"));
    let m = raw.recv("CON POST / with option 2049");
    assert_eq!(
        (m.ty, m.code, m.mid, m.token.as_slice()),
        (ACK, wire::code(4, 2), mid, &[7u8][..]),
        "{m:?}"
    );

    // Elective (even) unknown options are ignored.
    let mid = raw.mid();
    raw.send(&encode(
        CON,
        GET,
        mid,
        &[1],
        &[(11, b"hello"), (2048, b"x"), (65000, b"")],
        b"",
    ));
    let m = raw.recv("CON GET /hello with options 2048, 65000");
    assert_eq!(
        (m.ty, m.code, m.mid, m.payload.as_slice()),
        (ACK, wire::code(2, 5), mid, &b"Hello, world!"[..]),
        "{m:?}"
    );
    raw.assert_quiet(Duration::from_millis(100));
}

/// A NON request with an unrecognized critical option is rejected (§5.4.1 → §4.3): never
/// processed; silence or an RST, not a response (libcoap 4.3.1 answers RST).
#[test]
fn unknown_critical_option_in_non_is_rejected() {
    let mut raw = Raw::new();
    let mid = raw.mid();
    raw.send(&encode(
        NON,
        POST,
        mid,
        &[3, 3],
        &[(11, b"count"), (2049, b"x")],
        b"1",
    ));
    let barrier = raw.mid();
    raw.send(&encode(CON, EMPTY, barrier, &[], &[], b""));
    let m = raw.recv("NON POST /count with option 2049");
    if m.mid == mid {
        assert_eq!(
            (m.ty, m.code),
            (RST, EMPTY),
            "rejecting a NON: RST at most, got {m:?}"
        );
        let m = raw.recv("the ping");
        assert_eq!((m.ty, m.mid), (RST, barrier), "{m:?}");
    } else {
        assert_eq!(
            (m.ty, m.mid),
            (RST, barrier),
            "expected nothing before the ping's RST, got {m:?}"
        );
    }
    // The handler did not run: the first counted POST answers 1.
    let mid = raw.mid();
    raw.send(&encode(CON, POST, mid, &[4], &[(11, b"count")], b""));
    let m = raw.recv("CON POST /count");
    assert_eq!(
        (m.code, m.payload.as_slice()),
        (wire::code(2, 4), &b"1"[..]),
        "{m:?}"
    );
}

/// Malformed datagrams (§3, §4.2, §4.3): a CON is rejected with an RST carrying its MID; a
/// NON is dropped silently; a datagram of another version, or too short for a MID, too.
#[test]
fn malformed_datagrams_rst_for_con_silence_otherwise() {
    let mut raw = Raw::new();
    // Bodies after the 4-byte header (type and MID filled in below).
    let cases: [(&str, u8, Vec<u8>); 7] = [
        ("TKL 9", 0x49, [1, 2, 3, 4, 5, 6, 7, 8, 9].to_vec()),
        ("TKL 15", 0x4F, [0; 15].to_vec()),
        ("TKL 2 with 1 byte", 0x42, [1].to_vec()),
        (
            "option value truncated",
            0x41,
            [0xAA, 0xB5, b'h', b'e'].to_vec(),
        ),
        ("option extended delta truncated", 0x40, [0xD0].to_vec()),
        (
            "payload marker without payload",
            0x40,
            [0xB5, b'h', b'e', b'l', b'l', b'o', 0xFF].to_vec(),
        ),
        ("option delta nibble 15", 0x40, [0xF1, 0].to_vec()),
    ];
    for (what, first, body) in &cases {
        for ty in [CON, NON] {
            let mid = raw.mid();
            let mut datagram = vec![(first & 0xCF) | (ty << 4), GET];
            datagram.extend_from_slice(&mid.to_be_bytes());
            datagram.extend_from_slice(body);
            raw.send(&datagram);
            let what = format!("{} {what}: {datagram:02x?}", ["CON", "NON"][ty as usize]);
            if ty == CON {
                raw.assert_rst(&what, mid);
            }
            raw.assert_nothing_for(&what);
        }
    }
    // Option length nibble 15 (reserved) as well.
    let mid = raw.mid();
    raw.send(&[0x40, GET, (mid >> 8) as u8, mid as u8, 0xBF, 0]);
    raw.assert_rst("CON with option length nibble 15", mid);

    // Versions 0, 2 and 3: silently ignored, CON or not, well-formed otherwise.
    for version in [0u8, 2, 3] {
        for ty in [CON, NON] {
            let mid = raw.mid();
            let mut datagram = encode(ty, GET, mid, &[9], &[(11, b"hello")], b"");
            datagram[0] = (datagram[0] & 0x3F) | (version << 6);
            raw.send(&datagram);
            raw.assert_nothing_for(&format!("version {version} {datagram:02x?}"));
        }
    }
    // Shorter than a header: no MID to reset.
    for short in [&[0x40][..], &[0x40, 0x01], &[0x40, 0x01, 0x12], &[]] {
        raw.send(short);
        raw.assert_nothing_for(&format!("{short:02x?}"));
    }
    raw.assert_alive();
    raw.assert_quiet(Duration::from_millis(200));
}

/// A ping (Empty CON) is answered with an RST of the same MID (§4.3). An Empty message
/// with a token or a payload is a format error (§4.1): RST for CON. An Empty NON, an
/// unexpected ACK or RST: nothing.
#[test]
fn ping_gets_rst() {
    let mut raw = Raw::new();
    for _ in 0..3 {
        let mid = raw.mid();
        raw.send(&encode(CON, EMPTY, mid, &[], &[], b""));
        raw.assert_rst("ping", mid);
    }
    let mid = raw.mid();
    raw.send(&encode(CON, EMPTY, mid, &[1, 2], &[], b""));
    raw.assert_rst("Empty CON with a token", mid);
    let mid = raw.mid();
    raw.send(&encode(CON, EMPTY, mid, &[], &[], b"x"));
    raw.assert_rst("Empty CON with a payload", mid);

    for (what, ty) in [
        ("Empty NON", NON),
        ("unexpected ACK", ACK),
        ("unexpected RST", RST),
    ] {
        let mid = raw.mid();
        raw.send(&encode(ty, EMPTY, mid, &[], &[], b""));
        raw.assert_nothing_for(what);
    }
    raw.assert_alive();
    raw.assert_quiet(Duration::from_millis(100));
}

/// Messages the server has no context for (§4.2): a CON with a reserved code class (1, 6,
/// 7) or a response code it did not ask for is rejected with RST.
#[test]
fn con_without_context_gets_rst() {
    let mut raw = Raw::new();
    for (what, code) in [
        ("class 1 code", wire::code(1, 1)),
        ("class 6 code", wire::code(6, 0)),
        ("class 7 code", wire::code(7, 31)),
        ("unsolicited 2.05 response", wire::code(2, 5)),
    ] {
        let mid = raw.mid();
        raw.send(&encode(CON, code, mid, &[0x77], &[], b"x"));
        raw.assert_rst(what, mid);
    }
    raw.assert_alive();
}

/// A retransmitted CON (same MID from the same endpoint) is answered from the cache with
/// the same response; the handler runs once (§4.5).
#[test]
fn duplicate_con_is_answered_once() {
    let mut raw = Raw::new();
    let mid = raw.mid();
    let datagram = encode(CON, POST, mid, &[0xD0, 0x0D], &[(11, b"count")], b"");
    raw.send(&datagram);
    let first = raw.recv("POST /count");
    assert_eq!(
        (first.ty, first.code, first.mid, first.payload.as_slice()),
        (ACK, wire::code(2, 4), mid, &b"1"[..]),
        "{first:?}"
    );
    for _ in 0..2 {
        raw.send(&datagram);
        let again = raw.recv("the duplicate POST /count");
        assert_eq!(again, first, "the duplicate's response differs");
    }
    // A new MID is a new request.
    let mid = raw.mid();
    raw.send(&encode(
        CON,
        POST,
        mid,
        &[0xD0, 0x0E],
        &[(11, b"count")],
        b"",
    ));
    let m = raw.recv("POST /count");
    assert_eq!((m.mid, m.payload.as_slice()), (mid, &b"2"[..]), "{m:?}");
    raw.assert_quiet(Duration::from_millis(100));
}

/// Tokens of every length 0..=8 come back unchanged, in ACKs and in NON responses (§5.3.1).
#[test]
fn tokens_of_every_length_are_echoed() {
    let mut raw = Raw::new();
    for len in 0..=8u8 {
        let token: Vec<u8> = (0..len).map(|i| 0xA0 + i).collect();
        for ty in [CON, NON] {
            let mid = raw.mid();
            raw.send(&encode(ty, GET, mid, &token, &[(11, b"hello")], b""));
            let m = raw.recv(&format!("GET /hello with a {len}-byte token"));
            assert_eq!(
                (m.code, m.token.as_slice(), m.payload.as_slice()),
                (wire::code(2, 5), token.as_slice(), &b"Hello, world!"[..]),
                "{m:?}"
            );
            if ty == CON {
                assert_eq!((m.ty, m.mid), (ACK, mid), "piggybacked: {m:?}");
            } else {
                assert_eq!(m.ty, NON, "a NON request gets a NON response: {m:?}");
            }
        }
    }
    raw.assert_quiet(Duration::from_millis(100));
}

/// Options a server without proxy or OSCORE support must not silently ignore: Proxy-Uri
/// and Proxy-Scheme ask for forwarding (RFC 7252 §5.7.2: 5.05 Proxying Not Supported);
/// OSCORE (option 9, critical) from a server without OSCORE is an unrecognized critical
/// option (4.02, RFC 8613 §2). libcoap 4.3.1 (built without OSCORE) answers exactly so.
#[test]
fn proxy_and_oscore_options_are_not_ignored() {
    let mut raw = Raw::new();
    type Options<'a> = &'a [(u16, &'a [u8])];
    let cases: [(&str, Options<'_>, u8); 3] = [
        (
            "Proxy-Uri",
            &[(35, b"coap://198.51.100.1/hello")],
            wire::code(5, 5),
        ),
        (
            "Proxy-Scheme",
            &[(11, b"hello"), (39, b"coap")],
            wire::code(5, 5),
        ),
        (
            "OSCORE",
            &[(9, &[0x09, 0x00]), (11, b"hello")],
            wire::code(4, 2),
        ),
    ];
    let mut wrong = vec![];
    for (what, options, want) in cases {
        let mid = raw.mid();
        raw.send(&encode(CON, GET, mid, &[0x0F], options, b""));
        let m = raw.recv(what);
        if (m.ty, m.code, m.mid) != (ACK, want, mid) {
            wrong.push(format!(
                "{what}: want {}.{:02}, got {m:?}",
                want >> 5,
                want & 0x1F
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
