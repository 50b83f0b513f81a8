//! RFC 6690 CoRE Link Format: a zero-copy parser, an allocation-free writer, and the query
//! filters of `/.well-known/core` (§4.1).
//!
//! ```
//! use coap_core::link_format::{Attr, LinkWriter, Links, SliceWriter};
//!
//! let mut buf = [0u8; 128];
//! let mut w = LinkWriter::new(SliceWriter::new(&mut buf));
//! w.link_with("/sensors/temp", &[Attr::Rt("temperature-c"), Attr::If("sensor"), Attr::Obs])?;
//! let out = w.into_inner();
//! assert_eq!(out.written(), br#"</sensors/temp>;rt="temperature-c";if="sensor";obs"#);
//!
//! let link = Links::new(out.written()).next().unwrap().unwrap();
//! assert_eq!(link.href(), "/sensors/temp");
//! assert!(link.has_value("rt", "temperature-c"));
//! assert!(link.attribute("obs").is_some());
//! # Ok::<(), core::fmt::Error>(())
//! ```

use core::fmt;

/// A `core::fmt::Write` sink over a byte slice that reports overflow instead of growing.
#[derive(Debug)]
pub struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> SliceWriter<'b> {
    /// A writer over `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        SliceWriter { buf, len: 0 }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The written bytes.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A `core::fmt::Write` sink that keeps only the bytes from `offset` on, as many as fit
/// `dst`: renders one block of a representation that is produced by formatting, without
/// holding the whole of it (RFC 7959 §2.4, serving by offset).
#[derive(Debug)]
pub struct WindowWriter<'b> {
    dst: &'b mut [u8],
    /// Bytes of the output still to skip before `dst` starts.
    skip: usize,
    len: usize,
}

impl<'b> WindowWriter<'b> {
    /// A window of `dst.len()` bytes starting at `offset` of the formatted output.
    pub fn new(dst: &'b mut [u8], offset: usize) -> Self {
        WindowWriter {
            dst,
            skip: offset,
            len: 0,
        }
    }

    /// Bytes of the window filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing fell into the window yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Write for WindowWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        if self.skip > 0 {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            bytes = bytes.get(n..).unwrap_or_default();
        }
        let room = self.dst.len().saturating_sub(self.len);
        let n = room.min(bytes.len());
        if let (Some(dst), Some(src)) = (self.dst.get_mut(self.len..self.len + n), bytes.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        // Never an error: the rest of the output is simply not needed for this window.
        Ok(())
    }
}

/// Counts the bytes a formatter writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct ByteCounter(pub usize);

impl fmt::Write for ByteCounter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

/// A 64-bit FNV-1a hash of what a formatter writes: an ETag for a representation produced
/// by formatting (RFC 7252 §5.10.6), computed without holding it.
#[derive(Debug, Clone, Copy)]
pub struct HashWriter(pub u64);

impl Default for HashWriter {
    fn default() -> Self {
        HashWriter(0xcbf2_9ce4_8422_2325)
    }
}

impl fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

