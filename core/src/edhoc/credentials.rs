//! Authentication credentials: our own (a static P-256 key and its CCS) and the peers we
//! trust (RFC 9528 §3.5).

use lakers::{credential_check_or_fetch, Credential, CredentialTransfer, IdCred, P256_ELEM_LEN};

/// How ID_CRED_x names our credential in message_2/message_3 (RFC 9528 §3.5.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Transfer {
    /// By value: the whole CCS travels in the message (`kccs`, RFC 9528 §3.5.3).
    ByValue,
    /// By reference: only its key identifier (`kid`); the peer must know the CCS.
    ByKid,
}

impl From<Transfer> for CredentialTransfer {
    fn from(t: Transfer) -> CredentialTransfer {
        match t {
            Transfer::ByValue => CredentialTransfer::ByValue,
            Transfer::ByKid => CredentialTransfer::ByReference,
        }
    }
}

/// Our own identity: the static Diffie-Hellman private key of method 3 and the CCS that
/// carries its public key.
#[derive(Clone, Copy)]
pub struct Identity {
    /// P-256 private key (32-byte scalar).
    pub private_key: [u8; P256_ELEM_LEN],
    /// Our CCS (a CWT Claims Set with the COSE_Key in `cnf`, RFC 9528 §3.5.2).
    pub credential: Credential,
    /// How the peer is told which credential it is.
    pub transfer: Transfer,
}

impl core::fmt::Debug for Identity {
    // The private key is never printed.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("credential", &self.credential)
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

/// Finds the trusted credential that `id_cred` names, by key identifier or by value
/// (RFC 9528 §3.5.3): a CCS sent by value is accepted only if it is one of `trusted`.
pub fn find_trusted(trusted: &[Credential], id_cred: &IdCred) -> Option<Credential> {
    trusted
        .iter()
        .filter(|c| {
            c.public_key()
                .is_some_and(|k| super::point::valid_public(&k))
        })
        .find_map(|c| credential_check_or_fetch(Some(*c), *id_cred).ok())
}

impl Identity {
    /// Whether the private key and the credential's public key are valid P-256 keys.
    pub fn is_valid(&self) -> bool {
        super::point::valid_private(&self.private_key)
            && self
                .credential
                .public_key()
                .is_some_and(|k| super::point::valid_public(&k))
    }
}
