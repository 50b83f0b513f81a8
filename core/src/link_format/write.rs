//! The allocation-free writer: `core::fmt::Write` sinks over slices, windows, counters and
//! hashes, and [`LinkWriter`], which writes links with attributes (RFC 6690 §2).

use core::fmt;

use super::parse::Link;

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
