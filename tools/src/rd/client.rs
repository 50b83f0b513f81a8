//! The client side of `coap rd-register`: the core's [`RdClient`] sends through a
//! `coap_tokio::Client` (which adds block-wise transfer for large link sets).

use coap_core::option::decode_uint;
use coap_core::rd::{registration_interface, Action, RdClient};
use coap_core::{BuildError, Code, Message, MessageBuilder, MessageType, OptionNumber};
use coap_tokio::{Client, ClientError, Method};
use std::time::Duration;

/// The outcome of one request: response code, Location-Path values, Max-Age.
pub type Outcome = (Code, Vec<Vec<u8>>, Option<u32>);

/// Why discovery of the registration interface failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No answer, or a transport failure.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The RD answered with an error code.
    #[error("/.well-known/core answered {0}")]
    Refused(Code),
    /// No link with `rt=core.rd`.
    #[error("no rt=core.rd interface listed")]
    NoInterface,
}

/// The RD's registration interface path (RFC 9176 §4.3), from
/// `origin/.well-known/core?rt=core.rd*`; `origin` is `coap://host[:port]`.
pub async fn discover(
    client: &Client,
    origin: &str,
    timeout: Duration,
) -> Result<String, DiscoveryError> {
    let uri = format!("{origin}/.well-known/core?rt=core.rd*");
    let r = client
        .request(Method::Get, &uri)
        .timeout(timeout)
        .send()
        .await?;
    if r.code != Code::CONTENT {
        return Err(DiscoveryError::Refused(r.code));
    }
    registration_interface(&r.payload)
        .map(str::to_owned)
        .ok_or(DiscoveryError::NoInterface)
}

/// Sends `action` of `rd` to the RD at `origin` (`coap://host[:port]`) and waits for the
/// outcome, to give to [`RdClient::handle_response`] (or, on error, `handle_failure`).
pub async fn send(
    client: &Client,
    origin: &str,
    rd: &RdClient<'_>,
    action: Action,
    links: &[u8],
    timeout: Duration,
) -> Result<Outcome, ClientError> {
    // The core writes the request into a scratch message; its options and payload go into
    // the tokio request (which adds block-wise transfer for large link sets).
    let mut buf = vec![0u8; links.len() + 1024];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, action.code(), 0, &[])
        .map_err(ClientError::Build)?;
    rd.write_request(action, &mut b, links)
        .map_err(ClientError::Build)?;
    let n = b.finish();
    let msg =
        Message::parse(&buf[..n]).map_err(|_| ClientError::Build(BuildError::BufferTooSmall))?;
    let method = match action {
        Action::Register | Action::Update => Method::Post,
        Action::Remove => Method::Delete,
    };
    let mut req = client.request(method, origin).timeout(timeout);
    for o in msg.options() {
        req = req.option(o.number, o.value.to_vec());
    }
    req = req.payload(msg.payload().to_vec());
    let r = req.send().await?;
    let location = r
        .options_of(OptionNumber::LOCATION_PATH)
        .map(<[u8]>::to_vec)
        .collect();
    let max_age = r.option(OptionNumber::MAX_AGE).and_then(decode_uint);
    Ok((r.code, location, max_age))
}
