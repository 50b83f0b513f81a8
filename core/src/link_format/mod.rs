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

mod filter;
mod parse;
mod write;

pub use filter::{matches_all, Filter};
pub use parse::{Attribute, Attributes, Link, LinkError, LinkErrorKind, Links, Value};
pub use write::{
    write_quoted, Attr, ByteCounter, HashWriter, LinkWriter, SliceWriter, WindowWriter,
};

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
