//! What a connection task needs of its stream and its wake-ups: a byte stream it reads
//! and writes ([`Transport`]: plain TCP, or TLS on top of it), and one wait for whichever
//! comes first of bytes, a command and a deadline.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

/// A connection's byte stream as its task drives it (one owner, so `&mut self`).
pub(crate) trait Transport: Send + 'static {
    /// Reads what has arrived; `Ok(0)` is the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes some of `buf`.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
}

/// Writes all of `buf`.
pub(crate) async fn write_all(t: &mut dyn Transport, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::future::poll_fn(|cx| t.poll_write(cx, buf)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// What woke a connection task.
pub(crate) enum Wake<C> {
    /// Bytes were read into the space given (`Ok(0)`: end of stream).
    Read(io::Result<usize>),
    /// A command, or `None` when every sender is gone.
    Command(Option<C>),
    /// The deadline passed.
    Deadline,
}

/// The timer a task sleeps on ([`crate::Timer`]).
pub(crate) type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Waits for the first of: bytes from `t` into `space`, a command, `deadline`.
pub(crate) async fn wait<C>(
    t: &mut dyn Transport,
    space: &mut [u8],
    commands: &async_channel::Receiver<C>,
    deadline: Option<&mut Sleep>,
) -> Wake<C> {
    let mut recv = pin!(commands.recv());
    let mut deadline = deadline;
    let reading = !space.is_empty();
    std::future::poll_fn(|cx| {
        if let Poll::Ready(c) = recv.as_mut().poll(cx) {
            return Poll::Ready(Wake::Command(c.ok()));
        }
        if reading {
            if let Poll::Ready(r) = t.poll_read(cx, space) {
                return Poll::Ready(Wake::Read(r));
            }
        }
        if let Some(d) = deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Deadline);
            }
        }
        Poll::Pending
    })
    .await
}

/// `work`'s output, or `None` if `deadline` comes first.
pub(crate) async fn first_of<T>(work: impl Future<Output = T>, deadline: Sleep) -> Option<T> {
    let mut work = pin!(work);
    let mut deadline = deadline;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}
