//! Where reports go: stderr, or the `ASMALLOC_OUTPUT` file.
//!
//! The file is opened lazily by the first report of each process (so a
//! forked child with `%p` in the path writes its own file), appended to,
//! and written with `write(2)` — never through Rust's `stderr` lock, which a
//! fork could leave held in the child.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{settings, syscalls};

/// `pid << 32 | fd` of the open report file; 0 = none yet.
static OPEN: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

/// The path with `%p` replaced by `pid`.
pub(crate) fn expand(path: &str, pid: i32) -> String {
    path.replace("%p", &pid.to_string())
}

fn report_fd() -> i32 {
    let Some(path) = settings::output_path() else {
        return 2;
    };
    let pid = syscalls::getpid();
    let cur = OPEN.load(Ordering::Acquire);
    if cur != 0 && (cur >> 32) as i32 == pid {
        return cur as u32 as i32;
    }
    let expanded = expand(path, pid);
    let fd = CString::new(expanded.clone())
        .ok()
        .and_then(|c| syscalls::open_append(&c));
    let Some(fd) = fd else {
        rt::warn_once(
            &WARNED,
            format_args!(
                "ASMALLOC_OUTPUT: cannot open '{expanded}' for appending; reporting to stderr"
            ),
        );
        return 2;
    };
    let new = (u64::from(pid as u32) << 32) | u64::from(fd as u32);
    match OPEN.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fd,
        Err(winner) => {
            syscalls::close(fd);
            winner as u32 as i32
        }
    }
}

/// Writes one report (or any text) to the report destination.
pub(crate) fn emit(bytes: &[u8]) {
    syscalls::write_all(report_fd(), bytes);
}

#[cfg(test)]
mod tests {
    #[test]
    fn pid_placeholder() {
        assert_eq!(super::expand("/tmp/a.%p.log", 42), "/tmp/a.42.log");
        assert_eq!(super::expand("/tmp/a.log", 42), "/tmp/a.log");
    }
}
