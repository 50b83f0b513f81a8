//! Reception rules of RFC 7252, 7641, 7959, 7967, 8132, 8768 and 8974, one table row per
//! rule: each row is a datagram (or a short sequence) built as bytes, fed to a server
//! endpoint, and the answer to its last datagram is compared with what the RFC asks for.
//! Row names are the ones CONFORMANCE.md cites.

use coap_core::block::{Progress, Reassembly};
use coap_core::message::MessageType;
use coap_core::router::{Resource, Route, Router};
use coap_core::{
    Code, Config, Endpoint, IncomingRequest, Message, OptionNumber, Outcome, ResponseWriter,
};

/// A resource that answers GET with 2.05, observable, and with a payload that shows how
/// it saw the option named by a `o=N` query: `Some([..])` or `None`.
struct Echo;

impl Resource<u32> for Echo {
    fn get(&mut self, req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let msg = req.message();
        let shown = msg
            .uri_query()
            .find_map(|q| q.strip_prefix(b"o="))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u16>().ok());
        let body = match shown {
            Some(n) => format!("{:?}", msg.option(OptionNumber(n)).map(|o| o.value)),
            None => "ok".to_string(),
        };
        resp.observable(1);
        resp.respond(Code::CONTENT, None, body.as_bytes()).unwrap();
        Outcome::Respond
    }
}

/// 300 bytes served block-wise.
struct Big;

impl Resource<u32> for Big {
    fn get(&mut self, _req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.set_code(Code::CONTENT);
        resp.payload_blockwise(&[b'x'; 300]).unwrap();
        Outcome::Respond
    }
}

/// Takes Block1 uploads of up to 256 bytes.
struct Upload(Box<Reassembly<u32, 256>>);

impl Resource<u32> for Upload {
    fn post(&mut self, req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>) -> Outcome {
        match self.0.accept(req.now(), &req.peer(), req.message()) {
            Ok(Progress::Continue(b)) => {
                resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                resp.set_code(Code::CONTINUE);
            }
            Ok(Progress::Complete(_, b)) => {
                if let Some(b) = b {
                    resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                }
                resp.set_code(Code::CHANGED);
            }
            Err(e) => {
                resp.set_code(e.code());
            }
        }
        Outcome::Respond
    }
    fn accepts_block1(&self) -> bool {
        true
    }
}

type Server = Router<Box<dyn Resource<u32>>, Vec<Route<'static, Box<dyn Resource<u32>>>>>;

fn server() -> Server {
    Router::new(vec![
        Route::new("/r", Box::new(Echo) as Box<dyn Resource<u32>>),
        Route::new("/big", Box::new(Big)),
        Route::new("/up", Box::new(Upload(Box::new(Reassembly::new())))),
    ])
}

const CON: u8 = 0;
const NON: u8 = 1;
const ACK: u8 = 2;
const RST: u8 = 3;
const TOKEN: &[u8] = &[0x42];

/// Encodes a message by hand (RFC 7252 §3), options sorted by number (stable, so that
/// repeats keep their order), without any of the builder's checks.
pub fn wire(ty: u8, code: Code, mid: u16, opts: &[(u16, &[u8])], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x40 | (ty << 4) | TOKEN.len() as u8, code.0];
    out.extend_from_slice(&mid.to_be_bytes());
    out.extend_from_slice(TOKEN);
    let mut sorted = opts.to_vec();
    sorted.sort_by_key(|o| o.0);
    let mut prev = 0;
    for (n, v) in sorted {
        let (dn, dx) = ext(usize::from(n - prev));
        let (ln, lx) = ext(v.len());
        out.push((dn << 4) | ln);
        out.extend_from_slice(&dx);
        out.extend_from_slice(&lx);
        out.extend_from_slice(v);
        prev = n;
    }
    if !payload.is_empty() {
        out.push(0xff);
        out.extend_from_slice(payload);
    }
    out
}

fn ext(v: usize) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, vec![]),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (14, ((v - 269) as u16).to_be_bytes().to_vec()),
    }
}

