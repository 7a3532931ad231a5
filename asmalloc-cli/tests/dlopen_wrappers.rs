//! Modules loaded with `dlopen` after the program started: their wrappers
//! are found, and their frames unwound, once the monitor samples after the
//! load. A host program loads a plugin that allocates through a wrapper of
//! its own (`plugin_xmalloc`); under `asmalloc run --wrapper
//! plugin_xmalloc` the plugin is not there at start (the library says so),
//! and still the kept blocks are charged to the plugin's caller of the
//! wrapper (`plugin_keep`), not to the wrapper, and the sampled stacks run
//! through the plugin's frames to `main`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use asmalloc_test_support::{Cc, Lib, fresh_dir};

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

/// The exit report's row of the site whose function is `function`:
/// (net bytes, net blocks), if there is one.
fn site_row(stderr: &str, function: &str) -> Option<(i64, i64)> {
    common::exit_site_row(stderr, function).map(|(_, bytes, blocks)| (bytes, blocks))
}

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let plugin = Cc::new()
        .args(["-O2", "-g", "-fPIC", "-shared", "-fno-builtin"])
        .arg(c_dir().join("plugin.c"))
        .build(&dir.join("plugin.so"));
    let host = Cc::new()
        .args(["-O2", "-g"])
        .arg(c_dir().join("plugin_host.c"))
        .arg("-ldl")
        .build(&dir.join("plugin_host"));
    (host, plugin)
}

fn run(host: &Path, plugin: &Path, extra: &[&str]) -> String {
    run_with(host, plugin, extra, &[], "kept 2000\n", None)
}

fn run_with(
    host: &Path,
    plugin: &Path,
    extra: &[&str],
    args: &[&str],
    stdout: &str,
    sample_bytes: Option<&str>,
) -> String {
    Lib::Glibc.path();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asmalloc"));
    if let Some(bytes) = sample_bytes {
        cmd.env("ASMALLOC_SAMPLE_BYTES", bytes);
    } else {
        cmd.env_remove("ASMALLOC_SAMPLE_BYTES");
    }
    let out = cmd
        .args(["run", "--interval", "20ms", "--glibc"])
        .args(extra)
        .arg("--")
        .arg(host)
        .arg(plugin)
        .args(args)
        .env_remove("LD_PRELOAD")
        .env_remove("ASMALLOC_WRAPPERS")
        .env("ASMALLOC_TOP_SITES", "30")
        .output()
        .expect("run asmalloc");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    stderr
}

#[test]
fn a_plugin_s_wrapper_is_followed_once_the_monitor_has_seen_it() {
    let dir = fresh_dir("dlopen-wrappers");
    let (host, plugin) = build(&dir);

    // Not followed: the wrapper is the site of everything the plugin keeps.
    let plain = run(&host, &plugin, &[]);
    let (bytes, blocks) = site_row(&plain, "plugin_xmalloc")
        .unwrap_or_else(|| panic!("no plugin_xmalloc site:\n{plain}"));
    assert_eq!(blocks, 2000, "{plain}");
    assert!(bytes >= 2000 * 1000, "{plain}");

    // Followed, with sampled stacks.
    // One sample per 16 KiB: ~120 samples of the 2 MB kept, so the kept
    // path is sure to be listed, first.
    let followed = run_with(
        &host,
        &plugin,
        &["--wrapper", "plugin_xmalloc", "--stacks"],
        &[],
        "kept 2000\n",
        Some("16K"),
    );
    // At start the plugin was not loaded: the library said so.
    assert!(
        followed.contains("no function 'plugin_xmalloc'"),
        "{followed}"
    );
    let (bytes, blocks) = site_row(&followed, "plugin_keep")
        .unwrap_or_else(|| panic!("no plugin_keep site:\n{followed}"));
    assert_eq!(blocks, 2000, "{followed}");
    assert!(bytes >= 2000 * 1000, "{followed}");
    assert!(
        site_row(&followed, "plugin_xmalloc").is_none_or(|(_, blocks)| blocks == 0),
        "the wrapper is still a site with live blocks:\n{followed}"
    );
    // The sampled stacks go through the plugin's frames (its unwind
    // tables, copied when the monitor found it) to main.
    let through: Vec<&str> = followed
        .lines()
        .skip_while(|l| !l.contains("sampled stacks (one sample per"))
        .skip_while(|l| !l.starts_with("    stack "))
        .skip(1)
        .take_while(|l| l.starts_with("        "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        through.get(..3),
        Some(&["plugin_xmalloc", "plugin_keep", "main"][..]),
        "{followed}"
    );
}

/// The plugin is unloaded and loaded again, and allocates through its
/// wrapper at once, with stacks sampled often: the unwinder still has the
/// first load's tables (copies: never the unloaded mapping) until the
/// monitor's next sample. The program runs on unharmed, and every block
/// is counted.
#[test]
fn a_plugin_unloaded_and_loaded_again_is_walked_safely() {
    let dir = fresh_dir("dlopen-reload");
    let (host, plugin) = build(&dir);
    let stderr = run_with(
        &host,
        &plugin,
        &["--wrapper", "plugin_xmalloc", "--stacks"],
        &["reload"],
        "reloaded, kept 2000 more\nkept 2000\n",
        Some("16K"),
    );
    // 4,000 blocks kept, plus the few of start-up (the loader's, stdio's).
    let blocks: i64 = stderr
        .lines()
        .skip_while(|l| !l.contains("at exit ----"))
        .find_map(|l| {
            let rest = l.trim_start().strip_prefix("heap: ")?;
            rest.split(" net in ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no heap line:\n{stderr}"));
    assert!((4000..4030).contains(&blocks), "{blocks} blocks:\n{stderr}");
    let kept: i64 = ["plugin_keep", "plugin_xmalloc"]
        .iter()
        .filter_map(|f| site_row(&stderr, f))
        .map(|(_, blocks)| blocks)
        .sum();
    assert!(kept >= 2000, "{stderr}");
}
