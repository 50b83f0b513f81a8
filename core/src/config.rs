//! Endpoint configuration: the transmission parameters of RFC 7252 §4.8 and the values
//! derived from them (§4.8.2), plus this implementation's own knobs.

use core::time::Duration;

use crate::time::duration_ms;

/// Endpoint configuration. `Config::default()` gives the RFC 7252 §4.8 defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// ACK_TIMEOUT (§4.8): the initial retransmission timeout is random in
    /// `[ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]`.
    pub ack_timeout: Duration,
    /// ACK_RANDOM_FACTOR in thousandths (1500 = 1.5); must be at least 1000.
    pub ack_random_factor_milli: u32,
    /// MAX_RETRANSMIT: retransmissions of a CON message before giving up.
    pub max_retransmit: u8,
    /// NSTART: outstanding interactions per peer (§4.7); further requests queue.
    pub nstart: u8,
    /// DEFAULT_LEISURE (§8.2), for responses to multicast requests.
    pub default_leisure: Duration,
    /// PROBING_RATE in bytes per second, for peers that do not answer (§4.7).
    pub probing_rate: u32,
    /// MAX_LATENCY (§4.8.2).
    pub max_latency: Duration,
    /// Length of the tokens this endpoint generates (0–8; §5.3.1 recommends randomness).
    pub token_len: u8,
    /// Total deadline of a request, CON or NON, after which the application gets
    /// `Event::Timeout` (a CON also times out when its retransmissions are exhausted).
    pub request_timeout: Duration,
    /// How long a server waits before sending an empty ACK for a deferred (separate)
    /// response (§5.2.2); zero sends it at once. If the application answers sooner the
    /// response is piggybacked instead.
    pub separate_ack_delay: Duration,
    /// Max-Age of the 5.03 Service Unavailable sent when tables are full (§5.9.3.4).
    pub busy_max_age: u32,
    /// How long a deferred request may wait for the application's answer before the
    /// endpoint answers 5.03 itself and frees the slot, so that abandoned exchanges
    /// cannot hold the server's tables forever.
    pub deferred_timeout: Duration,
    /// RFC 7641 §4.5: a notification is sent as CON at least this often to each observer,
    /// so that a vanished client is dropped when its CON notification goes unacknowledged
    /// (default 20 s; the RFC's ceiling is 24 h).
    pub observe_con_interval: Duration,
    /// And at least every this many notifications to an observer (default 16; 1 makes
    /// every notification CON).
    pub observe_con_every: u16,
    /// Retransmissions of a CON notification before its observer is dropped (default 2:
    /// with the default ACK_TIMEOUT an unanswered observer is gone about 20 s after the
    /// CON notification, so within about a minute of vanishing while the resource changes).
    pub observe_max_retransmit: u8,
    /// Observers one peer may hold (default 32): registrations beyond are answered without
    /// Observe (RFC 7641 §4.1), so that one address cannot fill the table.
    pub max_observers_per_peer: u16,
    /// Share of the message slots, in percent of the pool (at least one slot), that one
    /// peer's long-held exchanges may take together: its deferred requests awaiting a
    /// separate response and its CON responses and notifications awaiting their ACK
    /// (default 25). Beyond it that peer's next deferred request is answered 5.03 with
    /// Max-Age (RFC 7252 §5.9.3.4) and its next CON notification goes NON (RFC 7641 §4.5
    /// leaves the type to the server), so that one address cannot take the whole table.
    pub peer_slot_share_percent: u8,
    /// Share of the message slots, in percent (at least one slot), that long-held exchanges
    /// of all peers together may take (default 75): the rest stays for requests answered at
    /// once and for the client role, so that many sources (spoofed ones included) holding
    /// deferred exchanges cannot deny service to everyone. When the share is used up, or the
    /// pool is full, the unacknowledged separate CON response that has been retransmitted
    /// most (sent at least once) is given up to make room: a real client acknowledges
    /// within a round trip, a spoofed address never does (RFC 7252 §4.2 lets a sender give
    /// up on a CON; the client, which has its empty ACK, then times out).
    pub held_slot_share_percent: u8,
    /// Largest block size served and requested, as SZX (block size `16 << szx`; 6 = 1024
    /// bytes, RFC 7959 §2.2). Smaller blocks asked for by a peer are honoured.
    pub max_block_szx: u8,
    /// Requests an adapter keeps waiting, in order, while every message slot is in use
    /// (the std runtimes; default 65,535): beyond it a request fails at once with
    /// `Busy`. The core itself never queues: its `request` returns `Error::Busy`.
    pub max_queued_requests: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ack_timeout: Duration::from_secs(2),
            ack_random_factor_milli: 1500,
            max_retransmit: 4,
            nstart: 1,
            default_leisure: Duration::from_secs(5),
            probing_rate: 1,
            max_latency: Duration::from_secs(100),
            token_len: 8,
            request_timeout: Duration::from_secs(93),
            separate_ack_delay: Duration::ZERO,
            busy_max_age: 2,
            deferred_timeout: Duration::from_secs(93),
            observe_con_interval: Duration::from_secs(20),
            observe_con_every: 16,
            observe_max_retransmit: 2,
            max_observers_per_peer: 32,
            peer_slot_share_percent: 25,
            held_slot_share_percent: 75,
            max_block_szx: 6,
            max_queued_requests: u16::MAX,
        }
    }
}

