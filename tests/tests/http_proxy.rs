//! Our HTTP-to-CoAP cross-proxy (RFC 8075, [`coap_tools::http_proxy`]) driven by the real
//! `curl`: through the default mapping `/hc/coap://host:port/path` (§5.3) to libcoap's
//! `coap-server` and to our own file and demo servers — GET, PUT then GET back, 100 KB
//! bodies up (Block1 upstream) and down (Block2 upstream) byte-exact, 4.04 → 404, and the
//! header mapping (Content-Type, ETag, Cache-Control, If-None-Match → 304) checked against
//! what the CoAP server answers directly; the proxy's own errors (400, 501, 504, 413, 415,
//! 503); and the `coap proxy --http-bind` command line.

#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coap_tokio::{Client, Code, Method, OptionNumber, Route, Router};
use coap_tools::demo::BoxedResource;
use coap_tools::destination::DestinationPolicy;
use coap_tools::files::{FileServer, FilesConfig};
use coap_tools::http_proxy::{entity_tag, HttpProxy, HttpProxyConfig, HttpProxyStats};
use support::{InProcess, PeerServer, Proc, Scratch, BOUND};

/// 100 KB in a pattern that does not repeat at block boundaries.
fn hundred_kb() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

/// Our HTTP proxy on 127.0.0.1 (ephemeral port) on a runtime of its own thread; stopped and
/// joined (bounded) on drop.
struct HttpSide {
    addr: SocketAddr,
    stats: Arc<HttpProxyStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpSide {
    fn start(config: HttpProxyConfig) -> HttpSide {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .unwrap();
                let client = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
                // As `coap proxy` does: its own socket is a refused destination.
                let mut config = config;
                config.destinations.own.push(listener.local_addr().unwrap());
                let proxy = HttpProxy::new(client, config).expect("a valid configuration");
                tx.send((listener.local_addr().unwrap(), proxy.stats()))
                    .unwrap();
                proxy
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, stats) = rx
            .recv_timeout(BOUND)
            .expect("the HTTP proxy did not start");
        HttpSide {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://PROXY/hc/` + `target` (RFC 8075 §5.3).
    fn hc(&self, target: &str) -> String {
        format!("http://{}/hc/{target}", self.addr)
    }
}

impl Drop for HttpSide {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + BOUND;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() && thread.join().is_err() && !std::thread::panicking() {
                panic!("the HTTP proxy's thread panicked");
            }
        }
    }
}

/// What curl got.
#[derive(Debug)]
struct Got {
    status: u16,
    /// Header fields of the final response, names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The status line as printed, for the report.
    status_line: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `curl` (bounded by `--max-time` and [`BOUND`]) with `args` and `url`.
fn curl(args: &[&str], url: &str) -> Got {
    let scratch = Scratch::new("curl");
    let head = scratch.path().join("head");
    let body = scratch.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "8", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(url);
    let done = support::run("curl", cmd);
    assert!(done.status.success(), "{}", done.show());
    let head = std::fs::read_to_string(&head).unwrap_or_default();
    // With `Expect: 100-continue` there may be an interim response first: the last
    // status line counts.
    let block = head
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or_else(|| panic!("no response head: {head:?}\n{}", done.show()));
    let mut lines = block.lines();
    let status_line = lines.next().unwrap_or("").to_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Got {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
        status_line,
    }
}

/// `curl -X PUT --data-binary @FILE` with a Content-Type.
fn curl_put(url: &str, body: &[u8], content_type: &str) -> Got {
    let scratch = Scratch::new("put-body");
    let file = scratch.path().join("body");
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    let ct = format!("Content-Type: {content_type}");
    curl(
        &[
            "-X",
            "PUT",
            "--data-binary",
            &data,
            "-H",
            &ct,
            "-H",
            "Expect:",
        ],
        url,
    )
}

/// libcoap's server on a free port, with up to 10 resources created by PUT (`-d 10`).
fn libcoap_server(lib: &support::Libcoap) -> PeerServer {
    PeerServer::start("coap-server-notls", |port| {
        let mut cmd = Command::new(&lib.server);
        cmd.args(["-A", "127.0.0.1", "-p", &port.to_string(), "-d", "10"]);
        cmd
    })
}

/// Our file server on `dir`, writable.
fn file_server(dir: &Path) -> InProcess {
    let mut config = FilesConfig::new(dir);
    config.write = true;
    config.max_upload = 1 << 20;
    let files = FileServer::new(config).expect("a directory to serve");
    InProcess::start(move |server, stop| async move {
        let router = Router::new(vec![Route::prefix("/", Box::new(files) as BoxedResource)]);
        let _ = server
            .serve_with_shutdown(router, async move {
                let _ = stop.recv().await;
            })
            .await;
    })
}

/// Our demo server (`coap serve`'s resources).
fn demo_server() -> InProcess {
    InProcess::start(move |server, stop| async move {
        let _ = server
            .serve_with_shutdown(coap_tools::demo::router(), async move {
                let _ = stop.recv().await;
            })
            .await;
    })
}

/// A CoAP request straight to the server with our client, to compare with the proxy's.
fn direct(method: Method, uri: &str) -> coap_tokio::Response {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        c.request(method, uri)
            .timeout(BOUND)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{uri}: {e}"))
    })
}

