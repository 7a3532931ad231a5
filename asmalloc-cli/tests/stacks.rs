//! Sampled stacks end to end: a C server (`tests/c/stacks.c`, no asmalloc
//! code) keeps ~76 MiB through main → serve → handle → keep_node and
//! allocates ~190 MiB more that it frees at once. Under `asmalloc run
//! --stacks` the report's sampled stacks name the keeping path frame by
//! frame, estimate its live bytes within 10% of the exact count of its
//! site, charge every freed sample back (estimates of 0), and leave the
//! sites' exact numbers as they are without sampling.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use asmalloc_test_support::{Cc, Lib, fresh_dir};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/stacks.c")
}

/// `asmalloc run [--stacks] -- stacks 20000`: its stderr.
fn run(exe: &Path, stacks: bool) -> String {
    Lib::Glibc.path();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asmalloc"));
    cmd.arg("run").env_remove("ASMALLOC_SAMPLE_BYTES");
    if stacks {
        // One sample per 32 KiB (instead of --stacks' 512 KiB): ~2,400
        // samples of the kept path, so the estimate's standard error is
        // about 2%.
        cmd.arg("--stacks").env("ASMALLOC_SAMPLE_BYTES", "32K");
    }
    let out = cmd
        .arg("--")
        .arg(exe)
        .arg("20000")
        .env_remove("LD_PRELOAD")
        .env("ASMALLOC_TOP_SITES", "20")
        .output()
        .expect("run asmalloc");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "served 20000 requests, kept 20000 (40000)\n"
    );
    stderr
}

/// `80.3 MiB`, `4.0 KiB`, `0 B` → bytes.
fn parse_bytes(number: &str, unit: &str) -> f64 {
    let n: f64 = number.trim_start_matches('~').parse().unwrap();
    n * match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    }
}

/// A sampled stack of the report: estimated live bytes and frame names.
struct Stack {
    site: String,
    live: f64,
    functions: Vec<String>,
}

fn stacks(stderr: &str) -> Vec<Stack> {
    let mut out: Vec<Stack> = Vec::new();
    for line in stderr
        .lines()
        .skip_while(|l| !l.contains("sampled stacks (one sample per"))
        .skip(1)
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("    stack ") {
            // stack ID site SITE ~N UNIT live in …
            out.push(Stack {
                site: words[3].to_string(),
                live: parse_bytes(words[4], words[5]),
                functions: Vec::new(),
            });
        } else if line.starts_with("        ") && !out.is_empty() {
            out.last_mut().unwrap().functions.push(words[0].to_string());
        } else {
            break;
        }
    }
    out
}

/// The exit report's row of the site whose function is `function`:
/// (id, net bytes, net count).
fn site_row(stderr: &str, function: &str) -> (String, i64, i64) {
    common::exit_site_row(stderr, function)
        .unwrap_or_else(|| panic!("no site {function}:\n{stderr}"))
}

#[test]
fn sampled_stacks_name_the_path_and_estimate_its_live_bytes() {
    let dir = fresh_dir("stacks");
    let exe = Cc::new()
        .args(["-O2", "-g", "-fno-builtin"])
        .arg(source())
        .build(&dir.join("stacks"));
    let sampled = run(&exe, true);
    let all = stacks(&sampled);
    assert!(!all.is_empty(), "no sampled stacks:\n{sampled}");

    // The kept path, innermost first, and its estimate.
    let (keep_site, keep_bytes, keep_count) = site_row(&sampled, "keep_node");
    assert_eq!(keep_count, 20000);
    let top = &all[0];
    assert_eq!(top.site, keep_site, "{sampled}");
    assert_eq!(
        top.functions[..4],
        ["keep_node", "handle", "serve", "main"],
        "{sampled}"
    );
    let error = (top.live - keep_bytes as f64).abs() / keep_bytes as f64;
    assert!(
        error < 0.10,
        "estimate {} vs exact {keep_bytes} ({:.1}% off):\n{sampled}",
        top.live,
        error * 100.0
    );

    // Every scratch block was freed: its samples were all taken back.
    let scratch: Vec<&Stack> = all
        .iter()
        .filter(|s| s.functions.first().map(String::as_str) == Some("scratch"))
        .collect();
    assert!(!scratch.is_empty(), "{sampled}");
    assert!(scratch.iter().all(|s| s.live == 0.0), "{sampled}");

    // Sampling changes no site's exact numbers.
    let plain = run(&exe, false);
    assert!(!plain.contains("sampled stacks"), "{plain}");
    let (_, plain_bytes, plain_count) = site_row(&plain, "keep_node");
    assert_eq!((plain_bytes, plain_count), (keep_bytes, keep_count));
    let (_, scratch_bytes, scratch_count) = site_row(&sampled, "scratch");
    assert_eq!((scratch_bytes, scratch_count), (0, 0));
}

