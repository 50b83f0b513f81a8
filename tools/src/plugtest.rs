//! The ETSI CoAP plugtest server (`coap serve --plugtest`): the resources the ETSI CoAP
//! interoperability test descriptions expect (TD_COAP_CORE_*, TD_COAP_BLOCK_*,
//! TD_COAP_OBS_*, TD_COAP_LINK_*), on the core [`Router`], so that any client can be
//! pointed at it.
//!
//! | path | methods | TDs | what |
//! | --- | --- | --- | --- |
//! | `/test` | GET, POST, PUT, DELETE | CORE 01–08, 10, 12, 18 | GET 2.05 describing the request (Max-Age 30); POST 2.01 with Location-Path `location1/location2/location3`; PUT 2.04 (2.01 once deleted); DELETE 2.02 |
//! | `/separate` | GET | CORE 09, 11, 17 | separate response (RFC 7252 §5.2.2): empty ACK first for CON, a NON response for NON |
//! | `/large-separate` | GET | | the same with a body larger than a block |
//! | `/seg1/seg2/seg3` | GET | CORE 13 | several Uri-Path options |
//! | `/query` | GET | CORE 14 | echoes its Uri-Query options |
//! | `/location-query` | POST | CORE 19 | 2.01 with Location-Query `first=1`, `second=2` |
//! | `/multi-format` | GET | CORE 20 | Accept 0 text, 41 XML, 50 JSON, 60 CBOR; other Accept 4.06 |
//! | `/validate` | GET, PUT | CORE 21, 22 | ETag; 2.03 Valid for a matching ETag; PUT with If-Match (2.04, 4.12) |
//! | `/create1` | GET, PUT, DELETE | CORE 23 | PUT with If-None-Match (2.01, then 4.12); DELETE 2.02 |
//! | `/large` | GET | BLOCK 01, 02, 06 | 1280 bytes of text, block-wise |
//! | `/large-update` | GET, PUT | BLOCK 03 | Block1 PUT |
//! | `/large-create` | POST (GET below it) | BLOCK 04 | Block1 POST → 2.01 with Location-Path |
//! | `/large-post` | POST | BLOCK 05 | Block1 POST; the body upper-cased in the response, via Block2 |
//! | `/obs` | GET, PUT, DELETE | OBS 01, 03–10 | changes every period (5 s), Max-Age 5; DELETE notifies 4.04, PUT with another Content-Format notifies 4.06 |
//! | `/obs-non` | GET | OBS 02 | the same, NON notifications |
//! | `/obs-large` | GET | | notifications larger than a block |
//! | `/obs-pumping`, `/obs-pumping-non` | GET | | notifications at a high rate |
//! | `/obs-reset` | POST | | POST `sesame` ends every observation |
//! | `/link1`–`/link3`, `/path`, `/path/sub1`–`/path/sub3` | GET | LINK 01–09 | link attributes for the `/.well-known/core` filters |
//!
//! The resources are plain [`Resource`]s; what happens later (separate responses,
//! notifications) is done by the task [`serve`] runs next to the server, fed by the
//! resources over a bounded channel.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coap_core::router::Resource;
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Block, Code, ContentFormat, MessageType, OptionNumber, ResponseHandle};
use coap_core::{Route, Router};
use coap_tokio::{Notifier, Peer, Reply, Responder};
use tokio::sync::mpsc;

use crate::demo::{etag_of, BoxedResource};
use crate::uploads::{Step, Uploads};

/// The router type of the plugtest server.
pub type PlugtestRouter = Router<BoxedResource, Vec<Route<'static, BoxedResource>>>;

/// Observe keys (`ResponseWriter::observable`, `Notifier::notify`).
pub mod keys {
    /// `/obs`.
    pub const OBS: u32 = 101;
    /// `/obs-non`.
    pub const OBS_NON: u32 = 102;
    /// `/obs-large`.
    pub const OBS_LARGE: u32 = 103;
    /// `/obs-pumping`.
    pub const OBS_PUMPING: u32 = 104;
    /// `/obs-pumping-non`.
    pub const OBS_PUMPING_NON: u32 = 105;
    /// Every observable resource of the plugtest server.
    pub const ALL: [u32; 5] = [OBS, OBS_NON, OBS_LARGE, OBS_PUMPING, OBS_PUMPING_NON];
}

/// Timing of the plugtest server.
#[derive(Clone, Copy, Debug)]
pub struct PlugtestConfig {
    /// How often `/obs`, `/obs-non` and `/obs-large` change (the TDs say every 5 s).
    pub obs_period: Duration,
    /// How often `/obs-pumping` and `/obs-pumping-non` change.
    pub pumping_period: Duration,
    /// How long `/separate` and `/large-separate` take before answering; long enough
    /// that the empty ACK goes first (RFC 7252 §5.2.2).
    pub separate_delay: Duration,
}

