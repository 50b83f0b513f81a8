//! How the test firmwares report: a line per check on the semihosting console, and the
//! semihosting exit code as the verdict (0 pass, 1 fail) that `.ci/embassy.sh` reads.

use cortex_m_semihosting::{debug, hprintln};

/// Prints `FAIL: what` and ends the run with exit code 1.
pub fn fail(what: &str) -> ! {
    hprintln!("FAIL: {}", what);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Prints `ok: what` if `ok`, else fails the run.
pub fn check(ok: bool, what: &str) {
    if ok {
        hprintln!("ok: {}", what);
    } else {
        fail(what);
    }
}

/// Prints `PASS` and ends the run with exit code 0.
pub fn pass() -> ! {
    hprintln!("PASS");
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A task's spawn token (a pool exhausted is a bug of the firmware).
pub fn token<S>(
    t: Result<embassy_executor::SpawnToken<S>, embassy_executor::SpawnError>,
) -> embassy_executor::SpawnToken<S> {
    match t {
        Ok(t) => t,
        Err(_) => fail("task pool exhausted"),
    }
}
