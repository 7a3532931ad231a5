#[asmalloc::track_alloc(cache)]
const fn f() -> usize {
    1
}

fn main() {
    f();
}