impl Default for PlugtestConfig {
    fn default() -> Self {
        PlugtestConfig {
            obs_period: Duration::from_secs(5),
            pumping_period: Duration::from_millis(100),
            separate_delay: Duration::from_millis(500),
        }
    }
}

/// Work a resource hands to the task of [`serve`]: the handler runs on the endpoint's
/// loop and cannot wait.
#[derive(Debug)]
enum Job {
    /// Answer a deferred request after `PlugtestConfig::separate_delay`.
    Separate(ResponseHandle, Reply),
    /// Notify the observers of a key now.
    Notify(u32, Reply),
}

/// Jobs waiting for the task; a full queue answers 5.03 rather than grow.
const JOB_QUEUE: usize = 64;

/// State shared by the resources and the notification task.
#[derive(Debug)]
struct Shared {
    /// Bumped every `obs_period`.
    tick: u64,
    /// Bumped every `pumping_period`.
    pump: u64,
    /// `/obs`: `None` once deleted.
    obs: Option<(Vec<u8>, u16)>,
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> MutexGuard<'_, Shared> {
    // A panic elsewhere cannot leave `Shared` inconsistent (plain values): keep serving.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The routes of the plugtest server and the receiving end of its job queue.
struct Parts {
    routes: Vec<Route<'static, BoxedResource>>,
    jobs: mpsc::Receiver<Job>,
    state: State,
}

fn parts() -> Parts {
    let (tx, rx) = mpsc::channel(JOB_QUEUE);
    let state: State = Arc::new(Mutex::new(Shared {
        tick: 0,
        pump: 0,
        obs: Some((tick_text("obs", 0).into_bytes(), 0)),
    }));
    let b = |r: Box<dyn Resource<Peer> + Send>| r;
    let routes = vec![
        Route::new("/test", b(Box::new(Test { deleted: false }))),
        Route::new("/separate", b(Box::new(Separate::new(tx.clone(), false)))),
        Route::new(
            "/large-separate",
            b(Box::new(Separate::new(tx.clone(), true))),
        ),
        Route::new("/seg1/seg2/seg3", b(Box::new(Text("/seg1/seg2/seg3", "")))),
        Route::new("/query", b(Box::new(Query))),
        Route::new("/location-query", b(Box::new(LocationQuery))),
        Route::new("/multi-format", b(Box::new(MultiFormat))),
        Route::new("/validate", b(Box::new(Validate::new()))),
        Route::new("/create1", b(Box::new(Create1 { body: None }))),
        Route::new("/large", b(Box::new(Large))),
        Route::new("/large-update", b(Box::new(LargeUpdate::new()))),
        Route::prefix("/large-create", b(Box::new(LargeCreate::new()))),
        Route::new("/large-post", b(Box::new(LargePost::new()))),
        Route::new(
            "/obs",
            b(Box::new(Obs {
                state: state.clone(),
                jobs: tx.clone(),
            })),
        ),
        Route::new("/obs-non", b(Box::new(Ticking::new(&state, keys::OBS_NON)))),
        Route::new(
            "/obs-large",
            b(Box::new(Ticking::new(&state, keys::OBS_LARGE))),
        ),
        Route::new(
            "/obs-pumping",
            b(Box::new(Ticking::new(&state, keys::OBS_PUMPING))),
        ),
        Route::new(
            "/obs-pumping-non",
            b(Box::new(Ticking::new(&state, keys::OBS_PUMPING_NON))),
        ),
        Route::new("/obs-reset", b(Box::new(ObsReset { jobs: tx }))),
        Route::new(
            "/link1",
            b(Box::new(Text(
                "/link1",
                r#"rt="Type1 Type2";if="If1";title="Link test resource""#,
            ))),
        ),
        Route::new(
            "/link2",
            b(Box::new(Text(
                "/link2",
                r#"rt="Type2 Type3";if="If2";title="Link test resource""#,
            ))),
        ),
        Route::new(
            "/link3",
            b(Box::new(Text(
                "/link3",
                r#"rt="Type1 Type3";if="foo";title="Link test resource""#,
            ))),
        ),
        Route::new("/path", b(Box::new(PathRoot))),
        Route::new("/path/sub1", b(Box::new(Text("/path/sub1", SUB_ATTRS)))),
        Route::new("/path/sub2", b(Box::new(Text("/path/sub2", SUB_ATTRS)))),
        Route::new("/path/sub3", b(Box::new(Text("/path/sub3", SUB_ATTRS)))),
    ];
    Parts {
        routes,
        jobs: rx,
        state,
    }
}

const SUB_ATTRS: &str = r#"ct=0;title="Hierarchical link description sub-resource""#;

/// Serves the plugtest resources on `server` until `shutdown` resolves, with the task
/// that sends separate responses and notifications beside it.
pub async fn serve(
    server: coap_tokio::Server,
    config: PlugtestConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let Parts {
        routes,
        jobs,
        state,
    } = parts();
    let task = tokio::spawn(run_tasks(
        server.notifier(),
        server.responder(),
        jobs,
        state,
        config,
    ));
    let result = server
        .serve_with_shutdown(Router::new(routes), shutdown)
        .await;
    task.abort();
    result
}

/// The plugtest router alone, without the task of [`serve`] (for inspecting routes and
/// link attributes): what needs the task — `/separate`, `/large-separate`, PUT and DELETE
/// of `/obs`, `/obs-reset` — answers 5.03 Service Unavailable.
pub fn router() -> PlugtestRouter {
    Router::new(parts().routes)
}

/// Sends what the resources queued and the periodic notifications, until the server
/// closes.
async fn run_tasks(
    notifier: Notifier,
    responder: Responder,
    mut jobs: mpsc::Receiver<Job>,
    state: State,
    config: PlugtestConfig,
) {
    let mut tick = tokio::time::interval(config.obs_period);
    let mut pump = tokio::time::interval(config.pumping_period);
    // The first tick of an interval is immediate: skip it so that values change only
    // after a period.
    tick.tick().await;
    pump.tick().await;
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                None => return,
                Some(Job::Notify(key, reply)) => {
                    if notifier.notify(key, reply).await.is_err() {
                        return;
                    }
                }
                Some(Job::Separate(handle, reply)) => {
                    let responder = responder.clone();
                    let delay = config.separate_delay;
                    // Each on its own: one slow answer does not hold up the others.
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        if let Err(e) = responder.respond(handle, reply).await {
                            tracing::debug!("separate response not sent: {e}");
                        }
                    });
                }
            },
            _ = tick.tick() => {
                let (n, obs) = {
                    let mut s = lock(&state);
                    s.tick += 1;
                    let n = s.tick;
                    // /obs changes only while it holds the text it started with: a PUT of
                    // another representation stays until replaced (TD_COAP_OBS_09), and
                    // an unchanged resource has nothing to notify (RFC 7641 §4.2).
                    let obs = match &mut s.obs {
                        Some((body, 0)) => {
                            *body = tick_text("obs", n).into_bytes();
                            Some(body.clone())
                        }
                        _ => None,
                    };
                    (n, obs)
                };
                let mut replies = vec![
                    (keys::OBS_NON, ticking_reply(keys::OBS_NON, n)),
                    (keys::OBS_LARGE, ticking_reply(keys::OBS_LARGE, n)),
                ];
                if let Some(body) = obs {
                    replies.push((keys::OBS, obs_reply(&body, 0)));
                }
                for (key, reply) in replies {
                    if notifier.notify(key, reply).await.is_err() {
                        return;
                    }
                }
            }
            _ = pump.tick() => {
                let n = {
                    let mut s = lock(&state);
                    s.pump += 1;
                    s.pump
                };
                for key in [keys::OBS_PUMPING, keys::OBS_PUMPING_NON] {
                    if notifier.notify(key, ticking_reply(key, n)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn tick_text(name: &str, n: u64) -> String {
    format!("{name}: tick {n}")
}

/// Max-Age of the observable resources: they change every 5 s (TD_COAP_OBS_04 uses it to
/// detect that the server is gone, RFC 7641 §3.3.1).
const OBS_MAX_AGE: u32 = 5;

fn obs_reply(body: &[u8], format: u16) -> Reply {
    // `/obs` notifies with CON (TD_COAP_OBS_01/05 acknowledge and detect a silent client).
    Reply::new(Code::CONTENT)
        .confirmable(true)
        .content_format(format)
        .option(OptionNumber::MAX_AGE, uint(OBS_MAX_AGE))
        .payload(body.to_vec())
}

fn uint(v: u32) -> Vec<u8> {
    let mut b = [0; 4];
    coap_core::option::encode_uint(v, &mut b).to_vec()
}

/// The representation of a ticking resource at tick `n`.
fn ticking_body(key: u32, n: u64) -> Vec<u8> {
    let name = match key {
        keys::OBS_NON => "obs-non",
        keys::OBS_LARGE => "obs-large",
        keys::OBS_PUMPING => "obs-pumping",
        _ => "obs-pumping-non",
    };
    let mut text = tick_text(name, n);
    if key == keys::OBS_LARGE {
        // Larger than one 1024-byte block, so notifications go block-wise (RFC 7959 §2.6).
        text.push('\n');
        while text.len() < 1500 {
            text.push_str(&format!("{name} line at tick {n}\n"));
        }
    }
    text.into_bytes()
}

fn ticking_reply(key: u32, n: u64) -> Reply {
    let body = ticking_body(key, n);
    // `/obs-pumping` and `/obs-large` notify with CON, the `-non` resources with NON.
    let con = !matches!(key, keys::OBS_NON | keys::OBS_PUMPING_NON);
    Reply::new(Code::CONTENT)
        .confirmable(con)
        .content_format(ContentFormat::TEXT_PLAIN.0)
        .option(OptionNumber::ETAG, etag_of(&body).to_vec())
        .option(OptionNumber::MAX_AGE, uint(OBS_MAX_AGE))
        .payload(body)
}

/// Writes a complete response; 5.00 if it does not fit.
fn respond(
    resp: &mut ResponseWriter<'_>,
    code: Code,
    format: Option<u16>,
    payload: &[u8],
) -> Outcome {
    if let Err(e) = resp.respond(code, format.map(ContentFormat), payload) {
        tracing::warn!("response does not fit: {e}");
        resp.set_code(Code::INTERNAL_SERVER_ERROR);
    }
    Outcome::Respond
}

/// Serves `body` by offset (RFC 7959 §2.4) with its ETag; 5.00 if a block does not fit.
fn respond_blockwise(
    resp: &mut ResponseWriter<'_>,
    code: Code,
    format: Option<u16>,
    body: &[u8],
) -> Outcome {
    resp.set_code(code);
    let written = resp
        .option(OptionNumber::ETAG, &etag_of(body))
        .and_then(|r| match format {
            Some(f) => r.content_format(ContentFormat(f)).map(|_| ()),
            None => Ok(()),
        })
        .and_then(|()| resp.payload_blockwise(body));
    if let Err(e) = written {
        tracing::warn!("response does not fit: {e}");
        resp.set_code(Code::INTERNAL_SERVER_ERROR);
    }
    Outcome::Respond
}

/// Text describing a request: its type, code, Message ID and token (what the TDs have
/// the client display).
fn describe(req: &IncomingRequest<'_, Peer>) -> String {
    let m = req.message();
    let ty = match m.ty() {
        MessageType::Con => "CON",
        MessageType::Non => "NON",
        MessageType::Ack => "ACK",
        MessageType::Rst => "RST",
    };
    let token: String = m.token().iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "Type: {ty}\nCode: {}\nMID: {}\nToken: {}",
        m.code(),
        m.message_id(),
        if token.is_empty() { "(empty)" } else { &token }
    )
}

/// `/test` (TD_COAP_CORE_01–08, 10, 12, 18).
#[derive(Debug)]
struct Test {
    /// After DELETE, the next PUT creates it again (2.01, RFC 7252 §5.8.3).
    deleted: bool,
}

impl Resource<Peer> for Test {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        // Max-Age 30 (TD_COAP_CORE_01 "resource content is not empty"; Californium's
        // plugtest server does the same).
        if resp.option_uint(OptionNumber::MAX_AGE, 30).is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        respond(resp, Code::CONTENT, Some(0), describe(req).as_bytes())
    }

    fn post(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        // TD_COAP_CORE_18: several Location-Path options (RFC 7252 §5.10.7).
        resp.set_code(Code::CREATED);
        for seg in ["location1", "location2", "location3"] {
            if resp.option_str(OptionNumber::LOCATION_PATH, seg).is_err() {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
                break;
            }
        }
        Outcome::Respond
    }

    fn put(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let code = if self.deleted {
            Code::CREATED
        } else {
            Code::CHANGED
        };
        self.deleted = false;
        resp.set_code(code);
        Outcome::Respond
    }

    fn delete(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.deleted = true;
        resp.set_code(Code::DELETED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="Default test resource""#
    }
}

/// `/separate` and `/large-separate` (TD_COAP_CORE_09, 11, 17): the first request is
/// answered later, as a separate response (RFC 7252 §5.2.2); the rest of a block-wise
/// `/large-separate` at once.
#[derive(Debug)]
struct Separate {
    jobs: mpsc::Sender<Job>,
    large: bool,
}

impl Separate {
    fn new(jobs: mpsc::Sender<Job>, large: bool) -> Self {
        Separate { jobs, large }
    }
}

impl Resource<Peer> for Separate {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let later_block = Block::of(req.message(), OptionNumber::BLOCK2).is_some_and(|b| b.num > 0);
        // `/large-separate` stays the same across blocks (RFC 7959 §2.4); `/separate`
        // describes the request it answers.
        let body = if self.large {
            large_separate_body()
        } else {
            describe(req).into_bytes()
        };
        if later_block {
            return respond_blockwise(resp, Code::CONTENT, Some(0), &body);
        }
        let reply = Reply::new(Code::CONTENT)
            .content_format(0)
            .option(OptionNumber::ETAG, etag_of(&body).to_vec())
            .payload(body);
        match self.jobs.try_send(Job::Separate(req.handle(), reply)) {
            Ok(()) => Outcome::Defer,
            Err(_) => busy(resp),
        }
    }

    fn link_attributes(&self) -> &str {
        if self.large {
            r#"title="Large resource, separate response""#
        } else {
            r#"title="Resource which cannot be served immediately""#
        }
    }
}

/// `/large-separate`'s representation: the same for every request, larger than a block.
fn large_separate_body() -> Vec<u8> {
    let mut text = String::from("large-separate\n");
    let mut n = 0;
    while text.len() < 1700 {
        n += 1;
        text.push_str(&format!("large-separate line {n}\n"));
    }
    text.into_bytes()
}

/// 5.03 with Max-Age: the job queue is full (RFC 7252 §5.9.3.4).
fn busy(resp: &mut ResponseWriter<'_>) -> Outcome {
    resp.set_code(Code::SERVICE_UNAVAILABLE);
    let _ = resp.option_uint(OptionNumber::MAX_AGE, 1);
    Outcome::Respond
}

/// A text resource with fixed link attributes (`/seg1/seg2/seg3`, `/linkN`,
/// `/path/subN`): GET answers its path.
#[derive(Debug)]
struct Text(&'static str, &'static str);

impl Resource<Peer> for Text {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        respond(resp, Code::CONTENT, Some(0), self.0.as_bytes())
    }

    fn link_attributes(&self) -> &str {
        self.1
    }
}

