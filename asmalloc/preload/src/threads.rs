//! Names of the threads the program started with `pthread_create`: the
//! start routine's symbol (`dladdr`), kept by our thread id (the one
//! callbacks report) in a fixed table written without lock or allocation.
//!
//! And how many of the program's threads are alive: glibc ends the process
//! (`exit(0)`) when its last thread ends, counting the library's threads
//! too — so a program whose main thread calls `pthread_exit` and whose
//! other threads then return would run for ever beside the library's
//! reporter and monitor. When the program's last thread ends, the
//! library's threads end as well (`report.rs`), and glibc's `exit(0)` runs
//! on the last of them.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};

/// The program's threads alive: the initial thread, and every thread
/// started through our `pthread_create` from the moment it is asked for
/// (before the thread runs) until its thread-exit destructor.
static PROGRAM_THREADS: AtomicI64 = AtomicI64::new(0);
/// Set when the program's last thread ended; read by the library's threads.
static PROGRAM_ENDED: AtomicBool = AtomicBool::new(false);

/// A program thread is about to start (or, for the initial thread, is
/// there).
pub(crate) fn program_thread_starting() {
    PROGRAM_THREADS.fetch_add(1, Ordering::AcqRel);
}

/// A program thread ended (or could not be started); true when it was the
/// last one.
pub(crate) fn program_thread_ended() -> bool {
    let last = PROGRAM_THREADS.fetch_sub(1, Ordering::AcqRel) == 1;
    if last {
        PROGRAM_ENDED.store(true, Ordering::Release);
    }
    last
}

/// True once the program's last thread has ended.
pub(crate) fn program_ended() -> bool {
    PROGRAM_ENDED.load(Ordering::Acquire)
}

/// In a forked child: only the forking thread is there.
pub(crate) fn program_threads_after_fork() {
    PROGRAM_THREADS.store(1, Ordering::Release);
    PROGRAM_ENDED.store(false, Ordering::Release);
}

const SLOTS: usize = 256;
const NAME: usize = 40;
const EMPTY: u64 = u64::MAX;
const WRITING: u64 = u64::MAX - 1;

struct Slot {
    /// The thread id, stored complemented (`!id`) so that the empty table
    /// is all zeros: it is in `.bss`, where the pages no thread writes cost
    /// a process nothing (docs/preload.md, "Resident memory").
    id: AtomicU64,
    len: AtomicU8,
    name: [AtomicU8; NAME],
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        id: AtomicU64::new(!EMPTY),
        len: AtomicU8::new(0),
        name: [const { AtomicU8::new(0) }; NAME],
    }
}; SLOTS];
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Records that thread `id` started running `name` (cut to 40 bytes).
pub(crate) fn started(id: u64, name: &[u8]) {
    STARTED.fetch_add(1, Ordering::Relaxed);
    let slot = &TABLE[(id % SLOTS as u64) as usize];
    slot.id.store(!WRITING, Ordering::Relaxed);
    let n = name.len().min(NAME);
    for (dst, &b) in slot.name.iter().zip(&name[..n]) {
        dst.store(b, Ordering::Relaxed);
    }
    slot.len.store(n as u8, Ordering::Relaxed);
    slot.id.store(!id, Ordering::Release);
}

/// Records thread `id` by what dladdr says about its start routine:
/// `worker`, or `prog+0x1139` for a routine without a dynamic symbol.
pub(crate) fn started_at(id: u64, start: usize) {
    let named = crate::real::with_code_name(start, |name| match name {
        crate::real::CodeName::Symbol(sym) => started(id, sym),
        crate::real::CodeName::Offset(file, offset) => {
            // The file's bytes as they are (no UTF-8 conversion, which
            // could allocate), then the offset.
            let mut buf = [0u8; NAME];
            let n = file.len().min(NAME);
            buf[..n].copy_from_slice(&file[..n]);
            let mut w = Cursor {
                buf: &mut buf,
                len: n,
            };
            let _ = std::fmt::Write::write_fmt(&mut w, format_args!("+{offset:#x}"));
            let len = w.len;
            started(id, &buf[..len]);
        }
    });
    if named.is_none() {
        started(id, b"?");
    }
}

/// Formats into a fixed buffer, cutting what does not fit.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let take = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Threads started through our `pthread_create` so far.
pub(crate) fn started_count() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

/// (id, name) of the most recent threads we know, by id.
pub(crate) fn names() -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for slot in &TABLE {
        let id = !slot.id.load(Ordering::Acquire);
        if id >= WRITING {
            continue;
        }
        let len = usize::from(slot.len.load(Ordering::Relaxed)).min(NAME);
        let bytes: Vec<u8> = slot.name[..len]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        if !slot.id.load(Ordering::Acquire) == id {
            out.push((id, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_by_id() {
        super::started(3, b"worker");
        super::started(4, b"a_very_long_start_routine_name_that_goes_on_and_on");
        let names = super::names();
        assert!(names.contains(&(3, "worker".to_string())));
        let long = &names.iter().find(|(id, _)| *id == 4).unwrap().1;
        assert_eq!(long.len(), 40);
        // The empty slots are not threads.
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
