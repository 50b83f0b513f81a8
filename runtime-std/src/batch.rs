//! Batched socket I/O for the endpoint loops: take every datagram already queued on the
//! socket and send every datagram the core has ready, without going back to the runtime's
//! reactor in between, in as few system calls as the platform allows (`recvmmsg` and
//! `sendmmsg` on Linux, one `recv_from`/`send_to` per datagram elsewhere).
//!
//! An adapter's loop then is:
//!
//! ```text
//! loop {
//!     match pump(&mut driver, &mut io, &socket, &commands) {
//!         Break(result) => return result,
//!         Continue(Wait::Input) => select(readable, timer, command, shutdown),
//!         Continue(Wait::Writable) => select(writable, timer, command, shutdown),
//!     }
//! }
//! ```

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;

use coap_core::Handler;

use crate::command::CommandReceiver;
use crate::driver::{Driver, Input, MAX_DATAGRAM, TRANSMIT_SIZE};
use crate::oscore::Peer;
use crate::wait::Wait;

/// Datagrams taken from the socket (or handed to it) in one call.
pub const BATCH: usize = 32;

/// Datagrams the loop takes in before it lets the runtime look at its other inputs
/// (timers, commands, shutdown) again.
const FAIR_SHARE: usize = 8 * BATCH;

/// Datagrams read from the coaps socket in one [`dtls_recv`] call before the loop looks
/// at its other inputs again.
const DTLS_FAIR_SHARE: usize = 64;

/// A non-blocking UDP socket as a runtime holds it.
pub trait NonBlockingSocket {
    /// One datagram, or `WouldBlock`; a `WouldBlock` must make the runtime's next wait for
    /// readability wait for a new datagram.
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;

    /// Sends one datagram, or `WouldBlock` (likewise for writability).
    fn try_send_to(&self, buf: &[u8], peer: SocketAddr) -> io::Result<usize>;

    /// Runs `op`, a non-blocking call on the socket's descriptor (`writable`: a send), and
    /// on `WouldBlock` tells the runtime's reactor that the socket is not ready.
    #[cfg(target_os = "linux")]
    fn try_io<R>(
        &self,
        writable: bool,
        op: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R>;
}

/// The loop's receive and send buffers.
pub struct BatchIo {
    recv: RecvBatch,
    send: SendBatch,
}

impl std::fmt::Debug for BatchIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchIo")
            .field("unsent", &(self.send.count - self.send.sent))
            .finish_non_exhaustive()
    }
}

impl Default for BatchIo {
    fn default() -> Self {
        BatchIo::new()
    }
}

impl BatchIo {
    /// Buffers for [`BATCH`] datagrams each way. The receive buffers take any datagram
    /// (64 KiB each), but only the pages a datagram is written into become resident.
    pub fn new() -> BatchIo {
        BatchIo {
            recv: RecvBatch::new(),
            send: SendBatch::new(),
        }
    }
}

