//! Where the calling thread's stack is, found without a lock.
//!
//! A stack walk reads memory between the current stack pointer and the
//! top of the thread's stack, so it must know that top. glibc's
//! `pthread_getattr_np` knows it, but it holds the thread's own lock while
//! it allocates: for the main thread it reads `/proc/self/maps` through
//! `fopen`, for every thread it allocates a CPU set. A program that calls
//! it therefore lands in our allocation path with that lock held, and when
//! that allocation is the thread's first walk (a sampled allocation, or a
//! call through a wrapper), asking `pthread_getattr_np` there waits for the
//! lock the thread itself holds: the program hangs. Ruby does exactly this
//! at start (`ruby_init_stack`), and Rust's standard library at every
//! thread start.
//!
//! So the answer is read from `/proc/self/maps` with plain system calls
//! into a buffer on the stack: no lock, no allocation, safe in a signal
//! handler, and `errno` is left as it was. The mapping that holds the
//! stack pointer is the thread's stack (a thread's stack is one mapping;
//! reading anywhere in it is safe). The main thread's stack grows down on
//! demand, so its lowest address is taken as its top less the stack limit
//! (`RLIMIT_STACK`, 8 MiB when unlimited), so that a deeper stack later
//! is still recognised as the thread's own; the walk never reads below
//! the stack pointer of the moment, which is mapped.

use std::ffi::c_void;

unsafe extern "C" {
    /// glibc's (the dynamic loader's) address near the top of the main
    /// thread's stack, set before any code of the program runs.
    static __libc_stack_end: *mut c_void;
}

/// The stack of the thread whose stack pointer is `sp`: its lowest
/// address and one past its highest; `None` when `/proc/self/maps` cannot
/// be read or holds no mapping with `sp`.
pub(super) fn of(sp: usize) -> Option<(usize, usize)> {
    keeping_errno(|| {
        let (low, top) = mapping_holding(sp)?;
        // SAFETY: `__libc_stack_end` is a plain pointer-sized datum of the
        // loader, written once before the program starts.
        let main_end = unsafe { __libc_stack_end } as usize;
        if (low..top).contains(&main_end) {
            return Some((top.saturating_sub(main_stack_limit()).min(low), top));
        }
        Some((low, top))
    })
}

/// Whether the calling thread runs on its alternate signal stack (a
/// signal handler installed with `SA_ONSTACK`): the mapping holding the
/// stack pointer is then not the thread's stack, and must not be taken
/// for it.
pub(super) fn on_signal_stack() -> bool {
    // SAFETY: a zeroed stack_t is a valid place for sigaltstack to write
    // the current alternate stack into.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new stack changes nothing; `current` is writable.
    let rc = keeping_errno(|| unsafe { libc::sigaltstack(std::ptr::null(), &mut current) });
    rc == 0 && current.ss_flags & libc::SS_ONSTACK != 0
}

/// Runs `f` (system calls on the program's allocation path) and gives the
/// thread back the `errno` it had: a successful `malloc` leaves it alone.
fn keeping_errno<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: glibc's pointer to the calling thread's errno, valid for the
    // thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno };
    let result = f();
    // SAFETY: as above; the value is restored as it was.
    unsafe { *errno = saved };
    result
}

/// The main thread's stack limit: `RLIMIT_STACK`'s soft value, 8 MiB
/// when it is unlimited or cannot be read.
fn main_stack_limit() -> usize {
    const DEFAULT: usize = 8 << 20;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return DEFAULT;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(DEFAULT)
}

/// The `start-end` range of the line of `/proc/self/maps` that holds
/// `addr`.
fn mapping_holding(addr: usize) -> Option<(usize, usize)> {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut lines = MapsLines::default();
    let mut buf = [0u8; 4096];
    let found = loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break None;
        }
        if let Some(range) = lines.feed(&buf[..n as usize], addr) {
            break Some(range);
        }
    };
    // SAFETY: `fd` is ours, opened above.
    unsafe { libc::close(fd) };
    found
}

/// A streaming reader of the `start-end` field that begins each line of
/// `/proc/self/maps` (lines may be split between reads).
#[derive(Default)]
struct MapsLines {
    start: usize,
    end: usize,
    /// 0: reading `start`, 1: reading `end`, 2: skipping to the newline.
    field: u8,
}

