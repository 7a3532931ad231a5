//! The accounting engine: what happens on every allocation and free.
//!
//! The allocation path (`record_alloc`, `record_free`, `record_realloc`)
//! touches only the calling thread's own table: a handful of relaxed loads
//! and stores, no lock, no read-modify-write atomic, no allocation and — in
//! the common case — no system call. Thresholds are checked inline with two
//! comparisons. A site past the delta threshold is then checked for the time
//! threshold on each of its allocations without reading the clock (a
//! per-thread reading is reused, see `ThreadState::seconds_for_threshold`);
//! only a threshold that fires reads the clock and calls the user callback.
//! The counter updates sit between `ThreadState::begin_update` and
//! `end_update` (two stores), so a signal handler that allocates on the
//! same thread in the middle charges the shared retired table instead and
//! no update is lost.
//!
//! **Which site an allocation is charged to.** Each thread has a *scope
//! site* (set by a `#[track_alloc]` function for as long as it runs, see
//! [`enter_scope`]) and may have a one-shot *pending site* (set by
//! [`mallocation_set`], the original C API). A pending site applies to the
//! very next allocation-family call on that thread — `free` included — and
//! is then cleared, so an untagged allocation later in a library is never
//! charged to a stale site. Without either, allocations go to site 0
//! (unknown).
//!
//! **Frees.** A free is charged to the site recorded in the block's tag (see
//! [`crate::tag`]), whatever thread frees it. Per-thread net bytes may thus
//! go negative on a thread that frees what others allocated; the sum over
//! threads is exact.

#[allow(unsafe_code)]
mod registry;
#[allow(unsafe_code)]
mod table;
#[allow(unsafe_code)]
mod thread;
#[allow(unsafe_code)]
mod tls;

use std::sync::atomic::Ordering;

use crate::clock;
use crate::config::{self, Features};
use crate::op::Op;
use crate::site;

pub(crate) use registry::{read_consistently, retired, tables, thread_counts};
pub(crate) use table::ThreadTable;
pub use thread::Taken;

/// Charges an allocation of `bytes` made by `op` to the calling thread's
/// current site and returns that site (to be written into the block's tag).
#[inline]
pub fn record_alloc(op: Op, bytes: usize) -> u16 {
    record_alloc_from(op, bytes, 0)
}

/// [`record_alloc`] for a call made from `caller` (a return address; 0 for
/// none): with no table site pending and no scope, the block is charged to
/// the caller's site (see `site/callers.rs`).
///
/// The common case — a thread with its table, a known site, no callback
/// listening — is a leaf function: a few loads and stores, no call, so no
/// register is saved or restored. Everything else is a tail call to
/// [`record_alloc_slow`].
#[inline]
pub fn record_alloc_from(op: Op, bytes: usize, caller: usize) -> u16 {
    thread::with(|s| record_alloc_in(s, op, bytes, caller))
}

/// For the Rust `AsmAlloc`: [`record_alloc`], or `None` — nothing charged
/// — on a thread doing the library's own work (the monitor's, the metrics
/// endpoint's), whose blocks get an own tag. The check rides on the same
/// thread-state access, so the program's allocation path stays as small
/// as [`record_alloc`]'s (a separate check made `__rust_alloc` too big to
/// inline: 33 more instructions per allocation and free).
#[inline]
pub fn record_program_alloc(op: Op, bytes: usize) -> Option<u16> {
    thread::with(|s| (!s.library_work.get()).then(|| record_alloc_in(s, op, bytes, 0)))
}

/// The common case of [`record_alloc_from`] alone: `Ok(site)` when it
/// applied (the allocation is charged to `site`); else `Err(taken)`, the
/// site taken from the thread's state, and the caller finishes with
/// [`record_alloc_rest`]. No call at all, so a caller that jumps to its
/// own slow path when this fails (the preload's `malloc`) saves no
/// register for it.
#[inline(always)]
pub fn record_alloc_fast(op: Op, bytes: usize, caller: usize) -> Result<u16, Taken> {
    thread::with(|s| record_alloc_fast_in(s, op, bytes, caller))
}

