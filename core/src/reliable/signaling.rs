//! Signaling messages (RFC 8323 §5): codes 7.01–7.05 and their options, whose numbers are
//! per code (§5.2), read from and written into RFC 8323 messages.
//!
//! Every option defined for signaling is elective (even number); an unknown elective
//! option is ignored and an unknown critical one (odd number) is a protocol error that
//! the connection answers with Abort (§5.3, §5.6). As over UDP (RFC 7252 §5.4.1), a
//! defined option with a value outside its format is treated as an unknown one.

use super::wire::{Framing, ReliableBuilder, ReliableMessage};
use crate::code::Code;
use crate::message::BuildError;
use crate::option::{decode_uint, OptionNumber, Options};

/// The default and minimum Max-Message-Size (RFC 8323 §5.3.1).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 1152;

/// Signaling option numbers (RFC 8323 §5.3–§5.6, IANA "CoAP Signaling Option Numbers").
pub mod option {
    /// CSM: Max-Message-Size (uint, 0–4 bytes, §5.3.1).
    pub const MAX_MESSAGE_SIZE: u16 = 2;
    /// CSM: Block-Wise-Transfer (empty, §5.3.2).
    pub const BLOCK_WISE_TRANSFER: u16 = 4;
    /// Ping and Pong: Custody (empty, §5.4.1).
    pub const CUSTODY: u16 = 2;
    /// Release: Alternative-Address (string, 1–255 bytes, repeatable, §5.5.1).
    pub const ALTERNATIVE_ADDRESS: u16 = 2;
    /// Release: Hold-Off (uint seconds, 0–3 bytes, §5.5.2).
    pub const HOLD_OFF: u16 = 4;
    /// Abort: Bad-CSM-Option (uint, 0–2 bytes, §5.6.1).
    pub const BAD_CSM_OPTION: u16 = 2;
}

/// A parsed signaling message.
#[derive(Clone, Debug)]
pub enum Signal<'a> {
    /// 7.01 Capabilities and Settings Message (§5.3).
    Csm {
        /// Max-Message-Size, if announced.
        max_message_size: Option<u32>,
        /// Block-Wise-Transfer announced (§5.3.2, BERT §6).
        block_wise_transfer: bool,
    },
    /// 7.02 Ping (§5.4).
    Ping {
        /// Custody requested.
        custody: bool,
    },
    /// 7.03 Pong (§5.4).
    Pong {
        /// Custody taken.
        custody: bool,
    },
    /// 7.04 Release (§5.5).
    Release {
        /// Where to reconnect (Alternative-Address options).
        alternative_addresses: AlternativeAddresses<'a>,
        /// Seconds to wait before reconnecting (Hold-Off).
        hold_off: Option<u32>,
        /// Diagnostic payload.
        diagnostic: &'a [u8],
    },
    /// 7.05 Abort (§5.6).
    Abort {
        /// The CSM option that made the peer abort (Bad-CSM-Option).
        bad_csm_option: Option<u16>,
        /// Diagnostic payload.
        diagnostic: &'a [u8],
    },
}

/// The Alternative-Address values of a Release message, in order (§5.5.1).
#[derive(Clone, Debug)]
pub struct AlternativeAddresses<'a>(Options<'a>);

impl<'a> AlternativeAddresses<'a> {
    /// No addresses.
    pub fn empty() -> Self {
        AlternativeAddresses(Options::new(&[]))
    }
}

impl<'a> Iterator for AlternativeAddresses<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.0.by_ref().find_map(|o| {
            let ok =
                o.number.0 == option::ALTERNATIVE_ADDRESS && (1..=255).contains(&o.value.len());
            ok.then(|| core::str::from_utf8(o.value).ok()).flatten()
        })
    }
}

/// Why a signaling message is not acceptable.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SignalError {
    /// A 7.xx code other than 7.01–7.05.
    #[error("unknown signaling code 7.{:02}", .0.detail())]
    UnknownCode(Code),
    /// An unknown critical (odd-numbered) option (§5.2, §5.3).
    #[error("unknown critical option {option} in signaling code 7.{:02}", .code.detail())]
    UnknownCriticalOption {
        /// The signaling code.
        code: Code,
        /// The option number.
        option: u16,
    },
}

/// A uint option value within `max` bytes (RFC 7252 §3.2).
fn uint_within(value: &[u8], max: usize) -> Option<u32> {
    if value.len() > max {
        return None;
    }
    decode_uint(value)
}