/// `/query` (TD_COAP_CORE_14): echoes its Uri-Query options, `&`-separated.
#[derive(Debug)]
struct Query;

impl Resource<Peer> for Query {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let parts: Vec<String> = req
            .message()
            .uri_query()
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .collect();
        let text = format!("query: {}", parts.join("&"));
        respond(resp, Code::CONTENT, Some(0), text.as_bytes())
    }

    fn link_attributes(&self) -> &str {
        r#"title="Resource accepting query parameters""#
    }
}

/// `/location-query` (TD_COAP_CORE_19): POST answers 2.01 with Location-Query options.
#[derive(Debug)]
struct LocationQuery;

impl Resource<Peer> for LocationQuery {
    fn post(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.set_code(Code::CREATED);
        for q in ["first=1", "second=2"] {
            if resp.option_str(OptionNumber::LOCATION_QUERY, q).is_err() {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
                break;
            }
        }
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="Perform POST transaction with responses containing several Location-Query options""#
    }
}

/// `/multi-format` (TD_COAP_CORE_20): one value in four formats, chosen by Accept
/// (RFC 7252 §5.10.4); another Accept gets 4.06 Not Acceptable.
#[derive(Debug)]
struct MultiFormat;

impl Resource<Peer> for MultiFormat {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let mid = req.message().message_id();
        let (format, body): (u16, Vec<u8>) = match req.message().accept().unwrap_or(0) {
            0 => (0, format!("mid: {mid}").into_bytes()),
            41 => (41, format!("<msg mid=\"{mid}\"/>").into_bytes()),
            50 => (50, format!("{{\"mid\":{mid}}}").into_bytes()),
            60 => {
                // A one-entry CBOR map {"mid": mid} (RFC 8949 §3.1): map(1), text(3),
                // unsigned 16-bit.
                let mut b = vec![0xa1, 0x63, b'm', b'i', b'd', 0x19];
                b.extend_from_slice(&mid.to_be_bytes());
                (60, b)
            }
            _ => {
                resp.set_code(Code::NOT_ACCEPTABLE);
                return Outcome::Respond;
            }
        };
        respond(resp, Code::CONTENT, Some(format), &body)
    }

    fn link_attributes(&self) -> &str {
        r#"ct="0 41 50 60";title="Resource that exists in different content formats""#
    }
}

