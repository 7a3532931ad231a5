#[asmalloc::track_alloc(cache)]
struct Cache {
    items: Vec<u8>,
}

fn main() {
    let _ = Cache { items: Vec::new() }.items;
}
