//! `coap bench`: a closed-loop load generator on a raw UDP socket. N requests are kept in
//! flight, each with a token of its own; every response (matched by token) is answered at
//! once by the next request in its place, until the duration is over.
//!
//! The generator is deliberately thin, so that it measures the server and not itself: no
//! CoAP endpoint on this side (no retransmissions, no duplicate detection), one thread,
//! one connected socket, the request encoded once with the core's [`MessageBuilder`] and
//! then only its Message ID and token patched, responses decoded with [`Message::parse`],
//! and on Linux receives and sends batched (`recvmmsg`/`sendmmsg`). A request unanswered
//! after `--timeout` counts as a timeout and is replaced by a new one; a response that
//! arrives after that counts as late.

use std::io::{self, IsTerminal};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use coap_core::code::CodeClass;
use coap_core::message::write_empty;
use coap_core::{Code, Message, MessageBuilder, MessageType, Uri};
use coap_tools::exit::{Exit, Fail};
use coap_tools::input::io_reason;

use crate::cli::BenchArgs;
use crate::request::target;

/// Token length of the generator's requests: slot index (1 byte) and the slot's request
/// generation (3 bytes).
const TOKEN_LEN: usize = 4;
/// Largest datagram the generator takes in (responses to a GET of a small resource).
const RECV_SIZE: usize = 2048;
/// How long one receive call blocks before the loop looks at the clock again.
const POLL: Duration = Duration::from_millis(5);
/// How long the generator polls the socket without blocking after the last datagram.
/// Blocking between responses would let the scheduler put this core to sleep, and the
/// wake-up on the next response (an inter-processor interrupt, slow in a VM) then caps the
/// rate below what the server can do: the generator keeps its core busy while the server
/// answers, and sleeps only when it stops answering.
const SPIN: Duration = Duration::from_millis(2);

pub async fn run(args: BenchArgs) -> Result<Exit, Fail> {
    let target = target(&args.uri).await?;
    let n = usize::from(args.concurrency.clamp(1, 255));
    let template = template(&args.uri, target.peer, args.non)?;
    let socket = UdpSocket::bind(target.local)
        .and_then(|s| {
            s.connect(target.peer)?;
            s.set_read_timeout(Some(POLL))?;
            Ok(s)
        })
        .map_err(|e| {
            Fail::failure(format_args!(
                "cannot open a UDP socket to {}: {}",
                target.peer,
                io_reason(&e)
            ))
        })?;
    let settings = Settings {
        n,
        duration: args.duration,
        timeout: args.timeout,
        progress: std::io::stderr().is_terminal(),
    };
    let report =
        tokio::task::spawn_blocking(move || Generator::new(socket, template, settings).run())
            .await
            .map_err(|e| Fail::failure(format_args!("bench generator failed: {e}")))?
            .map_err(|e| Fail::failure(format_args!("bench on {}: {}", args.uri, io_reason(&e))))?;

    let kind = if args.non { "NON" } else { "CON" };
    let responses = report.responses;
    let secs = report.elapsed.as_secs_f64().max(0.001);
    let rate = responses as f64 / secs;
    let mut out = format!(
        "GET {} with {n} requests in flight ({kind}) for {secs:.1} s\n\
         requests:   {responses} responses, {rate:.1} req/s\n",
        args.uri,
    );
    if responses > 0 {
        let h = &report.latency;
        out += &format!(
            "latency:    p50 {}, p99 {}, max {}\n",
            ms(h.quantile(0.50)),
            ms(h.quantile(0.99)),
            ms(h.max)
        );
    }
    out += &format!(
        "timeouts:   {} (after {} s), {} late responses\n",
        report.timeouts,
        args.timeout.as_secs_f64(),
        report.late
    );
    out += &format!("errors:     {} (RST)\n", report.resets);
    out += &format!("non-2.xx:   {}\n", report.non_success);
    print_stdout(&out);

    if responses == 0 {
        return Err(Fail::new(
            Exit::Timeout,
            format_args!("timeout: no response from {}", args.uri),
        ));
    }
    Ok(Exit::Success)
}

