//! Storage behind the endpoint's tables, as a seam rather than a constant: a table indexes
//! entries its caller provides (e.g. [`crate::dedup::DedupStore`]). On a microcontroller
//! that is a fixed array (the const-generic defaults); the std crates supply a store that
//! grows on demand up to a limit set at run time, since the core itself never allocates.
//! A table asks to grow only when it would otherwise have to forget or refuse something,
//! and a store at its limit says no: full still means the bounded answer (5.03, `Busy`),
//! never unbounded growth. What is shared by the stores lives here.

/// A position in a table: `u16` for fixed tables (they are small; each index costs RAM),
/// `u32` for growable ones.
pub trait Index: Copy + Eq + core::fmt::Debug {
    /// The "no entry" marker.
    const NONE: Self;
    /// Position `i` (`NONE` if it does not fit).
    fn from_usize(i: usize) -> Self;
    /// The position (`usize::MAX` for `NONE`).
    fn to_usize(self) -> usize;
}

impl Index for u16 {
    const NONE: Self = u16::MAX;
    fn from_usize(i: usize) -> Self {
        u16::try_from(i)
            .ok()
            .filter(|&v| v != u16::MAX)
            .unwrap_or(u16::MAX)
    }
    fn to_usize(self) -> usize {
        if self == u16::MAX {
            usize::MAX
        } else {
            usize::from(self)
        }
    }
}

impl Index for u32 {
    const NONE: Self = u32::MAX;
    fn from_usize(i: usize) -> Self {
        u32::try_from(i)
            .ok()
            .filter(|&v| v != u32::MAX)
            .unwrap_or(u32::MAX)
    }
    fn to_usize(self) -> usize {
        if self == u32::MAX {
            usize::MAX
        } else {
            usize::try_from(self).unwrap_or(usize::MAX)
        }
    }
}