/// The destination policy of a proxy in front of local servers: loopback allowed (it is
/// refused by default).
fn local() -> DestinationPolicy {
    DestinationPolicy {
        allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        ..Default::default()
    }
}

/// The default configuration with loopback upstreams allowed.
fn local_default() -> HttpProxyConfig {
    HttpProxyConfig {
        destinations: local(),
        ..HttpProxyConfig::default()
    }
}

fn config() -> HttpProxyConfig {
    HttpProxyConfig {
        upstream_timeout: Duration::from_secs(8),
        ..local_default()
    }
}

#[test]
fn curl_through_our_http_proxy_to_libcoap_server() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let mut server = libcoap_server(&lib);
    let proxy = HttpSide::start(config());
    let target = |path: &str| proxy.hc(&server.uri(path));

    // GET of an existing resource: libcoap's / describes the server, as text/plain.
    let root = curl(&[], &target("/"));
    assert_eq!(root.status, 200, "{root:?}");
    let want = direct(Method::Get, &server.uri("/"));
    assert_eq!(root.body, want.payload, "the proxy changed the body");
    assert!(root.text().contains("libcoap"), "{}", root.text());
    // Its Content-Format (if any) and Max-Age, as libcoap sent them.
    assert_eq!(
        root.header("content-type").map(str::to_owned),
        want.content_format()
            .map(|cf| coap_tools::http_proxy::media_type_for(cf.0)),
        "{root:?}"
    );
    let max_age = want
        .option(OptionNumber::MAX_AGE)
        .map(|v| coap_tokio::coap_core::option::decode_uint(v).unwrap())
        .unwrap_or(60);
    assert_eq!(
        root.header("cache-control"),
        Some(format!("max-age={max_age}").as_str())
    );
    println!("libcoap GET /: {}", root.status_line);

    // PUT creates a resource (-d): 2.01 → 201; GET returns the body.
    let put = curl_put(&target("/note"), b"hello through HTTP", "text/plain");
    assert_eq!(put.status, 201, "{put:?}");
    let back = curl(&[], &target("/note"));
    assert_eq!(back.status, 200, "{back:?}");
    assert_eq!(back.text(), "hello through HTTP");
    // Updating it: 2.04 without payload → 204 (RFC 8075 §7 note 2).
    let again = curl_put(&target("/note"), b"second", "text/plain");
    assert_eq!(again.status, 204, "{again:?}");
    assert!(again.body.is_empty());
    assert_eq!(curl(&[], &target("/note")).text(), "second");

    // 100 KB up (Block1 upstream) and down (Block2 upstream), byte-exact.
    let body = hundred_kb();
    let put = curl_put(&target("/big"), &body, "application/octet-stream");
    assert_eq!(put.status, 201, "{put:?}");
    let big = curl(&[], &target("/big"));
    assert_eq!(big.status, 200, "{:?}", big.status_line);
    assert_eq!(big.body.len(), body.len());
    assert!(big.body == body, "the 100 KB body came back different");
    assert_eq!(
        big.header("content-type"),
        Some("application/octet-stream"),
        "{:?}",
        big.headers
    );

    // 4.04 → 404.
    let missing = curl(&[], &target("/no/such/thing"));
    assert_eq!(missing.status, 404, "{missing:?}");
    println!("libcoap GET /no/such/thing: {}", missing.status_line);
    // DELETE: 2.02 without payload → 204; then it is gone.
    let del = curl(&["-X", "DELETE"], &target("/note"));
    assert_eq!(del.status, 204, "{del:?}");
    assert_eq!(curl(&[], &target("/note")).status, 404);
    server.assert_running();
}