/// `/validate` (TD_COAP_CORE_21, 22): ETag validation (RFC 7252 §5.10.6) and If-Match
/// (§5.10.8.1).
#[derive(Debug)]
struct Validate {
    body: Vec<u8>,
    format: u16,
}

impl Validate {
    fn new() -> Self {
        Validate {
            body: b"validate: initial".to_vec(),
            format: 0,
        }
    }
}

impl Resource<Peer> for Validate {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let etag = etag_of(&self.body);
        if resp.option(OptionNumber::ETAG, &etag).is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        // §5.10.6.2: an ETag of the request that is still current gets 2.03 Valid,
        // without payload.
        if req
            .message()
            .options_of(OptionNumber::ETAG)
            .any(|e| e == etag)
        {
            resp.set_code(Code::VALID);
            return Outcome::Respond;
        }
        respond(resp, Code::CONTENT, Some(self.format), &self.body)
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let etag = etag_of(&self.body);
        // §5.10.8.1: with If-Match, update only if one of its values is the current ETag
        // (an empty value matches any current representation).
        let mut if_match = m.options_of(OptionNumber::IF_MATCH).peekable();
        if if_match.peek().is_some() && !if_match.any(|v| v.is_empty() || v == etag) {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        self.body = req.payload().to_vec();
        self.format = m.content_format().unwrap_or(0);
        resp.set_code(Code::CHANGED);
        let _ = resp.option(OptionNumber::ETAG, &etag_of(&self.body));
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"ct=0;title="Resource which varies""#
    }
}

