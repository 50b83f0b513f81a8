//! OSCORE (RFC 8613) for the std runtimes: security contexts loaded from a credentials
//! file ([`crate::credentials`]), the core's sans-IO [`Layer`] between socket and endpoint,
//! and sequence numbers persisted before use (Appendix B.1.1).
//!
//! The endpoint addresses peers as [`Peer`] (address plus [`Security`]): a request sent to a
//! URI that the credentials map to an OSCORE context goes to `Peer { addr, Oscore(id) }` and
//! is protected on its way out; a verified request reaches the handler from such a peer, so a
//! resource can tell (and require) protection; its response is protected with the request's
//! binding.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use coap_core::oscore::replay::ReplayWindow;
use coap_core::oscore::sequence::SequenceReservation;
use coap_core::oscore::{ContextId, ContextParams, Layer, Secured, SecurityContext};

pub use coap_core::oscore::Security;

use crate::credentials::{Credential, Credentials, CredentialsError, OscoreDir, ReceivedState};

/// The peer identity the std endpoint sees: transport address plus protection.
pub type Peer = Secured<SocketAddr>;

/// A peer reached over plain CoAP.
pub fn plain(addr: SocketAddr) -> Peer {
    Secured {
        addr,
        security: Security::Plain,
    }
}

/// A peer reached under the OSCORE context `context`.
pub fn protected(addr: SocketAddr, context: ContextId) -> Peer {
    Secured {
        addr,
        security: Security::Oscore(context),
    }
}

/// Security contexts a std endpoint can hold.
pub const CONTEXTS: usize = 32;
/// Request/response bindings (and message records) of the std OSCORE layer.
pub const BINDINGS: usize = 256;

/// MAX_UNFRAGMENTED_SIZE (RFC 8613 §4.1.3.4.2): the largest OSCORE message reassembled
/// from outer block-wise fragments.
pub const MAX_UNFRAGMENTED: usize = 4096;

/// The OSCORE layer as the std runtimes size it.
pub type StdLayer = Layer<SocketAddr, CONTEXTS, BINDINGS, MAX_UNFRAGMENTED>;

/// The OSCORE state of an endpoint: the layer and the directories its contexts persist to.
pub struct Oscore {
    pub(super) layer: Box<StdLayer>,
    dirs: HashMap<ContextId, OscoreDir>,
    /// The contexts of EDHOC sessions a server established, oldest first.
    sessions: std::collections::VecDeque<ContextId>,
}

impl std::fmt::Debug for Oscore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oscore")
            .field("contexts", &self.dirs.len())
            .finish_non_exhaustive()
    }
}

/// Which security a request URI gets, from the credentials.
#[derive(Clone, Debug, Default)]
pub struct SecurityMap {
    inner: Option<Arc<(Credentials, HashMap<PathBuf, ContextId>)>>,
}

impl SecurityMap {
    /// The protection for a request to `uri`: OSCORE with the context the most specific
    /// matching credential names, or plain.
    pub fn for_uri(&self, uri: &str) -> Security {
        let Some(inner) = &self.inner else {
            return Security::Plain;
        };
        match inner.0.for_uri(uri) {
            Some(Credential::Oscore { basedir }) => inner
                .1
                .get(basedir)
                .map_or(Security::Plain, |id| Security::Oscore(*id)),
            _ => Security::Plain,
        }
    }
}

impl SecurityMap {
    /// The `edhoc-oscore` credential (RFC 9528) the most specific entry matching `uri`
    /// names, if it is one.
    pub fn edhoc(&self, uri: &str) -> Option<crate::edhoc::config::EdhocOscore> {
        match self.inner.as_ref()?.0.for_uri(uri)? {
            Credential::EdhocOscore(e) => Some((**e).clone()),
            _ => None,
        }
    }

    /// The DTLS PSK (aiocoap's `{"dtls": {"psk": .., "client-identity": ..}}`) the most
    /// specific credential matching `uri` names, if it is one.
    pub fn dtls_psk(&self, uri: &str) -> Option<crate::dtls::Psk> {
        match self.inner.as_ref()?.0.for_uri(uri)? {
            Credential::DtlsPsk { psk, identity } => Some(crate::dtls::Psk {
                identity: identity.clone(),
                key: psk.clone(),
            }),
            _ => None,
        }
    }
}

