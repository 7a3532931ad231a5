//! Finding the caller of a wrapper: unwinding a few frames with `framehop`.
//!
//! The unwinder is built once, with the wrappers, from the loaded modules'
//! `.eh_frame_hdr` and `.eh_frame` *in memory* (where the loader mapped
//! them: nothing is copied). It is read-only afterwards, so every thread
//! uses it without a lock. `framehop` keeps the unwind rule of each
//! address in a cache (a fixed table) and, with the
//! `MustNotAllocateDuringUnwind` policy, evaluates DWARF CFI in
//! preallocated storage: unwinding never allocates. Caches are taken from
//! a small lock-free pool (a thread swaps one out and back in); a thread
//! that finds the pool empty makes one while the reentrancy guard is held
//! (the library's memory, at most [`POOL`] of them for the process).
//!
//! The walk starts in this module (registers read by a few instructions
//! of inline assembly), steps through the library's own frames until the
//! frame whose return address is the allocation call's, then through as
//! many wrapper frames as there are. Stack reads are bounded by the
//! current stack pointer and the top of the thread's stack (asked of
//! `pthread_getattr_np` once per thread), so a bad unwind rule can end a
//! walk early but never read outside the stack.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder,
};

use super::modules::{self, LoadedModule};

type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;
type Unwind = UnwinderX86_64<&'static [u8], MustNotAllocateDuringUnwind>;

static UNWINDER: OnceLock<Unwind> = OnceLock::new();

/// Unwinder caches for the whole process.
const POOL: usize = 16;
static CACHES: [AtomicPtr<Cache>; POOL] = [const { AtomicPtr::new(std::ptr::null_mut()) }; POOL];
static MADE: AtomicUsize = AtomicUsize::new(0);

/// Frames of the library's own between the register capture and the
/// allocation call's frame (two or three in practice).
const MAX_OWN_FRAMES: usize = 12;
/// Wrapper frames followed at most (a chain longer than that is charged
/// to the last caller found).
pub(crate) const MAX_WRAPPER_DEPTH: usize = 16;

thread_local! {
    /// The top (highest address) of this thread's stack; 0 until asked.
    static STACK_TOP: Cell<usize> = const { Cell::new(0) };
}

/// Builds the unwinder over `modules` (once).
pub(crate) fn init(modules: &[LoadedModule]) {
    UNWINDER.get_or_init(|| {
        let mut unwinder = Unwind::new();
        for m in modules {
            if let Some(module) = framehop_module(m) {
                unwinder.add_module(module);
            }
        }
        unwinder
    });
}

/// A module for framehop from its in-memory `.eh_frame_hdr` and
/// `.eh_frame` (`None` without them).
fn framehop_module(m: &LoadedModule) -> Option<Module<&'static [u8]>> {
    let hdr_range = m.eh_frame_hdr.clone()?;
    let hdr = modules::mapped_bytes(m, hdr_range.clone())?;
    let eh_frame_at = eh_frame_address(hdr, hdr_range.start)?;
    let end = modules::segment_end(m, eh_frame_at)?;
    let eh_frame = modules::mapped_bytes(m, eh_frame_at..end)?;
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        eh_frame_svma: Some(eh_frame_at as u64..end as u64),
        eh_frame: Some(eh_frame),
        eh_frame_hdr_svma: Some(hdr_range.start as u64..hdr_range.end as u64),
        eh_frame_hdr: Some(hdr),
        ..ExplicitModuleSectionInfo::default()
    };
    Some(Module::new(
        m.path.clone(),
        m.mapped.start as u64..m.mapped.end as u64,
        m.bias as u64,
        info,
    ))
}

/// Where `.eh_frame` starts (file numbering), from the `eh_frame_ptr`
/// field of the `.eh_frame_hdr` at `hdr_at`.
fn eh_frame_address(hdr: &[u8], hdr_at: usize) -> Option<usize> {
    let (&version, &encoding) = (hdr.first()?, hdr.get(1)?);
    if version != 1 {
        return None;
    }
    let field = hdr.get(4..)?;
    let value: i64 = match encoding & 0x0f {
        0x03 => i64::from(u32::from_le_bytes(field.get(..4)?.try_into().ok()?)),
        0x0b => i64::from(i32::from_le_bytes(field.get(..4)?.try_into().ok()?)),
        0x00 | 0x04 | 0x0c => i64::from_le_bytes(field.get(..8)?.try_into().ok()?),
        _ => return None,
    };
    let base = match encoding & 0x70 {
        0x00 => 0,
        0x10 => hdr_at as i64 + 4, // pc-relative: from the field itself
        0x30 => hdr_at as i64,     // relative to .eh_frame_hdr
        _ => return None,
    };
    usize::try_from(base.checked_add(value)?).ok()
}