/// `/create1` (TD_COAP_CORE_23): PUT with If-None-Match creates it once (§5.10.8.2).
#[derive(Debug)]
struct Create1 {
    body: Option<(Vec<u8>, u16)>,
}

impl Resource<Peer> for Create1 {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        match &self.body {
            Some((body, format)) => respond(resp, Code::CONTENT, Some(*format), body),
            None => {
                resp.set_code(Code::NOT_FOUND);
                Outcome::Respond
            }
        }
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let exists = self.body.is_some();
        if exists && m.option(OptionNumber::IF_NONE_MATCH).is_some() {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        self.body = Some((req.payload().to_vec(), m.content_format().unwrap_or(0)));
        resp.set_code(if exists { Code::CHANGED } else { Code::CREATED });
        Outcome::Respond
    }

    fn delete(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        self.body = None;
        resp.set_code(Code::DELETED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="Resource which does not exist yet (to perform atomic PUT)""#
    }
}

/// Size of `/large`.
pub const LARGE_LEN: usize = 1280;

/// `/large`'s representation: 1280 bytes of numbered text lines.
pub fn large_body() -> Vec<u8> {
    let mut out = Vec::with_capacity(LARGE_LEN);
    let mut n = 0;
    while out.len() < LARGE_LEN {
        n += 1;
        let line = format!("/large line {n:02}: the quick brown fox jumps over it\n");
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(LARGE_LEN);
    out
}

/// `/large` (TD_COAP_BLOCK_01, 02, 06).
#[derive(Debug)]
struct Large;

impl Resource<Peer> for Large {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        respond_blockwise(resp, Code::CONTENT, Some(0), &large_body())
    }

    fn link_attributes(&self) -> &str {
        r#"ct=0;sz=1280;title="Large resource""#
    }
}

/// Largest body the Block1 resources take.
const MAX_UPLOAD: usize = 16 * 1024;
/// Uploads in progress at once, per resource.
const MAX_UPLOADS: usize = 16;

/// Feeds `req` to `uploads`; `Some(body, final Block1)` once complete, else the
/// response (2.31 or an error) is written.
fn upload(
    uploads: &mut Uploads<SocketAddr>,
    req: &IncomingRequest<'_, Peer>,
    resp: &mut ResponseWriter<'_>,
) -> Option<(Vec<u8>, Option<Block>)> {
    match uploads.accept(req.peer().addr, req.message(), Instant::now()) {
        Step::Complete(body, block) => Some((body, block)),
        step => {
            step.respond(resp, MAX_UPLOAD);
            None
        }
    }
}

/// Echoes the final Block1 (RFC 7959 §2.3: the response to the last block carries it).
fn echo_block1(resp: &mut ResponseWriter<'_>, block: Option<Block>) -> bool {
    block.is_none_or(|b| resp.option_uint(OptionNumber::BLOCK1, b.encode()).is_ok())
}

/// `/large-update` (TD_COAP_BLOCK_03): Block1 PUT, GET returns what was put.
#[derive(Debug)]
struct LargeUpdate {
    uploads: Uploads<SocketAddr>,
    body: Vec<u8>,
    format: u16,
}

impl LargeUpdate {
    fn new() -> Self {
        LargeUpdate {
            uploads: Uploads::new(MAX_UPLOAD, MAX_UPLOADS),
            body: large_body(),
            format: 0,
        }
    }
}

impl Resource<Peer> for LargeUpdate {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        respond_blockwise(resp, Code::CONTENT, Some(self.format), &self.body)
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let format = req.message().content_format();
        if let Some((body, block)) = upload(&mut self.uploads, req, resp) {
            self.body = body;
            self.format = format.unwrap_or(0);
            resp.set_code(Code::CHANGED);
            if !echo_block1(resp, block) {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
            }
        }
        Outcome::Respond
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"ct=0;sz=1280;title="Large resource that can be updated using PUT method""#
    }
}