#[test]
fn curl_through_our_http_proxy_to_our_file_server() {
    let dir = Scratch::new("hc-files");
    let body = hundred_kb();
    std::fs::write(dir.path().join("big.bin"), &body).unwrap();
    std::fs::write(dir.path().join("hello.txt"), b"Hello, HTTP!").unwrap();
    let server = file_server(dir.path());
    let proxy = HttpSide::start(config());

    // GET: body, Content-Type, ETag and Cache-Control as mapped from the CoAP response.
    let direct_hello = direct(Method::Get, &server.uri("/hello.txt"));
    assert_eq!(direct_hello.code, Code::CONTENT);
    let hello = curl(&[], &proxy.hc(&server.uri("/hello.txt")));
    assert_eq!(hello.status, 200, "{hello:?}");
    assert_eq!(hello.text(), "Hello, HTTP!");
    let cf = direct_hello
        .content_format()
        .expect("the file server sets one");
    assert_eq!(hello.header("content-type"), cf.media_type(), "{hello:?}");
    let etag = direct_hello
        .option(OptionNumber::ETAG)
        .expect("the file server sets an ETag");
    assert_eq!(hello.header("etag"), Some(entity_tag(etag).as_str()));
    // The documented encoding: the ETag's bytes in lowercase hex, quoted.
    let hex: String = etag.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hello.header("etag"), Some(format!("\"{hex}\"").as_str()));
    // No Max-Age upstream: its default, 60 s (RFC 7252 §5.10.5).
    assert!(direct_hello.option(OptionNumber::MAX_AGE).is_none());
    assert_eq!(hello.header("cache-control"), Some("max-age=60"));

    // A conditional GET with that entity-tag: 2.03 upstream → 304 (RFC 8075 §7 note 3).
    let inm = format!("If-None-Match: {}", entity_tag(etag));
    let valid = curl(&["-H", &inm], &proxy.hc(&server.uri("/hello.txt")));
    assert_eq!(valid.status, 304, "{valid:?}");
    assert_eq!(valid.header("etag"), Some(entity_tag(etag).as_str()));
    // Another tag does not match: the whole representation.
    let other = curl(
        &["-H", "If-None-Match: \"0102\""],
        &proxy.hc(&server.uri("/hello.txt")),
    );
    assert_eq!(other.status, 200, "{other:?}");
    assert_eq!(other.text(), "Hello, HTTP!");

    // HEAD: GET's headers, no body.
    let head = curl(&["-I"], &proxy.hc(&server.uri("/big.bin")));
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("content-length"), Some("100000"));
    // curl -I writes the head where the body would go: nothing of the 100 KB follows.
    assert!(head.body.len() < 1000, "{} bytes", head.body.len());

    // 100 KB down, Block2 upstream, byte-exact.
    let big = curl(&[], &proxy.hc(&server.uri("/big.bin")));
    assert_eq!(big.status, 200, "{:?}", big.status_line);
    assert!(big.body == body, "the 100 KB file came back different");
    println!("our file server GET /big.bin: {}", big.status_line);

    // PUT: a new file (2.01 → 201), byte-exact on disk and through the proxy; the
    // percent-encoded form of the target works too.
    let up: Vec<u8> = body.iter().rev().copied().collect();
    let encoded = server
        .uri("/up.bin")
        .replace(':', "%3A")
        .replace('/', "%2F");
    let put = curl_put(&proxy.hc(&encoded), &up, "application/octet-stream");
    assert_eq!(put.status, 201, "{put:?}");
    assert!(std::fs::read(dir.path().join("up.bin")).unwrap() == up);
    let back = curl(&[], &proxy.hc(&server.uri("/up.bin")));
    assert!(back.body == up, "the uploaded file came back different");
    // PUT with If-Match of the current entity-tag: 2.04 → 204; a stale one: 4.12 → 412.
    let tag = back.header("etag").expect("an ETag").to_owned();
    let ifm = format!("If-Match: {tag}");
    let put = curl(
        &[
            "-X",
            "PUT",
            "--data-binary",
            "v2",
            "-H",
            &ifm,
            "-H",
            "Content-Type: text/plain",
        ],
        &proxy.hc(&server.uri("/up.bin")),
    );
    assert_eq!(put.status, 204, "{put:?}");
    let put = curl(
        &[
            "-X",
            "PUT",
            "--data-binary",
            "v3",
            "-H",
            &ifm,
            "-H",
            "Content-Type: text/plain",
        ],
        &proxy.hc(&server.uri("/up.bin")),
    );
    assert_eq!(put.status, 412, "{put:?}");
    assert_eq!(std::fs::read(dir.path().join("up.bin")).unwrap(), b"v2");

    // 4.04 → 404; DELETE 2.02 → 204.
    let missing = curl(&[], &proxy.hc(&server.uri("/nothing.txt")));
    assert_eq!(missing.status, 404, "{missing:?}");
    let del = curl(&["-X", "DELETE"], &proxy.hc(&server.uri("/up.bin")));
    assert_eq!(del.status, 204, "{del:?}");
    assert!(!dir.path().join("up.bin").exists());

    // A response over max_response: the transfer is cut off, 502.
    let small = HttpSide::start(HttpProxyConfig {
        max_response: 10_000,
        ..config()
    });
    let cut = curl(&[], &small.hc(&server.uri("/big.bin")));
    assert_eq!(cut.status, 502, "{:?}", cut.status_line);
    assert!(cut.text().contains("larger than 10000"), "{}", cut.text());
    assert_eq!(curl(&[], &small.hc(&server.uri("/hello.txt"))).status, 200);
}

#[test]
fn max_age_and_the_configured_base_with_our_demo_server() {
    let server = demo_server();
    let proxy = HttpSide::start(HttpProxyConfig {
        base: Some(server.uri("")),
        ..config()
    });
    // /time carries Max-Age 1: max-age=1.
    let time = curl(&[], &proxy.hc(&server.uri("/time")));
    assert_eq!(time.status, 200, "{time:?}");
    assert_eq!(time.header("cache-control"), Some("max-age=1"));
    // The null mapping onto the base (RFC 8075 §5.2): /hello is coap://server/hello.
    let hello = curl(&[], &format!("http://{}/hello", proxy.addr));
    assert_eq!(hello.status, 200, "{hello:?}");
    assert_eq!(hello.text(), "Hello, world!");
    // POST /echo: 2.04 with a payload → 200 with it, its Content-Format mapped both ways.
    let echo = curl(
        &[
            "-X",
            "POST",
            "--data-binary",
            "{\"a\":1}",
            "-H",
            "Content-Type: application/json",
        ],
        &format!("http://{}/echo", proxy.addr),
    );
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(echo.text(), "{\"a\":1}");
    assert_eq!(echo.header("content-type"), Some("application/json"));
    // 4.05 → 400 with the reason phrase of RFC 8075 §7 note 7 (PUT on /hello).
    let put = curl(
        &[
            "-X",
            "PUT",
            "--data-binary",
            "x",
            "-H",
            "Content-Type: text/plain",
        ],
        &format!("http://{}/hello", proxy.addr),
    );
    assert_eq!(put.status, 400, "{put:?}");
    assert!(
        put.status_line.contains("CoAP server returned 4.05"),
        "{}",
        put.status_line
    );
}