impl MapsLines {
    /// Reads `bytes`; the range of the first whole line that holds `addr`.
    fn feed(&mut self, bytes: &[u8], addr: usize) -> Option<(usize, usize)> {
        for &b in bytes {
            match (self.field, b) {
                (_, b'\n') => *self = MapsLines::default(),
                (2, _) => {}
                (0, b'-') => self.field = 1,
                (1, b' ') => {
                    self.field = 2;
                    if (self.start..self.end).contains(&addr) {
                        return Some((self.start, self.end));
                    }
                }
                (0, _) => self.start = push_hex(self.start, b)?,
                (_, _) => self.end = push_hex(self.end, b)?,
            }
        }
        None
    }
}

/// `value` with the hex digit `digit` appended; `None` for a byte that is
/// not one (a malformed line ends the search).
fn push_hex(value: usize, digit: u8) -> Option<usize> {
    let d = (digit as char).to_digit(16)?;
    value.checked_mul(16)?.checked_add(d as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_anywhere_are_read_whole() {
        let maps = b"00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n\
            7ffd1c8f0000-7ffd1c911000 rw-p 00000000 00:00 0 [stack]\n\
            7ffd1c9e2000-7ffd1c9e6000 r--p 00000000 00:00 0 [vvar]\n";
        for split in 0..maps.len() {
            let mut lines = MapsLines::default();
            let (a, b) = maps.split_at(split);
            let found = lines
                .feed(a, 0x7ffd1c900000)
                .or_else(|| lines.feed(b, 0x7ffd1c900000));
            assert_eq!(
                found,
                Some((0x7ffd1c8f0000, 0x7ffd1c911000)),
                "split at {split}"
            );
        }
        let mut lines = MapsLines::default();
        assert_eq!(lines.feed(maps, 0x7ffd1c911000), None, "end is exclusive");
    }

    #[test]
    fn this_threads_stack_holds_its_locals() {
        let local = 0u64;
        let at = &local as *const u64 as usize;
        let (low, top) = of(at).expect("the stack is in /proc/self/maps");
        assert!(low < at && at < top, "{low:#x} {at:#x} {top:#x}");
        // A spawned thread's stack is another mapping, which holds its own
        // locals.
        let theirs = std::thread::spawn(|| {
            let local = 0u64;
            let at = &local as *const u64 as usize;
            (at, of(at).expect("a thread's stack is a mapping"))
        })
        .join()
        .unwrap();
        let (at, (low2, top2)) = theirs;
        assert!(low2 < at && at < top2);
        assert!(top2 <= low || low2 >= top, "two threads, two stacks");
    }

    #[test]
    fn a_handler_on_the_alternate_stack_knows_it() {
        use std::sync::atomic::{AtomicU8, Ordering};
        static SEEN: AtomicU8 = AtomicU8::new(0);
        extern "C" fn handler(_: libc::c_int) {
            SEEN.store(1 + on_signal_stack() as u8, Ordering::SeqCst);
        }
        assert!(!on_signal_stack());
        std::thread::spawn(|| {
            let mut alt = vec![0u8; 64 << 10];
            // SAFETY: the alternate stack lives until it is taken down
            // below; the handler only stores to an atomic; SIGUSR2 is sent
            // to this thread alone.
            unsafe {
                let ss = libc::stack_t {
                    ss_sp: alt.as_mut_ptr().cast(),
                    ss_flags: 0,
                    ss_size: alt.len(),
                };
                assert_eq!(libc::sigaltstack(&ss, std::ptr::null_mut()), 0);
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_ONSTACK;
                assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
                libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2);
                let off = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&off, std::ptr::null_mut());
            }
        })
        .join()
        .unwrap();
        assert_eq!(
            SEEN.load(Ordering::SeqCst),
            2,
            "the handler ran on the alternate stack"
        );
    }

    #[test]
    fn errno_is_left_as_it_was() {
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = libc::EAGAIN };
        let local = 0u8;
        let _ = of(&local as *const u8 as usize);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EAGAIN)
        );
    }
}
