//! Attached System V shared memory: which address holds how many bytes, so
//! `shmdt` subtracts exactly what `shmat` added.
//!
//! A fixed table of slots claimed with compare-and-swap: no lock, no
//! allocation, inherited as is by a forked child (whose attachments the
//! kernel duplicates too). Attachments beyond its capacity are still
//! counted as operations but not in net shared memory, with a one-time
//! warning.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const SLOTS: usize = 1024;

struct Slot {
    addr: AtomicUsize,
    bytes: AtomicUsize,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        addr: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
    }
}; SLOTS];
static WARNED_FULL: AtomicBool = AtomicBool::new(false);

/// Remembers that `bytes` are attached at `addr`; false if the table is full.
pub(crate) fn attached(addr: usize, bytes: usize) -> bool {
    let start = (addr >> 12) % SLOTS;
    for i in 0..SLOTS {
        let slot = &TABLE[(start + i) % SLOTS];
        if slot
            .addr
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.bytes.store(bytes, Ordering::Relaxed);
            slot.addr.store(addr, Ordering::Release);
            return true;
        }
    }
    rt::warn_once(
        &WARNED_FULL,
        format_args!(
            "more than {SLOTS} shared memory attachments at once; further ones are not in net shm"
        ),
    );
    false
}

/// Forgets the attachment at `addr`; the bytes it had, if known.
pub(crate) fn detached(addr: usize) -> Option<usize> {
    let start = (addr >> 12) % SLOTS;
    for i in 0..SLOTS {
        let slot = &TABLE[(start + i) % SLOTS];
        if slot.addr.load(Ordering::Acquire) == addr {
            let bytes = slot.bytes.load(Ordering::Relaxed);
            if slot
                .addr
                .compare_exchange(addr, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some(bytes);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_returns_what_attach_stored_once() {
        assert!(attached(0x7000_0000_0000, 65536));
        assert!(attached(0x7000_0040_0000, 100));
        assert_eq!(detached(0x7000_0000_0000), Some(65536));
        assert_eq!(detached(0x7000_0000_0000), None);
        assert_eq!(detached(0x7000_0040_0000), Some(100));
        assert_eq!(detached(0x1234_0000), None);
    }
}
