//! The endpoint loop, once for every runtime: pump datagrams between the socket and the
//! driver in batches, then wait for whichever input comes first — the socket, the core's
//! next deadline, a command from a handle, a group datagram, a DTLS record or the shutdown.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::pin;
use std::task::{Context, Poll};

use coap_core::Handler;

use crate::batch::{dtls_recv, dtls_send, pump, BatchIo};
use crate::command::CommandReceiver;
use crate::driver::{Driver, Input, MAX_DATAGRAM};
use crate::oscore::Peer;
use crate::runtime::{AsyncUdpSocket, Runtime};
use crate::wait::Wait;

/// The sockets one endpoint reads from.
#[derive(Debug)]
pub(crate) struct Sockets<S> {
    /// The unicast socket: plain CoAP in and out.
    pub main: S,
    /// One socket per joined group (RFC 7252 §8), read only: answers leave from `main`.
    pub groups: Vec<S>,
    /// The coaps socket (RFC 7252 §9), if DTLS is spoken.
    pub coaps: Option<S>,
}

/// The inputs the loop waits on, polled in turn from a rotating start so that a busy
/// socket cannot starve timers and commands (as `tokio::select!`'s random order ensured).
const BRANCHES: usize = 6;

/// Runs the endpoint until the shutdown, a socket error or (for a client) the last handle.
pub(crate) async fn run<R: Runtime, H: Handler<Peer>>(
    sockets: Sockets<R::Socket>,
    driver: Driver<H>,
    commands: CommandReceiver,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let Sockets {
        main,
        groups,
        coaps,
    } = sockets;
    let mut ending = CloseOnExit { driver, coaps };
    let CloseOnExit { driver, coaps } = &mut ending;
    let mut io = BatchIo::new();
    let mut shutdown = pin!(shutdown);
    let mut group_buf = vec![0u8; MAX_DATAGRAM];
    let mut dtls_buf = match coaps {
        Some(_) => vec![0u8; MAX_DATAGRAM],
        None => Vec::new(),
    };
    let mut turn = 0usize;
    loop {
        let mut coaps_wait = Wait::Input;
        let mut wait = match pump(driver, &mut io, &main, &commands) {
            ControlFlow::Break(result) => return result,
            ControlFlow::Continue(wait) => wait,
        };
        if let Some(coaps) = &coaps {
            // Records in (their plaintext into the endpoint), the endpoint's answers into
            // the sessions (the second pump), then the records out.
            dtls_recv(driver, coaps, &mut dtls_buf);
            wait = match pump(driver, &mut io, &main, &commands) {
                ControlFlow::Break(result) => return result,
                ControlFlow::Continue(wait) => wait,
            };
            coaps_wait = dtls_send(driver, coaps);
        }
        let mut sleep = pin!(driver.deadline().map(R::sleep_until));
        let mut command = pin!(driver.accepts_commands().then(|| commands.recv()));
        turn = turn.wrapping_add(1);
        let input = poll_fn(|cx| {
            for i in 0..BRANCHES {
                let ready = match (turn + i) % BRANCHES {
                    0 => shutdown.as_mut().poll(cx).map(|()| Input::Shutdown),
                    1 => match wait {
                        Wait::Input => main.poll_readable(cx),
                        Wait::Writable => main.poll_writable(cx),
                    }
                    .map(Input::Ready),
                    2 => match sleep.as_mut().as_pin_mut() {
                        Some(s) => s.poll(cx).map(|_| Input::Timeout),
                        None => Poll::Pending,
                    },
                    3 => match command.as_mut().as_pin_mut() {
                        Some(c) => c.poll(cx).map(|c| Input::Command(c.ok())),
                        None => Poll::Pending,
                    },
                    4 => poll_groups(&groups, &mut group_buf, cx).map(Input::GroupDatagram),
                    _ => match &coaps {
                        // A record waits for room: writability, or a record in, wakes.
                        Some(s) if matches!(coaps_wait, Wait::Writable) => {
                            match s.poll_writable(cx) {
                                Poll::Ready(r) => Poll::Ready(Input::Ready(r)),
                                Poll::Pending => s.poll_readable(cx).map(Input::Ready),
                            }
                        }
                        Some(s) => s.poll_readable(cx).map(Input::Ready),
                        None => Poll::Pending,
                    },
                };
                if ready.is_ready() {
                    return ready;
                }
            }
            Poll::Pending
        })
        .await;
        if let ControlFlow::Break(result) = driver.step(input, &group_buf, &commands) {
            return result;
        }
    }
}

/// The driver and the coaps socket, which end the DTLS sessions with close_notify (RFC 5246
/// §7.2.1) however the loop ends: returning (shutdown, last handle gone), or dropped with
/// its runtime, as when a CLI exits after its request. Servers then free the place at once
/// rather than after their idle timeout. Best-effort: what the socket takes without
/// waiting.
struct CloseOnExit<H: Handler<Peer>, S: AsyncUdpSocket> {
    driver: Driver<H>,
    coaps: Option<S>,
}

impl<H: Handler<Peer>, S: AsyncUdpSocket> Drop for CloseOnExit<H, S> {
    fn drop(&mut self) {
        if let Some(coaps) = &self.coaps {
            self.driver.close_dtls_sessions();
            let _ = dtls_send(&mut self.driver, coaps);
        }
    }
}

/// The next datagram from any of the group sockets, into `buf`.
fn poll_groups<S: AsyncUdpSocket>(
    groups: &[S],
    buf: &mut [u8],
    cx: &mut Context<'_>,
) -> Poll<io::Result<(usize, SocketAddr)>> {
    for g in groups {
        // A readiness without a datagram (spurious, or taken already) re-arms the wait.
        while g.poll_readable(cx).is_ready() {
            match g.try_recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }
    Poll::Pending
}
