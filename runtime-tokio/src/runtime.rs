//! The tokio half: what [`coap_std::Runtime`] asks of a runtime, on tokio's sockets,
//! timers, tasks and resolver.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};
use std::time::Instant;

use coap_std::{AsyncUdpSocket, NonBlockingSocket, ResolveFuture, Runtime};
#[cfg(target_os = "linux")]
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The tokio runtime, as [`coap_std::Client`] and [`coap_std::Server`] use it: client loops
/// run as tokio tasks, so clients must be bound within a runtime with I/O and time enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokio;

impl Runtime for Tokio {
    type Socket = Socket;
    type Sleep = tokio::time::Sleep;

    fn wrap(socket: std::net::UdpSocket) -> io::Result<Socket> {
        UdpSocket::from_std(socket).map(Socket)
    }

    fn sleep_until(deadline: Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        tokio::spawn(task);
        Ok(())
    }

    fn resolve(host: String, port: u16) -> ResolveFuture {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// A tokio UDP socket as the endpoint loop uses it.
#[derive(Debug)]
pub struct Socket(UdpSocket);

impl NonBlockingSocket for Socket {
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.try_recv_from(buf)
    }

    fn try_send_to(&self, buf: &[u8], peer: SocketAddr) -> io::Result<usize> {
        self.0.try_send_to(buf, peer)
    }

    #[cfg(target_os = "linux")]
    fn try_io<R>(
        &self,
        writable: bool,
        op: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        let interest = if writable {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        // tokio clears its readiness when `op` reports `WouldBlock`.
        self.0.try_io(interest, || op(self.0.as_fd()))
    }
}

impl AsyncUdpSocket for Socket {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_recv_ready(cx)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_send_ready(cx)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
