//! The client side: requests (block-wise when large, RFC 7959) and observations
//! (RFC 7641) from any task, each waiting on its exchange while the runner task drives
//! the endpoint.

use core::future::poll_fn;
use core::task::Poll;
use core::time::Duration;

use coap_core::uri::{Scheme, Uri, UriError};
use coap_core::{
    BuildError, Code, ContentFormat, Host, MessageBuilder, MessageType, OptionNumber, RequestId,
    RequestParams,
};
use embassy_net::{IpAddress, IpEndpoint};

use crate::endpoint::{now, Endpoint, Inner};
use crate::error::Error;
use crate::exchange::{Delivery, Head, Use};

/// A response (or notification), its body copied into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'b> {
    /// The response code (e.g. 2.05 Content).
    pub code: Code,
    /// The Content-Format option.
    pub content_format: Option<u16>,
    /// The Observe option of a notification (RFC 7641).
    pub observe: Option<u32>,
    /// The whole representation (reassembled from its blocks, RFC 7959).
    pub payload: &'b [u8],
}

/// A request to send with [`Client::send`].
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub(crate) code: Code,
    pub(crate) uri: &'a str,
    pub(crate) ty: MessageType,
    content_format: Option<ContentFormat>,
    accept: Option<ContentFormat>,
    pub(crate) payload: &'a [u8],
    pub(crate) timeout: Option<Duration>,
    observe: bool,
}

impl<'a> Request<'a> {
    /// A confirmable request to `uri` (`coap://` with an IP-literal host): `method` is a
    /// [`coap_core::Method`] as the std clients take it (`Method::Put`), or any request
    /// [`Code`].
    pub fn new(method: impl Into<Code>, uri: &'a str) -> Self {
        Request {
            code: method.into(),
            uri,
            ty: MessageType::Con,
            content_format: None,
            accept: None,
            payload: &[],
            timeout: None,
            observe: false,
        }
    }

    /// GET `uri`.
    pub fn get(uri: &'a str) -> Self {
        Request::new(Code::GET, uri)
    }

    /// The payload; sent block-wise (Block1, RFC 7959 §2.5) if larger than a block.
    pub fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// The Content-Format option of the payload (a [`ContentFormat`] or its number).
    pub fn content_format(mut self, format: impl Into<ContentFormat>) -> Self {
        self.content_format = Some(format.into());
        self
    }

    /// The Accept option (a [`ContentFormat`] or its number).
    pub fn accept(mut self, format: impl Into<ContentFormat>) -> Self {
        self.accept = Some(format.into());
        self
    }

    /// Non-confirmable (NON) instead of CON.
    pub fn non(mut self) -> Self {
        self.ty = MessageType::Non;
        self
    }

    /// The total deadline (default: `Config::request_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn params(&self) -> RequestParams {
        RequestParams {
            code: self.code,
            ty: self.ty,
            timeout: self.timeout,
            token: None,
        }
    }

    /// The options (no payload: an upload sends it in blocks).
    pub(crate) fn write_options(
        &self,
        uri: &Uri<'_>,
        b: &mut MessageBuilder<'_>,
    ) -> Result<(), BuildError> {
        if self.observe {
            // RFC 7641 §2: Observe=0 registers (an empty uint is 0).
            b.option(OptionNumber::OBSERVE, &[])?;
        }
        uri.write_options(b).map_err(|e| match e {
            UriError::Build(e) => e,
            _ => BuildError::BufferTooSmall,
        })?;
        if let Some(f) = self.content_format {
            b.option_uint(OptionNumber::CONTENT_FORMAT, u32::from(f.0))?;
        }
        if let Some(f) = self.accept {
            b.option_uint(OptionNumber::ACCEPT, u32::from(f.0))?;
        }
        Ok(())
    }
}

