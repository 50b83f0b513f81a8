//! The endpoint as embassy tasks share it, and the loop that drives it over a UDP socket.

use core::cell::{Cell, RefCell, RefMut};
use core::future::pending;

use coap_core::{
    Block, BuildError, Config, Event, FailReason, Handler, Instant, ResponseHandle, ResponseWriter,
};
use embassy_futures::select::{select3, Either3};
use embassy_net::udp::{RecvError, UdpSocket};
use embassy_net::IpEndpoint;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::Timer;

use crate::error::Error;
use crate::exchange::{Exchange, Use};

/// The core endpoint over embassy-net addresses.
pub(crate) type CoreEndpoint<const N: usize, const M: usize, const D: usize, const O: usize> =
    coap_core::Endpoint<IpEndpoint, N, M, D, O>;

/// Room kept in a message for the header, token and options around a block (Uri-Path,
/// Content-Format, Block1, Size1, Request-Tag, ...).
const BLOCK_OVERHEAD: usize = 128;

/// Now on the core's clock: embassy-time's monotonic milliseconds since boot.
pub fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

pub(crate) struct Inner<
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
    const K: usize,
    const B: usize,
> {
    pub endpoint: CoreEndpoint<N, M, D, O>,
    pub exchanges: [Exchange<B>; K],
}

/// A CoAP endpoint for embassy: the core [`coap_core::Endpoint`] (`N` message slots of `M`
/// bytes, `D` duplicate-detection entries, `O` observers) and `K` client exchanges that
/// reassemble response bodies of up to `B` bytes. One task runs [`Endpoint::run`]; other
/// tasks of the same executor use [`Endpoint::client`], [`Endpoint::notify`] and
/// [`Endpoint::respond`].
///
/// Nothing is allocated: put it in a `StaticCell` (or any place that outlives the tasks).
/// The defaults suit a small device: 4 slots of 512 bytes (RFC 7252 §4.6 lets a constrained
/// endpoint use smaller messages than 1152 bytes; block-wise transfers carry the rest),
/// 2 client exchanges with 1 KiB bodies. A server-only device sets `K = 0`.
pub struct Endpoint<
    const N: usize = 4,
    const M: usize = 512,
    const D: usize = 8,
    const O: usize = 2,
    const K: usize = 2,
    const B: usize = 1024,