/// [`record_alloc_from`] after [`record_alloc_fast`] said `Err(taken)`.
#[inline(never)]
pub fn record_alloc_rest(op: Op, bytes: usize, caller: usize, taken: Taken) -> u16 {
    thread::with(|s| record_alloc_slow(s, op, bytes, caller, taken))
}

/// [`record_program_alloc`]'s common case alone, as [`record_alloc_fast`]:
/// `Ok(site)`; `Err(None)` on a thread doing the library's own work
/// (nothing charged); `Err(Some(taken))`: finish with
/// [`record_alloc_rest`]`(op, bytes, 0, taken)`.
#[inline(always)]
pub fn record_program_alloc_fast(op: Op, bytes: usize) -> Result<u16, Option<Taken>> {
    thread::with(|s| {
        if s.library_work.get() {
            return Err(None);
        }
        record_alloc_fast_in(s, op, bytes, 0).map_err(Some)
    })
}

/// The body of [`record_alloc_from`] on the calling thread's state `s`.
#[inline(always)]
fn record_alloc_in(s: &thread::ThreadState, op: Op, bytes: usize, caller: usize) -> u16 {
    match record_alloc_fast_in(s, op, bytes, caller) {
        Ok(site) => site,
        Err(taken) => record_alloc_slow(s, op, bytes, caller, taken),
    }
}

/// [`record_alloc_fast`] on the calling thread's state `s`.
#[inline(always)]
fn record_alloc_fast_in(
    s: &thread::ThreadState,
    op: Op,
    bytes: usize,
    caller: usize,
) -> Result<u16, Taken> {
    let taken = s.take_site();
    if let Some(site) = fast_site(taken.site(), caller)
        && !config::thresholds_armed()
        && let Some(t) = s.adopted_table()
    {
        // The counters are read only inside the update (a signal handler
        // that allocates before it would otherwise be overwritten). The
        // first allocation at a site in this table (its `touched` bit to
        // set) takes the slow path too: the common case stays small.
        let t = s.begin_update_of(t);
        let c = t.site(site);
        let allocs = c.allocs.load(Ordering::Relaxed);
        if allocs != 0 {
            t.count_op(op, bytes);
            c.add_alloc(allocs, bytes);
            s.end_update(t);
            return Ok(site);
        }
        s.end_update(t);
    }
    Err(taken)
}

/// The site to charge when it is known without a call: the taken `site`,
/// or the caller's site when that sits at its first probe (see
/// [`or_caller`]); `None`: ask [`or_caller`].
#[inline(always)]
fn fast_site(site: u16, caller: usize) -> Option<u16> {
    if caller == 0 || site != 0 {
        Some(site)
    } else {
        site::caller_site_at_first_probe(caller)
    }
}

/// [`record_alloc_from`] past its common case: a caller site to look up, a
/// thread without its table yet (or any more), or thresholds to check.
/// `taken` is one register (five arguments, all in registers, so the call
/// is a jump).
#[inline(never)]
fn record_alloc_slow(
    s: &thread::ThreadState,
    op: Op,
    bytes: usize,
    caller: usize,
    taken: Taken,
) -> u16 {
    let (site, type_id, block_done) = (taken.site(), taken.type_id(), taken.block_reported());
    let site = or_caller(site, caller);
    match s.begin_update() {
        Some(t) => {
            t.count_op(op, bytes);
            let net = t.charge_alloc(site, bytes);
            s.end_update(t);
            check_thresholds(s, t, site, type_id, bytes as i64, net, block_done);
        }
        // No table, or a signal handler interrupted this thread's own
        // update (see `ThreadState::begin_update`).
        None => charge_retired(op, site, bytes, true),
    }
    site
}

/// Charges a free of `bytes` by `op` back to `site` (read from the block's
/// tag). Clears a pending one-shot site. A leaf function in the common case,
/// as [`record_alloc_from`].
#[inline]
pub fn record_free(op: Op, site: u16, bytes: usize) {
    if !record_free_fast(op, site, bytes) {
        thread::with(|s| record_free_slow(s, op, site, bytes))
    }
}

