#[asmalloc::track_alloc]
fn f() -> Vec<u8> {
    vec![1]
}

fn main() {
    f();
}