/// A typed link attribute for [`LinkWriter::link_with`]. String values are written as
/// quoted strings (RFC 6690 §2, `"` and `\` escaped), numbers as tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr<'a> {
    /// `rt`: resource type(s), space-separated (§3.1).
    Rt(&'a str),
    /// `if`: interface description(s), space-separated (§3.2).
    If(&'a str),
    /// `ct`: Content-Format (RFC 7252 §7.2.1).
    Ct(u16),
    /// `sz`: maximum size estimate in bytes (§3.3).
    Sz(u32),
    /// `obs`: the resource is observable (RFC 7641 §6), no value.
    Obs,
    /// `title`: a human-readable label.
    Title(&'a str),
    /// `anchor`: the link's context URI (§2.1).
    Anchor(&'a str),
    /// `rel`: relation type(s), space-separated.
    Rel(&'a str),
    /// Any other attribute: name and value (quoted), or a name alone.
    Other(&'a str, Option<&'a str>),
}

impl Attr<'_> {
    fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        let (name, value) = match *self {
            Attr::Rt(v) => ("rt", Some(v)),
            Attr::If(v) => ("if", Some(v)),
            Attr::Title(v) => ("title", Some(v)),
            Attr::Anchor(v) => ("anchor", Some(v)),
            Attr::Rel(v) => ("rel", Some(v)),
            Attr::Other(n, v) => (n, v),
            Attr::Ct(n) => return write!(out, "ct={n}"),
            Attr::Sz(n) => return write!(out, "sz={n}"),
            Attr::Obs => return out.write_str("obs"),
        };
        out.write_str(name)?;
        if let Some(v) = value {
            out.write_str("=")?;
            write_quoted(out, v)?;
        }
        Ok(())
    }
}

/// Writes `value` as an RFC 6690 quoted-string (RFC 7230 quoted-pair for `"` and `\`).
pub fn write_quoted(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut rest = value;
    while let Some(i) = rest.find(['"', '\\']) {
        let (plain, tail) = rest.split_at(i);
        out.write_str(plain)?;
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.write_char('\\')?;
            out.write_char(c)?;
        }
        rest = chars.as_str();
    }
    out.write_str(rest)?;
    out.write_char('"')
}

/// Writes a comma-separated list of links (RFC 6690 §2): `<href>;attr,<href>;attr`.
#[derive(Debug)]
pub struct LinkWriter<W> {
    out: W,
    first: bool,
}

impl<W: fmt::Write> LinkWriter<W> {
    /// A writer that appends links to `out`.
    pub fn new(out: W) -> Self {
        LinkWriter { out, first: true }
    }

    fn start(&mut self, href: &str) -> fmt::Result {
        if !self.first {
            self.out.write_char(',')?;
        }
        self.first = false;
        self.out.write_char('<')?;
        self.out.write_str(href)?;
        self.out.write_char('>')
    }

    /// Appends one link. `attributes` is the attribute list as it goes on the wire, without
    /// the leading `;` (e.g. `rt="temperature";ct=0;obs`), or empty.
    pub fn link(&mut self, href: &str, attributes: &str) -> fmt::Result {
        self.start(href)?;
        if !attributes.is_empty() {
            self.out.write_char(';')?;
            self.out.write_str(attributes)?;
        }
        Ok(())
    }

    /// Appends one link with typed attributes (values quoted and escaped as needed).
    pub fn link_with(&mut self, href: &str, attributes: &[Attr<'_>]) -> fmt::Result {
        self.start(href)?;
        for a in attributes {
            self.out.write_char(';')?;
            a.write(&mut self.out)?;
        }
        Ok(())
    }

    /// Appends a parsed link, with its href replaced by `href` if given.
    pub fn link_from(&mut self, link: &Link<'_>, href: Option<&str>) -> fmt::Result {
        self.link(href.unwrap_or(link.href()), link.params())
    }

    /// Whether no link has been written yet.
    pub fn is_empty(&self) -> bool {
        self.first
    }

    /// The underlying sink.
    pub fn into_inner(self) -> W {
        self.out
    }
}

// ----- parser ---------------------------------------------------------------------------

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
fn splits(name: &str) -> bool {
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

fn match_chars(mut value: impl Iterator<Item = char>, pattern: &str, prefix: bool) -> bool {
    for p in pattern.chars() {
        if value.next() != Some(p) {
            return false;
        }
    }
    prefix || value.next().is_none()
}

// ----- filtering (RFC 6690 §4.1) ----------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn all(doc: &str) -> Result<heapless::Vec<Link<'_>, 16>, LinkError> {
        let mut v = heapless::Vec::new();
        for l in Links::from_text(doc) {
            let _ = v.push(l?);
        }
        Ok(v)
    }

    #[test]
    fn writes_links_and_reports_overflow() {
        let mut buf = [0u8; 64];
        let mut w = LinkWriter::new(SliceWriter::new(&mut buf));
        w.link("/sensors/temp", "rt=\"temperature-c\";if=\"sensor\"")
            .unwrap();
        w.link("/hello", "").unwrap();
        let out = w.into_inner();
        assert_eq!(
            out.written(),
            b"</sensors/temp>;rt=\"temperature-c\";if=\"sensor\",</hello>"
        );
        let mut small = [0u8; 4];
        let mut w = LinkWriter::new(SliceWriter::new(&mut small));
        assert!(w.link("/toolong", "").is_err());
    }

    #[test]
    fn typed_attributes_are_quoted_and_escaped() {
        let mut buf = [0u8; 128];
        let mut w = LinkWriter::new(SliceWriter::new(&mut buf));
        w.link_with(
            "/a",
            &[
                Attr::Ct(40),
                Attr::Sz(1024),
                Attr::Title(r#"say "hi" \o/"#),
                Attr::Other("foo", None),
            ],
        )
        .unwrap();
        let out = w.into_inner();
        assert_eq!(
            out.written(),
            br#"</a>;ct=40;sz=1024;title="say \"hi\" \\o/";foo"#
        );
        let link = Links::new(out.written()).next().unwrap().unwrap();
        let title = link.attribute("title").unwrap().value.unwrap();
        assert!(title.eq_str(r#"say "hi" \o/"#));
    }

    #[test]
    fn window_writer_keeps_one_slice_of_the_output() {
        use core::fmt::Write;
        let mut dst = [0u8; 5];
        let mut w = WindowWriter::new(&mut dst, 3);
        w.write_str("ab").unwrap();
        w.write_str("cdefghij").unwrap();
        assert_eq!(w.len(), 5);
        assert_eq!(&dst, b"defgh");
    }

    #[test]
    fn parse_errors_name_the_offset() {
        let cases: &[(&str, usize, LinkErrorKind)] = &[
            ("/a", 0, LinkErrorKind::ExpectedLinkStart),
            ("</a", 0, LinkErrorKind::UnterminatedHref),
            ("</a b>", 3, LinkErrorKind::InvalidHref),
            ("</a>x", 4, LinkErrorKind::ExpectedSeparator),
            ("</a>;", 5, LinkErrorKind::InvalidName),
            ("</a>;=1", 5, LinkErrorKind::InvalidName),
            ("</a>;rt=", 8, LinkErrorKind::MissingValue),
            ("</a>;rt=;ct=0", 8, LinkErrorKind::MissingValue),
            ("</a>;rt=\"x", 8, LinkErrorKind::UnterminatedQuote),
            ("</a>;rt=\"x\\", 8, LinkErrorKind::UnterminatedQuote),
            ("</a>;rt=a\"b", 9, LinkErrorKind::ExpectedSeparator),
            ("</a>;rt=\\", 8, LinkErrorKind::InvalidValue),
            ("</a>,", 5, LinkErrorKind::EmptyLink),
            ("</a>,,</b>", 5, LinkErrorKind::EmptyLink),
            ("</a>,/b", 5, LinkErrorKind::ExpectedLinkStart),
        ];
        for &(doc, offset, kind) in cases {
            let got = all(doc).err();
            assert_eq!(got, Some(LinkError { offset, kind }), "{doc:?}");
        }
        let bad = Links::new(b"</a>;title=\"\xff\"").next().unwrap();
        assert_eq!(
            bad,
            Err(LinkError {
                offset: 12,
                kind: LinkErrorKind::InvalidUtf8
            })
        );
    }

    #[test]
    fn whitespace_and_empty_documents_are_tolerated() {
        assert_eq!(all("").unwrap().len(), 0);
        assert_eq!(all("  \n").unwrap().len(), 0);
        let links = all(" </a> ; rt = \"x\" ,\n </b>;obs ").unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].href(), "/a");
        assert!(links[0].has_value("rt", "x"));
        assert_eq!(links[1].attribute("obs").unwrap().value, None);
        assert_eq!(links[1].params(), "obs");
    }

    #[test]
    fn from_parts_checks_attributes() {
        let l = Link::from_parts("/t", r#"rt="demo.time";ct=0;obs"#).unwrap();
        assert!(l.has_value("ct", "0") && l.attribute("obs").is_some());
        assert_eq!(l.params(), r#"rt="demo.time";ct=0;obs"#);
        assert!(Link::from_parts("/t", "rt=\"x").is_err());
        assert!(Link::from_parts("/t", "rt=x y").is_err());
        assert!(Link::from_parts("/t>", "").is_err());
        assert_eq!(Link::from_parts("/t", "").unwrap().attributes().count(), 0);
    }

    #[test]
    fn filters_follow_rfc6690_section_4_1() {
        let l = Link::from_parts(
            "/sensors/temp",
            r#"rt="temperature-c sensor";if="core.s";ct="40 50";title="Hello World";obs"#,
        )
        .unwrap();
        let yes = [
            &b"rt=sensor"[..],
            b"rt=temperature-c",
            b"rt=temp*",
            b"rt=*",
            b"href=/sensors/temp",
            b"href=/sensors*",
            b"if=core.s",
            b"if=core*",
            b"ct=40",
            b"ct=50",
            b"title=Hello World",
            b"title=Hello*",
            b"obs",
            b"obs=*",
        ];
        let no = [
            &b"rt=temperature"[..],
            b"rt=temperature-c sensorx",
            b"href=/sensors",
            b"href=/x*",
            b"ct=41",
            b"title=Hello",
            b"sz=1",
            b"obs=1",
        ];
        for q in yes {
            let f = Filter::parse(q).unwrap();
            assert!(f.matches(&l), "{f:?}");
        }
        for q in no {
            let f = Filter::parse(q).unwrap();
            assert!(!f.matches(&l), "{f:?}");
        }
        assert_eq!(Filter::parse(b"=x"), None);
        let cts: heapless::Vec<u16, 4> = l.content_formats().collect();
        assert_eq!(cts, [40, 50]);
    }
}
