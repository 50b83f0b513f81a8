//! The EDHOC sessions (RFC 9528) a client handle has established: which OSCORE context
//! of the endpoint serves which server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use coap_core::oscore::ContextId;

/// The EDHOC sessions a client has established, by server address: their OSCORE contexts
/// in the endpoint's layer. Shared by the clones of a handle.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    by_peer: Arc<Mutex<HashMap<SocketAddr, ContextId>>>,
}

impl Sessions {
    pub(crate) fn get(&self, peer: SocketAddr) -> Option<ContextId> {
        self.by_peer.lock().ok()?.get(&peer).copied()
    }

    pub(crate) fn insert(&self, peer: SocketAddr, context: ContextId) {
        if let Ok(mut m) = self.by_peer.lock() {
            m.insert(peer, context);
        }
    }

    /// Forgets the session whose combined request the server refused: the next request
    /// runs EDHOC again.
    pub(crate) fn forget(&self, peer: SocketAddr, context: ContextId) {
        if let Ok(mut m) = self.by_peer.lock() {
            if m.get(&peer) == Some(&context) {
                m.remove(&peer);
            }
        }
    }
}