/// Where a URI says to send (RFC 7252 §6.4): an IP literal and port; no resolver here.
pub(crate) fn peer_of(uri: &Uri<'_>) -> Result<IpEndpoint, Error> {
    if uri.scheme() != Scheme::Coap {
        return Err(Error::InvalidUri(UriError::UnsupportedScheme));
    }
    let Host::Ip(ip) = uri.host() else {
        return Err(Error::UnsupportedHost);
    };
    let addr: IpAddress = match ip {
        #[cfg(feature = "proto-ipv4")]
        core::net::IpAddr::V4(a) => IpAddress::Ipv4(a),
        #[cfg(feature = "proto-ipv6")]
        core::net::IpAddr::V6(a) => IpAddress::Ipv6(a),
        #[allow(unreachable_patterns)]
        _ => return Err(Error::UnsupportedHost),
    };
    Ok(IpEndpoint::new(addr, uri.port()))
}

/// The client side of an [`Endpoint`]: cheap to copy, usable from any task on the
/// endpoint's executor while [`Endpoint::run`] runs.
pub struct Client<
    'e,
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
    const K: usize,
    const B: usize,
> {
    pub(crate) endpoint: &'e Endpoint<N, M, D, O, K, B>,
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
    /// The client side of this endpoint (cheap to copy; any number of tasks may hold one).
    pub fn client(&self) -> Client<'_, N, M, D, O, K, B> {
        Client { endpoint: self }
    }
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Clone for Client<'_, N, M, D, O, K, B>
{
    fn clone(&self) -> Self {
        *self
    }
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Copy for Client<'_, N, M, D, O, K, B>
{
}

impl<
        'e,
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Client<'e, N, M, D, O, K, B>
{
    /// GET `uri`; the body (reassembled from Block2 blocks if large) goes into `buf`.
    pub async fn get<'b>(&self, uri: &str, buf: &'b mut [u8]) -> Result<Response<'b>, Error> {
        self.send(Request::get(uri), buf).await
    }

    /// PUT `payload` to `uri` (block-wise if larger than a block, RFC 7959 §2.5).
    pub async fn put<'b>(
        &self,
        uri: &str,
        format: ContentFormat,
        payload: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let r = Request::new(Code::PUT, uri)
            .content_format(format)
            .payload(payload);
        self.send(r, buf).await
    }

    /// POST `payload` to `uri` (block-wise if larger than a block).
    pub async fn post<'b>(
        &self,
        uri: &str,
        format: ContentFormat,
        payload: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let r = Request::new(Code::POST, uri)
            .content_format(format)
            .payload(payload);
        self.send(r, buf).await
    }

    /// DELETE `uri`.
    pub async fn delete<'b>(&self, uri: &str, buf: &'b mut [u8]) -> Result<Response<'b>, Error> {
        self.send(Request::new(Code::DELETE, uri), buf).await
    }

    /// Sends `request` and waits for its response; the body goes into `buf`. Dropping the
    /// future cancels the exchange (a late response is then rejected, RFC 7252 §5.3.2).
    pub async fn send<'b>(
        &self,
        request: Request<'_>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let mut x = self.start(request)?;
        let delivery = x.next_delivery(Some(request.payload)).await;
        x.take(delivery, buf)
    }

    /// Observes `uri` (RFC 7641): registers with a GET carrying Observe=0. The first item
    /// of the returned [`Observation`] is the registration's response.
    pub async fn observe(&self, uri: &str) -> Result<Observation<'e, N, M, D, O, K, B>, Error> {
        let mut request = Request::get(uri);
        request.observe = true;
        let x = self.start(request)?;
        Ok(Observation { x })
    }

    /// Claims an exchange and starts a request that `build` writes in full (options and
    /// payload; no Block1 upload): the EDHOC and OSCORE requests, which this crate
    /// builds itself.
    #[cfg(feature = "oscore")]
    pub(crate) fn start_raw(
        &self,
        peer: IpEndpoint,
        params: RequestParams,
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
    ) -> Result<ExchangeRef<'e, N, M, D, O, K, B>, Error> {
        let ep = self.endpoint;
        let mut inner = ep.lock()?;
        let Inner {
            endpoint,
            exchanges,
        } = &mut *inner;
        let (index, x) = exchanges
            .iter_mut()
            .enumerate()
            .find(|(_, x)| x.use_ == Use::Free)
            .ok_or(Error::Busy)?;
        x.reset();
        let id = endpoint.request(now(), peer, params, build)?;
        x.use_ = Use::Request(id);
        drop(inner);
        ep.wake.signal(());
        Ok(ExchangeRef {
            endpoint: ep,
            index,
            id,
        })
    }

    /// Claims an exchange and starts the request in the core.
    fn start(&self, request: Request<'_>) -> Result<ExchangeRef<'e, N, M, D, O, K, B>, Error> {
        let uri = Uri::parse(request.uri)?;
        let peer = peer_of(&uri)?;
        let ep = self.endpoint;
        let mut inner = ep.lock()?;
        let Inner {
            endpoint,
            exchanges,
        } = &mut *inner;
        let (index, x) = exchanges
            .iter_mut()
            .enumerate()
            .find(|(_, x)| x.use_ == Use::Free)
            .ok_or(Error::Busy)?;
        x.reset();
        let t = now();
        let block = endpoint.upload_block_size();
        let payload = request.payload;
        let started = if payload.len() > block {
            // RFC 7959 §2.5: a body larger than a block goes in Block1 blocks; the core
            // asks for each next one with Event::Continue.
            let first = payload.get(..block).unwrap_or_default();
            endpoint.upload(
                t,
                peer,
                request.params(),
                payload.len(),
                |b| request.write_options(&uri, b),
                first,
            )
        } else {
            endpoint.request(t, peer, request.params(), |b| {
                request.write_options(&uri, b)?;
                b.payload(payload)?;
                Ok(())
            })
        };
        let id = started?;
        x.use_ = if request.observe {
            Use::Observation(id)
        } else {
            Use::Request(id)
        };
        drop(inner);
        ep.wake.signal(());
        Ok(ExchangeRef {
            endpoint: ep,
            index,
            id,
        })
    }
}

