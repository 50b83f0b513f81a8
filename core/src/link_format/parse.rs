//! The zero-copy parser (RFC 6690 §2): [`Links`] iterates over the links of a document,
//! tolerant of the forms peers send, with a precise [`LinkError`] and its offset.

use core::fmt;

/// Where and why a link-format document does not parse.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[error("{kind} at byte {offset}")]
pub struct LinkError {
    /// Byte offset in the document where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub kind: LinkErrorKind,
}

/// The kinds of [`LinkError`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkErrorKind {
    /// The document is not UTF-8 (RFC 6690 §2: link-format is UTF-8 text).
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A link must start with `<` (RFC 6690 §2 link-value).
    #[error("expected `<` starting a link")]
    ExpectedLinkStart,
    /// The `<URI-Reference>` has no closing `>`.
    #[error("unterminated `<URI-Reference>`")]
    UnterminatedHref,
    /// A character that cannot appear in a URI reference (space, control, `<`, `"`).
    #[error("invalid character in URI reference")]
    InvalidHref,
    /// After a link or attribute, only `;` (next attribute) or `,` (next link) may follow.
    #[error("expected `;` or `,`")]
    ExpectedSeparator,
    /// An attribute name is empty or has a character outside parmname (RFC 5987).
    #[error("invalid attribute name")]
    InvalidName,
    /// `name=` with nothing after the `=`.
    #[error("missing attribute value after `=`")]
    MissingValue,
    /// A token value with a character outside ptokenchar (RFC 6690 §2).
    #[error("invalid character in attribute value")]
    InvalidValue,
    /// A quoted string without its closing `"`.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A `,` that is not followed by a link.
    #[error("empty link after `,`")]
    EmptyLink,
}

/// Links of a link-format document, parsed lazily (zero copy). Each item is a link, or the
/// error that stops the iteration (nothing follows an error).
///
/// Tolerated beyond the strict grammar, as producers emit it: optional whitespace around
/// `,`, `;` and `=` and at the ends (RFC 8288 OWS), and a document that is only whitespace.
#[derive(Clone, Debug)]
pub struct Links<'a> {
    text: &'a str,
    pos: usize,
    started: bool,
    done: bool,
    /// An error found before iteration (invalid UTF-8), reported first.
    pending: Option<LinkError>,
}

impl<'a> Links<'a> {
    /// Links of `document` (a CoAP payload with Content-Format 40).
    pub fn new(document: &'a [u8]) -> Self {
        match core::str::from_utf8(document) {
            Ok(text) => Links::from_text(text),
            Err(e) => Links {
                text: "",
                pos: 0,
                started: false,
                done: false,
                pending: Some(LinkError {
                    offset: e.valid_up_to(),
                    kind: LinkErrorKind::InvalidUtf8,
                }),
            },
        }
    }

    /// Links of a document that is already text.
    pub fn from_text(text: &'a str) -> Self {
        Links {
            text,
            pos: 0,
            started: false,
            done: false,
            pending: None,
        }
    }

    /// Checks a whole document; the number of links, or the first error.
    pub fn validate(document: &'a [u8]) -> Result<usize, LinkError> {
        let mut n = 0usize;
        for link in Links::new(document) {
            link?;
            n += 1;
        }
        Ok(n)
    }

    fn fail(&mut self, offset: usize, kind: LinkErrorKind) -> Option<Result<Link<'a>, LinkError>> {
        self.done = true;
        Some(Err(LinkError { offset, kind }))
    }
}

fn is_ows(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ows_char(c: char) -> bool {
    c.is_ascii() && is_ows(c as u8)
}

/// RFC 5987 attr-char (parmname), plus `*` for extended names such as `title*`.
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'&'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
                | b'*'
        )
}

/// RFC 6690 §2 ptokenchar.
fn is_ptoken_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'/'
                | b':'
                | b'<'
                | b'='
                | b'>'
                | b'?'
                | b'@'
                | b'['
                | b']'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

/// Characters that cannot be in a URI reference between `<` and `>` (RFC 3986).
fn is_href_char(c: char) -> bool {
    !(c.is_control() || c == ' ' || c == '<' || c == '>' || c == '"')
}

/// A byte cursor over validated UTF-8 text.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Copy)]
struct RawValue {
    quoted: bool,
    start: usize,
    end: usize,
}

