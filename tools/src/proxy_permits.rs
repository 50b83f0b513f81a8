//! Upstream permits of both proxies (`coap proxy` and its HTTP side): a global bound on
//! exchanges in flight and, per upstream endpoint, its own bound with a short, bounded
//! queue.
//!
//! Why per upstream: one upstream that never answers must fail its own requests, not
//! everyone's. Each upstream (`host:port`) has `per_upstream` permits; a request for it
//! waits at most `wait` for one, among at most `queue` others waiting, and only then takes
//! one of the `global` permits (without waiting: a queued request holds nothing global).
//! So a silent upstream holds at most `per_upstream` global permits for the exchange
//! timeout, its queued requests fail after `wait`, and the rest of its requests fail at
//! once.
//!
//! The answers (RFC 7252 §5.9.3, RFC 8075 §7): no permit within `wait` is a Gateway
//! Timeout (5.04 / 504: the upstream has not answered the earlier requests in time); a
//! full queue or no global permit is Service Unavailable (5.03 / 503, with Max-Age /
//! Retry-After: the proxy is at its limits, retry later).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermitLimits {
    /// Exchanges in flight at most, all upstreams together.
    pub global: usize,
    /// Exchanges in flight to one upstream endpoint at most.
    pub per_upstream: usize,
    /// Requests waiting for a permit of one upstream at most (beyond: refused at once).
    pub queue: usize,
    /// How long a request waits for a permit of its upstream.
    pub wait: Duration,
}

impl Default for PermitLimits {
    fn default() -> Self {
        PermitLimits {
            global: 256,
            per_upstream: 32,
            queue: 32,
            wait: Duration::from_secs(2),
        }
    }
}

/// Why no permit was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPermit {
    /// The upstream's queue is full, or every global permit is taken: 5.03 / 503.
    Busy,
    /// No permit of the upstream came free within the wait: 5.04 / 504.
    Timeout,
}

/// One upstream's permits and how many requests hold or wait for one.
struct Upstream {
    permits: Arc<Semaphore>,
    users: usize,
}

/// The permits; cheap to clone (shared).
#[derive(Clone)]
pub struct Permits {
    limits: PermitLimits,
    global: Arc<Semaphore>,
    upstreams: Arc<Mutex<HashMap<String, Upstream>>>,
}

/// An upstream exchange's place: both permits, given back when dropped.
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _upstream: OwnedSemaphorePermit,
    _user: User,
}

/// A request's count among its upstream's users, given back when dropped (so an
/// upstream nobody uses leaves the map).
struct User {
    upstreams: Arc<Mutex<HashMap<String, Upstream>>>,
    key: String,
}

