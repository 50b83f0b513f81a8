//! A path-MTU error on a real socket (issue 25): a router's ICMP "fragmentation needed"
//! (RFC 1191 §4) for the first block of a Block1 upload makes the client send the rest in
//! blocks that fit (RFC 7959 §2.5), starting with that block again, at once; one for a
//! response makes the server answer that client block-wise in blocks that fit (§2.4).
//!
//! The test runs itself again inside new user and network namespaces (`unshare -rn`), so
//! nothing on the host changes: there, on the namespace's own loopback, a plain UDP server
//! written here takes the upload, and, when the first (1024-byte) block arrives, answers
//! it as a router with a 576-byte MTU would: with the ICMP error (sent from a raw socket,
//! which the namespace's root may open) instead of an ACK. Loopback itself never reports
//! one: the client's socket lets the kernel fragment what exceeds the device MTU
//! (IP_PMTUDISC_WANT, Linux's default), so a small `lo` MTU alone produces no error.
#![cfg(target_os = "linux")]

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use coap_core::message::{MessageBuilder, MessageType};
use coap_core::{Block, Code, Message, OptionNumber};

/// Set in the re-run inside the namespaces.
const INSIDE: &str = "COAP_TEST_PATH_MTU_NETNS";
/// The MTU the forged error reports (RFC 791's minimum datagram every host accepts).
const MTU: u16 = 576;
/// Every wait is bounded.
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn block1_upload_continues_in_smaller_blocks_after_frag_needed() {
    if std::env::var_os(INSIDE).is_none() {
        return run_inside_namespaces(
            "block1_upload_continues_in_smaller_blocks_after_frag_needed",
        );
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");

    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(BOUND)).unwrap();
    let addr = server.local_addr().unwrap();
    let body: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
    let sent = body.clone();
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let c = coap_tokio::Client::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let put = c
                .request(coap_tokio::Method::Put, &format!("coap://{addr}/up"))
                .payload(sent)
                .send();
            tokio::time::timeout(BOUND, put).await
        })
    });

    let mut stored = Vec::new();
    let mut blocks = Vec::new();
    let mut buf = [0u8; 2048];
    let mut forged = false;
    for _ in 0..10_000 {
        let (n, from) = server
            .recv_from(&mut buf)
            .expect("a block within the bound");
        let req = Message::parse(&buf[..n]).unwrap();
        let b = Block::of(&req, OptionNumber::BLOCK1).expect("a Block1 upload");
        blocks.push(b);
        if !forged {
            // The first block: "dropped by a router", which says why.
            assert_eq!((b.num, b.szx), (0, 6));
            frag_needed(&buf[..n], from, addr, MTU);
            forged = true;
            continue;
        }
        assert_eq!(b.offset(), stored.len(), "in order");
        stored.extend_from_slice(req.payload());
        let mut out = [0u8; 128];
        let code = if b.more {
            Code::CONTINUE
        } else {
            Code::CHANGED
        };
        let mut m = MessageBuilder::new(
            &mut out,
            MessageType::Ack,
            code,
            req.message_id(),
            req.token(),
        )
        .unwrap();
        m.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
        let len = m.finish();
        server.send_to(&out[..len], from).unwrap();
        if !b.more {
            break;
        }
    }
    let response = client
        .join()
        .unwrap()
        .expect("bounded")
        .expect("the upload");
    assert_eq!(response.code, Code::CHANGED);
    assert_eq!(stored, body);
    // 576 - 48 - 128 = 400: 256-byte blocks, from offset 0 again (the first block was
    // written again, not retransmitted as it was).
    assert!(blocks[1..].iter().all(|b| b.szx == 4), "{blocks:?}");
    assert_eq!(blocks[1].num, 0);
    assert_eq!(blocks.len(), 1 + 64 * 1024 / 256);
}

