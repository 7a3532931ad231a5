//! `asmalloc report LOG --pprof FILE`: the log's sites as a pprof heap
//! profile, read back by Go's own pprof (`go tool pprof`, Debian's
//! golang-go, installed by .ci/run; the test fails without it):
//!
//! * an uninstrumented program run under `asmalloc run` (caller sites):
//!   pprof's top entry by live bytes is the leaking function at its
//!   `file:line`, with the bytes and blocks of the log's last line for that
//!   site, and the same numbers as the profile the runtime wrote itself at
//!   exit (`ASMALLOC_PPROF`);
//! * calls and allocated bytes name the churning functions;
//! * an unwritable destination is an error naming the file (exit 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use asmalloc_test_support::{Cc, Lib, TopRow, fresh_dir, pprof_top};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/uninstrumented.c")
}

fn line_of(needle: &str) -> usize {
    let text = std::fs::read_to_string(source()).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn asmalloc() -> Command {
    Lib::Glibc.path();
    Command::new(env!("CARGO_BIN_EXE_asmalloc"))
}

fn row<'a>(rows: &'a [TopRow], function: &str) -> &'a TopRow {
    rows.iter()
        .find(|r| r.function == function)
        .unwrap_or_else(|| panic!("no {function} in {rows:#?}"))
}

/// The last (net bytes, net blocks) the log lists for the site whose
/// function is `function`.
fn last_in_log(log: &Path, function: &str) -> (i64, i64) {
    let text = std::fs::read_to_string(log).unwrap();
    let mut last = None;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for s in v["sites"].as_array().unwrap() {
            if s["function"] == function {
                last = Some((
                    s["net_bytes"].as_i64().unwrap(),
                    s["net_count"].as_i64().unwrap(),
                ));
            }
        }
    }
    last.unwrap_or_else(|| panic!("{function} not in {}", log.display()))
}

#[test]
fn the_logs_profile_tops_with_the_leaking_function_and_its_bytes() {
    let dir = fresh_dir("pprof-cli");
    let exe = Cc::new()
        .args(["-O1", "-g", "-fno-builtin", "-pthread"])
        .arg(source())
        .build(&dir.join("uninstrumented"));
    let (log, from_log, live) = (
        dir.join("run.jsonl"),
        dir.join("from-log.pb.gz"),
        dir.join("live.pb.gz"),
    );
    let out = asmalloc()
        .args(["run", "--interval", "100ms", "--log"])
        .arg(&log)
        .arg("--")
        .arg(&exe)
        .args(["2000", "4000"])
        .env("ASMALLOC_PPROF", &live)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = asmalloc()
        .arg("report")
        .arg(&log)
        .arg("--pprof")
        .arg(&from_log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("pprof heap profile: {}", from_log.display())),
        "{stdout}"
    );

    let (bytes, blocks) = last_in_log(&log, "remember");
    assert_eq!(blocks, 2000);
    assert!(bytes >= 2000 * 1000, "{bytes}");
    let place = format!("uninstrumented.c:{}", line_of("void remember(long i)"));
    for profile in [&from_log, &live] {
        let top = pprof_top(profile, "inuse_space");
        assert_eq!(
            top[0].function,
            "remember",
            "{}: {top:#?}",
            profile.display()
        );
        assert!(top[0].place.ends_with(&place), "{top:#?}");
        assert_eq!(top[0].flat, bytes, "{}: {top:#?}", profile.display());
        assert_eq!(
            row(&pprof_top(profile, "inuse_objects"), "remember").flat,
            blocks
        );
        // Every request made one buffer, table and name (freed on the
        // worker thread): 2000 calls each.
        let calls = pprof_top(profile, "alloc_objects");
        for function in ["make_buffer", "make_table", "copy_name", "remember"] {
            assert_eq!(row(&calls, function).flat, 2000, "{function}: {calls:#?}");
        }
        let space = pprof_top(profile, "alloc_space");
        assert!(row(&space, "make_buffer").flat > 0, "{space:#?}");
    }
}

#[test]
fn an_unwritable_profile_is_an_error_naming_it() {
    let dir = fresh_dir("pprof-cli-bad");
    let log = dir.join("one.jsonl");
    std::fs::write(
        &log,
        r#"{"v":1,"pid":5,"time_ns":1000,"net_bytes":10,"sites":[{"id":3,"function":"f","file":"a.c","line":2,"net_bytes":10,"net_count":1,"allocs":4,"alloc_bytes":40}]}
"#,
    )
    .unwrap();
    let bad = dir.join("no/such/dir/x.pb.gz");
    let out = asmalloc()
        .arg("report")
        .arg(&log)
        .arg("--pprof")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot write {}", bad.display())),
        "{stderr}"
    );
    // The same one-line log, written where it can be: its one site, with
    // the logged calls and bytes.
    let good = dir.join("one.pb.gz");
    let out = asmalloc()
        .arg("report")
        .arg(&log)
        .arg("--pprof")
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let top = pprof_top(&good, "alloc_space");
    assert_eq!(
        top,
        [TopRow {
            flat: 40,
            function: "f".into(),
            place: "a.c:2".into()
        }]
    );
    assert_eq!(pprof_top(&good, "alloc_objects")[0].flat, 4);
    assert_eq!(pprof_top(&good, "inuse_space")[0].flat, 10);
}
