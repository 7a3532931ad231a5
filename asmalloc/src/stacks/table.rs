//! The table of sampled stacks: a fixed, preallocated open-addressed table
//! keyed by a 64-bit hash of (site, frames). A new stack claims a slot with
//! one compare-and-swap and writes its frames before publishing its key;
//! lookups and estimates take no lock. Ids are handed out downwards from
//! just below the caller sites' range: a tag holding one names a stack.

use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, AtomicUsize, Ordering};

use crate::site::OTHER_CALLERS;

/// Distinct stacks kept.
pub const MAX_STACKS: usize = 2048;
/// Frames kept per stack (the innermost ones).
pub const DEPTH: usize = 32;
const MASK: usize = MAX_STACKS - 1;
const _: () = assert!(MAX_STACKS.is_power_of_two());

/// The first (highest) stack id: just below the caller sites.
pub const FIRST_STACK: u16 = OTHER_CALLERS - 1;
/// The lowest stack id.
pub const LAST_STACK: u16 = FIRST_STACK - (MAX_STACKS as u16 - 1);

const EMPTY: u64 = 0;
const CLAIMED: u64 = 1;

struct Stack {
    key: AtomicU64,
    site: AtomicU16,
    depth: AtomicUsize,
    frames: [AtomicUsize; DEPTH],
    /// Estimated live bytes and blocks (blocks in 1/1024ths).
    live_bytes: AtomicI64,
    live_blocks: AtomicI64,
    /// Samples taken, and estimated bytes allocated in all.
    samples: AtomicU64,
    total_bytes: AtomicU64,
}

static STACKS: [Stack; MAX_STACKS] = [const {
    Stack {
        key: AtomicU64::new(EMPTY),
        site: AtomicU16::new(0),
        depth: AtomicUsize::new(0),
        frames: [const { AtomicUsize::new(0) }; DEPTH],
        live_bytes: AtomicI64::new(0),
        live_blocks: AtomicI64::new(0),
        samples: AtomicU64::new(0),
        total_bytes: AtomicU64::new(0),
    }
}; MAX_STACKS];

/// Samples not kept because the table was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn index_of(id: u16) -> usize {
    usize::from(FIRST_STACK - id)
}

/// True if `id` names a stack in use.
#[inline(always)]
pub fn is_stack(id: u16) -> bool {
    (LAST_STACK..=FIRST_STACK).contains(&id) && is_used(id)
}

#[inline(never)]
fn is_used(id: u16) -> bool {
    STACKS[index_of(id)].key.load(Ordering::Acquire) > CLAIMED
}

/// The site a stack's blocks are charged to.
pub fn site_of(id: u16) -> u16 {
    STACKS[index_of(id)].site.load(Ordering::Relaxed)
}

