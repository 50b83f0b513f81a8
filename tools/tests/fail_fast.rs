//! The `coap` tool fails fast (issue 25): a request to a closed loopback port ends with
//! one line naming the ICMP error and exit code 1 (Linux reads the error; elsewhere the
//! request times out, exit 3).
#![cfg(target_os = "linux")]

mod support;

use std::net::UdpSocket;

use support::*;

#[test]
fn closed_port_exits_1_with_port_unreachable() {
    // A port that was free a moment ago.
    let to = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let uri = format!("coap://{to}/x");
    // `coap` itself gives up after its timeout; -t bounds it so a regression shows as
    // exit 3 rather than a hang.
    let r = coap(&["get", &uri, "-t", "3"], None);
    assert_eq!(r.code(), 1, "{}", r.stderr);
    assert_eq!(r.stderr, format!("error: {uri}: {to}: port unreachable\n"));
}
