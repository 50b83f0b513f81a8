//! `coap bench`: closed-loop load. N workers each keep one GET in flight (the client's
//! NSTART is N, so all of them are on the wire at once) until the duration is over.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coap_core::{Config, Method};
use coap_tokio::{Client, ClientError};
use coap_tools::exit::{Exit, Fail};
use coap_tools::input::io_reason;
use tokio::time::Instant;

use crate::cli::BenchArgs;
use crate::request::{client_error, target};
use crate::stderr_line;

#[derive(Default)]
struct Live {
    responses: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
}

#[derive(Default)]
struct WorkerResult {
    /// Latency of each response, in microseconds.
    latencies: Vec<u32>,
    non_success: u64,
    timeouts: u64,
    errors: u64,
    first_error: Option<Fail>,
}

pub async fn run(args: BenchArgs) -> Result<Exit, Fail> {
    let target = target(&args.uri).await?;
    let n = args.concurrency.clamp(1, 255);
    let config = Config {
        nstart: n as u8,
        ..Config::default()
    };
    let client = Client::bind_with(target.local, config).await.map_err(|e| {
        Fail::failure(format_args!(
            "cannot open a UDP socket on {}: {}",
            target.local,
            io_reason(&e)
        ))
    })?;
    let client = Arc::new(client);
    let uri: Arc<str> = Arc::from(args.uri.as_str());
    let live = Arc::new(Live::default());

    let start = Instant::now();
    let deadline = start + args.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..n {
        workers.spawn(worker(
            client.clone(),
            uri.clone(),
            args.non,
            args.timeout,
            deadline,
            live.clone(),
        ));
    }
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(progress(start, deadline, live.clone())));

    let mut all = WorkerResult::default();
    while let Some(r) = workers.join_next().await {
        let r = r.map_err(|e| Fail::failure(format_args!("bench worker failed: {e}")))?;
        all.latencies.extend(r.latencies);
        all.non_success += r.non_success;
        all.timeouts += r.timeouts;
        all.errors += r.errors;
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    let elapsed = start
        .elapsed()
        .min(args.duration)
        .max(Duration::from_millis(1));
    if let Some(p) = progress {
        p.abort();
        let _ = p.await;
        eprint_raw("\r\x1b[K");
    }

    let kind = if args.non { "NON" } else { "CON" };
    let responses = all.latencies.len() as u64;
    let rate = responses as f64 / elapsed.as_secs_f64();
    all.latencies.sort_unstable();
    let mut out = format!(
        "GET {} with {n} requests in flight ({kind}) for {:.1} s\n\
         requests:   {responses} responses, {rate:.1} req/s\n",
        args.uri,
        elapsed.as_secs_f64(),
    );
    if responses > 0 {
        let p = |q: f64| ms(percentile(&all.latencies, q));
        out += &format!(
            "latency:    p50 {}, p99 {}, max {}\n",
            p(0.50),
            p(0.99),
            ms(all.latencies.last().copied().unwrap_or(0))
        );
    }
    out += &format!(
        "timeouts:   {} (after {} s)\n",
        all.timeouts,
        args.timeout.as_secs_f64()
    );
    out += &format!("errors:     {}\n", all.errors);
    out += &format!("non-2.xx:   {}\n", all.non_success);
    print_stdout(&out);

    if responses == 0 {
        if let Some(e) = all.first_error {
            return Err(e);
        }
        return Err(Fail::new(
            Exit::Timeout,
            format_args!("timeout: no response from {}", args.uri),
        ));
    }
    if let Some(e) = &all.first_error {
        stderr_line(&format!(
            "warning: {} requests failed; the first: {e}",
            all.errors
        ));
    }
    Ok(Exit::Success)
}

async fn worker(
    client: Arc<Client>,
    uri: Arc<str>,
    non: bool,
    timeout: Duration,
    deadline: Instant,
    live: Arc<Live>,
) -> WorkerResult {
    let mut r = WorkerResult::default();
    while Instant::now() < deadline {
        let mut req = client.request(Method::Get, &uri).timeout(timeout);
        if non {
            req = req.non();
        }
        let sent = Instant::now();
        // A request still in flight when the time is up is not counted.
        let Ok(outcome) = tokio::time::timeout_at(deadline, req.send()).await else {
            break;
        };
        match outcome {
            Ok(resp) => {
                let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                r.latencies.push(us);
                if resp.code.kind() != coap_core::code::CodeClass::Success {
                    r.non_success += 1;
                }
                live.responses.fetch_add(1, Ordering::Relaxed);
            }
            Err(ClientError::Timeout) => {
                r.timeouts += 1;
                live.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                r.errors += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
                let fail = client_error(&e, &uri, Some(timeout));
                let fatal = fail.exit == Exit::Usage || matches!(e, ClientError::Closed);
                if r.first_error.is_none() {
                    r.first_error = Some(fail);
                }
                if fatal {
                    break;
                }
                // Do not spin on an error that comes back at once (busy, socket errors).
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    r
}

/// A live line on stderr, once per second.
async fn progress(start: Instant, deadline: Instant, live: Arc<Live>) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0;
    while tick.tick().await < deadline + Duration::from_millis(500) {
        let done = live.responses.load(Ordering::Relaxed);
        eprint_raw(&format!(
            "\r\x1b[K[{:>4.0} s] {done} responses, {} req/s, {} timeouts, {} errors",
            start.elapsed().as_secs_f64(),
            done - last,
            live.timeouts.load(Ordering::Relaxed),
            live.errors.load(Ordering::Relaxed),
        ));
        last = done;
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(us: u32) -> String {
    format!("{:.3} ms", f64::from(us) / 1000.0)
}

fn eprint_raw(s: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

fn print_stdout(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
