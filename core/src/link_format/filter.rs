//! Query filtering of `/.well-known/core` (RFC 6690 §4.1).

use super::parse::{match_chars, splits, Link};

/// One query filter of `/.well-known/core` (RFC 6690 §4.1): `name=value`, where a value
/// ending in `*` matches as a prefix; `href` filters on the link target; a name alone
/// matches links that have the attribute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Filter<'q> {
    name: &'q str,
    value: Option<&'q str>,
    prefix: bool,
}

impl<'q> Filter<'q> {
    /// A filter from one Uri-Query option value (already percent-decoded). `None` for a
    /// query that is not UTF-8 or has an empty name.
    pub fn parse(query: &'q [u8]) -> Option<Filter<'q>> {
        let q = core::str::from_utf8(query).ok()?;
        let (name, value) = match q.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (q, None),
        };
        if name.is_empty() {
            return None;
        }
        let (value, prefix) = match value {
            Some(v) => match v.strip_suffix('*') {
                Some(p) => (Some(p), true),
                None => (Some(v), false),
            },
            None => (None, false),
        };
        Some(Filter {
            name,
            value,
            prefix,
        })
    }

    /// The attribute (or `href`) the filter is on.
    pub fn name(&self) -> &'q str {
        self.name
    }

    /// The value to compare with (without the trailing `*`), if any.
    pub fn value(&self) -> Option<&'q str> {
        self.value
    }

    /// Whether the value ended in `*` (prefix match).
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// Whether a text value (e.g. an RD endpoint's `ep` or `d`) passes the filter.
    pub fn matches_text(&self, text: &str) -> bool {
        match self.value {
            Some(p) => match_chars(text.chars(), p, self.prefix),
            None => true,
        }
    }

    /// Whether `link` passes the filter.
    pub fn matches(&self, link: &Link<'_>) -> bool {
        let Some(pattern) = self.value else {
            return link.attribute(self.name).is_some();
        };
        if self.name == "href" {
            return match_chars(link.href().chars(), pattern, self.prefix);
        }
        let words = splits(self.name);
        link.attributes()
            .filter(|a| a.name.eq_ignore_ascii_case(self.name))
            .any(|a| match a.value {
                Some(v) => v.matches(pattern, self.prefix, words),
                // `obs` has no value; `?obs=*` (empty prefix) still finds it.
                None => self.prefix && pattern.is_empty(),
            })
    }
}

/// Whether `link` passes every filter (several query parameters are a conjunction, as in
/// the lookups of RFC 9176 §6.2).
pub fn matches_all<'q>(link: &Link<'_>, filters: impl IntoIterator<Item = Filter<'q>>) -> bool {
    filters.into_iter().all(|f| f.matches(link))
}