/// The JSON exit report carries the sampled stacks too: the live ones,
/// named, largest first, the kept path on top with its estimate.
#[test]
fn the_json_report_lists_the_sampled_stacks() {
    let dir = fresh_dir("stacks-json");
    let exe = Cc::new()
        .args(["-O2", "-g", "-fno-builtin"])
        .arg(source())
        .build(&dir.join("stacks"));
    let report = dir.join("report.json");
    let out = Command::new(exe)
        .arg("20000")
        .env("LD_PRELOAD", Lib::Glibc.path())
        .env("ASMALLOC_CALLERS", "1")
        .env("ASMALLOC_SAMPLE_BYTES", "32K")
        .env("ASMALLOC_REPORT_AT_EXIT", "1")
        .env("ASMALLOC_REPORT_FORMAT", "json")
        .env("ASMALLOC_OUTPUT", &report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["sample_bytes"], 32 * 1024, "{line}");
    let stacks = line["stacks"].as_array().expect("a stacks array");
    assert!(!stacks.is_empty(), "{line}");
    let top = &stacks[0];
    let functions: Vec<&str> = top["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        functions[..4],
        ["keep_node", "handle", "serve", "main"],
        "{top}"
    );
    assert!(
        top["frames"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("stacks.c"),
        "{top}"
    );
    // Its site is the kept path's caller site, and its estimate is within
    // 10 % of that site's exact live bytes.
    let site = line["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == top["site"])
        .unwrap_or_else(|| panic!("no site {} in {line}", top["site"]));
    assert_eq!(site["function"], "keep_node");
    let exact = site["net_bytes"].as_f64().unwrap();
    let estimate = top["est_bytes"].as_f64().unwrap();
    assert!(
        (estimate - exact).abs() / exact < 0.10,
        "{estimate} vs {exact}"
    );
    // Only live stacks are listed: the freed scratch path is not.
    assert!(
        stacks.iter().all(|s| s["est_bytes"].as_i64().unwrap() != 0),
        "{line}"
    );
}

/// Real programs (python3, perl, sort, git, and a multi-threaded C
/// program) print the same with caller sites, the built-in wrappers and
/// sampled stacks (one sample per 16 KiB: many samples) all on as without
/// the library, and report sampled stacks.
#[test]
fn real_programs_run_the_same_with_stacks_on() {
    let dir = fresh_dir("stacks-real");
    let words: String = (0..40000)
        .map(|i| format!("w{}\n", (i * 7919) % 40000))
        .collect();
    let input = dir.join("words.txt");
    std::fs::write(&input, words).unwrap();
    // The multi-threaded C program of the preload's real-program tests:
    // four threads of malloc/calloc/realloc/free with a deterministic sum.
    let c = Path::new(env!("CARGO_MANIFEST_DIR")).join("../asmalloc/preload/tests/c");
    let mt = Cc::new()
        .args(["-O2", "-g", "-pthread", "-I"])
        .arg(&c)
        .arg(c.join("mt.c"))
        .build(&dir.join("mt"));
    let mt = mt.display().to_string();
    let programs: [(&str, Vec<String>); 5] = [
        (
            "python3",
            vec![
                "-c".into(),
                "import json; d = {str(i): [i] * 3 for i in range(60000)}; print(len(json.dumps(d)))"
                    .into(),
            ],
        ),
        (
            "perl",
            vec![
                "-e".into(),
                "my %h; $h{\"k$_\"} = [$_] for 1..60000; print scalar(keys %h), \"\\n\"".into(),
            ],
        ),
        ("sort", vec![input.display().to_string()]),
        ("git", vec!["--version".into()]),
        (&mt, Vec::new()),
    ];
    for (program, args) in &programs {
        let plain = Command::new(program)
            .args(args)
            .env_remove("LD_PRELOAD")
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert_eq!(plain.status.code(), Some(0), "{program}");
        let traced = Command::new(program)
            .args(args)
            .env("LD_PRELOAD", Lib::Glibc.path())
            .env("ASMALLOC_CALLERS", "1")
            .env("ASMALLOC_SAMPLE_BYTES", "16K")
            .env_remove("ASMALLOC_WRAPPERS")
            .env_remove("ASMALLOC_BUILTIN_WRAPPERS")
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        let stderr = String::from_utf8_lossy(&traced.stderr);
        assert_eq!(traced.status.code(), Some(0), "{program}: {stderr}");
        assert_eq!(traced.stdout, plain.stdout, "{program}: {stderr}");
        assert!(
            stderr.contains("sampled stacks (one sample per 16.0 KiB"),
            "{program}: {stderr}"
        );
    }
}

/// A program that asks glibc where its own stack is (`pthread_getattr_np`,
/// which allocates holding the thread's lock) as its first allocation on
/// every thread, with every allocation sampled: the library must find the
/// stack's bounds without that lock (it hung: Ruby under the battery), and
/// still walk both kinds of thread to their roots.
#[test]
fn a_program_asking_for_its_own_stack_is_walked_without_hanging() {
    let dir = fresh_dir("own-stack");
    let exe = Cc::new()
        .args(["-O2", "-g", "-pthread", "-fno-builtin"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/own_stack.c"))
        .build(&dir.join("own_stack"));
    Lib::Glibc.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_asmalloc"))
        .args(["run", "--stacks", "--"])
        .arg(&exe)
        .args(["4", "200"])
        .env_remove("LD_PRELOAD")
        // Every allocation is a sample: the first one of each thread is
        // the one pthread_getattr_np makes holding its lock.
        .env("ASMALLOC_SAMPLE_BYTES", "1")
        .env("ASMALLOC_TOP_SITES", "20")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run asmalloc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            // The program is asmalloc's child: end it first.
            let _ = Command::new("pkill")
                .args(["-9", "-P", &child.id().to_string()])
                .status();
            let _ = child.kill();
            panic!(
                "own_stack still running after 60 s: the library waits for a lock the thread holds"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept 1000 blocks\n");
    let all = stacks(&stderr);
    let walked_from = |root: &str| {
        all.iter().any(|s| {
            s.functions.len() >= 3
                && s.functions[..2] == ["keep_block", "ask_and_keep"]
                && (s.functions[2] == root) == (root == "main")
        })
    };
    assert!(walked_from("main"), "the main thread's path:\n{stderr}");
    assert!(
        walked_from("a new thread"),
        "a new thread's path:\n{stderr}"
    );
}
