//! Just enough of the DTLS 1.2 record and handshake framing (RFC 6347 §4.1, §4.2.2) to
//! recognise a ClientHello before any per-peer state exists, read its random and cookie,
//! and derive the cookie-less ClientHello that the stateless cookie exchange needs.
//!
//! Everything here is bounds-checked with `get()`: these bytes come from anyone.

/// Length of the DTLS record header: type, version, epoch, sequence number, length.
const RECORD_HEADER: usize = 13;
/// Length of the DTLS handshake header: type, length, message_seq, fragment offset/length.
const HANDSHAKE_HEADER: usize = 12;
/// `ContentType.handshake` (RFC 5246 §6.2.1).
const CONTENT_HANDSHAKE: u8 = 22;
/// `HandshakeType.client_hello` (RFC 5246 §7.4).
const CLIENT_HELLO: u8 = 1;
/// `HandshakeType.server_hello` (RFC 5246 §7.4).
const SERVER_HELLO: u8 = 2;
/// client_version (2) + random (32): the fixed part of the ClientHello body.
const BODY_FIXED: usize = 34;

/// The fields of an unfragmented epoch-0 ClientHello that the cookie exchange needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientHello<'a> {
    /// 48-bit record sequence number (RFC 6347 §4.1).
    pub record_seq: u64,
    /// Handshake message_seq (RFC 6347 §4.2.2): 0 for the first ClientHello, 1 after a
    /// HelloVerifyRequest.
    pub message_seq: u16,
    /// ClientHello.random: the client keeps it across the cookie exchange (RFC 6347 §4.2.1).
    pub random: &'a [u8; 32],
    /// The cookie echoed from a HelloVerifyRequest, empty on a first ClientHello.
    pub cookie: &'a [u8],
    /// Offset of the cookie length byte in the datagram.
    cookie_len_at: usize,
    /// Length of the whole first record (header + fragment).
    record_len: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u24_at(b: &[u8], at: usize) -> Option<usize> {
    Some(
        usize::from(*b.get(at)?) << 16
            | usize::from(*b.get(at + 1)?) << 8
            | usize::from(*b.get(at + 2)?),
    )
}

/// Parses the first record of `datagram` as an epoch-0, unfragmented ClientHello.
///
/// Returns `None` for anything else (application data, other handshake messages,
/// fragments, truncated or inconsistent lengths): the caller drops those when no session
/// exists for the sender.
pub(crate) fn client_hello(datagram: &[u8]) -> Option<ClientHello<'_>> {
    if *datagram.first()? != CONTENT_HANDSHAKE {
        return None;
    }
    // RFC 6347 §4.1: epoch 0 is the only epoch a new association can use.
    if u16_at(datagram, 3)? != 0 {
        return None;
    }
    let seq_bytes = datagram.get(5..11)?;
    let record_seq = seq_bytes
        .iter()
        .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    let fragment_len = usize::from(u16_at(datagram, 11)?);
    let record_len = RECORD_HEADER.checked_add(fragment_len)?;
    let record = datagram.get(..record_len)?;
    let hs = RECORD_HEADER;
    if *record.get(hs)? != CLIENT_HELLO {
        return None;
    }
    let length = u24_at(record, hs + 1)?;
    let message_seq = u16_at(record, hs + 4)?;
    let frag_off = u24_at(record, hs + 6)?;
    let frag_len = u24_at(record, hs + 9)?;
    // A fragmented ClientHello cannot be checked statelessly; PSK ClientHellos are small
    // enough that clients do not fragment them.
    if frag_off != 0 || frag_len != length || HANDSHAKE_HEADER + length > fragment_len {
        return None;
    }
    let body = hs + HANDSHAKE_HEADER;
    let random: &[u8; 32] = record.get(body + 2..body + BODY_FIXED)?.try_into().ok()?;
    let sid_len = usize::from(*record.get(body + BODY_FIXED)?);
    let cookie_len_at = body + BODY_FIXED + 1 + sid_len;
    let cookie_len = usize::from(*record.get(cookie_len_at)?);
    let cookie = record.get(cookie_len_at + 1..cookie_len_at + 1 + cookie_len)?;
    // The rest of the body must still hold the cipher suites and compression methods.
    if cookie_len_at + 1 + cookie_len > body + length {
        return None;
    }
    Some(ClientHello {
        record_seq,
        message_seq,
        random,
        cookie,
        cookie_len_at,
        record_len,
    })
}

/// Builds the first ClientHello of the exchange from a cookie-bearing one: same content,
/// empty cookie, message_seq 0 (RFC 6347 §4.2.1: the client resends the ClientHello with
/// the same parameters plus the cookie, so removing the cookie restores the original).
///
/// The record sequence number is placed just below the real one so the engine's replay
/// window accepts the real ClientHello afterwards.
pub(crate) fn without_cookie(datagram: &[u8], ch: &ClientHello<'_>) -> Option<Vec<u8>> {
    let record = datagram.get(..ch.record_len)?;
    let cookie_len = ch.cookie.len();
    let mut out = Vec::with_capacity(record.len());
    out.extend_from_slice(record.get(..ch.cookie_len_at)?);
    out.push(0);
    out.extend_from_slice(record.get(ch.cookie_len_at + 1 + cookie_len..)?);
    let seq = ch.record_seq.saturating_sub(1).to_be_bytes();
    out.get_mut(5..11)?.copy_from_slice(seq.get(2..8)?);
    let fragment_len = u16::try_from(out.len().checked_sub(RECORD_HEADER)?).ok()?;
    out.get_mut(11..13)?
        .copy_from_slice(&fragment_len.to_be_bytes());
    let hs_len = out.len().checked_sub(RECORD_HEADER + HANDSHAKE_HEADER)?;
    let hs_len = u32::try_from(hs_len).ok()?.to_be_bytes();
    let hs = RECORD_HEADER;
    // length and fragment_length (unfragmented), message_seq 0
    out.get_mut(hs + 1..hs + 4)?
        .copy_from_slice(hs_len.get(1..4)?);
    out.get_mut(hs + 4..hs + 6)?.copy_from_slice(&[0, 0]);
    out.get_mut(hs + 9..hs + 12)?
        .copy_from_slice(hs_len.get(1..4)?);
    Some(out)
}

