//! `coap-bench-server MODE ADDR`: the servers of the throughput benchmark
//! (`tools/bench/throughput.sh`) besides `coap serve` (which is the tokio one):
//!
//! - `smol`: the demo resources of `coap serve` (`/hello`, ...) on `coap-smol`, its loop
//!   under `async_io::block_on` on the main thread;
//! - `tokio`: the same on `coap-tokio` with a current-thread runtime (what `coap serve`
//!   runs, without its signal handling);
//! - `echo`: a bare UDP echo (blocking `recv_from`/`send_to`; the datagram goes back as is,
//!   but for its type and code made ACK 2.05), the ceiling of a server that makes one
//!   receive and one send call per request.
//!
//! It serves until killed.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, addr) = match args.as_slice() {
        [mode, addr] => match addr.parse::<SocketAddr>() {
            Ok(a) => (mode.as_str(), a),
            Err(e) => return usage(&format!("bad address '{addr}': {e}")),
        },
        _ => return usage("expected MODE and ADDR"),
    };
    let result = match mode {
        "smol" => smol(addr),
        "tokio" => tokio(addr),
        "echo" => echo(addr),
        other => return usage(&format!("unknown mode '{other}'")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coap-bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("coap-bench-server: {msg}\nusage: coap-bench-server smol|tokio|echo ADDR");
    ExitCode::from(2)
}

fn smol(addr: SocketAddr) -> std::io::Result<()> {
    async_io::block_on(async {
        let server = coap_smol::Server::bind(addr).await?;
        eprintln!("coap-bench-server: smol on {}", server.local_addr());
        server.serve(coap_tools::demo::router()).await
    })
}

fn tokio(addr: SocketAddr) -> std::io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let server = coap_tokio::Server::bind(addr).await?;
            eprintln!("coap-bench-server: tokio on {}", server.local_addr());
            server.serve(coap_tools::demo::router()).await
        })
}

fn echo(addr: SocketAddr) -> std::io::Result<()> {
    let socket = UdpSocket::bind(addr)?;
    eprintln!("coap-bench-server: echo on {}", socket.local_addr()?);
    let mut buf = vec![0; 65_535];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                if n >= 4 {
                    // Made a piggybacked 2.05 response (type ACK, same Message ID and
                    // token), so that the generator counts it as a success.
                    buf[0] = (buf[0] & 0xcf) | 0x20;
                    buf[1] = 0x45;
                }
                let _ = socket.send_to(&buf[..n], peer);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // ICMP errors of earlier sends (the generator is gone): keep serving.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
    }
}
