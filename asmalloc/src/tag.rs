//! The per-block site tag.
//!
//! Every tracked block carries 8 bytes the program never sees: the id of the
//! site that allocated it, and a 48-bit check derived from the block's address
//! and size. A free on any thread reads the tag back and charges the site; a
//! tag whose check does not match (a block from before the tracker started,
//! from another allocator, or overwritten by a buffer overrun) is *foreign*:
//! counted as such and never charged to a site, so it can neither crash nor
//! silently mis-attribute.
//!
//! The original kept a bare 4-byte id at the end of `malloc_usable_size`,
//! where a program may legally write; here the caller reserves the tag's
//! bytes beyond what it reports as usable.

/// Bytes a tag occupies.
pub const TAG_SIZE: usize = 8;

/// A fixed key mixed into every check, so that simple patterns (zeroes,
/// small integers, copies of the address) do not validate by accident. It
/// is not a secret: the tag guards against accidents, not adversaries.
const KEY: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn check(addr: usize, size: usize, site: u16) -> u64 {
    // One multiply by an odd constant: every input bit reaches the top 48
    // bits, so neighbouring blocks, other sizes and other sites give
    // unrelated checks. (A foreign block passes by chance with odds of about
    // 2^-48; no adversary is assumed.)
    // (The site needs no shift of its own: the word stores it beside the
    // check, so two (address, site) pairs that mix to the same value still
    // give different words. One instruction less per tag, either way.)
    let x = (addr as u64) ^ KEY ^ ((size as u64) << 20) ^ u64::from(site);
    x.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 16
}

/// The tag word for a block at `addr` whose tag is placed for `size`.
#[inline]
pub fn encode(addr: usize, size: usize, site: u16) -> u64 {
    (check(addr, size, site) << 16) | u64::from(site)
}

/// The site in `word`, if it is a valid tag for a block at `addr` and `size`.
#[inline]
pub fn decode(addr: usize, size: usize, word: u64) -> Option<u16> {
    let site = (word & 0xffff) as u16;
    (word >> 16 == check(addr, size, site)).then_some(site)
}

/// Flipped into the check of the library's *own* blocks (see
/// [`encode_own`]), so an own tag never decodes as a site tag and a site
/// tag never passes [`is_own`].
const OWN: u64 = 0x0000_5a5a_c3c3_a5a5;

/// The tag word for a block the tracker allocated for its own work (the
/// LD_PRELOAD library's reports, monitor and log, and what libc allocates
/// on their behalf). Such a block is never charged to a site: freeing it —
/// even from program code, as glibc does with the thread-exit destructor
/// list — is neither a program free nor a foreign one.
#[inline]
pub fn encode_own(addr: usize, size: usize) -> u64 {
    (check(addr, size, 0) ^ OWN) << 16
}

/// True if `word` is an own tag ([`encode_own`]) for a block at `addr` and
/// `size`.
#[inline]
pub fn is_own(addr: usize, size: usize, word: u64) -> bool {
    word & 0xffff == 0 && word >> 16 == check(addr, size, 0) ^ OWN
}

/// A word no tag check produces for a live block: written over a tag when
/// its block is freed, so memory reused by an untagged allocation never
/// carries a stale tag that still validates (same address, same size).
pub const CLEARED: u64 = 0;

/// Writes a tag at `at` (any alignment).
///
/// # Safety
/// `at..at + TAG_SIZE` must be writable memory owned by the caller's block.
#[inline]
pub unsafe fn write(at: *mut u8, word: u64) {
    // SAFETY: the caller guarantees the 8 bytes are writable; the unaligned
    // write makes no alignment assumption.
    unsafe { at.cast::<u64>().write_unaligned(word) }
}

/// Reads a tag at `at` (any alignment).
///
/// # Safety
/// `at..at + TAG_SIZE` must be readable memory.
#[inline]
pub unsafe fn read(at: *const u8) -> u64 {
    // SAFETY: the caller guarantees the 8 bytes are readable.
    unsafe { at.cast::<u64>().read_unaligned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_site() {
        for site in [0u16, 1, 2, 1000, u16::MAX] {
            let w = encode(0x7f00_1234_5670, 48, site);
            assert_eq!(decode(0x7f00_1234_5670, 48, w), Some(site));
        }
    }

    #[test]
    fn other_address_or_size_is_foreign() {
        let w = encode(0x1000, 32, 7);
        assert_eq!(decode(0x1010, 32, w), None);
        assert_eq!(decode(0x1000, 40, w), None);
        assert_eq!(decode(0x1000, 32, w ^ (1 << 40)), None);
        assert_eq!(decode(0x1000, 32, 0), None);
        assert_eq!(decode(0x1000, 32, u64::MAX), None);
    }

    #[test]
    fn own_tags_are_not_site_tags_and_back() {
        for (addr, size) in [(0x1000usize, 32usize), (0x7f00_1234_5670, 48), (0x10, 8)] {
            let own = encode_own(addr, size);
            assert!(is_own(addr, size, own));
            assert_eq!(decode(addr, size, own), None);
            assert!(!is_own(addr + 16, size, own));
            assert!(!is_own(addr, size + 8, own));
            for site in [0u16, 1, 7, u16::MAX] {
                assert!(!is_own(addr, size, encode(addr, size, site)));
            }
            assert!(!is_own(addr, size, CLEARED));
            assert_eq!(decode(addr, size, CLEARED), None);
        }
    }
}