/// Created resources `/large-create` keeps (the oldest go first).
const MAX_CREATED: usize = 8;

/// `/large-create` (TD_COAP_BLOCK_04): Block1 POST creates `/large-create/N` (2.01 with
/// Location-Path), which GET then returns.
#[derive(Debug)]
struct LargeCreate {
    uploads: Uploads<SocketAddr>,
    created: VecDeque<(u32, Vec<u8>, u16)>,
    next: u32,
}

impl LargeCreate {
    fn new() -> Self {
        LargeCreate {
            uploads: Uploads::new(MAX_UPLOAD, MAX_UPLOADS),
            created: VecDeque::new(),
            next: 1,
        }
    }
}

impl Resource<Peer> for LargeCreate {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let path: Vec<&[u8]> = req.message().uri_path().collect();
        let id = match path.as_slice() {
            [_, id] => std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()),
            _ => None,
        };
        match self.created.iter().find(|(n, ..)| Some(*n) == id) {
            Some((_, body, format)) => {
                let (body, format) = (body.clone(), *format);
                respond_blockwise(resp, Code::CONTENT, Some(format), &body)
            }
            None => {
                resp.set_code(Code::NOT_FOUND);
                Outcome::Respond
            }
        }
    }

    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        if req.message().uri_path().count() != 1 {
            resp.set_code(Code::METHOD_NOT_ALLOWED);
            return Outcome::Respond;
        }
        let format = req.message().content_format().unwrap_or(0);
        if let Some((body, block)) = upload(&mut self.uploads, req, resp) {
            let id = self.next;
            self.next = self.next.wrapping_add(1);
            if self.created.len() >= MAX_CREATED {
                self.created.pop_front();
            }
            self.created.push_back((id, body, format));
            resp.set_code(Code::CREATED);
            let ok = resp
                .option_str(OptionNumber::LOCATION_PATH, "large-create")
                .and_then(|r| r.option_str(OptionNumber::LOCATION_PATH, &id.to_string()))
                .is_ok();
            if !ok || !echo_block1(resp, block) {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
            }
        }
        Outcome::Respond
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"title="Large resource that can be created using POST method""#
    }
}

