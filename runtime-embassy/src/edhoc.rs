//! The EDHOC Initiator (RFC 9528) as a client call: [`Client::edhoc`] runs the handshake
//! with a server's `/.well-known/edhoc` resource over plain CoAP (Appendix A.2) and puts
//! the OSCORE context it derives (Appendix A.1) into the caller's [`OscoreContext`], for
//! [`Client::oscore`] to protect requests with.
//!
//! - Plain flow: POST `true, message_1` → 2.04 message_2; POST `C_R, message_3` → 2.04
//!   with message_4 (verified: key confirmation, §5.5) or without one.
//! - Combined flow (RFC 9668): only message_1 and message_2 here; message_3 rides in the
//!   first OSCORE request under the new context, which saves a round trip.
//!
//! A failed handshake leaves the storage as it was; the Responder's error message comes
//! back as [`Error::Edhoc`] with its ERR_CODE ([`coap_core::edhoc::Error::Peer`]).

use coap_core::edhoc::initiator::SUITES_I;
use coap_core::edhoc::transport::{self, MAX_MESSAGE_LEN};
use coap_core::edhoc::wire::{self, write_continue_request, write_message_1_request, WireError};
use coap_core::edhoc::{
    ignore_ead, refuse_critical_ead, ConnId, Credential, CryptoTrait, Error as EdhocError,
    Identity, Initiator,
};
use coap_core::oscore::sequence::SequenceReservation;
use coap_core::uri::Uri;
use coap_core::{Code, RequestParams};
use embassy_net::IpEndpoint;

use crate::client::{peer_of, Client, ExchangeRef};
use crate::error::Error;
use crate::oscore::{Message3, OscoreContext};

/// Room for an EDHOC response body: a message of lakers' largest size, or an error message
/// with its diagnostic (RFC 9528 §6).
const RESPONSE_LEN: usize = MAX_MESSAGE_LEN + 64;

/// How the Initiator ends the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Flow {
    /// message_3 in a POST of its own (RFC 9528 Appendix A.2.1); a message_4 in its
    /// answer is verified (§5.5).
    Plain,
    /// message_3 in the first OSCORE request under the new context: the EDHOC + OSCORE
    /// combined request (RFC 9668 §3.2.1).
    Combined,
}

/// What a handshake needs from the application.
#[derive(Clone, Copy, Debug)]
pub struct EdhocConfig<'a> {
    /// Our static key and credential (method 3, STAT-STAT).
    pub identity: Identity,
    /// The Responder credentials we accept (by kid or by value, RFC 9528 §3.5.3).
    pub trusted: &'a [Credential],
    /// Our connection identifier C_I (RFC 9528 §3.3), which becomes our OSCORE Recipient
    /// ID (Appendix A.1): one not in use by another context of the device.
    pub c_i: ConnId,
    /// Plain flow or combined request.
    pub flow: Flow,
}

