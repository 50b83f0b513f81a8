//! What every peer's client must get from our server: one list of exchanges, run through
//! an adapter per peer (which turns an [`Ask`] into a command line and its output into an
//! [`Answer`]).

use super::our_server::OurServer;

/// A request for a peer's client to make.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub payload: Option<&'a str>,
    /// Content-Format of the payload: 0 (text/plain) or 50 (application/json).
    pub format: Option<u16>,
    pub non: bool,
}

impl<'a> Ask<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Ask<'a> {
        Ask {
            method,
            path,
            payload: None,
            format: None,
            non: false,
        }
    }

    fn payload(self, payload: &'a str, format: Option<u16>) -> Ask<'a> {
        Ask {
            payload: Some(payload),
            format,
            ..self
        }
    }

    fn non(self) -> Ask<'a> {
        Ask { non: true, ..self }
    }
}

/// What a peer's client reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// "2.05", "4.04", ...
    pub code: String,
    pub payload: String,
    /// Content-Format, when the client shows it.
    pub format: Option<u16>,
    /// "ACK", "NON", "CON": the type of the message carrying the response, when the client
    /// shows it.
    pub ty: Option<String>,
    /// Everything the client printed, for failure messages.
    pub log: String,
}

/// The Content-Format numbers of the media type names the peers print.
pub fn format_number(name: &str) -> Option<u16> {
    match name.trim() {
        "text/plain" | "text/plain;charset=utf-8" | "text/plain; charset=utf-8" => Some(0),
        "application/link-format" => Some(40),
        "application/json" => Some(50),
        n => n.parse().ok(),
    }
}

/// Runs the exchanges every peer client must get right against a fresh server of ours.
/// `shows_type`: the client reports the response's message type.
pub fn check(peer: &str, shows_type: bool, ask: impl Fn(&OurServer, Ask<'_>) -> Answer) {
    let server = OurServer::start();
    let ask = |a: Ask<'_>| {
        let answer = ask(&server, a);
        (answer, format!("{peer}: {a:?}"))
    };
    let expect = |a: Ask<'_>, code: &str, payload: &str| {
        let (answer, what) = ask(a);
        assert_eq!(
            (answer.code.as_str(), answer.payload.as_str()),
            (code, payload),
            "{what}\n{}",
            answer.log
        );
        answer
    };

    // GET /hello: piggybacked 2.05, text/plain.
    let a = expect(Ask::new("GET", "/hello"), "2.05", "Hello, world!");
    assert_eq!(
        a.format,
        Some(0),
        "{peer}: GET /hello Content-Format\n{}",
        a.log
    );
    if shows_type {
        assert_eq!(
            a.ty.as_deref(),
            Some("ACK"),
            "{peer}: piggybacked\n{}",
            a.log
        );
    }

    // GET /time: RFC 3339 UTC time.
    let (a, what) = ask(Ask::new("GET", "/time"));
    assert_eq!(a.code, "2.05", "{what}\n{}", a.log);
    assert!(
        a.payload.len() == 20 && a.payload.ends_with('Z') && a.payload.as_bytes()[10] == b'T',
        "{what}: not RFC 3339 UTC: {:?}\n{}",
        a.payload,
        a.log
    );

    // POST /echo: payload and Content-Format back, 2.04.
    let a = expect(
        Ask::new("POST", "/echo").payload("hi there", Some(0)),
        "2.04",
        "hi there",
    );
    assert_eq!(a.format, Some(0), "{peer}: echoed text/plain\n{}", a.log);
    let json = r#"{"interop":1}"#;
    let a = expect(
        Ask::new("POST", "/echo").payload(json, Some(50)),
        "2.04",
        json,
    );
    assert_eq!(
        a.format,
        Some(50),
        "{peer}: echoed application/json\n{}",
        a.log
    );

    // Methods the demo resources lack: 4.05.
    expect(Ask::new("PUT", "/hello").payload("x", None), "4.05", "");
    expect(Ask::new("DELETE", "/echo"), "4.05", "");
    expect(Ask::new("POST", "/time").payload("x", None), "4.05", "");

    // /store: PUT, GET, POST, DELETE, GET.
    expect(
        Ask::new("PUT", "/store").payload("abc", Some(0)),
        "2.04",
        "",
    );
    expect(Ask::new("GET", "/store"), "2.05", "abc");
    expect(
        Ask::new("POST", "/store").payload("def", Some(0)),
        "2.01",
        "abcdef",
    );
    expect(Ask::new("DELETE", "/store"), "2.02", "");
    expect(Ask::new("GET", "/store"), "2.05", "");

    // /.well-known/core: every route with its attributes, application/link-format.
    let (a, what) = ask(Ask::new("GET", "/.well-known/core"));
    assert_eq!(
        (a.code.as_str(), a.format),
        ("2.05", Some(40)),
        "{what}\n{}",
        a.log
    );
    for link in [
        r#"</hello>;rt="demo.hello";ct=0;title="Hello, world""#,
        r#"</time>;rt="demo.time";ct=0"#,
        r#"</echo>;rt="demo.echo""#,
        r#"</store>;rt="test.store";ct=0"#,
        "</kind>",
    ] {
        assert!(
            a.payload.contains(link),
            "{what}: {link} missing\n{}",
            a.log
        );
    }

    // NON: the server sees NON and answers NON; CON is seen as CON.
    let a = expect(Ask::new("GET", "/kind").non(), "2.05", "NON");
    if shows_type {
        assert_eq!(
            a.ty.as_deref(),
            Some("NON"),
            "{peer}: NON response\n{}",
            a.log
        );
    }
    expect(Ask::new("GET", "/kind"), "2.05", "CON");
    let a = expect(
        Ask::new("POST", "/echo").payload("quiet", Some(0)).non(),
        "2.04",
        "quiet",
    );
    if shows_type {
        assert_eq!(
            a.ty.as_deref(),
            Some("NON"),
            "{peer}: NON response\n{}",
            a.log
        );
    }

    // Not found, for each method.
    expect(Ask::new("GET", "/no/such/path"), "4.04", "");
    expect(Ask::new("DELETE", "/nope"), "4.04", "");
}