/// Answers `/C/DD` with the response code C.DD, Max-Age 7 and a diagnostic payload; `/2/01`
/// also with Location-Path `made/1`.
struct Codes;

impl coap_tokio::Handler<coap_tokio::Peer> for Codes {
    fn handle(
        &mut self,
        req: &coap_tokio::IncomingRequest<'_, coap_tokio::Peer>,
        w: &mut coap_tokio::ResponseWriter<'_>,
    ) -> coap_tokio::Outcome {
        let path: Vec<String> = req
            .message()
            .uri_path()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        // `/echo-options`: the request's Accept, Content-Format, ETag, If-Match and
        // If-None-Match options as text, to see what the proxy made of the headers.
        if path.first().map(String::as_str) == Some("echo-options") {
            let msg = req.message();
            let show = |n: OptionNumber| -> String {
                let values: Vec<String> = msg
                    .options_of(n)
                    .map(|v| match n {
                        OptionNumber::ACCEPT | OptionNumber::CONTENT_FORMAT => {
                            coap_tokio::coap_core::option::decode_uint(v)
                                .map(|u| u.to_string())
                                .unwrap_or_default()
                        }
                        _ => v.iter().map(|b| format!("{b:02x}")).collect(),
                    })
                    .collect();
                values.join(",")
            };
            let text = format!(
                "accept={} cf={} etag={} if-match={} if-none-match={}",
                show(OptionNumber::ACCEPT),
                show(OptionNumber::CONTENT_FORMAT),
                show(OptionNumber::ETAG),
                show(OptionNumber::IF_MATCH),
                msg.options_of(OptionNumber::IF_NONE_MATCH).count(),
            );
            w.set_code(Code::CONTENT);
            let _ = w.payload(text.as_bytes());
            return coap_tokio::Outcome::Respond;
        }
        let (class, detail) = match path.as_slice() {
            [c, d] => (c.parse::<u8>().unwrap_or(5), d.parse::<u8>().unwrap_or(0)),
            _ => (4, 4),
        };
        w.set_code(Code::new(class, detail));
        let _ = w.option_uint(OptionNumber::MAX_AGE, 7);
        if (class, detail) == (2, 1) {
            let _ = w.option_str(OptionNumber::LOCATION_PATH, "made");
            let _ = w.option_str(OptionNumber::LOCATION_PATH, "1");
        }
        if class >= 4 {
            let _ = w.payload(format!("diagnostic {class}.{detail:02}").as_bytes());
        }
        coap_tokio::Outcome::Respond
    }
}

#[test]
fn coap_response_codes_map_by_rfc8075_table_2() {
    let server = InProcess::start(move |server, stop| async move {
        let _ = server
            .serve_with_shutdown(Codes, async move {
                let _ = stop.recv().await;
            })
            .await;
    });
    let proxy = HttpSide::start(config());
    let get = |code: &str| curl(&[], &proxy.hc(&server.uri(&format!("/{code}"))));
    for (code, status) in [
        ("4/00", 400),
        ("4/01", 403),
        ("4/02", 500),
        ("4/03", 403),
        ("4/04", 404),
        ("4/05", 400),
        ("4/06", 406),
        ("4/12", 412),
        ("4/13", 413),
        ("4/15", 415),
        ("5/00", 500),
        ("5/01", 501),
        ("5/02", 502),
        ("5/03", 503),
        ("5/04", 504),
        ("5/05", 502),
    ] {
        let got = get(code);
        assert_eq!(got.status, status, "{code}: {got:?}");
        // §6.5.3: the diagnostic payload is the body.
        let diag = format!("diagnostic {}", code.replace('/', "."));
        assert_eq!(got.text(), diag, "{code}");
        // Error responses are cacheable in CoAP (RFC 7252 §5.9): their Max-Age maps.
        assert_eq!(got.header("cache-control"), Some("max-age=7"), "{code}");
    }
    // §7 note 8: Retry-After from Max-Age on 5.03.
    assert_eq!(get("5/03").header("retry-after"), Some("7"));
    // 2.01 with Location-Path: 201 with Location in the default mapping, and no
    // Cache-Control (2.01 is not cacheable).
    let created = curl(
        &[
            "-X",
            "POST",
            "--data-binary",
            "x",
            "-H",
            "Content-Type: text/plain",
        ],
        &proxy.hc(&server.uri("/2/01")),
    );
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        created.header("location"),
        Some(format!("/hc/coap://{}/made/1", server.addr).as_str())
    );
    assert_eq!(created.header("cache-control"), None);
    // 2.31 has no HTTP mapping (note 10): 502, the result was not understood.
    assert_eq!(get("2/31").status, 502);

    // Request headers → options (RFC 8075 §6.1, RFC 7252 §10.2.2).
    let echo = proxy.hc(&server.uri("/echo-options"));
    let options = |args: &[&str]| {
        let got = curl(args, &echo);
        assert_eq!(got.status, 200, "{got:?}");
        got.text()
    };
    assert_eq!(
        options(&["-H", "Accept: */*"]),
        "accept= cf= etag= if-match= if-none-match=0"
    );
    assert_eq!(
        options(&[
            "-H",
            "Accept: image/png, application/cbor;q=0.5, text/plain;q=0.2"
        ]),
        "accept=60 cf= etag= if-match= if-none-match=0"
    );
    assert_eq!(
        options(&["-H", "If-None-Match: \"0a0b\", \"ff\", W/\"01\""]),
        "accept= cf= etag=0a0b,ff if-match= if-none-match=0"
    );
    assert_eq!(
        options(&[
            "-X",
            "PUT",
            "--data-binary",
            "{}",
            "-H",
            "Content-Type: application/json; charset=utf-8",
            "-H",
            "If-Match: \"c0ffee\"",
        ]),
        "accept= cf=50 etag= if-match=c0ffee if-none-match=0"
    );
    assert_eq!(
        options(&[
            "-X",
            "PUT",
            "--data-binary",
            "x",
            "-H",
            "Content-Type: text/plain",
            "-H",
            "If-None-Match: *",
            "-H",
            "If-Match: *",
        ]),
        "accept= cf=0 etag= if-match= if-none-match=1"
    );
}

