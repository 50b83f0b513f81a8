//! The client side: before the first request to a URI whose credential is `edhoc-oscore`,
//! the Initiator runs EDHOC (RFC 9528) with the server's `/.well-known/edhoc` resource over
//! plain CoAP (RFC 9528 Appendix A.2), and the OSCORE context it derives (Appendix A.1)
//! then protects that request and the later ones to the same server.
//!
//! Plain flow: POST `true, message_1` → message_2; POST `C_R, message_3` → message_4 (if
//! the Responder sends one, it is verified: key confirmation, §5.5). Combined flow (RFC
//! 9668): message_3 rides in the first OSCORE request instead, which saves a round trip;
//! the loop puts it there (`Driver`), and an EDHOC error in answer to it fails the request
//! with [`ClientError::Edhoc`].

use std::collections::HashMap;
use std::net::SocketAddr;

use coap_core::edhoc::initiator::SUITES_I;
use coap_core::edhoc::wire::{
    self, write_continue_request, write_message_1_request, CID_EDHOC_CBOR_SEQ, EDHOC_CBOR_SEQ,
};
use coap_core::edhoc::{ignore_ead, refuse_critical_ead, ConnId, Error, Initiator, RustCrypto};
use coap_core::oscore::ContextId;
use coap_core::{Code, Method};

use super::config::EdhocOscore;
use super::OsRng;
use crate::client::Handle;
use crate::command::{Cmd, Command};
use crate::oscore::plain;
use crate::response::{ClientError, Response};

/// The `/.well-known/edhoc` URI of the server `uri` names (RFC 9528 Appendix A.2).
fn edhoc_uri(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("coap", uri));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}/.well-known/edhoc", &rest[..end])
}

/// The EDHOC message of a response from the EDHOC resource (message_2, message_4 or
/// nothing, on 2.04), or why there is none.
fn edhoc_payload(response: &Response) -> Result<&[u8], ClientError> {
    let payload = response.payload.as_slice();
    if response.code == Code::CHANGED && !wire::is_error(payload) {
        return Ok(payload);
    }
    if response.code.class() == 2 {
        return Err(ClientError::Edhoc(Error::Malformed));
    }
    Err(refusal(response))
}

/// The error a server's refusal of the handshake is: its EDHOC error message
/// (application/edhoc+cbor-seq, RFC 9528 Appendix A.2.3, §6), or the bare response code
/// of a server that sends none (aiocoap 0.4.17 answers a failed MAC_3 with 5.00).
pub(crate) fn refusal(response: &Response) -> ClientError {
    let edhoc_format = response.content_format() == Some(EDHOC_CBOR_SEQ);
    match wire::parse_error(&response.payload) {
        Ok(e) if edhoc_format || response.content_format().is_none() => ClientError::EdhocPeer {
            code: e.code.value(),
            text: e.diagnostic.to_owned(),
        },
        _ => ClientError::EdhocStatus(response.code),
    }
}

impl Handle {
    /// Runs EDHOC (RFC 9528) with the server `uri` names, as `config` says (our key and
    /// credential, the server's credential, whether to combine), unless a session with it
    /// exists. Later requests to that server are protected with the session's OSCORE
    /// context (Appendix A.1) even without credentials naming it; in the combined flow
    /// message_3 rides in the next of them (RFC 9668).
    pub async fn edhoc(&self, uri: &str, config: &EdhocOscore) -> Result<(), ClientError> {
        let addr = self.addr_for(uri).await?;
        self.edhoc_session(uri, addr, config).await.map(|_| ())
    }

