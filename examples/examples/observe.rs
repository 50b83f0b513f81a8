//! Observe (RFC 7641) with the async router: one handler renders the GET response and
//! every notification.
//!
//! - `observe serve [--bind ADDR]`: `/temp` is observable; its value changes every 500 ms
//!   and a PUT sets it. Both notify the observers through the key that
//!   `Router::observe` handed out, which re-runs the GET handler for each of them.
//! - `observe client URI [COUNT]`: observes URI, prints the first response and COUNT
//!   notifications (default 3), then deregisters.
//!
//! `cargo run -p coap-examples --example observe -- serve --bind [::]:5683`
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coap_tokio::app::{get, Observed, Router, State, Text};
use coap_tokio::{Client, Code, Server};

#[derive(Clone)]
struct Thermometer {
    celsius: Arc<Mutex<f32>>,
    observed: Observed,
}

impl Thermometer {
    fn get(&self) -> f32 {
        *self.celsius.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set(&self, v: f32) {
        *self.celsius.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }
}

/// The GET handler: the first response and every notification.
async fn read(State(t): State<Thermometer>) -> String {
    format!("{:.1} Cel", t.get())
}

/// A PUT sets the value and notifies the observers.
async fn write(State(t): State<Thermometer>, Text(v): Text) -> Result<Code, (Code, String)> {
    let v: f32 = v
        .trim()
        .parse()
        .map_err(|_| (Code::BAD_REQUEST, format!("not a number: {v:?}")))?;
    t.set(v);
    t.observed
        .notify()
        .await
        .map_err(|e| (Code::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Code::CHANGED)
}

async fn serve(bind: std::net::SocketAddr) -> Result<(), Box<dyn Error>> {
    let server = Server::bind(bind).await?;
    println!(
        "serving coap://{}/temp (Ctrl-C to stop)",
        server.local_addr()
    );
    let mut router = Router::new();
    let observed = router.observe("/temp", get(read).put(write));
    let thermometer = Thermometer {
        celsius: Arc::new(Mutex::new(20.0)),
        observed: observed.clone(),
    };
    let ticking = thermometer.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            ticking.set(ticking.get() + 0.1);
            // Fails once the server has stopped: then there is nobody to tell.
            if ticking.observed.notify().await.is_err() {
                break;
            }
        }
    });
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    let router = router.with_state(thermometer);
    server.serve_router_with_shutdown(router, ctrl_c).await?;
    Ok(())
}

async fn client(uri: &str, count: usize) -> Result<(), Box<dyn Error>> {
    let client = Client::new().await?;
    let mut observation = client.observe(uri).await?;
    for i in 0..=count {
        let r = observation.next().await.ok_or("the observation ended")??;
        let r = r.error_for_status()?;
        let what = if i == 0 { "response" } else { "notification" };
        println!("{what}: {}", r.payload_str().unwrap_or(""));
    }
    // Deregisters (RFC 7641 §3.6); the server's final answer comes back.
    observation.cancel().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("serve") => serve(coap_examples::bind_addr_from(&args[1..], "[::]:5683")).await,
        Some("client") if args.len() >= 2 => {
            let count = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(3);
            client(&args[1], count).await
        }
        _ => Err("usage: observe serve [--bind ADDR] | observe client URI [COUNT]".into()),
    };
    coap_examples::exit_with(outcome)
}
