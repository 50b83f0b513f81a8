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

/// A multi-threaded tokio runtime with `workers` threads, I/O and timers enabled: the one
/// the tests run their clients and servers on.
pub fn tokio_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` on a two-thread [`tokio_runtime`], failing the test if it takes longer than
/// `bound` (every test scenario is bounded in time).
pub fn block_on_bounded<F: std::future::Future>(bound: std::time::Duration, f: F) -> F::Output {
    tokio_runtime(2).block_on(async {
        tokio::time::timeout(bound, f)
            .await
            .unwrap_or_else(|_| panic!("the scenario did not finish within {bound:?}"))
    })
}

/// [`coap_binary`], refusing a build older than any file in `tools_dirs` (folders under
/// `tools/src`, `""` for `tools/src` itself): `cargo test -p coap-tests` does not rebuild
/// the binary, and a test of an old build would test old code.
pub fn fresh_coap_binary(tools_dirs: &[&str]) -> PathBuf {
    let bin = coap_binary();
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .expect("the binary's modification time");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/src");
    for dir in tools_dirs {
        let entries = std::fs::read_dir(src.join(dir)).expect("a folder of tools/src");
        for e in entries.flatten() {
            let newer = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built);
            assert!(
                !newer,
                "{} is older than {}: rebuild it (`cargo build -p coap-tools --bin coap`)",
                bin.display(),
                e.path().display()
            );
        }
    }
    bin
}
