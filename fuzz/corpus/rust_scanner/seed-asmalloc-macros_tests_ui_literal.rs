#[asmalloc::track_alloc("cache")]
fn f() {}

fn main() {
    f();
}
