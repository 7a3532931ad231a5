//! Finding the caller of a wrapper: unwinding a few frames with `framehop`.
//!
//! The unwinder is built once, with the wrappers, from the loaded modules'
//! `.eh_frame_hdr` and `.eh_frame` *in memory* (where the loader mapped
//! them: nothing is copied). It is read-only afterwards, so every thread
//! uses it without a lock. `framehop` keeps the unwind rule of each
//! address in a cache (a fixed table) and, with the
//! `MustNotAllocateDuringUnwind` policy, evaluates DWARF CFI in
//! preallocated storage: unwinding never allocates. Each thread keeps one
//! cache (no atomic operation per walk): it is made on the thread's first
//! wrapped call, with the reentrancy guard held (the library's memory),
//! and goes back to a lock-free pool when the thread ends, for the next
//! thread to reuse.
//!
//! The walk starts in this module (registers read by a few instructions
//! of inline assembly), steps through the library's own frames until the
//! frame whose return address is the allocation call's, then through as
//! many wrapper frames as there are. Stack reads are bounded by the
//! current stack pointer and the top of the thread's stack (found once per
//! thread in `/proc/self/maps`, see `thread_stack`), so a bad unwind rule can end a
//! walk early but never read outside the stack; running on another stack
//! (a coroutine's, a signal stack), the walk is not tried.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder,
};

use super::modules::{self, LoadedModule};

type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;
type Unwind = UnwinderX86_64<&'static [u8], MustNotAllocateDuringUnwind>;

/// The current unwinder (null before [`init`]). A module loaded later
/// replaces it with a new one ([`rebuild`]); the old one is leaked, never
/// freed, since a walk on another thread may still be using it.
static UNWINDER: AtomicPtr<Unwind> = AtomicPtr::new(std::ptr::null_mut());
/// The modules of the current unwinder: (path, mapped range) and the
/// unwind sections it reads, by module (in place, or a copy).
static KNOWN: std::sync::Mutex<Vec<KnownModule>> = std::sync::Mutex::new(Vec::new());

/// A module the unwinder has, and the sections it was given.
struct KnownModule {
    path: String,
    mapped: std::ops::Range<usize>,
    bias: usize,
    sections: Option<Sections>,
}

/// A module's `.eh_frame_hdr` and `.eh_frame`, with their addresses
/// (file numbering).
#[derive(Clone)]
struct Sections {
    hdr_at: std::ops::Range<usize>,
    hdr: &'static [u8],
    eh_frame_at: std::ops::Range<usize>,
    eh_frame: &'static [u8],
}
/// This library's own code: where a stack capture's frames are skipped.
static OWN: OnceLock<std::ops::Range<usize>> = OnceLock::new();

/// Caches of ended threads, for new threads to reuse.
const POOL: usize = 64;
static CACHES: [AtomicPtr<Cache>; POOL] = [const { AtomicPtr::new(std::ptr::null_mut()) }; POOL];

/// [`MY_CACHE`] states besides a cache's address.
const NONE: usize = 0;
const IN_USE: usize = 1;
const ENDED: usize = 2;

/// Frames of the library's own between the register capture and the
/// allocation call's frame (two or three in practice).
const MAX_OWN_FRAMES: usize = 12;
/// Wrapper frames followed at most (a chain longer than that is charged
/// to the last caller found).
pub const MAX_WRAPPER_DEPTH: usize = 16;

thread_local! {
    /// This thread's stack, lowest and one past the highest address
    /// (`0..0` until asked).
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// This thread's unwinder cache (its address), or [`NONE`] yet,
    /// [`IN_USE`] while a walk uses it (a signal handler allocating then
    /// borrows one from the pool), [`ENDED`] after the thread-exit
    /// destructor gave it back.
    static MY_CACHE: Cell<usize> = const { Cell::new(NONE) };
}

/// Builds the unwinder over `modules` (once: later calls do nothing);
/// `own` is this library's mapped range. The modules loaded now are read
/// where the loader mapped them (they are loaded at start-up, and stay).
pub fn init(modules: &[LoadedModule], own: std::ops::Range<usize>) {
    let _ = OWN.set(own);
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if !UNWINDER.load(Ordering::Acquire).is_null() {
        return;
    }
    *known = modules
        .iter()
        .map(|m| KnownModule {
            path: m.path.clone(),
            mapped: m.mapped.clone(),
            bias: m.bias,
            sections: sections_in_place(m),
        })
        .collect();
    publish(&known);
}

