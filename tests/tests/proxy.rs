//! Our forward proxy (RFC 7252 §5.7) and its cache (§5.6) with real peers: libcoap's client
//! through our proxy (`-P`) to aiocoap's and node-coap's servers, a second GET within
//! Max-Age answered from the cache with no upstream traffic (counted), aiocoap's client
//! through our proxy (`--proxy`) to libcoap's server, block-wise on both legs, the reverse
//! map, the proxy's errors (5.05, 5.08, 5.04), and one upstream observation shared by
//! several downstream observers (RFC 7641 §5).

#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use coap_tokio::{Client, Code, Method, OptionNumber};
use coap_tools::proxy::{Proxy, ProxyConfig, ProxyStats};
use support::{InProcess, PeerServer, BOUND};

/// Our proxy in-process; its counters.
fn proxy(config: ProxyConfig) -> (InProcess, Arc<ProxyStats>) {
    let (tx, rx) = mpsc::channel();
    let server = InProcess::start_with(
        coap_tools::proxy::server_config(),
        move |server, stop| async move {
            let client = Client::bind("0.0.0.0:0".parse().unwrap()).await.unwrap();
            // As `coap proxy` does: the proxy's own socket is a refused destination.
            let mut config = config;
            config.destinations.own.push(server.local_addr());
            let proxy = Proxy::new(client, server.responder(), config);
            tx.send(proxy.stats()).unwrap();
            let _ = server
                .serve_with_shutdown(proxy, async move {
                    let _ = stop.recv().await;
                })
                .await;
        },
    );
    let stats = rx.recv_timeout(BOUND).unwrap();
    (server, stats)
}

/// libcoap's example server on loopback.
fn libcoap_server(lib: &support::Libcoap) -> PeerServer {
    PeerServer::start("coap-server-notls", |port| {
        let mut cmd = Command::new(&lib.server);
        cmd.args(["-A", "127.0.0.1", "-p", &port.to_string(), "-v", "0"]);
        cmd
    })
}

fn upstream(stats: &ProxyStats) -> u64 {
    stats.upstream.load(Ordering::Relaxed)
}

fn hits(stats: &ProxyStats) -> u64 {
    stats.cache_hits.load(Ordering::Relaxed)
}

/// libcoap's client through our proxy: `coap-client -P coap://PROXY URI`.
fn libcoap_via(
    lib: &support::Libcoap,
    proxy: &InProcess,
    uri: &str,
    extra: &[&str],
) -> support::Finished {
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "0", "-B", "5", "-P"])
        .arg(format!("coap://{}", proxy.addr))
        .args(extra)
        .arg(uri);
    support::run("coap-client -P (our proxy)", cmd)
}

