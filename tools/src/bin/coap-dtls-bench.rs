//! `coap-dtls-bench`: closed-loop CoAP-over-DTLS load (RFC 7252 §9). N clients, each with
//! its own endpoint and DTLS session (PSK, TLS_PSK_WITH_AES_128_CCM_8), GET a `coaps://`
//! URI back to back for S seconds; prints the completed requests and req/s on stdout.
//!
//! The handshakes happen before the clock starts (one warm-up GET per client), so the rate
//! is the one of established sessions. Compare servers in the same run, e.g. our
//! `coap serve --psk-file` against `coap-server-openssl -k KEY` (see BENCHMARKS.md).

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use coap_tokio::{Client, Config};

/// Closed-loop GETs over DTLS sessions; prints req/s.
#[derive(Parser, Debug)]
#[command(name = "coap-dtls-bench")]
struct Args {
    /// The resource to GET, e.g. coaps://127.0.0.1:5684/hello
    uri: String,
    /// PSK identity.
    #[arg(long, value_name = "ID")]
    psk_identity: String,
    /// PSK (text).
    #[arg(long, value_name = "KEY")]
    psk: String,
    /// Clients (one DTLS session each), each with one request in flight.
    #[arg(short = 'n', long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    clients: u16,
    /// Seconds to measure.
    #[arg(short, long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let bind = if args.uri.contains('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let c = Client::bind_with_psk(
            bind.parse().map_err(|e| format!("{e}"))?,
            Config::default(),
            args.psk_identity.as_bytes(),
            args.psk.as_bytes(),
        )
        .await
        .map_err(|e| format!("cannot bind: {e}"))?;
        clients.push(c);
    }
    // Warm-up: every session handshakes before the clock starts.
    for c in &clients {
        let r = tokio::time::timeout(Duration::from_secs(30), c.get(&args.uri))
            .await
            .map_err(|_| "warm-up GET timed out".to_string())?
            .map_err(|e| format!("warm-up GET: {e}"))?;
        if !r.code.is_response() {
            return Err(format!("warm-up GET: unexpected code {}", r.code));
        }
    }
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for c in clients {
        let (uri, done, failed) = (args.uri.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let left = end.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, c.get(&uri)).await {
                    Ok(Ok(_)) => done.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(_)) => failed.fetch_add(1, Ordering::Relaxed),
                    // Still in flight when the time is up: not counted.
                    Err(_) => break,
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "uri={} clients={} seconds={secs:.1} requests={n} errors={} req/s={:.0}",
        args.uri,
        args.clients,
        failed.load(Ordering::Relaxed),
        n as f64 / secs
    );
    Ok(())
}