/// Rebuilds the unwinder over `modules` (the modules loaded now), once
/// some were loaded or unloaded since the last build: those it had keep
/// their sections; a new one's are *copied* (a module loaded with `dlopen`
/// may be unloaded with `dlclose`, and the unwinder must never read
/// unmapped memory; the copies are kept for the process's life). Does
/// nothing before [`init`]. Runs on the monitor's thread, in the library's
/// own memory.
pub fn rebuild(modules: &[LoadedModule]) {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if UNWINDER.load(Ordering::Acquire).is_null() {
        return;
    }
    let _own = crate::engine::OwnMemory::enter();
    let next: Vec<KnownModule> = modules
        .iter()
        .map(|m| {
            let kept = known
                .iter()
                .find(|k| k.path == m.path && k.mapped == m.mapped)
                .map(|k| k.sections.clone());
            KnownModule {
                path: m.path.clone(),
                mapped: m.mapped.clone(),
                bias: m.bias,
                sections: kept.unwrap_or_else(|| sections_copied(m)),
            }
        })
        .collect();
    *known = next;
    publish(&known);
    // Code may have moved: no remembered frame holds any more.
    for entry in &FRAME_MEMO {
        entry.store(0, Ordering::Relaxed);
    }
}

/// Makes an unwinder over `known` the current one.
fn publish(known: &[KnownModule]) {
    let _own = crate::engine::OwnMemory::enter();
    let mut unwinder = Unwind::new();
    for k in known {
        if let Some(s) = &k.sections {
            unwinder.add_module(framehop_module(k, s));
        }
    }
    // The old unwinder is leaked: a walk may still be reading it.
    UNWINDER.store(Box::into_raw(Box::new(unwinder)), Ordering::Release);
}

/// A module's unwind sections where the loader mapped them.
fn sections_in_place(m: &LoadedModule) -> Option<Sections> {
    let hdr_at = m.eh_frame_hdr.clone()?;
    let hdr = modules::mapped_bytes(m, hdr_at.clone())?;
    let eh_frame_start = eh_frame_address(hdr, hdr_at.start)?;
    let end = modules::segment_end(m, eh_frame_start)?;
    let eh_frame = modules::mapped_bytes(m, eh_frame_start..end)?;
    Some(Sections {
        hdr_at,
        hdr,
        eh_frame_at: eh_frame_start..end,
        eh_frame,
    })
}

/// A module's unwind sections copied into the library's memory (leaked:
/// the unwinder may read them for the process's life).
fn sections_copied(m: &LoadedModule) -> Option<Sections> {
    let s = sections_in_place(m)?;
    Some(Sections {
        hdr: Box::leak(s.hdr.to_vec().into_boxed_slice()),
        eh_frame: Box::leak(s.eh_frame.to_vec().into_boxed_slice()),
        ..s
    })
}

/// A module for framehop from its unwind sections.
fn framehop_module(k: &KnownModule, s: &Sections) -> Module<&'static [u8]> {
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        eh_frame_svma: Some(s.eh_frame_at.start as u64..s.eh_frame_at.end as u64),
        eh_frame: Some(s.eh_frame),
        eh_frame_hdr_svma: Some(s.hdr_at.start as u64..s.hdr_at.end as u64),
        eh_frame_hdr: Some(s.hdr),
        ..ExplicitModuleSectionInfo::default()
    };
    Module::new(
        k.path.clone(),
        k.mapped.start as u64..k.mapped.end as u64,
        k.bias as u64,
        info,
    )
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

/// A cache from the pool, or a new one (made with the reentrancy guard
/// held: the library's memory).
fn take_cache() -> *mut Cache {
    for slot in &CACHES {
        let p = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            return p;
        }
    }
    let _guard = crate::engine::OwnMemory::enter();
    Box::into_raw(Box::new(Cache::new_in()))
}

/// Puts a cache back in the pool (or frees it when the pool is full).
fn give_back(cache: *mut Cache) {
    for slot in &CACHES {
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                cache,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return;
        }
    }
    let _guard = crate::engine::OwnMemory::enter();
    // SAFETY: `cache` came from Box::into_raw in `take_cache` and its
    // holder has just given it up.
    drop(unsafe { Box::from_raw(cache) });
}