/// The common case of [`record_free`] alone: true when it applied (the free
/// is charged); false when the caller must call [`record_free`] (nothing
/// was done but dropping the pending one-shot site, which that does too).
/// No call at all, so a caller that tail-calls its own slow path when this
/// fails (the preload's `free`) saves no register on its common path.
#[inline(always)]
pub fn record_free_fast(op: Op, site: u16, bytes: usize) -> bool {
    thread::with(|s| {
        s.clear_pending();
        if !config::thresholds_armed()
            && let Some(t) = s.adopted_table()
        {
            // As in `record_alloc_fast_in`: counters read inside the
            // update; a site this table never wrote takes the slow path.
            let t = s.begin_update_of(t);
            let c = t.site(site);
            let count = c.net_count.load(Ordering::Relaxed);
            if c.written(count) {
                t.count_op(op, bytes);
                c.add_free(count, bytes);
                s.end_update(t);
                return true;
            }
            s.end_update(t);
        }
        false
    })
}

/// [`record_free`] past its common case.
#[inline(never)]
fn record_free_slow(s: &thread::ThreadState, op: Op, site: u16, bytes: usize) {
    match s.begin_update() {
        Some(t) => {
            t.count_op(op, bytes);
            let net = t.charge_free(site, bytes);
            s.end_update(t);
            check_thresholds(s, t, site, TYPE_OF_SITE, -(bytes as i64), net, false);
        }
        None => charge_retired(op, site, bytes, false),
    }
}

/// Counts a free of a block whose tag did not validate: never charged to a
/// site (see [`Op::ForeignFree`]). Clears a pending one-shot site.
pub fn record_foreign_free(bytes: usize) {
    thread::with(|s| {
        s.clear_pending();
        match s.begin_update() {
            Some(t) => {
                t.count_op(Op::ForeignFree, bytes);
                s.end_update(t);
            }
            None => {
                if let Some(r) = retired() {
                    r.shared_count_op(Op::ForeignFree, bytes);
                }
            }
        }
    })
}

/// Charges a reallocation: the old block (`old_site` from its tag, `None`
/// when the tag was foreign) is freed from its site and the new one is
/// charged to the current site, which is returned for the new tag.
#[inline]
pub fn record_realloc(op: Op, old_site: Option<u16>, old_bytes: usize, new_bytes: usize) -> u16 {
    record_realloc_from(op, old_site, old_bytes, new_bytes, 0)
}

/// [`record_realloc`] for a call made from `caller` (see
/// [`record_alloc_from`]).
#[inline]
pub fn record_realloc_from(
    op: Op,
    old_site: Option<u16>,
    old_bytes: usize,
    new_bytes: usize,
    caller: usize,
) -> u16 {
    thread::with(|s| {
        let taken = s.take_site();
        // The common case, as in `record_alloc_fast_in`: a program block
        // resized, both sites written by this table before, no callback.
        if let Some(old) = old_site
            && let Some(site) = fast_site(taken.site(), caller)
            && !config::thresholds_armed()
            && let Some(t) = s.adopted_table()
        {
            let t = s.begin_update_of(t);
            let (freed, charged) = (t.site(old), t.site(site));
            let count = freed.net_count.load(Ordering::Relaxed);
            let allocs = charged.allocs.load(Ordering::Relaxed);
            if freed.written(count) && allocs != 0 {
                t.count_op(op, new_bytes);
                freed.add_free(count, old_bytes);
                // (`allocs` is still right when `old == site`: a free
                // leaves it alone.)
                charged.add_alloc(allocs, new_bytes);
                s.end_update(t);
                return site;
            }
            s.end_update(t);
        }
        record_realloc_slow(s, op, old_site, old_bytes, new_bytes, caller, taken)
    })
}

