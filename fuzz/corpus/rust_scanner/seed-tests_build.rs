//! Generates this crate's site table from its sources on every build where
//! they changed: the way a user's crate keeps `#[track_alloc]` names right.
fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    asmalloc_gen::Builder::new().scan("src").write_rust(&out);
}