/// The calling thread is ending (its thread-exit destructor): its cache
/// goes back to the pool for the next thread.
pub fn thread_ended() {
    let mine = MY_CACHE.replace(ENDED);
    if mine > ENDED {
        give_back(mine as *mut Cache);
    }
}

/// The calling thread's stack, whose stack pointer is `sp` (found once
/// per thread, without a lock: see [`super::thread_stack`]; `0..0` if
/// unknown).
fn thread_stack(sp: usize) -> (usize, usize) {
    let stack = STACK.get();
    if stack.1 != 0 {
        return stack;
    }
    // On the alternate signal stack the mapping found would not be the
    // thread's stack: no walk now, and the next walk asks again.
    if super::thread_stack::on_signal_stack() {
        return (0, 0);
    }
    // Unknown (`/proc/self/maps` unreadable): an empty range, kept, so
    // that walks are not tried (nor the file opened) again on this thread.
    let stack = super::thread_stack::of(sp).unwrap_or(NO_STACK);
    STACK.set(stack);
    stack
}

/// [`thread_stack`]'s answer when the stack cannot be found: holds no
/// stack pointer, and is not the "not asked yet" `0..0`.
const NO_STACK: (usize, usize) = (1, 1);

/// The caller of the outermost wrapper around the allocation call whose
/// return address is `ret` (inside a wrapper); `ret` itself if the frames
/// cannot be followed.
#[inline(never)]
#[cold]
pub fn outer_caller(ret: usize, inside_wrapper: fn(usize) -> bool) -> usize {
    with_walk(|unwinder, cache, regs, first, read_stack| {
        walk(
            unwinder,
            cache,
            regs,
            first,
            ret,
            inside_wrapper,
            read_stack,
        )
    })
    .flatten()
    .unwrap_or(ret)
}

/// The return addresses of the calling stack above this library's own
/// frames (innermost first: the first is the allocation call's) into
/// `frames`; how many were found.
#[inline(never)]
#[cold]
pub fn capture(frames: &mut [usize]) -> usize {
    let Some(own) = OWN.get() else {
        return 0;
    };
    with_walk(|unwinder, cache, mut regs, mut frame, read_stack| {
        let mut n = 0;
        let mut steps = 0;
        while n < frames.len() && steps < frames.len() + MAX_OWN_FRAMES {
            steps += 1;
            let Ok(Some(next)) =
                unwinder.unwind_frame(frame, &mut regs, cache, &mut &mut *read_stack)
            else {
                break;
            };
            let Some(f) = FrameAddress::from_return_address(next) else {
                break;
            };
            frame = f;
            if n == 0 && own.contains(&(next as usize)) {
                continue; // still in the library
            }
            frames[n] = next as usize;
            n += 1;
        }
        n
    })
    .unwrap_or(0)
}

/// Runs `body` with the unwinder, a cache, the registers of the calling
/// frame and a bounded stack reader; `None` when no walk is possible (no
/// unwinder, or not on the thread's own stack).
#[inline(always)]
fn with_walk<T>(
    body: impl FnOnce(
        &Unwind,
        &mut Cache,
        UnwindRegsX86_64,
        FrameAddress,
        &mut dyn FnMut(u64) -> Result<u64, ()>,
    ) -> T,
) -> Option<T> {
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
    // SAFETY: a non-null UNWINDER points to a leaked, never freed,
    // never mutated unwinder.
    let unwinder: &Unwind = unsafe { UNWINDER.load(Ordering::Acquire).as_ref() }?;
    // Off the thread's own stack (a coroutine's, a signal stack), where
    // the stack's end is not known: no walk.
    let (low, top) = thread_stack(sp as usize);
    if !(low as u64..top as u64).contains(&sp) {
        return None;
    }
    let top = top as u64;
    // The thread keeps its cache between walks; a walk that finds it in
    // use (a signal handler's) or the thread ended borrows one.
    let mine = MY_CACHE.get();
    let cache = match mine {
        NONE | IN_USE | ENDED => take_cache(),
        p => p as *mut Cache,
    };
    let keep = mine != IN_USE && mine != ENDED;
    if keep {
        MY_CACHE.set(IN_USE);
    }
    let mut read_stack = |addr: u64| -> Result<u64, ()> {
        if addr < sp || addr.checked_add(8).is_none_or(|end| end > top) || !addr.is_multiple_of(8) {
            return Err(());
        }
        // SAFETY: `addr` is 8-aligned and inside the live part of this
        // thread's stack (between our stack pointer and its top).
        Ok(unsafe { (addr as *const u64).read() })
    };
    let result = body(
        unwinder,
        // SAFETY: `cache` is a live Box'd cache held by this walk alone:
        // the thread's own (marked in use until we are done) or one taken
        // from the pool.
        unsafe { &mut *cache },
        UnwindRegsX86_64::new(ip, sp, bp),
        FrameAddress::from_instruction_pointer(ip),
        &mut read_stack,
    );
    if keep {
        MY_CACHE.set(cache as usize);
    } else {
        give_back(cache);
    }
    Some(result)
}