/// The request, encoded once: Message ID 0 and a zero token, patched per request.
fn template(uri: &str, peer: SocketAddr, non: bool) -> Result<Vec<u8>, Fail> {
    let parsed =
        Uri::parse(uri).map_err(|e| Fail::usage(format_args!("invalid URI '{uri}': {e}")))?;
    let ty = if non {
        MessageType::Non
    } else {
        MessageType::Con
    };
    let mut buf = vec![0; coap_core::endpoint::DEFAULT_MESSAGE_SIZE];
    let mut b = MessageBuilder::new(&mut buf, ty, Code::GET, 0, &[0; TOKEN_LEN])
        .map_err(|e| Fail::usage(format_args!("{uri}: {e}")))?;
    parsed
        .write_options_to(&mut b, Some(peer.ip()), peer.port())
        .map_err(|e| Fail::usage(format_args!("{uri}: {e}")))?;
    let len = b.finish();
    buf.truncate(len);
    Ok(buf)
}

struct Settings {
    n: usize,
    duration: Duration,
    timeout: Duration,
    progress: bool,
}

#[derive(Clone, Copy)]
struct Slot {
    /// Request generation: the last three bytes of the token.
    generation: u32,
    mid: u16,
    sent: Instant,
}

struct Report {
    responses: u64,
    elapsed: Duration,
    latency: Histogram,
    timeouts: u64,
    late: u64,
    resets: u64,
    non_success: u64,
}

struct Generator {
    io: Batch,
    socket: UdpSocket,
    settings: Settings,
    requests: Requests,
    /// Datagrams to send in the next batch (requests and empty ACKs).
    outbox: Outbox,
}

/// The requests in flight, one per slot.
struct Requests {
    template: Vec<u8>,
    slots: Vec<Slot>,
    next_mid: u16,
}

impl Requests {
    /// Puts a new request for slot `i` into `out`.
    fn issue(&mut self, i: usize, now: Instant, out: &mut Outbox) {
        let mid = self.next_mid;
        self.next_mid = mid.wrapping_add(1);
        let slot = &mut self.slots[i];
        slot.generation = slot.generation.wrapping_add(1) & 0x00ff_ffff;
        slot.mid = mid;
        slot.sent = now;
        let g = slot.generation.to_be_bytes();
        let msg = out.push();
        msg.extend_from_slice(&self.template);
        msg[2..4].copy_from_slice(&mid.to_be_bytes());
        msg[4..4 + TOKEN_LEN].copy_from_slice(&[i as u8, g[1], g[2], g[3]]);
    }
}

/// Datagrams to send, reused from batch to batch.
struct Outbox {
    msgs: Vec<Vec<u8>>,
    len: usize,
}

impl Outbox {
    /// A cleared datagram at the end of the batch.
    fn push(&mut self) -> &mut Vec<u8> {
        if self.len == self.msgs.len() {
            self.msgs.push(Vec::new());
        }
        let msg = &mut self.msgs[self.len];
        self.len += 1;
        msg.clear();
        msg
    }
}

