// A user's crate: tracked functions, a build.rs that generates the table.
use asmalloc::track_alloc;

include!(concat!(env!("OUT_DIR"), "/mallocations.rs"));

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

#[track_alloc(first)]
fn first() -> Vec<u8> {
    vec![0; 10]
}

// NEW FUNCTIONS

fn main() {
    asmalloc::register_sites(&MALLOCATIONS).unwrap();
    let keep = first();
    // NEW CALLS
    for s in asmalloc::Snapshot::take().sites.iter().filter(|s| s.id != 0) {
        if let Some(i) = s.info() {
            println!(
                "{} {}:{} type={} dynamic={} net={}",
                i.function, i.file, i.line, i.type_name, i.dynamic, s.net_bytes
            );
        }
    }
    drop(keep);
}
