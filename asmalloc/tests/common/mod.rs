//! Shared pieces of the runtime's integration tests: a deterministic random
//! generator and a shadow model of what should be live per site.
#![allow(dead_code)]

use std::alloc::Layout;
use std::collections::HashMap;
use std::sync::OnceLock;

pub mod exactness;

/// xorshift64*: deterministic, allocation-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How the tracker charges a live block (`ptr`, requested bytes, alignment).
pub type ChargeModel = fn(*mut u8, usize, usize) -> usize;

static MODEL: OnceLock<ChargeModel> = OnceLock::new();

/// Sets the charge model for this test binary (default: requested bytes).
pub fn set_charge_model(model: ChargeModel) {
    let _ = MODEL.set(model);
}

/// What the tracker should charge for a block: over `System` exactly the
/// requested bytes (see `asmalloc::UsableSize`); a binary over another
/// allocator sets its model with [`set_charge_model`].
pub fn charged(ptr: *mut u8, requested: usize, align: usize) -> usize {
    match MODEL.get() {
        Some(model) => model(ptr, requested, align),
        None => requested,
    }
}

/// Per-site expected net bytes and blocks.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub net: HashMap<u16, (i64, i64)>,
}

impl Expected {
    pub fn alloc(&mut self, site: u16, bytes: usize) {
        let e = self.net.entry(site).or_default();
        e.0 += bytes as i64;
        e.1 += 1;
    }

    pub fn free(&mut self, site: u16, bytes: usize) {
        let e = self.net.entry(site).or_default();
        e.0 -= bytes as i64;
        e.1 -= 1;
    }

    pub fn merge(&mut self, other: &Expected) {
        for (&site, &(b, c)) in &other.net {
            let e = self.net.entry(site).or_default();
            e.0 += b;
            e.1 += c;
        }
    }

    /// Asserts the tracker's totals for every site in `sites` equal the model.
    pub fn assert_matches(&self, sites: impl IntoIterator<Item = u16>, phase: &str) {
        let snap = asmalloc::Snapshot::take();
        for site in sites {
            let got = snap.site(site);
            let (bytes, count) = self.net.get(&site).copied().unwrap_or((0, 0));
            assert_eq!(
                (got.net_bytes, got.net_count),
                (bytes, count),
                "site {site} after {phase}: tracker (bytes, count) vs model"
            );
        }
    }
}

/// A live block the test owns.
pub struct Block {
    pub ptr: *mut u8,
    pub layout: Layout,
    pub site: u16,
    pub charged: usize,
}

// SAFETY: a Block is a plain heap allocation with no thread affinity; tests
// move blocks between threads to free them elsewhere.
unsafe impl Send for Block {}

/// Allocates `size` bytes (alignment `align`) charged to `site`.
pub fn alloc_at(site: u16, size: usize, align: usize, zeroed: bool) -> Block {
    let layout = Layout::from_size_align(size, align).unwrap();
    let ptr = {
        let _scope = asmalloc::enter_scope(site, 1);
        // SAFETY: non-zero size layout.
        unsafe {
            if zeroed {
                std::alloc::alloc_zeroed(layout)
            } else {
                std::alloc::alloc(layout)
            }
        }
    };
    assert!(!ptr.is_null());
    assert_eq!(ptr as usize % align, 0, "alignment {align} not honoured");
    if zeroed {
        // SAFETY: the block is `size` bytes long and initialised (zeroed).
        let bytes = unsafe { std::slice::from_raw_parts(ptr, size) };
        assert!(bytes.iter().all(|&b| b == 0));
    }
    // SAFETY: the block is `size` bytes long; the program may use all of it.
    unsafe { ptr.write_bytes(0xab, size) };
    Block {
        ptr,
        layout,
        site,
        charged: charged(ptr, size, align),
    }
}

/// Frees a block (from any thread).
pub fn free(block: Block) {
    // SAFETY: the block came from `alloc_at`/`realloc_at` with this layout.
    unsafe { std::alloc::dealloc(block.ptr, block.layout) }
}

/// Reallocates `block` to `new_size`, charging it to `site`.
pub fn realloc_at(block: Block, site: u16, new_size: usize) -> Block {
    let ptr = {
        let _scope = asmalloc::enter_scope(site, 1);
        // SAFETY: the block is live with this layout; new_size is non-zero.
        unsafe { std::alloc::realloc(block.ptr, block.layout, new_size) }
    };
    assert!(!ptr.is_null());
    let keep = block.layout.size().min(new_size);
    // SAFETY: the first `keep` bytes were preserved (initialised) by realloc.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, keep) };
    assert!(bytes.iter().all(|&b| b == 0xab));
    // SAFETY: the new block is `new_size` bytes long.
    unsafe { ptr.write_bytes(0xab, new_size) };
    Block {
        ptr,
        layout: Layout::from_size_align(new_size, block.layout.align()).unwrap(),
        site,
        charged: charged(ptr, new_size, block.layout.align()),
    }
}
