//! The directory's unit tests: registration, limits, update and expiry, lookups.

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
    let err = |r: Result<(u64, bool), RdError>| r.unwrap_err().code();
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
