#[asmalloc::track_alloc()]
fn f() {}

fn main() {
    f();
}
