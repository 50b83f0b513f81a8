//! `coap-bench-server MODE ADDR`: the servers of the throughput benchmark
//! (`tools/bench/throughput.sh`) besides `coap serve` (which is the tokio one):
//!
//! - `smol`: the demo resources of `coap serve` (`/hello`, ...) on `coap-smol`, its loop
//!   under `async_io::block_on` on the main thread;
//! - `tokio`: the same on `coap-tokio` with a current-thread runtime (what `coap serve`
//!   runs, without its signal handling);
//! - `tokio-async`: `GET /hello` as an async handler of `coap_tokio::app::Router` on the
//!   same current-thread runtime (each request a task, answered through the endpoint's
//!   responder; `separate_ack_delay` 1 s, so that answers are piggybacked as by the sync
//!   path);
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
        "tokio-async" => tokio_async(addr),
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
    eprintln!(
        "coap-bench-server: {msg}\nusage: coap-bench-server smol|tokio|tokio-async|echo ADDR"
    );
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

async fn hello() -> coap_tokio::Reply {
    coap_tokio::Reply::new(coap_tokio::Code::CONTENT)
        .content_format(coap_tokio::ContentFormat::TEXT_PLAIN)
        .payload("Hello, world!")
}

fn tokio_async(addr: SocketAddr) -> std::io::Result<()> {
    let config = coap_tokio::Config {
        separate_ack_delay: std::time::Duration::from_secs(1),
        ..coap_tokio::Config::default()
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let server = coap_tokio::Server::bind_with(addr, config).await?;
            eprintln!("coap-bench-server: tokio-async on {}", server.local_addr());
            let router =
                coap_tokio::app::Router::new().route("/hello", coap_tokio::app::get(hello));
            server.serve_router(router).await
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
