//! Caller sites: an allocation-family call that no table site names is
//! charged to the address it was called from.
//!
//! A program that was never instrumented (no table, no header, no API call)
//! would otherwise charge everything to site 0. The LD_PRELOAD library reads
//! the return address of each interposed call (the instruction after the
//! `call malloc`) and asks [`site_of`] for its site: the first allocation
//! from an address gives it the next free id, every later one finds it in a
//! shared open-addressed table. Lookups take no lock, make no system call
//! and never allocate; only a new address writes the table (a
//! compare-and-swap). The table is read-mostly, so its hot entries stay in
//! every core's cache: a per-thread cache in front of it would save
//! nothing.
//!
//! There are at most [`MAX_CALLER_SITES`] caller sites; calls from further
//! addresses are charged to one site, [`OTHER_CALLERS`], which is counted
//! and named like any other. Ids are handed out downwards from just below
//! the dynamic sites' range, so they never meet a table's ids.
//!
//! Names are found only when a report, the monitor or a callback asks
//! ([`describe`]): the library registers a *namer* ([`set_namer`]) that turns
//! an address into a function, file and line (symbol tables and debug
//! information), off the allocation path; the answer is kept.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicUsize, Ordering};

use super::SiteInfo;
use super::dynamic::MAX_DYNAMIC_SITES;
use super::str_cell::StrCell;

/// How many distinct calling addresses get a site of their own.
pub const MAX_CALLER_SITES: usize = 4096;

/// The first (highest) caller-site id: just below the dynamic sites.
pub const FIRST_CALLER_SITE: u16 = (u16::MAX as usize - MAX_DYNAMIC_SITES) as u16;

/// The site of every call from an address beyond the first
/// [`MAX_CALLER_SITES`].
pub const OTHER_CALLERS: u16 = FIRST_CALLER_SITE - MAX_CALLER_SITES as u16;

/// Open-addressing slots: twice the sites, so probe runs stay short.
const SLOTS: usize = 2 * MAX_CALLER_SITES;
const MASK: usize = SLOTS - 1;
const _: () = assert!(SLOTS.is_power_of_two());

/// `KEYS[i]` is a calling address (0: empty); `IDS[i]` its site, written
/// before the key is published.
static KEYS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static IDS: [AtomicU16; SLOTS] = [const { AtomicU16::new(0) }; SLOTS];
/// Sites handed out.
static USED: AtomicUsize = AtomicUsize::new(0);

/// Per site (index = `FIRST_CALLER_SITE - id`): its address and name.
struct CallerSite {
    addr: AtomicUsize,
    named: AtomicU32,
    line: AtomicU32,
    file: StrCell,
    function: StrCell,
}

const NOT_NAMED: u32 = 0;
const NAMING: u32 = 1;
const NAMED: u32 = 2;

static SITES: [CallerSite; MAX_CALLER_SITES] = [const {
    CallerSite {
        addr: AtomicUsize::new(0),
        named: AtomicU32::new(NOT_NAMED),
        line: AtomicU32::new(0),
        file: StrCell::new(),
        function: StrCell::new(),
    }
}; MAX_CALLER_SITES];