#[test]
fn libcoap_through_our_proxy_to_aiocoap_and_node_coap_with_the_cache() {
    let (Some(lib), Some(aio), Some(node)) =
        (support::libcoap(), support::aiocoap(), support::node_coap())
    else {
        return;
    };
    let mut aio_server = PeerServer::start("aiocoap_server.py", |port| {
        let mut cmd = Command::new(&aio.python);
        cmd.arg(support::script("aiocoap_server.py"))
            .arg(port.to_string());
        cmd
    });
    let mut node_server = PeerServer::start("node_server.js", |port| {
        let mut cmd = Command::new(&node.node);
        cmd.env("NODE_PATH", &node.modules)
            .arg(support::script("node_server.js"))
            .arg(port.to_string());
        cmd
    });
    let (px, stats) = proxy(ProxyConfig::default());
    for (server, want) in [
        (&aio_server, "Hello from aiocoap"),
        (&node_server, "Hello from node-coap"),
    ] {
        let uri = server.uri("/hello");
        let before = upstream(&stats);
        let out = libcoap_via(&lib, &px, &uri, &[]);
        assert!(
            out.status.success() && out.stdout.contains(want),
            "{}",
            out.show()
        );
        assert_eq!(upstream(&stats), before + 1, "the first GET goes upstream");
        // Within Max-Age (none given: 60 s) the second is answered from the cache.
        let cached_hits = hits(&stats);
        let out = libcoap_via(&lib, &px, &uri, &[]);
        assert!(out.stdout.contains(want), "{}", out.show());
        assert_eq!(
            upstream(&stats),
            before + 1,
            "no upstream traffic for a cached answer"
        );
        assert_eq!(hits(&stats), cached_hits + 1);
    }
    // An unsafe method goes upstream and invalidates what the cache held for the resource.
    let store = node_server.uri("/store");
    let out = libcoap_via(&lib, &px, &store, &[]);
    assert!(out.stdout.contains("initial"), "{}", out.show());
    let out = libcoap_via(&lib, &px, &store, &["-m", "put", "-e", "changed"]);
    assert!(out.status.success(), "{}", out.show());
    let out = libcoap_via(&lib, &px, &store, &[]);
    assert!(
        out.stdout.contains("changed"),
        "stale cache after PUT: {}",
        out.show()
    );
    // Block2 upstream (node-coap's 8000-byte /large) and downstream (64-byte blocks to
    // libcoap), byte-exact, then again from the cache.
    let want: Vec<u8> = (0..8000usize)
        .map(|i| 33 + ((7 * i + (i >> 8)) % 94) as u8)
        .collect();
    for _ in 0..2 {
        let dir = support::Scratch::new("proxy-large");
        let out_file = dir.path().join("large.bin");
        let out = libcoap_via(
            &lib,
            &px,
            &node_server.uri("/large"),
            &["-b", "64", "-o", out_file.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", out.show());
        let got = std::fs::read(&out_file).unwrap_or_else(|e| panic!("{e}: {}", out.show()));
        assert!(
            got == want,
            "the 8000-byte body differs ({} bytes)",
            got.len()
        );
    }
    aio_server.assert_running();
    node_server.assert_running();
}

#[test]
fn aiocoap_client_through_our_proxy_to_libcoap() {
    let (Some(lib), Some(aio)) = (support::libcoap(), support::aiocoap()) else {
        return;
    };
    let mut lib_server = libcoap_server(&lib);
    let (px, stats) = proxy(ProxyConfig::default());
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--proxy")
        .arg(format!("coap://{}", px.addr))
        .arg(lib_server.uri("/"));
    let out = support::run("aiocoap-client --proxy (our proxy)", cmd);
    assert!(out.status.success(), "{}", out.show());
    assert!(out.stdout.contains("libcoap"), "{}", out.show());
    assert_eq!(upstream(&stats), 1);
    lib_server.assert_running();
}

#[test]
fn proxy_errors_and_the_reverse_map() {
    // An upstream that never answers (a bound socket nobody reads) → 5.04; the demo server of
    // ours behind the reverse map.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours = InProcess::start(|server, stop| async move {
        let _ = server
            .serve_with_shutdown(coap_tools::demo::router(), async move {
                let _ = stop.recv().await;
            })
            .await;
    });
    let config = ProxyConfig {
        upstream_timeout: Duration::from_millis(800),
        reverse: vec![("/demo".into(), format!("coap://{}", ours.addr))],
        ..ProxyConfig::default()
    };
    let (px, _stats) = proxy(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let via = |proxy_uri: String| {
            c.request(Method::Get, &format!("coap://{}/", px.addr))
                .option(OptionNumber::PROXY_URI, proxy_uri.into_bytes())
        };
        // §5.7.2: a scheme the proxy cannot reach.
        let r = via("http://example.org/".into()).send().await.unwrap();
        assert_eq!(r.code, Code::PROXYING_NOT_SUPPORTED);
        // RFC 8768: Hop-Limit 1 cannot be forwarded.
        let r = via(format!("coap://{}/hello", ours.addr))
            .option(OptionNumber::HOP_LIMIT, vec![1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::HOP_LIMIT_REACHED);
        // Silence upstream → 5.04 Gateway Timeout.
        let r = via(format!("coap://{}/x", silent.local_addr().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::GATEWAY_TIMEOUT);
        // The reverse map: /demo/hello is our server's /hello, no proxy option needed, and
        // the 10 KiB /large comes through block-wise on both legs.
        let r = c
            .get(&format!("coap://{}/demo/hello", px.addr))
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert!(r.payload_str().unwrap_or("").contains("Hello"));
        let r = c
            .get(&format!("coap://{}/demo/large", px.addr))
            .await
            .unwrap();
        assert_eq!(r.payload, coap_tools::demo::large_representation());
        // Not mapped, no proxy option: 4.04.
        let r = c
            .get(&format!("coap://{}/elsewhere", px.addr))
            .await
            .unwrap();
        assert_eq!(r.code, Code::NOT_FOUND);
    });
    drop(silent);
}

/// libcoap's `/time` payloads ("Nov 25 22:08:28", printed back to back) in a client's
/// output.
fn libcoap_times(stdout: &str) -> Vec<&str> {
    let b = stdout.as_bytes();
    let digits = |i: usize, j: usize| (i..j).all(|k| b[k].is_ascii_digit());
    (0..b.len().saturating_sub(14))
        .filter(|&i| {
            b[i].is_ascii_uppercase()
                && b[i + 3] == b' '
                && b[i + 6] == b' '
                && b[i + 9] == b':'
                && b[i + 12] == b':'
                && digits(i + 7, i + 9)
                && digits(i + 10, i + 12)
                && digits(i + 13, i + 15)
        })
        .map(|i| &stdout[i..i + 15])
        .collect()
}

/// RFC 7641 §5: two libcoap clients and ours observe libcoap's `/time` through our proxy;
/// the proxy observes upstream once, relays every notification to each of them, answers
/// the late registration at once from the newest representation, and cancels upstream
/// when the last downstream observer is gone.
#[test]
fn one_upstream_observation_for_many_downstream_observers() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let mut lib_server = libcoap_server(&lib);
    let (px, stats) = proxy(ProxyConfig::default());
    let time = lib_server.uri("/time");
    // Two libcoap observers for 4 s each (libcoap's /time changes every second).
    let observers: Vec<_> = (0..2)
        .map(|_| {
            let lib_client = lib.client.clone();
            let proxy = format!("coap://{}", px.addr);
            let time = time.clone();
            std::thread::spawn(move || {
                let mut cmd = Command::new(lib_client);
                cmd.args(["-s", "4", "-B", "8", "-P"]).arg(proxy).arg(time);
                support::run("coap-client -s 4 -P (our proxy)", cmd)
            })
        })
        .collect();
    // Ours joins a second later and takes three notifications.
    std::thread::sleep(Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ours: Vec<String> = rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut obs = c
            .request(Method::Get, &format!("coap://{}/", px.addr))
            .option(OptionNumber::PROXY_URI, time.clone().into_bytes())
            .observe()
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let r = tokio::time::timeout(Duration::from_secs(5), obs.next())
                .await
                .expect("a notification within 5 s")
                .expect("the observation goes on")
                .expect("a notification, not an error");
            assert_eq!(r.code, Code::CONTENT);
            assert!(r.option(OptionNumber::OBSERVE).is_some(), "{r:?}");
            got.push(r.payload_str().unwrap_or("").to_owned());
        }
        obs.cancel().await;
        got
    });
    assert_eq!(ours.len(), 3);
    assert!(
        // (Not `<`: the clock may pass midnight.)
        ours.windows(2).all(|w| w[0] != w[1]),
        "each notification is a new representation: {ours:?}"
    );
    for o in observers {
        let out = o.join().unwrap();
        let t = libcoap_times(&out.stdout);
        assert!(out.status.success(), "{}", out.show());
        assert!(t.len() >= 3, "at least 3 representations:\n{}", out.show());
        assert!(
            t.windows(2).all(|w| w[0] != w[1]),
            "new each time:\n{}",
            out.show()
        );
    }
    assert_eq!(
        stats.observations.load(Ordering::Relaxed),
        1,
        "one upstream observation for all three observers"
    );
    assert!(stats.observers_joined.load(Ordering::Relaxed) >= 1);
    // Everyone has left: the next upstream notification finds no observer and the proxy
    // deregisters upstream.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.observations_ended.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream observation is cancelled once nobody observes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lib_server.assert_running();
}

