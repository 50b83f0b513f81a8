//! Support for the mps2-an386 firmwares: an embassy-time driver on SysTick, the footprint
//! firmwares' common device set-up, stack
//! painting for the high-water mark, embassy-net stacks on in-memory links (and the test
//! firmwares' pair of them), the test firmwares' pass/fail reporting, and (with EDHOC) a stand-in RNG.
#![no_std]

#[cfg(feature = "edhoc")]
pub mod credentials;
pub mod device;
pub mod net;
// The test firmwares' (client and server) only: the footprint firmwares, built without
// `client`, leave it out (its tasks, even unused, sway LTO's inlining of the shared code).
#[cfg(feature = "client")]
pub mod pair;
#[cfg(feature = "edhoc")]
pub mod rng;
pub mod stack;
pub mod time;
pub mod verdict;
