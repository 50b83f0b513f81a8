//! A resource directory (RFC 9176), std side: the bounded registration store and its
//! lookups ([`Directory`]), and the CoAP interfaces on the core router ([`server`]).
//!
//! | path | what |
//! | --- | --- |
//! | `/rd` | registration interface (`rt=core.rd`): POST `?ep=..&lt=..` with links |
//! | `/reg/N` | a registration resource: POST updates, GET reads, DELETE removes (§5.3) |
//! | `/rd-lookup/ep` | endpoint lookup (`rt=core.rd-lookup-ep`, observable, §6) |
//! | `/rd-lookup/res` | resource lookup (`rt=core.rd-lookup-res`, observable, §6) |
//! | `/.well-known/rd` | simple registration (§5.1) |

pub mod client;
pub mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_core::link_format::{write_quoted, Filter, Link, LinkError, LinkWriter, Links};
use coap_core::Code;

/// The bounds of a directory's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Registrations held at once; a new one beyond gets 5.03.
    pub max_registrations: usize,
    /// Largest link-format payload of one registration; larger gets 4.13.
    pub max_links_bytes: usize,
    /// Distinct observed lookup queries (each is notified on its own).
    pub max_observed_lookups: usize,
}

impl Limits {
    /// 256 registrations of up to 16 KiB of links, 64 observed lookups.
    pub const DEFAULT: Limits = Limits {
        max_registrations: 256,
        max_links_bytes: 16 * 1024,
        max_observed_lookups: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The default registration lifetime (RFC 9176 §5.3: 90000 s, 25 hours).
pub const DEFAULT_LT: u32 = 90_000;
/// Longest `ep` and `d` (RFC 9176 §5.3: at most 63 bytes).
pub const MAX_NAME: usize = 63;

/// Why a registration, update or lookup was refused; [`RdError::code`] is the response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RdError {
    /// A query parameter is missing or malformed (4.00).
    #[error("{0}")]
    BadRequest(String),
    /// The payload is not valid link format (4.00, with the offset).
    #[error("invalid link format: {0}")]
    BadLinks(LinkError),
    /// The payload is not application/link-format (4.15).
    #[error("the payload must be application/link-format (40)")]
    UnsupportedFormat,
    /// The links exceed [`Limits::max_links_bytes`] (4.13).
    #[error("links larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// [`Limits::max_registrations`] reached (5.03).
    #[error("registration table full ({limit} registrations)")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// No such registration (4.04).
    #[error("no such registration")]
    NotFound,
}

impl RdError {
    /// The response code.
    pub fn code(&self) -> Code {
        match self {
            RdError::BadRequest(_) | RdError::BadLinks(_) => Code::BAD_REQUEST,
            RdError::UnsupportedFormat => Code::UNSUPPORTED_CONTENT_FORMAT,
            RdError::TooLarge { .. } => Code::REQUEST_ENTITY_TOO_LARGE,
            RdError::Full { .. } => Code::SERVICE_UNAVAILABLE,
            RdError::NotFound => Code::NOT_FOUND,
        }
    }
}

/// One registration (RFC 9176 §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Number in the registration resource's path `/reg/N`.
    pub id: u32,
    /// Endpoint name.
    pub ep: String,
    /// Sector.
    pub d: Option<String>,
    /// Explicit base URI, if given.
    pub base: Option<String>,
    /// Lifetime in seconds.
    pub lt: u32,
    /// Endpoint types (`et`, repeatable).
    pub et: Vec<String>,
    /// Other registration parameters, as endpoint attributes (§9.3).
    pub attrs: Vec<(String, Option<String>)>,
    /// Where the registration came from (the base when none is given).
    pub peer: SocketAddr,
    /// When the registration ends unless updated.
    pub expires: Instant,
    /// The registered links (validated link format).
    pub links: String,
}

impl Registration {
    /// The registration resource's path.
    pub fn path(&self) -> String {
        format!("/reg/{}", self.id)
    }

    /// The base URI of its links: `base`, or the address it registered from (§5.3).
    pub fn base_uri(&self) -> String {
        match &self.base {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => format!("coap://{}", canonical(self.peer)),
        }
    }

