//! `coap-rd-bench ADDR COUNT LOOKUPS [RD_PATH LOOKUP_PATH]`: the load of the resource
//! directory benchmark (`tools/bench/rd.sh`). Registers COUNT endpoints (`bench-N`, one
//! link each) at the RD on ADDR from 32 sockets, each with one CON request outstanding
//! (closed loop), then sends LOOKUPS endpoint lookups of single endpoints by name
//! (`?ep=bench-N`) and LOOKUPS paged lookups (`?page=N&count=10`), and prints one line
//! per phase: requests, seconds, requests per second, retransmissions, failures.
//!
//! RD_PATH and LOOKUP_PATH default to ours (`rd`, `rd-lookup/ep`); aiocoap-rd's are
//! `resourcedirectory/` and `endpoint-lookup/` (with the trailing slash).

#![forbid(unsafe_code)]

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coap_core::{Code, Message, MessageBuilder, MessageType, OptionNumber};

/// Concurrent sockets (each a client with one request outstanding).
const SOCKETS: usize = 32;
/// How long to wait for a response before sending again (RFC 7252 ACK_TIMEOUT is 2 s).
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// Sends of one request before it counts as failed (1 + MAX_RETRANSMIT).
const TRIES: u32 = 5;

#[derive(Default)]
struct Tally {
    retransmissions: AtomicU64,
    failures: AtomicU64,
}

/// One request: `path` segments, queries, payload (link format if any).
fn build(
    buf: &mut [u8],
    mid: u16,
    code: Code,
    path: &[&str],
    queries: &[String],
    payload: &[u8],
) -> usize {
    let token = mid.to_be_bytes();
    let mut b = MessageBuilder::new(buf, MessageType::Con, code, mid, &token).expect("header");
    for p in path {
        b.option(OptionNumber::URI_PATH, p.as_bytes())
            .expect("path");
    }
    if !payload.is_empty() {
        b.option_uint(OptionNumber::CONTENT_FORMAT, 40)
            .expect("format");
    }
    for q in queries {
        b.option(OptionNumber::URI_QUERY, q.as_bytes())
            .expect("query");
    }
    if !payload.is_empty() {
        b.payload(payload).expect("payload");
    }
    b.finish()
}

/// Sends `req` (CON, token = message id) until its response comes; whether it was `ok`.
fn exchange(sock: &UdpSocket, req: &[u8], mid: u16, ok: Code, tally: &Tally) -> bool {
    let mut buf = [0u8; 2048];
    for attempt in 0..TRIES {
        if attempt > 0 {
            tally.retransmissions.fetch_add(1, Ordering::Relaxed);
        }
        if sock.send(req).is_err() {
            continue;
        }
        let deadline = Instant::now() + RETRY_AFTER;
        while Instant::now() < deadline {
            let Ok(n) = sock.recv(&mut buf) else { break };
            let Ok(m) = Message::parse(&buf[..n]) else {
                continue;
            };
            if m.ty() == MessageType::Con {
                // A separate response: acknowledge it (RFC 7252 §5.2.2).
                let mut ack = [0u8; 4];
                if let Ok(b) = MessageBuilder::new(
                    &mut ack,
                    MessageType::Ack,
                    Code::EMPTY,
                    m.message_id(),
                    &[],
                ) {
                    let n = b.finish();
                    let _ = sock.send(&ack[..n]);
                }
            }
            if m.token() == mid.to_be_bytes() && m.code() != Code::EMPTY {
                return m.code() == ok;
            }
        }
    }
    false
}

/// Runs `requests` (built by `make(i)`) over [`SOCKETS`] sockets; the time it took.
fn phase(
    rd: SocketAddr,
    requests: u64,
    ok: Code,
    tally: &Arc<Tally>,
    make: impl Fn(u64, &mut [u8], u16) -> usize + Send + Sync + 'static,
) -> Duration {
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..SOCKETS)
        .map(|w| {
            let (make, next, tally) = (make.clone(), next.clone(), tally.clone());
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
                sock.connect(rd).expect("connect");
                sock.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut buf = [0u8; 1024];
                let mut mid = (w as u16).wrapping_mul(2039);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return;
                    }
                    mid = mid.wrapping_add(1);
                    let n = make(i, &mut buf, mid);
                    if !exchange(&sock, &buf[..n], mid, ok, &tally) {
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    start.elapsed()
}

fn report(what: &str, n: u64, took: Duration, tally: &Tally) {
    println!(
        "{what}: {n} in {:.2} s = {:.0}/s (retransmissions {}, failures {})",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        tally.retransmissions.swap(0, Ordering::Relaxed),
        tally.failures.swap(0, Ordering::Relaxed),
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(count), Some(lookups)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1).and_then(|a| a.parse::<u64>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: coap-rd-bench ADDR COUNT LOOKUPS [RD_PATH LOOKUP_PATH]");
        return ExitCode::from(2);
    };
    let rd_path: Vec<String> = args
        .get(3)
        .map_or("rd", String::as_str)
        .split('/')
        .map(str::to_owned)
        .collect();
    let lookup_path: Vec<String> = args
        .get(4)
        .map_or("rd-lookup/ep", String::as_str)
        .split('/')
        .map(str::to_owned)
        .collect();
    let tally = Arc::new(Tally::default());
    let took = phase(addr, count, Code::CREATED, &tally, move |i, buf, mid| {
        let path: Vec<&str> = rd_path.iter().map(String::as_str).collect();
        let links = format!("</sensors/t{i}>;rt=\"temperature-c\";if=\"sensor\"");
        build(
            buf,
            mid,
            Code::POST,
            &path,
            &[format!("ep=bench-{i}"), "lt=90000".into()],
            links.as_bytes(),
        )
    });
    report("registrations", count, took, &tally);
    if lookups == 0 || count == 0 {
        return ExitCode::SUCCESS;
    }
    let lp = lookup_path.clone();
    let took = phase(addr, lookups, Code::CONTENT, &tally, move |i, buf, mid| {
        let path: Vec<&str> = lp.iter().map(String::as_str).collect();
        // Spread over the registered names (a multiplicative step, no RNG needed).
        let n = i.wrapping_mul(7919) % count;
        build(buf, mid, Code::GET, &path, &[format!("ep=bench-{n}")], b"")
    });
    report("lookups by ep", lookups, took, &tally);
    let took = phase(addr, lookups, Code::CONTENT, &tally, move |i, buf, mid| {
        let path: Vec<&str> = lookup_path.iter().map(String::as_str).collect();
        let page = i.wrapping_mul(7919) % (count / 10).max(1);
        build(
            buf,
            mid,
            Code::GET,
            &path,
            &[format!("page={page}"), "count=10".into()],
            b"",
        )
    });
    report("paged lookups (count=10)", lookups, took, &tally);
    ExitCode::SUCCESS
}