/// [`record_realloc_from`] past its common case.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn record_realloc_slow(
    s: &thread::ThreadState,
    op: Op,
    old_site: Option<u16>,
    old_bytes: usize,
    new_bytes: usize,
    caller: usize,
    taken: Taken,
) -> u16 {
    let (type_id, block_done) = (taken.type_id(), taken.block_reported());
    let site = or_caller(taken.site(), caller);
    match s.begin_update() {
        Some(t) => {
            t.count_op(op, new_bytes);
            let freed = match old_site {
                Some(old) => Some((old, t.charge_free(old, old_bytes))),
                None => {
                    t.count_op(Op::ForeignFree, old_bytes);
                    None
                }
            };
            let net = t.charge_alloc(site, new_bytes);
            s.end_update(t);
            // The thresholds (and a callback, which may allocate) only
            // after the update: the old site's first.
            if let Some((old, old_net)) = freed
                && old != site
            {
                check_thresholds(s, t, old, TYPE_OF_SITE, -(old_bytes as i64), old_net, true);
            }
            let delta = new_bytes as i64
                - if old_site == Some(site) {
                    old_bytes as i64
                } else {
                    0
                };
            check_thresholds(s, t, site, type_id, delta, net, block_done);
        }
        None => {
            if let Some(old) = old_site {
                charge_retired(op, old, old_bytes, false);
            }
            charge_retired(op, site, new_bytes, true);
        }
    }
    site
}

/// Call in a forked child (a `pthread_atfork` child handler; the LD_PRELOAD
/// library registers one): repairs engine state that threads which do not
/// exist in the child may have left half-changed. Tables of those threads
/// keep their counts (the child has copies of their blocks).
pub fn after_fork_in_child() {
    registry::after_fork_in_child();
    thread::after_fork_in_child();
}

/// Site 0 ("no site") becomes the caller's site when the call's address is
/// known: a table site, a pending one-shot site and a scope always win.
#[inline(always)]
fn or_caller(site: u16, caller: usize) -> u16 {
    if site == 0 && caller != 0 {
        site::caller_site(caller)
    } else {
        site
    }
}

/// Counts a call that is not charged to a site (`mmap`, `brk`, …).
pub fn record_op(op: Op, bytes: usize) {
    thread::with(|s| match s.begin_update() {
        Some(t) => {
            t.count_op(op, bytes);
            s.end_update(t);
        }
        None => {
            if let Some(r) = retired() {
                r.shared_count_op(op, bytes);
            }
        }
    })
}

#[cold]
fn charge_retired(op: Op, site: u16, bytes: usize, alloc: bool) {
    if let Some(r) = retired() {
        r.shared_count_op(op, bytes);
        r.shared_charge(site, bytes, alloc);
    }
}

/// Passed as the type of a free: the callback, if it fires, reports the
/// type the site was registered with (looked up only then).
const TYPE_OF_SITE: u16 = u16::MAX;

/// The type a site was registered with, for callbacks fired by frees.
fn site_type(site: u16) -> u16 {
    site::describe(site).map_or(0, |d| d.type_id)
}

/// Inline part of the threshold check: one load when no callback listens,
/// else two loads and two comparisons when nothing fires (a feature that is
/// off arms its threshold at `usize::MAX`).
#[inline(always)]
fn check_thresholds(
    s: &thread::ThreadState,
    t: &ThreadTable,
    site: u16,
    type_id: u16,
    delta: i64,
    net: i64,
    block_done: bool,
) {
    // No callback registered (the usual production case): nothing to decide.
    if !config::thresholds_armed() {
        return;
    }
    let block = delta.unsigned_abs() > config::armed_block_threshold() as u64 && !block_done;
    let c = t.site(site);
    let drift = net
        .wrapping_sub(c.reported_total.load(Ordering::Relaxed))
        .unsigned_abs()
        > config::armed_delta_threshold() as u64;
    if !(block || drift) {
        return;
    }
    // The steady state of a busy site: past the delta threshold, but the
    // time threshold (the original's rule: more than `delta_seconds` whole
    // seconds since this site's last report on this thread) has not passed.
    // Decided here without a clock read or a call: the thread's reading is
    // reused (see `ThreadState::seconds_for_threshold`); one that says
    // "passed" is confirmed with a fresh reading before anything fires.
    let time_may_have_passed =
        (s.seconds_for_threshold() - c.reported_secs.load(Ordering::Relaxed)).abs()
            > config::delta_seconds();
    if block || time_may_have_passed {
        thresholds_crossed(s, t, site, type_id, delta, net, block, drift);
    }
}

