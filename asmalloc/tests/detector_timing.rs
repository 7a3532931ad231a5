//! Time to a verdict, per leak rate, with the default settings (threshold
//! 4 MiB, window 30 s, at least 6 samples) and one sample a second, on an
//! injected clock (the detector is given each sample's time): no sleeping.
//!
//! Every leak starts half a second after a sample, after a minute of flat
//! history, on top of 50 MiB. The times measured here are the ones
//! docs/leak-detection.md states (its table is checked against them).
//!
//! Run with `--nocapture` to see the table.

use asmalloc::detector::{Detector, DetectorConfig, Verdict, VerdictKind};

const S: i64 = 1_000_000_000;
const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
/// The leak starts here (s).
const START: f64 = 60.5;

/// Samples `f(seconds)` at `times` (ns) and returns every verdict.
fn feed(times: impl Iterator<Item = i64>, f: impl Fn(f64) -> f64) -> Vec<Verdict> {
    let mut d = Detector::new(DetectorConfig::DEFAULT);
    let mut all = Vec::new();
    for t in times {
        all.extend(d.observe(t, [(7, f(t as f64 / 1e9) as i64), (8, 3 << 20)]));
    }
    all
}

fn every_second(until_s: i64) -> impl Iterator<Item = i64> {
    (0..=until_s).map(|t| t * S)
}

fn leak(rate: f64) -> impl Fn(f64) -> f64 {
    move |t| 50.0 * MIB + (t - START).max(0.0) * rate
}

/// Seconds from the start of the leak to its first verdict.
fn time_to_verdict(verdicts: &[Verdict]) -> Option<f64> {
    let v = verdicts.first()?;
    assert_eq!(v.kind, VerdictKind::PossibleLeak, "{verdicts:?}");
    assert_eq!(v.site, 7, "only the leaking site: {verdicts:?}");
    Some(v.time_ns as f64 / 1e9 - START)
}

/// (label, bytes per second, at most this many seconds to a verdict).
const RATES: [(&str, f64, f64); 12] = [
    ("50 MiB/s", 50.0 * MIB, 15.0),
    ("10 MiB/s", 10.0 * MIB, 15.0),
    ("5 MiB/s", 5.0 * MIB, 15.0),
    ("2 MiB/s", 2.0 * MIB, 15.0),
    ("1 MiB/s", MIB, 15.0),
    ("500 KiB/s", 500.0 * KIB, 120.0),
    ("200 KiB/s", 200.0 * KIB, 120.0),
    ("100 KiB/s", 100.0 * KIB, 120.0),
    ("50 KiB/s", 50.0 * KIB, 240.0),
    ("20 KiB/s", 20.0 * KIB, 600.0),
    ("10 KiB/s", 10.0 * KIB, 1200.0),
    ("6 KiB/s", 6.0 * KIB, 1200.0),
];

/// The table docs/leak-detection.md shows: one row per rate.
fn table() -> String {
    let mut rows = String::from(
        "| leak rate | named after | growth named | rate named |\n| --- | --- | --- | --- |\n",
    );
    for (label, rate, limit) in RATES {
        let verdicts = feed(every_second(START as i64 + 1300), leak(rate));
        let after = time_to_verdict(&verdicts)
            .unwrap_or_else(|| panic!("{label}: no verdict in 1300 s: {verdicts:?}"));
        assert!(
            after <= limit,
            "{label}: named after {after} s (limit {limit} s)"
        );
        let v = verdicts[0];
        // The verdict's growth is a threshold or more, and its rate is that
        // growth over its span: the leak's own rate.
        assert!(v.growth_bytes >= 4 << 20, "{label}: {v:?}");
        assert_eq!(
            v.rate_bytes_per_s,
            (i128::from(v.growth_bytes) * 1_000_000_000 / i128::from(v.over_ns)) as i64
        );
        let measured = v.rate_bytes_per_s as f64;
        assert!(
            (measured - rate).abs() <= rate * 0.05,
            "{label}: rate {measured} in {v:?}"
        );
        rows.push_str(&format!(
            "| {label} | {after:.1} s | {} over {} | {}/s |\n",
            asmalloc::report::human_bytes(v.growth_bytes),
            asmalloc::report::seconds_text(v.over_ns),
            asmalloc::report::human_bytes(v.rate_bytes_per_s),
        ));
    }
    rows
}

