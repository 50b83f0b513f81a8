//! Plain TCP (`coap+tcp`, RFC 8323 §8.1) from a [`Runtime`]'s stream, and the client pool
//! on that runtime. The only file of the reliable transports that names the runtime (so
//! that the client half stays free of it, as the UDP client's `Handle` is).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::client::{Connecting, Pool};
use super::io::Transport;
use crate::runtime::{AsyncTcpStream, Runtime};

/// A runtime's TCP stream as a [`Transport`].
pub(crate) struct Plain<S>(pub S);

impl<S: AsyncTcpStream> Transport for Plain<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.0.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.0.poll_readable(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.0.poll_writable(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }
}

fn connect<R: Runtime>(addr: SocketAddr) -> Connecting {
    Box::pin(async move {
        let s = R::connect_tcp(addr).await?;
        Ok(Box::new(Plain(s)) as Box<dyn Transport>)
    })
}

fn spawn<R: Runtime>(task: Pin<Box<dyn Future<Output = ()> + Send>>) -> io::Result<()> {
    R::spawn(task)
}

/// The connection pool of a client on runtime `R`.
pub(crate) fn pool<R: Runtime>(request_timeout: Duration) -> Pool {
    Pool::new(
        connect::<R>,
        spawn::<R>,
        crate::runtime::timer::<R>,
        request_timeout,
    )
}