    /// The OSCORE context of the EDHOC session with `peer`, running the handshake first
    /// if there is none.
    pub(crate) async fn edhoc_session(
        &self,
        uri: &str,
        peer: SocketAddr,
        config: &EdhocOscore,
    ) -> Result<ContextId, ClientError> {
        if let Some(id) = self.sessions.get(peer) {
            return Ok(id);
        }
        let identity = config
            .own
            .key
            .identity(&config.own.ccs, config.own.transfer)
            .map_err(|_| ClientError::Edhoc(Error::InvalidIdentity))?;
        let trusted = [config
            .peer
            .credential()
            .map_err(|_| ClientError::Edhoc(Error::UnknownCredential))?];
        let c_i = self.free_connection_id().await?;
        let mut crypto = RustCrypto::new(OsRng);
        let mut m1 = [0u8; coap_core::edhoc::transport::MAX_MESSAGE_LEN];
        let (initiator, n) = Initiator::start(&mut crypto, identity, c_i, SUITES_I, None, &mut m1)
            .map_err(ClientError::Edhoc)?;
        let target = edhoc_uri(uri);
        let message_2 = self
            .edhoc_post(&target, peer, |out| write_message_1_request(&m1[..n], out))
            .await?;
        let mut m3 = [0u8; coap_core::edhoc::transport::MAX_MESSAGE_LEN];
        let established = initiator
            .message_2(
                &mut crypto,
                &trusted,
                edhoc_payload(&message_2)?,
                ignore_ead,
                &mut m3,
            )
            .map_err(ClientError::Edhoc)?;
        let message_3 = &m3[..established.message_3_len];
        let combined = if config.combined {
            Some(message_3.to_vec())
        } else {
            let answer = self
                .edhoc_post(&target, peer, |out| {
                    write_continue_request(&established.c_r, message_3, out)
                })
                .await?;
            let message_4 = edhoc_payload(&answer)?;
            // RFC 9528 §5.5: message_4 is optional; when it comes, it must verify.
            if !message_4.is_empty() {
                established
                    .awaiting
                    .message_4(&mut crypto, message_4, refuse_critical_ead)
                    .map_err(ClientError::Edhoc)?;
            }
            None
        };
        let (reply, answer) = async_channel::bounded(1);
        self.commands
            .try_send(Command(Cmd::EdhocContext {
                context: Box::new(established.context),
                peer,
                message_3: combined,
                reply,
            }))
            .map_err(|_| ClientError::Closed)?;
        let id = answer.recv().await.map_err(|_| ClientError::Closed)??;
        self.sessions.insert(peer, id);
        Ok(id)
    }

    /// A C_I no OSCORE context of the endpoint has as its Recipient ID (C_I becomes ours,
    /// RFC 9528 Appendix A.1), at random among the one-byte identifiers.
    async fn free_connection_id(&self) -> Result<ConnId, ClientError> {
        let (reply, answer) = async_channel::bounded(1);
        self.commands
            .try_send(Command(Cmd::RecipientIds { reply }))
            .map_err(|_| ClientError::Closed)?;
        let taken = answer.recv().await.map_err(|_| ClientError::Closed)?;
        let start = getrandom::u32().map_err(|e| ClientError::Io(std::io::Error::other(e)))?;
        (0..48u32)
            .map(|i| {
                let n = ((start + i) % 48) as u8;
                if n < 24 {
                    n
                } else {
                    0x20 + (n - 24)
                }
            })
            .find(|raw| !taken.iter().any(|t| t.as_slice() == [*raw]))
            .and_then(|raw| ConnId::from_slice(&[raw]))
            .ok_or(ClientError::Edhoc(Error::Busy))
    }

    /// One POST to the EDHOC resource in plain CoAP (application/cid-edhoc+cbor-seq).
    async fn edhoc_post(
        &self,
        uri: &str,
        peer: SocketAddr,
        payload: impl FnOnce(&mut [u8]) -> Result<usize, wire::WireError>,
    ) -> Result<Response, ClientError> {
        let mut buf = [0u8; coap_core::edhoc::transport::MAX_MESSAGE_LEN + 32];
        let n = payload(&mut buf).map_err(|e| ClientError::Edhoc(e.into()))?;
        let request = self
            .request(Method::Post, uri)
            .content_format(CID_EDHOC_CBOR_SEQ)
            .payload(&buf[..n]);
        request.send_to(plain(peer)).await
    }
}

/// The loop's side of a client's EDHOC sessions:
/// - the combined request (RFC 9668 §3.2.1): message_3 of a fresh session goes into the
///   first request protected under its context (and that request's retransmissions)
///   until the server has answered under the context;
/// - a server that refuses a request under a session in plain CoAP (an EDHOC error for
///   the combined request; 4.01 once it has lost the session, e.g. after a restart or
///   when it made room for newer ones) ends that request with an error, and the session
///   is over: the next request runs EDHOC again.
#[derive(Debug, Default)]
pub(crate) struct ClientSessions {
    by_context: HashMap<ContextId, Session>,
    /// Refusals delivered to the endpoint and not yet matched to their request.
    refusals: Vec<(SocketAddr, Vec<u8>, Refusal)>,
}

