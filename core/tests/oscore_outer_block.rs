//! Outer block-wise transfers of OSCORE messages (RFC 8613 §4.1.3.4.2): a proxy fragments
//! the protected request (Outer Block1) or response (Outer Block2); the layer reassembles
//! before verifying, answers 2.31 / asks for the next fragment, and discards messages over
//! MAX_UNFRAGMENTED_SIZE (`R`).
#![cfg(feature = "oscore")]

use coap_core::block::Block;
use coap_core::message::MessageType;
use coap_core::oscore::context::{ContextParams, SecurityContext};
use coap_core::oscore::sequence::SequenceReservation;
use coap_core::oscore::{ContextId, Incoming, Layer};
use coap_core::{Code, Instant, Message, MessageBuilder, OptionNumber};

const SECRET: &[u8] = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";
const CLIENT: u32 = 1;
const PROXY: u32 = 3;

fn context(sender: &[u8], recipient: &[u8]) -> SecurityContext {
    let mut c = SecurityContext::derive(&ContextParams {
        master_secret: SECRET,
        master_salt: b"salt",
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    })
    .unwrap();
    c.sequence = SequenceReservation::volatile(0);
    c
}

fn layers<const R: usize>() -> (
    Layer<u32, 1, 4, R>,
    Layer<u32, 1, 4, R>,
    ContextId,
    ContextId,
) {
    let mut client = Layer::new(1);
    let mut server = Layer::new(2);
    let c = client.add_context(context(b"c", b"s")).unwrap();
    let s = server.add_context(context(b"s", b"c")).unwrap();
    (client, server, c, s)
}

/// Splits a protected message's payload into Outer Block fragments (`number`) of 16 << szx
/// bytes, each carrying the message's options; fragment `i` gets Message ID `mid0 + i`.
fn fragments(
    msg: &[u8],
    number: OptionNumber,
    szx: u8,
    ty: MessageType,
    mid0: u16,
) -> Vec<Vec<u8>> {
    fragments_typed(msg, number, szx, ty, ty, mid0)
}

/// [`fragments`] with the first fragment of type `first` and the others of type `rest`.
fn fragments_typed(
    msg: &[u8],
    number: OptionNumber,
    szx: u8,
    first: MessageType,
    rest: MessageType,
    mid0: u16,
) -> Vec<Vec<u8>> {
    let m = Message::parse(msg).unwrap();
    let size = 16usize << szx;
    let chunks: Vec<&[u8]> = m.payload().chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut buf = vec![0u8; 2048];
            let ty = if i == 0 { first } else { rest };
            let mut b =
                MessageBuilder::new(&mut buf, ty, m.code(), mid0 + i as u16, m.token()).unwrap();
            for o in m.options() {
                b.option(o.number, o.value).unwrap();
            }
            let more = i + 1 < chunks.len();
            b.option_uint(number, Block::new(i as u32, more, szx).encode())
                .unwrap();
            b.payload(chunk).unwrap();
            let n = b.finish();
            buf.truncate(n);
            buf
        })
        .collect()
}

fn request(payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, 0x100, &[7, 7]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "big").unwrap();
    b.payload(payload).unwrap();
    let n = b.finish();
    buf.truncate(n);
    buf
}

#[test]
fn a_request_fragmented_by_a_proxy_is_reassembled_then_verified() {
    let (mut client, mut server, c, s) = layers::<2048>();
    let now = Instant::from_millis(0);
    let body: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
    let plain = request(&body);
    let mut wire = [0u8; 2048];
    let n = client.outgoing(now, PROXY, c, &plain, &mut wire).unwrap();
    let frags = fragments(&wire[..n], OptionNumber::BLOCK1, 2, MessageType::Con, 0x200);
    assert!(frags.len() > 5);
    let mut out = [0u8; 4096];
    for (i, f) in frags.iter().enumerate() {
        match server.incoming(now, PROXY, f, &mut out) {
            Incoming::Fragment { len, ack: None } if i + 1 < frags.len() => {
                // RFC 7959 §2.3: 2.31 Continue, piggybacked, with the fragment's Block1.
                let r = Message::parse(&out[..len]).unwrap();
                assert_eq!(
                    (r.ty(), r.code(), r.message_id()),
                    (MessageType::Ack, Code::CONTINUE, 0x200 + i as u16)
                );
                assert_eq!(Block::of(&r, OptionNumber::BLOCK1).unwrap().num, i as u32);
                assert!(
                    r.option(OptionNumber::OSCORE).is_none(),
                    "an outer step, not protected"
                );
            }
            Incoming::Inner { len, context } if i + 1 == frags.len() => {
                assert_eq!(context, s);
                let inner = Message::parse(&out[..len]).unwrap();
                assert_eq!(inner.code(), Code::POST);
                assert_eq!(inner.payload(), &body[..]);
                assert_eq!(inner.uri_path().next(), Some(&b"big"[..]));
                assert!(Block::of(&inner, OptionNumber::BLOCK1).is_none());
            }
            other => panic!("fragment {i}: {other:?}"),
        }
    }
}

