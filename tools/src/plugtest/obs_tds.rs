//! TD_COAP_OBS resources (RFC 7641) and the link-description tree.

use coap_core::router::Resource;
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Code, ContentFormat, OptionNumber};
use coap_tokio::{Peer, Reply};
use tokio::sync::mpsc;

use super::common::*;

/// `/obs` (TD_COAP_OBS_01, 03–10): observable, changes every period; PUT replaces it
/// (notifying the new value, or 4.06 when the Content-Format changes, which ends the
/// observations, RFC 7641 §4.2), DELETE notifies 4.04.
#[derive(Debug)]
pub(super) struct Obs {
    pub(super) state: State,
    pub(super) jobs: mpsc::Sender<Job>,
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
pub(super) struct Ticking {
    pub(super) state: State,
    pub(super) key: u32,
}

impl Ticking {
    pub(super) fn new(state: &State, key: u32) -> Self {
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
pub(super) struct ObsReset {
    pub(super) jobs: mpsc::Sender<Job>,
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
pub(super) struct PathRoot;

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
