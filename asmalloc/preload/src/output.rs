//! Where reports go: stderr, or the `ASMALLOC_OUTPUT` file.
//!
//! Stderr is duplicated when the library starts, so the report at exit
//! still arrives when the program closed its stderr first (coreutils do,
//! in an `atexit` handler). Before writing we check that the duplicate
//! still is the file stderr was (a program that closes every descriptor
//! might have reused the number); otherwise we write to fd 2.
//!
//! The file is opened lazily by the first report of each process (so a
//! forked child with `%p` in the path writes its own file), appended to,
//! and written with `write(2)` — never through Rust's `stderr` lock, which a
//! fork could leave held in the child.
//!
//! It is opened the way a file in a shared directory (`/tmp`) must be
//! (`open_append_private` in the runtime's monitor, which opens the log the
//! same way): never through a symbolic link, a new file created with
//! `O_EXCL` and mode `0600` (or less, by the umask), an existing one
//! appended to only if it is a regular file of this process's user with a
//! single link. A file refused so gets one line on stderr, naming the path
//! and why, and no report is written at all (not to stderr either: the
//! program's stderr may be another program's input). A file that cannot be
//! opened for another reason (no such directory, no permission) is said so
//! once and reports go to stderr, as before.

use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use crate::{settings, syscalls};

/// `pid << 32 | fd` of the open report file (fd `u32::MAX`: refused, no
/// output); 0 = none yet.
static OPEN: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);
/// The fd that means "refused: write nothing".
const REFUSED: u32 = u32::MAX;

/// The path with `%p` replaced by `pid`. A pid is digits only, so `%p`
/// can never make the path reach anywhere else (`..`, `/`): the directories
/// are exactly those the user wrote.
pub(crate) fn expand(path: &str, pid: i32) -> String {
    path.replace("%p", &pid.to_string())
}

/// The saved stderr duplicate (-1 = none) and the (device, inode) it had.
static SAVED_FD: AtomicI32 = AtomicI32::new(-1);
static SAVED_DEV: AtomicU64 = AtomicU64::new(0);
static SAVED_INO: AtomicU64 = AtomicU64::new(0);

/// Keeps a duplicate of stderr for reports (called by the constructor).
pub(crate) fn save_stderr() {
    let Some(id) = syscalls::file_id(2) else {
        return;
    };
    if let Some(fd) = syscalls::dup_high(2) {
        SAVED_DEV.store(id.0, Ordering::Relaxed);
        SAVED_INO.store(id.1, Ordering::Relaxed);
        SAVED_FD.store(fd, Ordering::Release);
    }
}

fn stderr_fd() -> i32 {
    let fd = SAVED_FD.load(Ordering::Acquire);
    if fd >= 0
        && syscalls::file_id(fd)
            == Some((
                SAVED_DEV.load(Ordering::Relaxed),
                SAVED_INO.load(Ordering::Relaxed),
            ))
    {
        fd
    } else {
        2
    }
}

/// The fd reports go to; `None` when the report file was refused.
fn report_fd() -> Option<i32> {
    let Some(path) = settings::output_path() else {
        return Some(stderr_fd());
    };
    let pid = syscalls::getpid();
    let cur = OPEN.load(Ordering::Acquire);
    if cur != 0 && (cur >> 32) as i32 == pid {
        return match cur as u32 {
            REFUSED => None,
            fd => Some(fd as i32),
        };
    }
    let expanded = expand(path, pid);
    let saved = syscalls::errno();
    let opened = rt::__private::monitor::open_append_private(&expanded);
    syscalls::set_errno(saved);
    let fd = match opened {
        Ok(file) => file.into_raw_fd() as u32,
        Err(e) if is_refusal(&e) => {
            rt::warn(format_args!(
                "ASMALLOC_OUTPUT: '{expanded}': {e}; no report is written"
            ));
            REFUSED
        }
        Err(e) => {
            rt::warn_once(
                &WARNED,
                format_args!(
                    "ASMALLOC_OUTPUT: cannot open '{expanded}' for appending ({e}); reporting to stderr"
                ),
            );
            return Some(stderr_fd());
        }
    };
    let new = (u64::from(pid as u32) << 32) | u64::from(fd);
    let fd = match OPEN.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fd,
        Err(winner) => {
            if fd != REFUSED {
                syscalls::close(fd as i32);
            }
            winner as u32
        }
    };
    (fd != REFUSED).then_some(fd as i32)
}

/// True for an error that says the file was refused (a symbolic link, a
/// file of another user, …), not that it could not be opened.
fn is_refusal(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<rt::__private::monitor::Refused>())
}

/// Writes one report (or any text) to the report destination.
pub(crate) fn emit(bytes: &[u8]) {
    if let Some(fd) = report_fd() {
        rt::write_fd(fd, bytes);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pid_placeholder() {
        assert_eq!(super::expand("/tmp/a.%p.log", 42), "/tmp/a.42.log");
        assert_eq!(super::expand("/tmp/a.log", 42), "/tmp/a.log");
    }

    #[test]
    fn the_pid_placeholder_is_digits_only() {
        // No pid can put a `/` or `..` into the path: the directories are
        // exactly those written.
        for pid in [1, 42, 65535, 4_194_304, i32::MAX] {
            let p = super::expand("/tmp/r.%p.%p", pid);
            let tail = p.strip_prefix("/tmp/r.").unwrap();
            assert!(tail.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "{p}");
            assert_eq!(p.matches('/').count(), 2, "{p}");
        }
    }
}
