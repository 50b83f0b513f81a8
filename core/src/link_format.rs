//! RFC 6690 link format: writing links into a buffer without allocation.

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

    /// Appends one link. `attributes` is the attribute list as it goes on the wire, without
    /// the leading `;` (e.g. `rt="temperature";ct=0;obs`), or empty.
    pub fn link(&mut self, href: &str, attributes: &str) -> fmt::Result {
        if !self.first {
            self.out.write_char(',')?;
        }
        self.first = false;
        write!(self.out, "<{href}>")?;
        if !attributes.is_empty() {
            write!(self.out, ";{attributes}")?;
        }
        Ok(())
    }

    /// The underlying sink.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