impl Generator {
    fn new(socket: UdpSocket, template: Vec<u8>, settings: Settings) -> Generator {
        let now = Instant::now();
        let n = settings.n;
        Generator {
            io: Batch::new(n),
            socket,
            requests: Requests {
                template,
                slots: vec![
                    Slot {
                        generation: 0,
                        mid: 0,
                        sent: now,
                    };
                    n
                ],
                // Message IDs from a per-run start, so that two runs against the same
                // server do not look like duplicates of each other.
                next_mid: mid_seed(),
            },
            outbox: Outbox {
                msgs: vec![Vec::new(); 2 * n],
                len: 0,
            },
            settings,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self
            .io
            .send(&self.socket, &self.outbox.msgs[..self.outbox.len]);
        self.outbox.len = 0;
        match r {
            Ok(()) => Ok(()),
            // A refused or dropped datagram is a request without response: it times out.
            Err(e) if transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn run(mut self) -> io::Result<Report> {
        let mut report = Report {
            responses: 0,
            elapsed: Duration::ZERO,
            latency: Histogram::new(),
            timeouts: 0,
            late: 0,
            resets: 0,
            non_success: 0,
        };
        let start = Instant::now();
        let deadline = start + self.settings.duration;
        let mut next_check = start + POLL;
        let mut next_progress = start + Duration::from_secs(1);
        let mut last_progress = 0;
        for i in 0..self.settings.n {
            self.requests.issue(i, start, &mut self.outbox);
        }
        self.flush()?;
        let mut now = start;
        let mut last_datagram = start;
        while now < deadline {
            let wait = now.duration_since(last_datagram) > SPIN;
            let received = match self.io.recv(&self.socket, wait) {
                Ok(k) => k,
                Err(e) if transient(&e) => 0,
                Err(e) => return Err(e),
            };
            now = Instant::now();
            if received > 0 {
                last_datagram = now;
            }
            if now >= deadline {
                // Responses that arrived after the end are not counted.
                break;
            }
            for k in 0..received {
                let (buf, len) = self.io.datagram(k);
                let Ok(msg) = Message::parse(&buf[..len]) else {
                    continue;
                };
                let (ty, mid) = (msg.ty(), msg.message_id());
                if msg.code() == Code::EMPTY {
                    if ty == MessageType::Rst {
                        if let Some(i) = self.requests.slots.iter().position(|s| s.mid == mid) {
                            report.resets += 1;
                            self.requests.issue(i, now, &mut self.outbox);
                        }
                    }
                    // An empty ACK: the response follows separately.
                    continue;
                }
                let code = msg.code();
                let token = msg.token();
                if ty == MessageType::Con && code.kind() != CodeClass::Request {
                    // A separate response: acknowledge it.
                    let ack = self.outbox.push();
                    ack.resize(4, 0);
                    let _ = write_empty(ack, MessageType::Ack, mid);
                }
                let i = usize::from(token.first().copied().unwrap_or(u8::MAX));
                let generation = match token {
                    [_, a, b, c] => u32::from_be_bytes([0, *a, *b, *c]),
                    _ => u32::MAX,
                };
                match self.requests.slots.get(i) {
                    Some(s) if s.generation == generation => {
                        report.latency.record(now.duration_since(s.sent));
                        report.responses += 1;
                        if code.kind() != CodeClass::Success {
                            report.non_success += 1;
                        }
                        self.requests.issue(i, now, &mut self.outbox);
                    }
                    _ => report.late += 1,
                }
            }
            if now >= next_check {
                next_check = now + POLL;
                let timeout = self.settings.timeout;
                for i in 0..self.settings.n {
                    if now.duration_since(self.requests.slots[i].sent) >= timeout {
                        report.timeouts += 1;
                        self.requests.issue(i, now, &mut self.outbox);
                    }
                }
                if self.settings.progress && now >= next_progress {
                    next_progress += Duration::from_secs(1);
                    eprint_raw(&format!(
                        "\r\x1b[K[{:>4.0} s] {} responses, {} req/s, {} timeouts",
                        now.duration_since(start).as_secs_f64(),
                        report.responses,
                        report.responses - last_progress,
                        report.timeouts,
                    ));
                    last_progress = report.responses;
                }
            }
            if self.outbox.len > 0 {
                self.flush()?;
            }
        }
        report.elapsed = now.min(deadline).duration_since(start);
        if self.settings.progress {
            eprint_raw("\r\x1b[K");
        }
        Ok(report)
    }
}

/// A start for the Message IDs that differs between runs.
fn mid_seed() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.subsec_nanos() ^ std::process::id()) as u16
}

/// Errors of one datagram or one receive call, not of the socket.
fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        WouldBlock | TimedOut | Interrupted | ConnectionRefused | ConnectionReset
    )
}

/// Batched receives and sends on a connected socket: `recvmmsg`/`sendmmsg`.
#[cfg(target_os = "linux")]
struct Batch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    headers: nix::sys::socket::MultiHeaders<()>,
}

#[cfg(target_os = "linux")]
impl Batch {
    fn new(n: usize) -> Batch {
        // Room for every response in flight and an ACK for each.
        let cap = 2 * n;
        Batch {
            bufs: vec![vec![0; RECV_SIZE]; cap],
            lens: vec![0; cap],
            headers: nix::sys::socket::MultiHeaders::preallocate(cap, None),
        }
    }

