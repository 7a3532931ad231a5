//! The heap at its edges, under both preload libraries
//! (tests/common/mod.rs): alignment, `malloc_usable_size`, realloc edge
//! cases and overflow; blocks the tracker never handed out, freed safely;
//! programs linked against another allocator (jemalloc, tcmalloc,
//! mimalloc) run untouched.

#[macro_use]
mod common;

use common::*;

fn alignment_usable_size_realloc_edges_and_overflow(lib: Lib) {
    let exe = compile("edges", &[]);
    let plain = run(&exe, None, &[]);
    assert_eq!(plain.stdout.trim(), "edges ok", "{}", plain.stdout);
    let traced = run(&exe, Some(lib), &[]);
    assert_eq!(traced.code, Some(0), "{}\n{}", traced.stdout, traced.stderr);
    assert_eq!(traced.stdout.trim(), "edges ok", "{}", traced.stdout);
    // Filling every usable byte never touched a tag: no foreign frees.
    assert!(!traced.stderr.contains("foreign_free"), "{}", traced.stderr);
    assert!(traced.stderr.contains("memalign"), "{}", traced.stderr);
}

fn blocks_from_outside_the_tracker_are_freed_safely(lib: Lib) {
    let exe = compile("foreign", &[]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "foreign ok 50");
    let line = r
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("foreign_free"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    let n: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(n >= 101, "{line}");
}

/// Programs linked against Debian's jemalloc, tcmalloc and mimalloc shared
/// libraries, mixing the standard family with the allocator's own API: the
/// same output and status as without the library. libasmalloc.so steps
/// aside for all three (one line on stderr, naming the allocator, and for
/// jemalloc the library to use); libasmalloc_jem.so tracks the jemalloc
/// program (its exit report is there, and it does not step aside) and
/// steps aside for the other two.
fn another_allocator_underneath_runs_untouched(lib: Lib) {
    for (name, define, link, package) in [
        (
            "jemalloc",
            "-DUSE_JEMALLOC",
            "-ljemalloc",
            "libjemalloc-dev",
        ),
        (
            "tcmalloc",
            "-DUSE_TCMALLOC",
            "-ltcmalloc_minimal",
            "libgoogle-perftools-dev",
        ),
        (
            "mimalloc",
            "-DUSE_MIMALLOC",
            "-lmimalloc",
            "libmimalloc-dev",
        ),
    ] {
        let src = manifest_dir().join("tests/c/foreign_heap.c");
        let exe = Cc::new()
            .args(["-O1", "-fno-builtin", define])
            .arg(&src)
            .arg(link)
            .package(package)
            .build(&scratch().join(format!("foreign_heap-{name}")));
        let plain = run(&exe, None, &[]);
        assert_eq!(plain.code, Some(0), "{name}: {}", plain.stderr);
        assert!(plain.stdout.starts_with(name), "{}", plain.stdout);
        let traced = run(&exe, Some(lib), &[("ASMALLOC_REPORT_AT_EXIT", "1")]);
        assert_eq!(
            traced.code,
            Some(0),
            "{name} under {}: {}",
            lib.name(),
            traced.stderr
        );
        assert_eq!(traced.stdout, plain.stdout, "{name} under {}", lib.name());
        let tracks = lib == Lib::Jemalloc && name == "jemalloc";
        let aside: Vec<&str> = traced
            .stderr
            .lines()
            .filter(|l| l.contains("steps aside"))
            .collect();
        if tracks {
            assert!(aside.is_empty(), "{}", traced.stderr);
            assert!(traced.stderr.contains("at exit ----"), "{}", traced.stderr);
        } else {
            assert_eq!(aside.len(), 1, "said once: {}", traced.stderr);
            assert!(
                aside[0].starts_with("asmalloc: this program's malloc is"),
                "{}",
                aside[0]
            );
            assert!(aside[0].contains(&format!("{name}'s")), "{}", aside[0]);
            assert!(aside[0].contains(lib.file()), "{}", aside[0]);
            if name == "jemalloc" {
                assert!(aside[0].contains("libasmalloc_jem.so"), "{}", aside[0]);
            }
            assert!(
                !traced.stderr.contains("at exit ----"),
                "no report after stepping aside: {}",
                traced.stderr
            );
        }
    }
}

/// glibc's dynamic mmap threshold is the program's: a block above the
/// default threshold comes from mmap under libasmalloc.so as it does raw,
/// at start and after the library's own work (the monitor's samples,
/// caller sites named). The library's start-up check once freed a 4 MiB
/// block of its own, which raised the threshold to 4 MiB and let every
/// arena keep 8 MiB free (the churn benchmark's peak RSS, 1.12x).
#[test]
fn the_programs_mmap_threshold_is_left_alone() {
    let exe = compile("mmap_threshold", &[]);
    let plain = run(&exe, None, &[]);
    assert_eq!(plain.stdout.trim(), "mmapped mmapped", "{}", plain.stderr);
    let traced = run(
        &exe,
        Some(Lib::Glibc),
        &[
            ("ASMALLOC_SAMPLE_INTERVAL", "100ms"),
            ("ASMALLOC_CALLERS", "1"),
            ("ASMALLOC_FEATURES", "all"),
        ],
    );
    assert_eq!(traced.code, Some(0), "{}", traced.stderr);
    assert_eq!(traced.stdout.trim(), "mmapped mmapped", "{}", traced.stderr);
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

under_both!(
    alignment_usable_size_realloc_edges_and_overflow,
    blocks_from_outside_the_tracker_are_freed_safely,
    another_allocator_underneath_runs_untouched,
);
