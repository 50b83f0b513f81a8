//! Our server as the peers' clients meet it: the `coap serve` demo resources
//! ([`coap_tools::demo::routes`]) plus a few test resources, on `coap_tokio::Server`, in a
//! thread of its own on 127.0.0.1 with an ephemeral port; stopped on drop.

use coap_tokio::Peer;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coap_core::router::Resource;
use coap_core::{
    Code, ContentFormat, IncomingRequest, MessageType, Outcome, ResponseWriter, Route, Router,
};
use coap_tools::demo::{self, BoxedResource};

use super::support::BOUND;

/// `/store`: GET the value, PUT replaces it (2.04), POST appends and answers the new value
/// (2.01), DELETE empties it (2.02).
struct Store(Vec<u8>);

impl Resource<Peer> for Store {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), &self.0)
            .unwrap();
        Outcome::Respond
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        self.0 = req.payload().to_vec();
        w.set_code(Code::CHANGED);
        Outcome::Respond
    }

    fn post(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        self.0.extend_from_slice(req.payload());
        w.respond(Code::CREATED, Some(ContentFormat::TEXT_PLAIN), &self.0)
            .unwrap();
        Outcome::Respond
    }

    fn delete(&mut self, _: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        self.0.clear();
        w.set_code(Code::DELETED);
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"rt="test.store";ct=0"#
    }
}

/// `/kind`: GET answers the type of the request message as the server saw it (CON/NON).
struct Kind;

impl Resource<Peer> for Kind {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        let kind: &[u8] = match req.message().ty() {
            MessageType::Con => b"CON",
            MessageType::Non => b"NON",
            MessageType::Ack => b"ACK",
            MessageType::Rst => b"RST",
        };
        w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), kind)
            .unwrap();
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"rt="test.kind""#
    }
}

/// `/count`: each POST the handler sees increments the count and answers it.
struct Count(u32);

impl Resource<Peer> for Count {
    fn post(&mut self, _: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        self.0 += 1;
        w.respond(
            Code::CHANGED,
            Some(ContentFormat::TEXT_PLAIN),
            self.0.to_string().as_bytes(),
        )
        .unwrap();
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        r#"rt="test.count""#
    }
}

/// The demo routes and the test routes, as `/.well-known/core` lists them.
fn router() -> Router<BoxedResource, Vec<Route<'static, BoxedResource>>> {
    let mut routes = demo::routes();
    routes.push(Route::new(
        "/store",
        Box::new(Store(b"initial".to_vec())) as BoxedResource,
    ));
    routes.push(Route::new("/kind", Box::new(Kind) as BoxedResource));
    routes.push(Route::new("/count", Box::new(Count(0)) as BoxedResource));
    Router::new(routes)
}

/// A running server; stopped (and its thread joined, bounded) on drop.
pub struct OurServer {
    pub addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl OurServer {
    pub fn start() -> OurServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = coap_tokio::Server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                    .await
                    .expect("bind our server");
                addr_tx.send(server.local_addr()).unwrap();
                // /time is observable, as in `coap serve`: a notification every second.
                let notifier = server.notifier();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(500));
                    loop {
                        tick.tick().await;
                        let reply = demo::time_notification();
                        if notifier.notify(demo::TIME_KEY, reply).await.is_err() {
                            break;
                        }
                    }
                });
                let shutdown = async move {
                    // Closed (the sender dropped) or a message: stop.
                    let _ = stopped.recv().await;
                };
                server
                    .serve_with_shutdown(router(), shutdown)
                    .await
                    .expect("our server failed");
            });
        });
        let addr = addr_rx
            .recv_timeout(BOUND)
            .expect("our server did not start within the bound");
        OurServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `coap://127.0.0.1:PORT` + `path`.
    pub fn uri(&self, path: &str) -> String {
        format!("coap://{}{path}", self.addr)
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + BOUND;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if thread.is_finished() {
                // A panic of the server thread fails the test (unless it already fails).
                if thread.join().is_err() && !std::thread::panicking() {
                    panic!("our server's thread panicked");
                }
            }
        }
    }
}