/// A handshake that succeeded.
#[derive(Clone, Copy, Debug)]
pub struct Handshake {
    /// The Responder's credential, as authenticated by message_2.
    pub peer: Credential,
    /// Whether a message_4 confirmed the key (RFC 9528 §5.5; plain flow only, and only
    /// when the Responder sends one). Without it the first verified OSCORE response does.
    pub key_confirmed: bool,
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
    /// Runs EDHOC as Initiator (RFC 9528, method 3, cipher suite 2) with the server `uri`
    /// names (its `/.well-known/edhoc`; the path of `uri` is not used), as `config` says,
    /// with randomness and crypto from `crypto`. On success `storage` holds the OSCORE
    /// context of the session (RFC 9528 Appendix A.1), replacing what it held; in the
    /// combined flow also message_3, which the next request through
    /// [`Client::oscore`] carries (RFC 9668).
    pub async fn edhoc(
        &self,
        uri: &str,
        crypto: &mut impl CryptoTrait,
        config: &EdhocConfig<'_>,
        storage: &mut OscoreContext,
    ) -> Result<Handshake, Error> {
        let peer = peer_of(&Uri::parse(uri)?)?;
        let mut response = [0u8; RESPONSE_LEN];
        let (initiator, x) = {
            let mut m1 = [0u8; MAX_MESSAGE_LEN];
            let (initiator, n) =
                Initiator::start(crypto, config.identity, config.c_i, SUITES_I, None, &mut m1)
                    .map_err(Error::Edhoc)?;
            let m1 = m1.get(..n).unwrap_or_default();
            (
                initiator,
                self.edhoc_start(peer, |out| write_message_1_request(m1, out))?,
            )
        };
        let m2_len = edhoc_answer(x, &mut response).await?;
        let m2 = response.get(..m2_len).unwrap_or_default();
        let mut m3 = [0u8; MAX_MESSAGE_LEN];
        let established = initiator
            .message_2(crypto, config.trusted, m2, ignore_ead, &mut m3)
            .map_err(Error::Edhoc)?;
        let message_3 = m3.get(..established.message_3_len).unwrap_or_default();
        let mut context = established.context;
        // A session's context is fresh (RFC 9528 Appendix A.1) and never restored after a
        // restart (the device runs EDHOC again), so its sequence numbers need no
        // persisting (RFC 8613 Appendix B.1.1 is for contexts that are restored).
        context.sequence = SequenceReservation::volatile(0);
        let (pending, key_confirmed) = match config.flow {
            Flow::Combined => (
                Some(Message3::new(message_3).ok_or(Error::Edhoc(EdhocError::BufferTooSmall))?),
                false,
            ),
            Flow::Plain => {
                let c_r = established.c_r;
                let x =
                    self.edhoc_start(peer, |out| write_continue_request(&c_r, message_3, out))?;
                let m4_len = edhoc_answer(x, &mut response).await?;
                let m4 = response.get(..m4_len).unwrap_or_default();
                // RFC 9528 §5.5: message_4 is optional; when it comes, it must verify.
                if !m4.is_empty() {
                    established
                        .awaiting
                        .message_4(crypto, m4, refuse_critical_ead)
                        .map_err(Error::Edhoc)?;
                }
                (None, !m4.is_empty())
            }
        };
        storage.establish(context, pending);
        Ok(Handshake {
            peer: established.peer,
            key_confirmed,
        })
    }

    /// Starts one POST to the EDHOC resource (application/cid-edhoc+cbor-seq, RFC 9528
    /// Appendix A.2.1) with the payload `write` puts into a buffer of this call (so it is
    /// not part of the future that waits for the answer).
    fn edhoc_start(
        &self,
        peer: IpEndpoint,
        write: impl FnOnce(&mut [u8]) -> Result<usize, WireError>,
    ) -> Result<ExchangeRef<'e, N, M, D, O, K, B>, Error> {
        let mut payload = [0u8; MAX_MESSAGE_LEN + 8];
        let n = write(&mut payload).map_err(|e| Error::Edhoc(e.into()))?;
        let payload = payload.get(..n).unwrap_or_default();
        self.start_raw(peer, RequestParams::con(Code::POST), |b| {
            transport::write_request(b, payload)
        })
    }
}

/// Waits for the EDHOC resource's answer: the EDHOC message of a 2.04 (message_2,
/// message_4 or nothing) into `buf`, or the refusal.
async fn edhoc_answer<
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
    const K: usize,
    const B: usize,
>(
    mut x: ExchangeRef<'_, N, M, D, O, K, B>,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let delivery = x.next_delivery(None).await;
    let r = x.take(delivery, buf)?;
    if r.code == Code::CHANGED && !wire::is_error(r.payload) {
        return Ok(r.payload.len());
    }
    if r.code.class() == 2 {
        return Err(Error::Edhoc(EdhocError::Malformed));
    }
    Err(Error::edhoc_refusal(r.code, r.payload))
}