#[test]
fn the_proxy_s_own_errors() {
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_uri = format!("coap://{}/x", silent.local_addr().unwrap());
    let proxy = HttpSide::start(HttpProxyConfig {
        upstream_timeout: Duration::from_secs(1),
        max_body: 1000,
        ..local_default()
    });

    // Not a CoAP URI (RFC 8075 §5.3.1: no scheme), or not parseable: 400.
    let bad = curl(&[], &proxy.hc("example.com/light"));
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(
        bad.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(bad.text().contains("not a CoAP URI"), "{}", bad.text());
    println!("bad target: {}", bad.status_line);
    assert_eq!(curl(&[], &proxy.hc("coap://host:99999/x")).status, 400);
    // A path outside /hc/ without a base: 404.
    assert_eq!(
        curl(&[], &format!("http://{}/elsewhere", proxy.addr)).status,
        404
    );
    // Methods CoAP has not (RFC 7252 §10.2.1): 501.
    let options = curl(&["-X", "OPTIONS"], &proxy.hc(&silent_uri));
    assert_eq!(options.status, 501, "{options:?}");
    assert_eq!(curl(&["-X", "BREW"], &proxy.hc(&silent_uri)).status, 501);
    // Upstream silent: 504 once the (1 s) upstream timeout passes.
    let timeout = curl(&[], &proxy.hc(&silent_uri));
    assert_eq!(timeout.status, 504, "{timeout:?}");
    println!("silent upstream: {}", timeout.status_line);
    // A body over max_body: 413 before anything goes upstream.
    let sent = proxy.stats.upstream.load(Ordering::Relaxed);
    let large = curl_put(&proxy.hc(&silent_uri), &[b'x'; 5000], "text/plain");
    assert_eq!(large.status, 413, "{large:?}");
    // Also when the client waits for `100 Continue` first: it gets the 413 instead.
    let scratch = Scratch::new("expect");
    let file = scratch.path().join("body");
    std::fs::write(&file, [b'y'; 5000]).unwrap();
    let data = format!("@{}", file.display());
    let expecting = curl(
        &[
            "-X",
            "PUT",
            "--data-binary",
            &data,
            "-H",
            "Content-Type: text/plain",
            "-H",
            "Expect: 100-continue",
        ],
        &proxy.hc(&silent_uri),
    );
    assert_eq!(expecting.status, 413, "{expecting:?}");
    // Media type without a Content-Format (RFC 8075 §6.1): 415.
    let png = curl_put(&proxy.hc(&silent_uri), b"x", "image/png");
    assert_eq!(png.status, 415, "{png:?}");
    assert_eq!(proxy.stats.upstream.load(Ordering::Relaxed), sent);
    // Request heads beyond hyper's limits: 431.
    let many: Vec<String> = (0..70).map(|i| format!("X-H{i}: v")).collect();
    let mut args = Vec::new();
    for h in &many {
        args.extend(["-H", h.as_str()]);
    }
    assert_eq!(curl(&args, &proxy.hc(&silent_uri)).status, 431);
    let big = format!("X-Big: {}", "a".repeat(70_000));
    assert_eq!(curl(&["-H", &big], &proxy.hc(&silent_uri)).status, 431);
    // The discovery resource of §5.5.
    let wkc = curl(&[], &format!("http://{}/.well-known/core", proxy.addr));
    assert_eq!(wkc.status, 200);
    assert_eq!(wkc.text(), "</hc/>;rt=\"core.hc\"");
    assert_eq!(wkc.header("content-type"), Some("application/link-format"));
}

#[test]
fn beyond_max_upstream_the_proxy_answers_503() {
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_uri = format!("coap://{}/x", silent.local_addr().unwrap());
    let proxy = HttpSide::start(HttpProxyConfig {
        upstream_timeout: Duration::from_secs(4),
        max_upstream: 1,
        ..local_default()
    });
    // One exchange that hangs until its timeout...
    let url = proxy.hc(&silent_uri);
    let first = std::thread::spawn(move || curl(&[], &url));
    let deadline = Instant::now() + BOUND;
    while proxy.stats.inflight.load(Ordering::Acquire) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first request never went upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // ...and the next one finds no room.
    let busy = curl(&[], &proxy.hc(&silent_uri));
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert_eq!(proxy.stats.busy.load(Ordering::Relaxed), 1);
    assert_eq!(first.join().unwrap().status, 504);
}

/// A TCP port free on loopback right now.
fn free_tcp_port() -> u16 {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn coap_proxy_http_bind_on_the_command_line() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let mut lib_server = libcoap_server(&lib);
    let dir = Scratch::new("hc-cli");
    let body = hundred_kb();
    std::fs::write(dir.path().join("big.bin"), &body).unwrap();
    let ours = file_server(dir.path());
    let bin = coap_tests::fresh_coap_binary(&["", "http_proxy"]);
    // The port may be taken between the probe and the bind: a few tries.
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_tcp_port();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "proxy",
            "--bind",
            "127.0.0.1:0",
            "--http-bind",
            &format!("127.0.0.1:{port}"),
            "--upstream-timeout",
            "5",
            "--allow",
            "127.0.0.0/8",
        ]);
        let mut proc = Proc::spawn("coap proxy --http-bind", cmd);
        let deadline = Instant::now() + BOUND;
        let mut up = false;
        while Instant::now() < deadline && proc.exited().is_none() {
            if proc
                .stderr()
                .contains("HTTP-to-CoAP (RFC 8075) listening on")
            {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !up {
            last = proc.outputs();
            continue;
        }
        let hc = |uri: &str| format!("http://127.0.0.1:{port}/hc/{uri}");
        let root = curl(&[], &hc(&lib_server.uri("/")));
        assert_eq!(root.status, 200, "{root:?}\n{}", proc.outputs());
        assert!(root.text().contains("libcoap"));
        let missing = curl(&[], &hc(&lib_server.uri("/missing")));
        assert_eq!(missing.status, 404, "{missing:?}");
        let big = curl(&[], &hc(&ours.uri("/big.bin")));
        assert_eq!(big.status, 200, "{:?}", big.status_line);
        assert!(big.body == body, "the 100 KB file came back different");
        println!("coap proxy --http-bind, GET /big.bin: {}", big.status_line);
        let put = curl_put(&hc(&ours.uri("/new.txt")), b"from the CLI", "text/plain");
        assert_eq!(put.status, 201, "{put:?}");
        assert_eq!(
            std::fs::read(dir.path().join("new.txt")).unwrap(),
            b"from the CLI"
        );
        assert!(proc.exited().is_none(), "{}", proc.outputs());
        lib_server.assert_running();
        return;
    }
    panic!("coap proxy --http-bind did not start: {last}");
}

