//! Site tables: `asm_register_mallocations` (the generated C table),
//! `asm_site_enter` (the call-site header's hook, which resolves a call
//! site against the table once and caches its id), and `asm_wrap_enter` /
//! `asm_wrap_exit` (the generated header's hooks around a call of one of
//! the program's own allocation wrappers: the outermost wrapper call is the
//! site of everything allocated inside it).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicU16, Ordering};

use crate::api;
use crate::guard::Guard;
use crate::syscalls::{errno, set_errno};

/// One entry of the generated C table (`mallocation_t`, 32 bytes on LP64).
#[repr(C)]
struct CMallocation {
    type_id: c_int,
    file: *const c_char,
    line: c_int,
    id: c_int,
    function: *const c_char,
}

const _: () =
    assert!(std::mem::size_of::<CMallocation>() == 32 || cfg!(not(target_pointer_width = "64")));

/// A C string from a table or call site as `&'static str`: the generated
/// code passes string literals. NULL gives `""`; invalid UTF-8 is replaced
/// (and the replacement kept for the process's life).
///
/// # Safety
/// `s` is NULL or a NUL-terminated string that lives as long as the process.
unsafe fn static_str(s: *const c_char) -> &'static str {
    if s.is_null() {
        return "";
    }
    // SAFETY: NUL-terminated and never freed (caller's contract).
    let bytes: &'static [u8] = unsafe { CStr::from_ptr(s) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            let _guard = Guard::enter();
            String::leak(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// `int asm_register_mallocations(const char *const *type_names, size_t
/// num_types, const mallocation_t *table, size_t num_mallocations)`.
///
/// # Safety
/// `type_names` holds `num_types` string pointers and `table` holds
/// `num_mallocations` entries; all strings live as long as the process.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_register_mallocations(
    type_names: *const *const c_char,
    num_types: usize,
    table: *const c_void,
    num_mallocations: usize,
) -> c_int {
    let saved = errno();
    let result = if type_names.is_null() || table.is_null() {
        Err("asm_register_mallocations: NULL type names or table".to_string())
    } else {
        let _guard = Guard::enter();
        let table = table.cast::<CMallocation>();
        // SAFETY: the arrays have the lengths the caller passed.
        let (types, entries) = unsafe {
            let types: Vec<&'static str> = (0..num_types)
                .map(|i| static_str(*type_names.add(i)))
                .collect();
            let entries: Vec<api::Entry> = (0..num_mallocations)
                .map(|i| {
                    let e = &*table.add(i);
                    api::Entry {
                        type_id: i64::from(e.type_id),
                        file: static_str(e.file),
                        line: i64::from(e.line),
                        id: i64::from(e.id),
                        function: static_str(e.function),
                    }
                })
                .collect();
            (types, entries)
        };
        api::register(types, entries)
    };
    set_errno(saved);
    match result {
        Ok(()) => 0,
        Err(text) => {
            rt::warn(format_args!("{text}"));
            -1
        }
    }
}

/// `void asm_site_enter(uint16_t *cache, uint16_t type, const char *file,
/// int line, const char *function)`: the call-site header's hook.
///
/// # Safety
/// `cache` is NULL or a `uint16_t` only ever accessed through this function;
/// `file` and `function` are NULL or string literals.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_site_enter(
    cache: *mut u16,
    type_id: u16,
    file: *const c_char,
    line: c_int,
    function: *const c_char,
) {
    // Inside a wrapper call the wrapper's call site is charged: the call
    // sites in its body set nothing (one load of the thread's state).
    if rt::__private::engine::in_wrapper() {
        return;
    }
    let saved = errno();
    // SAFETY: the caller's contract, passed on.
    let id = unsafe { cached_site(cache, type_id, file, line, function) };
    rt::__private::engine::set_next_site(type_id, id);
    set_errno(saved);
}

/// The id of a call site: its cache, else resolved against the table (and
/// cached).
///
/// # Safety
/// As for [`asm_site_enter`].
unsafe fn cached_site(
    cache: *mut u16,
    type_id: u16,
    file: *const c_char,
    line: c_int,
    function: *const c_char,
) -> u16 {
    let cache = (!cache.is_null()).then(|| {
        // SAFETY: a static uint16_t of the call site, aligned, accessed
        // only atomically here (several threads may pass the same one).
        unsafe { AtomicU16::from_ptr(cache) }
    });
    let mut id = cache.map_or(0, |c| c.load(Ordering::Relaxed));
    if id != 0 {
        // A site cached before the table was registered now gets its id.
        let now = rt::__private::site::current_id(id);
        if now != id {
            if let Some(c) = cache {
                c.store(now, Ordering::Relaxed);
            }
            id = now;
        }
    }
    if id == 0 {
        // SAFETY: string literals (caller's contract).
        let (file, function) = unsafe { (static_str(file), static_str(function)) };
        id = api::resolve_site(type_id, file, u32::try_from(line).unwrap_or(0), function);
        if let Some(c) = cache {
            c.store(id, Ordering::Relaxed);
        }
    }
    id
}

/// `int asm_wrap_enter(uint16_t *cache, uint16_t type, const char *file,
/// int line, const char *function, void *frame)`: a call of one of the
/// program's allocation wrappers begins (the generated sites header calls
/// it; `frame` is `__builtin_frame_address(0)` of the calling function).
/// Unless the call is nested in another wrapper call, every allocation of
/// this thread is charged to this call site until `asm_wrap_exit(1)`.
/// Returns 1 when it opened the scope, 0 when it was nested.
///
/// # Safety
/// As for [`asm_site_enter`].
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_wrap_enter(
    cache: *mut u16,
    type_id: u16,
    file: *const c_char,
    line: c_int,
    function: *const c_char,
    frame: *const c_void,
) -> c_int {
    let frame = frame as usize;
    if rt::__private::engine::wrapper_nested(frame) {
        return 0;
    }
    let saved = errno();
    // SAFETY: the caller's contract, passed on.
    let id = unsafe { cached_site(cache, type_id, file, line, function) };
    let opened = rt::__private::engine::wrapper_enter(id, type_id, frame);
    set_errno(saved);
    c_int::from(opened)
}

/// `void asm_wrap_exit(int opened)`: the wrapper call whose
/// `asm_wrap_enter` returned `opened` has returned; 1 restores the sites of
/// before it.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn asm_wrap_exit(opened: c_int) {
    rt::__private::engine::wrapper_exit(opened != 0);
}
