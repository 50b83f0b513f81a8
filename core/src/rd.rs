//! Resource directory client (RFC 9176): registers an endpoint's links at an RD, keeps the
//! registration alive with updates before its lifetime runs out, and registers again after
//! a failure. Sans-IO like the rest of the core: the [`RdClient`] says which request is due
//! ([`RdClient::poll_action`]), writes it ([`RdClient::write_request`]) and learns the
//! outcome ([`RdClient::handle_response`], [`RdClient::handle_failure`]); [`RdClient::drive`]
//! and [`RdClient::handle_event`] do this on an [`Endpoint`] directly (embassy, simulator).
//!
//! ```
//! use coap_core::rd::{Action, RdClient, RegistrationParams};
//! use coap_core::{Code, Instant};
//!
//! let params = RegistrationParams::new("node1").lifetime(60);
//! let mut rd = RdClient::new(params, Instant::ZERO);
//! assert_eq!(rd.poll_action(Instant::ZERO), Some(Action::Register));
//! // ... send it; the RD answers 2.01 Created with Location-Path reg/7:
//! rd.handle_response(Instant::ZERO, Code::CREATED, [&b"reg"[..], b"7"].into_iter(), None);
//! assert_eq!(rd.location(), Some("reg/7"));
//! // The update is due before the 60 s lifetime ends.
//! assert_eq!(rd.poll_action(Instant::from_millis(30_000)), None);
//! assert_eq!(rd.poll_action(Instant::from_millis(45_000)), Some(Action::Update));
//! ```

use core::fmt::Write as _;

use crate::code::Code;
use crate::endpoint::{Endpoint, Error, Event, RequestParams};
use crate::exchange::RequestId;
use crate::link_format::{Filter, Links, SliceWriter};
use crate::message::{BuildError, Message, MessageBuilder};
use crate::option::OptionNumber;
use crate::time::Instant;

/// Room for the registration resource's location (`reg/1234`, RFC 9176 §5.3).
pub const LOCATION_CAP: usize = 64;
/// First delay before retrying after a failure; it doubles up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: u64 = 2_000;
/// Longest delay between retries.
pub const MAX_BACKOFF_MS: u64 = 120_000;

/// What the endpoint registers (RFC 9176 §5.3 registration parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationParams<'a> {
    /// Endpoint name (`ep`), at most 63 bytes.
    pub ep: &'a str,
    /// Sector (`d`).
    pub d: Option<&'a str>,
    /// Lifetime in seconds (`lt`, default 90000).
    pub lt: u32,
    /// Base URI (`base`); the RD uses the source address when absent.
    pub base: Option<&'a str>,
    /// Endpoint type (`et`).
    pub et: Option<&'a str>,
    /// Path of the RD's registration interface (e.g. `/rd`, found with
    /// [`registration_interface`]).
    pub rd_path: &'a str,
}

impl<'a> RegistrationParams<'a> {
    /// Registration of `ep` at `/rd` with the default lifetime.
    pub const fn new(ep: &'a str) -> Self {
        RegistrationParams {
            ep,
            d: None,
            lt: 90_000,
            base: None,
            et: None,
            rd_path: "/rd",
        }
    }

    /// With lifetime `lt` seconds (at least 1).
    pub const fn lifetime(mut self, lt: u32) -> Self {
        self.lt = if lt == 0 { 1 } else { lt };
        self
    }

    /// With the registration interface at `path`.
    pub const fn at(mut self, path: &'a str) -> Self {
        self.rd_path = path;
        self
    }
}

/// A request the client wants sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// POST to the registration interface with the links (§5.3).
    Register,
    /// POST to the registration resource, empty: refresh the lifetime (§5.3.1).
    Update,
    /// DELETE of the registration resource (§5.3.2).
    Remove,
}

impl Action {
    /// The request method.
    pub const fn code(self) -> Code {
        match self {
            Action::Register | Action::Update => Code::POST,
            Action::Remove => Code::DELETE,
        }
    }
}