    /// The values of a registration attribute for lookup filters (§6: ep, d, base, et,
    /// lt and the other registration parameters).
    fn values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "ep" => vec![self.ep.clone()],
            "d" => self.d.iter().cloned().collect(),
            "base" => vec![self.base_uri()],
            "et" => self.et.clone(),
            "lt" => vec![self.lt.to_string()],
            _ => {
                let v: Vec<String> = self
                    .attrs
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.clone().unwrap_or_default())
                    .collect();
                if v.is_empty() {
                    return None;
                }
                v
            }
        })
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// `scheme://authority` of a URI (the whole of it if it has no path).
fn authority_of(uri: &str) -> &str {
    match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            let end = rest.find('/').map_or(uri.len(), |j| i + 3 + j);
            &uri[..end]
        }
        None => uri,
    }
}

/// Resolves a link target against a registration's base (RFC 3986 §5.2, the cases that
/// occur in registrations: absolute, network-path, absolute-path and relative-path).
pub fn resolve(base: &str, href: &str) -> String {
    let scheme_end = href.find(':');
    let first_slash = href.find('/');
    let absolute = match (scheme_end, first_slash) {
        (Some(c), Some(s)) => c < s,
        (Some(_), None) => true,
        _ => false,
    };
    if absolute {
        href.to_owned()
    } else if let Some(rest) = href.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("coap");
        format!("{scheme}://{rest}")
    } else if href.starts_with('/') {
        format!("{}{href}", authority_of(base))
    } else {
        format!("{}/{href}", base.trim_end_matches('/'))
    }
}

/// The parameters of a registration or update request (Uri-Query, §5.3 and §5.3.1).
#[derive(Debug, Default)]
struct Params {
    ep: Option<String>,
    d: Option<String>,
    lt: Option<u32>,
    base: Option<String>,
    et: Vec<String>,
    attrs: Vec<(String, Option<String>)>,
}

fn parse_params<'q>(queries: impl IntoIterator<Item = &'q [u8]>) -> Result<Params, RdError> {
    let mut p = Params::default();
    for q in queries {
        let q = std::str::from_utf8(q)
            .map_err(|_| RdError::BadRequest("query parameter is not UTF-8".into()))?;
        let (name, value) = match q.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (q, None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_owned)
                .ok_or_else(|| RdError::BadRequest(format!("{name} needs a value")))
        };
        match name {
            "ep" | "d" => {
                let v = need(value)?;
                if v.is_empty() || v.len() > MAX_NAME {
                    return Err(RdError::BadRequest(format!(
                        "{name} must be 1 to {MAX_NAME} bytes"
                    )));
                }
                if name == "ep" {
                    p.ep = Some(v);
                } else {
                    p.d = Some(v);
                }
            }
            "lt" => {
                let lt = need(value)?
                    .parse::<u32>()
                    .ok()
                    .filter(|&lt| lt > 0)
                    .ok_or_else(|| RdError::BadRequest("lt must be 1 to 4294967295".into()))?;
                p.lt = Some(lt);
            }
            "base" => {
                let b = need(value)?;
                if !b.contains("://") {
                    return Err(RdError::BadRequest("base must be an absolute URI".into()));
                }
                p.base = Some(b);
            }
            "et" => p.et.push(need(value)?),
            "" => return Err(RdError::BadRequest("empty query parameter name".into())),
            _ => {
                if p.attrs.len() >= 16 || q.len() > 255 {
                    return Err(RdError::BadRequest(
                        "too many or too long attributes".into(),
                    ));
                }
                p.attrs.push((name.to_owned(), value.map(str::to_owned)));
            }
        }
    }
    Ok(p)
}

/// The two lookup interfaces (RFC 9176 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupKind {
    /// Endpoint lookup: one link per registration.
    Endpoint,
    /// Resource lookup: the registered links, resolved.
    Resource,
}

/// The registrations and the observed lookups, bounded by [`Limits`].
#[derive(Debug)]
pub struct Directory {
    limits: Limits,
    regs: BTreeMap<u32, Registration>,
    next_id: u32,
    /// Observed lookups: observe key → (interface, query).
    observed: BTreeMap<u32, (LookupKind, Vec<Vec<u8>>)>,
}

