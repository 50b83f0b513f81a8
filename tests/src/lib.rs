//! Cross-crate and interop tests for the CoAP stack.
#![warn(missing_docs)]

pub mod spoof;

use std::path::{Path, PathBuf};

/// The `coap` binary of this workspace, next to the test executable's `deps` folder:
/// `cargo test --workspace` builds it. Panics (in a test) with the command to build it when
/// it is missing.
pub fn coap_binary() -> PathBuf {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(|d| d.join("coap")))
        .expect("the test executable has a deps folder");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p coap-tools --bin coap`; \
         `cargo test --workspace` does)",
        bin.display()
    );
    bin
}
