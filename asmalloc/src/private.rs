//! What `#[track_alloc]` expands to. Not a public API: the macro's output
//! names these through `::asmalloc::__private`, and they may change with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::engine::{self, SiteScope};
use crate::site;

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
            | if site::generation() == 0 {
                0
            } else {
                AFTER_TABLE
            };
        let mut c = self.cache.load(Ordering::Relaxed);
        if c & (VALID | AFTER_TABLE) != want {
            c = self.resolve(want);
        }
        engine::enter_resolved_scope(c as u16, (c >> 16) as u16)
    }

    #[cold]
    #[inline(never)]
    fn resolve(&self, want: u64) -> u64 {
        let (site, type_id) =
            site::resolve_rust(self.type_name, self.file, self.line, self.function);
        let c = want | u64::from(type_id) << 16 | u64::from(site);
        self.cache.store(c, Ordering::Relaxed);
        c
    }
}

/// A future that makes `site` current around every poll of `inner`: an
/// `async fn` is charged for what it allocates while it runs, never for what
/// other tasks allocate while it waits.
#[derive(Debug)]
pub struct Tracked<F> {
    site: &'static RustSite,
    inner: F,
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
        let _scope = self.site.enter();
        // SAFETY: structural pinning of `inner`: `Tracked` never moves it out
        // or hands out `&mut F` except here, pinned, and has no `Drop` impl
        // and no `Unpin` impl beyond the auto one (which requires F: Unpin).
        unsafe { self.map_unchecked_mut(|t| &mut t.inner) }.poll(cx)
    }
}