#[test]
fn out_of_order_and_oversized_fragments_are_refused() {
    let now = Instant::from_millis(0);
    let body = vec![5u8; 700];
    // Out of order: fragment 1 without fragment 0 → 4.08.
    let (mut client, mut server, c, _) = layers::<2048>();
    let mut wire = [0u8; 2048];
    let n = client
        .outgoing(now, PROXY, c, &request(&body), &mut wire)
        .unwrap();
    let frags = fragments(&wire[..n], OptionNumber::BLOCK1, 2, MessageType::Con, 0x300);
    let mut out = [0u8; 4096];
    match server.incoming(now, PROXY, &frags[1], &mut out) {
        Incoming::Reply { len, .. } => {
            assert_eq!(
                Message::parse(&out[..len]).unwrap().code(),
                Code::REQUEST_ENTITY_INCOMPLETE
            )
        }
        other => panic!("{other:?}"),
    }
    // Over MAX_UNFRAGMENTED_SIZE (R = 256): 4.13 with Size1, discarded.
    let (mut client, mut server, c, _) = layers::<256>();
    let n = client
        .outgoing(now, PROXY, c, &request(&body), &mut wire)
        .unwrap();
    let frags = fragments(&wire[..n], OptionNumber::BLOCK1, 2, MessageType::Con, 0x400);
    let mut refused = false;
    for f in &frags {
        if let Incoming::Reply { len, .. } = server.incoming(now, PROXY, f, &mut out) {
            let r = Message::parse(&out[..len]).unwrap();
            assert_eq!(r.code(), Code::REQUEST_ENTITY_TOO_LARGE);
            assert_eq!(r.uint_option(OptionNumber::SIZE1), Some(256));
            refused = true;
            break;
        }
    }
    assert!(refused);
    // Without a reassembly buffer (R = 0) a fragment is refused at once.
    let (mut client, mut server, c, _) = layers::<0>();
    let n = client
        .outgoing(now, PROXY, c, &request(&body), &mut wire)
        .unwrap();
    let frags = fragments(&wire[..n], OptionNumber::BLOCK1, 2, MessageType::Con, 0x500);
    assert!(matches!(
        server.incoming(now, PROXY, &frags[0], &mut out),
        Incoming::Reply { .. }
    ));
}

#[test]
fn a_response_fragmented_by_a_proxy_is_fetched_fragment_by_fragment() {
    let (mut client, mut server, c, s) = layers::<4096>();
    let now = Instant::from_millis(0);
    // The client's protected request reaches the server (through the proxy, unfragmented).
    let mut get = vec![0u8; 64];
    let n = {
        let mut b =
            MessageBuilder::new(&mut get, MessageType::Con, Code::GET, 0x600, &[9]).unwrap();
        b.option_str(OptionNumber::URI_PATH, "big").unwrap();
        b.finish()
    };
    let mut wire = [0u8; 4096];
    let sent = client
        .outgoing(now, PROXY, c, &get[..n], &mut wire)
        .unwrap();
    let protected_request = wire[..sent].to_vec();
    let mut out = [0u8; 8192];
    let Incoming::Inner { .. } = server.incoming(now, CLIENT, &protected_request, &mut out) else {
        panic!("the server verifies the request");
    };
    // The server's 900-byte response, protected, fragmented by the proxy into 64-byte
    // Outer Block2 fragments; the first comes piggybacked.
    let body: Vec<u8> = (0..900u32).map(|i| (i * 3) as u8).collect();
    let mut resp = vec![0u8; 2048];
    let rn = {
        let mut b =
            MessageBuilder::new(&mut resp, MessageType::Ack, Code::CONTENT, 0x600, &[9]).unwrap();
        b.payload(&body).unwrap();
        b.finish()
    };
    let pn = server
        .outgoing(now, CLIENT, s, &resp[..rn], &mut wire)
        .unwrap();
    // Later fragments answer our NON follow-ups: NON.
    let frags = fragments_typed(
        &wire[..pn],
        OptionNumber::BLOCK2,
        2,
        MessageType::Ack,
        MessageType::Non,
        0x600,
    );
    for (i, f) in frags.iter().enumerate() {
        match client.incoming(now, PROXY, f, &mut out) {
            Incoming::Fragment { len, ack } if i + 1 < frags.len() => {
                // The first came in the ACK of the endpoint's CON: it gets an empty ACK.
                assert_eq!(ack, (i == 0).then_some((0x600, c)));
                // The request again, asking for the next fragment (RFC 7959 §2.4).
                let next = Message::parse(&out[..len]).unwrap();
                let original = Message::parse(&protected_request).unwrap();
                assert_eq!(next.ty(), MessageType::Non);
                assert_eq!(next.token(), original.token());
                assert_eq!(
                    next.option(OptionNumber::OSCORE),
                    original.option(OptionNumber::OSCORE)
                );
                assert_eq!(next.payload(), original.payload());
                assert_eq!(
                    Block::of(&next, OptionNumber::BLOCK2).unwrap().num,
                    i as u32 + 1
                );
            }
            Incoming::Inner { len, context } if i + 1 == frags.len() => {
                assert_eq!(context, c);
                let inner = Message::parse(&out[..len]).unwrap();
                assert_eq!((inner.code(), inner.payload()), (Code::CONTENT, &body[..]));
            }
            other => panic!("fragment {i}: {other:?}"),
        }
    }
}
