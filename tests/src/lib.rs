//! Cross-crate and interop tests for the CoAP stack.
#![warn(missing_docs)]

pub mod spoof;