#[inline(always)]
fn hash(addr: usize) -> usize {
    // Fibonacci hashing: code addresses differ in their low and middle bits.
    ((addr as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & MASK
}

/// The site of calls from `addr` if it sits in its first-choice slot (most
/// do: the table is kept at most half full), else `None` — then ask
/// [`site_of`]. A few instructions and no call, for the allocation path's
/// common case.
#[inline(always)]
pub fn site_of_at_first_probe(addr: usize) -> Option<u16> {
    let i = hash(addr);
    (KEYS[i].load(Ordering::Acquire) == addr).then(|| IDS[i].load(Ordering::Relaxed))
}

/// The site of calls from `addr` (a return address, non-zero).
#[inline]
pub fn site_of(addr: usize) -> u16 {
    let mut i = hash(addr);
    for _ in 0..SLOTS {
        match KEYS[i].load(Ordering::Acquire) {
            k if k == addr => return IDS[i].load(Ordering::Relaxed),
            0 => return insert(addr, i),
            _ => i = (i + 1) & MASK,
        }
    }
    OTHER_CALLERS
}

/// A new address: claim the empty slot `i` (or the next one) and give it
/// the next id.
#[cold]
#[inline(never)]
fn insert(addr: usize, mut i: usize) -> u16 {
    if USED.load(Ordering::Relaxed) >= MAX_CALLER_SITES {
        return OTHER_CALLERS;
    }
    for _ in 0..SLOTS {
        match KEYS[i].compare_exchange(0, usize::MAX, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                // Reserved (usize::MAX is no code address): give it an id,
                // then publish the key.
                let index = USED.fetch_add(1, Ordering::Relaxed);
                let id = if index < MAX_CALLER_SITES {
                    SITES[index].addr.store(addr, Ordering::Relaxed);
                    FIRST_CALLER_SITE - index as u16
                } else {
                    OTHER_CALLERS
                };
                IDS[i].store(id, Ordering::Relaxed);
                KEYS[i].store(addr, Ordering::Release);
                return id;
            }
            Err(k) if k == addr => return IDS[i].load(Ordering::Relaxed),
            Err(usize::MAX) => {
                // Another thread is inserting here: wait for its key.
                while KEYS[i].load(Ordering::Acquire) == usize::MAX {
                    std::hint::spin_loop();
                }
                if KEYS[i].load(Ordering::Acquire) == addr {
                    return IDS[i].load(Ordering::Relaxed);
                }
                i = (i + 1) & MASK;
            }
            Err(_) => i = (i + 1) & MASK,
        }
    }
    OTHER_CALLERS
}

/// True for a caller-site id (including [`OTHER_CALLERS`]).
pub fn is_caller_site(id: u16) -> bool {
    (OTHER_CALLERS..=FIRST_CALLER_SITE).contains(&id)
}

/// The calling address of a caller site (`None` for other ids and for
/// [`OTHER_CALLERS`]).
pub fn address_of(id: u16) -> Option<usize> {
    if !is_caller_site(id) || id == OTHER_CALLERS {
        return None;
    }
    let index = usize::from(FIRST_CALLER_SITE - id);
    (index < USED.load(Ordering::Acquire).min(MAX_CALLER_SITES))
        .then(|| SITES[index].addr.load(Ordering::Relaxed))
        .filter(|&a| a != 0)
}

/// What a namer says of an address: the function (or `module+0xOFFSET`
/// when nothing better is known), and the file and line when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerName {
    /// The function making the call, or `module+0xOFFSET`.
    pub function: String,
    /// Its source file ("" when unknown).
    pub file: String,
    /// Its line (0 when unknown).
    pub line: u32,
}

/// Turns a calling address into a name; registered once by the library
/// that records callers.
pub type Namer = fn(usize) -> CallerName;

static NAMER: OnceLock<Namer> = OnceLock::new();

/// Registers the namer (the first registration wins).
pub fn set_namer(namer: Namer) {
    let _ = NAMER.set(namer);
}

/// Names a return address with the registered namer (its hexadecimal
/// value when none is registered).
pub fn name_with_namer(addr: usize) -> CallerName {
    match NAMER.get() {
        Some(namer) => namer(addr),
        None => CallerName {
            function: format!("{addr:#x}"),
            ..CallerName::default()
        },
    }
}

/// Names a caller site, asking the namer the first time (off the
/// allocation path: reports, the monitor, callbacks).
pub(super) fn describe(id: u16) -> Option<SiteInfo> {
    if !is_caller_site(id) {
        return None;
    }
    if id == OTHER_CALLERS {
        return (USED.load(Ordering::Relaxed) > MAX_CALLER_SITES).then_some(SiteInfo {
            id,
            type_id: 0,
            type_name: "",
            file: "",
            line: 0,
            function: "(other callers)",
            dynamic: true,
        });
    }
    let addr = address_of(id)?;
    let site = &SITES[usize::from(FIRST_CALLER_SITE - id)];
    if site.named.load(Ordering::Acquire) != NAMED
        && site
            .named
            .compare_exchange(NOT_NAMED, NAMING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        let name = name_with_namer(addr);
        // Names live as long as the process (at most MAX_CALLER_SITES).
        site.function.set(String::leak(name.function));
        site.file.set(String::leak(name.file));
        site.line.store(name.line, Ordering::Relaxed);
        site.named.store(NAMED, Ordering::Release);
    }
    let named = site.named.load(Ordering::Acquire) == NAMED;
    Some(SiteInfo {
        id,
        type_id: 0,
        type_name: "",
        file: if named { site.file.get() } else { "" },
        line: if named {
            site.line.load(Ordering::Relaxed)
        } else {
            0
        },
        function: if named {
            site.function.get()
        } else {
            "(being named)"
        },
        dynamic: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_keeps_its_site_and_others_get_their_own() {
        let a = site_of(0x5555_0000_1234);
        let b = site_of(0x5555_0000_1240);
        assert!(is_caller_site(a) && is_caller_site(b) && a != b);
        assert_eq!(site_of(0x5555_0000_1234), a);
        assert_eq!(address_of(a), Some(0x5555_0000_1234));
        assert!(OTHER_CALLERS < a && a <= FIRST_CALLER_SITE);
    }

    #[test]
    fn threads_racing_on_one_address_agree() {
        let ids: Vec<u16> = (0..8)
            .map(|_| std::thread::spawn(|| site_of(0x7777_0000_0042)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
    }
}
