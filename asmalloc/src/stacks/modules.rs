//! The modules (executable, shared libraries, vDSO) loaded in the process,
//! as `dl_iterate_phdr` describes them: where each is mapped, its load
//! bias, and where its `.eh_frame_hdr` lies in memory.
//!
//! Read once, when wrappers are set up (the library constructor, with the
//! reentrancy guard held), so what it allocates is the library's own.

use std::ffi::{CStr, c_int, c_void};
use std::ops::Range;

/// One loaded module.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    /// Its file ("" for the vDSO and other modules without one).
    pub path: String,
    /// Load bias: the process address of the file's address 0.
    pub bias: usize,
    /// From the lowest to the highest mapped byte of its PT_LOAD segments.
    pub mapped: Range<usize>,
    /// Its PT_LOAD segments' file-backed bytes, in the file's numbering
    /// (`p_vaddr .. p_vaddr + p_filesz`).
    pub loads: Vec<Range<usize>>,
    /// Its `.eh_frame_hdr` (PT_GNU_EH_FRAME), in the file's numbering.
    pub eh_frame_hdr: Option<Range<usize>>,
}

/// Every module loaded now.
pub fn loaded() -> Vec<LoadedModule> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for this call and our
        // own `data`, a live `Vec<LoadedModule>`.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<LoadedModule>>()) };
        let bias = info.dlpi_addr as usize;
        let name = if info.dlpi_name.is_null() {
            ""
        } else {
            // SAFETY: a NUL-terminated path owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }
                .to_str()
                .unwrap_or("")
        };
        let mut module = LoadedModule {
            path: name.to_string(),
            bias,
            mapped: 0..0,
            loads: Vec::new(),
            eh_frame_hdr: None,
        };
        let (mut low, mut high) = (usize::MAX, 0);
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: dlpi_phdr holds dlpi_phnum program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            let vaddr = ph.p_vaddr as usize;
            match ph.p_type {
                libc::PT_LOAD => {
                    let start = bias.wrapping_add(vaddr);
                    low = low.min(start);
                    high = high.max(start.wrapping_add(ph.p_memsz as usize));
                    module.loads.push(vaddr..vaddr + ph.p_filesz as usize);
                }
                libc::PT_GNU_EH_FRAME => {
                    module.eh_frame_hdr = Some(vaddr..vaddr + ph.p_memsz as usize);
                }
                _ => {}
            }
        }
        if low < high {
            module.mapped = low..high;
            out.push(module);
        }
        0
    }
    let mut out: Vec<LoadedModule> = Vec::new();
    // SAFETY: `visit` matches the callback type and only reads what it is
    // given; `out` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut out).cast()) };
    // The executable comes first, with an empty name.
    if let Some(exe) = out.first_mut().filter(|m| m.path.is_empty())
        && let Ok(p) = std::fs::read_link("/proc/self/exe")
    {
        exe.path = p.display().to_string();
    }
    out
}

/// How many times modules were loaded and unloaded in the process so far
/// (the loader's `dlpi_adds + dlpi_subs`): changes exactly when the list
/// [`loaded`] gives changes. Cheap: the loader's lock and one callback.
pub fn generation() -> u64 {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        size: usize,
        data: *mut c_void,
    ) -> c_int {
        // The counters exist in every glibc this library runs on; the size
        // says whether the loader filled them.
        let needed = std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs) + 8;
        if size >= needed {
            // SAFETY: a valid info for this call (with the counters, by
            // its size) and our own `data`, a live u64.
            let (info, out) = unsafe { (&*info, &mut *data.cast::<u64>()) };
            *out = info.dlpi_adds.wrapping_add(info.dlpi_subs);
        }
        1 // one module is enough: the counters are the process's
    }
    let mut generation: u64 = 0;
    // SAFETY: `first` matches the callback type and writes only `generation`,
    // which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut generation).cast()) };
    generation
}

/// The bytes `range` (file numbering) of a loaded module, in memory.
/// `None` unless they lie inside one of its file-backed PT_LOAD segments
/// (which stay mapped while the module is loaded).
pub fn mapped_bytes(module: &LoadedModule, range: Range<usize>) -> Option<&'static [u8]> {
    if range.start > range.end
        || !module
            .loads
            .iter()
            .any(|l| l.start <= range.start && range.end <= l.end)
    {
        return None;
    }
    let start = module.bias.wrapping_add(range.start);
    // SAFETY: the range lies inside a file-backed PT_LOAD segment of a
    // module the loader has mapped (readable: every loaded segment of a
    // module holding unwind tables is). The slice is 'static for the
    // modules loaded at start-up, which stay; a module found loaded later
    // may be unloaded, and its bytes are copied at once (the unwinder's
    // `rebuild`) or read only while its caller runs.
    Some(unsafe { std::slice::from_raw_parts(start as *const u8, range.end - range.start) })
}

/// The end (file numbering) of the file-backed PT_LOAD segment holding
/// `at`.
pub fn segment_end(module: &LoadedModule, at: usize) -> Option<usize> {
    module.loads.iter().find(|l| l.contains(&at)).map(|l| l.end)
}
