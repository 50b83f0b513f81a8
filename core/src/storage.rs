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
    /// The position; `NONE` maps to one past any table's end.
    fn to_usize(self) -> usize;
}

impl Index for u16 {
    const NONE: Self = u16::MAX;
    fn from_usize(i: usize) -> Self {
        u16::try_from(i).unwrap_or(u16::MAX)
    }
    /// `NONE` becomes 65,535, a position no fixed table has (they hold at most 65,535
    /// entries, numbered from 0), so a lookup of it finds nothing without a test of its own.
    fn to_usize(self) -> usize {
        usize::from(self)
    }
}

impl Index for u32 {
    const NONE: Self = u32::MAX;
    fn from_usize(i: usize) -> Self {
        u32::try_from(i).unwrap_or(u32::MAX)
    }
    /// As for `u16`: growable tables stop below `u32::MAX` entries.
    fn to_usize(self) -> usize {
        usize::try_from(self).unwrap_or(usize::MAX)
    }
}
