//! A CoAP server on tokio: `GET /hello` (and `/.well-known/core`) until Ctrl-C.
//!
//! `cargo run -p coap-examples --example tokio_server -- --bind [::]:5683`
use coap_tokio::Peer;

use coap_tokio::{
    Code, ContentFormat, IncomingRequest, Outcome, Resource, ResponseWriter, Route, Router, Server,
};

type Request<'a> = IncomingRequest<'a, Peer>;

struct Hello;

impl Resource<Peer> for Hello {
    fn get(&mut self, req: &Request<'_>, w: &mut ResponseWriter<'_>) -> Outcome {
        let text = format!("Hello, {}!", req.peer().addr);
        // A short text always fits into the message.
        let _ = w.respond(
            Code::CONTENT,
            Some(ContentFormat::TEXT_PLAIN),
            text.as_bytes(),
        );
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        "rt=\"greeting\";ct=0"
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hello: Box<dyn Resource<Peer> + Send> = Box::new(Hello);
    let router = Router::new(vec![Route::new("/hello", hello)]);
    let server = Server::bind(coap_examples::bind_addr("[::]:5683")).await?;
    println!(
        "serving coap://{}/hello (Ctrl-C to stop)",
        server.local_addr()
    );
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    server.serve_with_shutdown(router, ctrl_c).await
}
