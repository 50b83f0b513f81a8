//! The link-format parser and writer (RFC 6690) on the examples of RFC 6690 §5 and
//! RFC 9176, on payloads captured from libcoap 4.3.1, aiocoap 0.4.17 and node-coap 1.5.0,
//! and under property tests (writer → parser round trip; arbitrary bytes never panic).

use coap_core::link_format::{Attr, Filter, LinkError, LinkWriter, Links, SliceWriter};
use proptest::prelude::*;

/// (href, [(name, unescaped value or None)]) of every link.
type Parsed = Vec<(String, Vec<(String, Option<String>)>)>;

fn parse(doc: &str) -> Result<Parsed, LinkError> {
    Links::from_text(doc)
        .map(|l| {
            let l = l?;
            let attrs = l
                .attributes()
                .map(|a| {
                    let v = a.value.map(|v| v.chars().collect::<String>());
                    (a.name.to_owned(), v)
                })
                .collect();
            Ok((l.href().to_owned(), attrs))
        })
        .collect()
}

fn attr(name: &str, value: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), value.map(str::to_owned))
}

#[test]
fn rfc6690_section_5_examples() {
    // §5 example 1: a /.well-known/core listing.
    let doc = "</sensors>;ct=40";
    assert_eq!(
        parse(doc).unwrap(),
        [("/sensors".into(), vec![attr("ct", Some("40"))])]
    );
    // §5: the sensors listing with rt, if and title.
    let doc = r#"</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor""#;
    let p = parse(doc).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[1].0, "/sensors/light");
    assert_eq!(
        p[1].1,
        [attr("rt", Some("light-lux")), attr("if", Some("sensor"))]
    );
    // §5: anchor and rel ("describedby"), absolute URIs.
    let doc = r#"</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor",<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",</t>;anchor="/sensors/temp";rel="alternate""#;
    let p = parse(doc).unwrap();
    assert_eq!(p.len(), 5);
    assert_eq!(p[0].1[1], attr("title", Some("Sensor Index")));
    assert_eq!(p[3].0, "http://www.example.com/sensors/t123");
    assert_eq!(
        p[3].1,
        [
            attr("anchor", Some("/sensors/temp")),
            attr("rel", Some("describedby"))
        ]
    );
    // §5: a sz estimate and a unicode title with title*.
    let doc = r#"</firmware/v2.1>;rt="firmware";sz=262144"#;
    assert_eq!(parse(doc).unwrap()[0].1[1], attr("sz", Some("262144")));
}

#[test]
fn rfc9176_examples() {
    // §4.3: discovery of the RD's interfaces.
    let doc = r#"</rd>;rt=core.rd;ct=40,</rd-lookup/ep>;rt=core.rd-lookup-ep;ct=40,</rd-lookup/res>;rt=core.rd-lookup-res;ct=40"#;
    let links: Vec<_> = Links::from_text(doc).map(Result::unwrap).collect();
    assert_eq!(links.len(), 3);
    assert!(Filter::parse(b"rt=core.rd*").unwrap().matches(&links[1]));
    assert!(links[2].has_value("rt", "core.rd-lookup-res"));
    // §5.3: a registration payload.
    let doc = r#"</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor""#;
    assert_eq!(parse(doc).unwrap().len(), 2);
    // §6.1 resource lookup result: absolute targets, anchor set.
    let doc = r#"<coap://[2001:db8:3::123]:61616/temp>;rt="temperature";anchor="coap://[2001:db8:3::123]:61616""#;
    let p = parse(doc).unwrap();
    assert_eq!(p[0].0, "coap://[2001:db8:3::123]:61616/temp");
    assert_eq!(
        p[0].1[1],
        attr("anchor", Some("coap://[2001:db8:3::123]:61616"))
    );
    // §6.3 endpoint lookup result.
    let doc = r#"</reg/1234>;base="coap://[2001:db8:3::127]:61616";ep=node5;et="oic.d.sensor";ct=40;rt=core.rd-ep,</reg/2345>;base="coap://[2001:db8:3::129]:61616";ep=node7;rt=core.rd-ep;d=floor-3"#;
    let links: Vec<_> = Links::from_text(doc).map(Result::unwrap).collect();
    assert_eq!(links.len(), 2);
    assert!(links[1].has_value("d", "floor-3"));
    assert!(Filter::parse(b"ep=node*").unwrap().matches(&links[0]));
}

