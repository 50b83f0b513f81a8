//! Resource directory (RFC 9176) interop:
//! - libcoap's `coap-client` registers at our RD; aiocoap's client finds the resource by
//!   lookup;
//! - our RD client (the core's `RdClient` through `coap_tools::rd::client`) registers at
//!   `aiocoap-rd` and at libcoap's `coap-rd`, and their lookups list it;
//! - simple registration (§5.1), lifetime expiry and observable lookups on our RD;
//! - each test of our RD runs on every registration store (memory, SQLite, Redis: one
//!   test list, three backends, [`on_every_store!`]); restarts and several instances are
//!   in [`stores`].

use coap_tokio::Peer;
use std::process::Command;
use std::time::Duration;

use coap_core::link_format::Links;
use coap_core::rd::{Action, RdClient, RdEvent, RegistrationParams};
use coap_tokio::{
    Client, Code, IncomingRequest, Method, Outcome, Resource, ResponseWriter, Route, Router,
};
use coap_tools::demo::BoxedResource;
use coap_tools::rd::client::{discover, send};
use coap_tools::rd::server::{server_config, ResourceDirectory};
use coap_tools::rd::store::StoreSpec;
use coap_tools::rd::Limits;

use super::support::{self, InProcess, PeerServer, Scratch};
use super::{answered, block_on, our_client, request, text};

const T: Duration = Duration::from_secs(5);

#[path = "rd_stores.rs"]
mod stores;

/// The stores the RD runs on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Sqlite,
    Redis,
}

/// A store for one test: its `--store` value and what holds it (a scratch directory for
/// the SQLite file, a `redis-server` of the test's own), removed or killed on drop.
struct TestStore {
    spec: StoreSpec,
    _dir: Option<Scratch>,
    _redis: Option<stores::RedisServer>,
}

impl TestStore {
    fn new(backend: Backend) -> TestStore {
        match backend {
            Backend::Memory => TestStore {
                spec: StoreSpec::Memory,
                _dir: None,
                _redis: None,
            },
            Backend::Sqlite => {
                let dir = Scratch::new("rd-sqlite");
                TestStore {
                    spec: StoreSpec::Sqlite(dir.path().join("rd.sqlite3")),
                    _dir: Some(dir),
                    _redis: None,
                }
            }
            Backend::Redis => {
                let redis = stores::RedisServer::start();
                TestStore {
                    spec: StoreSpec::Redis(redis.url()),
                    _dir: None,
                    _redis: Some(redis),
                }
            }
        }
    }
}

/// Generates, for each named test function `fn name(Backend)`, one `#[test]` per store.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $name() { super::$name(super::Backend::Memory) })*
        }
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Backend::Sqlite) })*
        }
        mod redis {
            $(#[test] fn $name() { super::$name(super::Backend::Redis) })*
        }
    };
}

on_every_store!(
    libcoap_registers_and_aiocoap_finds_the_resource,
    simple_registration_expiry_and_observed_lookup,
    our_rd_refuses_what_exceeds_its_limits,
    register_update_page_and_remove,
);

/// Our RD on `store`, its registrations expired and its lookups notified as in `coap rd`.
fn our_rd(limits: Limits, store: &TestStore) -> InProcess {
    let spec = store.spec.clone();
    InProcess::start_with(server_config(), move |server, stop| async move {
        let store = spec.open().await.expect("the store opens");
        let rd = ResourceDirectory::open(limits, store)
            .await
            .expect("the store loads");
        let router = rd.router(server.client(), server.responder());
        let maintenance = tokio::spawn(rd.maintain(server.notifier()));
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        server
            .serve_with_shutdown(router, shutdown)
            .await
            .expect("our RD failed");
        maintenance.abort();
    })
}

fn hrefs(payload: &[u8]) -> Vec<String> {
    Links::new(payload)
        .map(|l| l.expect("valid link format").href().to_owned())
        .collect()
}

