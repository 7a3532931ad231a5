//! Naming caller sites: a calling address → function, file and line.
//!
//! Runs only when a report, the monitor or a callback first needs a caller
//! site's name, never on the allocation path, with the reentrancy guard held
//! (what it allocates is the library's). The module that holds the address
//! and its load bias come from `dl_iterate_phdr` (so position-independent
//! executables and shared libraries work alike); the names from the
//! module's DWARF debug information through `addr2line` when it has some,
//! else from its symbol table, else (a stripped module) `module+0xOFFSET`,
//! where OFFSET is the address in the file's own numbering: `addr2line -e
//! MODULE 0xOFFSET` names it later, from an unstripped copy of the module.
//! One `addr2line` loader per module is kept for the process's life.

use std::ffi::{CStr, c_int, c_void};
use std::sync::Mutex;

use crate::engine::OwnMemory;
use crate::site::CallerName;

/// Loaders by module path (`None`: the module could not be read).
static LOADERS: Mutex<Vec<(String, Option<addr2line::Loader>)>> = Mutex::new(Vec::new());

/// How the program's own executable is opened (see `module_of`).
const EXE: &str = "/proc/self/exe";

/// The module containing `addr`: its path and load bias.
fn module_of(addr: usize) -> Option<(String, usize)> {
    struct Search {
        addr: usize,
        found: Option<(String, usize)>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for this call and our
        // own `data`, a live `Search`.
        let (info, search) = unsafe { (&*info, &mut *data.cast::<Search>()) };
        let bias = info.dlpi_addr as usize;
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: dlpi_phdr holds dlpi_phnum program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_LOAD {
                continue;
            }
            let start = bias.wrapping_add(ph.p_vaddr as usize);
            if (start..start.wrapping_add(ph.p_memsz as usize)).contains(&search.addr) {
                let name = if info.dlpi_name.is_null() {
                    ""
                } else {
                    // SAFETY: a NUL-terminated path owned by the loader.
                    unsafe { CStr::from_ptr(info.dlpi_name) }
                        .to_str()
                        .unwrap_or("")
                };
                // The program itself has no name here: its debug
                // information is read through /proc/self/exe, which still
                // opens when the file was replaced or deleted while the
                // program runs (a deploy, a rebuild); its path is read
                // only to name the module.
                let path = if name.is_empty() {
                    EXE.to_string()
                } else {
                    name.to_string()
                };
                search.found = Some((path, bias));
                return 1;
            }
        }
        0
    }
    let mut search = Search { addr, found: None };
    // SAFETY: `visit` matches the callback type and only reads what it is
    // given; `search` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
    search.found
}

/// Names the call whose return address is `ret` (see the module docs).
pub fn name_caller(ret: usize) -> CallerName {
    let _own = OwnMemory::enter();
    // The call instruction is just before the return address.
    let addr = ret.saturating_sub(1);
    let Some((path, bias)) = module_of(addr) else {
        return CallerName {
            function: format!("{ret:#x}"),
            ..CallerName::default()
        };
    };
    let offset = (addr - bias) as u64;
    let shown = if path == EXE {
        std::fs::read_link(EXE).map_or_else(
            |_| EXE.to_string(),
            |p| {
                let p = p.display().to_string();
                p.strip_suffix(" (deleted)")
                    .map_or(p.clone(), str::to_string)
            },
        )
    } else {
        path.clone()
    };
    let module = shown.rsplit('/').next().unwrap_or(&shown).to_string();
    let mut loaders = LOADERS.lock().unwrap_or_else(|e| e.into_inner());
    let index = match loaders.iter().position(|(p, _)| *p == path) {
        Some(i) => i,
        None => {
            loaders.push((path.clone(), addr2line::Loader::new(&path).ok()));
            loaders.len() - 1
        }
    };
    let fallback = || CallerName {
        function: format!("{module}+{offset:#x}"),
        ..CallerName::default()
    };
    let Some(loader) = &loaders[index].1 else {
        return fallback();
    };
    let mut name = CallerName::default();
    if let Ok(Some(location)) = loader.find_location(offset) {
        name.file = location.file.unwrap_or("").to_string();
        name.line = location.line.unwrap_or(0);
    }
    if let Ok(mut frames) = loader.find_frames(offset)
        && let Ok(Some(frame)) = frames.next()
        && let Some(function) = frame.function
        && let Ok(demangled) = function.demangle()
    {
        name.function = demangled.into_owned();
    }
    if name.function.is_empty()
        && let Some(symbol) = loader.find_symbol(offset)
    {
        name.function = addr2line::demangle_auto(symbol.into(), None).into_owned();
    }
    if name.file.is_empty() {
        // No line information: the module says where to look.
        name.file = module.clone();
    }
    if name.function.is_empty() {
        return CallerName {
            line: name.line,
            ..fallback()
        };
    }
    name
}
