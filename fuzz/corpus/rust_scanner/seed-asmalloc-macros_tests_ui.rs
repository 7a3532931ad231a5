//! Misuse of `#[track_alloc]` is a compile error at the offending span that
//! says what to write instead (and only that error).
#[test]
fn misuse_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
