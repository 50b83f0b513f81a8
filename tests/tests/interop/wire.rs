//! CoAP messages on the wire, written and read here by hand (RFC 7252 §3) so that the
//! robustness tests do not depend on the codec they test.

use std::fmt;

/// Message types.
pub const CON: u8 = 0;
pub const NON: u8 = 1;
pub const ACK: u8 = 2;
pub const RST: u8 = 3;

/// A code as `class.detail` in one byte.
pub const fn code(class: u8, detail: u8) -> u8 {
    (class << 5) | detail
}

pub const GET: u8 = code(0, 1);
pub const POST: u8 = code(0, 2);
pub const EMPTY: u8 = code(0, 0);

/// A datagram: header, token, options (sorted by the caller), payload.
pub fn encode(
    ty: u8,
    code: u8,
    mid: u16,
    token: &[u8],
    options: &[(u16, &[u8])],
    payload: &[u8],
) -> Vec<u8> {
    assert!(token.len() <= 8);
    let mut out = vec![0x40 | (ty << 4) | token.len() as u8, code];
    out.extend_from_slice(&mid.to_be_bytes());
    out.extend_from_slice(token);
    let mut last = 0u16;
    for &(number, value) in options {
        assert!(number >= last, "options must be sorted");
        let (d, dx) = nibble(number - last);
        let (l, lx) = nibble(value.len() as u16);
        out.push((d << 4) | l);
        out.extend_from_slice(&dx);
        out.extend_from_slice(&lx);
        out.extend_from_slice(value);
        last = number;
    }
    if !payload.is_empty() {
        out.push(0xFF);
        out.extend_from_slice(payload);
    }
    out
}

/// An option delta or length: the 4-bit field and its extension bytes.
fn nibble(v: u16) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, vec![]),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (14, (v - 269).to_be_bytes().to_vec()),
    }
}

/// A received message.
#[derive(Clone, PartialEq, Eq)]
pub struct Msg {
    pub ty: u8,
    pub code: u8,
    pub mid: u16,
    pub token: Vec<u8>,
    pub options: Vec<(u16, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl Msg {
    pub fn option(&self, number: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| v.as_slice())
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = ["CON", "NON", "ACK", "RST"][self.ty as usize];
        write!(
            f,
            "{ty} {}.{:02} mid={:#06x} token={:02x?} options={:?} payload={:?}",
            self.code >> 5,
            self.code & 0x1F,
            self.mid,
            self.token,
            self.options,
            String::from_utf8_lossy(&self.payload)
        )
    }
}

/// Parses a datagram strictly enough for the tests (version 1, TKL ≤ 8, well-formed
/// options, no payload marker without payload).
pub fn decode(b: &[u8]) -> Result<Msg, String> {
    if b.len() < 4 {
        return Err(format!("{} bytes: shorter than a header", b.len()));
    }
    if b[0] >> 6 != 1 {
        return Err(format!("version {}", b[0] >> 6));
    }
    let tkl = (b[0] & 0x0F) as usize;
    if tkl > 8 || b.len() < 4 + tkl {
        return Err(format!("bad token length {tkl}"));
    }
    let mut msg = Msg {
        ty: (b[0] >> 4) & 3,
        code: b[1],
        mid: u16::from_be_bytes([b[2], b[3]]),
        token: b[4..4 + tkl].to_vec(),
        options: vec![],
        payload: vec![],
    };
    let mut i = 4 + tkl;
    let mut number = 0u16;
    while i < b.len() {
        if b[i] == 0xFF {
            if i + 1 == b.len() {
                return Err("payload marker without payload".into());
            }
            msg.payload = b[i + 1..].to_vec();
            break;
        }
        let head = b[i];
        i += 1;
        let mut ext = |n: u8| -> Result<u16, String> {
            Ok(match n {
                0..=12 => n as u16,
                13 => {
                    let v = *b.get(i).ok_or("truncated option")? as u16 + 13;
                    i += 1;
                    v
                }
                14 => {
                    let v = u16::from_be_bytes([
                        *b.get(i).ok_or("truncated option")?,
                        *b.get(i + 1).ok_or("truncated option")?,
                    ]) + 269;
                    i += 2;
                    v
                }
                _ => return Err("reserved option nibble 15".into()),
            })
        };
        let delta = ext(head >> 4)?;
        let len = ext(head & 0x0F)? as usize;
        number += delta;
        let value = b.get(i..i + len).ok_or("truncated option value")?;
        msg.options.push((number, value.to_vec()));
        i += len;
    }
    Ok(msg)
}

#[test]
fn round_trip() {
    let long = [7u8; 300];
    let b = encode(
        CON,
        POST,
        0x1234,
        &[1, 2],
        &[(11, b"a"), (12, &[0]), (2049, &long)],
        b"x",
    );
    let m = decode(&b).unwrap();
    assert_eq!((m.ty, m.code, m.mid), (CON, POST, 0x1234));
    assert_eq!(m.token, [1, 2]);
    assert_eq!(m.option(2049).unwrap().len(), 300);
    assert_eq!(m.option(12), Some(&[0u8][..]));
    assert_eq!(m.payload, b"x");
}
