//! The server side: a server endpoint with `edhoc-oscore` credentials answers EDHOC (RFC
//! 9528) at `/.well-known/edhoc` (Appendix A.2) beside the application's handler, and
//! takes the EDHOC + OSCORE combined request (RFC 9668) apart before its OSCORE layer.
//! Each established session's OSCORE context joins the layer; requests under it reach the
//! handler from `Peer { security: Oscore(..) }`.
//!
//! Identity and trust come from the credentials file as aiocoap's server takes them: our
//! key and CCS from the entries' `own_cred`/`private_key_file` (one identity per server),
//! the clients we accept from their `peer_cred`.

use coap_core::edhoc::transport::{EdhocResource, WELL_KNOWN_EDHOC};
use coap_core::edhoc::{Credential, Responder, RustCrypto};
use coap_core::{
    Code, Handler, Idempotence, IncomingRequest, Message, Method, OptionNumber, Outcome, Resource,
    ResponseWriter,
};

use super::OsRng;
use crate::credentials::{Credential as Entry, Credentials};
use crate::oscore::Peer;

/// Handshakes a std server keeps in progress at once (each expires after
/// [`coap_core::edhoc::responder::DEFAULT_LIFETIME`]); a further message_1 gets 5.03.
pub const HANDSHAKES: usize = 16;

/// Established sessions the resource hands to the layer per datagram.
const ESTABLISHED: usize = 2;

/// The Responder of a std server.
pub type StdResponder = Responder<'static, RustCrypto<OsRng>, HANDSHAKES, Vec<Credential>>;

/// The EDHOC resource over the server's Responder, for one datagram.
pub(crate) type StdResource<'r> =
    EdhocResource<'r, 'static, RustCrypto<OsRng>, HANDSHAKES, ESTABLISHED, Vec<Credential>>;

/// The Responder the `edhoc-oscore` entries of `credentials` describe, if there are any.
pub fn responder(credentials: &Credentials) -> Result<Option<Box<StdResponder>>, String> {
    let mut own: Option<(&str, &super::config::Own)> = None;
    let mut trusted: Vec<Credential> = Vec::new();
    for (pattern, credential) in credentials.iter() {
        let Entry::EdhocOscore(e) = credential else {
            continue;
        };
        match own {
            Some((first, o)) if o.key != e.own.key || o.ccs != e.own.ccs => {
                return Err(format!(
                    "{pattern}: a server has one EDHOC identity, but this entry's own_cred or key differs from {first}'s"
                ))
            }
            Some(_) => {}
            None => own = Some((pattern, &e.own)),
        }
        let peer = e.peer.credential().map_err(|m| format!("{pattern}: {m}"))?;
        if !trusted.contains(&peer) {
            trusted.push(peer);
        }
    }
    let Some((pattern, own)) = own else {
        return Ok(None);
    };
    let identity = own
        .key
        .identity(&own.ccs, own.transfer)
        .map_err(|m| format!("{pattern}: {m}"))?;
    Ok(Some(Box::new(Responder::new(
        RustCrypto::new(OsRng),
        identity,
        trusted,
    ))))
}

/// The application's handler with the EDHOC resource in front of it at
/// `/.well-known/edhoc` (POST only, RFC 9528 Appendix A.2.1).
pub(crate) struct WithEdhoc<'h, 'r, H> {
    pub inner: &'h mut H,
    pub edhoc: &'h mut StdResource<'r>,
}

fn is_edhoc(message: &Message<'_>) -> bool {
    message
        .uri_path()
        .eq(WELL_KNOWN_EDHOC.iter().map(|s| s.as_bytes()))
}

impl<H: Handler<Peer>> Handler<Peer> for WithEdhoc<'_, '_, H> {
    fn handle(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        if !is_edhoc(req.message()) {
            return self.inner.handle(req, resp);
        }
        match req.method() {
            Some(Method::Post) => self.edhoc.post(req, resp),
            _ => {
                resp.set_code(Code::METHOD_NOT_ALLOWED);
                Outcome::Respond
            }
        }
    }

    fn understands(&self, option: OptionNumber) -> bool {
        self.inner.understands(option)
    }

    fn idempotence(&self, request: &Message<'_>) -> Idempotence {
        if is_edhoc(request) {
            // Each message_1 makes a handshake: never run twice within EXCHANGE_LIFETIME.
            return Idempotence::AtMostOnce;
        }
        self.inner.idempotence(request)
    }
}
