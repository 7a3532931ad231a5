//! The exactness soak, under both preload libraries (tests/common/mod.rs):
//! `tests/c/soak.c` — 8 threads, 1,000 sites, random allocation-family
//! calls over a shared pool (most frees and resizes on another thread than
//! the allocation), every call naming its site — against the program's own
//! shadow model, with the leak monitor sampling every 10 ms into its log,
//! the periodic reporter every 20 ms and every feature on.
//!
//! Zero drift means: at each of the program's ten checkpoints (all threads
//! stopped) the threads' own records of every site add up to the model;
//! the exit report and the monitor's last sample equal the model for every
//! site, in bytes and blocks; no foreign free.
//!
//! Size: 2,000,000 operations by default (a few seconds in a debug build);
//! `ASMALLOC_SOAK=full` runs 10,000,000 (about 20-30 s per library in a
//! debug build on 2 cores), `ASMALLOC_SOAK=<n>` runs n.

use std::collections::BTreeMap;

#[macro_use]
mod common;

use common::*;

fn operations() -> u64 {
    match std::env::var("ASMALLOC_SOAK").as_deref() {
        Ok("full") => 10_000_000,
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("ASMALLOC_SOAK={n}: expected full or a number")),
        Err(_) => 2_000_000,
    }
}

fn soak_exact_against_a_shadow_model(lib: Lib) {
    let ops = operations();
    let exe = compile_linked(lib, "soak", &[]);
    let log = scratch().join(format!("soak-{}.jsonl", lib.name()));
    let out = scratch().join(format!("soak-{}.json", lib.name()));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&out);
    let started = std::time::Instant::now();
    let mut cmd = std::process::Command::new(&exe);
    cmd.args([ops.to_string().as_str(), "11"]);
    // The test's own settings (ASMALLOC_SOAK) are not the library's.
    cmd.env_remove("ASMALLOC_SOAK");
    let env = everything_on(&log, &out);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = run_cmd(cmd, Some(lib), &env);
    let took = started.elapsed();
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "", "nothing from the library on stderr");
    let done = r
        .stdout
        .lines()
        .find(|l| l.starts_with("soak done"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert_eq!(
        done,
        format!("soak done ops={ops} threads=8 sites=1000 drift=0"),
        "{}",
        r.stdout
    );
    let checks: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("check "))
        .collect();
    assert_eq!(checks.len(), 10, "{}", r.stdout);
    for c in &checks {
        assert!(c.ends_with("sites=1000 drift=0"), "{c}");
    }
    let model: BTreeMap<u64, (i64, i64)> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("site "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str| s.split('=').nth(1).unwrap().parse::<i64>().unwrap();
            (w[0].parse().unwrap(), (num(w[1]), num(w[2])))
        })
        .collect();
    assert_eq!(model.len(), 1000);
    let reports = json_lines(&out);
    assert!(reports.len() >= 3, "periodic reports were written");
    let last = reports.last().unwrap();
    let charged = sites_of(last);
    let mut drift = 0;
    for (site, want) in &model {
        if charged.get(site).copied().unwrap_or((0, 0)) != *want {
            drift += 1;
        }
    }
    assert_eq!(drift, 0, "sites whose exit report differs from the model");
    assert_eq!(foreign_frees(last), 0, "{last}");
    let samples = json_lines(&log);
    assert!(samples.len() >= 3, "the monitor sampled while it ran");
    // Each line lists the sites changed since the one before, at most 256
    // (the program waits for the monitor to catch up before it exits).
    assert_eq!(samples.last().unwrap()["sites_truncated"], 0);
    let mut latest = BTreeMap::new();
    for line in &samples {
        latest.extend(sites_of(line));
    }
    for (site, want) in &model {
        assert_eq!(
            latest.get(site).copied().unwrap_or((0, 0)),
            *want,
            "site {site}: the monitor's last sample vs the model"
        );
    }
    // Samples taken while the threads run read one thread's table after
    // another: an operation in flight between two reads (a block freed on
    // one thread after the reader passed the thread that allocated it) can
    // show a site briefly below its true value. Counted, for the docs.
    let mid_run: Vec<_> = samples
        .iter()
        .chain(&reports[..reports.len() - 1])
        .collect();
    let below = mid_run
        .iter()
        .flat_map(|l| sites_of(l).into_values())
        .filter(|(b, c)| *b < 0 || *c < 0)
        .count();
    eprintln!(
        "soak under {}: {ops} operations, 8 threads, 1000 sites, 10 checkpoints: drift 0; \
         {} samples and reports taken mid-run, {below} site entries in them briefly negative; {:.1} s",
        lib.name(),
        mid_run.len(),
        took.as_secs_f64()
    );
}

under_both!(soak_exact_against_a_shadow_model);