/// Parses one attribute at the cursor: the name's range, and the value's kind and range
/// (a quoted string without its quotes).
fn parse_param(c: &mut Cursor<'_>) -> Result<(usize, usize, Option<RawValue>), LinkError> {
    let err = |offset, kind| Err(LinkError { offset, kind });
    let start = c.pos;
    while c.peek().is_some_and(is_name_char) {
        c.pos += 1;
    }
    let name_end = c.pos;
    if name_end == start {
        return err(c.pos, LinkErrorKind::InvalidName);
    }
    let before_eq = c.pos;
    c.skip_ows();
    if !c.eat(b'=') {
        c.pos = before_eq;
        return Ok((start, name_end, None));
    }
    c.skip_ows();
    match c.peek() {
        Some(b'"') => {
            let open = c.pos;
            c.pos += 1;
            let vstart = c.pos;
            loop {
                match c.peek() {
                    None => return err(open, LinkErrorKind::UnterminatedQuote),
                    Some(b'\\') => {
                        // quoted-pair: the next character is literal (RFC 7230 §3.2.6).
                        c.pos += 1;
                        if c.peek().is_none() {
                            return err(open, LinkErrorKind::UnterminatedQuote);
                        }
                        c.pos += 1;
                    }
                    Some(b'"') => break,
                    Some(_) => c.pos += 1,
                }
            }
            let vend = c.pos;
            c.pos += 1;
            let value = RawValue {
                quoted: true,
                start: vstart,
                end: vend,
            };
            Ok((start, name_end, Some(value)))
        }
        Some(b) if is_ptoken_char(b) => {
            let vstart = c.pos;
            while c.peek().is_some_and(is_ptoken_char) {
                c.pos += 1;
            }
            let value = RawValue {
                quoted: false,
                start: vstart,
                end: c.pos,
            };
            Ok((start, name_end, Some(value)))
        }
        None | Some(b',') | Some(b';') => err(c.pos, LinkErrorKind::MissingValue),
        Some(_) => err(c.pos, LinkErrorKind::InvalidValue),
    }
}

/// Validates `;`-separated parameters up to the end or a `,`.
fn scan_params(c: &mut Cursor<'_>) -> Result<(), LinkError> {
    loop {
        c.skip_ows();
        match c.peek() {
            None | Some(b',') => return Ok(()),
            Some(b';') => {
                c.pos += 1;
                c.skip_ows();
                parse_param(c)?;
            }
            Some(_) => {
                return Err(LinkError {
                    offset: c.pos,
                    kind: LinkErrorKind::ExpectedSeparator,
                })
            }
        }
    }
}

impl<'a> Iterator for Links<'a> {
    type Item = Result<Link<'a>, LinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let bytes = self.text.as_bytes();
        let mut c = Cursor {
            bytes,
            pos: self.pos,
        };
        c.skip_ows();
        if self.started {
            // After a link, scan_params stopped on `,` or the end.
            if !c.eat(b',') {
                self.done = true;
                return None;
            }
            c.skip_ows();
            if c.peek().is_none() || c.peek() == Some(b',') {
                return self.fail(c.pos, LinkErrorKind::EmptyLink);
            }
        } else if c.peek().is_none() {
            // An empty document has no links (RFC 6690 §4.1: the empty 2.05 of a filter
            // that matches nothing).
            self.done = true;
            return None;
        }
        self.started = true;
        let open = c.pos;
        if !c.eat(b'<') {
            return self.fail(c.pos, LinkErrorKind::ExpectedLinkStart);
        }
        let href_start = c.pos;
        let Some(rel_end) = bytes
            .get(href_start..)
            .and_then(|r| r.iter().position(|&b| b == b'>'))
        else {
            return self.fail(open, LinkErrorKind::UnterminatedHref);
        };
        let href_end = href_start + rel_end;
        let href = self.text.get(href_start..href_end).unwrap_or_default();
        if let Some((i, _)) = href.char_indices().find(|&(_, ch)| !is_href_char(ch)) {
            return self.fail(href_start + i, LinkErrorKind::InvalidHref);
        }
        c.pos = href_end + 1;
        let params_start = c.pos;
        if let Err(e) = scan_params(&mut c) {
            self.done = true;
            return Some(Err(e));
        }
        // Whitespace before a `,` or the end is not part of the parameters.
        let mut params_end = c.pos;
        while params_end > params_start && bytes.get(params_end - 1).is_some_and(|&b| is_ows(b)) {
            params_end -= 1;
        }
        self.pos = c.pos;
        Some(Ok(Link {
            href,
            params: self.text.get(params_start..params_end).unwrap_or_default(),
        }))
    }
}

/// One link: its target (`<href>`) and its attributes, as slices of the document.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Link<'a> {
    href: &'a str,
    /// The validated parameter list, with or without its leading `;`.
    params: &'a str,
}