impl Directory {
    /// An empty directory.
    pub fn new(limits: Limits) -> Self {
        Directory {
            limits,
            regs: BTreeMap::new(),
            next_id: 0,
            observed: BTreeMap::new(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The registrations, by id.
    pub fn registrations(&self) -> impl Iterator<Item = &Registration> {
        self.regs.values()
    }

    /// A registration by id.
    pub fn get(&self, id: u32) -> Option<&Registration> {
        self.regs.get(&id)
    }

    /// Registers (RFC 9176 §5.3): `queries` are the Uri-Query values, `links` the payload
    /// (Content-Format 40 checked by the caller). A registration with the same ep and d
    /// replaces the old one and keeps its location. The id, and whether it is new.
    pub fn register<'q>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        queries: impl IntoIterator<Item = &'q [u8]>,
        links: &[u8],
    ) -> Result<(u32, bool), RdError> {
        let p = parse_params(queries)?;
        let ep =
            p.ep.ok_or_else(|| RdError::BadRequest("ep (endpoint name) is required".into()))?;
        if links.len() > self.limits.max_links_bytes {
            return Err(RdError::TooLarge {
                limit: self.limits.max_links_bytes,
            });
        }
        Links::validate(links).map_err(RdError::BadLinks)?;
        let links = String::from_utf8(links.to_vec())
            .map_err(|_| RdError::BadRequest("links are not UTF-8".into()))?;
        let existing = self
            .regs
            .values()
            .find(|r| r.ep == ep && r.d == p.d)
            .map(|r| r.id);
        if existing.is_none() && self.regs.len() >= self.limits.max_registrations {
            return Err(RdError::Full {
                limit: self.limits.max_registrations,
            });
        }
        let id = match existing {
            Some(id) => id,
            None => {
                self.next_id = self.next_id.wrapping_add(1).max(1);
                while self.regs.contains_key(&self.next_id) {
                    self.next_id = self.next_id.wrapping_add(1).max(1);
                }
                self.next_id
            }
        };
        let lt = p.lt.unwrap_or(DEFAULT_LT);
        self.regs.insert(
            id,
            Registration {
                id,
                ep,
                d: p.d,
                base: p.base,
                lt,
                et: p.et,
                attrs: p.attrs,
                peer: canonical(peer),
                expires: now + Duration::from_secs(u64::from(lt)),
                links,
            },
        );
        Ok((id, existing.is_none()))
    }

    /// Registration update (RFC 9176 §5.3.1): refreshes the lifetime, optionally with a
    /// new `lt`, `base` or other attributes; an empty payload (links stay).
    pub fn update<'q>(
        &mut self,
        now: Instant,
        id: u32,
        peer: SocketAddr,
        queries: impl IntoIterator<Item = &'q [u8]>,
    ) -> Result<(), RdError> {
        let p = parse_params(queries)?;
        if p.ep.is_some() || p.d.is_some() {
            return Err(RdError::BadRequest(
                "ep and d cannot change in an update".into(),
            ));
        }
        let reg = self.regs.get_mut(&id).ok_or(RdError::NotFound)?;
        if let Some(lt) = p.lt {
            reg.lt = lt;
        }
        if p.base.is_some() {
            reg.base = p.base;
        }
        if !p.et.is_empty() {
            reg.et = p.et;
        }
        for (n, v) in p.attrs {
            match reg.attrs.iter_mut().find(|(k, _)| *k == n) {
                Some(slot) => slot.1 = v,
                None => reg.attrs.push((n, v)),
            }
        }
        // Without an explicit base, the base follows the endpoint's address (§5.3.1).
        reg.peer = canonical(peer);
        reg.expires = now + Duration::from_secs(u64::from(reg.lt));
        Ok(())
    }

    /// Removes a registration (§5.3.2).
    pub fn remove(&mut self, id: u32) -> bool {
        self.regs.remove(&id).is_some()
    }

    /// Removes the registrations whose lifetime ran out; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.regs.len();
        self.regs.retain(|_, r| r.expires > now);
        before - self.regs.len()
    }