/// `/large-post` (TD_COAP_BLOCK_05): Block1 POST; the response, the body upper-cased,
/// goes block-wise (RFC 7959 §3.3): its first block answers the last Block1, the rest
/// answer POSTs with Block2 and no body.
#[derive(Debug)]
struct LargePost {
    uploads: Uploads<SocketAddr>,
    /// The last response per client, for its Block2 follow-ups.
    results: HashMap<SocketAddr, (Vec<u8>, u16)>,
}

impl LargePost {
    fn new() -> Self {
        LargePost {
            uploads: Uploads::new(MAX_UPLOAD, MAX_UPLOADS),
            results: HashMap::new(),
        }
    }
}

impl Resource<Peer> for LargePost {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let addr = req.peer().addr;
        let follow_up = m.option(OptionNumber::BLOCK1).is_none()
            && Block::of(m, OptionNumber::BLOCK2).is_some_and(|b| b.num > 0);
        if follow_up {
            return match self.results.get(&addr) {
                Some((body, format)) => {
                    let (body, format) = (body.clone(), *format);
                    respond_blockwise(resp, Code::CHANGED, Some(format), &body)
                }
                None => {
                    // A later block of a response this server does not hold.
                    resp.set_code(Code::REQUEST_ENTITY_INCOMPLETE);
                    Outcome::Respond
                }
            };
        }
        let format = m.content_format().unwrap_or(0);
        if let Some((body, block)) = upload(&mut self.uploads, req, resp) {
            let upper = body.to_ascii_uppercase();
            if self.results.len() >= MAX_UPLOADS && !self.results.contains_key(&addr) {
                // Bounded: forget some other client's response.
                if let Some(k) = self.results.keys().next().copied() {
                    self.results.remove(&k);
                }
            }
            self.results.insert(addr, (upper.clone(), format));
            if !echo_block1(resp, block) {
                resp.set_code(Code::INTERNAL_SERVER_ERROR);
                return Outcome::Respond;
            }
            return respond_blockwise(resp, Code::CHANGED, Some(format), &upper);
        }
        Outcome::Respond
    }

    fn accepts_block1(&self) -> bool {
        true
    }

    fn link_attributes(&self) -> &str {
        r#"title="Handle POST with two-way blockwise transfer""#
    }
}

/// `/obs` (TD_COAP_OBS_01, 03–10): observable, changes every period; PUT replaces it
/// (notifying the new value, or 4.06 when the Content-Format changes, which ends the
/// observations, RFC 7641 §4.2), DELETE notifies 4.04.
#[derive(Debug)]
struct Obs {
    state: State,
    jobs: mpsc::Sender<Job>,
}

