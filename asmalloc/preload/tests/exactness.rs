//! Exact per-site counts, under both preload libraries
//! (tests/common/mod.rs): threads freeing each other's blocks; four threads
//! of random allocation-family calls with the leak monitor, its log and the
//! periodic reporter all on (every site equals the program's own count);
//! quiet programs ending at exactly zero; the Lua interpreter, garbage
//! collecting, never showing a negative site.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[macro_use]
mod common;

use common::*;

fn per_site_net_bytes_exact_when_threads_free_each_others_blocks(lib: Lib) {
    let exe = compile_linked(lib, "xthread", &["-rdynamic"]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let first = r.stdout.lines().next().unwrap();
    let field = |name: &str| -> i64 {
        first
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {first}"))
    };
    let expect = field("expect_bytes");
    assert!(expect > 0);
    assert_eq!(field("sum_of_thread_totals"), expect, "{}", r.stdout);
    // Each thread's own record is far from the sum: the frees went
    // elsewhere, and still add up.
    for l in r.stdout.lines().skip(1) {
        let net: i64 = l.rsplit("net=").next().unwrap().parse().unwrap();
        assert_ne!(net, 0, "{l}");
    }
    // The exit report (all threads folded) has the exact bytes and blocks.
    let row = site_row_by_id(&r.stderr, 5).unwrap_or_else(|| panic!("{}", r.stderr));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[cols.len() - 2], expect.to_string(), "{row}");
    assert_eq!(
        cols[cols.len() - 1],
        field("expect_count").to_string(),
        "{row}"
    );
    assert!(
        r.stderr.contains("threads: 1 live, 5 total"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("#1 worker"), "thread names: {}", r.stderr);
}

/// Four threads, 40 sites, 100,000 random calls each (malloc, calloc,
/// realloc, posix_memalign, memalign, aligned_alloc, strndup, realloc to 0,
/// free; blocks freed and resized on other threads), with the monitor, log
/// and reporter running: every site's net bytes and blocks in the exit
/// report, and in the monitor's last sample, equal the program's own count;
/// no foreign free.
fn exact_with_monitor_log_and_reporter_on(lib: Lib) {
    let exe = compile_linked(lib, "exactness", &[]);
    let log = scratch().join(format!("exactness-{}.jsonl", lib.name()));
    let out = scratch().join(format!("exactness-{}.out", lib.name()));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&out);
    let r = run_with(&exe, lib, &["100000", "7"], &everything_on(&log, &out));
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("exactness done"), "{}", r.stdout);
    let model: std::collections::BTreeMap<u64, (i64, i64)> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("site "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str| s.split('=').nth(1).unwrap().parse::<i64>().unwrap();
            (w[0].parse().unwrap(), (num(w[1]), num(w[2])))
        })
        .collect();
    assert_eq!(model.len(), 40);
    assert!(
        model.values().map(|v| v.0).sum::<i64>() > 10_000_000,
        "the scenario keeps many MB live at exit: {model:?}"
    );
    let reports = json_lines(&out);
    assert!(
        reports.len() >= 3,
        "periodic reports were written while it ran"
    );
    let last = reports.last().unwrap();
    let charged = sites_of(last);
    for (site, want) in &model {
        assert_eq!(
            charged.get(site).copied().unwrap_or((0, 0)),
            *want,
            "site {site}: report vs the program's own count"
        );
    }
    assert_eq!(foreign_frees(last), 0, "{last}");
    // The monitor's log lists changed sites only: fold it to the latest.
    let samples = json_lines(&log);
    assert!(samples.len() >= 3, "the monitor sampled while it ran");
    let mut latest = std::collections::BTreeMap::new();
    for line in &samples {
        latest.extend(sites_of(line));
    }
    for (site, want) in &model {
        assert_eq!(
            latest.get(site).copied().unwrap_or((0, 0)),
            *want,
            "site {site}: the monitor's last sample vs the program's count"
        );
    }
}