#[test]
fn payloads_of_the_peers() {
    // libcoap 4.3.1 coap-server-notls, GET /.well-known/core.
    let libcoap = r#"</>;title="General Info";ct=0,</time>;if="clock";rt="ticks";title="Internal Clock";ct=0;obs,</async>;ct=0,</example_data>;title="Example Data";ct=0;obs"#;
    let p = parse(libcoap).unwrap();
    assert_eq!(p.len(), 4);
    assert_eq!(p[1].1[4], attr("obs", None));
    // libcoap 4.3.1 coap-rd-notls after a registration: an empty quoted value.
    let libcoap_rd = r#"</rd>;ins="default";rt="core.rd";ct=40,</rd/bebc-441>;A="""#;
    assert_eq!(parse(libcoap_rd).unwrap()[1].1, [attr("A", Some(""))]);
    // aiocoap 0.4.17 aiocoap-rd: quoted ct, a trailing-slash path, an absolute impl-info link.
    let aiocoap_rd = r#"</.well-known/core>;ct="40",</.well-known/rd>,</resourcedirectory/>;ct="40";rt="core.rd",</endpoint-lookup/>;ct="40";rt="core.rd-lookup-ep";obs,</resource-lookup/>;ct="40";rt="core.rd-lookup-res";obs,<https://christian.amsuess.com/tools/aiocoap/#version-0.4.17>;rel="impl-info""#;
    let links: Vec<_> = Links::from_text(aiocoap_rd).map(Result::unwrap).collect();
    assert_eq!(links.len(), 6);
    assert_eq!(links[1].attributes().count(), 0);
    let rd: Vec<_> = links
        .iter()
        .filter(|l| Filter::parse(b"rt=core.rd*").unwrap().matches(l))
        .map(|l| l.href())
        .collect();
    assert_eq!(
        rd,
        [
            "/resourcedirectory/",
            "/endpoint-lookup/",
            "/resource-lookup/"
        ]
    );
    assert_eq!(links[2].content_formats().collect::<Vec<_>>(), [40]);
    // aiocoap 0.4.17 resource lookup and endpoint lookup answers.
    let aiocoap_lookup = r#"<coap://127.0.0.1:59579/sensors/temp>;rt="temperature";ct="0",<coap://127.0.0.1:59579/sensors/light>;rt="light-lux";if="sensor""#;
    assert_eq!(parse(aiocoap_lookup).unwrap().len(), 2);
    let aiocoap_ep = r#"</reg/1/>;ep="node1";base="coap://127.0.0.1:59579";rt="core.rd-ep""#;
    assert_eq!(
        parse(aiocoap_ep).unwrap()[0].1[0],
        attr("ep", Some("node1"))
    );
    // aiocoap-fileserver's root.
    let fileserver = r#"</>;ct=40;rt="tag:chrysn@fsfe.org,2022:fileserver""#;
    assert_eq!(
        parse(fileserver).unwrap()[0].1[1],
        attr("rt", Some("tag:chrysn@fsfe.org,2022:fileserver"))
    );
    // node-coap 1.5.0 test server (tests/tests/interop/node_server.js).
    let node = r#"</hello>;rt="test.hello";ct=0,</store>;rt="test.store",</echo>;rt="test.echo""#;
    assert_eq!(parse(node).unwrap().len(), 3);
}

fn arb_text() -> impl Strategy<Value = String> {
    // Printable text including the characters that need escaping.
    proptest::string::string_regex("[ -~äö€]{0,12}").unwrap()
}

fn arb_href() -> impl Strategy<Value = String> {
    proptest::string::string_regex("(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,8}){1,3}").unwrap()
}

fn arb_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z][a-z0-9!#$&+.^_`|~-]{0,6}").unwrap()
}