impl Config {
    /// PROCESSING_DELAY = ACK_TIMEOUT (§4.8.2).
    pub fn processing_delay(&self) -> Duration {
        self.ack_timeout
    }

    fn ack_timeout_ms(&self) -> u64 {
        duration_ms(self.ack_timeout)
    }

    fn factor(&self) -> u64 {
        u64::from(self.ack_random_factor_milli.max(1000))
    }

    /// MAX_TRANSMIT_SPAN = ACK_TIMEOUT * (2^MAX_RETRANSMIT - 1) * ACK_RANDOM_FACTOR: the
    /// longest time from the first transmission of a CON to its last retransmission.
    pub fn max_transmit_span(&self) -> Duration {
        let n = (1u64 << self.max_retransmit.min(32)) - 1;
        Duration::from_millis(
            self.ack_timeout_ms()
                .saturating_mul(n)
                .saturating_mul(self.factor())
                / 1000,
        )
    }

    /// MAX_TRANSMIT_WAIT = ACK_TIMEOUT * (2^(MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR:
    /// the longest time from the first transmission of a CON until the sender gives up.
    pub fn max_transmit_wait(&self) -> Duration {
        let n = (1u64 << (self.max_retransmit.min(32) + 1)) - 1;
        Duration::from_millis(
            self.ack_timeout_ms()
                .saturating_mul(n)
                .saturating_mul(self.factor())
                / 1000,
        )
    }

    /// EXCHANGE_LIFETIME = MAX_TRANSMIT_SPAN + 2 * MAX_LATENCY + PROCESSING_DELAY: how long
    /// a CON Message ID stays in use, and how long duplicates are detected.
    pub fn exchange_lifetime(&self) -> Duration {
        self.max_transmit_span() + self.max_latency * 2 + self.processing_delay()
    }

    /// NON_LIFETIME = MAX_TRANSMIT_SPAN + MAX_LATENCY: the same for NON messages.
    pub fn non_lifetime(&self) -> Duration {
        self.max_transmit_span() + self.max_latency
    }

    /// The initial retransmission timeout range in milliseconds (§4.2).
    pub(crate) fn initial_timeout_range_ms(&self) -> (u64, u64) {
        let lo = self.ack_timeout_ms();
        (lo, lo.saturating_mul(self.factor()) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_defaults_match_rfc_7252_4_8_2() {
        let c = Config::default();
        assert_eq!(c.max_transmit_span(), Duration::from_secs(45));
        assert_eq!(c.max_transmit_wait(), Duration::from_secs(93));
        assert_eq!(c.max_latency, Duration::from_secs(100));
        assert_eq!(c.processing_delay(), Duration::from_secs(2));
        assert_eq!(c.exchange_lifetime(), Duration::from_secs(247));
        assert_eq!(c.non_lifetime(), Duration::from_secs(145));
        assert_eq!(c.initial_timeout_range_ms(), (2000, 3000));
    }
}