/// The caller of the outermost wrapper around the allocation call that
/// returns to `ret` (inside a wrapper), starting at the wrapper's own frame:
/// `entry_sp` and `entry_bp` are the stack and frame pointers at the entry
/// of the interposed function (so `[entry_sp]` holds `ret`), recorded by
/// its trampoline. One frame step per wrapper, none through the library's
/// own frames. If `[entry_sp]` is not `ret` (the record is another call's:
/// a signal handler allocated in between), the frames are walked from here
/// as [`outer_caller`] does. `ret` itself if the frames cannot be followed.
///
/// A wrapper's frame at a given return address has a fixed size when its
/// unwind rule is relative to the stack pointer (it nearly always is), so
/// the slot of its caller's return address is a fixed distance above
/// `entry_sp`: that distance is remembered per return address
/// ([`FRAME_MEMO`]) the first time the rule is seen to ignore the frame
/// pointer, and later calls read the slot directly (a table probe and one
/// bounded read instead of framehop's step). A chain of wrappers, or a
/// rule that needs the frame pointer, takes the walk.
#[inline(never)]
#[cold]
pub fn outer_caller_from_entry(
    ret: usize,
    entry_sp: usize,
    entry_bp: usize,
    inside_wrapper: fn(usize) -> bool,
) -> usize {
    if let Some(caller) = remembered_caller(ret, entry_sp, inside_wrapper) {
        return caller;
    }
    with_walk(|unwinder, cache, regs, first, read_stack| {
        if read_stack(entry_sp as u64) != Ok(ret as u64) {
            return walk(
                unwinder,
                cache,
                regs,
                first,
                ret,
                inside_wrapper,
                read_stack,
            );
        }
        let regs = UnwindRegsX86_64::new(ret as u64, entry_sp as u64 + 8, entry_bp as u64);
        let frame = FrameAddress::from_return_address(ret as u64)?;
        learn_frame(unwinder, cache, regs, frame, ret, entry_sp, read_stack);
        follow_wrappers(
            unwinder,
            cache,
            regs,
            frame,
            ret,
            inside_wrapper,
            read_stack,
        )
    })
    .flatten()
    .unwrap_or(ret)
}

/// Remembered wrapper frames: per return address (direct-mapped), the
/// distance from the entry's stack pointer to the slot of the wrapper's
/// caller's return address, in 8-byte words: `ret << 16 | words`, or
/// `ret << 16 | NOT_SIMPLE` for a rule that needs the walk; 0 is empty.
/// Cleared when the unwinder is rebuilt (other code may now be at an
/// address). One word per entry: a racing reader sees a whole entry or
/// another address's.
static FRAME_MEMO: [AtomicU64; FRAME_MEMO_SIZE] = [const { AtomicU64::new(0) }; FRAME_MEMO_SIZE];
const FRAME_MEMO_SIZE: usize = 1024;
const NOT_SIMPLE: u64 = 0xffff;

fn frame_memo_slot(ret: usize) -> usize {
    (ret.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) & (FRAME_MEMO_SIZE - 1)
}

