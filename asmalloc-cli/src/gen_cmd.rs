//! `asmalloc gen`: runs the `asmalloc-gen` binary, so users have one tool.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// `asmalloc-gen` next to this executable, else on `PATH`.
fn generator() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("asmalloc-gen")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("asmalloc-gen"))
}

pub(crate) fn gen_cmd(args: Vec<OsString>) -> ExitCode {
    let exe = generator();
    match Command::new(&exe).args(args).status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(2).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!(
                "asmalloc: cannot run {}: {e}; build it with `cargo build --release -p asmalloc-gen` \
                 or put it on PATH",
                exe.display()
            );
            ExitCode::from(2)
        }
    }
}