fn libcoap_registers_and_aiocoap_finds_the_resource(backend: Backend) {
    let (Some(lib), Some(aio)) = (support::libcoap(), support::aiocoap()) else {
        return;
    };
    let store = TestStore::new(backend);
    let rd = our_rd(Limits::DEFAULT, &store);
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "6", "-B", "10", "-m", "post", "-t", "40", "-e"])
        .arg(r#"</sensors/temp>;rt="temperature-c";if="sensor";ct=0,</sensors/light>;rt="light-lux""#)
        .arg(rd.uri("/rd?ep=libcoap-node&lt=120&d=floor-3"));
    let done = support::run("coap-client-notls", cmd);
    assert!(done.status.success(), "{}", done.show());
    assert!(
        done.stdout.contains("c:2.01") && done.stdout.contains("Location-Path:reg"),
        "{}",
        done.show()
    );
    // aiocoap's client: resource lookup by rt, endpoint lookup by ep.
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--no-pretty-print")
        .arg(rd.uri("/rd-lookup/res?rt=temperature-c"));
    let found = support::run("aiocoap-client", cmd);
    assert!(found.status.success(), "{}", found.show());
    let links = hrefs(found.stdout.trim_end().as_bytes());
    assert_eq!(links.len(), 1, "{}", found.show());
    assert!(
        links[0].starts_with("coap://127.0.0.1:") && links[0].ends_with("/sensors/temp"),
        "{}",
        found.show()
    );
    assert!(found.stdout.contains(r#"if="sensor""#), "{}", found.show());
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--no-pretty-print")
        .arg(rd.uri("/rd-lookup/ep?d=floor-3"));
    let eps = support::run("aiocoap-client", cmd);
    assert!(
        eps.stdout.contains(r#"ep="libcoap-node""#) && eps.stdout.contains("</reg/1>"),
        "{}",
        eps.show()
    );
}

/// Registers `links` as `ep` at the RD on `origin` with the core client (discovering the
/// registration interface), then sends the update that is due before the lifetime ends:
/// the registration's location and what the update led to.
async fn register_with_our_client(
    c: &Client,
    origin: &str,
    ep: &str,
    links: &[u8],
) -> (String, RdEvent, RdClient<'static>) {
    let path: &'static str = Box::leak(
        discover(c, origin, T)
            .await
            .expect("discovery")
            .into_boxed_str(),
    );
    let ep: &'static str = Box::leak(ep.to_owned().into_boxed_str());
    let params = RegistrationParams::new(ep).lifetime(300).at(path);
    let mut rd = RdClient::new(params, coap_core::Instant::ZERO);
    let now = coap_core::Instant::ZERO;
    let action = rd.poll_action(now).expect("a registration is due");
    let (code, location, max_age) = send(c, origin, &rd, action, links, T)
        .await
        .expect("an answer");
    let event = rd.handle_response(now, code, location.iter().map(Vec::as_slice), max_age);
    assert_eq!(event, RdEvent::Registered, "{code}");
    let location = rd.location().expect("registered").to_owned();
    // The update is due before the lifetime ends.
    let later = rd.poll_timeout().expect("an update deadline");
    assert!(later.as_millis() < 300_000);
    let action = rd.poll_action(later).expect("an update is due");
    assert_eq!(action, Action::Update);
    let (code, loc, max_age) = send(c, origin, &rd, action, links, T)
        .await
        .expect("an answer");
    let updated = rd.handle_response(later, code, loc.iter().map(Vec::as_slice), max_age);
    (location, updated, rd)
}

#[test]
fn our_rd_client_registers_at_aiocoap_rd() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let rd_bin = aio.client.with_file_name("aiocoap-rd");
    let peer = PeerServer::start("aiocoap-rd", |port| {
        let mut cmd = Command::new(&rd_bin);
        cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
        cmd
    });
    let origin = peer.uri("");
    block_on(async move {
        let c = our_client().await;
        let links = br#"</temp>;rt="temperature";ct=0,</light>;rt="light-lux";if="sensor""#;
        let (location, updated, _) =
            register_with_our_client(&c, &origin, "coap-rs-node", links).await;
        assert!(location.starts_with("reg/"), "{location}");
        assert_eq!(updated, RdEvent::Updated);
        let r = answered(
            "aiocoap-rd resource lookup",
            request(
                &c,
                Method::Get,
                &format!("{origin}/resource-lookup/?ep=coap-rs-node"),
            )
            .send()
            .await,
        );
        assert_eq!(r.code, Code::CONTENT);
        let found = hrefs(&r.payload);
        let ours = format!("coap://{}", c.local_addr());
        assert_eq!(
            found,
            [format!("{ours}/temp"), format!("{ours}/light")],
            "{}",
            text(&r)
        );
        let r = answered(
            "aiocoap-rd endpoint lookup",
            request(&c, Method::Get, &format!("{origin}/endpoint-lookup/"))
                .send()
                .await,
        );
        assert!(text(&r).contains(r#"ep="coap-rs-node""#), "{}", text(&r));
    });
}

#[test]
fn our_rd_client_registers_at_libcoap_rd() {
    if support::libcoap().is_none() {
        return;
    }
    let Some(rd_bin) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("coap-rd-notls"))
            .find(|p| p.is_file())
    }) else {
        panic!("coap-rd-notls (libcoap3-bin) is not on PATH; run tests/peers/install.sh");
    };
    let peer = PeerServer::start("coap-rd-notls", |port| {
        let mut cmd = Command::new(&rd_bin);
        cmd.args(["-A", "127.0.0.1", "-p", &port.to_string(), "-v", "0"]);
        cmd
    });
    let origin = peer.uri("");
    block_on(async move {
        let c = our_client().await;
        let links = br#"</temp>;rt="temperature";ct=0"#;
        let (first, updated, mut rd) =
            register_with_our_client(&c, &origin, "coap-rs-node", links).await;
        // libcoap 4.3.1's RD implements no registration update (4.05 to POST, 5.01 to
        // PUT): the client registers again after its back-off.
        assert_eq!(updated, RdEvent::Failed(Some(Code::METHOD_NOT_ALLOWED)));
        let retry = rd.poll_timeout().expect("a retry is due");
        assert_eq!(rd.poll_action(retry), Some(Action::Register));
        let (code, loc, max_age) = send(&c, &origin, &rd, Action::Register, links, T)
            .await
            .expect("an answer");
        let event = rd.handle_response(retry, code, loc.iter().map(Vec::as_slice), max_age);
        assert_eq!(event, RdEvent::Registered, "{code}");
        let location = rd.location().expect("registered again").to_owned();
        assert!(
            first.starts_with("rd/") && location.starts_with("rd/"),
            "{first} {location}"
        );
        // libcoap's RD lists each registration resource in its /.well-known/core, and a
        // GET of it returns the registered links.
        let r = answered(
            "coap-rd /.well-known/core",
            request(&c, Method::Get, &format!("{origin}/.well-known/core"))
                .send()
                .await,
        );
        assert!(
            hrefs(&r.payload).contains(&format!("/{location}")),
            "{}",
            text(&r)
        );
        let r = answered(
            "coap-rd registration",
            request(&c, Method::Get, &format!("{origin}/{location}"))
                .send()
                .await,
        );
        assert_eq!(r.payload, links);
    });
}