/// A demo server of ours, in-process.
fn demo_server() -> InProcess {
    InProcess::start(|server, stop| async move {
        let _ = server
            .serve_with_shutdown(coap_tools::demo::router(), async move {
                let _ = stop.recv().await;
            })
            .await;
    })
}

/// A CON GET carrying `proxy_uri`, as raw bytes.
fn proxied_get(mid: u16, proxy_uri: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 64 + proxy_uri.len()];
    let token = mid.to_be_bytes();
    let mut b = coap_core::MessageBuilder::new(
        &mut buf,
        coap_core::MessageType::Con,
        Code::GET,
        mid,
        &token,
    )
    .unwrap();
    b.option(OptionNumber::PROXY_URI, proxy_uri.as_bytes())
        .unwrap();
    let n = b.finish();
    buf.truncate(n);
    buf
}

#[test]
fn a_silent_upstream_holds_only_its_own_permits() {
    // 300 requests to one upstream that never answers (a bound socket nobody reads) used
    // to take all 256 global permits for the whole upstream timeout: everyone got 5.03.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours = demo_server();
    let config = ProxyConfig {
        max_per_upstream: 8,
        ..ProxyConfig::default()
    };
    let (px, stats) = proxy(config);
    let flood = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let uri = format!("coap://{}/x", silent.local_addr().unwrap());
    // The excess is refused at once with 5.03 (piggybacked on the ACK). Sent in bursts of
    // 20, reading the answers in between, so that no socket buffer overflows.
    flood
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut refused = 0;
    let mut read_answers = |until: usize| {
        let deadline = std::time::Instant::now() + BOUND;
        while refused < until && std::time::Instant::now() < deadline {
            if let Ok(n) = flood.recv(&mut buf) {
                if coap_core::Message::parse(&buf[..n])
                    .is_ok_and(|m| m.code() == Code::SERVICE_UNAVAILABLE)
                {
                    refused += 1;
                }
            }
        }
        refused
    };
    for mid in 0..300u16 {
        flood.send_to(&proxied_get(mid, &uri), px.addr).unwrap();
        if mid % 20 == 19 && mid >= 8 {
            read_answers(usize::from(mid) + 1 - 8);
        }
    }
    let refused = read_answers(300 - 8);
    assert_eq!(refused, 300 - 8, "requests beyond the per-upstream limit");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let r = c
            .request(Method::Get, &format!("coap://{}/", px.addr))
            .option(
                OptionNumber::PROXY_URI,
                format!("coap://{}/hello", ours.addr).into_bytes(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT, "a live upstream is still reached");
    });
    assert!(stats.busy.load(Ordering::Relaxed) >= 300 - 8);
    drop(silent);
}

