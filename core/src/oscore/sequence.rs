//! Sender Sequence Numbers that survive restarts (RFC 8613 Appendix B.1.1): the number is
//! persisted in steps, ahead of use. A sender only uses numbers below the persisted bound;
//! after a restart it resumes from that bound, so no number (and so no nonce) is ever
//! used twice, at the cost of skipping at most one step.
//!
//! Sans-IO: [`SequenceReservation::wanted`] says which bound should be stored next, the
//! caller stores it and confirms with [`SequenceReservation::persisted`].

use super::option::MAX_PIV;

/// Default reservation step (numbers reserved per write to storage).
pub const DEFAULT_STEP: u64 = 64;

/// Why no sequence number can be used now.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SequenceError {
    /// Every reserved number is used: wait until the next reservation is persisted.
    #[error("no persisted sequence number left; persist a new reservation first")]
    NotReserved,
    /// 2^40 numbers were used: the context must be renewed (RFC 8613 §7.2.1).
    #[error("sender sequence numbers exhausted; renew the security context")]
    Exhausted,
}

/// The Sender Sequence Number with its persisted upper bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SequenceReservation {
    next: u64,
    /// Numbers below this are persisted as reserved (exclusive bound).
    reserved: u64,
    step: u64,
    /// The bound last handed out by `wanted` and not yet confirmed.
    pending: Option<u64>,
}

impl Default for SequenceReservation {
    fn default() -> Self {
        SequenceReservation::new()
    }
}

impl SequenceReservation {
    /// A fresh context: starts at 0 with nothing reserved.
    pub const fn new() -> Self {
        SequenceReservation::resume(0)
    }

    /// After a restart: resumes at the bound that was last persisted (Appendix B.1.1).
    pub const fn resume(persisted_bound: u64) -> Self {
        SequenceReservation {
            next: persisted_bound,
            reserved: persisted_bound,
            step: DEFAULT_STEP,
            pending: None,
        }
    }

    /// Without persistence: every number up to 2^40 counts as reserved. Only for tests
    /// and contexts that are never restored after a restart (Appendix B.1.1).
    pub const fn volatile(start: u64) -> Self {
        SequenceReservation {
            next: start,
            reserved: MAX_PIV + 1,
            step: DEFAULT_STEP,
            pending: None,
        }
    }

    /// With another reservation step (at least 1).
    pub const fn with_step(mut self, step: u64) -> Self {
        self.step = if step == 0 { 1 } else { step };
        self
    }

    /// The next number to be used.
    pub const fn peek(&self) -> u64 {
        self.next
    }

    /// Takes the next number.
    pub fn take(&mut self) -> Result<u64, SequenceError> {
        if self.next > MAX_PIV {
            return Err(SequenceError::Exhausted);
        }
        if self.next >= self.reserved {
            return Err(SequenceError::NotReserved);
        }
        let n = self.next;
        self.next += 1;
        Ok(n)
    }

    /// The bound to persist next, handed out once when at most half a step is left (so
    /// storage is written before the numbers run out and sending does not stall).
    pub fn wanted(&mut self) -> Option<u64> {
        if self.reserved > MAX_PIV || self.pending.is_some() {
            return None;
        }
        if self.reserved.saturating_sub(self.next) > self.step / 2 {
            return None;
        }
        let want = self.next.saturating_add(self.step).min(MAX_PIV + 1);
        self.pending = Some(want);
        Some(want)
    }

    /// Storage now holds `bound`: numbers below it may be used.
    pub fn persisted(&mut self, bound: u64) {
        if self.pending.is_some_and(|p| p <= bound) {
            self.pending = None;
        }
        self.reserved = self.reserved.max(bound.min(MAX_PIV + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_only_below_the_persisted_bound() {
        let mut s = SequenceReservation::new().with_step(4);
        assert_eq!(s.take(), Err(SequenceError::NotReserved));
        assert_eq!(s.wanted(), Some(4));
        assert_eq!(s.wanted(), None, "asked once until confirmed");
        s.persisted(4);
        assert_eq!(s.take(), Ok(0));
        assert_eq!(s.take(), Ok(1));
        assert_eq!(s.take(), Ok(2));
        assert_eq!(s.wanted(), Some(7));
        assert_eq!(s.take(), Ok(3));
        assert_eq!(s.take(), Err(SequenceError::NotReserved));
        s.persisted(7);
        assert_eq!(s.take(), Ok(4));
        // Restart: resume from the persisted bound; 4..7 are skipped, never reused.
        let mut r = SequenceReservation::resume(7);
        assert_eq!(r.take(), Err(SequenceError::NotReserved));
        let w = r.wanted().unwrap();
        r.persisted(w);
        assert_eq!(r.take(), Ok(7));
    }

    #[test]
    fn exhaustion_at_2_pow_40() {
        let mut s = SequenceReservation::volatile(MAX_PIV);
        assert_eq!(s.take(), Ok(MAX_PIV));
        assert_eq!(s.take(), Err(SequenceError::Exhausted));
    }
}
