//! What the plugtest resources share: the job queue to the task of [`super::serve`], the
//! observed state, and how answers are written.

use crate::demo::etag_of;
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Code, ContentFormat, MessageType, OptionNumber, ResponseHandle};
use coap_tokio::{Peer, Reply};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// Work a resource hands to the task of [`serve`]: the handler runs on the endpoint's
/// loop and cannot wait.
#[derive(Debug)]
pub(super) enum Job {
    /// Answer a deferred request after `PlugtestConfig::separate_delay`.
    Separate(ResponseHandle, Reply),
    /// Notify the observers of a key now.
    Notify(u32, Reply),
}

/// Jobs waiting for the task; a full queue answers 5.03 rather than grow.
pub(super) const JOB_QUEUE: usize = 64;

/// State shared by the resources and the notification task.
#[derive(Debug)]
pub(super) struct Shared {
    /// Bumped every `obs_period`.
    pub(super) tick: u64,
    /// Bumped every `pumping_period`.
    pub(super) pump: u64,
    /// `/obs`: `None` once deleted.
    pub(super) obs: Option<(Vec<u8>, u16)>,
}

pub(super) type State = Arc<Mutex<Shared>>;

pub(super) fn lock(state: &State) -> MutexGuard<'_, Shared> {
    // A panic elsewhere cannot leave `Shared` inconsistent (plain values): keep serving.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn tick_text(name: &str, n: u64) -> String {
    format!("{name}: tick {n}")
}

/// Max-Age of the observable resources: they change every 5 s (TD_COAP_OBS_04 uses it to
/// detect that the server is gone, RFC 7641 §3.3.1).
pub(super) const OBS_MAX_AGE: u32 = 5;

pub(super) fn obs_reply(body: &[u8], format: u16) -> Reply {
    // `/obs` notifies with CON (TD_COAP_OBS_01/05 acknowledge and detect a silent client).
    Reply::new(Code::CONTENT)
        .confirmable(true)
        .content_format(format)
        .option(OptionNumber::MAX_AGE, uint(OBS_MAX_AGE))
        .payload(body.to_vec())
}

pub(super) fn uint(v: u32) -> Vec<u8> {
    let mut b = [0; 4];
    coap_core::option::encode_uint(v, &mut b).to_vec()
}

/// The representation of a ticking resource at tick `n`.
pub(super) fn ticking_body(key: u32, n: u64) -> Vec<u8> {
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

pub(super) fn ticking_reply(key: u32, n: u64) -> Reply {
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
pub(super) fn respond(
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
pub(super) fn respond_blockwise(
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
pub(super) fn describe(req: &IncomingRequest<'_, Peer>) -> String {
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

/// 5.03 with Max-Age: the job queue is full (RFC 7252 §5.9.3.4).
pub(super) fn busy(resp: &mut ResponseWriter<'_>) -> Outcome {
    resp.set_code(Code::SERVICE_UNAVAILABLE);
    let _ = resp.option_uint(OptionNumber::MAX_AGE, 1);
    Outcome::Respond
}

pub(super) const SUB_ATTRS: &str = r#"ct=0;title="Hierarchical link description sub-resource""#;