/// Whether `packet` starts with an epoch-0 ServerHello record: the engine's answer to a
/// ClientHello whose cookie it accepted.
pub(crate) fn is_server_hello(packet: &[u8]) -> bool {
    packet.first() == Some(&CONTENT_HANDSHAKE)
        && u16_at(packet, 3) == Some(0)
        && packet.get(RECORD_HEADER) == Some(&SERVER_HELLO)
}

/// RFC 6347 §4.2.1: "the server MUST use the record sequence number in the ClientHello as
/// the record sequence number in the HelloVerifyRequest". The HelloVerifyRequest is a
/// plaintext epoch-0 record, so the sequence number can be set after the fact.
pub(crate) fn set_record_seq(packet: &mut [u8], seq: u64) {
    if let (Some(dst), Some(src)) = (packet.get_mut(5..11), seq.to_be_bytes().get(2..8)) {
        dst.copy_from_slice(src);
    }
}

/// `ContentType.alert` (RFC 5246 §6.2.1).
const CONTENT_ALERT: u8 = 21;
/// `AlertLevel.fatal` (RFC 5246 §7.2).
const ALERT_FATAL: u8 = 2;
/// `AlertDescription.internal_error` (RFC 5246 §7.2.2): "an internal error unrelated to the
/// peer or the correctness of the protocol ... makes it impossible to continue", the
/// nearest TLS has to "no room for another session".
pub(crate) const INTERNAL_ERROR: u8 = 80;

/// A plaintext epoch-0 fatal alert record (RFC 6347 §4.1 header, RFC 5246 §7.2 body) with
/// record sequence number `seq`: how a server refuses a handshake before any keys exist.
/// 15 bytes, less than the ClientHello it answers.
pub(crate) fn fatal_alert(seq: u64, description: u8) -> [u8; 15] {
    let s = seq.to_be_bytes();
    [
        CONTENT_ALERT,
        0xfe,
        0xfd,
        0,
        0,
        s[2],
        s[3],
        s[4],
        s[5],
        s[6],
        s[7],
        0,
        2,
        ALERT_FATAL,
        description,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built DTLS 1.2 ClientHello (RFC 6347 §4.2.1 layout) with the given cookie.
    fn hello(cookie: &[u8], message_seq: u16, record_seq: u8) -> Vec<u8> {
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[7u8; 32]); // random
        body.push(0); // session id
        body.push(cookie.len() as u8);
        body.extend_from_slice(cookie);
        body.extend_from_slice(&[0, 2, 0xc0, 0xa8]); // TLS_PSK_WITH_AES_128_CCM_8
        body.extend_from_slice(&[1, 0]); // null compression
        let len = body.len() as u32;
        let mut hs = vec![CLIENT_HELLO];
        hs.extend_from_slice(&len.to_be_bytes()[1..]);
        hs.extend_from_slice(&message_seq.to_be_bytes());
        hs.extend_from_slice(&[0, 0, 0]);
        hs.extend_from_slice(&len.to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![
            CONTENT_HANDSHAKE,
            0xfe,
            0xfd,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            record_seq,
        ];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn parses_first_and_cookie_bearing_client_hello() {
        let first = hello(&[], 0, 0);
        let ch = client_hello(&first).unwrap();
        assert_eq!(ch.cookie, b"");
        assert_eq!(ch.message_seq, 0);
        assert_eq!(ch.random, &[7u8; 32]);

        let second = hello(&[9; 32], 1, 1);
        let ch = client_hello(&second).unwrap();
        assert_eq!(ch.cookie, &[9; 32]);
        assert_eq!((ch.message_seq, ch.record_seq), (1, 1));
    }

    #[test]
    fn stripping_the_cookie_restores_the_first_client_hello() {
        let first = hello(&[], 0, 0);
        let second = hello(&[9; 32], 1, 1);
        let ch = client_hello(&second).unwrap();
        assert_eq!(without_cookie(&second, &ch).unwrap(), first);
    }

    #[test]
    fn rejects_everything_that_is_not_a_whole_client_hello() {
        let good = hello(&[1, 2, 3], 1, 1);
        // every truncation
        for n in 0..good.len() {
            assert!(client_hello(&good[..n]).is_none(), "truncated to {n}");
        }
        // application data, other epoch, other handshake type, fragment
        for (at, val) in [(0, 23u8), (4, 1), (13, SERVER_HELLO), (21, 1)] {
            let mut bad = good.clone();
            bad[at] = val;
            assert!(client_hello(&bad).is_none(), "byte {at} = {val}");
        }
        // cookie length running past the message
        let mut bad = good.clone();
        bad[13 + 12 + 34 + 1] = 200;
        assert!(client_hello(&bad).is_none());
    }

    #[test]
    fn record_sequence_is_copied_into_hello_verify_request() {
        let mut p = hello(&[], 0, 0);
        set_record_seq(&mut p, 0x0102_0304_0506);
        assert_eq!(&p[5..11], &[1, 2, 3, 4, 5, 6]);
        set_record_seq(&mut [0u8; 3], 1); // too short: no panic, no change
    }
}
