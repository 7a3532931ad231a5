//! Block, delta and time thresholds fire exactly when the original's rules
//! say, with an injected clock. One test function: the settings are
//! process-wide, so the scenarios run in order.

mod common;

use std::ffi::c_void;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use asmalloc::{Features, Thresholds};
use common::{alloc_at, free};

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

const MAX_EVENTS: usize = 64;
static EVENTS: AtomicUsize = AtomicUsize::new(0);
// (loc, type, delta, total, time_s, thread) per event; atomics so the
// callback never allocates or locks.
static EV: [[AtomicI64; 6]; MAX_EVENTS] = [const { [const { AtomicI64::new(0) }; 6] }; MAX_EVENTS];
static UDATA: u32 = 0xfeed;

extern "C" fn record(
    thread_id: u64,
    type_id: u16,
    loc: u16,
    delta: isize,
    total: isize,
    time: *const libc::timespec,
    udata: *mut c_void,
) {
    assert_eq!(udata.cast_const(), (&raw const UDATA).cast::<c_void>());
    let i = EVENTS.fetch_add(1, Ordering::SeqCst);
    if i < MAX_EVENTS {
        // SAFETY: the runtime passes a valid timespec for the call's duration.
        let secs = unsafe { (*time).tv_sec };
        for (slot, v) in EV[i].iter().zip([
            i64::from(loc),
            i64::from(type_id),
            delta as i64,
            total as i64,
            secs,
            thread_id as i64,
        ]) {
            slot.store(v, Ordering::SeqCst);
        }
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Event {
    loc: u16,
    type_id: u16,
    delta: i64,
    total: i64,
    secs: i64,
}

/// Events recorded for `loc` since the last call (others are dropped).
fn take_events(loc: u16) -> Vec<Event> {
    let n = EVENTS.swap(0, Ordering::SeqCst).min(MAX_EVENTS);
    (0..n)
        .map(|i| {
            let v: Vec<i64> = EV[i].iter().map(|a| a.load(Ordering::SeqCst)).collect();
            Event {
                loc: v[0] as u16,
                type_id: v[1] as u16,
                delta: v[2],
                total: v[3],
                secs: v[4],
            }
        })
        .filter(|e| e.loc == loc)
        .collect()
}

const SEC: i64 = 1_000_000_000;

#[test]
fn thresholds_follow_the_original_rules() {
    asmalloc::__private::clock::set_test_time(Some(1_000 * SEC));
    asmalloc::set_callback(Some(record), (&raw const UDATA).cast_mut().cast());
    asmalloc::set_thresholds(Thresholds {
        block_bytes: 4096,
        delta_bytes: 10_000,
        delta_seconds: 60,
    });

    // --- block threshold only ---
    asmalloc::set_features(Features::BLOCKS);
    take_events(0);
    let small = alloc_at(10, 2000, 8, false);
    assert_eq!(
        take_events(10),
        vec![],
        "a block under the threshold is silent"
    );
    let big = alloc_at(10, 5000, 8, false);
    let ev = take_events(10);
    assert_eq!(
        ev.len(),
        1,
        "a block over the threshold calls back once: {ev:?}"
    );
    assert_eq!(
        (ev[0].delta, ev[0].total, ev[0].type_id),
        (big.charged as i64, 0, 1)
    );
    assert_eq!(ev[0].secs, 1_000);
    let big_charged = big.charged as i64;
    free(big);
    let ev = take_events(10);
    assert_eq!(ev.len(), 1, "freeing a big block calls back too");
    assert_eq!(ev[0].delta, -big_charged);
    free(small);
    assert_eq!(take_events(10), vec![]);

    // --- delta + time thresholds only ---
    asmalloc::set_features(Features::MALLOCATIONS);
    let mut blocks = Vec::new();
    let mut net = 0i64;
    let mut first = None;
    for _ in 0..6 {
        let b = alloc_at(11, 2000, 8, false);
        net += b.charged as i64;
        blocks.push(b);
        let ev = take_events(11);
        if net > 10_000 && first.is_none() {
            assert_eq!(
                ev.len(),
                1,
                "crossing the delta fires (last report was never)"
            );
            assert_eq!((ev[0].delta, ev[0].total), (net, net));
            first = Some(net);
        } else {
            assert_eq!(ev, vec![], "net {net}: no report");
        }
    }
    let reported = first.expect("the delta threshold was crossed");
    // More growth within the time threshold: silent.
    for _ in 0..6 {
        let b = alloc_at(11, 2000, 8, false);
        net += b.charged as i64;
        blocks.push(b);
    }
    assert_eq!(take_events(11), vec![], "within 60 s nothing fires");
    // Exactly 60 s later: still silent (the rule is strictly greater).
    asmalloc::__private::clock::set_test_time(Some(1_060 * SEC));
    let b = alloc_at(11, 100, 8, false);
    net += b.charged as i64;
    blocks.push(b);
    assert_eq!(take_events(11), vec![], "60 s is not more than 60 s");
    // 61 s later: fires with the movement since the last report.
    asmalloc::__private::clock::set_test_time(Some(1_061 * SEC));
    let b = alloc_at(11, 100, 8, false);
    net += b.charged as i64;
    blocks.push(b);
    let ev = take_events(11);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(
        (ev[0].delta, ev[0].total, ev[0].secs),
        (net - reported, net, 1_061)
    );
    // A fall back is reported too (negative delta), after the time passes.
    asmalloc::__private::clock::set_test_time(Some(1_200 * SEC));
    let mut fired = Vec::new();
    for b in blocks.drain(..) {
        net -= b.charged as i64;
        free(b);
        fired.extend(take_events(11));
    }
    assert_eq!(fired.len(), 1, "one report on the way down: {fired:?}");
    assert!(fired[0].delta < -10_000);
    assert_eq!(net, 0);

    // --- mallocation_set with BLOCKS fires at once with total 0, and the
    // following allocation does not fire the block callback again ---
    asmalloc::set_features(Features::BLOCKS);
    // (Nothing may allocate between the set and the allocation it is for.)
    asmalloc::mallocation_set(7, 12, 100_000);
    let layout = std::alloc::Layout::from_size_align(100_000, 8).unwrap();
    // SAFETY: non-zero layout; freed below with the same layout. (black_box:
    // an optimised build may otherwise drop an allocation it can see unused.)
    let p = std::hint::black_box(unsafe { std::alloc::alloc(layout) });
    let ev = take_events(12);
    assert_eq!(
        ev.len(),
        1,
        "the set reports at once, the allocation not again: {ev:?}"
    );
    assert_eq!((ev[0].type_id, ev[0].delta, ev[0].total), (7, 100_000, 0));
    let rec = asmalloc::mallocation_get(12);
    assert_eq!((rec.type_id, rec.delta_size), (7, 100_000));
    assert!(
        rec.total_size >= 100_000,
        "the pending site was charged: {rec:?}"
    );
    // The set was one-shot: the next allocation is not charged to site 12.
    let before = asmalloc::Snapshot::take().site(12).net_count;
    let other = alloc_at(13, 64, 8, false);
    assert_eq!(asmalloc::Snapshot::take().site(12).net_count, before);
    free(other);
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(p, layout) };
    take_events(12);

    // --- features off: nothing fires ---
    asmalloc::set_features(Features::NONE);
    let b = alloc_at(14, 1 << 20, 8, false);
    free(b);
    assert_eq!(take_events(14), vec![]);

    // --- no callback registered: the thresholds are disarmed (a crossing
    // would have no one to tell), so a site that grows past the delta
    // threshold meanwhile is reported to a callback registered later with
    // its whole movement since its last report ---
    asmalloc::set_callback(None, std::ptr::null_mut());
    asmalloc::set_features(Features::MALLOCATIONS | Features::BLOCKS);
    asmalloc::__private::clock::set_test_time(Some(2_000 * SEC));
    let mut quiet = Vec::new();
    let mut quiet_net = 0i64;
    for _ in 0..8 {
        let b = alloc_at(15, 5000, 8, false);
        quiet_net += b.charged as i64;
        quiet.push(b);
    }
    assert!(quiet_net > 10_000, "the site passed the delta threshold");
    assert_eq!(take_events(15), vec![], "no callback, nothing recorded");
    asmalloc::set_callback(Some(record), (&raw const UDATA).cast_mut().cast());
    let b = alloc_at(15, 100, 8, false);
    quiet_net += b.charged as i64;
    quiet.push(b);
    let ev = take_events(15);
    assert_eq!(ev.len(), 1, "the first crossing seen is reported: {ev:?}");
    assert_eq!((ev[0].delta, ev[0].total), (quiet_net, quiet_net));
    asmalloc::set_callback(None, std::ptr::null_mut());
    for b in quiet {
        free(b);
    }
    asmalloc::__private::clock::set_test_time(None);

    // --- unknown feature bits (as the C API may pass) are dropped with a
    // warning; the known ones take effect ---
    asmalloc::set_feature_bits(Features::VM_STATS.bits() | (1 << 40));
    assert_eq!(asmalloc::features(), Features::VM_STATS);
}
