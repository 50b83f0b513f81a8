//! Support for the mps2-an386 firmwares: an embassy-time driver on SysTick, stack
//! painting for the high-water mark, and embassy-net stacks on in-memory links.
#![no_std]

pub mod net;
pub mod stack;
pub mod time;
