//! OSCORE (RFC 8613): end-to-end protection of CoAP requests and responses with
//! COSE_Encrypt0, AES-CCM-16-64-128 and HKDF-SHA-256, without allocation.
//!
//! - [`context`]: security context derivation (§3.2) and per-context state;
//! - [`option`]: the OSCORE option value codec (§6.1);
//! - [`cose`]: AEAD nonce (§5.2) and AAD (§5.4);
//! - [`classes`]: which options are encrypted (Class E) or outer (Class U) (§4.1);
//! - [`protect`]: protecting and verifying requests and responses (§8);
//! - [`replay`]: the replay window (§7.4);
//! - [`sequence`]: sequence numbers that survive restarts (Appendix B.1.1);
//! - [`layer`]: a sans-IO layer between socket and [`crate::Endpoint`] that does all of the
//!   above per datagram, with bindings, Observe ordering and Echo recovery (B.1.2).
//!
//! ```
//! use coap_core::oscore::context::{ContextParams, SecurityContext};
//! use coap_core::oscore::option::PartialIv;
//! use coap_core::oscore::protect::{protect_request, unprotect_request};
//! use coap_core::{Code, MessageBuilder, MessageType, Message};
//!
//! let params = |s: &'static [u8], r: &'static [u8]| ContextParams {
//!     master_secret: b"0123456789abcdef", master_salt: b"salt", id_context: None,
//!     sender_id: s, recipient_id: r,
//! };
//! let client = SecurityContext::derive(&params(b"c", b"s"))?;
//! let server = SecurityContext::derive(&params(b"s", b"c"))?;
//! let mut plain = [0u8; 64];
//! let mut b = MessageBuilder::new(&mut plain, MessageType::Con, Code::GET, 1, &[7])?;
//! b.option_str(coap_core::OptionNumber::URI_PATH, "secret")?;
//! let n = b.finish();
//! let mut wire = [0u8; 128];
//! let (len, _binding) = protect_request(&client, &plain[..n], PartialIv::new(0).unwrap(), &mut wire)?;
//! assert_eq!(Message::parse(&wire[..len])?.code(), Code::POST); // the method is hidden
//! let mut inner = [0u8; 256];
//! let v = unprotect_request(&server, &wire[..len], &mut inner)?;
//! assert_eq!(&inner[..v.len], &plain[..n]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod classes;
pub mod context;
pub mod cose;
pub mod layer;
pub mod option;
mod outer;
pub mod params;
mod peer;
pub mod protect;
pub mod replay;
pub mod sequence;

pub use context::{ContextError, ContextParams, KidContext, SecurityContext};
pub use layer::{Incoming, Layer, LayerError};
pub use option::{OscoreOption, PartialIv};
pub use peer::{ContextId, Secured, Security};
pub use protect::{ProtectError, RequestBinding, UnprotectError};
