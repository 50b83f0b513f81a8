//! The replay window of a Recipient Context (RFC 8613 §7.4): a sliding bitmap below the
//! highest Partial IV received, 32 entries by default (the anti-replay window of
//! RFC 6347 §4.1.2.6 that §7.4 points to), configurable up to 64.

/// Default replay window size.
pub const DEFAULT_WINDOW: u8 = 32;
/// Largest supported replay window size.
pub const MAX_WINDOW: u8 = 64;

/// Why a Partial IV is not acceptable.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplayError {
    /// The Partial IV was received before.
    #[error("Partial IV already received")]
    Replayed,
    /// The Partial IV is older than the window covers.
    #[error("Partial IV older than the replay window")]
    TooOld,
    /// The window state was lost (e.g. a reboot): nothing can be accepted until it is
    /// re-established with Echo (Appendix B.1.2).
    #[error("replay window unknown")]
    Unknown,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Unknown,
    Empty,
    Active { top: u64, seen: u64 },
}

/// A replay window.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReplayWindow {
    size: u8,
    state: State,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow::new()
    }
}

impl ReplayWindow {
    /// A window for a fresh context: nothing received yet, every Partial IV is new.
    pub const fn new() -> Self {
        ReplayWindow {
            size: DEFAULT_WINDOW,
            state: State::Empty,
        }
    }

    /// A window whose state is unknown, e.g. after a reboot without a persisted window
    /// (RFC 8613 Appendix B.1.2): requests are answered 4.01 with Echo until one proves
    /// freshness.
    pub const fn unknown() -> Self {
        ReplayWindow {
            size: DEFAULT_WINDOW,
            state: State::Unknown,
        }
    }

    /// With another window size (clamped to 1..=64).
    pub const fn with_size(mut self, size: u8) -> Self {
        self.size = if size == 0 {
            1
        } else if size > MAX_WINDOW {
            MAX_WINDOW
        } else {
            size
        };
        self
    }

    /// The window size.
    pub const fn size(&self) -> u8 {
        self.size
    }

    /// Whether the window state is unknown (Echo recovery pending).
    pub const fn is_unknown(&self) -> bool {
        matches!(self.state, State::Unknown)
    }

    /// Checks a Partial IV without recording it.
    pub fn check(&self, piv: u64) -> Result<(), ReplayError> {
        match self.state {
            State::Unknown => Err(ReplayError::Unknown),
            State::Empty => Ok(()),
            State::Active { top, seen } => {
                if piv > top {
                    return Ok(());
                }
                let age = top - piv;
                if age >= u64::from(self.size) {
                    return Err(ReplayError::TooOld);
                }
                if seen & (1u64 << age) != 0 {
                    Err(ReplayError::Replayed)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Records the Partial IV of a verified message (after [`ReplayWindow::check`]
    /// passed and decryption succeeded, §7.4). On an unknown window it initialises the
    /// window (Appendix B.1.2, once Echo proved freshness).
    pub fn accept(&mut self, piv: u64) {
        self.state = match self.state {
            State::Unknown | State::Empty => State::Active { top: piv, seen: 1 },
            State::Active { top, seen } => {
                if piv > top {
                    let shift = piv - top;
                    let seen = if shift >= 64 { 0 } else { seen << shift };
                    State::Active {
                        top: piv,
                        seen: seen | 1,
                    }
                } else {
                    let age = top - piv;
                    let bit = if age < 64 { 1u64 << age } else { 0 };
                    State::Active {
                        top,
                        seen: seen | bit,
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_new_rejects_seen_and_old() {
        let mut w = ReplayWindow::new();
        for p in [5, 3, 9, 4] {
            assert_eq!(w.check(p), Ok(()));
            w.accept(p);
        }
        for p in [5, 3, 9, 4] {
            assert_eq!(w.check(p), Err(ReplayError::Replayed));
        }
        assert_eq!(w.check(6), Ok(()));
        w.accept(100);
        assert_eq!(w.check(100 - 32), Err(ReplayError::TooOld));
        assert_eq!(w.check(100 - 31), Ok(()));
        assert_eq!(w.check(9), Err(ReplayError::TooOld));
    }

    #[test]
    fn configurable_size_and_unknown_state() {
        let mut w = ReplayWindow::new().with_size(4);
        w.accept(10);
        assert_eq!(w.check(6), Err(ReplayError::TooOld));
        assert_eq!(w.check(7), Ok(()));
        let mut u = ReplayWindow::unknown();
        assert_eq!(u.check(0), Err(ReplayError::Unknown));
        u.accept(7);
        assert_eq!(u.check(7), Err(ReplayError::Replayed));
        assert_eq!(u.check(8), Ok(()));
        assert_eq!(ReplayWindow::new().with_size(200).size(), 64);
    }
}