/// Reads a signaling message (its code must be of class 7).
pub fn parse<'a>(msg: &ReliableMessage<'a>) -> Result<Signal<'a>, SignalError> {
    let code = msg.code();
    let known: &[u16] = match code {
        Code::CSM => &[option::MAX_MESSAGE_SIZE, option::BLOCK_WISE_TRANSFER],
        Code::PING | Code::PONG => &[option::CUSTODY],
        Code::RELEASE => &[option::ALTERNATIVE_ADDRESS, option::HOLD_OFF],
        Code::ABORT => &[option::BAD_CSM_OPTION],
        _ => return Err(SignalError::UnknownCode(code)),
    };
    // Critical options have odd numbers (RFC 7252 §5.4.6, per code here).
    if let Some(o) = msg
        .options()
        .find(|o| o.number.0 & 1 == 1 && !known.contains(&o.number.0))
    {
        return Err(SignalError::UnknownCriticalOption {
            code,
            option: o.number.0,
        });
    }
    let value = |n: u16| msg.option(OptionNumber(n)).map(|o| o.value);
    let flag = |n: u16| value(n).is_some_and(<[u8]>::is_empty);
    Ok(match code {
        Code::CSM => Signal::Csm {
            max_message_size: value(option::MAX_MESSAGE_SIZE).and_then(|v| uint_within(v, 4)),
            block_wise_transfer: flag(option::BLOCK_WISE_TRANSFER),
        },
        Code::PING => Signal::Ping {
            custody: flag(option::CUSTODY),
        },
        Code::PONG => Signal::Pong {
            custody: flag(option::CUSTODY),
        },
        Code::RELEASE => Signal::Release {
            alternative_addresses: AlternativeAddresses(msg.options()),
            hold_off: value(option::HOLD_OFF).and_then(|v| uint_within(v, 3)),
            diagnostic: msg.payload(),
        },
        _ => Signal::Abort {
            bad_csm_option: value(option::BAD_CSM_OPTION)
                .and_then(|v| uint_within(v, 2))
                .and_then(|v| u16::try_from(v).ok()),
            diagnostic: msg.payload(),
        },
    })
}

/// Writes a CSM (§5.3): Max-Message-Size (left out when it is the default) and
/// Block-Wise-Transfer. Returns the message length.
pub fn write_csm(
    buf: &mut [u8],
    framing: Framing,
    max_message_size: u32,
    block_wise_transfer: bool,
) -> Result<usize, BuildError> {
    let mut b = ReliableBuilder::new(buf, framing, Code::CSM, &[])?;
    if max_message_size != DEFAULT_MAX_MESSAGE_SIZE {
        b.option_uint(OptionNumber(option::MAX_MESSAGE_SIZE), max_message_size)?;
    }
    if block_wise_transfer {
        b.option(OptionNumber(option::BLOCK_WISE_TRANSFER), &[])?;
    }
    b.finish()
}

/// Writes a Ping or Pong (§5.4) with the given token.
pub fn write_ping_pong(
    buf: &mut [u8],
    framing: Framing,
    code: Code,
    token: &[u8],
    custody: bool,
) -> Result<usize, BuildError> {
    let mut b = ReliableBuilder::new(buf, framing, code, token)?;
    if custody {
        b.option(OptionNumber(option::CUSTODY), &[])?;
    }
    b.finish()
}

/// Writes a Release (§5.5).
pub fn write_release(
    buf: &mut [u8],
    framing: Framing,
    alternative_address: Option<&str>,
    hold_off: Option<u32>,
    diagnostic: &str,
) -> Result<usize, BuildError> {
    let mut b = ReliableBuilder::new(buf, framing, Code::RELEASE, &[])?;
    if let Some(a) = alternative_address {
        b.option_str(OptionNumber(option::ALTERNATIVE_ADDRESS), a)?;
    }
    if let Some(h) = hold_off {
        b.option_uint(OptionNumber(option::HOLD_OFF), h)?;
    }
    b.payload(diagnostic.as_bytes())?;
    b.finish()
}

/// Writes an Abort (§5.6) with a diagnostic payload.
pub fn write_abort(
    buf: &mut [u8],
    framing: Framing,
    bad_csm_option: Option<u16>,
    diagnostic: &str,
) -> Result<usize, BuildError> {
    let mut b = ReliableBuilder::new(buf, framing, Code::ABORT, &[])?;
    if let Some(n) = bad_csm_option {
        b.option_uint(OptionNumber(option::BAD_CSM_OPTION), u32::from(n))?;
    }
    b.payload(diagnostic.as_bytes())?;
    b.finish()
}
