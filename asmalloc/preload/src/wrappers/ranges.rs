//! The wrappers' address ranges: found once from the ELF symbol tables of
//! the loaded modules, then read on the allocation path without a lock.
//!
//! Each module's file is mapped read-only (a raw `mmap`, never counted as
//! the program's) and both its symbol tables are read: `.dynsym` (what a
//! shared library exports: `g_malloc`, `zmalloc` in a `-rdynamic`
//! program) and `.symtab` (every function of an unstripped program,
//! static ones included). A function symbol whose name matches a pattern
//! becomes a range `[start, start + size)` in the process's numbering.
//!
//! The check on the allocation path is two compares against the lowest
//! and highest wrapper address (the answer for almost every call), then a
//! binary search of at most [`MAX_RANGES`] sorted ranges.
//!
//! The ranges are published again when modules are loaded later (`dlopen`,
//! noticed by the monitor's thread): into the other of two sets, then the
//! current set flips, so a reader never sees a half-written list. (A reader
//! still inside the old set when the *next* publication rewrites it — two
//! module loads within one read — could get a wrong answer: a wrapper's
//! line as the site for one call, never a wrong count.)

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSymbol, SymbolKind};

use super::names;
use rt::__private::stacks::modules::LoadedModule;

/// How many wrapper functions are kept (more are reported and dropped).
pub(crate) const MAX_RANGES: usize = 512;

/// Answers remembered per set: a direct-mapped table of return addresses,
/// each entry `addr << 1 | inside` (0: empty). A program has few
/// allocation call sites and the wrappers' span usually covers most of
/// them (from the executable's `zmalloc` to libstdc++'s `operator new`),
/// so most calls would otherwise binary-search; a hit is a hash, a load
/// and a compare. Racing writers may overwrite each other's entries: each
/// entry is one word, so a reader sees a whole answer or a miss.
const MEMO: usize = 4096;
const _: () = assert!(MEMO.is_power_of_two());

/// One published list of wrapper ranges.
struct RangeSet {
    starts: [AtomicUsize; MAX_RANGES],
    ends: [AtomicUsize; MAX_RANGES],
    count: AtomicUsize,
    /// Lowest start and highest end; both 0 while there is no wrapper
    /// (then `addr >= high` holds for every address: never inside).
    low: AtomicUsize,
    high: AtomicUsize,
    memo: [AtomicUsize; MEMO],
}

/// All zeros at first, so the sets (80 KiB) are in `.bss`: the pages a
/// process never writes cost it nothing, where in `.data` the first read
/// would map the file's pages around them (docs/preload.md, "Resident
/// memory").
static SETS: [RangeSet; 2] = [const {
    RangeSet {
        starts: [const { AtomicUsize::new(0) }; MAX_RANGES],
        ends: [const { AtomicUsize::new(0) }; MAX_RANGES],
        count: AtomicUsize::new(0),
        low: AtomicUsize::new(0),
        high: AtomicUsize::new(0),
        memo: [const { AtomicUsize::new(0) }; MEMO],
    }
}; 2];

fn memo_slot(addr: usize) -> usize {
    (addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) & (MEMO - 1)
}
/// Which of [`SETS`] readers use.
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// True if `addr` lies inside a wrapper function.
#[inline(always)]
pub(crate) fn inside(addr: usize) -> bool {
    let set = &SETS[CURRENT.load(Ordering::Acquire) & 1];
    if addr < set.low.load(Ordering::Relaxed) || addr >= set.high.load(Ordering::Relaxed) {
        return false;
    }
    let known = set.memo[memo_slot(addr)].load(Ordering::Relaxed);
    if known >> 1 == addr {
        return known & 1 == 1;
    }
    inside_slow(set, addr)
}

#[inline(never)]
fn inside_slow(set: &RangeSet, addr: usize) -> bool {
    let answer = search(set, addr);
    // User-space addresses fit in 63 bits; anything else is not kept.
    if addr >> 63 == 0 {
        set.memo[memo_slot(addr)].store(addr << 1 | usize::from(answer), Ordering::Relaxed);
    }
    answer
}

/// The binary search of `set` for `addr`.
fn search(set: &RangeSet, addr: usize) -> bool {
    let count = set.count.load(Ordering::Relaxed).min(MAX_RANGES);
    // The last range starting at or before `addr`.
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if set.starts[mid].load(Ordering::Relaxed) <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo > 0 && addr < set.ends[lo - 1].load(Ordering::Relaxed)
}

