//! Codec benchmarks: coap-core against coap-lite on the same two messages.
//!
//! - request: CON GET, 8-byte token, Uri-Path "sensors" / "temperature",
//!   Uri-Query "unit=celsius";
//! - response: piggybacked ACK 2.05 with the same token, Content-Format 50
//!   (application/json) and a 64-byte payload.
//!
//! Parse: both sides decode the datagram and hand every option's number and value, the
//! token and the payload to `black_box` (coap-core reads them in place; coap-lite has
//! copied them into its `Packet`, which is then dropped, as a user's would be).
//!
//! Serialize: coap-core builds the message into a reused stack buffer. coap-lite is
//! measured twice: `coap-lite` builds the `Packet` with its API and calls `to_bytes` (what
//! a user does per message), and `coap-lite/to_bytes` only serializes a `Packet` built
//! outside the loop (a lower bound for it). Before measuring, each pair is checked to
//! produce or read the same bytes.

use coap_core::{Code, Message, MessageBuilder, MessageType, OptionNumber};
use coap_lite::{CoapOption, ContentFormat, MessageClass, Packet, RequestType, ResponseType};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// Inputs go through `black_box` on both sides so that neither build is constant-folded.
use criterion::black_box as bb;

const TOKEN: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04];
const PATH: [&str; 2] = ["sensors", "temperature"];
const QUERY: &str = "unit=celsius";
const PAYLOAD: &[u8; 64] =
    b"{\"t\":22.3,\"u\":\"C\",\"ts\":1700000000,\"id\":\"sensor-0042\",\"ok\":true} ";
const REQ_MID: u16 = 0x7d34;
const RESP_MID: u16 = 0x7d34;
const JSON: u32 = 50;

fn ours_request(buf: &mut [u8]) -> usize {
    let mut b =
        MessageBuilder::new(buf, MessageType::Con, Code::GET, bb(REQ_MID), bb(&TOKEN)).unwrap();
    b.option_str(OptionNumber::URI_PATH, bb(PATH[0])).unwrap();
    b.option_str(OptionNumber::URI_PATH, bb(PATH[1])).unwrap();
    b.option_str(OptionNumber::URI_QUERY, bb(QUERY)).unwrap();
    b.finish()
}

fn ours_response(buf: &mut [u8]) -> usize {
    let mut b = MessageBuilder::new(
        buf,
        MessageType::Ack,
        Code::CONTENT,
        bb(RESP_MID),
        bb(&TOKEN),
    )
    .unwrap();
    b.option_uint(OptionNumber::CONTENT_FORMAT, bb(JSON))
        .unwrap();
    b.payload(bb(PAYLOAD)).unwrap();
    b.finish()
}

fn lite_request() -> Packet {
    let mut p = Packet::new();
    p.header.set_version(1);
    p.header.set_type(coap_lite::MessageType::Confirmable);
    p.header.code = MessageClass::Request(RequestType::Get);
    p.header.message_id = bb(REQ_MID);
    p.set_token(bb(&TOKEN).to_vec());
    p.add_option(CoapOption::UriPath, bb(PATH[0]).as_bytes().to_vec());
    p.add_option(CoapOption::UriPath, bb(PATH[1]).as_bytes().to_vec());
    p.add_option(CoapOption::UriQuery, bb(QUERY).as_bytes().to_vec());
    p
}

fn lite_response() -> Packet {
    let mut p = Packet::new();
    p.header.set_version(1);
    p.header.set_type(coap_lite::MessageType::Acknowledgement);
    p.header.code = MessageClass::Response(ResponseType::Content);
    p.header.message_id = bb(RESP_MID);
    p.set_token(bb(&TOKEN).to_vec());
    p.set_content_format(ContentFormat::try_from(bb(JSON as usize)).unwrap());
    p.payload = bb(PAYLOAD).to_vec();
    p
}

/// Parse with coap-core and hand everything to `black_box`.
fn ours_parse(bytes: &[u8]) {
    let m = Message::parse(black_box(bytes)).unwrap();
    black_box((m.ty(), m.code(), m.message_id(), m.token()));
    for o in m.options() {
        black_box((o.number, o.value));
    }
    black_box(m.payload());
}

/// Parse with coap-lite and hand everything to `black_box`.
fn lite_parse(bytes: &[u8]) {
    let p = Packet::from_bytes(black_box(bytes)).unwrap();
    black_box((&p.header, p.get_token()));
    for (number, values) in p.options() {
        for v in values {
            black_box((*number, v.as_slice()));
        }
    }
    black_box(p.payload.as_slice());
}

/// Both libraries agree on the bytes of both messages, and read them back the same way.
fn check_equivalence() {
    let mut buf = [0u8; 256];
    for (ours, lite) in [
        (
            ours_request as fn(&mut [u8]) -> usize,
            lite_request as fn() -> Packet,
        ),
        (ours_response, lite_response),
    ] {
        let n = ours(&mut buf);
        let theirs = lite().to_bytes().unwrap();
        assert_eq!(&buf[..n], &theirs[..]);
        let m = Message::parse(&buf[..n]).unwrap();
        let p = Packet::from_bytes(&buf[..n]).unwrap();
        let ours_opts: Vec<(u16, &[u8])> = m.options().map(|o| (o.number.0, o.value)).collect();
        let lite_opts: Vec<(u16, &[u8])> = p
            .options()
            .flat_map(|(n, vs)| vs.iter().map(move |v| (*n, v.as_slice())))
            .collect();
        assert_eq!(ours_opts, lite_opts);
        assert_eq!(m.payload(), &p.payload[..]);
        assert_eq!(m.token(), p.get_token());
    }
}

fn bench(c: &mut Criterion) {
    check_equivalence();
    let mut buf = [0u8; 256];
    let n = ours_request(&mut buf);
    let req = buf[..n].to_vec();
    let n = ours_response(&mut buf);
    let resp = buf[..n].to_vec();

    for (name, bytes) in [("request", &req), ("response", &resp)] {
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.bench_function("coap-core", |b| b.iter(|| ours_parse(bytes)));
        g.bench_function("coap-lite", |b| b.iter(|| lite_parse(bytes)));
        g.finish();
    }

    type Shape = (&'static str, fn(&mut [u8]) -> usize, fn() -> Packet);
    let shapes: [Shape; 2] = [
        ("request", ours_request, lite_request),
        ("response", ours_response, lite_response),
    ];
    for (name, ours, lite) in shapes {
        let mut g = c.benchmark_group(format!("serialize/{name}"));
        g.bench_function("coap-core", |b| {
            let mut out = [0u8; 256];
            b.iter(|| {
                let n = ours(black_box(&mut out));
                black_box(&out[..n]);
            })
        });
        g.bench_function("coap-lite", |b| {
            b.iter(|| black_box(lite().to_bytes().unwrap()))
        });
        let packet = lite();
        g.bench_function("coap-lite/to_bytes", |b| {
            b.iter(|| black_box(black_box(&packet).to_bytes().unwrap()))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