#[derive(Debug, Clone)]
enum A {
    Rt(String),
    If(String),
    Ct(u16),
    Sz(u32),
    Obs,
    Title(String),
    Anchor(String),
    Rel(String),
    Other(String, Option<String>),
}

fn arb_attr() -> impl Strategy<Value = A> {
    prop_oneof![
        arb_text().prop_map(A::Rt),
        arb_text().prop_map(A::If),
        any::<u16>().prop_map(A::Ct),
        any::<u32>().prop_map(A::Sz),
        Just(A::Obs),
        arb_text().prop_map(A::Title),
        arb_href().prop_map(A::Anchor),
        arb_text().prop_map(A::Rel),
        (arb_name(), proptest::option::of(arb_text())).prop_map(|(n, v)| A::Other(n, v)),
    ]
}

impl A {
    fn typed(&self) -> Attr<'_> {
        match self {
            A::Rt(v) => Attr::Rt(v),
            A::If(v) => Attr::If(v),
            A::Ct(n) => Attr::Ct(*n),
            A::Sz(n) => Attr::Sz(*n),
            A::Obs => Attr::Obs,
            A::Title(v) => Attr::Title(v),
            A::Anchor(v) => Attr::Anchor(v),
            A::Rel(v) => Attr::Rel(v),
            A::Other(n, v) => Attr::Other(n, v.as_deref()),
        }
    }

    fn expected(&self) -> (String, Option<String>) {
        match self {
            A::Rt(v) => attr("rt", Some(v)),
            A::If(v) => attr("if", Some(v)),
            A::Ct(n) => attr("ct", Some(&n.to_string())),
            A::Sz(n) => attr("sz", Some(&n.to_string())),
            A::Obs => attr("obs", None),
            A::Title(v) => attr("title", Some(v)),
            A::Anchor(v) => attr("anchor", Some(v)),
            A::Rel(v) => attr("rel", Some(v)),
            A::Other(n, v) => attr(n, v.as_deref()),
        }
    }
}

proptest! {
    #[test]
    fn writer_then_parser_round_trips(
        links in proptest::collection::vec((arb_href(), proptest::collection::vec(arb_attr(), 0..5)), 0..5)
    ) {
        let mut buf = vec![0u8; 8192];
        let mut w = LinkWriter::new(SliceWriter::new(&mut buf));
        for (href, attrs) in &links {
            let typed: Vec<Attr<'_>> = attrs.iter().map(A::typed).collect();
            w.link_with(href, &typed).unwrap();
        }
        let out = w.into_inner();
        let doc = std::str::from_utf8(out.written()).unwrap();
        let parsed = parse(doc).unwrap();
        let want: Parsed = links
            .iter()
            .map(|(h, a)| (h.clone(), a.iter().map(A::expected).collect()))
            .collect();
        prop_assert_eq!(parsed, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut n = 0;
        for link in Links::new(&bytes) {
            match link {
                Ok(l) => {
                    // Every accessor on a parsed link is total.
                    let _ = l.attributes().count();
                    let _ = l.content_formats().count();
                    let _ = Filter::parse(b"rt=a*").unwrap().matches(&l);
                }
                Err(e) => prop_assert!(e.offset <= bytes.len()),
            }
            n += 1;
            prop_assert!(n <= bytes.len() + 1, "the iterator ends");
        }
    }

    #[test]
    fn link_like_text_parses_consistently(doc in "[<>;,=\"\\\\ a-z/*]{0,64}") {
        // Link-shaped noise: whatever parses gives values no longer than written (escapes
        // only shrink), attribute names that occur in the document, and the iteration ends.
        let mut n = 0;
        for link in Links::from_text(&doc).flatten() {
            for a in link.attributes() {
                prop_assert!(!a.name.is_empty() && doc.contains(a.name));
                if let Some(v) = a.value {
                    prop_assert!(v.chars().count() <= v.raw().chars().count());
                }
            }
            n += 1;
            prop_assert!(n <= doc.len());
        }
    }
}