/// Publishes `ranges` (sorted, disjoint; the first [`MAX_RANGES`]) as the
/// wrappers: written into the set readers do not use, which then becomes
/// the current one. Called by one thread at a time (the constructor, then
/// the monitor's thread).
pub(crate) fn publish(ranges: &[Range<usize>]) {
    let next = (CURRENT.load(Ordering::Relaxed) + 1) & 1;
    let set = &SETS[next];
    for entry in &set.memo {
        entry.store(0, Ordering::Relaxed);
    }
    let n = ranges.len().min(MAX_RANGES);
    for (i, r) in ranges[..n].iter().enumerate() {
        set.starts[i].store(r.start, Ordering::Relaxed);
        set.ends[i].store(r.end, Ordering::Relaxed);
    }
    set.count.store(n, Ordering::Relaxed);
    let (low, high) = if n > 0 {
        (ranges[0].start, ranges[n - 1].end)
    } else {
        (0, 0)
    };
    set.low.store(low, Ordering::Relaxed);
    set.high.store(high, Ordering::Relaxed);
    CURRENT.store(next, Ordering::Release);
}

/// A wrapper found in a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub name: String,
    pub range: Range<usize>,
}

/// The functions of `module` whose names match one of `patterns`.
pub(crate) fn find_in(module: &LoadedModule, patterns: &[&[u8]]) -> Vec<Found> {
    let Some(file) = MappedFile::open(&module.path) else {
        return Vec::new();
    };
    let Ok(elf) = ElfFile64::<Endianness>::parse(file.bytes()) else {
        return Vec::new();
    };
    // Exact names are looked up by binary search; only patterns with `*`
    // or `?` are tried one by one.
    let (globs, mut exact): (Vec<&[u8]>, Vec<&[u8]>) = patterns
        .iter()
        .partition(|p| p.iter().any(|&c| c == b'*' || c == b'?'));
    exact.sort_unstable();
    let mut found: Vec<Found> = Vec::new();
    for symbol in elf.symbols().chain(elf.dynamic_symbols()) {
        if symbol.kind() != SymbolKind::Text || symbol.size() == 0 || symbol.is_undefined() {
            continue;
        }
        let Ok(name) = symbol.name_bytes() else {
            continue;
        };
        // Versioned dynamic names carry no `@` here; a pattern may.
        if exact.binary_search(&name).is_err() && !globs.iter().any(|p| names::matches(p, name)) {
            continue;
        }
        let start = module.bias.wrapping_add(symbol.address() as usize);
        let range = start..start.wrapping_add(symbol.size() as usize);
        if !found.iter().any(|f| f.range == range) {
            found.push(Found {
                name: String::from_utf8_lossy(name).into_owned(),
                range,
            });
        }
    }
    found
}

/// A file mapped read-only with raw system calls (not the program's
/// mapping, not counted), unmapped when dropped.
struct MappedFile {
    at: *mut libc::c_void,
    len: usize,
}

impl MappedFile {
    fn open(path: &str) -> Option<MappedFile> {
        use std::os::fd::AsRawFd;
        if path.is_empty() {
            return None;
        }
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        let at = crate::syscalls::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        (at != libc::MAP_FAILED).then_some(MappedFile { at, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `at` is a live read-only private mapping of `len` bytes,
        // unmapped only when `self` is dropped (which ends the borrow).
        // A file truncated under us would fault on access; modules being
        // run are not rewritten in place (the loader maps them too).
        unsafe { std::slice::from_raw_parts(self.at.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        crate::syscalls::munmap(self.at, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_finds_the_range_holding_an_address() {
        publish(&[0x1000..0x1040, 0x2000..0x2100, 0x9000..0x9010]);
        assert!(!inside(0xfff));
        assert!(inside(0x1000) && inside(0x103f));
        assert!(!inside(0x1040) && !inside(0x1fff));
        assert!(inside(0x20ff) && !inside(0x2100));
        assert!(inside(0x900f) && !inside(0x9010) && !inside(0xffff_0000));
        // Asked again: the remembered answers are the same.
        assert!(inside(0x1000) && !inside(0x1040) && inside(0x900f) && !inside(0x9010));
        // Published again (a module loaded later): the new list only.
        publish(&[0x1000..0x1040, 0x5000..0x5008]);
        assert!(inside(0x1000) && inside(0x5007) && !inside(0x2000) && !inside(0x9000));
        publish(&[]);
        assert!(!inside(0x1000) && !inside(0x5000));
        assert!(!inside(0) && !inside(usize::MAX));
    }

    #[test]
    fn this_test_binary_names_its_own_function() {
        let modules = rt::__private::stacks::modules::loaded();
        let exe = &modules[0];
        let found = find_in(exe, &[b"*the_wrapper_to_find*".as_slice()]);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = the_wrapper_to_find as *const () as usize;
        assert!(found[0].range.contains(&f), "{found:?} vs {f:#x}");
    }

    #[inline(never)]
    fn the_wrapper_to_find() -> usize {
        std::hint::black_box(7)
    }
}
