//! The original ASMalloc API: `asm_hook`, `asm_cmd` (features,
//! thresholds, callback, print stats), `asm_mallocation_set` /
//! `asm_mallocation_get`, `get_vm_stats`, `log_vm_stats`, `vm_stats_desc`.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::api;
use crate::guard::Guard;
use crate::syscalls::{errno, set_errno};

/// `asm_stats_t`.
#[repr(C)]
struct AsmStats {
    mem_count: usize,
    net_mmaps: usize,
    net_shm: usize,
}

/// `vm_stats_desc_t`.
#[repr(C)]
pub struct VmStatsDesc {
    name: *const c_char,
    offset: usize,
}

// SAFETY: the descriptions are immutable after compilation and point only
// at string literals, so sharing them between threads is sound.
unsafe impl Sync for VmStatsDesc {}

/// `vm_stats_t`.
#[repr(C)]
struct VmStatsC {
    desc: *const VmStatsDesc,
    values: [u64; 12],
}

/// A C-visible static the library writes and hands out pointers to (as the
/// original did). Writers take SNAPSHOT_WRITE; the program reads through
/// the pointer it was given, as it did with the original.
struct CStatic<T>(UnsafeCell<T>);

// SAFETY: only written through `get()` by the API functions below, each
// holding SNAPSHOT_WRITE, so Rust never writes it from two threads at once;
// readers are C programs that got the pointer from asm_hook/log_vm_stats,
// the original's contract.
unsafe impl<T> Sync for CStatic<T> {}

