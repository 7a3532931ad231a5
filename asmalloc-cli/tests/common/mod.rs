//! Helpers shared by the CLI's tests: building third-party C code from the
//! crates in the cargo registry, reading the exit report.

#[allow(unused_imports)] // not every test file builds registry crates
pub use asmalloc_test_support::registry_crate;

/// The exit report's row of the site whose function is `function`:
/// (id, net bytes, net blocks); `None` without one.
#[allow(dead_code)] // not every test file reads rows
pub fn exit_site_row(stderr: &str, function: &str) -> Option<(String, i64, i64)> {
    let row: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("at exit ----"))
        .find(|l| l.starts_with("    ") && l.split_whitespace().nth(3) == Some(function))?
        .split_whitespace()
        .collect();
    let n = row.len();
    Some((
        row[0].to_string(),
        row[n - 2].parse().ok()?,
        row[n - 1].parse().ok()?,
    ))
}
