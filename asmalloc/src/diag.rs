//! Diagnostics that are safe anywhere: one-time warnings written with
//! `write(2)` from a stack buffer, so they can be issued from the allocation
//! path, before `main`, or inside a signal-unsafe context without allocating.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys;

/// A fixed-size stack buffer that formats without allocating; text past its
/// end is cut, never an error.
pub(crate) struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub(crate) const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Writes all of `bytes` to file descriptor `fd` with `write(2)`: no
/// allocation, no lock, `errno` kept, `EINTR` and short writes retried,
/// other errors ignored (output must never fail the host program). For
/// reports written from inside an allocator.
pub fn write_fd(fd: i32, bytes: &[u8]) {
    sys::write_all(fd, bytes);
}

/// Writes one line (`asmalloc: ` + message + newline) to stderr.
pub fn warn(args: fmt::Arguments<'_>) {
    let mut line = StackBuf::<512>::new();
    let _ = line.write_str("asmalloc: ");
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    sys::write_all(2, line.as_bytes());
}

/// Writes the warning only the first time `flag` is passed (per process).
pub fn warn_once(flag: &AtomicBool, args: fmt::Arguments<'_>) {
    if !flag.swap(true, Ordering::Relaxed) {
        warn(args);
    }
}