/// A resource of the endpoint doing simple registration.
struct Thermometer;

impl Resource<Peer> for Thermometer {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        let _ = w.respond(Code::CONTENT, None, b"21.5");
        Outcome::Respond
    }
    fn link_attributes(&self) -> &str {
        r#"rt="temperature-c";ct=0"#
    }
}

fn simple_registration_expiry_and_observed_lookup(backend: Backend) {
    let store = TestStore::new(backend);
    let rd = our_rd(Limits::DEFAULT, &store);
    let rd_origin = rd.uri("");
    // An endpoint (our server) that POSTs to /.well-known/rd from its own socket; the RD
    // fetches its /.well-known/core (RFC 9176 §5.1).
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    let origin = rd_origin.clone();
    let _endpoint = InProcess::start(move |server, stop| async move {
        let client = server.client();
        let router = Router::new(vec![Route::new(
            "/sensors/temp",
            Box::new(Thermometer) as BoxedResource,
        )]);
        tokio::spawn(async move {
            let r = client
                .request(
                    Method::Post,
                    &format!("{origin}/.well-known/rd?ep=simple-node&lt=2"),
                )
                .timeout(T)
                .send()
                .await;
            let _ = result_tx.send(r.map(|r| r.code));
        });
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        let _ = server.serve_with_shutdown(router, shutdown).await;
    });
    let code = result_rx
        .recv_timeout(support::BOUND)
        .expect("the simple registration was answered")
        .expect("a response");
    assert_eq!(code, Code::CHANGED);
    block_on(async move {
        let c = our_client().await;
        // Observe the resource lookup for temperature sensors.
        let mut obs = request(
            &c,
            Method::Get,
            &format!("{rd_origin}/rd-lookup/res?rt=temperature-c"),
        )
        .observe()
        .await
        .expect("observe");
        let first = obs.next().await.expect("a response").expect("2.05");
        assert_eq!(hrefs(&first.payload).len(), 1, "{}", text(&first));
        assert!(text(&first).contains("/sensors/temp>"), "{}", text(&first));
        // lt=2: the registration expires, and the observer hears of it.
        let empty = tokio::time::timeout(support::BOUND, obs.next())
            .await
            .expect("a notification within the bound")
            .expect("the observation goes on")
            .expect("2.05");
        assert!(empty.payload.is_empty(), "{}", text(&empty));
        // A new registration is notified too.
        let r = answered(
            "registration",
            request(&c, Method::Post, &format!("{rd_origin}/rd?ep=late&lt=60"))
                .content_format(40)
                .payload(r#"</t>;rt="temperature-c""#)
                .send()
                .await,
        );
        assert_eq!(r.code, Code::CREATED);
        let third = tokio::time::timeout(support::BOUND, obs.next())
            .await
            .expect("a notification within the bound")
            .expect("the observation goes on")
            .expect("2.05");
        let found = hrefs(&third.payload);
        assert_eq!(found.len(), 1, "{}", text(&third));
        let ours = format!("coap://{}", c.local_addr());
        assert_eq!(found[0], format!("{ours}/t"), "{}", text(&third));
    });
}

fn our_rd_refuses_what_exceeds_its_limits(backend: Backend) {
    let store = TestStore::new(backend);
    let rd = our_rd(
        Limits {
            max_registrations: 1,
            max_links_bytes: 64,
            max_observed_lookups: 4,
        },
        &store,
    );
    let uri = rd.uri("/rd");
    let simple_uri = rd.uri("/.well-known/rd");
    block_on(async move {
        let c = our_client().await;
        let post = |q: &'static str, links: String| {
            request(&c, Method::Post, &format!("{uri}?{q}"))
                .content_format(40)
                .payload(links)
                .send()
        };
        let r = answered(
            "too large",
            post("ep=a", format!("</{}>", "x".repeat(100))).await,
        );
        assert_eq!(r.code, Code::REQUEST_ENTITY_TOO_LARGE, "{}", text(&r));
        let r = answered("bad links", post("ep=a", "</a>;rt=\"x".into()).await);
        assert_eq!(r.code, Code::BAD_REQUEST);
        assert!(
            text(&r).contains("unterminated quoted string at byte 8"),
            "{}",
            text(&r)
        );
        let r = answered("no ep", post("lt=5", "</a>".into()).await);
        assert_eq!(r.code, Code::BAD_REQUEST);
        let r = answered("first", post("ep=a", "</a>".into()).await);
        assert_eq!(r.code, Code::CREATED);
        let r = answered("full", post("ep=b", "</b>".into()).await);
        assert_eq!(r.code, Code::SERVICE_UNAVAILABLE, "{}", text(&r));
        let r = answered(
            "wrong format",
            request(&c, Method::Post, &format!("{uri}?ep=c"))
                .content_format(50)
                .payload("{}")
                .send()
                .await,
        );
        assert_eq!(r.code, Code::UNSUPPORTED_CONTENT_FORMAT);
        // Simple registration (§5.1): ep required, no base (the links come from the
        // sender's address), no payload.
        let simple = |q: &'static str, payload: &'static str| {
            request(&c, Method::Post, &format!("{simple_uri}?{q}"))
                .payload(payload)
                .send()
        };
        for (q, payload) in [("lt=60", ""), ("ep=s&base=coap://h", ""), ("ep=s", "</x>")] {
            let r = answered("simple registration", simple(q, payload).await);
            assert_eq!(r.code, Code::BAD_REQUEST, "{q} {payload}: {}", text(&r));
        }
    });
}

