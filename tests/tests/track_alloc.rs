//! `#[track_alloc]` end to end: the generated table (build.rs) names each
//! tracked function, and every allocation lands on the right site with exact
//! bytes — nested calls, early returns, unwinding, generic and trait methods,
//! `impl Trait`, `unsafe fn`, and async functions interleaved on one thread.

use std::future::Future;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use asmalloc::Snapshot;
use asmalloc_tests::*;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

fn net(function: &str) -> (i64, i64) {
    let s = Snapshot::take().site(site_of(function));
    (s.net_bytes, s.net_count)
}

fn allocs(function: &str) -> u64 {
    Snapshot::take().site(site_of(function)).allocs
}

/// Held by the tests that count `inner`'s blocks: they run at the same
/// time, and one's block would be in the other's count.
static INNER_SITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_generated_table_names_every_tracked_function() {
    register();
    let fns: Vec<&str> = MALLOCATIONS.sites.iter().map(|s| s.function).collect();
    for f in [
        "outer",
        "inner",
        "parse_len",
        "Cache::insert_boxed",
        "Cache::put",
        "make",
        "numbers",
        "raw_bytes",
        "task_a",
        "task_b",
    ] {
        assert!(fns.contains(&f), "{f} missing from {fns:?}");
    }
    // The runtime resolves the macro's site to the table's id and name.
    let _inner = INNER_SITE.lock().unwrap_or_else(|e| e.into_inner());
    let v = inner(10);
    let id = site_of("inner");
    let info = asmalloc::__private::site::describe(id).unwrap();
    assert!(!info.dynamic);
    assert_eq!(info.type_name, "inner");
    let src = include_str!("../src/lib.rs");
    let line = src
        .lines()
        .position(|l| l.contains("pub fn inner("))
        .unwrap()
        + 1;
    assert_eq!(info.line as usize, line, "the site is the function's line");
    assert_eq!(Snapshot::take().site(id).net_count, 1);
    drop(v);
}

#[test]
fn nested_functions_take_over_and_give_back() {
    let _inner = INNER_SITE.lock().unwrap_or_else(|e| e.into_inner());
    register();
    let (o0, i0) = (net("outer"), net("inner"));
    let (mine, nested) = outer(1000);
    let (o1, i1) = (net("outer"), net("inner"));
    assert_eq!(
        (o1.0 - o0.0, o1.1 - o0.1),
        (1000, 1),
        "outer keeps its own 1000 bytes"
    );
    assert_eq!(
        (i1.0 - i0.0, i1.1 - i0.1),
        (2000, 1),
        "inner's 2000 bytes are inner's"
    );
    drop(nested);
    drop(mine);
    assert_eq!(net("outer"), o0);
    assert_eq!(net("inner"), i0);
    // Outside any tracked function, nothing is charged to them.
    let before = allocs("outer");
    let v = vec![0u8; 64];
    assert_eq!(allocs("outer"), before);
    drop(v);
}

#[test]
fn early_return_and_unwinding_restore_the_previous_site() {
    register();
    let p0 = net("parse_len");
    assert!(parse_len("not a number").is_err());
    assert_eq!(
        net("parse_len"),
        p0,
        "the 100-byte buffer was freed on the early return"
    );
    let kept = parse_len("40").unwrap();
    assert_eq!(net("parse_len").0 - p0.0, 100);
    drop(kept);

    let k0 = net("allocate_then_panic");
    let site_before = asmalloc::__private::engine::current_scope_site();
    // A silent hook: the default one would allocate (message, backtrace
    // caches) while the panicking function is still the current site.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(|| allocate_then_panic(333));
    std::panic::set_hook(hook);
    assert!(caught.is_err());
    drop(caught); // the panic payload was allocated there too
    assert_eq!(
        asmalloc::__private::engine::current_scope_site(),
        site_before,
        "unwinding restored the thread's site"
    );
    assert_eq!(
        net("allocate_then_panic").0 - k0.0,
        333,
        "the leaked 333 bytes are charged there"
    );
    let after = allocs("allocate_then_panic");
    let v = vec![1u8; 10];
    assert_eq!(
        allocs("allocate_then_panic"),
        after,
        "nothing more after the panic"
    );
    drop(v);
}

#[test]
fn generic_trait_impl_trait_and_unsafe_functions() {
    register();
    let mut cache = Cache { items: vec![7u64] };
    let c0 = net("insert_boxed");
    let b = cache.insert_boxed(&5u64);
    assert_eq!(net("insert_boxed").0 - c0.0, 8);
    drop(b);

    let mut bytes: Cache<u8> = Cache { items: Vec::new() };
    let s0 = net("put");
    let v = bytes.put(77);
    assert_eq!(net("put").0 - s0.0, 77);
    drop(v);

    let g0 = net("make");
    let a: Vec<u16> = make(10);
    let b: Vec<u64> = make(10);
    assert_eq!(
        net("make").0 - g0.0,
        20 + 80,
        "both instantiations share the site"
    );
    drop((a, b));

    let n0 = net("numbers");
    let it = numbers(25);
    assert_eq!(net("numbers").0 - n0.0, 100);
    assert_eq!(it.sum::<u32>(), 300);
    assert_eq!(net("numbers"), n0);

    let r0 = net("raw_bytes");
    // SAFETY: freed below with layout (48, 1) as the function requires.
    let p = unsafe { raw_bytes(48) };
    assert_eq!(net("raw_bytes").0 - r0.0, 48);
    // SAFETY: allocated by raw_bytes with this layout.
    unsafe { std::alloc::dealloc(p, std::alloc::Layout::from_size_align(48, 1).unwrap()) };
    assert_eq!(net("raw_bytes"), r0);
}

fn noop_waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: the vtable's functions ignore the data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

#[test]
fn async_functions_are_charged_per_poll() {
    register();
    let (a0, b0, x0) = (net("task_a"), net("task_b"), net("make"));
    let mut fa = Box::pin(task_a(300, 500));
    let mut fb = Box::pin(task_b(70, "12"));
    let mut fc = Box::pin(task_b(90, "x"));
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let (mut ra, mut rb, mut rc) = (None, None, None);
    let mut executor_bytes = Vec::new();
    // Round-robin on one thread; the executor allocates between polls, in a
    // tracked function of its own, while the tasks wait.
    while ra.is_none() || rb.is_none() || rc.is_none() {
        if ra.is_none()
            && let Poll::Ready(v) = fa.as_mut().poll(&mut cx)
        {
            ra = Some(v);
        }
        executor_bytes.push(make::<u8>(11));
        if rb.is_none()
            && let Poll::Ready(v) = fb.as_mut().poll(&mut cx)
        {
            rb = Some(v);
        }
        if rc.is_none()
            && let Poll::Ready(v) = fc.as_mut().poll(&mut cx)
        {
            rc = Some(v);
        }
    }
    let rounds = executor_bytes.len() as i64;
    assert_eq!(
        net("task_a").0 - a0.0,
        800,
        "300 before the await, 500 after"
    );
    assert_eq!(
        net("task_b").0 - b0.0,
        70,
        "task c's 90 bytes were freed by its early return"
    );
    assert_eq!(
        net("make").0 - x0.0,
        11 * rounds,
        "the executor's own allocations stay its own"
    );
    assert!(rc.unwrap().is_err());
    drop((ra, rb, executor_bytes));
    drop((fa, fb, fc));
    assert_eq!(net("task_a"), a0);
    assert_eq!(net("task_b"), b0);
}
