#[asmalloc::track_alloc(cache)]
const LIMIT: usize = 10;

fn main() {
    let _ = LIMIT;
}
