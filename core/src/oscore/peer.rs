//! Who a message is from or to, as the endpoint sees it: a transport address plus how the
//! message is protected (plain, an OSCORE context of the [`super::Layer`], a DTLS session).

/// Index of a security context in a [`super::Layer`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContextId(pub u8);

/// How a message between two endpoints is protected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Security {
    /// Plain CoAP.
    Plain,
    /// OSCORE with this security context.
    Oscore(ContextId),
    /// A DTLS session (RFC 7252 §9), named by a serial number its runtime never reuses:
    /// a response goes out over the session its request came in on (§9.1). This layer never
    /// produces it; the std runtimes' DTLS session layer does.
    Dtls(u64),
}

/// The peer identity the endpoint sees: transport address plus security.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Secured<A> {
    /// Transport address.
    pub addr: A,
    /// Protection.
    pub security: Security,
}
