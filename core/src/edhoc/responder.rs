//! The Responder (RFC 9528 §5): a fixed table of handshakes waiting for message_3, each
//! expiring. A handshake that fails leaves nothing behind: its slot is taken out of the
//! table before message_3 is processed and only an established session comes back.

use core::marker::PhantomData;
use core::time::Duration;

use lakers::{
    r_complete_without_message_4, r_parse_message_3, r_prepare_message_2, r_prepare_message_4,
    r_process_message_1, r_verify_message_3, ConnId, Credential, CryptoTrait, EADItem,
    EdhocMessageBuffer, ResponderStart, WaitM3, SHA256_DIGEST_LEN,
};

use super::credentials::{find_trusted, Identity};
use super::exporter::{oscore_secrets, security_context};
use super::Error;
use super::{point, wire};
use crate::oscore::context::{SecurityContext, MAX_ID_LEN};
use crate::time::Instant;

/// How long a handshake may wait for message_3 by default: CoAP's EXCHANGE_LIFETIME
/// (RFC 7252 §4.8.2, 247 s) would let a flood of message_1 hold the table for minutes;
/// an Initiator answers message_2 within one round trip plus its retransmissions
/// (MAX_TRANSMIT_SPAN, 45 s).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(45);

/// Whether message_4 is sent (RFC 9528 §5.5: optional; not with the combined request,
/// RFC 9668 §3.3.1).
#[derive(Clone, Debug)]
pub enum Message4<'e> {
    /// Finish without message_4 (the first OSCORE response confirms the key).
    Omit,
    /// Send message_4 with this EAD_4.
    Send(Option<&'e EADItem>),
}

/// A handshake after message_2, waiting for message_3.
struct Pending {
    c_r: ConnId,
    c_i: ConnId,
    /// Hash of message_1: a replayed message_1 replaces its handshake instead of taking
    /// a second slot.
    h_message_1: [u8; SHA256_DIGEST_LEN],
    state: WaitM3,
    expires: Instant,
}

/// What message_1 produced.
#[derive(Debug)]
pub struct Message2 {
    /// Length of message_2 in the output buffer.
    pub len: usize,
    /// Our connection identifier (the handshake's key in the table).
    pub c_r: ConnId,
    /// EAD_1 of message_1, if any.
    pub ead_1: Option<EADItem>,
}

/// An established session, as the Responder sees it after message_3.
#[derive(Debug)]
pub struct Established {
    /// The OSCORE context (Sender ID C_I, Recipient ID C_R).
    pub context: SecurityContext,
    /// The Initiator's credential.
    pub peer: Credential,
    /// EAD_3 of message_3, if any.
    pub ead_3: Option<EADItem>,
    /// Length of message_4 in the output buffer, if one was asked for.
    pub message_4_len: Option<usize>,
}

/// The Responder: our identity, the credentials we trust, and up to `N` handshakes in
/// progress.
///
/// `T` holds the trusted credentials: by default a slice borrowed for `'a` (a firmware's
/// static table); a std runtime that must own them passes a `Vec` and `'static`.
pub struct Responder<
    'a,
    C: CryptoTrait,
    const N: usize = 4,
    T: AsRef<[Credential]> = &'a [Credential],
> {
    crypto: C,
    identity: Identity,
    trusted: T,
    lifetime: Duration,
    pending: [Option<Pending>; N],
    borrow: PhantomData<&'a ()>,
}

impl<C: CryptoTrait, const N: usize, T: AsRef<[Credential]>> core::fmt::Debug
    for Responder<'_, C, N, T>
{
    // The private key and the handshake secrets are never printed.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Responder")
            .field("in_progress", &self.in_progress())
            .field("trusted", &self.trusted.as_ref().len())
            .finish_non_exhaustive()
    }
}

impl<'a, C: CryptoTrait, const N: usize, T: AsRef<[Credential]>> Responder<'a, C, N, T> {
    /// A Responder with no handshake in progress.
    pub fn new(crypto: C, identity: Identity, trusted: T) -> Self {
        Responder {
            crypto,
            identity,
            trusted,
            lifetime: DEFAULT_LIFETIME,
            pending: core::array::from_fn(|_| None),
            borrow: PhantomData,
        }
    }

    /// Sets how long a handshake waits for message_3.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The crypto backend (e.g. to reseed it).
    pub fn crypto_mut(&mut self) -> &mut C {
        &mut self.crypto
    }

    /// Handshakes waiting for message_3.
    pub fn in_progress(&self) -> usize {
        self.pending.iter().flatten().count()
    }

    /// Forgets handshakes whose time is up.
    pub fn expire(&mut self, now: Instant) {
        for slot in &mut self.pending {
            if slot.as_ref().is_some_and(|p| p.expires <= now) {
                *slot = None;
            }
        }
    }

