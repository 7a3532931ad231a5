//! What asmalloc's own crates reach and users do not: not a public API,
//! hidden from the docs and outside semver.
//!
//! * [`RustSite`] and [`Tracked`]: what `#[track_alloc]` expands to (the
//!   macro's output names them through `::asmalloc::__private`).
//! * The internal modules the LD_PRELOAD library builds on (`engine`,
//!   `tag`, `clock`, `monitor`, `metrics`, `site`, `env`, `config`, `vm_stats`),
//!   re-exported whole, and the test clock (`clock::set_test_time`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::engine::SiteScope;

const VALID: u64 = 1 << 32;
const AFTER_TABLE: u64 = 1 << 33;

/// One tracked function: its description, and its resolved site and type
/// ids, cached after the first call.
#[derive(Debug)]
pub struct RustSite {
    type_name: &'static str,
    file: &'static str,
    line: u32,
    function: &'static str,
    /// `VALID | AFTER_TABLE? | type << 16 | site`, 0 before resolution. A
    /// resolution made before the program registered its table is redone
    /// once the table is there.
    cache: AtomicU64,
}

impl RustSite {
    /// The site of a function; `const` for the macro's `static`.
    pub const fn new(
        type_name: &'static str,
        file: &'static str,
        line: u32,
        function: &'static str,
    ) -> RustSite {
        RustSite {
            type_name,
            file,
            line,
            function,
            cache: AtomicU64::new(0),
        }
    }

    /// Makes this the thread's current site until the guard drops.
    #[inline]
    pub fn enter(&'static self) -> SiteScope {
        let want = VALID
            | if crate::site::generation() == 0 {
                0
            } else {
                AFTER_TABLE
            };
        let mut c = self.cache.load(Ordering::Relaxed);
        if c & (VALID | AFTER_TABLE) != want {
            c = self.resolve(want);
        }
        crate::engine::enter_resolved_scope(c as u16, (c >> 16) as u16)
    }

    #[cold]
    #[inline(never)]
    fn resolve(&self, want: u64) -> u64 {
        let (site, type_id) =
            crate::site::resolve_rust(self.type_name, self.file, self.line, self.function);
        let c = want | u64::from(type_id) << 16 | u64::from(site);
        self.cache.store(c, Ordering::Relaxed);
        c
    }
}

pin_project_lite::pin_project! {
    /// A future that makes `site` current around every poll of `inner`: an
    /// `async fn` is charged for what it allocates while it runs, never for
    /// what other tasks allocate while it waits.
    #[derive(Debug)]
    pub struct Tracked<F> {
        site: &'static RustSite,
        #[pin]
        inner: F,
    }
}

impl<F> Tracked<F> {
    /// Wraps `inner`.
    pub fn new(site: &'static RustSite, inner: F) -> Tracked<F> {
        Tracked { site, inner }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.site.enter();
        this.inner.poll(cx)
    }
}

/// The accounting engine (the preload's allocation path).
pub mod engine {
    pub use crate::engine::*;
}

/// The per-block tag.
pub mod tag {
    pub use crate::tag::*;
}

/// The runtime's clock, and the test hook that fixes it.
pub mod clock {
    pub use crate::clock::*;
}

/// The leak monitor: configuration, sampling, fork handling.
pub mod monitor {
    pub use crate::monitor::*;
}

/// `ASMALLOC_PPROF`: the pprof heap profile.
pub mod pprof {
    pub use crate::pprof::*;
}

/// Prometheus metrics: settings, exposition, textfile, endpoint.
pub mod metrics {
    pub use crate::metrics::*;
}

/// Sampled stacks: the sampler, the path table, the unwinder, the namer.
pub mod stacks {
    pub use crate::stacks::*;
}

/// Site tables: resolution of call sites, dynamic sites.
pub mod site {
    pub use crate::site::*;
}

/// The `ASMALLOC_*` variables.
pub mod env {
    pub use crate::env::*;
}

/// Features, thresholds, the callback and their parsers.
pub mod config {
    pub use crate::config::*;
}

/// jemalloc's size classes (`size_classes`), for the jemalloc build of
/// the LD_PRELOAD library.
pub mod size_classes {
    pub use crate::size_classes::*;
}

/// `/proc/self/status` figures.
pub mod vm_stats {
    pub use crate::vm_stats::*;
}

/// Starting the library's own threads.
pub mod threads {
    pub use crate::sys::with_signals_blocked;
}
