//! Option classes (RFC 8613 §4.1): which options of the original message are encrypted
//! (Class E, "Inner"), which stay readable for proxies (Class U, "Outer"), and which are
//! both. RFC 8613 defines no Class I option, so the AAD carries none.

use crate::option::OptionNumber;

/// How OSCORE carries an option of the original message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptionClass {
    /// Encrypted and integrity protected (Class E): only in the plaintext.
    Inner,
    /// Unprotected (Class U): only in the outer message, readable by proxies.
    Outer,
    /// Both an Inner and an Outer copy (Observe, §4.1.3.5).
    Both,
    /// Must not appear in an original message: OSCORE itself (no nesting, §4.1.3.7), and
    /// Proxy-Uri, which the client must decompose (§4.1.3.3).
    Forbidden,
}

/// The class of an option number (RFC 8613 §4.1, Figure 5). Options not listed there are
/// Class E unless their specification says otherwise (§4.1).
pub const fn class_of(number: OptionNumber) -> OptionClass {
    match number.0 {
        // Uri-Host, Uri-Port, Proxy-Scheme: Class U (§4.1.3.3).
        3 | 7 | 39 => OptionClass::Outer,
        // Hop-Limit: Class U (RFC 8768 §3). EDHOC (21): Class U (RFC 9668 §3.1), it is
        // read before the request can be unprotected.
        16 | 21 => OptionClass::Outer,
        // Observe (§4.1.3.5): Inner and Outer (the outer copy lets proxies forward
        // notifications).
        6 => OptionClass::Both,
        // OSCORE (9) and Proxy-Uri (35).
        9 | 35 => OptionClass::Forbidden,
        // Everything else, including Block1/Block2/Size1/Size2 (inner block-wise is the
        // end-to-end default, §4.1.3.4.1), Max-Age (§4.1.3.1), Echo and Request-Tag
        // (RFC 9175 §2.3, §3.3), and No-Response (§4.1.3.6: Inner only; the server
        // ignores an Outer copy): Class E.
        _ => OptionClass::Inner,
    }
}

/// Outer Block options are the fragments of an outer block-wise transfer
/// (RFC 8613 §4.1.3.4.2): the OSCORE message must be reassembled before it can be
/// verified.
pub const fn is_outer_block(number: OptionNumber) -> bool {
    matches!(number.0, 23 | 27)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8613_figure_5() {
        for (n, c) in [
            (OptionNumber::IF_MATCH, OptionClass::Inner),
            (OptionNumber::URI_HOST, OptionClass::Outer),
            (OptionNumber::ETAG, OptionClass::Inner),
            (OptionNumber::OBSERVE, OptionClass::Both),
            (OptionNumber::URI_PORT, OptionClass::Outer),
            (OptionNumber::OSCORE, OptionClass::Forbidden),
            (OptionNumber::URI_PATH, OptionClass::Inner),
            (OptionNumber::MAX_AGE, OptionClass::Inner),
            (OptionNumber::BLOCK2, OptionClass::Inner),
            (OptionNumber::PROXY_URI, OptionClass::Forbidden),
            (OptionNumber::PROXY_SCHEME, OptionClass::Outer),
            (OptionNumber::ECHO, OptionClass::Inner),
            (OptionNumber::NO_RESPONSE, OptionClass::Inner),
            (OptionNumber(65000), OptionClass::Inner),
            // EDHOC (RFC 9668 §3.1) and Hop-Limit (RFC 8768 §3).
            (OptionNumber(21), OptionClass::Outer),
            (OptionNumber(16), OptionClass::Outer),
        ] {
            assert_eq!(class_of(n), c, "{n}");
        }
    }
}