impl<'a> Link<'a> {
    /// A link from a target and an attribute list as it goes on the wire, without the
    /// leading `;` (the form of [`crate::Resource::link_attributes`]); checks both.
    pub fn from_parts(href: &'a str, attributes: &'a str) -> Result<Link<'a>, LinkError> {
        if let Some((i, _)) = href.char_indices().find(|&(_, ch)| !is_href_char(ch)) {
            return Err(LinkError {
                offset: i,
                kind: LinkErrorKind::InvalidHref,
            });
        }
        let trimmed = attributes.trim_matches(is_ows_char);
        let mut c = Cursor {
            bytes: trimmed.as_bytes(),
            pos: 0,
        };
        if !trimmed.is_empty() {
            if !trimmed.starts_with(';') {
                parse_param(&mut c)?;
            }
            scan_params(&mut c)?;
            if c.pos != trimmed.len() {
                return Err(LinkError {
                    offset: c.pos,
                    kind: LinkErrorKind::ExpectedSeparator,
                });
            }
        }
        Ok(Link {
            href,
            params: trimmed,
        })
    }

    /// The link target as written between `<` and `>` (a URI reference).
    pub fn href(&self) -> &'a str {
        self.href
    }

    /// The attribute list as written, without the leading `;` (empty if none).
    pub fn params(&self) -> &'a str {
        let p = self.params.trim_start_matches(is_ows_char);
        p.strip_prefix(';')
            .unwrap_or(p)
            .trim_start_matches(is_ows_char)
    }

    /// The attributes in order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            text: self.params(),
            pos: 0,
            first: true,
        }
    }

    /// The first attribute named `name` (names compare ASCII case-insensitively, RFC 8288
    /// §3).
    pub fn attribute(&self, name: &str) -> Option<Attribute<'a>> {
        self.attributes()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether an attribute `name` has `value`, as a whole or, for the space-separated
    /// kinds (rt, if, rel, rev, ct), as one of its values.
    pub fn has_value(&self, name: &str, value: &str) -> bool {
        self.attributes()
            .filter(|a| a.name.eq_ignore_ascii_case(name))
            .any(|a| {
                a.value
                    .is_some_and(|v| v.matches(value, false, splits(name)))
            })
    }

    /// The `ct` values (RFC 7252 §7.2.1: one number, or several space-separated in quotes).
    pub fn content_formats(&self) -> impl Iterator<Item = u16> + 'a {
        self.attributes()
            .filter(|a| a.name.eq_ignore_ascii_case("ct"))
            .filter_map(|a| a.value)
            .flat_map(|v| v.raw().split(' '))
            .filter_map(|w| w.parse().ok())
    }
}

/// Attributes whose values are space-separated lists (RFC 6690 §3.1, §3.2; RFC 8288 rel
/// and rev; RFC 7252 §7.2.1 ct).
pub(super) fn splits(name: &str) -> bool {
    ["rt", "if", "rel", "rev", "ct"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// The attributes of a [`Link`].
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    text: &'a str,
    pos: usize,
    first: bool,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let mut c = Cursor {
            bytes: self.text.as_bytes(),
            pos: self.pos,
        };
        c.skip_ows();
        if !self.first {
            if !c.eat(b';') {
                return None;
            }
            c.skip_ows();
        }
        c.peek()?;
        // The list was validated when the link was parsed; an error here ends the list.
        let (ns, ne, value) = parse_param(&mut c).ok()?;
        self.first = false;
        self.pos = c.pos;
        Some(Attribute {
            name: self.text.get(ns..ne)?,
            value: value.and_then(|v| {
                Some(Value {
                    raw: self.text.get(v.start..v.end)?,
                    quoted: v.quoted,
                })
            }),
        })
    }
}

/// One attribute of a link: `name`, or `name=value`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attribute<'a> {
    /// The name as written.
    pub name: &'a str,
    /// The value, if any.
    pub value: Option<Value<'a>>,
}

/// An attribute value: a token, or a quoted string (kept without its quotes, escapes
/// still in place).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Value<'a> {
    raw: &'a str,
    quoted: bool,
}

impl<'a> Value<'a> {
    /// The value as written, without the quotes of a quoted string.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether it was a quoted string.
    pub fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// The characters of the value with quoted-pairs (`\"`, `\\`) resolved.
    pub fn chars(&self) -> impl Iterator<Item = char> + 'a {
        unescape(self.raw, self.quoted)
    }

    /// Writes the unescaped value.
    pub fn write_to(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for ch in self.chars() {
            out.write_char(ch)?;
        }
        Ok(())
    }

    /// Whether the (unescaped) value equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        self.chars().eq(s.chars())
    }

    /// Matches a filter value (RFC 6690 §4.1): equal, or starting with `pattern` when
    /// `prefix`; with `words`, a space-separated value also matches if one of its values
    /// does.
    pub fn matches(&self, pattern: &str, prefix: bool, words: bool) -> bool {
        match_chars(self.chars(), pattern, prefix)
            || (words
                && self
                    .raw
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .any(|w| match_chars(unescape(w, self.quoted), pattern, prefix)))
    }
}

fn unescape(raw: &str, quoted: bool) -> impl Iterator<Item = char> + '_ {
    let mut chars = raw.chars();
    core::iter::from_fn(move || {
        let c = chars.next()?;
        if quoted && c == '\\' {
            chars.next()
        } else {
            Some(c)
        }
    })
}

pub(super) fn match_chars(
    mut value: impl Iterator<Item = char>,
    pattern: &str,
    prefix: bool,
) -> bool {
    for p in pattern.chars() {
        if value.next() != Some(p) {
            return false;
        }
    }
    prefix || value.next().is_none()
}