#[test]
fn verdict_times_per_rate_are_the_documented_ones() {
    let table = table();
    println!("{table}");
    let doc = include_str!("../../docs/leak-detection.md");
    assert!(
        doc.contains(&table),
        "docs/leak-detection.md does not show the measured table:\n{table}"
    );
}

#[test]
fn the_predicted_time_matches_the_measured_one() {
    // DetectorConfig::time_to_verdict (which `asmalloc run` uses to say how
    // long a run must be) agrees with a leak after a flat history within
    // two samples.
    for (label, rate, _) in RATES {
        let measured =
            time_to_verdict(&feed(every_second(START as i64 + 1300), leak(rate))).unwrap();
        let predicted = DetectorConfig::DEFAULT.time_to_verdict(rate, S).unwrap() as f64 / 1e9;
        println!("{label}: measured {measured:.1} s, predicted {predicted:.1} s");
        assert!(
            (measured - predicted).abs() <= 2.5,
            "{label}: measured {measured} s, predicted {predicted} s"
        );
    }
    assert_eq!(
        DetectorConfig::DEFAULT.time_to_verdict(5.0 * KIB, S),
        None,
        "below 6 KiB/s no window is long enough"
    );
}

#[test]
fn uneven_sample_times_do_not_delay_fast_leaks() {
    // A loaded machine: samples 0.8 to 1.3 s apart.
    let mut x = 12345u64;
    let mut t = 0i64;
    let times: Vec<i64> = (0..200)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += 800_000_000 + (x % 500_000_000) as i64;
            t
        })
        .collect();
    for rate in [MIB, 5.0 * MIB] {
        let after = time_to_verdict(&feed(times.iter().copied(), leak(rate))).unwrap();
        println!("{rate} B/s, uneven samples: named after {after:.1} s");
        assert!(after <= 15.0, "{rate}: {after} s");
    }
}

/// Net bytes as a function of seconds.
type Shape = Box<dyn Fn(f64) -> f64>;

#[test]
fn a_leak_under_churn_noise_or_in_bursts_is_named_and_stays_named() {
    let cases: [(&str, Shape, f64); 5] = [
        // 1 MiB/s under a 8 MiB saw-tooth of 4 s.
        (
            "churn 4 s",
            Box::new(|t| leak(MIB)(t) + 8.0 * MIB * (t / 4.0).fract()),
            30.0,
        ),
        // 100 KiB/s under 8 MiB of churn every 10 s.
        (
            "slow under churn",
            Box::new(|t| leak(100.0 * KIB)(t) + 8.0 * MIB * (t / 10.0).fract()),
            120.0,
        ),
        // 8 MiB at once every 20 s (0.4 MiB/s in steps).
        (
            "bursts",
            Box::new(|t| 50.0 * MIB + 8.0 * MIB * ((t - START).max(0.0) / 20.0).floor()),
            120.0,
        ),
        // 1 MiB/s with noise a threshold wide.
        (
            "noise 4 MiB",
            Box::new(|t| leak(MIB)(t) + 4.0 * MIB * ((t * 7.31).sin() * 0.5 + 0.5)),
            20.0,
        ),
        // 5 MiB/s with noise four thresholds wide.
        (
            "noise 16 MiB",
            Box::new(|t| leak(5.0 * MIB)(t) + 16.0 * MIB * ((t * 7.31).sin() * 0.5 + 0.5)),
            20.0,
        ),
    ];
    for (label, f, limit) in cases {
        let verdicts = feed(every_second(1200), f);
        let after = time_to_verdict(&verdicts).unwrap_or_else(|| panic!("{label}: none"));
        println!("{label}: named after {after:.1} s"); // docs/leak-detection.md
        assert!(after <= limit, "{label}: named after {after} s");
        assert!(
            verdicts.iter().all(|v| v.kind != VerdictKind::NeverMind),
            "{label}: a real leak is never minded: {verdicts:?}"
        );
        for v in &verdicts {
            assert_eq!(
                v.rate_bytes_per_s,
                (i128::from(v.growth_bytes) * 1_000_000_000 / i128::from(v.over_ns)) as i64,
                "{label}: {v:?}"
            );
        }
    }
}