fn hash(site: u16, frames: &[usize]) -> u64 {
    // Each word is multiplied in whole (never XORed into bits another
    // word's value could cancel), then the sum is finished with a mixer.
    let mut h = (u64::from(site) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &f in frames {
        h = (h.rotate_left(23) ^ f as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h | 1 << 63 // never EMPTY or CLAIMED
}

/// True if the published slot holds exactly (`site`, `frames`): a key is
/// a hash, and two paths may share one; a block must never be charged
/// back to another path's site.
fn holds(slot: &Stack, site: u16, frames: &[usize]) -> bool {
    slot.site.load(Ordering::Relaxed) == site
        && slot.depth.load(Ordering::Relaxed) == frames.len()
        && slot
            .frames
            .iter()
            .zip(frames)
            .all(|(cell, &f)| cell.load(Ordering::Relaxed) == f)
}

/// The id of the stack (`site`, `frames`), added if new; `None` when the
/// table is full.
pub fn intern(site: u16, frames: &[usize]) -> Option<u16> {
    let frames = &frames[..frames.len().min(DEPTH)];
    let key = hash(site, frames);
    let mut i = key as usize & MASK;
    for _ in 0..MAX_STACKS {
        let slot = &STACKS[i];
        match slot
            .key
            .compare_exchange(EMPTY, CLAIMED, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                slot.site.store(site, Ordering::Relaxed);
                for (cell, &f) in slot.frames.iter().zip(frames) {
                    cell.store(f, Ordering::Relaxed);
                }
                slot.depth.store(frames.len(), Ordering::Relaxed);
                slot.key.store(key, Ordering::Release);
                return Some(FIRST_STACK - i as u16);
            }
            // (The Acquire load of the key makes the slot's contents
            // visible: they are written before the key is published.)
            Err(k) if k == key && holds(slot, site, frames) => {
                return Some(FIRST_STACK - i as u16);
            }
            Err(CLAIMED) => {
                while slot.key.load(Ordering::Acquire) == CLAIMED {
                    std::hint::spin_loop();
                }
                if slot.key.load(Ordering::Acquire) == key && holds(slot, site, frames) {
                    return Some(FIRST_STACK - i as u16);
                }
            }
            Err(_) => {}
        }
        i = (i + 1) & MASK;
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
    None
}

/// One more live sample of stack `id`, standing for these estimates.
pub fn add_estimate(id: u16, bytes: u64, blocks: u64) {
    let s = &STACKS[index_of(id)];
    s.live_bytes.fetch_add(bytes as i64, Ordering::Relaxed);
    s.live_blocks.fetch_add(blocks as i64, Ordering::Relaxed);
    s.samples.fetch_add(1, Ordering::Relaxed);
    s.total_bytes.fetch_add(bytes, Ordering::Relaxed);
}

/// A live sample of stack `id` ended (freed or resized).
pub fn remove_estimate(id: u16, bytes: u64, blocks: u64) {
    let s = &STACKS[index_of(id)];
    s.live_bytes.fetch_sub(bytes as i64, Ordering::Relaxed);
    s.live_blocks.fetch_sub(blocks as i64, Ordering::Relaxed);
}

/// A sampled stack, for reports.
#[derive(Debug, Clone)]
pub struct StackSummary {
    /// Its id (a tag id of its own).
    pub id: u16,
    /// The site its blocks are charged to.
    pub site: u16,
    /// Return addresses, innermost first.
    pub frames: Vec<usize>,
    /// Estimated live bytes.
    pub live_bytes: i64,
    /// Estimated live blocks.
    pub live_blocks: f64,
    /// Samples taken.
    pub samples: u64,
    /// Estimated bytes allocated in all.
    pub total_bytes: u64,
}

/// Every stack in use, by estimated live bytes, largest first.
pub fn summaries() -> Vec<StackSummary> {
    let mut out: Vec<StackSummary> = STACKS
        .iter()
        .enumerate()
        .filter(|(_, s)| s.key.load(Ordering::Acquire) > CLAIMED)
        .map(|(i, s)| {
            let depth = s.depth.load(Ordering::Relaxed).min(DEPTH);
            StackSummary {
                id: FIRST_STACK - i as u16,
                site: s.site.load(Ordering::Relaxed),
                frames: s.frames[..depth]
                    .iter()
                    .map(|f| f.load(Ordering::Relaxed))
                    .collect(),
                live_bytes: s.live_bytes.load(Ordering::Relaxed),
                live_blocks: s.live_blocks.load(Ordering::Relaxed) as f64 / 1024.0,
                samples: s.samples.load(Ordering::Relaxed),
                total_bytes: s.total_bytes.load(Ordering::Relaxed),
            }
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.live_bytes));
    out
}

/// Samples dropped because the table was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_keeps_its_id_and_site() {
        let a = intern(7, &[0x1000, 0x2000, 0x3000]).unwrap();
        let b = intern(7, &[0x1000, 0x2000, 0x3001]).unwrap();
        let c = intern(8, &[0x1000, 0x2000, 0x3000]).unwrap();
        assert!(a != b && a != c && b != c);
        assert_eq!(intern(7, &[0x1000, 0x2000, 0x3000]), Some(a));
        assert!(is_stack(a) && site_of(a) == 7 && site_of(c) == 8);
        assert!(!is_stack(7));
        add_estimate(a, 1000, 1024);
        remove_estimate(a, 1000, 1024);
        let s = summaries().into_iter().find(|s| s.id == a).unwrap();
        assert_eq!((s.live_bytes, s.samples, s.total_bytes), (0, 1, 1000));
        assert_eq!(s.frames, [0x1000, 0x2000, 0x3000]);
    }

    /// Paths that differ only where a site's bits and a frame's bits could
    /// cancel (sites 1000 and 1016, first frames 16 bytes apart) keep
    /// their own stacks and sites: the exactness test with sampling on
    /// charged frees to other sites before.
    #[test]
    fn paths_whose_hashes_could_meet_keep_their_own_sites() {
        let mut ids = Vec::new();
        for site in 1000..1040u16 {
            for k in 0..8usize {
                let frames = [0x4000 + k * 16, 0x5000, 0x6000];
                ids.push((site, frames, intern(site, &frames).unwrap()));
            }
        }
        let distinct: std::collections::BTreeSet<u16> = ids.iter().map(|i| i.2).collect();
        assert_eq!(distinct.len(), ids.len());
        for (site, frames, id) in &ids {
            assert_eq!(intern(*site, frames), Some(*id));
            assert_eq!(site_of(*id), *site, "id {id}");
        }
    }

    /// Two paths with one key (forced here through `holds`' callers: the
    /// same hash, other contents) are told apart.
    #[test]
    fn a_key_alone_does_not_make_a_path_the_same() {
        let a = intern(2000, &[0x7000, 0x7100]).unwrap();
        let slot = &STACKS[index_of(a)];
        assert!(holds(slot, 2000, &[0x7000, 0x7100]));
        assert!(!holds(slot, 2001, &[0x7000, 0x7100]));
        assert!(!holds(slot, 2000, &[0x7000, 0x7101]));
        assert!(!holds(slot, 2000, &[0x7000]));
    }
}