/// What a row sends.
#[derive(Clone, Copy)]
pub enum Input {
    /// A message: type, code, options (number, value), payload.
    Msg(u8, Code, &'static [(u16, &'static [u8])], &'static [u8]),
    /// Raw bytes (for format errors the encoder cannot produce).
    Raw(&'static [u8]),
}

/// What the last datagram of a row must get back.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// One response with this code (piggybacked on an ACK for CON, NON for NON).
    Code(Code),
    /// One 2.05 response with this payload.
    Body(&'static str),
    /// One 2.05 response, with (true) or without (false) an Observe option.
    Observed(bool),
    /// One RST echoing the Message ID.
    Rst,
    /// One empty ACK.
    EmptyAck,
    /// Nothing at all.
    Nothing,
}

pub struct Row {
    pub name: &'static str,
    pub input: &'static [Input],
    pub expect: Expect,
}

#[path = "conformance/rows.rs"]
mod rows;
pub use rows::ROWS;
use rows::{GET, R};

/// Feeds `row` to a fresh server; the datagrams sent back to the last input.
pub fn run(row: &Row) -> Vec<Vec<u8>> {
    let mut server: Endpoint<u32> = Endpoint::new(Config::default(), 9);
    let mut handler = server_handler();
    let now = coap_core::Instant::from_millis(1000);
    let mut out = Vec::new();
    for (i, input) in row.input.iter().enumerate() {
        let bytes = match *input {
            Input::Msg(ty, code, opts, payload) => wire(ty, code, 0x100 + i as u16, opts, payload),
            Input::Raw(b) => b.to_vec(),
        };
        server.handle_datagram(now, 1, &bytes, &mut handler);
        out.clear();
        let mut buf = [0u8; 1152];
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
        }
    }
    out
}

fn server_handler() -> Server {
    server()
}

/// The request's Message ID and type of the last input of a row.
fn last_header(row: &Row) -> (u16, u8) {
    let n = row.input.len() - 1;
    match row.input[n] {
        Input::Msg(ty, ..) => (0x100 + n as u16, ty),
        Input::Raw(b) => (u16::from_be_bytes([b[2], b[3]]), (b[0] >> 4) & 3),
    }
}

/// Whether the answers meet the row's expectation; `Err` says how they do not.
pub fn check(row: &Row, answers: &[Vec<u8>]) -> Result<(), String> {
    let (mid, ty) = last_header(row);
    let msgs: Vec<Message<'_>> = answers
        .iter()
        .map(|a| Message::parse(a).map_err(|e| format!("unparsable answer: {e}")))
        .collect::<Result<_, _>>()?;
    let one = || match msgs.as_slice() {
        [m] => Ok(*m),
        _ => Err(format!(
            "{} answers, wanted one: {answers:02x?}",
            msgs.len()
        )),
    };
    let response = |code: Code| -> Result<Message<'_>, String> {
        let m = one()?;
        let want_ty = if ty == CON {
            MessageType::Ack
        } else {
            MessageType::Non
        };
        if m.code() != code || m.ty() != want_ty || m.token() != TOKEN {
            return Err(format!(
                "got {} {:?}, wanted {} {code:?}",
                m.ty().name(),
                m.code(),
                want_ty.name()
            ));
        }
        if ty == CON && m.message_id() != mid {
            return Err("ACK with another Message ID".into());
        }
        Ok(m)
    };
    match row.expect {
        Expect::Code(c) => response(c).map(|_| ()),
        Expect::Body(b) => {
            let m = response(Code::CONTENT)?;
            if m.payload() != b.as_bytes() {
                return Err(format!(
                    "payload {:?}, wanted {b:?}",
                    String::from_utf8_lossy(m.payload())
                ));
            }
            Ok(())
        }
        Expect::Observed(want) => {
            let m = response(Code::CONTENT)?;
            let has = m.option(OptionNumber::OBSERVE).is_some();
            if has != want {
                return Err(format!("Observe in response: {has}, wanted {want}"));
            }
            Ok(())
        }
        Expect::Rst | Expect::EmptyAck => {
            let m = one()?;
            let want = if matches!(row.expect, Expect::Rst) {
                MessageType::Rst
            } else {
                MessageType::Ack
            };
            if m.ty() != want || m.code() != Code::EMPTY || m.message_id() != mid {
                return Err(format!("got {} {:?}", m.ty().name(), m.code()));
            }
            Ok(())
        }
        Expect::Nothing if msgs.is_empty() => Ok(()),
        Expect::Nothing => Err(format!("{} answers, wanted none", msgs.len())),
    }
}