/// Registration, update (§5.3.1), paged lookups (§6.2) and removal (§5.3.2), the same on
/// every store; a registration of the same endpoint keeps its location.
fn register_update_page_and_remove(backend: Backend) {
    let store = TestStore::new(backend);
    let rd = our_rd(Limits::DEFAULT, &store);
    let origin = rd.uri("");
    block_on(async move {
        let c = our_client().await;
        let mut locations = Vec::new();
        for n in 0..5 {
            let r = answered(
                "registration",
                request(&c, Method::Post, &format!("{origin}/rd?ep=node{n}&lt=300"))
                    .content_format(40)
                    .payload(format!("</s{n}>;rt=\"t\""))
                    .send()
                    .await,
            );
            assert_eq!(r.code, Code::CREATED, "{}", text(&r));
            locations.push(
                r.options_of(coap_tokio::OptionNumber::LOCATION_PATH)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
        let mut unique = locations.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5, "{locations:?}");
        // The same endpoint again: the same location (RFC 9176 §5.3).
        let r = answered(
            "re-registration",
            request(&c, Method::Post, &format!("{origin}/rd?ep=node2"))
                .content_format(40)
                .payload("</again>")
                .send()
                .await,
        );
        assert_eq!(r.code, Code::CREATED);
        let again: Vec<String> = r
            .options_of(coap_tokio::OptionNumber::LOCATION_PATH)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        assert_eq!(again.join("/"), locations[2]);
        let lookup = |q: &'static str| {
            let c = &c;
            let origin = &origin;
            async move {
                let r = answered(
                    "lookup",
                    request(c, Method::Get, &format!("{origin}/rd-lookup/ep?{q}"))
                        .send()
                        .await,
                );
                assert_eq!(r.code, Code::CONTENT, "{}", text(&r));
                hrefs(&r.payload)
            }
        };
        let all = lookup("rt=core.rd-ep").await;
        assert_eq!(all.len(), 5, "{all:?}");
        assert_eq!(lookup("page=0&count=2").await, all[..2]);
        assert_eq!(lookup("page=1&count=2").await, all[2..4]);
        assert_eq!(lookup("page=2&count=2").await, all[4..]);
        assert!(lookup("page=3&count=2").await.is_empty());
        // An update with a new lifetime, found by it.
        let reg = format!("{origin}/{}", locations[1]);
        let r = answered(
            "update",
            request(&c, Method::Post, &format!("{reg}?lt=900"))
                .send()
                .await,
        );
        assert_eq!(r.code, Code::CHANGED, "{}", text(&r));
        assert_eq!(lookup("lt=900").await, [format!("/{}", locations[1])]);
        let r = answered(
            "update with ep",
            request(&c, Method::Post, &format!("{reg}?ep=other"))
                .send()
                .await,
        );
        assert_eq!(r.code, Code::BAD_REQUEST);
        // Removal; then the registration resource is gone.
        let r = answered("removal", request(&c, Method::Delete, &reg).send().await);
        assert_eq!(r.code, Code::DELETED);
        for method in [Method::Delete, Method::Get, Method::Post] {
            let r = answered("after removal", request(&c, method, &reg).send().await);
            assert_eq!(r.code, Code::NOT_FOUND, "{method:?}");
        }
        assert_eq!(lookup("rt=core.rd-ep").await.len(), 4);
    });
}