/// Tokens of the latest requests kept per session, to recognise a plain refusal.
const RECENT: usize = 16;

#[derive(Debug)]
struct Session {
    peer: SocketAddr,
    /// Until the server answers under the context: message_3, for the combined request.
    message_3: Option<Vec<u8>>,
    /// Message ID and token of the request that carries message_3, once sent.
    carrier: Option<(u16, Vec<u8>)>,
    /// Tokens of the latest requests under the session.
    recent: std::collections::VecDeque<Vec<u8>>,
}

/// What a plain error answering a request under a session means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server refused the combined request's EDHOC part (RFC 9668 §3.3.1).
    Handshake,
    /// The server no longer has the session's context.
    SessionLost,
}

impl ClientSessions {
    /// A session with `peer` under `context`; with `message_3`, its next request is the
    /// combined request.
    pub(crate) fn add(&mut self, context: ContextId, peer: SocketAddr, message_3: Option<Vec<u8>>) {
        let session = Session {
            peer,
            message_3,
            carrier: None,
            recent: Default::default(),
        };
        self.by_context.insert(context, session);
    }

    /// Notes a message protected under `context`; if it is the request that carries
    /// message_3, writes the combined request into `out` and returns its length.
    pub(crate) fn wrap(
        &mut self,
        context: ContextId,
        protected: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let session = self.by_context.get_mut(&context)?;
        let m = coap_core::Message::parse(protected).ok()?;
        if !m.code().is_request() {
            return None;
        }
        if !session.recent.iter().any(|t| t.as_slice() == m.token()) {
            if session.recent.len() == RECENT {
                session.recent.pop_front();
            }
            session.recent.push_back(m.token().to_vec());
        }
        let message_3 = session.message_3.as_ref()?;
        let this = (m.message_id(), m.token().to_vec());
        match &session.carrier {
            Some(c) if *c != this => return None,
            _ => session.carrier = Some(this),
        }
        coap_core::edhoc::transport::wrap_combined(protected, message_3, out).ok()
    }

    /// A message verified under `context` came: the server has the session.
    pub(crate) fn confirmed(&mut self, context: ContextId) {
        if let Some(s) = self.by_context.get_mut(&context) {
            s.message_3 = None;
        }
    }

    /// The context of the session whose request a plain error `datagram` from `peer`
    /// answers. The session is over; the datagram is delivered under that context so that
    /// the request it answers ends with it (see `take_refusal`).
    pub(crate) fn refused(&mut self, peer: SocketAddr, datagram: &[u8]) -> Option<ContextId> {
        let m = coap_core::Message::parse(datagram).ok()?;
        if !m.code().is_response() || m.code().class() == 2 {
            return None;
        }
        let token = m.token();
        let (context, session) = self
            .by_context
            .iter()
            .find(|(_, s)| s.peer == peer && s.recent.iter().any(|t| t.as_slice() == token))?;
        let kind = match &session.carrier {
            Some((_, t)) if session.message_3.is_some() && t.as_slice() == token => {
                Refusal::Handshake
            }
            _ => Refusal::SessionLost,
        };
        let context = *context;
        self.by_context.remove(&context);
        self.refusals.push((peer, token.to_vec(), kind));
        Some(context)
    }

    /// Whether the response with `token` from `peer` is a refusal, and which.
    pub(crate) fn take_refusal(&mut self, peer: SocketAddr, token: &[u8]) -> Option<Refusal> {
        let i = self
            .refusals
            .iter()
            .position(|(p, t, _)| *p == peer && t.as_slice() == token)?;
        Some(self.refusals.swap_remove(i).2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edhoc_resource_is_at_the_origin_of_the_request() {
        assert_eq!(
            edhoc_uri("coap://127.0.0.1:5683/a/b?q=1"),
            "coap://127.0.0.1:5683/.well-known/edhoc"
        );
        assert_eq!(
            edhoc_uri("coap://[::1]/x"),
            "coap://[::1]/.well-known/edhoc"
        );
        assert_eq!(edhoc_uri("coap://h?x"), "coap://h/.well-known/edhoc");
    }
}