/// `realloc(NULL, 16)`, its free, and ten malloc/free pairs (or nothing at
/// all) with the monitor and log on: exactly zero net, no foreign free —
/// the library's own allocations (monitor thread, log writer, the thread
/// destructor lists libc keeps for it) are never charged to the program,
/// and never uncharged from it.
fn quiet_programs_end_at_zero_with_the_monitor_on(lib: Lib) {
    let exe = compile("quiet", &[]);
    for args in [&[][..], &["work"][..]] {
        let tag = format!("quiet-{}-{}", lib.name(), args.len());
        let log = scratch().join(format!("{tag}.jsonl"));
        let out = scratch().join(format!("{tag}.out"));
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&out);
        let r = run_with(&exe, lib, args, &everything_on(&log, &out));
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(!r.stderr.contains("asmalloc"), "{}", r.stderr);
        let last = json_lines(&out).pop().expect("an exit report");
        assert_eq!(foreign_frees(&last), 0, "{args:?}: {last}");
        assert_eq!(last["net_count"], 0, "{args:?}: {last}");
        assert_eq!(last["net_bytes"], 0, "{args:?}: {last}");
        for line in json_lines(&log) {
            for (site, (bytes, count)) in sites_of(&line) {
                assert!(bytes >= 0 && count >= 0, "site {site} negative: {line}");
            }
        }
    }
}

/// The Lua 5.4 interpreter built from the `lua-src` crate's sources (its
/// library, and a ten-line `main` that runs a file), running an
/// allocation-heavy script with its garbage collector at work, with the
/// monitor sampling every 10 ms: no site is ever negative, in any sample of
/// the log or in the exit report, and no block is foreign.
fn lua_interpreter_never_shows_a_negative_site(lib: Lib) {
    let exe = lua_interpreter();
    let script = scratch().join("gc.lua");
    std::fs::write(
        &script,
        "local t = {}\n\
         for i = 1, 200000 do t[i] = string.rep('x', i % 100) .. i end\n\
         local c = 0\n\
         for _, v in pairs(t) do c = c + #v end\n\
         t = nil\n\
         collectgarbage()\n\
         local s = {}\n\
         for i = 1, 50000 do s[#s + 1] = {i, tostring(i)} end\n\
         print(c, #s)\n",
    )
    .unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg(&script);
    let plain = run_cmd(cmd, None, &[]);
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    let log = scratch().join(format!("lua-{}.jsonl", lib.name()));
    let out = scratch().join(format!("lua-{}.out", lib.name()));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&out);
    let r = run_with(
        &exe,
        lib,
        &[script.to_str().unwrap()],
        &everything_on(&log, &out),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, plain.stdout);
    assert_eq!(r.stdout, "10988895\t50000\n");
    let samples = json_lines(&log);
    assert!(samples.len() >= 2, "the monitor sampled while Lua ran");
    for line in samples.iter().chain(json_lines(&out).iter()) {
        for (site, (bytes, count)) in sites_of(line) {
            assert!(bytes >= 0 && count >= 0, "site {site} negative: {line}");
        }
    }
    let last = json_lines(&out).pop().unwrap();
    assert_eq!(foreign_frees(&last), 0, "{last}");
}

/// Builds the Lua 5.4 interpreter from the `lua-src` crate (a
/// dev-dependency, so cargo has its sources; found with `cargo metadata`).
fn lua_interpreter() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let meta = asmalloc_test_support::cargo()
            .args(["metadata", "--format-version", "1"])
            .current_dir(manifest_dir())
            .output()
            .expect("run cargo metadata");
        assert!(
            meta.status.success(),
            "{}",
            String::from_utf8_lossy(&meta.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
        let manifest = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "lua-src")
            .expect("lua-src is a dev-dependency")["manifest_path"]
            .as_str()
            .unwrap()
            .to_string();
        let src = std::fs::read_dir(Path::new(&manifest).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("lua-5.4")
            })
            .expect("lua-src ships Lua 5.4");
        let main = manifest_dir().join("tests/c/lua_main.c");
        let sources: Vec<PathBuf> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .filter(|p| !matches!(p.file_name().unwrap().to_str(), Some("lua.c" | "luac.c")))
            .collect();
        Cc::new()
            .args(["-O2", "-g", "-DLUA_USE_LINUX", "-I"])
            .arg(&src)
            .arg(&main)
            .args(&sources)
            .args(["-lm", "-ldl"])
            .build(&scratch().join("lua"))
    })
    .clone()
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

under_both!(
    per_site_net_bytes_exact_when_threads_free_each_others_blocks,
    exact_with_monitor_log_and_reporter_on,
    quiet_programs_end_at_zero_with_the_monitor_on,
    lua_interpreter_never_shows_a_negative_site,
);
