//! The library's own memory leaves the program's heap tuning alone.
//!
//! glibc raises its mmap threshold (and its trim threshold, to twice that)
//! whenever a chunk above it is freed: a block the library frees on its own
//! threads (the monitor's buffers, the namer's debug information) must not
//! do that for the program. Here a thread marked as doing the library's
//! work frees 4 MiB of its own; a 200 KiB block of the program must still
//! come from mmap, as it does before. A program of its own (`harness =
//! false`), so nothing else has freed a large block first.

use std::hint::black_box;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

/// Whether a fresh 200 KiB block of the program comes from mmap (it is
/// kept: freeing it would move the threshold itself, as glibc does raw).
fn big_block_is_mmapped(keep: &mut Vec<Vec<u8>>) -> bool {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let before = unsafe { libc::mallinfo2() }.hblks;
    keep.push(black_box(vec![1u8; 200 << 10]));
    // SAFETY: as above.
    let after = unsafe { libc::mallinfo2() }.hblks;
    after > before
}

fn main() {
    let mut keep = Vec::new();
    assert!(
        big_block_is_mmapped(&mut keep),
        "premise: glibc serves 200 KiB with mmap at start"
    );
    std::thread::spawn(|| {
        let was = asmalloc::__private::engine::set_library_work(true);
        let own = black_box(vec![7u8; 4 << 20]);
        drop(own);
        asmalloc::__private::engine::set_library_work(was);
    })
    .join()
    .unwrap();
    assert!(
        big_block_is_mmapped(&mut keep),
        "after the library freed 4 MiB of its own, a 200 KiB block of the program came from the heap: glibc's mmap threshold was raised"
    );
    println!("own_blocks: ok");
}