    /// The earliest expiry of a handshake in progress.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.pending.iter().flatten().map(|p| p.expires).min()
    }

    /// Processes message_1 and writes message_2 into `out`.
    ///
    /// `ead_2` answers EAD_1 (RFC 9528 §3.8): it gets the received item and returns the
    /// item to send, or an error to refuse the handshake. `taken` says whether an OSCORE
    /// Recipient ID is in use already: C_R becomes our Recipient ID (Appendix A.1), so it
    /// must be unique among our contexts and differ from C_I.
    pub fn message_1(
        &mut self,
        now: Instant,
        message_1: &[u8],
        ead_2: impl FnOnce(Option<&EADItem>) -> Result<Option<EADItem>, Error>,
        taken: impl Fn(&[u8]) -> bool,
        out: &mut [u8],
    ) -> Result<Message2, Error> {
        self.expire(now);
        let buf = EdhocMessageBuffer::new_from_slice(message_1).map_err(|_| Error::Malformed)?;
        let (y, g_y) = self.crypto.p256_generate_key_pair();
        // RFC 9528 §3.2: the method is the Initiator's choice; lakers implements method 3.
        let start = ResponderStart {
            method: lakers::EDHOC_METHOD,
            y,
            g_y,
        };
        let (processing, c_i, ead_1) = r_process_message_1(&start, &mut self.crypto, &buf)?;
        if !point::valid_public(&processing.g_x) {
            return Err(Error::Malformed);
        }
        if !self.identity.is_valid() {
            return Err(Error::InvalidIdentity);
        }
        // C_I becomes our OSCORE Sender ID (Appendix A.1): at most 7 bytes (RFC 8613 §3.3).
        if c_i.as_slice().len() > MAX_ID_LEN {
            return Err(Error::Malformed);
        }
        let ead_2 = ead_2(ead_1.as_ref())?;
        let h_message_1 = processing.h_message_1;

        // A replay of a message_1 we are answering replaces that handshake (same Initiator
        // retrying, or an attacker who cannot finish it anyway).
        for slot in &mut self.pending {
            if slot.as_ref().is_some_and(|p| p.h_message_1 == h_message_1) {
                *slot = None;
            }
        }
        let index = self
            .pending
            .iter()
            .position(Option::is_none)
            .ok_or(Error::Busy)?;
        let c_r = self.choose_c_r(&c_i, &taken)?;
        let (state, message_2) = r_prepare_message_2(
            &processing,
            &mut self.crypto,
            self.identity.credential,
            &self.identity.private_key,
            c_r,
            self.identity.transfer.into(),
            &ead_2,
        )?;
        let bytes = message_2.as_slice();
        out.get_mut(..bytes.len())
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pending[index] = Some(Pending {
            c_r,
            c_i,
            h_message_1,
            state,
            expires: now + self.lifetime,
        });
        Ok(Message2 {
            len: bytes.len(),
            c_r,
            ead_1,
        })
    }

    /// A fresh C_R: one of the 48 one-byte identifiers (-24..=23, RFC 9528 §3.3.2), not C_I,
    /// not in the table, not `taken` by an OSCORE context.
    fn choose_c_r(
        &mut self,
        c_i: &ConnId,
        taken: &impl Fn(&[u8]) -> bool,
    ) -> Result<ConnId, Error> {
        let free = |id: &ConnId, pending: &[Option<Pending>]| {
            id != c_i && !taken(id.as_slice()) && !pending.iter().flatten().any(|p| p.c_r == *id)
        };
        // Random first (unlinkable identifiers), then a sweep so a crowded space still
        // finds the free one.
        for _ in 0..8 {
            let b = self.crypto.get_random_byte() % 48;
            if let Some(id) = one_byte_id(b).filter(|id| free(id, &self.pending)) {
                return Ok(id);
            }
        }
        (0..48)
            .filter_map(one_byte_id)
            .find(|id| free(id, &self.pending))
            .ok_or(Error::Busy)
    }

    /// Processes message_3 of the handshake `c_r` names; on success the handshake is
    /// established and leaves the table, and message_4 is written into `out` if asked for.
    /// On failure it leaves the table too (RFC 9528 §5.4.3: the session is aborted).
    pub fn message_3(
        &mut self,
        now: Instant,
        c_r: &ConnId,
        message_3: &[u8],
        ead_4: Message4<'_>,
        out: &mut [u8],
    ) -> Result<Established, Error> {
        self.expire(now);
        let slot = self
            .pending
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|p| p.c_r == *c_r))
            .ok_or(Error::UnknownConnection)?;
        let Pending { c_i, mut state, .. } = slot.take().ok_or(Error::UnknownConnection)?;
        wire::check_ciphertext_message(message_3, lakers::AES_CCM_TAG_LEN)?;
        let buf = EdhocMessageBuffer::new_from_slice(message_3).map_err(|_| Error::Malformed)?;
        let (processing, id_cred_i, ead_3) = r_parse_message_3(&mut state, &mut self.crypto, &buf)?;
        let peer =
            find_trusted(self.trusted.as_ref(), &id_cred_i).ok_or(Error::UnknownCredential)?;
        let (processed, _prk_out) =
            r_verify_message_3(&mut { processing }, &mut self.crypto, peer)?;
        let (completed, message_4_len) = match ead_4 {
            Message4::Omit => (r_complete_without_message_4(&processed)?, None),
            Message4::Send(ead_4) => {
                let (completed, m4) =
                    r_prepare_message_4(&processed, &mut self.crypto, &ead_4.cloned())?;
                let bytes = m4.as_slice();
                out.get_mut(..bytes.len())
                    .ok_or(Error::BufferTooSmall)?
                    .copy_from_slice(bytes);
                (completed, Some(bytes.len()))
            }
        };
        let secrets = oscore_secrets(&completed, &mut self.crypto);
        let context = security_context(&secrets, c_r, &c_i)?;
        Ok(Established {
            context,
            peer,
            ead_3,
            message_4_len,
        })
    }

    /// Drops the handshake `c_r` names (e.g. after the Initiator's error message).
    pub fn abort(&mut self, c_r: &ConnId) {
        for slot in &mut self.pending {
            if slot.as_ref().is_some_and(|p| p.c_r == *c_r) {
                *slot = None;
            }
        }
    }
}

/// The one-byte connection identifier number `n` of 0..48: 0..=23 and -1..=-24 in their
/// CBOR encodings 0x00..=0x17 and 0x20..=0x37.
/// (`None` never happens: one byte always fits a connection identifier.)
fn one_byte_id(n: u8) -> Option<ConnId> {
    let raw = if n < 24 { n } else { 0x20 + (n - 24) };
    ConnId::from_slice(&[raw])
}
