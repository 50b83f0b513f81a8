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

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coap_core::router::Resource;
use coap_core::{Route, Router};
use coap_tokio::{Notifier, Peer, Responder};
use tokio::sync::mpsc;

use crate::demo::BoxedResource;

mod block_tds;
mod common;
mod core_tds;
mod obs_tds;

use block_tds::*;
pub use block_tds::{large_body, LARGE_LEN};
pub use common::keys;
use common::*;
use core_tds::*;
use obs_tds::*;

/// The router type of the plugtest server.
pub type PlugtestRouter = Router<BoxedResource, Vec<Route<'static, BoxedResource>>>;

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