#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn thresholds_crossed(
    s: &thread::ThreadState,
    t: &ThreadTable,
    site: u16,
    type_id: u16,
    delta: i64,
    net: i64,
    block: bool,
    drift: bool,
) {
    let type_of = |type_id: u16| {
        if type_id == TYPE_OF_SITE {
            site_type(site)
        } else {
            type_id
        }
    };
    if block {
        fire(s, t, type_of(type_id), site, delta, 0, None);
    }
    if drift {
        let c = t.site(site);
        let limit = config::delta_seconds();
        let reported = c.reported_secs.load(Ordering::Relaxed);
        let now = clock::now_ns();
        let now_secs = now.div_euclid(1_000_000_000);
        if crate::clock::fake_ns() == 0 {
            s.read_clock_secs();
        }
        if (now_secs - reported).abs() > limit {
            let moved = net.wrapping_sub(c.reported_total.load(Ordering::Relaxed));
            c.reported_total.store(net, Ordering::Relaxed);
            c.reported_secs.store(now_secs, Ordering::Relaxed);
            c.last_time_ns.store(now, Ordering::Relaxed);
            fire(s, t, type_of(type_id), site, moved, net, Some(now));
        }
    }
}

/// Calls the user's callback, if there is one (reading the clock only
/// then, unless the caller has `now`).
fn fire(
    s: &thread::ThreadState,
    t: &ThreadTable,
    type_id: u16,
    site: u16,
    delta: i64,
    total: i64,
    now: Option<i64>,
) {
    if s.in_callback.get() {
        return;
    }
    if let Some((callback, user_data)) = config::callback() {
        s.in_callback.set(true);
        let ts = clock::to_timespec(now.unwrap_or_else(clock::now_ns));
        callback(
            t.thread_id.load(Ordering::Relaxed),
            type_id,
            site,
            delta as isize,
            total as isize,
            &ts,
            user_data,
        );
        s.in_callback.set(false);
    }
}

// ---------------------------------------------------------------------------
// The original API: asm_mallocation_set / asm_mallocation_get.

/// Sets the site of the calling thread's *next* allocation-family call
/// (`asm_mallocation_set`). `delta_size` is what the caller expects the call
/// to change; with feature `BLOCKS`, a delta past the block threshold calls
/// the callback at once (total 0), as in the original. An out-of-range site
/// or unknown type gives a one-time warning and falls back to 0.
pub fn mallocation_set(type_id: u16, loc: u16, delta_size: isize) {
    let loc = site::checked_site(loc);
    let type_id = site::checked_type(type_id);
    thread::with(|s| {
        let now = clock::now_ns();
        let t = s.table();
        if let Some(t) = t {
            let c = t.site(loc);
            c.last_type.store(u64::from(type_id), Ordering::Relaxed);
            c.last_delta.store(delta_size as i64, Ordering::Relaxed);
            c.last_time_ns.store(now, Ordering::Relaxed);
            t.touch(loc);
        }
        // The callback runs before the site becomes pending, so whatever it
        // allocates cannot use the site up.
        let block = config::features().contains(Features::BLOCKS)
            && delta_size.unsigned_abs() > config::thresholds().block_bytes;
        if block && let Some(t) = t {
            fire(s, t, type_id, loc, delta_size as i64, 0, Some(now));
        }
        s.set_pending(loc, type_id, block);
    })
}

/// Makes `loc` the site of the calling thread's next allocation-family call,
/// like [`mallocation_set`] but without its bookkeeping (no clock read, no
/// per-site record, no callback): the fast path for call sites resolved
/// through the generated table (`asm_site_enter`). `loc` must be a resolved
/// id (from [`crate::site::resolve`]).
#[inline]
pub fn set_next_site(type_id: u16, loc: u16) {
    thread::with(|s| s.set_pending(loc, type_id, false))
}

