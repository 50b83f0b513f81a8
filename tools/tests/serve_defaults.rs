//! `coap serve` defaults an operator meets: the notice when it listens on all interfaces
//! (the default bind) and `--upload-idle`.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use coap_core::message::{MessageBuilder, MessageType};
use coap_core::{Block, Code, Message, OptionNumber};
use support::{coap, Server, WAIT};

/// The next stderr line that mentions `what`, within a bounded wait.
fn line_with(s: &Server, what: &str) -> Option<String> {
    for _ in 0..20 {
        match s.stderr.recv_timeout(WAIT / 20) {
            Ok(line) if line.contains(what) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn listening_on_all_interfaces_is_said_once_on_stderr() {
    for threads in ["1", "2"] {
        let s = Server::start_with(&["serve", "--bind", "0.0.0.0:0", "--threads", threads]);
        assert!(s.addr.ip().is_unspecified());
        let line = line_with(&s, "all interfaces").expect("the notice");
        assert!(line.contains("--bind 127.0.0.1:"), "{line}");
    }
    // Bound to loopback: no notice (the server has answered, so it printed all it prints
    // before serving).
    let s = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--threads", "1"]);
    let r = coap(&["get", &s.uri("/hello")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let lines: Vec<String> = s.stderr.try_iter().collect();
    assert!(
        !lines.iter().any(|l| l.contains("all interfaces")),
        "{lines:?}"
    );
}

/// Block `num` of a two-block PUT to /upload; the response code.
fn put_block(socket: &UdpSocket, server: SocketAddr, num: u32) -> Code {
    let mut buf = [0u8; 1200];
    let mid = num as u16 + 1;
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::PUT, mid, &[9]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "upload").unwrap();
    b.option_uint(OptionNumber::BLOCK1, Block::new(num, num == 0, 6).encode())
        .unwrap();
    b.payload(&[b'u'; 1024]).unwrap();
    let n = b.finish();
    socket.send_to(&buf[..n], server).unwrap();
    let mut out = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut out).expect("an answer");
    Message::parse(&out[..n]).unwrap().code()
}

#[test]
fn upload_idle_drops_a_partial_upload() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    // The default (60 s): the second block completes the upload.
    let s = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--threads", "1"]);
    assert_eq!(put_block(&socket, s.addr, 0), Code::CONTINUE);
    assert_eq!(put_block(&socket, s.addr, 1), Code::CHANGED);
    // 0.2 s: a second block half a second later finds its upload dropped: 4.08.
    let s = Server::start_with(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--upload-idle",
        "0.2",
    ]);
    assert_eq!(put_block(&socket, s.addr, 0), Code::CONTINUE);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        put_block(&socket, s.addr, 1),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    coap(&["serve", "--upload-idle", "0"], None).assert_fails(2, "--upload-idle");
}
