//! Sites named at run time.
//!
//! A call site the registered table does not list (the table is stale, or
//! there is none) still gets its real name: a *dynamic* site, created once
//! per call site from the file, line and function the program passed. Their
//! ids count down from 65535 so they never collide with a table's ids, which
//! count up from 0. Storage is a fixed static array — no allocation, so a
//! dynamic site can be made from inside the allocator.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicUsize, Ordering};

use super::str_cell::StrCell;
use super::{SiteInfo, type_name};

/// How many dynamic sites a process can have.
pub const MAX_DYNAMIC_SITES: usize = 4096;

static WARNED_FULL: AtomicBool = AtomicBool::new(false);

struct DynamicSite {
    ready: AtomicBool,
    /// Made before the program registered its table: checked against the
    /// table once it is there (see [`current_id`]).
    provisional: AtomicBool,
    /// The table's id for this site, found by that check (0: none).
    table_id: AtomicU16,
    type_id: AtomicU16,
    line: AtomicU32,
    type_name: StrCell,
    file: StrCell,
    function: StrCell,
}

impl DynamicSite {
    const fn new() -> DynamicSite {
        DynamicSite {
            ready: AtomicBool::new(false),
            provisional: AtomicBool::new(false),
            table_id: AtomicU16::new(0),
            type_id: AtomicU16::new(0),
            line: AtomicU32::new(0),
            type_name: StrCell::new(),
            file: StrCell::new(),
            function: StrCell::new(),
        }
    }
}

static DYNAMIC: [DynamicSite; MAX_DYNAMIC_SITES] =
    [const { DynamicSite::new() }; MAX_DYNAMIC_SITES];
static DYNAMIC_USED: AtomicUsize = AtomicUsize::new(0);

fn slot(id: u16) -> Option<&'static DynamicSite> {
    let index = usize::from(u16::MAX - id);
    if index < DYNAMIC_USED.load(Ordering::Acquire).min(MAX_DYNAMIC_SITES) {
        Some(&DYNAMIC[index])
    } else {
        None
    }
}

/// True for an id handed out by [`dynamic_site_typed`].
pub(crate) fn is_dynamic(id: u16) -> bool {
    slot(id).is_some()
}

/// Names a dynamic site.
pub(super) fn describe(id: u16) -> Option<SiteInfo> {
    let d = slot(id)?;
    if !d.ready.load(Ordering::Acquire) {
        return None;
    }
    let type_id = d.type_id.load(Ordering::Relaxed);
    let own_type = d.type_name.get();
    Some(SiteInfo {
        id,
        type_id,
        type_name: if own_type.is_empty() {
            type_name(type_id)
        } else {
            own_type
        },
        file: d.file.get(),
        line: d.line.load(Ordering::Relaxed),
        function: d.function.get(),
        dynamic: true,
    })
}

/// The dynamic site already made for this call site, if any.
pub(crate) fn existing_dynamic(file: &str, line: u32, function: &str) -> Option<u16> {
    let used = DYNAMIC_USED.load(Ordering::Acquire).min(MAX_DYNAMIC_SITES);
    DYNAMIC[..used]
        .iter()
        .position(|d| {
            d.ready.load(Ordering::Acquire)
                && d.line.load(Ordering::Relaxed) == line
                && d.file.get() == file
                && d.function.get() == function
        })
        .map(|index| u16::MAX - index as u16)
}

/// Creates (or finds) a site named at run time and returns its id; 0 when
/// the dynamic capacity is exhausted (with a one-time warning). `type_name`
/// is the site's own type name (Rust categories the table may not list), or
/// empty to name the type from `type_id`.
pub(crate) fn dynamic_site_typed(
    type_id: u16,
    type_name: &'static str,
    file: &'static str,
    line: u32,
    function: &'static str,
) -> u16 {
    let used = DYNAMIC_USED.load(Ordering::Acquire).min(MAX_DYNAMIC_SITES);
    for (index, d) in DYNAMIC[..used].iter().enumerate() {
        if d.ready.load(Ordering::Acquire)
            && d.line.load(Ordering::Relaxed) == line
            && d.file.get() == file
            && d.function.get() == function
        {
            return u16::MAX - index as u16;
        }
    }
    let index = DYNAMIC_USED.fetch_add(1, Ordering::AcqRel);
    if index >= MAX_DYNAMIC_SITES {
        crate::diag::warn_once(
            &WARNED_FULL,
            format_args!(
                "more than {MAX_DYNAMIC_SITES} sites missing from the site table; further ones \
                 are charged to site 0. Regenerate the table. (warned once)"
            ),
        );
        return 0;
    }
    let d = &DYNAMIC[index];
    d.type_id.store(type_id, Ordering::Relaxed);
    d.line.store(line, Ordering::Relaxed);
    d.type_name.set(type_name);
    d.file.set(file);
    d.function.set(function);
    d.provisional
        .store(super::generation() == 0, Ordering::Relaxed);
    d.ready.store(true, Ordering::Release);
    u16::MAX - index as u16
}

/// The id to charge for an id a call site cached earlier. A site named at
/// run time before the program registered its table (a constructor or C++
/// static initialiser that allocates first) is looked up in the table once
/// the table is there, and from then on its table id is used; every other
/// id is returned unchanged. One comparison for a table id.
#[inline]
pub fn current_id(id: u16) -> u16 {
    let Some(d) = slot(id) else {
        return id;
    };
    match d.table_id.load(Ordering::Relaxed) {
        0 if d.provisional.load(Ordering::Relaxed) && super::generation() != 0 => {
            d.provisional.store(false, Ordering::Relaxed);
            let found = super::lookup::find(
                d.file.get(),
                d.line.load(Ordering::Relaxed),
                d.function.get(),
                Some(d.type_id.load(Ordering::Relaxed)),
            )
            .map_or(0, |s| s.id);
            d.table_id.store(found, Ordering::Relaxed);
            if found == 0 { id } else { found }
        }
        0 => id,
        table_id => table_id,
    }
}