/// Where the client stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RdState {
    /// Not registered: a registration is due at the next deadline.
    Unregistered,
    /// Registered; an update is due at the next deadline.
    Registered,
    /// Removed on request; nothing more is sent.
    Removed,
}

/// What a response or failure meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RdEvent {
    /// Registered (2.01), at [`RdClient::location`].
    Registered,
    /// The lifetime was refreshed (2.04).
    Updated,
    /// The registration was removed (2.02, or 4.04: gone already).
    Removed,
    /// The request failed (an error code, or none for a timeout or reset); the client
    /// retries at its next deadline (registering again).
    Failed(Option<Code>),
    /// Nothing was expected (no request in flight).
    Ignored,
}

/// The RFC 9176 client state machine. Storage is inline: no allocation.
#[derive(Clone, Debug)]
pub struct RdClient<'a> {
    params: RegistrationParams<'a>,
    state: RdState,
    location: heapless::String<LOCATION_CAP>,
    /// When the next action is due.
    due: Instant,
    in_flight: Option<Action>,
    /// Remove instead of refresh at the next action.
    removing: bool,
    backoff_ms: u64,
    /// The request id when driven on an [`Endpoint`].
    request: Option<RequestId>,
}

impl<'a> RdClient<'a> {
    /// A client whose first registration is due at `now`.
    pub fn new(params: RegistrationParams<'a>, now: Instant) -> Self {
        RdClient {
            params,
            state: RdState::Unregistered,
            location: heapless::String::new(),
            due: now,
            in_flight: None,
            removing: false,
            backoff_ms: FIRST_BACKOFF_MS,
            request: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &RegistrationParams<'a> {
        &self.params
    }

    /// The state.
    pub fn state(&self) -> RdState {
        self.state
    }

    /// The registration resource's path (`/`-joined Location-Path), once registered.
    pub fn location(&self) -> Option<&str> {
        (self.state == RdState::Registered).then_some(self.location.as_str())
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<Action> {
        self.in_flight
    }

    /// When [`RdClient::poll_action`] has something to do next (`None` while a request
    /// is in flight or after removal).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.in_flight, self.state) {
            (Some(_), _) | (None, RdState::Removed) => None,
            _ => Some(self.due),
        }
    }

    /// Asks for the registration to be removed (DELETE) as the next action; without a
    /// registration, the client just stops.
    pub fn remove(&mut self, now: Instant) {
        if self.state == RdState::Registered {
            self.removing = true;
            self.due = now;
        } else if self.in_flight.is_none() {
            self.state = RdState::Removed;
        } else {
            self.removing = true;
        }
    }

