//! Wrappers: charging an allocation made inside `xmalloc` (or `g_malloc`,
//! `zmalloc`, `operator new`…) to the code that called the wrapper.
//!
//! A caller site is the return address of the call into `malloc`. When
//! the program allocates through a wrapper, that address is inside the
//! wrapper, and every allocation it makes would share one site. Here the
//! wrappers are named (`ASMALLOC_WRAPPERS`, `asmalloc run --wrapper`, plus
//! a built-in list of popular libraries' wrappers, [`names::BUILTIN`]),
//! their address ranges are found once from the loaded modules' symbol
//! tables ([`ranges`]), and a call whose return address falls in one is
//! charged to the wrapper's caller, found by unwinding the wrapper frames
//! with `framehop` (the runtime's `stacks::unwind`).
//!
//! Only calls through a wrapper pay for the unwind: every other call pays
//! two compares of its return address with the lowest and highest
//! wrapper address. Nothing here allocates or locks on the allocation
//! path. Set-up runs in the library constructor, with the reentrancy
//! guard held, when caller sites are on; modules loaded later with
//! `dlopen` are searched on the monitor's thread at its next sample (the
//! runtime's `stacks::refresh_modules`), and their unwind tables copied.

pub(crate) mod names;
mod ranges;

use rt::__private::stacks::modules;
#[cfg(target_arch = "x86_64")]
use rt::__private::stacks::unwind;

/// The site address for an allocation call returning to `ret`: `ret`,
/// or, when `ret` is inside a wrapper, the address the outermost wrapper
/// returns to.
#[inline(always)]
pub(crate) fn site_address(ret: usize) -> usize {
    if ranges::inside(ret) {
        through_wrapper(ret)
    } else {
        ret
    }
}

/// The walk starts at the wrapper's own frame, from where the interposed
/// function was entered (`entry_frame`); without a record, from here,
/// through the library's frames.
#[inline(always)]
fn through_wrapper(ret: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        match crate::entry_frame::read() {
            (0, _) => unwind::outer_caller(ret, ranges::inside),
            (sp, bp) => unwind::outer_caller_from_entry(ret, sp, bp, ranges::inside),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        ret
    }
}

/// The calling program thread is ending: its unwinder cache is given back.
pub(crate) fn thread_ended() {
    #[cfg(target_arch = "x86_64")]
    unwind::thread_ended();
}

/// Finds the wrappers (`user` patterns, plus the built-in list when
/// `builtin`) in the loaded modules and sets the unwinder up (also for
/// sampled stacks, when they are on). Returns
/// warning lines (a named wrapper found nowhere, too many wrappers).
/// Call once, with the reentrancy guard held.
pub(crate) fn init(user: &[Box<str>], builtin: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if !cfg!(target_arch = "x86_64") {
        if !user.is_empty() {
            warnings.push(
                "ASMALLOC_WRAPPERS: wrappers are followed on x86-64 only; ignoring them"
                    .to_string(),
            );
        }
        return warnings;
    }
    let mut patterns: Vec<&[u8]> = user.iter().map(|s| s.as_bytes()).collect();
    if builtin {
        patterns.extend(names::BUILTIN.iter().map(|s| s.as_bytes()));
    }
    let stacks = rt::__private::stacks::mean() > 0;
    if patterns.is_empty() && !stacks {
        return warnings;
    }
    let loaded = modules::loaded();
    let own_fn = init as *const () as usize;
    let own = loaded
        .iter()
        .find(|m| m.mapped.contains(&own_fn))
        .map_or(0..0, |m| m.mapped.clone());
    #[cfg(target_arch = "x86_64")]
    unwind::init(&loaded, own);
    let patterns: Vec<Box<[u8]>> = patterns.iter().map(|p| Box::from(*p)).collect();
    let found = find_and_publish(&loaded, &patterns, own_fn, &mut warnings);
    for pattern in user {
        if !found
            .iter()
            .any(|f| names::matches(pattern.as_bytes(), f.name.as_bytes()))
        {
            warnings.push(format!(
                "ASMALLOC_WRAPPERS: no function '{pattern}' in the program or its libraries (a stripped program keeps only exported names; a module loaded later is searched at the monitor's next sample); calls from it stay charged to it"
            ));
        }
    }
    let _ = PATTERNS.set(patterns);
    // Modules loaded later (dlopen): searched again on the monitor's thread.
    rt::__private::stacks::watch_modules(Some(modules_changed));
    warnings
}

/// The wrapper patterns in use (set once by [`init`]).
static PATTERNS: std::sync::OnceLock<Vec<Box<[u8]>>> = std::sync::OnceLock::new();

/// Modules were loaded or unloaded: the wrappers of the modules loaded now
/// are found and published again (on the monitor's thread, in the
/// library's own memory).
fn modules_changed(loaded: &[modules::LoadedModule]) {
    let Some(patterns) = PATTERNS.get() else {
        return;
    };
    let mut warnings = Vec::new();
    find_and_publish(loaded, patterns, init as *const () as usize, &mut warnings);
    for w in &warnings {
        rt::warn(format_args!("{w}"));
    }
}

/// Finds the functions matching `patterns` in `loaded` (but this library,
/// which holds `own_fn`), publishes their ranges and returns them.
fn find_and_publish(
    loaded: &[modules::LoadedModule],
    patterns: &[Box<[u8]>],
    own_fn: usize,
    warnings: &mut Vec<String>,
) -> Vec<ranges::Found> {
    let patterns: Vec<&[u8]> = patterns.iter().map(|p| &**p).collect();
    let mut found: Vec<ranges::Found> = Vec::new();
    for module in loaded {
        if module.mapped.contains(&own_fn) {
            continue; // this library: its `malloc` is no wrapper
        }
        found.extend(ranges::find_in(module, &patterns));
    }
    found.sort_by_key(|f| f.range.start);
    // Aliases (two names, one function) and nested symbols: keep disjoint
    // ranges, merged where they overlap.
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for f in &found {
        match merged.last_mut() {
            Some(last) if f.range.start < last.end => last.end = last.end.max(f.range.end),
            _ => merged.push(f.range.clone()),
        }
    }
    if merged.len() > ranges::MAX_RANGES {
        warnings.push(format!(
            "wrappers: {} functions match, only the first {} by address are followed",
            merged.len(),
            ranges::MAX_RANGES
        ));
    }
    ranges::publish(&merged);
    found
}
