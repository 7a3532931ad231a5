//! Normalizers for output that legitimately differs between runs (each
//! caller says what varies and why), applied to stdout and stderr before
//! the runs are compared.

/// "2026/12/01 05:49:20 [error] 1234#1234: *5 open() ..." ->
/// "[error] open() ...".
pub fn norm_nginx_error(l: &str) -> String {
    let Some(i) = l.find(" [") else {
        return format!("{l}\n");
    };
    let rest = &l[i + 1..];
    let (Some(a), Some(b)) = (rest.find("] "), rest.find(": ")) else {
        return format!("{rest}\n");
    };
    if b < a {
        return format!("{rest}\n");
    }
    let mut msg = &rest[b + 2..];
    if let Some(conn) = msg.strip_prefix('*') {
        msg = conn
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
    }
    format!("{} {msg}\n", &rest[..=a])
}

pub fn keep(s: &str) -> String {
    s.to_string()
}

pub fn sorted_lines(s: &str) -> String {
    let mut lines: Vec<&str> = s.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Sorted, less the "[ 40%] " progress prefixes of cmake's build lines.
pub fn sorted_without_progress(s: &str) -> String {
    let stripped: String = s
        .lines()
        .map(|l| match (l.starts_with('['), l.find("%] ")) {
            (true, Some(i)) => format!("{}\n", &l[i + 3..]),
            _ => format!("{l}\n"),
        })
        .collect();
    sorted_lines(&stripped)
}

/// Drops "(1.2s)"-style durations.
pub fn strip_durations(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut out = l.to_string();
            if let (Some(a), Some(b)) = (l.rfind(" ("), l.rfind("s)"))
                && b > a
                && l[a + 2..b].chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                out = format!("{}{}", &l[..a], &l[b + 2..]);
            }
            out + "\n"
        })
        .collect()
}

/// redis-benchmark -q: "SET: 123456.79 requests per second, p50=0.151
/// msec" (and, on a terminal-less stdout, "\r"-separated progress lines
/// with rates): only the test names are kept.
pub fn norm_benchmark(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|seg| seg.contains("requests per second"))
        .map(|seg| match seg.find(':') {
            Some(i) => format!("{}: requests per second\n", seg[..i].trim()),
            None => format!("{seg}\n"),
        })
        .collect()
}

/// INFO commandstats: "cmdstat_set:calls=20000,usec=...,...", in the
/// server's hash-table order: the calls, sorted by command.
pub fn norm_commandstats(s: &str) -> String {
    let calls: String = s
        .lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find(|f| f.starts_with("calls="))?;
            Some(format!("{name}:{calls}\n"))
        })
        .collect();
    sorted_lines(&calls)
}

/// Replaces `num` in `s` where it is not part of a longer number.
pub fn replace_number(s: &str, num: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(num) {
        let before = rest[..i].chars().last();
        let after = rest[i + num.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit()) {
            out.push_str(num);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + num.len()..];
    }
    out.push_str(rest);
    out
}
