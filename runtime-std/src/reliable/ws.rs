//! CoAP over WebSockets (`coap+ws`, RFC 8323 §4): tungstenite's WebSocket protocol, run
//! over in-memory buffers that the connection task fills from and drains to the runtime's
//! TCP stream, so that WebSockets stay runtime-generic like TCP and TLS.
//!
//! §4.1: the client opens `/.well-known/coap` with the subprotocol `coap`; the server
//! refuses other paths (404) and a handshake without the subprotocol (400). §4.2: one
//! CoAP message per binary frame, `Len` zero, no extended length. §4.3: anything but
//! binary frames fails the connection.
//!
//! The connection tasks read and write the byte stream of §3.2 whatever the transport:
//! this layer turns each frame's message into that form on the way in (the length from
//! the frame, put into `Len` and the extended length) and each message of the stream into
//! one frame on the way out (`Len` set to zero). A malformed frame becomes bytes the
//! framer refuses, so that the connection answers it with Abort as over TCP.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use coap_core::reliable::FrameHead;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::io::Transport;

/// The WebSocket subprotocol of CoAP (RFC 8323 §4.1, §11.1).
pub const SUBPROTOCOL: &str = "coap";
/// The path a CoAP WebSocket is opened at (RFC 8323 §4.1, §11.3).
pub const PATH: &str = "/.well-known/coap";

/// What tungstenite reads from and writes to: bytes received not yet taken, bytes to
/// send not yet written to the stream. The second is shared with the task: a refused
/// handshake's HTTP answer (404, 400) is written while tungstenite fails, and the task
/// still sends it.
#[derive(Default)]
struct Mem {
    rx: Vec<u8>,
    tx: Arc<Mutex<Vec<u8>>>,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rx.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.rx.len());
        buf[..n].copy_from_slice(&self.rx[..n]);
        self.rx.drain(..n);
        Ok(n)
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut tx = self.tx.lock().map_err(|_| io::Error::other("poisoned"))?;
        tx.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    // Bounded per connection: one CoAP message is at most what we send or accept (the
    // framer then holds it to the Max-Message-Size announced).
    c.read_buffer_size = 4096;
    c.max_message_size = Some(super::MAX_SEND);
    c.max_frame_size = Some(super::MAX_SEND);
    c
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {e}")),
    }
}

/// A CoAP WebSocket over another transport.
pub(crate) struct Ws {
    inner: Box<dyn Transport>,
    ws: WebSocket<Mem>,
    /// The frames tungstenite wrote (its `Mem`'s side).
    tx: Arc<Mutex<Vec<u8>>>,
    /// Messages received, in the stream form of §3.2, not yet read.
    incoming: Vec<u8>,
    /// Stream bytes written, not yet a whole message.
    outgoing: Vec<u8>,
    closed: bool,
}

/// Moves what tungstenite wrote to the stream as far as it takes it.
fn poll_drain(
    inner: &mut dyn Transport,
    tx: &Mutex<Vec<u8>>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let mut tx = tx.lock().map_err(|_| io::Error::other("poisoned"))?;
    while !tx.is_empty() {
        let n = std::task::ready!(inner.poll_write(cx, &tx))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        tx.drain(..n);
    }
    Poll::Ready(Ok(()))
}

/// Reads what the stream has into `mem`; `Ok(false)` at its end.
fn poll_fill(
    inner: &mut dyn Transport,
    mem: &mut Mem,
    cx: &mut Context<'_>,
) -> Poll<io::Result<bool>> {
    let mut chunk = [0u8; 4096];
    let n = std::task::ready!(inner.poll_read(cx, &mut chunk))?;
    mem.rx.extend_from_slice(&chunk[..n]);
    Poll::Ready(Ok(n > 0))
}

/// A handshake step that needs more input: what it wrote goes out, then whatever the
/// peer sent next comes in.
async fn handshake_io(inner: &mut dyn Transport, mem: &mut Mem) -> io::Result<()> {
    let tx = mem.tx.clone();
    std::future::poll_fn(|cx| poll_drain(inner, &tx, cx)).await?;
    if std::future::poll_fn(|cx| poll_fill(inner, mem, cx)).await? {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection during the WebSocket handshake",
        ))
    }
}

