#[asmalloc::track_alloc(cache, extra)]
fn f() {}

fn main() {
    f();
}
