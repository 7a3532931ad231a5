//! How verdicts read: every growth with its span and a rate that is the one
//! over the other, site 0 under its one name, never minds that say why.

use asmalloc::__private::monitor::verdict_text;
use asmalloc::detector::{Detector, DetectorConfig, Verdict, VerdictKind};
use asmalloc::report::{UNKNOWN_SITE, growth_text, seconds_text, site_label};

const S: i64 = 1_000_000_000;
const MIB: i64 = 1 << 20;

fn verdict(kind: VerdictKind, site: u16, growth: i64, over: i64, reported: i64) -> Verdict {
    Verdict {
        kind,
        site,
        time_ns: 100 * S,
        net_bytes: 40 * MIB,
        growth_bytes: growth,
        over_ns: over,
        rate_bytes_per_s: (i128::from(growth) * 1_000_000_000 / i128::from(over)) as i64,
        reported_growth_bytes: reported,
    }
}

#[test]
fn site_zero_has_one_name_everywhere() {
    assert_eq!(UNKNOWN_SITE, "(unknown site)");
    assert_eq!(site_label(0, "", "", 0, ""), "site 0 (unknown site)");
    let v = verdict(VerdictKind::PossibleLeak, 0, 20 * MIB, 4 * S, 0);
    assert_eq!(
        verdict_text(&v),
        "asmalloc: possible progressive leak: site 0 (unknown site) grew by 20.0 MiB over 4 s \
         (5.0 MiB/s); now 40.0 MiB\n"
    );
    assert_eq!(
        site_label(12, "", "", 0, ""),
        "site 12 (not in the site table)"
    );
    assert_eq!(
        site_label(7, "cache", "c.c", 30, "put"),
        "site 7 (cache) c.c:30 put"
    );
    assert_eq!(
        site_label(9, "", "lib.so+0x10", 0, ""),
        "site 9 lib.so+0x10"
    );
}

#[test]
fn the_rate_shown_is_the_growth_over_the_span_shown() {
    // The old text said "19.4 MiB over 5 s (5.5 MiB/s)": a 3.5 s span
    // rounded away.
    let v = verdict(
        VerdictKind::PossibleLeak,
        3,
        19_400 * MIB / 1000,
        3_500_000_000,
        0,
    );
    assert_eq!(
        growth_text(v.growth_bytes, v.over_ns, v.rate_bytes_per_s),
        "19.4 MiB over 3.5 s (5.5 MiB/s)"
    );
    assert_eq!(seconds_text(523_000_000), "0.52 s");
    assert_eq!(seconds_text(46_000_000_000), "46 s");
    assert_eq!(seconds_text(240_400_000_000), "240 s");
    // Every verdict the detector gives on a leak under churn.
    let mut d = Detector::new(DetectorConfig::DEFAULT);
    let mut all = Vec::new();
    for t in 0..600 {
        let net = t * 700_000 + (t % 7) * 3 * MIB;
        all.extend(d.observe(t * S, [(4, net)]));
    }
    assert!(all.len() >= 3, "{all:?}");
    for v in &all {
        assert_eq!(
            v.rate_bytes_per_s,
            (i128::from(v.growth_bytes) * 1_000_000_000 / i128::from(v.over_ns)) as i64,
            "{v:?}"
        );
    }
}

#[test]
fn a_never_mind_says_whether_it_fell_back_or_stopped() {
    let fell = verdict(VerdictKind::NeverMind, 3, -2 * MIB, 20 * S, 16 * MIB);
    assert_eq!(
        verdict_text(&fell),
        "asmalloc: never mind: site 3 (not in the site table) fell back: its floor is -2.0 MiB \
         from where it started (it had grown by 16.0 MiB); now 40.0 MiB\n"
    );
    let stopped = verdict(VerdictKind::NeverMind, 3, 17 * MIB, 60 * S, 10 * MIB);
    assert_eq!(
        verdict_text(&stopped),
        "asmalloc: never mind: site 3 (not in the site table) stopped growing: its floor is \
         +17.0 MiB from where it started and no longer rises (+10.0 MiB when last reported); \
         now 40.0 MiB\n"
    );
}