    /// The action due at `now`, marked in flight; `None` if nothing is due or a request is
    /// in flight. Send it (see [`RdClient::write_request`]), then report its outcome.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if self.in_flight.is_some() || self.state == RdState::Removed || now < self.due {
            return None;
        }
        let action = match (self.state, self.removing) {
            (RdState::Registered, true) => Action::Remove,
            (RdState::Registered, false) => Action::Update,
            _ => Action::Register,
        };
        self.in_flight = Some(action);
        Some(action)
    }

    /// Puts back an action that could not be sent (e.g. the endpoint was busy): it is
    /// due again after a short delay.
    pub fn unsend(&mut self, now: Instant) {
        self.in_flight = None;
        self.due = now.add_millis(100);
    }

    /// Writes the options and payload of `action` (the method is [`Action::code`]):
    /// Uri-Path, Content-Format 40 and the Uri-Query parameters with the links for a
    /// registration; the registration resource's path for an update or removal.
    pub fn write_request(
        &self,
        action: Action,
        b: &mut MessageBuilder<'_>,
        links: &[u8],
    ) -> Result<(), BuildError> {
        match action {
            Action::Register => {
                write_path(b, self.params.rd_path)?;
                b.option_uint(OptionNumber::CONTENT_FORMAT, 40)?;
                let mut buf = [0u8; 270];
                let p = &self.params;
                query(b, &mut buf, "ep", p.ep)?;
                if let Some(d) = p.d {
                    query(b, &mut buf, "d", d)?;
                }
                let mut lt: heapless::String<12> = heapless::String::new();
                write!(lt, "{}", p.lt).map_err(|_| BuildError::BufferTooSmall)?;
                query(b, &mut buf, "lt", &lt)?;
                if let Some(base) = p.base {
                    query(b, &mut buf, "base", base)?;
                }
                if let Some(et) = p.et {
                    query(b, &mut buf, "et", et)?;
                }
                if !links.is_empty() {
                    b.payload(links)?;
                }
                Ok(())
            }
            Action::Update | Action::Remove => write_path(b, &self.location),
        }
    }

    /// The outcome of the request in flight: its response code, Location-Path values and
    /// Max-Age (for 5.03, how long to wait).
    pub fn handle_response<'l>(
        &mut self,
        now: Instant,
        code: Code,
        location: impl Iterator<Item = &'l [u8]>,
        max_age: Option<u32>,
    ) -> RdEvent {
        let Some(action) = self.in_flight.take() else {
            return RdEvent::Ignored;
        };
        self.request = None;
        match (action, code) {
            (Action::Register, Code::CREATED) => {
                self.location.clear();
                let mut ok = true;
                for (i, seg) in location.enumerate() {
                    let seg = core::str::from_utf8(seg).ok().filter(|s| !s.contains('/'));
                    let pushed = seg.is_some_and(|s| {
                        (i == 0 || self.location.push('/').is_ok())
                            && self.location.push_str(s).is_ok()
                    });
                    ok &= pushed;
                }
                if !ok || self.location.is_empty() {
                    // RFC 9176 §5.3: the location is how the registration is maintained;
                    // without a usable one, try again later.
                    return self.failed(now, Some(code), None);
                }
                self.registered(now);
                if self.removing {
                    self.due = now;
                }
                RdEvent::Registered
            }
            (Action::Update, Code::CHANGED) => {
                self.registered(now);
                RdEvent::Updated
            }
            (Action::Remove, Code::DELETED | Code::NOT_FOUND) => {
                self.state = RdState::Removed;
                RdEvent::Removed
            }
            // §5.3.1: the registration is gone at the RD: register again at once.
            (Action::Update, Code::NOT_FOUND) => {
                self.state = RdState::Unregistered;
                self.due = now;
                RdEvent::Failed(Some(code))
            }
            _ => self.failed(now, Some(code), max_age),
        }
    }

    /// The request in flight got no response (timeout, reset, send failure): registers
    /// again after a growing delay.
    pub fn handle_failure(&mut self, now: Instant) -> RdEvent {
        if self.in_flight.take().is_none() {
            return RdEvent::Ignored;
        }
        self.request = None;
        self.failed(now, None, None)
    }

    fn registered(&mut self, now: Instant) {
        self.state = RdState::Registered;
        self.backoff_ms = FIRST_BACKOFF_MS;
        // Refresh when three quarters of the lifetime have passed, leaving a quarter for
        // retransmissions and retries before the RD drops the registration.
        let lt_ms = u64::from(self.params.lt) * 1000;
        self.due = now.add_millis(lt_ms - lt_ms / 4);
    }

    fn failed(&mut self, now: Instant, code: Option<Code>, max_age: Option<u32>) -> RdEvent {
        if self.removing {
            // Removal is best effort: the lifetime ends the registration anyway.
            self.state = RdState::Removed;
            return RdEvent::Failed(code);
        }
        self.state = RdState::Unregistered;
        let wait = match max_age {
            // 5.03 with Max-Age: the RD said when to come back (RFC 7252 §5.9.3.4).
            Some(s) if code == Some(Code::SERVICE_UNAVAILABLE) => u64::from(s) * 1000,
            _ => self.backoff_ms,
        };
        self.due = now.add_millis(wait);
        self.backoff_ms = (self.backoff_ms * 2).min(MAX_BACKOFF_MS);
        RdEvent::Failed(code)
    }

    /// Convenience: [`RdClient::handle_response`] with a response message.
    pub fn handle_message(&mut self, now: Instant, message: &Message<'_>) -> RdEvent {
        self.handle_response(
            now,
            message.code(),
            message.options_of(OptionNumber::LOCATION_PATH),
            message.uint_option(OptionNumber::MAX_AGE),
        )
    }

    /// Sends the due action, if any, on `endpoint` to the RD at `rd` (CON). `links` must
    /// fit one message (link sets larger than that go block-wise through a runtime's
    /// client). The request id, to match its outcome in [`RdClient::handle_event`].
    pub fn drive<A, const N: usize, const M: usize, const D: usize, const O: usize, S>(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint<A, N, M, D, O, S>,
        rd: A,
        links: &[u8],
    ) -> Result<Option<RequestId>, Error>
    where
        A: Copy + Eq + core::hash::Hash,
        S: crate::dedup::DedupStore<A>,
    {
        let Some(action) = self.poll_action(now) else {
            return Ok(None);
        };
        match endpoint.request(now, rd, RequestParams::con(action.code()), |b| {
            self.write_request(action, b, links)
        }) {
            Ok(id) => {
                self.request = Some(id);
                Ok(Some(id))
            }
            Err(e) => {
                self.unsend(now);
                Err(e)
            }
        }
    }

    /// Takes an endpoint event; those of the request [`RdClient::drive`] sent give an
    /// [`RdEvent`], others [`RdEvent::Ignored`].
    pub fn handle_event<A>(&mut self, now: Instant, event: &Event<'_, A>) -> RdEvent {
        let mine = |id: &RequestId| self.request == Some(*id);
        match event {
            Event::Response { id, message, .. } if mine(id) => self.handle_message(now, message),
            Event::Timeout { id } | Event::Reset { id } | Event::Failed { id, .. } if mine(id) => {
                self.handle_failure(now)
            }
            _ => RdEvent::Ignored,
        }
    }
}

