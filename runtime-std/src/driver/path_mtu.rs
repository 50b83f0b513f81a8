//! Path-MTU errors read from a socket's error queue ([`crate::icmp`]), handed to the
//! endpoint (`Endpoint::handle_path_mtu`) for every peer at that address: block-wise
//! transfers with it go on in blocks that fit (RFC 7959 §2.2).

use std::net::SocketAddr;

use coap_core::Handler;

use super::Driver;
use crate::oscore::{Peer, Security};

/// A peer's kind of security, for what it adds around the CoAP message the endpoint
/// builds: that much is taken off the path MTU before the endpoint picks a block size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protection {
    Plain,
    Oscore,
    Dtls,
}

impl Protection {
    fn of(security: Security) -> Protection {
        match security {
            Security::Plain => Protection::Plain,
            Security::Oscore(_) => Protection::Oscore,
            Security::Dtls(_) => Protection::Dtls,
        }
    }

    /// Bytes added to the message.
    const fn overhead(self) -> u32 {
        match self {
            Protection::Plain => 0,
            // The OSCORE option (flags, Partial IV up to 5 bytes, kid context, kid) and
            // the AEAD tag (8 or 16 bytes), plus the inner code and payload marker
            // (RFC 8613 §6, §5).
            Protection::Oscore => 40,
            // A DTLS 1.2 record: 13-byte header, 8-byte explicit nonce and a tag of 8
            // (CCM_8, RFC 7251) or 16 bytes (GCM, RFC 5288) (RFC 6347 §4.1).
            Protection::Dtls => 40,
        }
    }
}

impl<H: Handler<Peer>> Driver<H> {
    /// The network (or the kernel itself, EMSGSIZE) said the path to `addr` carries IP
    /// packets of at most `mtu` bytes (`dtls`: reported on the coaps socket). Every peer
    /// the endpoint knows at that IP address — any port (the kernel's own IPv4 error names
    /// none; the path is the address's), in its plain and IPv4-mapped forms, under each
    /// security that socket carries — gets blocks that fit, less what its security adds.
    pub fn handle_path_mtu(&mut self, addr: SocketAddr, mtu: u32, dtls: bool) {
        let now = self.now();
        let ip = addr.ip().to_canonical();
        let kinds: &[Protection] = if dtls {
            &[Protection::Dtls]
        } else {
            &[Protection::Plain, Protection::Oscore]
        };
        for &kind in kinds {
            let on_path =
                |p: Peer| p.addr.ip().to_canonical() == ip && Protection::of(p.security) == kind;
            let mtu = usize::try_from(mtu.saturating_sub(kind.overhead())).unwrap_or(0);
            self.endpoint.handle_path_mtu(now, on_path, mtu);
        }
        // A re-written block is queued: the loop's next flush sends it.
        self.dispatch_events();
    }
}