    /// Takes the datagrams that are queued (up to the batch size), waiting up to [`POLL`]
    /// for the first if `wait`. Returns how many; see [`Batch::datagram`].
    fn recv(&mut self, socket: &UdpSocket, wait: bool) -> io::Result<usize> {
        use nix::sys::socket::{recvmmsg, MsgFlags};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            if wait {
                MsgFlags::MSG_WAITFORONE
            } else {
                MsgFlags::MSG_DONTWAIT
            },
            None,
        )
        .map_err(io::Error::from)?;
        let mut k = 0;
        for (r, len) in results.zip(self.lens.iter_mut()) {
            *len = r.bytes;
            k += 1;
        }
        Ok(k)
    }

    fn datagram(&self, k: usize) -> (&[u8], usize) {
        (&self.bufs[k], self.lens[k].min(RECV_SIZE))
    }

    /// Sends all of `msgs`, in as few calls as the kernel allows.
    fn send(&mut self, socket: &UdpSocket, msgs: &[Vec<u8>]) -> io::Result<()> {
        use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;
        let mut rest = msgs;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(self.lens.len())];
            let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|m| [IoSlice::new(m)]).collect();
            let addrs = vec![None::<()>; chunk.len()];
            let cmsgs: [ControlMessage<'_>; 0] = [];
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                &iovs,
                &addrs,
                cmsgs,
                MsgFlags::empty(),
            )
            .map_err(io::Error::from)?
            .count();
            rest = &rest[sent.max(1).min(rest.len())..];
        }
        Ok(())
    }
}

/// One datagram per call where `recvmmsg`/`sendmmsg` are not available.
#[cfg(not(target_os = "linux"))]
struct Batch {
    buf: Vec<u8>,
    len: usize,
}

#[cfg(not(target_os = "linux"))]
impl Batch {
    fn new(_n: usize) -> Batch {
        Batch {
            buf: vec![0; RECV_SIZE],
            len: 0,
        }
    }

    fn recv(&mut self, socket: &UdpSocket, _wait: bool) -> io::Result<usize> {
        self.len = socket.recv(&mut self.buf)?;
        Ok(1)
    }

    fn datagram(&self, _k: usize) -> (&[u8], usize) {
        (&self.buf, self.len.min(RECV_SIZE))
    }

    fn send(&mut self, socket: &UdpSocket, msgs: &[Vec<u8>]) -> io::Result<()> {
        for m in msgs {
            match socket.send(m) {
                Err(e) if !transient(&e) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Latencies in microseconds: one bucket per microsecond up to 65.535 ms, one above.
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    /// The largest latency, in microseconds.
    max: u32,
}

impl Histogram {
    const BUCKETS: usize = 1 << 16;

    fn new() -> Histogram {
        Histogram {
            buckets: vec![0; Self::BUCKETS + 1],
            count: 0,
            max: 0,
        }
    }

    fn record(&mut self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let i = (us as usize).min(Self::BUCKETS);
        self.buckets[i] += 1;
        self.count += 1;
        self.max = self.max.max(us);
    }

    /// The `q` quantile (nearest rank), in microseconds; latencies above the last bucket
    /// count as the maximum.
    fn quantile(&self, q: f64) -> u32 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (us, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return if us == Self::BUCKETS {
                    self.max
                } else {
                    us as u32
                };
            }
        }
        self.max
    }
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
    use super::*;

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.max, 100);
        h.record(Duration::from_secs(1));
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }

    #[test]
    fn template_has_the_path_and_room_for_mid_and_token() {
        let t = template(
            "coap://127.0.0.1:5683/hello",
            "127.0.0.1:5683".parse().unwrap(),
            false,
        )
        .unwrap();
        let m = Message::parse(&t).unwrap();
        assert_eq!(m.code(), Code::GET);
        assert_eq!(m.ty(), MessageType::Con);
        assert_eq!(m.token(), &[0; TOKEN_LEN]);
        assert_eq!(m.uri_path().collect::<Vec<_>>(), [&b"hello"[..]]);
    }
}
