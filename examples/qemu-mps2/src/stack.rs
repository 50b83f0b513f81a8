//! Stack high-water mark by painting: fill the unused stack with a pattern at boot, and
//! later find the deepest word that no longer holds it.
//!
//! The thread-mode executor polls every task on the main stack, so the mark is the
//! deepest stack any task (the CoAP runner and client included) or interrupt reached.

use core::ptr::{addr_of, read_volatile, write_volatile};

const PAINT: u32 = 0xC0A9_C0A9;
/// Kept unpainted below the current stack pointer while painting (this function's frame).
const MARGIN: usize = 256;

extern "C" {
    /// End of .bss/.uninit (cortex-m-rt): the lowest address the stack may grow to.
    static __sheap: u32;
    /// Initial stack pointer (cortex-m-rt): the top of the stack.
    static _stack_start: u32;
}

fn bottom() -> usize {
    addr_of!(__sheap) as usize
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Paints the stack below the current frame: first thing in `main`, or later to start a
/// new measurement (what is above the current frame then counts as used).
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom();
    while p + 4 <= sp - MARGIN {
        // SAFETY: [__sheap, sp - MARGIN) is RAM between the statics and the live stack,
        // owned by nobody yet.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The deepest stack use since [`paint`], in bytes below the top.
pub fn high_water_mark() -> usize {
    let mut p = bottom();
    // SAFETY: reads of the RAM painted above (or used as stack since).
    while p < top() && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top() - p
}

/// Stack in use right now (bytes from the top to the stack pointer).
pub fn depth() -> usize {
    top() - cortex_m::register::msp::read() as usize
}

/// Size of the stack region (from the end of the statics to the top of RAM).
pub fn size() -> usize {
    top() - bottom()
}