impl<T> CStatic<T> {
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// Serialises writers of ASM_STATS and VM_STATS.
/// A yielding spin lock rather than a `Mutex`: the fork handlers take it
/// before `fork` and release it on both sides (`lock_snapshots`,
/// `unlock_snapshots`), so a child never inherits it held by a thread that
/// does not exist there.
static SNAPSHOT_WRITE: AtomicBool = AtomicBool::new(false);

/// Held while a C-visible snapshot is written; released on drop.
struct SnapshotWrite;

impl SnapshotWrite {
    fn lock() -> SnapshotWrite {
        lock_snapshots();
        SnapshotWrite
    }
}

impl Drop for SnapshotWrite {
    fn drop(&mut self) {
        unlock_snapshots();
    }
}

/// Takes the lock on the C-visible snapshots (also the fork prepare
/// handler's first step).
pub(super) fn lock_snapshots() {
    while SNAPSHOT_WRITE
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

/// Releases it (after `fork`, in the parent and in the child).
pub(super) fn unlock_snapshots() {
    SNAPSHOT_WRITE.store(false, Ordering::Release);
}

static ASM_STATS: CStatic<AsmStats> = CStatic(UnsafeCell::new(AsmStats {
    mem_count: 0,
    net_mmaps: 0,
    net_shm: 0,
}));
static VM_STATS: CStatic<VmStatsC> = CStatic(UnsafeCell::new(VmStatsC {
    desc: std::ptr::null(),
    values: [u64::MAX; 12],
}));

const fn desc(name: &'static CStr, index: usize) -> VmStatsDesc {
    VmStatsDesc {
        name: name.as_ptr(),
        offset: std::mem::offset_of!(VmStatsC, values) + index * 8,
    }
}

/// `vm_stats_desc[]`: VM_NUM_KEYS entries and a `{NULL, 0}` terminator.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[allow(non_upper_case_globals)]
pub static vm_stats_desc: [VmStatsDesc; 13] = [
    desc(c"VmPeak", 0),
    desc(c"VmSize", 1),
    desc(c"VmLck", 2),
    desc(c"VmPin", 3),
    desc(c"VmHWM", 4),
    desc(c"VmRSS", 5),
    desc(c"VmData", 6),
    desc(c"VmStk", 7),
    desc(c"VmExe", 8),
    desc(c"VmLib", 9),
    desc(c"VmPTE", 10),
    desc(c"VmSwap", 11),
    VmStatsDesc {
        name: std::ptr::null(),
        offset: 0,
    },
];

/// Fills a C `vm_stats_t`.
///
/// # Safety
/// `out` is valid for writing a `vm_stats_t`.
unsafe fn fill_vm(out: *mut VmStatsC, vm: &rt::VmStats) {
    let values = vm.values.map(|v| v.unwrap_or(u64::MAX));
    // SAFETY: the caller guarantees `out` is writable.
    unsafe {
        out.write(VmStatsC {
            desc: vm_stats_desc.as_ptr(),
            values,
        })
    };
}

/// `int asm_hook(void *arg, asm_stats_t **asm_stats, vm_stats_t **vm_stats)`.
///
/// # Safety
/// Each out-pointer is NULL or writable.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_hook(
    _arg: *mut c_void,
    asm_stats: *mut *mut c_void,
    vm_stats: *mut *mut c_void,
) -> c_int {
    let saved = errno();
    let hook = api::hook();
    let stats = ASM_STATS.get();
    // Concurrent asm_hook / log_vm_stats calls write the shared snapshots
    // one at a time (the program reads them as the original let it).
    let _writing = SnapshotWrite::lock();
    // SAFETY: ASM_STATS is our static, written only under SNAPSHOT_WRITE;
    // the out-pointers are NULL or writable (caller's contract).
    unsafe {
        stats.write(AsmStats {
            mem_count: hook.mem_count as usize,
            net_mmaps: hook.net_mmaps as usize,
            net_shm: hook.net_shm as usize,
        });
        if !asm_stats.is_null() {
            asm_stats.write(stats.cast());
        }
        if let Some(vm) = &hook.vm {
            fill_vm(VM_STATS.get(), vm);
            if !vm_stats.is_null() {
                vm_stats.write(VM_STATS.get().cast());
            }
        }
    }
    set_errno(saved);
    0
}

/// What shim.c pulls out of `asm_cmd`'s `va_list`.
#[repr(C)]
#[derive(Default)]
struct CmdArgs {
    features: u64,
    block_size: usize,
    delta_size: usize,
    delta_time: i64,
    callback: usize,
    udata: usize,
}

/// `asm_cmd_t` (include/asmalloc.h); `ASM_CMD_PRINT_STATS` is 3.
const ASM_CMD_SET_FEATURES: c_int = 0;
const ASM_CMD_SET_THRESHOLDS: c_int = 1;
const ASM_CMD_SET_CALLBACK: c_int = 2;

unsafe extern "C" {
    /// shim.c: pulls `asm_cmd`'s arguments out of the `va_list`.
    fn asmalloc_shim_cmd_args(cmd: c_int, args: *mut c_void, out: *mut CmdArgs) -> c_int;
}

/// `int asm_cmd(asm_cmd_t cmd, va_list args)`. A `va_list` parameter is
/// passed as a pointer; shim.c reads it.
///
/// # Safety
/// `args` is a `va_list` holding the arguments `cmd` takes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_cmd(cmd: c_int, args: *mut c_void) -> c_int {
    let saved = errno();
    let mut a = CmdArgs::default();
    // SAFETY: `args` is the caller's va_list, handed on unchanged; `a` is
    // writable.
    if unsafe { asmalloc_shim_cmd_args(cmd, args, &mut a) } != 0 {
        api::unknown_command(cmd);
        return 0;
    }
    match cmd {
        ASM_CMD_SET_FEATURES => rt::set_feature_bits(a.features),
        ASM_CMD_SET_THRESHOLDS => api::set_thresholds(a.block_size, a.delta_size, a.delta_time),
        ASM_CMD_SET_CALLBACK => {
            // The program's function and its user data travel together in
            // one record, published as the engine's one (function, data)
            // pair: a callback firing on another thread meanwhile sees the
            // old pair or the new one, never the new function with the old
            // data. Records are kept (one per ASM_CMD_SET_CALLBACK, the
            // library's own memory): a thread may still be using the old one.
            let _guard = Guard::enter();
            if a.callback == 0 {
                rt::set_callback(None, std::ptr::null_mut());
            } else {
                let record: &'static UserCallback = Box::leak(Box::new(UserCallback {
                    function: a.callback,
                    user_data: a.udata,
                }));
                rt::set_callback(
                    Some(guarded_callback),
                    (record as *const UserCallback).cast_mut().cast(),
                );
            }
        }
        _ => api::print_stats(),
    }
    set_errno(saved);
    0
}

