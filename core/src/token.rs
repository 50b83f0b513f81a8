//! The token (RFC 7252 §5.3.1): what matches a response to its request and names an
//! observation (RFC 7641 §4.1), shared by the exchange and observe layers.

use crate::message::MAX_TOKEN_LEN;

/// A token (0–8 bytes, RFC 7252 §5.3.1), stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Token {
    bytes: [u8; MAX_TOKEN_LEN],
    len: u8,
}

impl Token {
    /// A token from bytes; `None` if longer than 8.
    pub fn new(bytes: &[u8]) -> Option<Token> {
        let mut t = Token::default();
        t.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        t.len = bytes.len() as u8;
        Some(t)
    }

    /// The token bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}