#[test]
fn a_bad_http_base_is_a_usage_error() {
    let bin = coap_tests::fresh_coap_binary(&["", "http_proxy"]);
    let mut cmd = Command::new(&bin);
    cmd.args([
        "proxy",
        "--bind",
        "127.0.0.1:0",
        "--http-bind",
        "127.0.0.1:0",
        "--http-base",
        "http://example.com/",
    ]);
    let done = support::run("coap proxy --http-base", cmd);
    assert!(!done.status.success(), "{}", done.show());
    assert_eq!(done.status.code(), Some(2), "{}", done.show());
    let err = done.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{}", done.show());
    assert!(err.contains("--http-base"), "{}", done.show());
}

/// Sends `head` on a fresh connection and returns it.
fn raw_http(addr: SocketAddr, head: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
    s
}

/// The status line's code of the next response on `s` (0 when the connection closed).
fn status_of(s: &mut std::net::TcpStream) -> u16 {
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(s, &mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn concurrent_large_bodies_share_one_memory_budget() {
    // 40 concurrent 15 MiB bodies used to be held at once (1.27 GB); now the bodies being
    // read at any time fit a global budget and the rest get 503 before a byte is read.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let side = HttpSide::start(HttpProxyConfig {
        max_body_memory: 1 << 20,
        upstream_timeout: Duration::from_millis(300),
        ..local_default()
    });
    let head = format!(
        "POST /hc/coap://{}/x HTTP/1.1\r\nHost: p\r\nContent-Length: 700000\r\n\r\n",
        silent.local_addr().unwrap()
    );
    let mut first = raw_http(side.addr, &head);
    std::io::Write::write_all(&mut first, &[7u8; 1000]).unwrap();
    // Give the first request's head a moment to be read (its connection was made first,
    // but each connection has a task of its own), then poll: until the first holds its
    // reservation a second one may still be taken, and then it waits for its body — so
    // each try waits only briefly for its answer, and a taken one is dropped (its
    // reservation returns with the connection).
    std::thread::sleep(Duration::from_millis(200));
    let deadline = Instant::now() + BOUND;
    let mut refused = 0;
    while Instant::now() < deadline && refused == 0 {
        let mut second = raw_http(side.addr, &head);
        second
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if status_of(&mut second) == 503 {
            refused += 1;
        }
    }
    assert_eq!(refused, 1, "a body beyond the budget is refused with 503");
    assert!(side.stats.busy.load(Ordering::Relaxed) >= 1);
    // The first one completes; its reservation comes back, and the next body is taken.
    std::io::Write::write_all(&mut first, &vec![7u8; 699_000]).unwrap();
    assert_eq!(
        status_of(&mut first),
        504,
        "forwarded (the upstream is silent)"
    );
    drop(first);
    let mut third = raw_http(side.addr, &head);
    std::io::Write::write_all(&mut third, &vec![7u8; 700_000]).unwrap();
    assert_eq!(status_of(&mut third), 504);
    drop(silent);
}