/// Drops a pending one-shot site without charging it: for an allocation
/// call that failed, so the site does not move on to a later allocation.
#[inline]
pub fn clear_pending() {
    thread::with(|s| s.clear_pending())
}

/// The calling thread's record for one site (`asm_mallocation_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mallocation {
    /// Type of the last `mallocation_set` for this site on this thread.
    pub type_id: u16,
    /// This thread's cumulative net bytes for the site (real sizes).
    pub total_size: isize,
    /// The delta passed with the last `mallocation_set` for this site.
    pub delta_size: isize,
    /// Time (ns since the epoch) of that set or of the last threshold report.
    pub last_time_ns: i64,
}

/// Reads the calling thread's record for `loc` (`asm_mallocation_get`).
pub fn mallocation_get(loc: u16) -> Mallocation {
    thread::with(|s| match s.table() {
        Some(t) => {
            let c = t.site(loc);
            Mallocation {
                type_id: c.last_type.load(Ordering::Relaxed) as u16,
                total_size: c.net_bytes.load(Ordering::Relaxed) as isize,
                delta_size: c.last_delta.load(Ordering::Relaxed) as isize,
                last_time_ns: c.last_time_ns.load(Ordering::Relaxed),
            }
        }
        None => Mallocation::default(),
    })
}

/// The calling thread's id as callbacks report it (0 = initial thread).
pub fn current_thread_id() -> u64 {
    thread::with(|s| s.thread_id())
}

// ---------------------------------------------------------------------------
// Scopes: the Rust way to name the current site.

/// Restores the previous site when dropped; returned by [`enter_scope`].
#[must_use = "the site applies only while the guard lives"]
#[derive(Debug)]
pub struct SiteScope {
    prev_site: u16,
    prev_type: u16,
}

/// Charges every allocation on this thread to `site` (with `type_id`) until
/// the returned guard is dropped — including on unwind — when the previous
/// site comes back. Nested scopes stack. An out-of-range site gives a
/// one-time warning and site 0.
#[inline]
pub fn enter_scope(site: u16, type_id: u16) -> SiteScope {
    enter_resolved_scope(site::checked_site(site), type_id)
}

/// [`enter_scope`] for ids already resolved against the table (the
/// `#[track_alloc]` path): no range check.
#[inline]
pub(crate) fn enter_resolved_scope(site: u16, type_id: u16) -> SiteScope {
    thread::with(|s| {
        let (prev_site, prev_type) = s.replace_scope(site, type_id);
        SiteScope {
            prev_site,
            prev_type,
        }
    })
}

impl Drop for SiteScope {
    #[inline]
    fn drop(&mut self) {
        thread::with(|s| {
            s.replace_scope(self.prev_site, self.prev_type);
        })
    }
}

// ---------------------------------------------------------------------------
// Wrapper scopes: the C program's own allocation wrappers as sites.

/// True when a wrapper call entered from `frame` would be nested in the
/// thread's open wrapper scope (so it must leave that scope alone): a scope
/// is open and was entered from this frame or a shallower one (the stack
/// grows down). A scope entered from a deeper frame belongs to a call that
/// was left by `longjmp` without closing it, and is taken over.
#[inline]
pub fn wrapper_nested(frame: usize) -> bool {
    thread::with(|s| s.wrap_open.get() && s.wrap_frame.get() >= frame)
}

/// True while a wrapper scope is open on the calling thread: the
/// allocation-family call sites inside a wrapper leave the charging to it.
#[inline]
pub fn in_wrapper() -> bool {
    thread::with(|s| s.wrap_open.get())
}

/// Opens the wrapper scope of a wrapper call made from `frame`: every
/// allocation of this thread is charged to `site` until
/// [`wrapper_exit`]`(true)`. Returns false (and changes nothing) when the
/// call is nested in an open wrapper scope: the outermost call is the site.
/// `site` must be a resolved id.
#[inline]
pub fn wrapper_enter(site: u16, type_id: u16, frame: usize) -> bool {
    thread::with(|s| {
        if s.wrap_open.get() {
            if s.wrap_frame.get() >= frame {
                return false;
            }
            // Left by longjmp: the sites before it stay saved.
        } else {
            let (outer_site, outer_type) = s.scope();
            s.wrap_outer_site.set(outer_site);
            s.wrap_outer_type.set(outer_type);
        }
        s.wrap_open.set(true);
        s.wrap_frame.set(frame);
        s.replace_scope(site, type_id);
        true
    })
}