> {
    pub(crate) inner: RefCell<Inner<N, M, D, O, K, B>>,
    /// Exchanges whose client future was dropped while the endpoint was in use (from
    /// inside a handler): the runner cancels and frees them.
    pub(crate) orphans: [Cell<bool>; K],
    /// Wakes the runner: a client, a notification or a deferred response has something
    /// for it to send.
    pub(crate) wake: Signal<NoopRawMutex, ()>,
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Endpoint<N, M, D, O, K, B>
{
    /// A new endpoint. `seed` feeds the Message IDs, tokens and back-off jitter: take it
    /// from the hardware RNG (RFC 7252 §5.3.1, §11.4).
    ///
    /// `config.max_block_szx` is lowered so that a block and its request's header and
    /// options fit in an `M`-byte message (RFC 7959 §2.2: blocks are powers of two from
    /// 16 to 1024 bytes; the core sizes uploads by this value alone).
    pub fn new(mut config: Config, seed: u64) -> Self {
        config.max_block_szx = config
            .max_block_szx
            .min(Block::szx_for(M.saturating_sub(BLOCK_OVERHEAD)));
        Endpoint {
            inner: RefCell::new(Inner {
                endpoint: CoreEndpoint::new(config, seed),
                exchanges: [const { Exchange::new() }; K],
            }),
            orphans: [const { Cell::new(false) }; K],
            wake: Signal::new(),
        }
    }

    /// The endpoint's state for a call from a task; `Busy` from inside one of its own
    /// handlers or render closures (the runner holds it then).
    pub(crate) fn lock(&self) -> Result<RefMut<'_, Inner<N, M, D, O, K, B>>, Error> {
        self.inner.try_borrow_mut().map_err(|_| Error::Busy)
    }

    /// Runs `f` on the core endpoint (statistics, slots in use); `None` from inside one of
    /// the endpoint's handlers.
    pub fn with_core<R>(&self, f: impl FnOnce(&CoreEndpoint<N, M, D, O>) -> R) -> Option<R> {
        self.inner.try_borrow().ok().map(|i| f(&i.endpoint))
    }

    /// Sends a notification to every observer of `key` (RFC 7641 §4.2); see
    /// [`coap_core::Endpoint::notify`]. Returns how many were queued: 0 also when called
    /// from inside one of this endpoint's handlers (notify from a task instead, e.g. one a
    /// handler signals).
    pub fn notify(
        &self,
        key: u32,
        render: impl FnMut(IpEndpoint, &mut ResponseWriter<'_>) -> Result<(), BuildError>,
    ) -> usize {
        let Ok(mut inner) = self.lock() else {
            return 0;
        };
        let n = inner.endpoint.notify(now(), key, render);
        drop(inner);
        self.wake.signal(());
        n
    }

    /// Answers a request its handler deferred ([`coap_core::Outcome::Defer`]): piggybacked
    /// if the ACK has not gone out, else a separate response (RFC 7252 §5.2.2). `Busy`
    /// from inside one of this endpoint's handlers.
    pub fn respond(
        &self,
        handle: ResponseHandle,
        build: impl FnOnce(&mut ResponseWriter<'_>) -> Result<(), BuildError>,
    ) -> Result<(), Error> {
        let r = self.lock()?.endpoint.respond(now(), handle, build);
        self.wake.signal(());
        r.map_err(Error::from)
    }

    /// Drives the endpoint over `socket` (bound by the caller, e.g. to port 5683), serving
    /// requests with `handler`: sends what the core has to send, feeds it datagrams and
    /// timer expiries, and hands responses to the client tasks waiting for them. Never
    /// returns; run it in a task of its own (one per endpoint).
    ///
    /// Datagrams larger than `M` bytes are dropped (RFC 7252 §4.6: this endpoint announced
    /// nothing larger; block-wise transfers keep messages small).
    pub async fn run<H: Handler<IpEndpoint>>(&self, socket: &UdpSocket<'_>, handler: &mut H) -> ! {
        let mut rx = [0u8; M];
        let mut tx = [0u8; M];
        loop {
            self.flush(socket, &mut tx).await;
            self.dispatch_events();
            let deadline = self.inner.borrow().endpoint.poll_timeout();
            let timer = async {
                match deadline {
                    Some(t) => Timer::at(embassy_time::Instant::from_millis(t.as_millis())).await,
                    None => pending().await,
                }
            };
            match select3(socket.recv_from(&mut rx), timer, self.wake.wait()).await {
                Either3::First(Ok((n, meta))) => {
                    let bytes = rx.get(..n).unwrap_or_default();
                    let peer = meta.endpoint;
                    let mut inner = self.inner.borrow_mut();
                    // RFC 7252 §8: a datagram to a group the stack joined
                    // (`Stack::join_multicast_group`) is a multicast request; the core
                    // applies the rules (leisure, no ACK/RST, errors suppressed). The
                    // response leaves from the interface's unicast address.
                    if meta.local_address.is_some_and(|a| a.is_multicast()) {
                        inner
                            .endpoint
                            .handle_group_datagram(now(), peer, bytes, handler);
                    } else {
                        inner.endpoint.handle_datagram(now(), peer, bytes, handler);
                    }
                }
                Either3::First(Err(RecvError::Truncated)) => {
                    warn!("coap: dropped a datagram larger than {=usize} bytes", M);
                }
                Either3::Second(()) => self.inner.borrow_mut().endpoint.handle_timeout(now()),
                Either3::Third(()) => {}
            }
        }
    }

    /// Sends every datagram the core has ready.
    async fn flush(&self, socket: &UdpSocket<'_>, tx: &mut [u8; M]) {
        // Bounded: the core queues at most N slots plus N control messages, and nothing
        // new is queued while we send (the borrow ends before each await).
        for _ in 0..2 * N + 1 {
            let Some(t) = self.inner.borrow_mut().endpoint.poll_transmit(now(), tx) else {
                return;
            };
            let bytes = tx.get(..t.len).unwrap_or_default();
            if let Err(e) = socket.send_to(bytes, t.peer).await {
                // No route (yet) or a datagram over the socket's buffer: the message layer
                // retransmits a CON; a NON is lost as it might be on the wire (§4.3).
                warn!("coap: send failed: {}", e);
            }
        }
    }

    /// Hands the core's events to the client exchanges waiting for them.
    fn dispatch_events(&self) {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            endpoint,
            exchanges,
        } = &mut *inner;
        for (x, orphan) in exchanges.iter_mut().zip(&self.orphans) {
            if orphan.replace(false) {
                if let (Some(id), false) = (x.id(), x.ended) {
                    endpoint.cancel(id);
                }
                x.reset();
            }
        }
        while let Some(event) = endpoint.poll_event() {
            let id = event.id();
            let Some(x) = exchanges.iter_mut().find(|x| x.id() == Some(id)) else {
                debug!("coap: event for a forgotten request");
                continue;
            };
            let observation = matches!(x.use_, Use::Observation(_));
            let forget = match event {
                Event::Response { message, .. } => {
                    match x.store(&message) {
                        Ok(_) => {
                            x.ended = true;
                            x.deliver();
                        }
                        Err(e) => x.fail(e),
                    }
                    false
                }
                Event::Notification { message, .. } | Event::Block { message, .. } => {
                    match x.store(&message) {
                        Ok(true) => {
                            // A plain request answered with a notification (its options
                            // asked to observe) takes it as its response and forgets the
                            // observation (RFC 7641 §3.6, passive cancel).
                            let done = !observation;
                            x.ended = done;
                            x.deliver();
                            done
                        }
                        Ok(false) => false,
                        Err(e) => {
                            x.fail(e);
                            true
                        }
                    }
                }
                Event::Continue { offset, size, .. } => {
                    x.continue_at = Some((offset, size));
                    x.waker.wake();
                    false
                }
                Event::Failed { reason, .. } => {
                    x.fail(match reason {
                        FailReason::RepresentationChanged => Error::RepresentationChanged,
                        FailReason::Unreachable(why) => Error::Unreachable(why),
                    });
                    false
                }
                Event::NoResponse { .. } => {
                    x.fail(Error::NoResponse);
                    false
                }
                Event::Timeout { .. } => {
                    x.fail(Error::Timeout);
                    false
                }
                Event::Reset { .. } => {
                    x.fail(Error::Reset);
                    false
                }
            };
            if forget {
                // Its remaining events (and later notifications) are dropped by the core.
                endpoint.cancel(id);
            }
        }
    }
}
