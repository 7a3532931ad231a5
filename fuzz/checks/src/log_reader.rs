//! The JSON-lines log reader (`asmalloc_cli::log`, what `asmalloc report`
//! and `asmalloc run`'s summary read) on arbitrary bytes.

use asmalloc_cli::log::Log;
use rt::detector::DetectorConfig;

/// Reads `data` as a log and checks:
/// * it is read (`Ok`) whenever it is UTF-8; otherwise the error is
///   `InvalidData` (what a reader of a binary file gets);
/// * every non-blank line is counted, once: as a record (it adds one
///   sample to its process's totals) or as a bad line, named by its
///   1-based number (in order, within the file) and a message saying it is
///   not JSON or not a log line;
/// * every site series has at most one point per record, and the
///   conclusions and verdict sentences (what the report prints) can be
///   made from whatever was read.
pub fn check(data: &[u8]) {
    let log = match Log::from_reader(data, i64::MIN) {
        Ok(log) => log,
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
            assert!(
                std::str::from_utf8(data).is_err(),
                "UTF-8 input not read: {e}"
            );
            return;
        }
    };
    let text = std::str::from_utf8(data).expect("read, so UTF-8");
    let all_lines: Vec<&str> = text.lines().collect();
    let non_blank = all_lines.iter().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(log.lines, non_blank, "lines counted");
    let records: usize = log.totals.values().map(Vec::len).sum();
    assert_eq!(
        records + log.bad_lines.len(),
        log.lines,
        "records + bad lines"
    );
    let mut prev = 0;
    for (n, why) in &log.bad_lines {
        assert!(*n > prev && *n <= all_lines.len(), "bad line number {n}");
        assert!(
            !all_lines[n - 1].trim().is_empty(),
            "blank line {n} named bad"
        );
        assert!(
            why.starts_with("not JSON: ") || why.starts_with("not a log line: "),
            "line {n}: {why}"
        );
        prev = *n;
    }
    for ((pid, _), series) in &log.sites {
        let samples = log.totals.get(pid).map_or(0, Vec::len);
        assert!(series.points.len() <= samples, "more points than samples");
    }

    let cfg = DetectorConfig::DEFAULT;
    let start = log.start_ns();
    for c in log.conclusions(&cfg) {
        assert!(!c.word().is_empty());
        assert!(!c.sentence(start).is_empty());
    }
    for (_, sentence) in log.verdict_sentences(&cfg) {
        assert!(!sentence.is_empty());
    }
    let _ = (log.end_ns(), log.pids());
}