#[test]
fn one_client_cannot_take_every_connection() {
    let side = HttpSide::start(HttpProxyConfig {
        max_connections_per_client: 2,
        ..local_default()
    });
    // Two idle connections (slow headers) from 127.0.0.1 ...
    let a = raw_http(side.addr, "GET /hc/");
    let _b = raw_http(side.addr, "GET /hc/");
    // ... and the third from the same address is refused at once.
    let deadline = Instant::now() + BOUND;
    while side.stats.refused_connections.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        let mut c = raw_http(side.addr, "");
        if status_of(&mut c) == 503 {
            break;
        }
    }
    assert_eq!(side.stats.refused_connections.load(Ordering::Relaxed), 1);
    // Its slot comes back when one of its connections closes.
    drop(a);
    let mut served = false;
    let deadline = Instant::now() + BOUND;
    while !served && Instant::now() < deadline {
        let mut d = raw_http(
            side.addr,
            "GET /.well-known/core HTTP/1.1\r\nHost: p\r\n\r\n",
        );
        served = status_of(&mut d) == 200;
    }
    assert!(served, "a freed slot serves the client again");
}

/// The status and body of the one response on `s` (sent with `Connection: close`).
fn response_of(s: &mut std::net::TcpStream) -> (u16, String) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: the read timeout per read, and at most 64 KiB.
    while all.len() < 65536 {
        match std::io::Read::read(s, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&all).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// A GET of `path` on a fresh connection: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"),
    );
    response_of(&mut s)
}

#[test]
fn destination_policy_on_the_http_side() {
    let ours = demo_server();
    let port = ours.addr.port();
    let side = HttpSide::start(HttpProxyConfig::default());
    // The default policy: link-local, broadcast, loopback by address and by a name that
    // resolves to it: 403 with the reason (RFC 9110 §15.5.4); nothing is sent.
    for (target, why) in [
        ("coap://169.254.169.254/latest".to_owned(), "link-local"),
        ("coap://%5Bfe80::1%5D/x".to_owned(), "link-local"),
        ("coap://255.255.255.255/x".to_owned(), "broadcast"),
        (format!("coap://127.0.0.1:{port}/hello"), "loopback"),
        (format!("coap://localhost:{port}/hello"), "loopback"),
    ] {
        let (status, body) = get(side.addr, &format!("/hc/{target}"));
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains(why), "{target}: {body}");
    }
    // The broadcast target is refused before the policy (RFC 8075 §8.4, with multicast).
    assert_eq!(side.stats.forbidden.load(Ordering::Relaxed), 4);
    assert_eq!(side.stats.upstream.load(Ordering::Relaxed), 0);

    // Loopback allowed (and 10/8 denied): forwarded by address and by name; the proxy's
    // own socket and the denied network are still refused.
    let local_side = HttpSide::start(HttpProxyConfig {
        destinations: DestinationPolicy {
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            ..local()
        },
        ..HttpProxyConfig::default()
    });
    for target in [
        format!("coap://127.0.0.1:{port}/hello"),
        format!("coap://localhost:{port}/hello"),
    ] {
        let (status, body) = get(local_side.addr, &format!("/hc/{target}"));
        assert_eq!(status, 200, "{target}: {body}");
    }
    for (target, why) in [
        (format!("coap://{}/x", local_side.addr), "itself"),
        ("coap://10.1.2.3/x".to_owned(), "denied"),
    ] {
        let (status, body) = get(local_side.addr, &format!("/hc/{target}"));
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains(why), "{target}: {body}");
    }
}

#[test]
fn a_silent_upstream_fails_its_own_requests_while_another_is_served() {
    // 300 HTTP requests to a CoAP upstream that never answers used to hold every upstream
    // permit for the whole timeout, so everyone got 503. Now: 8 go upstream (504 after
    // the upstream timeout), 8 wait for their permits (504 after the bounded wait), the
    // rest get 503 at once, and a request to a live upstream is served meanwhile.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours = demo_server();
    let side = HttpSide::start(HttpProxyConfig {
        max_upstream: 16,
        max_per_upstream: 8,
        upstream_queue: 8,
        upstream_wait: Duration::from_secs(3),
        upstream_timeout: Duration::from_secs(4),
        max_connections_per_client: 400,
        ..local_default()
    });
    let head = format!(
        "GET /hc/coap://{}/x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
        silent.local_addr().unwrap()
    );
    let mut flood: Vec<_> = (0..300).map(|_| raw_http(side.addr, &head)).collect();
    let deadline = Instant::now() + BOUND;
    while side.stats.busy.load(Ordering::Relaxed) < 284 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(side.stats.busy.load(Ordering::Relaxed) >= 284);
    for i in 0..3 {
        let (status, body) = get(side.addr, &format!("/hc/coap://{}/hello?n={i}", ours.addr));
        assert_eq!(status, 200, "the live upstream is served: {body}");
    }
    let statuses: Vec<u16> = flood.iter_mut().map(status_of).collect();
    let count = |c: u16| statuses.iter().filter(|s| **s == c).count();
    assert_eq!(count(503) + count(504), 300, "{statuses:?}");
    assert!(
        count(504) >= 16,
        "504 for the queued requests too: {statuses:?}"
    );
    assert!(side.stats.gave_up_waiting.load(Ordering::Relaxed) >= 8);
    drop(silent);
}

