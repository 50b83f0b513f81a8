//! Reception rules a request must meet before any handler sees it: option recognition,
//! occurrence and value length (RFC 7252 §5.4.1, §5.4.3, §5.4.5), and the value rules
//! of options whose registered format alone does not say enough (RFC 7959 §2.2,
//! RFC 8768 §3). One pass over the options, driven by [`crate::option::REGISTRY`] and
//! the small [`VALUE_RULES`] table, so that the code stays the same size whatever the
//! number of registered options.

use crate::block::MAX_SZX;
use crate::code::Code;
use crate::message::Message;
use crate::option::{decode_uint, OptionNumber};

/// Why a request is refused before it reaches its handler. Each variant is one rule;
/// [`Rejection::code`] is the response the rule asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rejection {
    /// A critical option the handler does not understand (RFC 7252 §5.4.1): 4.02, or
    /// 5.05 for Proxy-Uri / Proxy-Scheme at an endpoint that is no proxy (§5.7.2).
    #[error("unrecognized critical option {0}")]
    Unrecognized(OptionNumber),
    /// A critical option whose value length (or UTF-8 text) is outside its registered
    /// format; treated like an unrecognized option (§5.4.3): 4.02.
    #[error("critical option {0} with a value outside its registered format")]
    BadValue(OptionNumber),
    /// A second occurrence of a non-repeatable critical option; each supernumerary
    /// occurrence is treated like an unrecognized option (§5.4.5): 4.02.
    #[error("non-repeatable critical option {0} given more than once")]
    Repeated(OptionNumber),
    /// Block1 or Block2 with the reserved SZX 7 in a request (RFC 7959 §2.2): 4.00.
    #[error("{0} with the reserved block size exponent 7")]
    ReservedSzx(OptionNumber),
    /// Hop-Limit 0 or above 255 (RFC 8768 §3): 4.00.
    #[error("Hop-Limit outside 1..=255")]
    HopLimitRange,
}

impl Rejection {
    /// The response code the rule prescribes. A NON request refused with 4.02 is
    /// rejected with RST instead (§5.4.1); the endpoint decides that.
    pub const fn code(self) -> Code {
        match self {
            Rejection::Unrecognized(OptionNumber::PROXY_URI | OptionNumber::PROXY_SCHEME) => {
                Code::PROXYING_NOT_SUPPORTED
            }
            Rejection::Unrecognized(_) | Rejection::BadValue(_) | Rejection::Repeated(_) => {
                Code::BAD_OPTION
            }
            Rejection::ReservedSzx(_) | Rejection::HopLimitRange => Code::BAD_REQUEST,
        }
    }
}

/// A value rule beyond the registered length range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueRule {
    /// Block1/Block2: SZX 7 is reserved over UDP (RFC 7959 §2.2).
    BlockSzx,
    /// Hop-Limit: 1..=255 (RFC 8768 §3); checked on the decoded value, so that an empty
    /// value (0) and a long one (> 255) are both refused rather than ignored.
    HopLimit,
}

/// The options whose values have a rule of their own, in number order.
pub const VALUE_RULES: &[(OptionNumber, ValueRule)] = &[
    (OptionNumber::HOP_LIMIT, ValueRule::HopLimit),
    (OptionNumber::BLOCK2, ValueRule::BlockSzx),
    (OptionNumber::BLOCK1, ValueRule::BlockSzx),
];

fn value_rule(rules: &[(OptionNumber, ValueRule)], number: OptionNumber) -> Option<ValueRule> {
    rules.iter().find(|(n, _)| *n == number).map(|(_, r)| *r)
}

/// Checks one option value against its [`ValueRule`] in `rules`, if it has one.
fn check_rule(
    rules: &[(OptionNumber, ValueRule)],
    number: OptionNumber,
    value: &[u8],
) -> Result<(), Rejection> {
    match value_rule(rules, number) {
        Some(ValueRule::BlockSzx) => match value.last() {
            Some(b) if b & 7 > MAX_SZX => Err(Rejection::ReservedSzx(number)),
            _ => Ok(()),
        },
        Some(ValueRule::HopLimit) => match decode_uint(value) {
            Some(1..=255) => Ok(()),
            _ => Err(Rejection::HopLimitRange),
        },
        None => Ok(()),
    }
}

/// Checks the options of a request against the reception rules, in wire order, before
/// the handler runs. `understands` says which critical options the handler supports
/// ([`crate::Handler::understands`]). Elective options that break a rule are not an
/// error: they are ignored (§5.4.1, §5.4.3, §5.4.5), which [`Message::option`] does by
/// skipping values outside their registered format and returning the first occurrence.
pub fn check_request_options(
    msg: &Message<'_>,
    understands: impl FnMut(OptionNumber) -> bool,
) -> Result<(), Rejection> {
    check(msg, understands, VALUE_RULES)
}

/// The rules of RFC 7252 §5.4.1, §5.4.3 and §5.4.5 alone, for a response: a critical
/// option that is unknown, outside its registered format or repeated makes the client
/// reject it (RST for CON, §5.4.1). The request-only value rules do not apply.
pub fn check_response_options(
    msg: &Message<'_>,
    understands: impl FnMut(OptionNumber) -> bool,
) -> Result<(), Rejection> {
    check(msg, understands, &[])
}

fn check(
    msg: &Message<'_>,
    mut understands: impl FnMut(OptionNumber) -> bool,
    rules: &[(OptionNumber, ValueRule)],
) -> Result<(), Rejection> {
    let mut prev: Option<OptionNumber> = None;
    for o in msg.options() {
        let n = o.number;
        let repeated = prev == Some(n);
        prev = Some(n);
        if n.is_elective() {
            // Only the first occurrence counts (§5.4.5): a second Hop-Limit is ignored.
            if !repeated {
                check_rule(rules, n, o.value)?;
            }
            continue;
        }
        if !understands(n) {
            return Err(Rejection::Unrecognized(n));
        }
        if n.check_value(o.value).is_err() {
            return Err(Rejection::BadValue(n));
        }
        // Options arrive sorted by number (the deltas are non-negative), so a repeat
        // directly follows its first occurrence.
        if repeated && n.info().is_some_and(|i| !i.repeatable) {
            return Err(Rejection::Repeated(n));
        }
        check_rule(rules, n, o.value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_table_is_sorted_and_codes_match_the_rfcs() {
        assert!(VALUE_RULES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            Rejection::Unrecognized(OptionNumber::PROXY_URI).code(),
            Code::PROXYING_NOT_SUPPORTED
        );
        assert_eq!(
            Rejection::Repeated(OptionNumber::PROXY_URI).code(),
            Code::BAD_OPTION
        );
        assert_eq!(
            Rejection::ReservedSzx(OptionNumber::BLOCK2).code(),
            Code::BAD_REQUEST
        );
        assert_eq!(
            check_rule(VALUE_RULES, OptionNumber::HOP_LIMIT, &[]),
            Err(Rejection::HopLimitRange)
        );
        assert_eq!(
            check_rule(VALUE_RULES, OptionNumber::HOP_LIMIT, &[1, 0]),
            Err(Rejection::HopLimitRange)
        );
        assert_eq!(
            check_rule(VALUE_RULES, OptionNumber::HOP_LIMIT, &[255]),
            Ok(())
        );
        assert_eq!(
            check_rule(VALUE_RULES, OptionNumber::BLOCK1, &[0x16]),
            Ok(())
        );
        assert_eq!(
            check_rule(VALUE_RULES, OptionNumber::BLOCK1, &[0x1f]),
            Err(Rejection::ReservedSzx(OptionNumber::BLOCK1))
        );
    }
}