/// Closes the wrapper scope opened by a [`wrapper_enter`] that returned
/// `opened`; a nested call (`opened` false) does nothing.
#[inline]
pub fn wrapper_exit(opened: bool) {
    if !opened {
        return;
    }
    thread::with(|s| {
        s.wrap_open.set(false);
        s.wrap_frame.set(0);
        s.replace_scope(s.wrap_outer_site.get(), s.wrap_outer_type.get());
    })
}

/// True while the calling thread runs the LD_PRELOAD library's own work
/// (its reentrancy guard; see the preload's `guard.rs`).
#[inline(always)]
pub fn library_work() -> bool {
    thread::with(|s| s.library_work.get())
}

/// Sets the calling thread's reentrancy guard; returns its previous value.
#[inline]
pub fn set_library_work(on: bool) -> bool {
    thread::with(|s| s.library_work.replace(on))
}

/// Counts `bytes` down from the calling thread's distance to its next
/// sampled allocation (`crate::stacks`); true when the count crosses zero
/// (this allocation is sampled).
#[inline(always)]
pub fn sample_count_down(bytes: usize) -> bool {
    thread::with(|s| {
        let left = s.sample_left.get().wrapping_sub(bytes as i64);
        s.sample_left.set(left);
        left <= 0
    })
}

/// The calling thread's sampling generator state (0: not started).
pub fn sample_rng() -> u64 {
    thread::with(|s| s.sample_rng.get())
}

/// Sets the calling thread's generator state and its distance to the next
/// sampled allocation.
pub fn set_sample_state(rng: u64, left: i64) {
    thread::with(|s| {
        s.sample_rng.set(rng);
        s.sample_left.set(left);
    })
}

/// Runs `listener` on each thread that allocated as it exits (after its
/// counters are folded; the first listener set wins).
pub fn set_thread_exit_listener(listener: fn()) {
    thread::set_exit_listener(listener);
}

/// The library's own memory while held: what the calling thread allocates
/// meanwhile is the library's (an *own* tag, charged to no site), as on
/// the monitor's thread. Dropping it restores what was before, so guards
/// nest.
#[must_use = "the library's own memory ends when the guard is dropped"]
pub struct OwnMemory {
    was: bool,
    _thread_bound: std::marker::PhantomData<*const ()>,
}

impl OwnMemory {
    /// Enters the library's own memory on the calling thread.
    #[inline]
    pub fn enter() -> OwnMemory {
        OwnMemory {
            was: set_library_work(true),
            _thread_bound: std::marker::PhantomData,
        }
    }
}

impl Drop for OwnMemory {
    #[inline]
    fn drop(&mut self) {
        set_library_work(self.was);
    }
}

/// The calling thread's current scope site (0 outside any scope).
pub fn current_scope_site() -> u16 {
    thread::with(|s| s.scope().0)
}

// ---------------------------------------------------------------------------
// Process-wide net counters for memory that is not charged to sites.

static NET_MAPPED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
static NET_SHM: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Adds to the net bytes mapped with `mmap` (negative for `munmap`).
pub fn add_net_mapped(delta: i64) {
    NET_MAPPED.fetch_add(delta, Ordering::Relaxed);
}

/// Adds to the net bytes of attached System V shared memory.
pub fn add_net_shm(delta: i64) {
    NET_SHM.fetch_add(delta, Ordering::Relaxed);
}

/// (net mapped, net shared memory) bytes.
pub fn net_mapped_and_shm() -> (i64, i64) {
    (
        NET_MAPPED.load(Ordering::Relaxed),
        NET_SHM.load(Ordering::Relaxed),
    )
}