/// The server side: a response too big for the path (a 1000-byte representation, sent
/// whole since it fits the 1152-byte message) draws the router's error; the same GET
/// again is answered block-wise in 256-byte blocks (RFC 7959 §2.4: the server may choose
/// a smaller block size), and the blocks asked for in that size follow.
#[test]
fn server_answers_in_smaller_blocks_after_frag_needed() {
    if std::env::var_os(INSIDE).is_none() {
        return run_inside_namespaces("server_answers_in_smaller_blocks_after_frag_needed");
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");
    let content: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 253) as u8).collect();
    let served = content.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = coap_tokio::Server::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            tx.send(server.local_addr()).unwrap();
            let handler = move |_: &coap_core::IncomingRequest<'_, coap_tokio::Peer>,
                                w: &mut coap_core::ResponseWriter<'_>| {
                w.payload_blockwise(&served).unwrap();
                coap_core::Outcome::Respond
            };
            let _ = server.serve(handler).await;
        });
    });
    let addr = rx.recv_timeout(BOUND).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(BOUND)).unwrap();
    let me = client.local_addr().unwrap();
    let mut buf = [0u8; 2048];
    let mut exchange = |mid: u16, block2: Option<Block>| {
        let mut out = [0u8; 64];
        let mut m = MessageBuilder::new(
            &mut out,
            MessageType::Con,
            Code::GET,
            mid,
            &mid.to_be_bytes(),
        )
        .unwrap();
        m.option_str(OptionNumber::URI_PATH, "x").unwrap();
        if let Some(b) = block2 {
            m.option_uint(OptionNumber::BLOCK2, b.encode()).unwrap();
        }
        let len = m.finish();
        client.send_to(&out[..len], addr).unwrap();
        let (n, _) = client
            .recv_from(&mut buf)
            .expect("an answer within the bound");
        buf[..n].to_vec()
    };
    let first = exchange(1, None);
    let msg = Message::parse(&first).unwrap();
    assert_eq!(msg.payload(), &content[..], "whole, in one message");
    frag_needed(&first, addr, me, MTU);
    // The error is on the server's socket before the next request; give its loop the
    // moment it takes to read it (an ordering aid, not a timing assertion).
    std::thread::sleep(Duration::from_millis(200));
    let mut got = Vec::new();
    let mut blocks = Vec::new();
    let mut ask = None;
    for mid in 2..20u16 {
        let answer = exchange(mid, ask);
        let msg = Message::parse(&answer).unwrap();
        let b = Block::of(&msg, OptionNumber::BLOCK2).expect("block-wise now");
        assert_eq!(b.offset(), got.len());
        got.extend_from_slice(msg.payload());
        blocks.push(b);
        if !b.more {
            break;
        }
        ask = Some(Block::new(b.num + 1, false, b.szx));
    }
    assert_eq!(got, content);
    assert!(blocks.iter().all(|b| b.szx == 4), "{blocks:?}");
    assert_eq!(blocks.len(), 1000usize.div_ceil(256));
}

/// Re-runs test `name` of this binary in new user and network namespaces. Without
/// permission for them (an unprivileged user where user namespaces are off) the test is
/// skipped with a note; as root a failure fails it.
fn run_inside_namespaces(name: &str) {
    let root = nix::unistd::Uid::effective().is_root();
    let probe = Command::new("unshare").args(["-rn", "true"]).status();
    if !probe.as_ref().is_ok_and(|s| s.success()) {
        assert!(!root, "unshare -rn failed as root: {probe:?}");
        eprintln!("note: skipping the path-MTU test: no user/network namespaces here");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .arg("-rn")
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .unwrap();
    assert!(status.success(), "inside the namespaces: {status}");
}

/// Sends, from a raw ICMP socket, what a router with an `mtu`-byte next hop sends for the
/// UDP datagram `dropped` from `client` to `server`: type 3 code 4 with the next-hop MTU
/// (RFC 1191 §4), quoting the datagram's IP header and first 8 bytes (RFC 792).
fn frag_needed(dropped: &[u8], client: SocketAddr, server: SocketAddr, mtu: u16) {
    use nix::sys::socket::{
        sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
    };
    let (SocketAddr::V4(client), SocketAddr::V4(server)) = (client, server) else {
        panic!("IPv4 only");
    };
    let udp_len = (8 + dropped.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&client.ip().octets());
    ip[16..20].copy_from_slice(&server.ip().octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&client.port().to_be_bytes());
    udp[2..4].copy_from_slice(&server.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    let mut icmp = vec![3u8, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(&ip);
    icmp.extend_from_slice(&udp);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let raw = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::empty(),
        SockProtocol::Icmp,
    )
    .expect("a raw ICMP socket (root in the namespace)");
    let to = SockaddrIn::from(SocketAddrV4::new(*client.ip(), 0));
    sendto(raw.as_raw_fd(), &icmp, &to, MsgFlags::empty()).expect("send the ICMP error");
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