    /// When the next registration expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.regs.values().map(|r| r.expires).min()
    }

    /// Remembers an observed lookup; its key, or `None` when the table is full.
    pub fn observe_lookup(&mut self, kind: LookupKind, queries: Vec<Vec<u8>>) -> Option<u32> {
        if let Some((&k, _)) = self
            .observed
            .iter()
            .find(|(_, (kk, q))| *kk == kind && *q == queries)
        {
            return Some(k);
        }
        if self.observed.len() >= self.limits.max_observed_lookups {
            return None;
        }
        // Keys 1.. (0 is never used); the table is small, a linear probe is fine.
        let key = (1..=u32::MAX).find(|k| !self.observed.contains_key(k))?;
        self.observed.insert(key, (kind, queries));
        Some(key)
    }

    /// The observed lookups.
    pub fn observed_lookups(&self) -> Vec<(u32, LookupKind, Vec<Vec<u8>>)> {
        self.observed
            .iter()
            .map(|(k, (kind, q))| (*k, *kind, q.clone()))
            .collect()
    }

    /// Forgets an observed lookup (no observers left).
    pub fn forget_lookup(&mut self, key: u32) {
        self.observed.remove(&key);
    }

    /// A lookup (RFC 9176 §6) as link format: filters from the query (any registration
    /// or link attribute, `*` prefix match; several are a conjunction), then `page` and
    /// `count` (§6.2: results `page*count` to `page*count+count-1`).
    pub fn lookup(&self, kind: LookupKind, queries: &[&[u8]]) -> Result<String, RdError> {
        let mut filters = Vec::new();
        let mut page: Option<usize> = None;
        let mut count: Option<usize> = None;
        for q in queries {
            let f = Filter::parse(q)
                .ok_or_else(|| RdError::BadRequest("malformed lookup filter".into()))?;
            let number = || {
                f.value()
                    .filter(|_| !f.is_prefix())
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or_else(|| RdError::BadRequest(format!("{} must be a number", f.name())))
            };
            match f.name() {
                "page" => page = Some(number()?),
                "count" => count = Some(number()?),
                _ => filters.push(f),
            }
        }
        let skip = match (page, count) {
            (Some(p), Some(c)) => p.saturating_mul(c),
            _ => 0,
        };
        let take = count.unwrap_or(usize::MAX);
        let mut out = String::new();
        let mut w = LinkWriter::new(&mut out);
        let mut n = 0usize;
        let emit = |n: &mut usize| {
            let keep = *n >= skip && *n - skip < take;
            *n += 1;
            keep
        };
        for reg in self.regs.values() {
            let links: Vec<Link<'_>> = Links::from_text(&reg.links).flatten().collect();
            let base = reg.base_uri();
            match kind {
                LookupKind::Endpoint => {
                    let pass = filters.iter().all(|f| {
                        let href = reg.path();
                        match f.name() {
                            "href" => f.matches_text(&href),
                            "rt" if f.matches_text("core.rd-ep") => true,
                            name => match reg.values(name) {
                                Some(vals) => vals.iter().any(|v| f.matches_text(v)),
                                // Not a registration attribute: an endpoint matches when
                                // one of its links does (§6.3).
                                None => links.iter().any(|l| f.matches(l)),
                            },
                        }
                    });
                    if pass && emit(&mut n) {
                        let _ = w.link(&reg.path(), &endpoint_attributes(reg));
                    }
                }
                LookupKind::Resource => {
                    for link in &links {
                        let target = resolve(&base, link.href());
                        let pass = filters.iter().all(|f| match f.name() {
                            "href" => f.matches_text(&target),
                            name => {
                                f.matches(link)
                                    || reg
                                        .values(name)
                                        .is_some_and(|vals| vals.iter().any(|v| f.matches_text(v)))
                            }
                        });
                        if pass && emit(&mut n) {
                            let _ = w.link(&target, &resource_attributes(link, &base));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `ep="..";base="..";rt="core.rd-ep";d="..";et=".."` and the other attributes (§6.3).
fn endpoint_attributes(reg: &Registration) -> String {
    let mut s = String::from("ep=");
    let _ = write_quoted(&mut s, &reg.ep);
    s.push_str(";base=");
    let _ = write_quoted(&mut s, &reg.base_uri());
    s.push_str(";rt=\"core.rd-ep\"");
    if let Some(d) = &reg.d {
        s.push_str(";d=");
        let _ = write_quoted(&mut s, d);
    }
    for et in &reg.et {
        s.push_str(";et=");
        let _ = write_quoted(&mut s, et);
    }
    for (n, v) in &reg.attrs {
        let _ = write!(s, ";{n}");
        if let Some(v) = v {
            s.push('=');
            let _ = write_quoted(&mut s, v);
        }
    }
    s
}

/// The link's attributes as registered, with `anchor` resolved (or set to the base, the
/// default context of a registered link, §6).
fn resource_attributes(link: &Link<'_>, base: &str) -> String {
    let mut s = String::new();
    let mut anchor = None;
    for a in link.attributes() {
        if a.name.eq_ignore_ascii_case("anchor") {
            anchor = a.value.map(|v| v.chars().collect::<String>());
            continue;
        }
        if !s.is_empty() {
            s.push(';');
        }
        s.push_str(a.name);
        if let Some(v) = a.value {
            s.push('=');
            if v.is_quoted() {
                let _ = write!(s, "\"{}\"", v.raw());
            } else {
                s.push_str(v.raw());
            }
        }
    }
    let anchor = match anchor {
        Some(a) => resolve(base, &a),
        None => authority_of(base).to_owned(),
    };
    if !s.is_empty() {
        s.push(';');
    }
    s.push_str("anchor=");
    let _ = write_quoted(&mut s, &anchor);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn q(s: &str) -> Vec<&[u8]> {
        if s.is_empty() {
            return Vec::new();
        }
        s.split('&').map(str::as_bytes).collect()
    }

    #[test]
    fn registration_with_the_rfc9176_example() {
        let mut d = Directory::new(Limits::DEFAULT);
        let t0 = Instant::now();
        // RFC 9176 §5.3, Figure 10.
        let links = br#"</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor""#;
        let (id, new) = d
            .register(t0, peer(61616), q("ep=node1&lt=100"), links)
            .unwrap();
        assert!(new);
        let r = d.get(id).unwrap();
        assert_eq!((r.ep.as_str(), r.lt, r.d.as_deref()), ("node1", 100, None));
        assert_eq!(r.base_uri(), "coap://192.0.2.1:61616");
        assert_eq!(d.next_expiry(), Some(t0 + Duration::from_secs(100)));
        // The same ep again replaces it at the same location.
        let (id2, new) = d.register(t0, peer(61617), q("ep=node1"), b"</a>").unwrap();
        assert_eq!((id2, new), (id, false));
        assert_eq!(d.get(id).unwrap().lt, DEFAULT_LT);
        // Errors: no ep, bad lt, bad links with the offset, too long a name.
        let err = |r: Result<(u32, bool), RdError>| r.unwrap_err().code();
        assert_eq!(
            err(d.register(t0, peer(1), q("lt=5"), b"")),
            Code::BAD_REQUEST
        );
        assert_eq!(
            err(d.register(t0, peer(1), q("ep=x&lt=0"), b"")),
            Code::BAD_REQUEST
        );
        assert_eq!(
            d.register(t0, peer(1), q("ep=x"), b"</a>;rt=\"x"),
            Err(RdError::BadLinks(LinkError {
                offset: 8,
                kind: coap_core::link_format::LinkErrorKind::UnterminatedQuote
            }))
        );
        let long = format!("ep={}", "n".repeat(64));
        assert_eq!(
            err(d.register(t0, peer(1), q(&long), b"")),
            Code::BAD_REQUEST
        );
    }

    #[test]
    fn limits_give_4_13_and_5_03() {
        let limits = Limits {
            max_registrations: 2,
            max_links_bytes: 10,
            max_observed_lookups: 1,
        };
        let mut d = Directory::new(limits);
        let t0 = Instant::now();
        let e = d
            .register(t0, peer(1), q("ep=a"), b"</0123456789>")
            .unwrap_err();
        assert_eq!(
            (e.code(), e),
            (
                Code::REQUEST_ENTITY_TOO_LARGE,
                RdError::TooLarge { limit: 10 }
            )
        );
        d.register(t0, peer(1), q("ep=a"), b"</a>").unwrap();
        d.register(t0, peer(1), q("ep=b"), b"</b>").unwrap();
        let e = d.register(t0, peer(1), q("ep=c"), b"</c>").unwrap_err();
        assert_eq!(e.code(), Code::SERVICE_UNAVAILABLE);
        // Replacing an existing one still works when full.
        assert!(d.register(t0, peer(1), q("ep=b"), b"</b2>").is_ok());
        assert!(d.observe_lookup(LookupKind::Endpoint, vec![]).is_some());
        assert_eq!(d.observe_lookup(LookupKind::Resource, vec![]), None);
    }

    #[test]
    fn update_refreshes_and_expiry_removes() {
        let mut d = Directory::new(Limits::DEFAULT);
        let t0 = Instant::now();
        let (id, _) = d.register(t0, peer(1), q("ep=a&lt=10"), b"</a>").unwrap();
        let (id_b, _) = d.register(t0, peer(2), q("ep=b&lt=20"), b"</b>").unwrap();
        d.update(t0 + Duration::from_secs(8), id, peer(3), q("lt=30"))
            .unwrap();
        assert_eq!(d.get(id).unwrap().lt, 30);
        assert_eq!(d.get(id).unwrap().base_uri(), "coap://192.0.2.1:3");
        assert_eq!(d.expire(t0 + Duration::from_secs(21)), 1);
        assert!(d.get(id_b).is_none());
        assert_eq!(d.expire(t0 + Duration::from_secs(38)), 1);
        assert_eq!(d.update(t0, id, peer(1), q("")), Err(RdError::NotFound));
        assert_eq!(
            d.update(t0, 999, peer(1), q("")).unwrap_err().code(),
            Code::NOT_FOUND
        );
    }

    #[test]
    fn lookups_filter_page_and_resolve() {
        let mut d = Directory::new(Limits::DEFAULT);
        let t0 = Instant::now();
        // RFC 9176 §6.4-like: two endpoints with resources.
        d.register(
            t0,
            peer(61616),
            q("ep=node1&d=floor-3&et=oic.d.sensor"),
            br#"</temp>;rt="temperature";ct=0,</light>;rt="light-lux";if="sensor""#,
        )
        .unwrap();
        d.register(
            t0,
            peer(1),
            q("ep=node2&base=coap://[2001:db8:3::129]:61616"),
            br#"</temp>;rt="temperature",<coap://other/x>;anchor="/temp";rel="describedby""#,
        )
        .unwrap();
        let lookup = |kind, s: &str| d.lookup(kind, &q(s)).unwrap();
        assert_eq!(
            lookup(LookupKind::Endpoint, "ep=node1"),
            r#"</reg/1>;ep="node1";base="coap://192.0.2.1:61616";rt="core.rd-ep";d="floor-3";et="oic.d.sensor""#
        );
        assert_eq!(
            lookup(LookupKind::Endpoint, "rt=temperature")
                .matches("</reg/")
                .count(),
            2
        );
        assert_eq!(
            lookup(LookupKind::Endpoint, "d=floor*")
                .matches("</reg/")
                .count(),
            1
        );
        assert_eq!(
            lookup(LookupKind::Endpoint, "rt=core.rd-ep")
                .matches("</reg/")
                .count(),
            2
        );
        assert_eq!(
            lookup(LookupKind::Endpoint, "if=sensor")
                .matches("</reg/")
                .count(),
            1
        );
        assert_eq!(
            lookup(LookupKind::Resource, "rt=temperature"),
            r#"<coap://192.0.2.1:61616/temp>;rt="temperature";ct=0;anchor="coap://192.0.2.1:61616",<coap://[2001:db8:3::129]:61616/temp>;rt="temperature";anchor="coap://[2001:db8:3::129]:61616""#
        );
        assert_eq!(
            lookup(LookupKind::Resource, "rel=describedby"),
            r#"<coap://other/x>;rel="describedby";anchor="coap://[2001:db8:3::129]:61616/temp""#
        );
        assert_eq!(
            lookup(LookupKind::Resource, "ep=node1&if=sensor"),
            r#"<coap://192.0.2.1:61616/light>;rt="light-lux";if="sensor";anchor="coap://192.0.2.1:61616""#
        );
        assert_eq!(
            lookup(LookupKind::Resource, "href=coap://[2001*")
                .matches('<')
                .count(),
            1
        );
        // Paging: 4 resources, 3 per page.
        let all: Vec<String> = Links::from_text(&lookup(LookupKind::Resource, ""))
            .map(|l| l.unwrap().href().to_owned())
            .collect();
        assert_eq!(all.len(), 4);
        let page = |p: &str| -> Vec<String> {
            Links::from_text(&lookup(LookupKind::Resource, p))
                .map(|l| l.unwrap().href().to_owned())
                .collect()
        };
        assert_eq!(page("count=3"), all[..3]);
        assert_eq!(page("page=1&count=3"), all[3..]);
        assert!(page("page=2&count=3").is_empty());
        assert_eq!(lookup(LookupKind::Resource, "rt=none"), "");
        assert_eq!(
            d.lookup(LookupKind::Resource, &q("count=x"))
                .unwrap_err()
                .code(),
            Code::BAD_REQUEST
        );
    }

    #[test]
    fn resolution_follows_rfc3986_for_registered_links() {
        let b = "coap://[2001:db8::1]:5683";
        assert_eq!(resolve(b, "/a/b"), "coap://[2001:db8::1]:5683/a/b");
        assert_eq!(resolve(b, "a"), "coap://[2001:db8::1]:5683/a");
        assert_eq!(resolve(b, "coap://x/y"), "coap://x/y");
        assert_eq!(resolve(b, "//h:1/p"), "coap://h:1/p");
        assert_eq!(resolve("coap://h/base/", "/x"), "coap://h/x");
    }
}