#[test]
fn every_reception_rule() {
    let mut failures = Vec::new();
    for row in ROWS {
        if let Err(e) = check(row, &run(row)) {
            failures.push(format!("{}: {e}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn row_names_are_unique() {
    let mut names: Vec<_> = ROWS.iter().map(|r| r.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n);
}

/// RFC 7252 §8.1: a malformed datagram on a group address gets no RST, and a request
/// with an unrecognized critical option gets no 4.02 unless it asked for errors.
#[test]
fn multicast_never_resets_or_reports_errors_unasked() {
    let mut server: Endpoint<u32> = Endpoint::new(Config::default(), 9);
    let mut handler = server_handler();
    let now = coap_core::Instant::from_millis(1000);
    let mut buf = [0u8; 1152];
    server.handle_group_datagram(now, 1, &[0x41, 0x01, 0, 1, 0x42, 0xf1], &mut handler);
    let bad = wire(NON, GET, 2, &[R, (2049, b"x")], b"");
    server.handle_group_datagram(now, 1, &bad, &mut handler);
    server.handle_timeout(now.add_millis(10_000));
    assert!(server
        .poll_transmit(now.add_millis(10_000), &mut buf)
        .is_none());
}

/// Options as (number, value) pairs.
type Options = &'static [(u16, &'static [u8])];

/// The client's side of RFC 7252 §5.4.1, §5.4.3 and §5.4.5: a CON response whose
/// critical options are unknown, outside their format or repeated is rejected with RST
/// and never delivered; elective faults are ignored and the response is delivered.
#[test]
fn client_rejects_responses_with_bad_critical_options() {
    // (name, options of a CON 2.05 response, rejected?)
    let cases: &[(&str, Options, bool)] = &[
        ("unknown-critical", &[(2049, b"x")], true),
        ("block2-twice", &[(23, &[0x02]), (23, &[0x12])], true),
        ("block2-4-bytes", &[(23, &[0, 0, 0, 2])], true),
        ("content-format-twice", &[(12, &[0]), (12, &[50])], false),
        ("max-age-5-bytes", &[(14, &[0, 0, 0, 0, 1])], false),
        ("unknown-elective", &[(2048, b"x")], false),
    ];
    for (name, opts, rejected) in cases {
        let mut client: Endpoint<u32> = Endpoint::new(Config::default(), 3);
        let now = coap_core::Instant::from_millis(1000);
        client
            .request(now, 2, coap_core::RequestParams::non(GET), |_| Ok(()))
            .unwrap();
        let mut buf = [0u8; 1152];
        let t = client.poll_transmit(now, &mut buf).unwrap();
        let token = Message::parse(&buf[..t.len]).unwrap().token().to_vec();
        // The response, by hand, with the request's token.
        let mut resp = wire(CON, Code::CONTENT, 0x4242, opts, b"body");
        resp[0] = (resp[0] & 0xf0) | token.len() as u8;
        resp.splice(4..4 + TOKEN.len(), token.iter().copied());
        client.handle_datagram(now, 2, &resp, &mut coap_core::NoServer);
        let t = client
            .poll_transmit(now, &mut buf)
            .expect("an ACK or a RST");
        let answer = Message::parse(&buf[..t.len]).unwrap();
        let want = if *rejected {
            MessageType::Rst
        } else {
            MessageType::Ack
        };
        assert_eq!(answer.ty(), want, "{name}");
        let delivered = matches!(client.poll_event(), Some(coap_core::Event::Response { .. }));
        assert_eq!(delivered, !rejected, "{name}");
    }
}