/// Sends what `driver` has to send and feeds it the datagrams already queued on `socket`,
/// alternately, until the socket has nothing more to give (or the loop has taken its
/// `FAIR_SHARE`) and nothing is left to send. Never waits. `Break` ends the loop with
/// its result (a socket error).
pub fn pump<H: Handler<Peer>>(
    driver: &mut Driver<H>,
    io: &mut BatchIo,
    socket: &impl NonBlockingSocket,
    commands: &CommandReceiver,
) -> ControlFlow<io::Result<()>, Wait> {
    let mut taken = 0;
    loop {
        if io.send.flush(driver, socket).is_err() {
            return ControlFlow::Continue(Wait::Writable);
        }
        if taken >= FAIR_SHARE {
            return ControlFlow::Continue(Wait::Input);
        }
        match io.recv.recv(socket) {
            Ok(0) => return ControlFlow::Continue(Wait::Input),
            Ok(k) => {
                taken += k;
                for i in 0..k {
                    let (peer, bytes) = io.recv.datagram(i);
                    let input = Input::Datagram(Ok((bytes.len(), peer)));
                    driver.step(input, bytes, commands)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return ControlFlow::Continue(Wait::Input)
            }
            // Transient errors (an ICMP error of an earlier send) are skipped by the
            // driver; anything else ends the loop. On Linux the ICMP errors themselves
            // wait on the error queue, with the peers they are about.
            Err(e) => {
                #[cfg(target_os = "linux")]
                network_errors(driver, socket, false);
                driver.step(Input::Datagram(Err(e)), &[], commands)?
            }
        }
    }
}

/// Reads the socket's error queue and tells the driver which peers the network says are
/// unreachable, and which paths carry smaller packets (`dtls`: the coaps socket).
#[cfg(target_os = "linux")]
fn network_errors<H: Handler<Peer>>(
    driver: &mut Driver<H>,
    socket: &impl NonBlockingSocket,
    dtls: bool,
) {
    // On the main socket (called after a receive error, with datagrams possibly still
    // queued) the closure never returns WouldBlock, so the socket's readiness is left as
    // it is. The coaps socket is read after its receive found nothing: an empty error
    // queue then reports WouldBlock, which clears the runtime's readiness (tokio's error
    // readiness included, which its own `try_recv_from` never clears).
    let errors = socket
        .try_io(false, |fd| {
            let found = crate::icmp::drain(fd);
            if dtls && found.is_empty() {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(found)
            }
        })
        .unwrap_or_default();
    for (peer, error) in errors {
        match error {
            crate::icmp::NetError::Unreachable(why) => driver.handle_unreachable(peer, why, dtls),
            crate::icmp::NetError::PathMtu(mtu) => driver.handle_path_mtu(peer, mtu, dtls),
        }
    }
}

/// The message headers of `recvmmsg`/`sendmmsg` (nix's, which hold raw pointers and so
/// cannot live in a loop's future that moves between threads): one set per thread.
///
/// The receive headers keep the address length the kernel wrote last as the room for the
/// next address, so that an IPv6 address received after an IPv4 one would be cut short:
/// there is one set for IPv4 sockets and one for IPv6 sockets (on one socket all peer
/// addresses have the same length, IPv4-mapped ones included).
#[cfg(target_os = "linux")]
struct Headers {
    recv_v4: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    recv_v6: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    send: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

#[cfg(target_os = "linux")]
thread_local! {
    static HEADERS: std::cell::RefCell<Headers> = std::cell::RefCell::new(Headers {
        recv_v4: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        recv_v6: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        send: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
    });
}

/// Runs `f` with this thread's headers (an error instead of a panic while the thread
/// exits).
#[cfg(target_os = "linux")]
fn with_headers<R>(f: impl FnOnce(&mut Headers) -> io::Result<R>) -> io::Result<R> {
    HEADERS
        .try_with(|h| match h.try_borrow_mut() {
            Ok(mut h) => f(&mut h),
            Err(_) => Err(io::Error::other("batch I/O headers in use")),
        })
        .map_err(|_| io::Error::other("thread exiting"))?
}

/// Received datagrams: their peers and lengths, in buffers of [`MAX_DATAGRAM`] bytes.
struct RecvBatch {
    buf: Vec<u8>,
    peers: Vec<SocketAddr>,
    lens: Vec<usize>,
    /// Whether the socket is an IPv6 one (learnt on the first receive).
    #[cfg(target_os = "linux")]
    ipv6: Option<bool>,
}

impl RecvBatch {
    fn new() -> RecvBatch {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        RecvBatch {
            // Zeroed memory comes from the OS untouched: a buffer page becomes resident
            // only when a datagram reaches into it.
            buf: vec![0; BATCH * MAX_DATAGRAM],
            peers: vec![unspecified; BATCH],
            lens: vec![0; BATCH],
            #[cfg(target_os = "linux")]
            ipv6: None,
        }
    }

    /// The `i`-th datagram of the last [`RecvBatch::recv`].
    fn datagram(&self, i: usize) -> (SocketAddr, &[u8]) {
        let start = i * MAX_DATAGRAM;
        let len = self.lens[i].min(MAX_DATAGRAM);
        (self.peers[i], &self.buf[start..start + len])
    }

    /// Takes up to [`BATCH`] queued datagrams; `WouldBlock` when there is none.
    #[cfg(target_os = "linux")]
    fn recv(&mut self, socket: &impl NonBlockingSocket) -> io::Result<usize> {
        use nix::sys::socket::{
            getsockname, recvmmsg, AddressFamily, MsgFlags, SockaddrLike, SockaddrStorage,
        };
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        let RecvBatch {
            buf,
            peers,
            lens,
            ipv6,
        } = self;
        socket.try_io(false, |fd| {
            let v6 = match *ipv6 {
                Some(v6) => v6,
                None => {
                    let local: SockaddrStorage = getsockname(fd.as_raw_fd())?;
                    *ipv6.insert(local.family() == Some(AddressFamily::Inet6))
                }
            };
            with_headers(|h| {
                let mut chunks = buf.chunks_exact_mut(MAX_DATAGRAM);
                let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                    std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
                let results = recvmmsg(
                    fd.as_raw_fd(),
                    if v6 { &mut h.recv_v6 } else { &mut h.recv_v4 },
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                )?;
                let mut k = 0;
                for r in results {
                    let peer = r.address.as_ref().and_then(|a| {
                        a.as_sockaddr_in()
                            .map(|v4| SocketAddr::from(*v4))
                            .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
                    });
                    // Not an IP peer (cannot happen on a UDP socket): dropped.
                    let Some(peer) = peer else { continue };
                    peers[k] = peer;
                    lens[k] = r.bytes;
                    k += 1;
                }
                Ok(k)
            })
        })
    }

    /// Takes up to [`BATCH`] queued datagrams; `WouldBlock` when there is none.
    #[cfg(not(target_os = "linux"))]
    fn recv(&mut self, socket: &impl NonBlockingSocket) -> io::Result<usize> {
        let mut k = 0;
        for b in self.buf.chunks_exact_mut(MAX_DATAGRAM) {
            match socket.try_recv_from(b) {
                Ok((n, peer)) => {
                    self.peers[k] = peer;
                    self.lens[k] = n;
                    k += 1;
                }
                Err(e) if k == 0 => return Err(e),
                // Nothing more queued (or an error that the next call reports again).
                Err(_) => break,
            }
        }
        Ok(k)
    }
}

/// Datagrams from the core waiting to be sent: `sent..count` of the batch.
struct SendBatch {
    buf: Vec<u8>,
    peers: Vec<SocketAddr>,
    lens: Vec<usize>,
    count: usize,
    sent: usize,
}

impl SendBatch {
    fn new() -> SendBatch {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        SendBatch {
            buf: vec![0; BATCH * TRANSMIT_SIZE],
            peers: vec![unspecified; BATCH],
            lens: vec![0; BATCH],
            count: 0,
            sent: 0,
        }
    }

    /// Sends everything the driver has to send. `Err` (`WouldBlock`) when the socket
    /// takes no more; what is not sent yet is kept for the next call. A datagram the
    /// socket refuses for another reason is dropped, as the network might have: the
    /// message layer retransmits or times out.
    fn flush<H: Handler<Peer>>(
        &mut self,
        driver: &mut Driver<H>,
        socket: &impl NonBlockingSocket,
    ) -> io::Result<()> {
        loop {
            if self.sent == self.count {
                self.sent = 0;
                self.count = 0;
                for b in self.buf.chunks_exact_mut(TRANSMIT_SIZE) {
                    let Some((peer, len)) = driver.poll_transmit_into(b) else {
                        break;
                    };
                    self.peers[self.count] = peer;
                    self.lens[self.count] = len;
                    self.count += 1;
                }
                if self.count == 0 {
                    return Ok(());
                }
            }
            match self.send(socket) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(_) => {
                    // A send can report the pending error of an earlier ICMP message
                    // (ECONNREFUSED), or be refused as larger than the path MTU
                    // (EMSGSIZE): the details wait on the error queue.
                    #[cfg(target_os = "linux")]
                    network_errors(driver, socket, false);
                    self.sent += 1
                }
            }
        }
    }

    fn message(&self, i: usize) -> &[u8] {
        let start = i * TRANSMIT_SIZE;
        &self.buf[start..start + self.lens[i].min(TRANSMIT_SIZE)]
    }

    /// Sends from `sent` on; how many went out (at least one, or an error about the
    /// first).
    #[cfg(target_os = "linux")]
    fn send(&mut self, socket: &impl NonBlockingSocket) -> io::Result<usize> {
        use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, SockaddrStorage};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        let k = self.count - self.sent;
        let first = self.sent;
        let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
            [IoSlice::new(if i < k {
                self.message(first + i)
            } else {
                &[]
            })]
        });
        let addrs: [Option<SockaddrStorage>; BATCH] =
            std::array::from_fn(|i| self.peers.get(first + i).map(|p| SockaddrStorage::from(*p)));
        socket.try_io(true, |fd| {
            with_headers(|h| {
                let cmsgs: [ControlMessage<'_>; 0] = [];
                let sent = sendmmsg(
                    fd.as_raw_fd(),
                    &mut h.send,
                    &iovs[..k],
                    &addrs[..k],
                    cmsgs,
                    MsgFlags::MSG_DONTWAIT,
                )?
                .count();
                Ok(sent)
            })
        })
    }

    /// Sends from `sent` on; how many went out (at least one, or an error about the
    /// first).
    #[cfg(not(target_os = "linux"))]
    fn send(&mut self, socket: &impl NonBlockingSocket) -> io::Result<usize> {
        let mut n = 0;
        for i in self.sent..self.count {
            match socket.try_send_to(self.message(i), self.peers[i]) {
                Ok(_) => n += 1,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(n)
    }
}

/// Feeds the datagrams already queued on the coaps socket to the driver (up to a fair
/// share, so that timers and commands get their turn; readiness then stays reported).
/// Never waits. What the endpoint answers leaves through the next [`pump`] (into
/// the sessions) and [`dtls_send`] (onto the socket).
pub fn dtls_recv<H: Handler<Peer>>(
    driver: &mut Driver<H>,
    socket: &impl NonBlockingSocket,
    buf: &mut [u8],
) {
    for _ in 0..DTLS_FAIR_SHARE {
        match socket.try_recv_from(buf) {
            Ok((n, from)) => driver.handle_dtls_datagram(from, buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The runtime's receive may not run on an error-only readiness (tokio):
                // the error queue is read here.
                #[cfg(target_os = "linux")]
                network_errors(driver, socket, true);
                break;
            }
            // ICMP errors of earlier sends and the like: about one peer, keep going (on
            // Linux the WouldBlock that follows reads them from the error queue).
            Err(_) => continue,
        }
    }
}

/// Sends every record the sessions have on the coaps socket. A record the socket refuses
/// is dropped, as the network might (DTLS retransmits handshake flights and CoAP its
/// confirmable messages), but one it is not ready for waits: [`Wait::Writable`] says to
/// call again once the socket is writable.
pub fn dtls_send<H: Handler<Peer>>(
    driver: &mut Driver<H>,
    socket: &impl NonBlockingSocket,
) -> Wait {
    driver.flush_dtls(|to, record| socket.try_send_to(record, to).map(|_| ()))
}