impl Oscore {
    /// The endpoint's security contexts.
    pub(crate) fn contexts(&self) -> impl Iterator<Item = ContextId> + '_ {
        self.dirs.keys().copied()
    }

    /// Opens (and locks) every OSCORE context directory the credentials name, derives the
    /// contexts, and resumes their sequence numbers from what was persisted: a context that
    /// was used before starts past its persisted bound and recovers its replay window with
    /// Echo (RFC 8613 Appendix B.1.1, B.1.2).
    pub fn load(credentials: &Credentials) -> Result<(Oscore, SecurityMap), CredentialsError> {
        let mut layer = new_layer();
        let mut dirs = HashMap::new();
        let mut ids: HashMap<PathBuf, ContextId> = HashMap::new();
        for (_, credential) in credentials.iter() {
            let Credential::Oscore { basedir } = credential else {
                continue;
            };
            if ids.contains_key(basedir) {
                continue;
            }
            let dir = OscoreDir::open(basedir)?;
            let p = &dir.parameters;
            let format = |message: String| CredentialsError::Format {
                path: basedir.clone(),
                message,
            };
            let mut ctx = SecurityContext::derive(&ContextParams {
                master_secret: &p.master_secret,
                master_salt: &p.master_salt,
                id_context: p.id_context.as_deref(),
                sender_id: &p.sender_id,
                recipient_id: &p.recipient_id,
            })
            .map_err(|e| format(e.to_string()))?;
            ctx.sequence = SequenceReservation::resume(dir.next_to_send);
            let window =
                u8::try_from(p.window).map_err(|_| format("replay window too large".into()))?;
            ctx.replay = match dir.received {
                ReceivedState::Fresh => ReplayWindow::new().with_size(window),
                ReceivedState::Unknown => ReplayWindow::unknown().with_size(window),
            };
            let id = layer.add_context(ctx).map_err(|e| format(e.to_string()))?;
            ids.insert(basedir.clone(), id);
            dirs.insert(id, dir);
        }
        let mut oscore = Oscore {
            layer,
            dirs,
            sessions: Default::default(),
        };
        oscore.persist()?;
        let map = SecurityMap {
            inner: Some(Arc::new((credentials.clone(), ids))),
        };
        Ok((oscore, map))
    }

    /// The Recipient IDs of the contexts in the layer.
    pub(crate) fn recipient_ids(&self) -> Vec<Vec<u8>> {
        (0..CONTEXTS)
            .filter_map(|i| u8::try_from(i).ok())
            .filter_map(|i| self.layer.context(ContextId(i)))
            .map(|c| c.recipient_id().to_vec())
            .collect()
    }

    /// Adds the context of an EDHOC session (RFC 9528 Appendix A.1). Its keys are fresh
    /// and live in memory only: nothing is persisted, a restart means a new handshake.
    pub(crate) fn add_session(
        &mut self,
        context: SecurityContext,
    ) -> Result<ContextId, coap_core::edhoc::Error> {
        if self
            .recipient_ids()
            .iter()
            .any(|id| id.as_slice() == context.recipient_id())
        {
            return Err(coap_core::edhoc::Error::Busy);
        }
        let id = self
            .layer
            .add_context(context)
            .map_err(|_| coap_core::edhoc::Error::Busy)?;
        let _ = self.persist();
        Ok(id)
    }

    /// A server established the EDHOC session of `context`. The layer always keeps a slot
    /// free for the next one: when this took the last, the oldest session is removed
    /// (its client then gets 4.01 and runs EDHOC again). Only authenticated peers (those
    /// the credentials trust) get this far, so a stranger cannot push sessions out.
    pub(crate) fn session_established(&mut self, context: ContextId) {
        self.sessions.push_back(context);
        let _ = self.persist();
        while self.recipient_ids().len() >= CONTEXTS {
            let Some(oldest) = self.sessions.pop_front() else {
                break;
            };
            self.layer.remove_context(oldest);
        }
    }

    /// Writes every sequence number bound the layer wants persisted, then lets it use them.
    pub fn persist(&mut self) -> Result<(), CredentialsError> {
        // Bounded: each context wants at most one bound at a time.
        for _ in 0..CONTEXTS + 1 {
            let Some((id, bound)) = self.layer.poll_persist() else {
                return Ok(());
            };
            if let Some(dir) = self.dirs.get_mut(&id) {
                dir.persist(bound)?;
            }
            self.layer.persisted(id, bound);
        }
        Ok(())
    }
}

/// The layer is large (bindings and message records): built on the heap's side of a thread
/// with room for it in unoptimized builds.
fn new_layer() -> Box<StdLayer> {
    let seed = getrandom::u32().unwrap_or(0) as u16;
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || Box::new(StdLayer::new(seed)))
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| Box::new(StdLayer::new(seed)))
}

/// Which requests must come protected, by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Protection {
    /// Plain and OSCORE requests are both served.
    #[default]
    Optional,
    /// Every request must be protected with OSCORE except those to `/.well-known/core`
    /// (discovery stays open).
    Required,
    /// Requests under these path prefixes (e.g. `/secret`) must be protected.
    RequiredUnder(Vec<String>),
}

impl Protection {
    fn required(&self, path: &str) -> bool {
        match self {
            Protection::Optional => false,
            Protection::Required => path != "/.well-known/core",
            Protection::RequiredUnder(prefixes) => prefixes.iter().any(|p| {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            }),
        }
    }
}

/// A handler that answers plain requests to protected resources with 4.01 Unauthorized
/// (RFC 8613 leaves authorization to the application; 4.01 is what a client that should
/// have used OSCORE gets, RFC 7252 §5.9.2.2) and passes everything else to `inner`.
#[derive(Debug)]
pub struct RequireOscore<H> {
    inner: H,
    protection: Protection,
}

impl<H> RequireOscore<H> {
    /// Wraps `inner` with `protection`.
    pub fn new(inner: H, protection: Protection) -> Self {
        RequireOscore { inner, protection }
    }
}

impl<H: coap_core::Handler<Peer>> coap_core::Handler<Peer> for RequireOscore<H> {
    fn handle(
        &mut self,
        req: &coap_core::IncomingRequest<'_, Peer>,
        resp: &mut coap_core::ResponseWriter<'_>,
    ) -> coap_core::Outcome {
        if req.peer().security == Security::Plain && self.protection != Protection::Optional {
            let mut path = String::new();
            for seg in req.message().uri_path() {
                path.push('/');
                path.push_str(&String::from_utf8_lossy(seg));
            }
            if path.is_empty() {
                path.push('/');
            }
            if self.protection.required(&path) {
                resp.set_code(coap_core::Code::UNAUTHORIZED);
                return coap_core::Outcome::Respond;
            }
        }
        self.inner.handle(req, resp)
    }

    fn understands(&self, option: coap_core::OptionNumber) -> bool {
        self.inner.understands(option)
    }

    /// An OSCORE request's outer code is POST or FETCH (RFC 8613 §4.2), so a protected
    /// request is judged by that: at most once for POST.
    fn idempotence(&self, request: &coap_core::Message<'_>) -> coap_core::Idempotence {
        self.inner.idempotence(request)
    }
}
