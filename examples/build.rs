//! Generates the examples' site table from their sources on every build
//! where they changed.
fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    asmalloc_gen::Builder::new().scan(".").write_rust(&out);
}