#[test]
fn slow_headers_time_out_and_cannot_keep_a_client_out() {
    // Slow-header clients from many addresses open ~100 connections per second, each
    // sending a partial head and then nothing. With 8 connection places, a normal client
    // used to wait in the listen backlog behind them; now each newcomer takes the place of
    // the connection that has waited longest for its head, and heads time out.
    let side = HttpSide::start(HttpProxyConfig {
        max_connections: 8,
        max_connections_per_client: 4,
        header_read_timeout: Duration::from_secs(2),
        ..local_default()
    });
    let addr = side.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut held = Vec::new();
                // Bounded: 600 connections, about 6 s.
                for i in 0..600u32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let s = tokio::net::TcpSocket::new_v4().unwrap();
                    s.bind(SocketAddr::from((
                        coap_tests::spoof::source_addr(i % 50),
                        0,
                    )))
                    .unwrap();
                    if let Ok(Ok(mut c)) =
                        tokio::time::timeout(Duration::from_secs(1), s.connect(addr)).await
                    {
                        let _ = c
                            .write_all(b"GET /hc/coap://127.0.0.1:9/x HTTP/1.1\r\nHo")
                            .await;
                        held.push(c);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // The first connection was closed by the proxy (evicted or timed out):
                // its read ends.
                let mut first = held.swap_remove(0);
                let mut buf = [0u8; 256];
                tokio::time::timeout(BOUND, first.read(&mut buf))
                    .await
                    .is_ok()
            })
        })
    };
    // Without any pressure on the table, a lone slow head is cut off by the header-read
    // timeout (not evicted): the connection ends.
    let lone = HttpSide::start(HttpProxyConfig {
        header_read_timeout: Duration::from_secs(1),
        ..local_default()
    });
    let mut slow = raw_http(lone.addr, "GET /hc/coap://127.0.0.1:9/x HTTP/1.1\r\nHo");
    let (status, _) = response_of(&mut slow);
    assert_eq!(status, 0, "closed on the timeout, without an answer");
    let mut gone = [0u8; 16];
    assert_eq!(
        std::io::Read::read(&mut slow, &mut gone).unwrap_or(1),
        0,
        "the connection is closed"
    );
    assert_eq!(lone.stats.evicted_connections.load(Ordering::Relaxed), 0);
    // While the attack runs, the normal client is served each time.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let (status, _) = get(addr, "/.well-known/core");
        assert_eq!(status, 200, "a normal client is served during the attack");
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        attacker.join().unwrap(),
        "a slow-header connection is closed by the proxy"
    );
    assert!(side.stats.evicted_connections.load(Ordering::Relaxed) > 0);
}

#[test]
fn forty_large_bodies_take_only_the_default_budget_and_bodyless_requests_pass() {
    // 40 concurrent uploads of 15 MiB used to be held at once (1.27 GB of RSS). With the
    // default 64 MiB budget, 4 are taken (each reserves its Content-Length before a byte
    // is read) and 36 get 503 with Retry-After at once. A request without a body reserves
    // nothing: it is served while the budget is spent (it used to reserve max_body).
    let ours = demo_server();
    let side = HttpSide::start(HttpProxyConfig {
        max_connections_per_client: 64,
        ..local_default()
    });
    let head = format!(
        "POST /hc/coap://{}/x HTTP/1.1\r\nHost: p\r\nContent-Length: {}\r\n\r\n",
        ours.addr,
        15 << 20
    );
    let mut uploads: Vec<_> = (0..40).map(|_| raw_http(side.addr, &head)).collect();
    let deadline = Instant::now() + BOUND;
    while side.stats.busy.load(Ordering::Relaxed) < 36 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        side.stats.busy.load(Ordering::Relaxed),
        36,
        "64 MiB / 15 MiB = 4 taken"
    );
    let (status, body) = get(side.addr, &format!("/hc/coap://{}/hello", ours.addr));
    assert_eq!(status, 200, "a GET needs no body budget: {body}");
    // The refused ones got 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3).
    let mut refused = 0;
    for s in uploads.iter_mut() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = std::io::Read::read(s, &mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("HTTP/1.1 503") && text.contains("retry-after: 1") {
            refused += 1;
        }
    }
    assert_eq!(refused, 36);
}

#[test]
fn a_large_response_is_charged_to_the_body_budget() {
    // A GET reserves nothing, but its Block2 response grows in the proxy's memory: it is
    // charged as it arrives. With a 48 KiB budget a 100 KB response is cut off with 503
    // and Retry-After (it used to be reassembled whatever the budget); a small one passes.
    let dir = Scratch::new("hc-budget");
    std::fs::write(dir.path().join("big.bin"), hundred_kb()).unwrap();
    std::fs::write(dir.path().join("small.txt"), b"small").unwrap();
    let files = file_server(dir.path());
    let side = HttpSide::start(HttpProxyConfig {
        max_body_memory: 48 << 10,
        ..config()
    });
    let mut s = raw_http(
        side.addr,
        &format!(
            "GET /hc/coap://{}/big.bin HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
            files.addr
        ),
    );
    let mut head = [0u8; 1024];
    let n = std::io::Read::read(&mut s, &mut head).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert_eq!(side.stats.busy.load(Ordering::Relaxed), 1);
    let (status, body) = get(side.addr, &format!("/hc/coap://{}/small.txt", files.addr));
    assert_eq!((status, body.as_str()), (200, "small"));
}
