//! Closed-loop CoAP-over-TCP load (RFC 8323): `coap-tcp-bench ADDR PATH CONNECTIONS
//! IN_FLIGHT SECONDS` opens CONNECTIONS connections to ADDR, exchanges CSMs, keeps
//! IN_FLIGHT GETs of PATH outstanding on each (a new one for every response) and prints
//! the responses per second. Built on the core's reliable message format and framer, one
//! reader and one writer thread per connection, so that it measures the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use coap_core::reliable::{Framer, Framing, ReliableBuilder, ReliableMessage};
use coap_core::{Code, OptionNumber};

fn request(path: &str, token: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::GET, &token.to_be_bytes())
        .expect("buffer");
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        b.option_str(OptionNumber::URI_PATH, seg).expect("option");
    }
    let n = b.finish().expect("message");
    buf.truncate(n);
    buf
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: coap-tcp-bench ADDR PATH CONNECTIONS IN_FLIGHT SECONDS");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let path = args[2].clone();
    let conns: usize = args[3].parse().expect("CONNECTIONS");
    let in_flight: usize = args[4].parse().expect("IN_FLIGHT");
    let secs: u64 = args[5].parse().expect("SECONDS");
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let start = Instant::now();
    for _ in 0..conns {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(&[0x00, 0xe1]).expect("CSM");
        let (permit_tx, permit_rx) = mpsc::channel::<()>();
        for _ in 0..in_flight {
            permit_tx.send(()).expect("permit");
        }
        let mut w = s.try_clone().expect("clone");
        let (path, stop_w) = (path.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut token = 0u32;
            while permit_rx.recv().is_ok() && !stop_w.load(Ordering::Relaxed) {
                token = token.wrapping_add(1);
                if w.write_all(&request(&path, token)).is_err() {
                    break;
                }
            }
        }));
        let (done_r, stop_r) = (done.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut rx = vec![0u8; 64 * 1024];
            let mut framer = Framer::new(&mut rx, 64 * 1024);
            while !stop_r.load(Ordering::Relaxed) {
                let n = match s.read(framer.space()) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.commit(n);
                while let Ok(Some(frame)) = framer.next_frame() {
                    let Ok(m) = ReliableMessage::parse(frame, Framing::Stream) else {
                        return;
                    };
                    if m.code() == Code::CONTENT {
                        done_r.fetch_add(1, Ordering::Relaxed);
                        let _ = permit_tx.send(());
                    }
                }
            }
            drop(permit_tx);
        }));
    }
    std::thread::sleep(Duration::from_secs(secs));
    let n = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    println!(
        "{conns} connection(s) x {in_flight} in flight: {n} responses in {elapsed:.1} s = {:.0} req/s",
        n as f64 / elapsed
    );
    std::process::exit(0);
}
