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
        let socket = std::sync::Arc::new(UdpSocket::from_std(socket)?);
        Ok(Socket {
            #[cfg(target_os = "linux")]
            error: std::sync::Mutex::new(None),
            socket,
        })
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

    type TcpStream = TcpStream;
    type TcpListener = TcpListener;
    fn listen_tcp(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        tokio::net::TcpListener::from_std(listener).map(TcpListener)
    }

    fn connect_tcp(addr: SocketAddr) -> coap_std::ConnectFuture<TcpStream> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true).map(|()| TcpStream(s)) // small messages: no Nagle wait
        })
    }
}

/// A tokio TCP stream as CoAP over TCP uses it (RFC 8323).
#[derive(Debug)]
pub struct TcpStream(tokio::net::TcpStream);

impl coap_std::AsyncTcpStream for TcpStream {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read_ready(cx)
    }
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_write_ready(cx)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
}

/// A tokio TCP listener.
#[derive(Debug)]
pub struct TcpListener(tokio::net::TcpListener);

impl coap_std::AsyncTcpListener for TcpListener {
    type Stream = TcpStream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (s, peer) = std::task::ready!(self.0.poll_accept(cx))?;
        s.set_nodelay(true)?;
        Poll::Ready(Ok((TcpStream(s), peer)))
    }
}

/// A wait for an error on the socket (tokio reports EPOLLERR as neither readable nor
/// writable, so it needs its own interest).
#[cfg(target_os = "linux")]
type ErrorWait = std::pin::Pin<Box<dyn Future<Output = io::Result<tokio::io::Ready>> + Send>>;

/// A tokio UDP socket as the endpoint loop uses it.
pub struct Socket {
    socket: std::sync::Arc<UdpSocket>,
    /// Linux: the ICMP errors the socket queues (`IP_RECVERR`) make it error-ready, not
    /// readable; the loop must still wake to read them (the next receive reports them).
    #[cfg(target_os = "linux")]
    error: std::sync::Mutex<Option<ErrorWait>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Socket").field(&self.socket).finish()
    }
}

impl Socket {
    /// Ready when the socket has an error queued. The loop's next receive (which reads
    /// on errors too, see `try_io`) then reports it; the receive that finds nothing more
    /// clears the error readiness with the readable one.
    #[cfg(target_os = "linux")]
    fn poll_error(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Ok(mut wait) = self.error.lock() else {
            return Poll::Pending;
        };
        let fut = wait.get_or_insert_with(|| {
            let s = self.socket.clone();
            Box::pin(async move { s.ready(Interest::ERROR).await })
        });
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                *wait = None;
                Poll::Ready(())
            }
        }
    }
}

impl NonBlockingSocket for Socket {
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.try_recv_from(buf)
    }

    fn try_send_to(&self, buf: &[u8], peer: SocketAddr) -> io::Result<usize> {
        self.socket.try_send_to(buf, peer)
    }

    #[cfg(target_os = "linux")]
    fn try_io<R>(
        &self,
        writable: bool,
        op: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        // tokio clears its readiness when `op` reports `WouldBlock`.
        if writable {
            return self
                .socket
                .try_io(Interest::WRITABLE, || op(self.socket.as_fd()));
        }
        // A queued ICMP error (IP_RECVERR) makes the socket error-ready only; the receive
        // that reports it (and reads the error queue) must run then too. tokio tries one
        // interest at a time, so `op` runs under whichever is set.
        let fd = self.socket.as_fd();
        let mut op = Some(op);
        let ran = std::cell::Cell::new(false);
        let mut run = || match op.take() {
            Some(f) => {
                ran.set(true);
                f(fd)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        };
        match self.socket.try_io(Interest::READABLE, &mut run) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !ran.get() => {
                self.socket.try_io(Interest::ERROR, &mut run)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Nothing queued at all: the error readiness goes too.
                let _ = self.socket.try_io(Interest::ERROR, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
                Err(e)
            }
            r => r,
        }
    }
}

impl AsyncUdpSocket for Socket {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let ready = self.socket.poll_recv_ready(cx);
        #[cfg(target_os = "linux")]
        if ready.is_pending() && self.poll_error(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        ready
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.socket.poll_send_ready(cx)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}