/// A claimed exchange; dropping it cancels the core request and frees the exchange.
pub(crate) struct ExchangeRef<
    'e,
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
    const K: usize,
    const B: usize,
> {
    pub(crate) endpoint: &'e Endpoint<N, M, D, O, K, B>,
    pub(crate) index: usize,
    id: RequestId,
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > ExchangeRef<'_, N, M, D, O, K, B>
{
    /// Waits for the next delivery (`None`: the exchange ended with nothing more),
    /// sending the blocks of an upload of `payload` as the server asks for them.
    pub(crate) async fn next_delivery(&mut self, payload: Option<&[u8]>) -> Option<Delivery> {
        poll_fn(|cx| {
            let Ok(mut inner) = self.endpoint.inner.try_borrow_mut() else {
                // Polled from inside one of the endpoint's handlers: try again later.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            };
            let Inner {
                endpoint,
                exchanges,
            } = &mut *inner;
            let Some(x) = exchanges.get_mut(self.index) else {
                return Poll::Ready(None);
            };
            if let Some(d) = x.delivery.take() {
                return Poll::Ready(Some(d));
            }
            if x.ended {
                return Poll::Ready(None);
            }
            if let (Some((offset, size)), Some(body)) = (x.continue_at.take(), payload) {
                // RFC 7959 §2.5: the next block, in the size the server accepts.
                let end = offset.saturating_add(size).min(body.len());
                let chunk = body.get(offset..end).unwrap_or_default();
                if let Err(e) = endpoint.upload_next(now(), self.id, chunk, end == body.len()) {
                    endpoint.cancel(self.id);
                    x.ended = true;
                    return Poll::Ready(Some(Delivery::Failed(e.into())));
                }
                self.endpoint.wake.signal(());
            }
            x.waker.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Copies a delivery out into `buf`.
    pub(crate) fn take<'b>(
        &self,
        delivery: Option<Delivery>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let head: Head = match delivery {
            Some(Delivery::Message(head)) => head,
            Some(Delivery::Failed(e)) => return Err(e),
            None => return Err(Error::Timeout),
        };
        let inner = self.endpoint.inner.try_borrow().map_err(|_| Error::Busy)?;
        let body = inner
            .exchanges
            .get(self.index)
            .map(|x| x.body())
            .unwrap_or_default();
        let dst = buf.get_mut(..body.len()).ok_or(Error::BufferTooSmall)?;
        dst.copy_from_slice(body);
        Ok(Response {
            code: head.code,
            content_format: head.content_format,
            observe: head.observe,
            payload: dst,
        })
    }

    /// Whether the exchange has ended (no delivery follows).
    fn ended(&self) -> bool {
        self.endpoint
            .inner
            .try_borrow()
            .is_ok_and(|i| i.exchanges.get(self.index).is_none_or(|x| x.ended))
    }
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Drop for ExchangeRef<'_, N, M, D, O, K, B>
{
    fn drop(&mut self) {
        let Ok(mut inner) = self.endpoint.inner.try_borrow_mut() else {
            // Dropped from inside one of the endpoint's handlers: the runner frees it.
            if let Some(o) = self.endpoint.orphans.get(self.index) {
                o.set(true);
            }
            self.endpoint.wake.signal(());
            return;
        };
        let Inner {
            endpoint,
            exchanges,
        } = &mut *inner;
        if let Some(x) = exchanges.get_mut(self.index) {
            // Still going (an observation, or a future dropped before its outcome):
            // cancel it; later responses are answered with RST (RFC 7252 §5.3.2,
            // RFC 7641 §3.6).
            if !x.ended {
                endpoint.cancel(self.id);
            }
            x.reset();
        }
    }
}

/// An observation (RFC 7641): the notifications of a resource. A notification the task
/// has not taken yet is replaced by a newer one (§1.3: the newest state is what matters).
/// Dropping it forgets the observation (the next notification gets RST, §3.6).
pub struct Observation<
    'e,
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
    const K: usize,
    const B: usize,
> {
    x: ExchangeRef<'e, N, M, D, O, K, B>,
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const K: usize,
        const B: usize,
    > Observation<'_, N, M, D, O, K, B>
{
    /// The next notification, its body copied into `buf`; the first is the
    /// registration's response. `None` once the observation has ended (after its final
    /// response — one without Observe — or an error).
    pub async fn next<'b>(&mut self, buf: &'b mut [u8]) -> Option<Result<Response<'b>, Error>> {
        let d = self.x.next_delivery(None).await?;
        Some(self.x.take(Some(d), buf))
    }

    /// Notifications replaced by newer ones before [`Observation::next`] took them.
    pub fn missed(&self) -> u32 {
        self.x.endpoint.inner.try_borrow().map_or(0, |i| {
            i.exchanges.get(self.x.index).map_or(0, |x| x.overwritten)
        })
    }

    /// Deregisters actively (GET with Observe=1, RFC 7641 §3.6) and returns the server's
    /// final response, its body in `buf`.
    pub async fn cancel<'b>(mut self, buf: &'b mut [u8]) -> Result<Response<'b>, Error> {
        {
            let mut inner = self.x.endpoint.lock()?;
            let Inner {
                endpoint,
                exchanges,
            } = &mut *inner;
            endpoint.cancel_observe(now(), self.x.id)?;
            if let Some(x) = exchanges.get_mut(self.x.index) {
                // What comes now is the answer to the deregistration.
                x.delivery = None;
            }
        }
        self.x.endpoint.wake.signal(());
        // Bounded by the core: the exchange ends with the final response or a timeout;
        // notifications still on the way are skipped.
        loop {
            let d = self.x.next_delivery(None).await.ok_or(Error::Timeout)?;
            if self.x.ended() {
                return self.x.take(Some(d), buf);
            }
        }
    }
}