/// The caller of the wrapper `ret` returns into, read at the remembered
/// distance above `entry_sp`, when that is known, `[entry_sp]` is `ret`
/// (the record is this call's) and the caller is outside every wrapper.
#[inline]
fn remembered_caller(
    ret: usize,
    entry_sp: usize,
    inside_wrapper: fn(usize) -> bool,
) -> Option<usize> {
    let m = FRAME_MEMO[frame_memo_slot(ret)].load(Ordering::Relaxed);
    if m >> 16 != ret as u64 || m & 0xffff == NOT_SIMPLE {
        return None;
    }
    let (low, top) = thread_stack(entry_sp);
    let read = |addr: usize| -> Option<usize> {
        if addr < low || addr < entry_sp || addr.checked_add(8)? > top || !addr.is_multiple_of(8) {
            return None;
        }
        // SAFETY: `addr` is 8-aligned, at or above `entry_sp` (the
        // interposed function's entry: the live part of this thread's
        // stack, above our own frames) and below the stack's top.
        Some(unsafe { (addr as *const usize).read() })
    };
    if read(entry_sp)? != ret {
        return None;
    }
    let caller = read(entry_sp + (m & 0xffff) as usize * 8)?;
    (!inside_wrapper(caller)).then_some(caller)
}

/// Learns, once per return address, whether the wrapper frame at `ret`
/// has a rule relative to the stack pointer: framehop's step from it with
/// the frame pointer unknown (0) must give the same caller and stack
/// pointer as with the real one. Then the distance to the caller's slot
/// is remembered; else `NOT_SIMPLE`.
fn learn_frame(
    unwinder: &Unwind,
    cache: &mut Cache,
    regs: UnwindRegsX86_64,
    frame: FrameAddress,
    ret: usize,
    entry_sp: usize,
    read_stack: &mut dyn FnMut(u64) -> Result<u64, ()>,
) {
    let slot = &FRAME_MEMO[frame_memo_slot(ret)];
    if slot.load(Ordering::Relaxed) >> 16 == ret as u64 || (ret as u64) >> 47 != 0 {
        return;
    }
    let mut real = regs;
    let mut blind = UnwindRegsX86_64::new(regs.ip(), regs.sp(), 0);
    let a = unwinder.unwind_frame(frame, &mut real, cache, &mut &mut *read_stack);
    let b = unwinder.unwind_frame(frame, &mut blind, cache, &mut &mut *read_stack);
    let words = match (a, b) {
        (Ok(Some(x)), Ok(Some(y))) if x == y && real.sp() == blind.sp() => {
            let slot_at = (real.sp() as usize).wrapping_sub(8);
            match slot_at.checked_sub(entry_sp) {
                Some(d) if d.is_multiple_of(8) && ((d / 8) as u64) < NOT_SIMPLE => (d / 8) as u64,
                _ => NOT_SIMPLE,
            }
        }
        _ => NOT_SIMPLE,
    };
    slot.store((ret as u64) << 16 | words, Ordering::Relaxed);
}

fn walk(
    unwinder: &Unwind,
    cache: &mut Cache,
    mut regs: UnwindRegsX86_64,
    mut frame: FrameAddress,
    ret: usize,
    inside_wrapper: fn(usize) -> bool,
    read_stack: &mut dyn FnMut(u64) -> Result<u64, ()>,
) -> Option<usize> {
    // Our own frames, up to the one the program's call returns to.
    let mut own = 0;
    loop {
        let next = unwinder
            .unwind_frame(frame, &mut regs, cache, &mut &mut *read_stack)
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
    follow_wrappers(
        unwinder,
        cache,
        regs,
        frame,
        ret,
        inside_wrapper,
        read_stack,
    )
}

/// From the frame of the wrapper the allocation call returns to (`ret`,
/// with `regs` as they are in it): one step per wrapper frame, to the
/// first return address outside a wrapper.
fn follow_wrappers(
    unwinder: &Unwind,
    cache: &mut Cache,
    mut regs: UnwindRegsX86_64,
    mut frame: FrameAddress,
    ret: usize,
    inside_wrapper: fn(usize) -> bool,
    read_stack: &mut dyn FnMut(u64) -> Result<u64, ()>,
) -> Option<usize> {
    // Wrapper frames: each step gives the caller of one.
    let mut caller = ret;
    for _ in 0..MAX_WRAPPER_DEPTH {
        let Ok(Some(next)) = unwinder.unwind_frame(frame, &mut regs, cache, &mut &mut *read_stack)
        else {
            break;
        };
        caller = next as usize;
        if !inside_wrapper(caller) {
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
