//! A request with a chosen token (`RequestParams::with_token`, libcoap's `coap-client -T`):
//! the token goes out as given; a second live request to the same peer with the same token
//! is refused (RFC 7252 §5.3.1: tokens tell concurrent requests apart), to another peer not.

use coap_core::{Code, Config, Endpoint, Error, Instant, Message, RequestParams, Token};

#[test]
fn chosen_token_is_sent_and_not_shared_with_a_live_request() {
    let mut ep: Endpoint<u32> = Endpoint::new(Config::default(), 1);
    let now = Instant::ZERO;
    let t = Token::new(&[0xca, 0xfe]).unwrap();
    let params = RequestParams::con(Code::GET).with_token(t);
    let id = ep.request(now, 5, params, |_| Ok(())).unwrap();
    let mut buf = [0u8; 1152];
    let tx = ep.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(
        Message::parse(&buf[..tx.len]).unwrap().token(),
        &[0xca, 0xfe]
    );
    assert_eq!(
        ep.request(now, 5, params, |_| Ok(())),
        Err(Error::TokenInUse)
    );
    assert!(ep.request(now, 6, params, |_| Ok(())).is_ok());
    assert!(ep.cancel(id));
    assert!(ep.request(now, 5, params, |_| Ok(())).is_ok(), "free again");
}
