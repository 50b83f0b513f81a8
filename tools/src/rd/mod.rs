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
pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Number in the registration resource's path `/reg/N` (unique across the
    /// instances and restarts of a directory: the store allocates it).
    pub id: u64,
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

    /// Applies a registration update (RFC 9176 §5.3.1) from `peer` at `now`.
    pub fn apply_update<'q>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        queries: impl IntoIterator<Item = &'q [u8]>,
    ) -> Result<(), RdError> {
        let p = update_params(queries)?;
        if let Some(lt) = p.lt {
            self.lt = lt;
        }
        if p.base.is_some() {
            self.base = p.base;
        }
        if !p.et.is_empty() {
            self.et = p.et;
        }
        for (n, v) in p.attrs {
            match self.attrs.iter_mut().find(|(k, _)| *k == n) {
                Some(slot) => slot.1 = v,
                None => self.attrs.push((n, v)),
            }
        }
        // Without an explicit base, the base follows the endpoint's address (§5.3.1).
        self.peer = canonical(peer);
        self.expires = now + Duration::from_secs(u64::from(self.lt));
        Ok(())
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

/// The parameters of a registration update (§5.3.1): those of a registration but ep and d.
fn update_params<'q>(queries: impl IntoIterator<Item = &'q [u8]>) -> Result<Params, RdError> {
    let p = parse_params(queries)?;
    if p.ep.is_some() || p.d.is_some() {
        return Err(RdError::BadRequest(
            "ep and d cannot change in an update".into(),
        ));
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

/// The registrations and the observed lookups, bounded by [`Limits`]. With a persistent
/// or shared [`store`], this is the instance's view of the store (lookups are answered
/// from it without store I/O); the store allocates ids and holds the truth.
#[derive(Debug)]
pub struct Directory {
    limits: Limits,
    regs: BTreeMap<u64, Registration>,
    /// Endpoint name → (sector, id): a registration with the same ep and d replaces the
    /// old one (RFC 9176 §5.3), and a lookup by `ep` finds its registrations, without a
    /// scan of every registration.
    names: HashMap<String, Vec<(Option<String>, u64)>>,
    /// (expiry, id), so that the next expiry is found without a scan.
    by_expiry: BTreeSet<(Instant, u64)>,
    next_id: u64,
    /// Observed lookups: observe key → (interface, query).
    observed: BTreeMap<u32, (LookupKind, Vec<Vec<u8>>)>,
}

impl Directory {
    /// An empty directory.
    pub fn new(limits: Limits) -> Self {
        Directory {
            limits,
            regs: BTreeMap::new(),
            names: HashMap::new(),
            by_expiry: BTreeSet::new(),
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

    /// How many registrations there are.
    pub fn len(&self) -> usize {
        self.regs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.regs.is_empty()
    }

    /// A registration by id.
    pub fn get(&self, id: u64) -> Option<&Registration> {
        self.regs.get(&id)
    }

    /// The id of the registration of `ep` in sector `d`.
    pub fn find(&self, ep: &str, d: Option<&str>) -> Option<u64> {
        self.names
            .get(ep)?
            .iter()
            .find(|(s, _)| s.as_deref() == d)
            .map(|&(_, id)| id)
    }

    /// Checks a registration request (RFC 9176 §5.3): `queries` are the Uri-Query values,
    /// `links` the payload (Content-Format 40 checked by the caller). The registration it
    /// would make (id 0: the store allocates it), or why not, including a full table.
    pub fn prepare<'q>(
        &self,
        now: Instant,
        peer: SocketAddr,
        queries: impl IntoIterator<Item = &'q [u8]>,
        links: &[u8],
    ) -> Result<Registration, RdError> {
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
        let existing = self.find(&ep, p.d.as_deref());
        if existing.is_none() && self.regs.len() >= self.limits.max_registrations {
            return Err(RdError::Full {
                limit: self.limits.max_registrations,
            });
        }
        let lt = p.lt.unwrap_or(DEFAULT_LT);
        Ok(Registration {
            id: 0,
            ep,
            d: p.d,
            base: p.base,
            lt,
            et: p.et,
            attrs: p.attrs,
            peer: canonical(peer),
            expires: now + Duration::from_secs(u64::from(lt)),
            links,
        })
    }

    /// Puts a registration (with the id its store gave it) into the directory, replacing
    /// the one with its id or its ep and d.
    pub fn insert(&mut self, reg: Registration) {
        self.remove(reg.id);
        if let Some(other) = self.find(&reg.ep, reg.d.as_deref()) {
            self.remove(other);
        }
        self.names
            .entry(reg.ep.clone())
            .or_default()
            .push((reg.d.clone(), reg.id));
        self.by_expiry.insert((reg.expires, reg.id));
        self.regs.insert(reg.id, reg);
    }

    /// Registers in this directory alone, allocating the id itself: [`Directory::prepare`]
    /// and [`Directory::insert`]. The id, and whether it is new.
    pub fn register<'q>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        queries: impl IntoIterator<Item = &'q [u8]>,
        links: &[u8],
    ) -> Result<(u64, bool), RdError> {
        let mut reg = self.prepare(now, peer, queries, links)?;
        let existing = self.find(&reg.ep, reg.d.as_deref());
        reg.id = match existing {
            Some(id) => id,
            None => {
                self.next_id += 1;
                while self.regs.contains_key(&self.next_id) {
                    self.next_id += 1;
                }
                self.next_id
            }
        };
        let id = reg.id;
        self.insert(reg);
        Ok((id, existing.is_none()))
    }

    /// Registration update (RFC 9176 §5.3.1): refreshes the lifetime, optionally with a
    /// new `lt`, `base` or other attributes; an empty payload (links stay).
    pub fn update<'q>(
        &mut self,
        now: Instant,
        id: u64,
        peer: SocketAddr,
        queries: impl IntoIterator<Item = &'q [u8]>,
    ) -> Result<(), RdError> {
        let mut reg = self.regs.get(&id).ok_or(RdError::NotFound)?.clone();
        reg.apply_update(now, peer, queries)?;
        self.insert(reg);
        Ok(())
    }

    /// Removes a registration (§5.3.2).
    pub fn remove(&mut self, id: u64) -> bool {
        match self.regs.remove(&id) {
            Some(r) => {
                self.by_expiry.remove(&(r.expires, id));
                if let Some(same) = self.names.get_mut(&r.ep) {
                    same.retain(|&(_, i)| i != id);
                    if same.is_empty() {
                        self.names.remove(&r.ep);
                    }
                }
                true
            }
            None => false,
        }
    }

    /// The registrations whose lifetime ran out by `now`.
    pub fn expired(&self, now: Instant) -> Vec<u64> {
        self.by_expiry
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|&(_, id)| id)
            .collect()
    }

    /// Removes the registrations whose lifetime ran out; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let gone = self.expired(now);
        for id in &gone {
            self.remove(*id);
        }
        gone.len()
    }

    /// Replaces every registration by `regs` (a reload from the store).
    pub fn replace_all(&mut self, regs: Vec<Registration>) {
        self.regs.clear();
        self.names.clear();
        self.by_expiry.clear();
        for r in regs {
            self.insert(r);
        }
    }

    /// When the next registration expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|&(t, _)| t)
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
        // An exact `ep` filter: only that endpoint's registrations (in id order, as the
        // scan of all would give them).
        let by_name = filters
            .iter()
            .find(|f| f.name() == "ep" && !f.is_prefix())
            .and_then(|f| f.value());
        let candidates: Box<dyn Iterator<Item = &Registration>> = match by_name {
            Some(ep) => {
                let mut ids: Vec<u64> = self
                    .names
                    .get(ep)
                    .map(|v| v.iter().map(|&(_, id)| id).collect())
                    .unwrap_or_default();
                ids.sort_unstable();
                Box::new(ids.into_iter().filter_map(|id| self.regs.get(&id)))
            }
            None => Box::new(self.regs.values()),
        };
        for reg in candidates {
            // Parsed only when a filter needs the links: an endpoint lookup by its
            // attributes, or a page of all, stays a scan of the registrations alone.
            let parsed = std::cell::OnceCell::new();
            let links = || -> &Vec<Link<'_>> {
                parsed.get_or_init(|| Links::from_text(&reg.links).flatten().collect())
            };
            match kind {
                LookupKind::Endpoint => {
                    let pass = filters.iter().all(|f| match f.name() {
                        "href" => f.matches_text(&reg.path()),
                        "rt" if f.matches_text("core.rd-ep") => true,
                        // The common lookups, without the copies `values` makes.
                        "ep" => f.matches_text(&reg.ep),
                        "d" => reg.d.as_deref().is_some_and(|d| f.matches_text(d)),
                        name => match reg.values(name) {
                            Some(vals) => vals.iter().any(|v| f.matches_text(v)),
                            // Not a registration attribute: an endpoint matches when one
                            // of its links does (§6.3).
                            None => links().iter().any(|l| f.matches(l)),
                        },
                    });
                    if pass && emit(&mut n) {
                        let _ = w.link(&reg.path(), &endpoint_attributes(reg));
                    }
                }
                LookupKind::Resource => {
                    let base = reg.base_uri();
                    for link in links() {
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
mod tests;