/// Writes `path` as Uri-Path options; a trailing `/` becomes a trailing empty segment (an
/// RD may distinguish `/rd/` from `/rd`).
fn write_path(b: &mut MessageBuilder<'_>, path: &str) -> Result<(), BuildError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok(());
    }
    for seg in path.split('/') {
        b.option_str(OptionNumber::URI_PATH, seg)?;
    }
    Ok(())
}

fn query(
    b: &mut MessageBuilder<'_>,
    buf: &mut [u8],
    name: &str,
    value: &str,
) -> Result<(), BuildError> {
    let mut w = SliceWriter::new(buf);
    write!(w, "{name}={value}").map_err(|_| BuildError::BufferTooSmall)?;
    b.option(OptionNumber::URI_QUERY, w.written())?;
    Ok(())
}

/// The registration interface in an RD's `/.well-known/core` answer (RFC 9176 §4.3): the
/// target of the first link with `rt=core.rd`.
pub fn registration_interface(well_known_core: &[u8]) -> Option<&str> {
    let filter = Filter::parse(b"rt=core.rd")?;
    Links::new(well_known_core)
        .map_while(Result::ok)
        .find(|l| filter.matches(l))
        .map(|l| l.href())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    fn created(rd: &mut RdClient<'_>, now: Instant) -> RdEvent {
        rd.handle_response(now, Code::CREATED, [&b"reg"[..], b"1"].into_iter(), None)
    }

    #[test]
    fn registers_refreshes_and_reregisters() {
        let mut rd = RdClient::new(RegistrationParams::new("n").lifetime(100), T0);
        assert_eq!(rd.poll_action(T0), Some(Action::Register));
        assert_eq!(rd.poll_action(T0), None, "one request at a time");
        assert_eq!(created(&mut rd, T0), RdEvent::Registered);
        assert_eq!(rd.location(), Some("reg/1"));
        assert_eq!(rd.poll_timeout(), Some(Instant::from_millis(75_000)));
        let t = Instant::from_millis(75_000);
        assert_eq!(rd.poll_action(t), Some(Action::Update));
        let e = rd.handle_response(t, Code::CHANGED, core::iter::empty(), None);
        assert_eq!(e, RdEvent::Updated);
        assert_eq!(rd.poll_timeout(), Some(Instant::from_millis(150_000)));
        // The RD forgot us: 4.04 on update means register again at once (§5.3.1).
        let t = Instant::from_millis(150_000);
        assert_eq!(rd.poll_action(t), Some(Action::Update));
        rd.handle_response(t, Code::NOT_FOUND, core::iter::empty(), None);
        assert_eq!(rd.poll_action(t), Some(Action::Register));
        // A timeout: retry after 2 s, then 4 s.
        assert_eq!(rd.handle_failure(t), RdEvent::Failed(None));
        assert_eq!(rd.poll_action(t.add_millis(1_999)), None);
        assert_eq!(rd.poll_action(t.add_millis(2_000)), Some(Action::Register));
        rd.handle_failure(t.add_millis(2_000));
        assert_eq!(rd.poll_timeout(), Some(t.add_millis(6_000)));
        // 5.03 with Max-Age: wait as long as told.
        assert_eq!(rd.poll_action(t.add_millis(6_000)), Some(Action::Register));
        rd.handle_response(
            t.add_millis(6_000),
            Code::SERVICE_UNAVAILABLE,
            core::iter::empty(),
            Some(30),
        );
        assert_eq!(rd.poll_timeout(), Some(t.add_millis(36_000)));
    }

    #[test]
    fn writes_the_rfc9176_registration_request() {
        let mut params = RegistrationParams::new("node1")
            .lifetime(60)
            .at("/resourcedirectory/");
        params.d = Some("floor-3");
        params.et = Some("oic.d.sensor");
        let rd = RdClient::new(params, T0);
        let mut buf = [0u8; 256];
        let mut b =
            MessageBuilder::new(&mut buf, crate::MessageType::Con, Code::POST, 1, &[1]).unwrap();
        rd.write_request(Action::Register, &mut b, b"</temp>;rt=\"t\"")
            .unwrap();
        let bytes = b.into_bytes();
        let m = Message::parse(bytes).unwrap();
        let mut path = m.uri_path();
        assert_eq!(path.next(), Some(&b"resourcedirectory"[..]));
        assert_eq!(path.next(), Some(&b""[..]));
        assert_eq!(path.next(), None);
        let mut q = m.uri_query();
        for want in ["ep=node1", "d=floor-3", "lt=60", "et=oic.d.sensor"] {
            assert_eq!(q.next(), Some(want.as_bytes()));
        }
        assert_eq!(m.content_format(), Some(40));
        assert_eq!(m.payload(), b"</temp>;rt=\"t\"");
    }

    #[test]
    fn removal_and_bad_locations() {
        let mut rd = RdClient::new(RegistrationParams::new("n"), T0);
        rd.poll_action(T0);
        // A 2.01 without Location-Path is unusable: retried.
        let e = rd.handle_response(T0, Code::CREATED, core::iter::empty(), None);
        assert_eq!(e, RdEvent::Failed(Some(Code::CREATED)));
        let t = Instant::from_millis(2_000);
        rd.poll_action(t);
        created(&mut rd, t);
        rd.remove(t);
        assert_eq!(rd.poll_action(t), Some(Action::Remove));
        let e = rd.handle_response(t, Code::DELETED, core::iter::empty(), None);
        assert_eq!((e, rd.state()), (RdEvent::Removed, RdState::Removed));
        assert_eq!(rd.poll_action(t.add_millis(1_000_000)), None);
        assert_eq!(rd.poll_timeout(), None);
        assert_eq!(rd.handle_failure(t), RdEvent::Ignored);
    }

    #[test]
    fn finds_the_registration_interface() {
        let wkc = br#"</rd-lookup/ep>;rt="core.rd-lookup-ep",</rd>;rt="core.rd";ct=40"#;
        assert_eq!(registration_interface(wkc), Some("/rd"));
        assert_eq!(registration_interface(b"</x>;rt=core.rd-lookup-res"), None);
        assert_eq!(registration_interface(b"garbage"), None);
    }
}
