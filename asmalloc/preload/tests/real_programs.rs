//! Real programs (python3, perl, git, sort), a multi-threaded C program and
//! the C example, run with and without each preload library
//! (tests/common/mod.rs): the same stdout and exit status, and an exit
//! report.

use std::process::Command;

#[macro_use]
mod common;

use common::*;

fn real_python3_allocation_heavy(lib: Lib) {
    let script = "import json, collections\n\
        d = {}\n\
        for i in range(60000):\n    d[str(i) * 3] = [i, str(i), {'k': i}]\n\
        s = json.dumps(d)\n\
        c = collections.Counter(s)\n\
        l = sorted(d.items(), key=lambda kv: kv[1][1])[:5]\n\
        print(len(s), c.most_common(3), l[0][0], sum(len(k) for k in d))\n";
    same_with_and_without(lib, "python3", || {
        let mut c = Command::new("python3");
        c.arg("-c").arg(script);
        c
    });
}

fn real_perl(lib: Lib) {
    same_with_and_without(lib, "perl", || {
        let mut c = Command::new("perl");
        c.arg("-e").arg(
            "my %h; for my $i (1..100000) { $h{\"k$i\"} = [$i, \"v\" x ($i % 50)] } \
             my @k = sort keys %h; print scalar(@k), \" $k[0] $k[-1]\\n\"; \
             my $s = join(',', map { $h{$_}[0] } @k[0..999]); print length($s), \"\\n\";",
        );
        c
    });
}

fn real_git_on_a_scratch_repository(lib: Lib) {
    let repo = scratch().join(format!("gitrepo-{}", lib.name()));
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).unwrap();
    for i in 0..50 {
        std::fs::write(
            repo.join(format!("f{i}.txt")),
            format!("line {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(&repo)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z");
        c
    };
    let setup = run_cmd(
        git(&["init", "-q"]),
        Some(lib),
        &[("ASMALLOC_REPORT_AT_EXIT", "0")],
    );
    assert_eq!(setup.code, Some(0), "{}", setup.stderr);
    let add = run_cmd(
        git(&["add", "."]),
        Some(lib),
        &[("ASMALLOC_REPORT_AT_EXIT", "0")],
    );
    assert_eq!(add.code, Some(0), "{}", add.stderr);
    let commit = run_cmd(git(&["commit", "-q", "-m", "first"]), Some(lib), &[]);
    assert_eq!(commit.code, Some(0), "{}", commit.stderr);
    same_with_and_without(lib, "git log", || git(&["log", "--stat", "--format=%H %s"]));
    same_with_and_without(lib, "git status", || git(&["status", "--porcelain=v1"]));
    same_with_and_without(lib, "git fsck", || git(&["fsck", "--no-progress"]));
}

fn real_sort_on_a_large_input(lib: Lib) {
    let input = scratch().join(format!("sort-input-{}.txt", lib.name()));
    let mut text = String::with_capacity(4 << 20);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!("{:x} {}\n", x, x % 1000));
    }
    std::fs::write(&input, text).unwrap();
    same_with_and_without(lib, "sort", || {
        let mut c = Command::new("sort");
        c.args(["-k2,2n", "-k1,1"]).arg(&input).env("LC_ALL", "C");
        c
    });
}

fn real_multithreaded_c_program(lib: Lib) {
    let exe = compile("mt", &["-rdynamic"]);
    let traced = same_with_and_without(lib, "mt", || Command::new(&exe));
    assert!(
        traced.stderr.contains("threads: 1 live, 5 total"),
        "{}",
        traced.stderr
    );
    assert!(traced.stderr.contains("#4 worker"), "{}", traced.stderr);
}

fn the_c_example_runs_with_and_without_the_library(lib: Lib) {
    let src = manifest_dir().join("../../examples/c/pool_server.c");
    let exe = scratch().join(format!("pool_server-{}", lib.name()));
    Cc::new()
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(include_dir())
        .arg(&src)
        .arg("-ldl")
        .build(&exe);
    let plain = run(&exe, None, &[]);
    assert_eq!(plain.code, Some(0));
    assert!(plain.stderr.contains("running untracked"));
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, plain.stdout);
    assert!(
        r.stderr
            .contains("MALLOC site 3 examples/c/pool_server.c:99 session_cache_put(): +"),
        "{}",
        r.stderr
    );
    // The leak tops the exit report; the request sites are back to zero.
    let report = &r.stderr[r.stderr.rfind("at exit ----").unwrap()..];
    let first_site = report
        .lines()
        .skip_while(|l| !l.contains("file:line"))
        .nth(1)
        .unwrap();
    assert!(
        first_site.contains("pool_server.c:99") && first_site.contains("session_cache_put"),
        "{first_site}"
    );
    assert!(
        site_row(report, "pool_server.c:110")
            .unwrap()
            .contains(" 0 "),
        "{report}"
    );
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

under_both!(
    real_python3_allocation_heavy,
    real_perl,
    real_git_on_a_scratch_repository,
    real_sort_on_a_large_input,
    real_multithreaded_c_program,
    the_c_example_runs_with_and_without_the_library,
);
