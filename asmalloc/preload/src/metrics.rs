//! The metrics endpoint's thread (`ASMALLOC_METRICS_ADDR`): one library
//! thread, started beside the leak monitor, serving `/metrics` from the
//! monitor's latest sample (the runtime's `metrics` module does the
//! serving).
//!
//! Like the monitor's and the reporter's threads it starts with every
//! signal blocked and holds the reentrancy guard for life, so everything it
//! allocates is the library's own (own tags, never charged to a site); it
//! ends when the program's last thread has (it looks every 200 ms), so a
//! program whose main thread calls `pthread_exit` still ends. A forked
//! child has no endpoint of its own (the port is its parent's; the
//! inherited listening socket is closed by the fork handlers).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::guard::{self, Guard};
use crate::{report, threads};

/// Starts the endpoint if one is configured and this process has none.
pub(crate) fn start_endpoint() {
    let _guard = Guard::enter();
    let Some(listener) = rt::__private::metrics::open_endpoint() else {
        return;
    };
    let running = Arc::new(AtomicBool::new(false));
    let ready = Arc::clone(&running);
    let spawned = rt::__private::threads::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("asmalloc-metrics".into())
            .spawn(move || {
                guard::hold_forever();
                report::started(&ready);
                rt::__private::metrics::serve(listener, threads::program_ended);
                report::leave();
            })
    });
    match spawned {
        Ok(_) => report::wait_until_started(&running),
        Err(e) => rt::warn(format_args!(
            "cannot start the metrics endpoint's thread ({e}); no metrics endpoint"
        )),
    }
}