#[test]
fn destination_policy_refuses_link_local_and_the_proxy_itself() {
    let ours = demo_server();
    let (px, stats) = proxy(ProxyConfig::default());
    // Loopback is allowed by default: every --allow-less setup of ours relies on it. And
    // through an `--allow`, even the proxy's own socket is reached.
    let (looping, _) = proxy(ProxyConfig {
        destinations: coap_tools::destination::DestinationPolicy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        },
        ..ProxyConfig::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let via = |px: std::net::SocketAddr, proxy_uri: String| {
            c.request(Method::Get, &format!("coap://{px}/"))
                .option(OptionNumber::PROXY_URI, proxy_uri.into_bytes())
        };
        // 4.03: the proxy understood and refuses (RFC 7252 §5.9.2.4); no packet leaves.
        for target in [
            "coap://169.254.169.254/latest/meta-data".to_owned(),
            "coap://[::ffff:169.254.169.254]/".to_owned(),
            "coap://255.255.255.255/".to_owned(),
            format!("coap://{}/hello", px.addr),
        ] {
            let r = via(px.addr, target.clone()).send().await.unwrap();
            assert_eq!(r.code, Code::FORBIDDEN, "{target}");
        }
        assert_eq!(stats.forbidden.load(Ordering::Relaxed), 4);
        assert_eq!(upstream(&stats), 0, "nothing was sent upstream");
        let r = via(px.addr, format!("coap://{}/hello", ours.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT, "loopback is forwarded by default");
        let r = via(looping.addr, format!("coap://{}/hello", looping.addr))
            .send()
            .await
            .unwrap();
        // Forwarded to itself: the proxy's own /hello is no proxy request there (4.04).
        assert_eq!(r.code, Code::NOT_FOUND, "allowed: forwarded to itself");
    });
}
