//! Tracked functions of every shape `#[track_alloc]` supports, used by the
//! end-to-end tests. Each allocates a known number of bytes.

use asmalloc::track_alloc;

include!(concat!(env!("OUT_DIR"), "/mallocations.rs"));

/// Registers the generated table (once per process).
pub fn register() {
    match asmalloc::register_sites(&MALLOCATIONS) {
        Ok(()) | Err(asmalloc::SiteTableError::AlreadyRegistered) => {}
        Err(e) => panic!("{e}"),
    }
}

/// The table's id for a function (by its last path segment).
pub fn site_of(function: &str) -> u16 {
    MALLOCATIONS
        .sites
        .iter()
        .find(|s| s.function == function || s.function.ends_with(&format!("::{function}")))
        .unwrap_or_else(|| panic!("{function} is not in the generated table"))
        .id
}

/// Allocates `n` bytes itself and `2n` in a nested tracked call.
#[track_alloc(outer)]
pub fn outer(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mine = vec![1u8; n];
    let nested = inner(2 * n);
    let after = vec![3u8; n]; // back in `outer` after `inner` returned
    drop(after);
    (mine, nested)
}

/// Allocates `n` bytes.
#[track_alloc(inner)]
pub fn inner(n: usize) -> Vec<u8> {
    vec![2u8; n]
}

/// Allocates 100 bytes, then fails early with `?` on bad input.
#[track_alloc(parse)]
pub fn parse_len(text: &str) -> Result<Vec<u8>, std::num::ParseIntError> {
    let mut buf = Vec::with_capacity(100);
    let n: usize = text.parse()?;
    buf.resize(n.min(100), 0);
    Ok(buf)
}

/// Allocates (and leaks) `n` bytes, then panics.
#[track_alloc(panicky)]
pub fn allocate_then_panic(n: usize) -> usize {
    let v = vec![0u8; n];
    std::mem::forget(v);
    panic!("boom after {n} bytes");
}

/// A generic cache.
pub struct Cache<T> {
    /// The cached items.
    pub items: Vec<T>,
}

impl<T: Clone> Cache<T> {
    /// Stores a boxed copy of `item`.
    #[track_alloc(cache)]
    pub fn insert_boxed(&mut self, item: &T) -> Box<T> {
        Box::new(item.clone())
    }
}

/// A trait with a tracked implementation.
pub trait Store {
    /// Makes `n` bytes of storage.
    fn put(&mut self, n: usize) -> Vec<u8>;
}

impl Store for Cache<u8> {
    #[track_alloc(store)]
    fn put(&mut self, n: usize) -> Vec<u8> {
        vec![9u8; n]
    }
}

/// A generic function: every instantiation is the same site.
#[track_alloc(generic)]
pub fn make<T: Default + Clone>(n: usize) -> Vec<T> {
    vec![T::default(); n]
}

/// Returns `impl Trait`: `n` `u32`s behind an iterator.
#[track_alloc(iter)]
pub fn numbers(n: u32) -> impl Iterator<Item = u32> {
    (0..n).collect::<Vec<u32>>().into_iter()
}

/// An `unsafe fn`.
///
/// # Safety
/// The caller frees the result with `std::alloc::dealloc` and layout
/// `(n, 1)`.
#[track_alloc(raw)]
pub unsafe fn raw_bytes(n: usize) -> *mut u8 {
    // SAFETY: n > 0 is the caller's business; a null result is returned.
    unsafe { std::alloc::alloc(std::alloc::Layout::from_size_align(n, 1).unwrap()) }
}

/// An empty tracked function (for the per-call cost benchmark).
#[track_alloc(empty)]
#[inline(never)]
pub fn tracked_nothing(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

/// The same, untracked.
#[inline(never)]
pub fn untracked_nothing(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

/// A tracked function that allocates (for the benchmark).
#[track_alloc(bench_alloc)]
#[inline(never)]
pub fn tracked_alloc(n: usize) -> usize {
    std::hint::black_box(vec![0u8; n]).len()
}

/// The same, untracked.
#[inline(never)]
pub fn untracked_alloc(n: usize) -> usize {
    std::hint::black_box(vec![0u8; n]).len()
}

/// Yields once (returns Pending the first time it is polled).
pub struct YieldOnce(pub bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

/// An async task: allocates `a` bytes, waits, allocates `b` bytes.
#[track_alloc(task_a)]
pub async fn task_a(a: usize, b: usize) -> (Vec<u8>, Vec<u8>) {
    let first = vec![1u8; a];
    YieldOnce(false).await;
    let second = vec![2u8; b];
    (first, second)
}

/// Another async task, with an early return through `?`.
#[track_alloc(task_b)]
pub async fn task_b(n: usize, text: &str) -> Result<Vec<u8>, std::num::ParseIntError> {
    let v = vec![5u8; n];
    YieldOnce(false).await;
    let _: u32 = text.parse()?;
    Ok(v)
}