/// A cache from the pool, or a new one (guard held: the library's
/// memory), or `None` when [`POOL`] are all in use.
fn take_cache() -> Option<Box<Cache>> {
    for slot in &CACHES {
        let p = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: every pointer in the pool came from Box::into_raw in
            // `give_back`, and the swap made this thread its only holder.
            return Some(unsafe { Box::from_raw(p) });
        }
    }
    if MADE.fetch_add(1, Ordering::Relaxed) < POOL {
        let _guard = crate::guard::Guard::enter();
        Some(Box::new(Cache::new_in()))
    } else {
        MADE.fetch_sub(1, Ordering::Relaxed);
        None
    }
}

fn give_back(cache: Box<Cache>) {
    let p = Box::into_raw(cache);
    for slot in &CACHES {
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                p,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return;
        }
    }
    // Unreachable: at most POOL caches exist and each has a slot. Keep it
    // rather than free on the allocation path.
}

/// The top of the calling thread's stack (asked once per thread).
fn stack_top() -> usize {
    let top = STACK_TOP.get();
    if top != 0 {
        return top;
    }
    let top = {
        let _guard = crate::guard::Guard::enter();
        ask_stack_top()
    };
    STACK_TOP.set(top);
    top
}

fn ask_stack_top() -> usize {
    // SAFETY: a zeroed pthread_attr_t is what pthread_getattr_np fills
    // (it initialises the attribute itself); it is destroyed only after a
    // successful fill.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return usize::MAX;
        }
        let mut base: *mut libc::c_void = std::ptr::null_mut();
        let mut size: usize = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut base, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 {
            return usize::MAX;
        }
        (base as usize).saturating_add(size)
    }
}

/// The caller of the outermost wrapper around the allocation call whose
/// return address is `ret` (inside a wrapper); `ret` itself if the frames
/// cannot be followed.
#[inline(never)]
#[cold]
pub(crate) fn outer_caller(ret: usize) -> usize {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers; touches no memory and no flags.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let Some(unwinder) = UNWINDER.get() else {
        return ret;
    };
    let Some(mut cache) = take_cache() else {
        return ret;
    };
    let top = stack_top() as u64;
    let mut read_stack = |addr: u64| -> Result<u64, ()> {
        if addr < sp || addr.checked_add(8).is_none_or(|end| end > top) || addr % 8 != 0 {
            return Err(());
        }
        // SAFETY: `addr` is 8-aligned and inside the live part of this
        // thread's stack (between our stack pointer and its top).
        Ok(unsafe { (addr as *const u64).read() })
    };
    let found = walk(unwinder, &mut cache, ip, sp, bp, ret, &mut read_stack);
    give_back(cache);
    found.unwrap_or(ret)
}

fn walk(
    unwinder: &Unwind,
    cache: &mut Cache,
    ip: u64,
    sp: u64,
    bp: u64,
    ret: usize,
    read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
) -> Option<usize> {
    let mut regs = UnwindRegsX86_64::new(ip, sp, bp);
    let mut frame = FrameAddress::from_instruction_pointer(ip);
    // Our own frames, up to the one the program's call returns to.
    let mut own = 0;
    loop {
        let next = unwinder
            .unwind_frame(frame, &mut regs, cache, read_stack)
            .ok()??;
        frame = FrameAddress::from_return_address(next)?;
        if next as usize == ret {
            break;
        }
        own += 1;
        if own > MAX_OWN_FRAMES {
            return None;
        }
    }
    // Wrapper frames: each step gives the caller of one.
    let mut caller = ret;
    for _ in 0..MAX_WRAPPER_DEPTH {
        let Ok(Some(next)) = unwinder.unwind_frame(frame, &mut regs, cache, read_stack) else {
            break;
        };
        caller = next as usize;
        if !super::ranges::inside(caller) {
            break;
        }
        let Some(f) = FrameAddress::from_return_address(next) else {
            break;
        };
        frame = f;
    }
    Some(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eh_frame_ptr_encodings() {
        // version 1, pcrel|sdata4, -0x100 → 0x2000 + 4 - 0x100.
        let mut hdr = vec![1, 0x1b, 0x03, 0x3b];
        hdr.extend_from_slice(&(-0x100i32).to_le_bytes());
        assert_eq!(eh_frame_address(&hdr, 0x2000), Some(0x2000 + 4 - 0x100));
        hdr[1] = 0x03; // absolute udata4
        hdr[4..8].copy_from_slice(&0x5000u32.to_le_bytes());
        assert_eq!(eh_frame_address(&hdr, 0x2000), Some(0x5000));
        hdr[0] = 2;
        assert_eq!(eh_frame_address(&hdr, 0x2000), None);
    }
}