impl Drop for User {
    fn drop(&mut self) {
        let mut map = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = map.get_mut(&self.key) {
            u.users = u.users.saturating_sub(1);
            if u.users == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A request's place in its upstream's queue.
pub struct Reserved {
    own: Arc<Semaphore>,
    global: Arc<Semaphore>,
    wait: Duration,
    user: User,
}

impl Reserved {
    /// Waits at most the configured time for one of the upstream's permits
    /// (`Timeout` beyond), then takes a global one without waiting (`Busy` when none).
    pub async fn acquire(self) -> Result<Permit, NoPermit> {
        let own = match tokio::time::timeout(self.wait, self.own.acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(NoPermit::Busy),
            Err(_) => return Err(NoPermit::Timeout),
        };
        let global = self
            .global
            .try_acquire_owned()
            .map_err(|_| NoPermit::Busy)?;
        Ok(Permit {
            _global: global,
            _upstream: own,
            _user: self.user,
        })
    }
}

impl Permits {
    /// Permits within `limits` (each bound at least 1).
    pub fn new(limits: PermitLimits) -> Permits {
        let limits = PermitLimits {
            global: limits.global.clamp(1, Semaphore::MAX_PERMITS),
            per_upstream: limits.per_upstream.clamp(1, Semaphore::MAX_PERMITS),
            ..limits
        };
        Permits {
            global: Arc::new(Semaphore::new(limits.global)),
            upstreams: Arc::default(),
            limits,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> PermitLimits {
        self.limits
    }

    /// A place in `upstream`'s (`host:port`) queue, taken at once: `Busy` when the
    /// upstream already has its permits taken and its queue full (so the request can be
    /// refused before anything is spent on it).
    pub fn reserve(&self, upstream: &str) -> Result<Reserved, NoPermit> {
        let key = upstream.to_ascii_lowercase();
        let mut map = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        let u = map.entry(key.clone()).or_insert_with(|| Upstream {
            permits: Arc::new(Semaphore::new(self.limits.per_upstream)),
            users: 0,
        });
        if u.users >= self.limits.per_upstream + self.limits.queue {
            return Err(NoPermit::Busy);
        }
        u.users += 1;
        Ok(Reserved {
            own: u.permits.clone(),
            global: self.global.clone(),
            wait: self.limits.wait,
            user: User {
                upstreams: self.upstreams.clone(),
                key,
            },
        })
    }

    /// [`Permits::reserve`], then [`Reserved::acquire`].
    pub async fn acquire(&self, upstream: &str) -> Result<Permit, NoPermit> {
        self.reserve(upstream)?.acquire().await
    }

    /// Upstream endpoints with requests holding or waiting for a permit now.
    pub fn upstreams_in_use(&self) -> usize {
        self.upstreams.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// The upstream endpoint of a `coap://` URI (`host:port`, lower case), what permits are
/// counted by.
pub fn authority(uri: &str) -> String {
    match coap_core::Uri::parse(uri) {
        Ok(u) => match u.host() {
            coap_core::Host::Ip(ip) => std::net::SocketAddr::new(ip, u.port()).to_string(),
            coap_core::Host::Name(n) => format!("{}:{}", n.to_ascii_lowercase(), u.port()),
        },
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_upstream: usize, queue: usize, global: usize) -> PermitLimits {
        PermitLimits {
            global,
            per_upstream,
            queue,
            wait: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn a_busy_upstream_queues_briefly_then_times_out_and_others_go_on() {
        let p = Permits::new(limits(2, 1, 8));
        let a1 = p.acquire("a:1").await.unwrap();
        let _a2 = p.acquire("a:1").await.unwrap();
        // The third waits and gets none in time: 5.04.
        assert_eq!(p.acquire("a:1").await.err(), Some(NoPermit::Timeout));
        // Another upstream is not affected.
        let _b = p.acquire("B:1").await.unwrap();
        // A freed permit goes to the one waiting.
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.acquire("a:1").await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        drop(a1);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn beyond_the_queue_and_the_global_bound_is_busy() {
        let p = Permits::new(PermitLimits {
            wait: Duration::from_secs(5),
            ..limits(1, 1, 2)
        });
        let _a = p.acquire("a:1").await.unwrap();
        let queued = {
            let p = p.clone();
            tokio::spawn(async move { p.acquire("a:1").await.map(|_| ()) })
        };
        // Let it queue, then the next one finds the queue full at once.
        while p.upstreams.lock().unwrap()["a:1"].users < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(p.acquire("a:1").await.err(), Some(NoPermit::Busy));
        let _b = p.acquire("b:1").await.unwrap();
        // Two global permits are taken: a third upstream is busy.
        assert_eq!(p.acquire("c:1").await.err(), Some(NoPermit::Busy));
        queued.abort();
        drop(_b);
        drop(_a);
        let _ = queued.await;
        assert_eq!(p.upstreams_in_use(), 0, "unused upstreams leave the map");
    }

    #[test]
    fn authority_is_host_and_port() {
        assert_eq!(authority("coap://Example.COM/x"), "example.com:5683");
        assert_eq!(authority("coap://[::1]:9/x"), "[::1]:9");
    }
}
