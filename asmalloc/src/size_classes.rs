//! jemalloc's size classes, computed inline instead of asked for.
//!
//! Both jemalloc builds need a fresh block's usable size on every
//! allocation: the Rust `AsmAlloc<Jemalloc>` to charge a layout the same
//! bytes on allocation and on free, the LD_PRELOAD library to place the tag
//! in a block's last 8 bytes. Asking jemalloc (`nallocx`, `sallocx`) costs a
//! call and, for `sallocx`, a radix-tree lookup — about 35 instructions,
//! once per allocation, measured under redis. For a block allocated without
//! an alignment flag the answer is jemalloc's own size-class formula
//! (`sz_s2u_compute`), a few instructions.
//!
//! The formula depends on jemalloc's build constants (a 16-byte quantum,
//! four classes per doubling), so it is only used after [`formula_agrees`]
//! has compared it with jemalloc's `nallocx` — over every size up to 16 KiB
//! and around every class boundary up to 2^40 (about 0.2 ms, once). A
//! caller whose check fails asks jemalloc every time.

/// jemalloc's `sz_s2u_compute` for LG_QUANTUM 4, SC_LG_NGROUP 2,
/// LG_TINY_MIN 3 (every 64-bit Linux build of tikv-jemalloc-sys): 8, 16,
/// then multiples of 16 up to 64, then four classes per doubling. Sizes
/// past the largest class (which no allocation succeeds with) saturate.
///
/// Sizes up to [`LOOKUP_MAX`] (most allocations) are read from a table
/// made at compile time (1 KiB of read-only data, as jemalloc's own
/// `sz_size2index_tab`): five instructions instead of the formula's
/// fifteen, on every allocation and (in `AsmAlloc<Jemalloc>`) every free.
#[inline(always)]
pub fn jemalloc_class(size: usize) -> usize {
    if size <= LOOKUP_MAX {
        SMALL_CLASSES[size.div_ceil(8)] as usize
    } else {
        jemalloc_class_formula(size)
    }
}

/// The largest size [`jemalloc_class`] reads from its table (jemalloc's
/// `SC_LOOKUP_MAXCLASS`).
pub const LOOKUP_MAX: usize = 4096;

/// `SMALL_CLASSES[i]`: the class of sizes `8 * (i - 1) + 1 ..= 8 * i`
/// (every class is a multiple of 8, so it is the class of `8 * i`).
static SMALL_CLASSES: [u16; LOOKUP_MAX / 8 + 1] = {
    let mut table = [0u16; LOOKUP_MAX / 8 + 1];
    let mut i = 0;
    while i < table.len() {
        table[i] = jemalloc_class_formula(8 * i) as u16;
        i += 1;
    }
    table
};

/// The formula behind [`jemalloc_class`] (jemalloc's `sz_s2u_compute`).
#[inline(always)]
const fn jemalloc_class_formula(size: usize) -> usize {
    if size <= 8 {
        return 8;
    }
    // lg_floor(2 * size - 1) = bits needed for size - 1, plus 1.
    let x = usize::BITS - (size - 1).leading_zeros();
    // x < SC_LG_NGROUP + LG_QUANTUM + 1 (7): spacing of one quantum.
    let lg_delta = if x < 7 { 4 } else { x - 3 };
    let mask = (1usize << lg_delta) - 1;
    size.saturating_add(mask) & !mask
}

/// Whether [`jemalloc_class`] gives what `nallocx(size, 0)` says (a 0
/// answer, for a size too large to be a class, agrees with anything) for
/// every size up to 16 KiB and each class boundary and its neighbours up to
/// 2^40.
pub fn formula_agrees(nallocx: impl Fn(usize) -> usize) -> bool {
    let check = |size: usize| {
        let n = nallocx(size);
        n == 0 || n == jemalloc_class(size)
    };
    (1..=16_384).all(check)
        && (14..40).all(|lg| {
            (0..4usize).all(|k| {
                let boundary = (1usize << lg) + k * (1usize << (lg - 2));
                check(boundary - 1) && check(boundary) && check(boundary + 1)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_classes_are_jemallocs() {
        let classes: Vec<usize> = [1, 8, 9, 16, 17, 48, 64, 65, 80, 81, 96, 112, 128, 129, 160]
            .into_iter()
            .map(jemalloc_class)
            .collect();
        assert_eq!(
            classes,
            [8, 8, 16, 16, 32, 48, 64, 80, 80, 96, 96, 112, 128, 160, 160]
        );
        // Four classes per doubling: 4096 -> 5120, 6144, 7168, 8192.
        assert_eq!(jemalloc_class(4097), 5120);
        assert_eq!(jemalloc_class(7169), 8192);
        assert_eq!(jemalloc_class(usize::MAX), usize::MAX & !((1 << 61) - 1));
    }

    #[test]
    fn a_differing_allocator_is_noticed() {
        assert!(formula_agrees(jemalloc_class));
        assert!(formula_agrees(|_| 0));
        assert!(!formula_agrees(|s| if s == 1 << 20 { 0 } else { s }));
    }

    #[test]
    fn the_table_is_the_formula() {
        for size in 0..=LOOKUP_MAX + 64 {
            assert_eq!(jemalloc_class(size), jemalloc_class_formula(size), "{size}");
        }
    }
}
