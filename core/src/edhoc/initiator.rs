//! The Initiator (RFC 9528 §5): message_1 out, message_2 in, message_3 out, message_4
//! (optionally) in. Each step consumes the previous state, so a failed step leaves none.

use lakers::{
    i_complete_without_message_4, i_parse_message_2, i_prepare_message_1, i_prepare_message_3,
    i_process_message_4, i_verify_message_2, Completed, ConnId, Credential, CryptoTrait, EADItem,
    EdhocBuffer, EdhocMessageBuffer, InitiatorStart, WaitM2, WaitM4,
};

use super::credentials::{find_trusted, Identity};
use super::exporter::{oscore_secrets, security_context};
use super::Error;
use super::{point, wire};
use crate::oscore::context::{SecurityContext, MAX_ID_LEN};

/// SUITES_I of a fresh Initiator: cipher suite 2 only (AES-CCM-16-64-128, SHA-256, 8,
/// P-256, ES256, AES-CCM-16-64-128, SHA-256), the one this crate implements.
pub const SUITES_I: &[u8] = &[2];

/// An Initiator that sent message_1 and waits for message_2.
#[derive(Debug)]
pub struct Initiator {
    state: WaitM2,
    c_i: ConnId,
    identity: Identity,
}

/// An Initiator after message_3: the session is established (the OSCORE context can be
/// used, RFC 9528 §5.4.2), message_4 may still come.
#[derive(Debug)]
pub struct Established {
    /// The OSCORE context (Sender ID C_R, Recipient ID C_I, RFC 9528 Appendix A.1).
    pub context: SecurityContext,
    /// The Responder's connection identifier (prefix of message_3 in its request, and the
    /// kid of our OSCORE requests).
    pub c_r: ConnId,
    /// The Responder's credential.
    pub peer: Credential,
    /// EAD_2 of message_2, if any.
    pub ead_2: Option<EADItem>,
    /// Length of message_3 in the output buffer.
    pub message_3_len: usize,
    /// For verifying a message_4.
    pub awaiting: AwaitMessage4,
}

/// The state that verifies an optional message_4.
#[derive(Debug)]
pub struct AwaitMessage4 {
    state: WaitM4,
}

impl AwaitMessage4 {
    /// Verifies message_4 (RFC 9528 §5.5.3), hands its EAD_4 to `ead_4` and returns it.
    /// `ead_4` refuses an item it does not understand (RFC 9528 §3.8: a critical one must
    /// not be ignored); [`refuse_critical_ead`](super::refuse_critical_ead) is the default.
    pub fn message_4(
        mut self,
        crypto: &mut impl CryptoTrait,
        message_4: &[u8],
        ead_4: impl FnOnce(Option<&EADItem>) -> Result<(), Error>,
    ) -> Result<Option<EADItem>, Error> {
        wire::check_ciphertext_message(message_4, lakers::AES_CCM_TAG_LEN)?;
        let buf = EdhocMessageBuffer::new_from_slice(message_4).map_err(|_| Error::Malformed)?;
        let (_completed, item) = i_process_message_4(&mut self.state, crypto, &buf)?;
        ead_4(item.as_ref())?;
        Ok(item)
    }
}

impl Initiator {
    /// Starts a handshake (method 3): writes message_1 into `out`. `suites` is SUITES_I
    /// (preferred suites first, the selected one last; RFC 9528 §5.2.2) and must select
    /// suite 2; `c_i` is our connection identifier (RFC 9528 §3.3), which becomes our OSCORE
    /// Recipient ID.
    pub fn start(
        crypto: &mut impl CryptoTrait,
        identity: Identity,
        c_i: ConnId,
        suites: &[u8],
        ead_1: Option<EADItem>,
        out: &mut [u8],
    ) -> Result<(Initiator, usize), Error> {
        if !identity.is_valid() {
            return Err(Error::InvalidIdentity);
        }
        if suites.last() != Some(&2) {
            return Err(Error::UnsupportedSuite);
        }
        let suites_i = EdhocBuffer::new_from_slice(suites).map_err(|_| Error::UnsupportedSuite)?;
        let (x, g_x) = crypto.p256_generate_key_pair();
        let start = InitiatorStart {
            suites_i,
            method: lakers::EDHOC_METHOD,
            x,
            g_x,
        };
        let (state, message_1) = i_prepare_message_1(&start, crypto, c_i, &ead_1)?;
        let bytes = message_1.as_slice();
        out.get_mut(..bytes.len())
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        Ok((
            Initiator {
                state,
                c_i,
                identity,
            },
            bytes.len(),
        ))
    }

    /// Our connection identifier.
    pub fn c_i(&self) -> &ConnId {
        &self.c_i
    }

    /// Processes message_2: authenticates the Responder against `trusted` (by kid or by
    /// value), answers EAD_2 with `ead_3`, and writes message_3 into `out`.
    pub fn message_2(
        self,
        crypto: &mut impl CryptoTrait,
        trusted: &[Credential],
        message_2: &[u8],
        ead_3: impl FnOnce(Option<&EADItem>) -> Result<Option<EADItem>, Error>,
        out: &mut [u8],
    ) -> Result<Established, Error> {
        // message_2 = bstr(G_Y || CIPHERTEXT_2) (RFC 9528 §5.3.1): G_Y is checked before
        // lakers computes G_XY with it.
        wire::check_ciphertext_message(message_2, 32 + 1)?;
        let head = message_2.len() - wire::bstr_content_len(message_2)?;
        let g_y: [u8; 32] = message_2
            .get(head..head + 32)
            .and_then(|g| g.try_into().ok())
            .ok_or(Error::Malformed)?;
        if !point::valid_public(&g_y) {
            return Err(Error::Malformed);
        }
        let buf = EdhocMessageBuffer::new_from_slice(message_2).map_err(|_| Error::Malformed)?;
        let (processing, c_r, id_cred_r, ead_2) = i_parse_message_2(&self.state, crypto, &buf)?;
        // C_R becomes our OSCORE Sender ID and C_I our Recipient ID: equal ones would reuse
        // nonces, and an ID longer than 7 bytes does not fit the nonce (RFC 9528 Appendix A.1,
        // RFC 8613 §3.3).
        if c_r == self.c_i || c_r.as_slice().len() > MAX_ID_LEN {
            return Err(Error::Malformed);
        }
        let peer = find_trusted(trusted, &id_cred_r).ok_or(Error::UnknownCredential)?;
        let processed = i_verify_message_2(&processing, crypto, peer, &self.identity.private_key)?;
        let ead_3 = ead_3(ead_2.as_ref())?;
        let (state, message_3, _prk_out) = i_prepare_message_3(
            &processed,
            crypto,
            self.identity.credential,
            self.identity.transfer.into(),
            &ead_3,
        )?;
        let bytes = message_3.as_slice();
        out.get_mut(..bytes.len())
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        let completed: Completed = i_complete_without_message_4(&state)?;
        let secrets = oscore_secrets(&completed, crypto);
        let context = security_context(&secrets, &self.c_i, &c_r)?;
        Ok(Established {
            context,
            c_r,
            peer,
            ead_2,
            message_3_len: bytes.len(),
            awaiting: AwaitMessage4 { state },
        })
    }
}