/// The program's callback and its user data, as `asm_cmd` received them
/// (the engine calls `guarded_callback` with a pointer to this record as
/// its user data).
struct UserCallback {
    function: usize,
    user_data: usize,
}

/// Calls the program's callback with the reentrancy guard held: what the
/// callback allocates (printf's buffers, …) is the library's business, so
/// it neither consumes a pending `asm_mallocation_set` site nor shows up
/// in the program's numbers.
extern "C" fn guarded_callback(
    thread_id: u64,
    type_id: u16,
    loc: u16,
    delta: isize,
    total: isize,
    last_time: *const libc::timespec,
    record: *mut c_void,
) {
    // SAFETY: the engine passes back the user data published with this
    // function: a leaked, never-freed `UserCallback` (see asm_cmd).
    let record = unsafe { &*record.cast::<UserCallback>() };
    // SAFETY: a non-zero function the program passed with
    // ASM_CMD_SET_CALLBACK, whose contract is the original callback type.
    let f = unsafe { std::mem::transmute::<usize, rt::Callback>(record.function) };
    let saved = errno();
    let _guard = Guard::enter();
    f(
        thread_id,
        type_id,
        loc,
        delta,
        total,
        last_time,
        record.user_data as *mut c_void,
    );
    set_errno(saved);
}

/// `void asm_mallocation_set(uint16_t type, uint16_t loc, ssize_t delta_size)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn asm_mallocation_set(type_id: u16, loc: u16, delta_size: isize) {
    let saved = errno();
    rt::mallocation_set(type_id, loc, delta_size);
    set_errno(saved);
}

/// `void asm_mallocation_get(uint16_t *type, uint16_t loc, ssize_t *total_size,
/// ssize_t *delta_size, struct timespec *last_time)`.
///
/// # Safety
/// Each out-pointer is NULL or writable.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_mallocation_get(
    type_id: *mut u16,
    loc: u16,
    total_size: *mut isize,
    delta_size: *mut isize,
    last_time: *mut libc::timespec,
) {
    let m = rt::mallocation_get(loc);
    // SAFETY: each pointer is NULL (skipped) or writable (caller's contract).
    unsafe {
        if !type_id.is_null() {
            type_id.write(m.type_id);
        }
        if !total_size.is_null() {
            total_size.write(m.total_size);
        }
        if !delta_size.is_null() {
            delta_size.write(m.delta_size);
        }
        if !last_time.is_null() {
            last_time.write(rt::__private::clock::to_timespec(m.last_time_ns));
        }
    }
}

/// `int get_vm_stats(int pid, vm_stats_t *stats)`.
///
/// # Safety
/// `stats` is NULL or writable.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn get_vm_stats(pid: c_int, stats: *mut c_void) -> c_int {
    let saved = errno();
    let rc = match api::vm_stats_of(pid) {
        Some(vm) if !stats.is_null() => {
            // SAFETY: `stats` is writable (caller's contract).
            unsafe { fill_vm(stats.cast(), &vm) };
            0
        }
        _ => -1,
    };
    set_errno(saved);
    rc
}

/// `vm_stats_t *log_vm_stats(int pid)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn log_vm_stats(pid: c_int) -> *mut c_void {
    let saved = errno();
    let out = match api::vm_stats_of(pid) {
        Some(vm) => {
            api::log_vm_stats(pid, &vm);
            let _writing = SnapshotWrite::lock();
            // SAFETY: VM_STATS is our static, written only under
            // SNAPSHOT_WRITE.
            unsafe { fill_vm(VM_STATS.get(), &vm) };
            VM_STATS.get().cast()
        }
        None => std::ptr::null_mut(),
    };
    set_errno(saved);
    out
}