impl Resource<Peer> for Obs {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let Some((body, format)) = lock(&self.state).obs.clone() else {
            resp.set_code(Code::NOT_FOUND);
            return Outcome::Respond;
        };
        resp.observable(keys::OBS);
        if resp
            .option_uint(OptionNumber::MAX_AGE, OBS_MAX_AGE)
            .is_err()
        {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        respond(resp, Code::CONTENT, Some(format), &body)
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let body = req.payload().to_vec();
        let format = req.message().content_format().unwrap_or(0);
        let before = lock(&self.state).obs.clone();
        // The observers asked for the old format: a representation in another one is not
        // acceptable to them (TD_COAP_OBS_08).
        let reply = match &before {
            Some((_, f)) if *f != format => Reply::new(Code::NOT_ACCEPTABLE),
            _ => obs_reply(&body, format),
        };
        if self.jobs.try_send(Job::Notify(keys::OBS, reply)).is_err() {
            return busy(resp);
        }
        lock(&self.state).obs = Some((body, format));
        resp.set_code(if before.is_some() {
            Code::CHANGED
        } else {
            Code::CREATED
        });
        Outcome::Respond
    }

    fn delete(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        // TD_COAP_OBS_07: the observers learn that the resource is gone (4.04 ends the
        // observation, RFC 7641 §4.2).
        if self
            .jobs
            .try_send(Job::Notify(keys::OBS, Reply::new(Code::NOT_FOUND)))
            .is_err()
        {
            return busy(resp);
        }
        lock(&self.state).obs = None;
        resp.set_code(Code::DELETED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"obs;title="Observable resource which changes every 5 seconds""#
    }
}

/// `/obs-non`, `/obs-large`, `/obs-pumping`, `/obs-pumping-non`: observable, read-only,
/// changing with the task's ticks.
#[derive(Debug)]
struct Ticking {
    state: State,
    key: u32,
}

impl Ticking {
    fn new(state: &State, key: u32) -> Self {
        Ticking {
            state: state.clone(),
            key,
        }
    }
}

impl Resource<Peer> for Ticking {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let n = {
            let s = lock(&self.state);
            match self.key {
                keys::OBS_PUMPING | keys::OBS_PUMPING_NON => s.pump,
                _ => s.tick,
            }
        };
        resp.observable(self.key);
        if resp
            .option_uint(OptionNumber::MAX_AGE, OBS_MAX_AGE)
            .is_err()
        {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
            return Outcome::Respond;
        }
        respond_blockwise(resp, Code::CONTENT, Some(0), &ticking_body(self.key, n))
    }

    fn link_attributes(&self) -> &str {
        match self.key {
            keys::OBS_NON => r#"obs;title="Observable resource with NON notifications""#,
            keys::OBS_LARGE => r#"obs;title="Observable resource larger than a block""#,
            keys::OBS_PUMPING => r#"obs;title="Observable resource changing at a high rate""#,
            _ => r#"obs;title="Observable resource changing at a high rate, NON""#,
        }
    }
}

/// `/obs-reset`: POST `sesame` ends every observation of this server (with a 5.03
/// notification, the only way RFC 7641 §4.2 gives a server to end one that the client
/// learns about); another payload gets 4.03.
#[derive(Debug)]
struct ObsReset {
    jobs: mpsc::Sender<Job>,
}

impl Resource<Peer> for ObsReset {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        if req.payload() != b"sesame" {
            resp.set_code(Code::FORBIDDEN);
            return Outcome::Respond;
        }
        for key in keys::ALL {
            let reply = Reply::new(Code::SERVICE_UNAVAILABLE);
            if self.jobs.try_send(Job::Notify(key, reply)).is_err() {
                return busy(resp);
            }
        }
        resp.set_code(Code::CHANGED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"title="POST sesame to end every observation""#
    }
}

/// `/path` (TD_COAP_LINK_09): a link-format (ct=40) list of its sub-resources (RFC 6690
/// §2).
#[derive(Debug)]
struct PathRoot;

impl Resource<Peer> for PathRoot {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let links = ["/path/sub1", "/path/sub2", "/path/sub3"]
            .map(|p| format!("<{p}>;{SUB_ATTRS}"))
            .join(",");
        respond(
            resp,
            Code::CONTENT,
            Some(ContentFormat::LINK_FORMAT.0),
            links.as_bytes(),
        )
    }

    fn link_attributes(&self) -> &str {
        r#"ct=40;title="Hierarchical link description entry""#
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_is_1280_bytes() {
        assert_eq!(large_body().len(), LARGE_LEN);
        assert_eq!(large_body(), large_body());
    }

    #[test]
    fn routes_cover_the_plugtest_paths() {
        let r = router();
        let paths: Vec<_> = r.routes().iter().map(|r| r.path()).collect();
        for p in [
            "/test",
            "/separate",
            "/obs",
            "/large-post",
            "/link3",
            "/path/sub3",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
    }
}