impl Ws {
    /// The server's handshake (§4.1) on an accepted connection.
    // tungstenite's `Callback` returns its `ErrorResponse` by value.
    #[allow(clippy::result_large_err)]
    pub(crate) async fn accept(mut inner: Box<dyn Transport>) -> io::Result<Ws> {
        let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            let refuse = |code: u16, why: &str| {
                let mut r = ErrorResponse::new(Some(why.to_owned()));
                *r.status_mut() = tungstenite::http::StatusCode::from_u16(code)
                    .unwrap_or(tungstenite::http::StatusCode::BAD_REQUEST);
                r
            };
            if req.uri().path() != PATH {
                return Err(refuse(404, "CoAP is at /.well-known/coap"));
            }
            let offered = req
                .headers()
                .get_all("Sec-WebSocket-Protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim() == SUBPROTOCOL);
            if !offered {
                return Err(refuse(400, "the WebSocket subprotocol coap is required"));
            }
            resp.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
            );
            Ok(resp)
        };
        let mem = Mem::default();
        let tx = mem.tx.clone();
        let mut step = tungstenite::accept_hdr_with_config(mem, callback, Some(config()));
        loop {
            match step {
                Ok(ws) => {
                    // The 101 response goes out now.
                    std::future::poll_fn(|cx| poll_drain(&mut *inner, &tx, cx)).await?;
                    return Ok(Ws::new(inner, ws, tx));
                }
                Err(HandshakeError::Failure(e)) => {
                    // The refusal (404, 400) goes out before the connection closes.
                    let _ = std::future::poll_fn(|cx| poll_drain(&mut *inner, &tx, cx)).await;
                    return Err(ws_error(e));
                }
                Err(HandshakeError::Interrupted(mut mid)) => {
                    handshake_io(&mut *inner, mid.get_mut().get_mut()).await?;
                    step = mid.handshake();
                }
            }
        }
    }

    /// The client's handshake (§4.1): `host` (with port) as the Host header.
    pub(crate) async fn connect(mut inner: Box<dyn Transport>, host: &str) -> io::Result<Ws> {
        use tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{host}{PATH}")
            .into_client_request()
            .map_err(ws_error)?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
        );
        let mem = Mem::default();
        let tx = mem.tx.clone();
        let mut step = tungstenite::client::client_with_config(request, mem, Some(config()));
        loop {
            match step {
                Ok((ws, _)) => return Ok(Ws::new(inner, ws, tx)),
                Err(HandshakeError::Failure(e)) => return Err(ws_error(e)),
                Err(HandshakeError::Interrupted(mut mid)) => {
                    handshake_io(&mut *inner, mid.get_mut().get_mut()).await?;
                    step = mid.handshake();
                }
            }
        }
    }

    fn new(inner: Box<dyn Transport>, ws: WebSocket<Mem>, tx: Arc<Mutex<Vec<u8>>>) -> Ws {
        Ws {
            inner,
            ws,
            tx,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            closed: false,
        }
    }
}

/// One frame's message in the stream form of §3.2: `Len` and the extended length from
/// the frame's length. A frame that is no well-delimited message becomes a reserved token
/// length, which the framer refuses (Abort).
fn to_stream(frame: &[u8], out: &mut Vec<u8>) {
    let Some(&first) = frame.first() else {
        // An empty frame: no message at all.
        return out.push(0x0f);
    };
    let tkl = usize::from(first & 0x0f);
    if first >> 4 != 0 || tkl > 8 || frame.len() < 2 + tkl {
        return out.push(0x0f);
    }
    let body = frame.len() - 2 - tkl;
    match body {
        0..=12 => out.push(((body as u8) << 4) | tkl as u8),
        13..=268 => out.extend([0xd0 | tkl as u8, (body - 13) as u8]),
        269..=65804 => {
            out.push(0xe0 | tkl as u8);
            out.extend(((body - 269) as u16).to_be_bytes());
        }
        _ => {
            out.push(0xf0 | tkl as u8);
            out.extend(((body - 65805) as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(&frame[1..]);
}

/// The first whole message of `stream` as a frame's message (§4.2: `Len` zero), and
/// how many stream bytes it took; `None` until a whole message is there.
fn to_frame(stream: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let head = FrameHead::peek(stream)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let Some(head) = head else { return Ok(None) };
    let total = usize::try_from(head.total_len).unwrap_or(usize::MAX);
    if stream.len() < total {
        return Ok(None);
    }
    let tkl = usize::from(head.token_len);
    let code_at = head.header_len - 1 - tkl;
    let mut m = Vec::with_capacity(total);
    m.push(tkl as u8);
    m.extend_from_slice(&stream[code_at..total]);
    Ok(Some((m, total)))
}

impl Transport for Ws {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if !self.incoming.is_empty() {
                let n = buf.len().min(self.incoming.len());
                buf[..n].copy_from_slice(&self.incoming[..n]);
                self.incoming.drain(..n);
                return Poll::Ready(Ok(n));
            }
            if self.closed {
                return Poll::Ready(Ok(0));
            }
            match self.ws.read() {
                Ok(Message::Binary(frame)) => {
                    to_stream(&frame, &mut self.incoming);
                    continue;
                }
                // §4.3: only binary frames carry CoAP; anything else fails the connection.
                Ok(Message::Text(_)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket: a text frame (CoAP uses binary frames only)",
                    )))
                }
                Ok(Message::Close(_)) => self.closed = true,
                // Pings are answered by tungstenite (the Pong goes out with the flush).
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.closed = true
                }
                Err(e) => return Poll::Ready(Err(ws_error(e))),
            }
            let _ = self.ws.flush();
            if let Poll::Ready(Err(e)) = poll_drain(&mut *self.inner, &self.tx, cx) {
                return Poll::Ready(Err(e));
            }
            if self.closed {
                continue;
            }
            if !std::task::ready!(poll_fill(&mut *self.inner, self.ws.get_mut(), cx))? {
                return Poll::Ready(Ok(0));
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Backpressure: frames the stream has not taken come first.
        if self.tx.lock().is_ok_and(|t| !t.is_empty()) {
            std::task::ready!(poll_drain(&mut *self.inner, &self.tx, cx))?;
        }
        self.outgoing.extend_from_slice(buf);
        while let Some((frame, used)) = to_frame(&self.outgoing)? {
            self.outgoing.drain(..used);
            self.ws.write(Message::binary(frame)).map_err(ws_error)?;
        }
        self.ws.flush().or_else(|e| match e {
            tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            e => Err(ws_error(e)),
        })?;
        match poll_drain(&mut *self.inner, &self.tx, cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(buf.len())),
        }
    }
}
