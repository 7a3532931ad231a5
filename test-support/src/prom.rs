//! Prometheus helpers for the metrics tests (`asmalloc/preload/tests/
//! metrics.rs`, `asmalloc/tests/metrics.rs`, `asmalloc-cli/tests/
//! metrics.rs`): a raw HTTP/1.1 client (the tests must see exactly what the
//! endpoint sends), a free loopback port, and the exposition parsed by a
//! real parser — Python's `prometheus_client` (Debian's
//! `python3-prometheus-client`, installed by `.ci/run`). A missing parser
//! fails the test, naming the package.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One sample as the parser read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The family's name (counters without `_total`, as the parser gives).
    pub family: String,
    /// The family's type (`gauge`, `counter`).
    pub kind: String,
    /// The sample's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header lines (`Name: value`), names as sent.
    pub headers: Vec<String>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` (raw bytes) to `addr` and reads the answer until the
/// server closes; `None` if nothing could be connected or read in `timeout`.
pub fn raw_request(addr: SocketAddr, request: &[u8], timeout: Duration) -> Option<Answer> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(request).ok()?;
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        headers: lines.map(str::to_string).collect(),
        body: body.to_string(),
    })
}

/// `GET path` with extra header lines (each `Name: value`), asking the
/// server to close the connection after its answer.
pub fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Option<Answer> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    raw_request(addr, req.as_bytes(), Duration::from_secs(10))
}

/// Retries `GET path` until it answers 200 or `within` passes.
pub fn get_when_up(addr: SocketAddr, path: &str, headers: &[&str], within: Duration) -> Answer {
    let start = Instant::now();
    loop {
        match get(addr, path, headers) {
            Some(a) if a.status == 200 => return a,
            other if start.elapsed() > within => {
                panic!("no 200 from http://{addr}{path} within {within:?}: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A Python interpreter that has `prometheus_client` (the one on `PATH`,
/// or Debian's `/usr/bin/python3` when `PATH` leads to another one).
pub fn python_with_prometheus_client() -> &'static PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        for py in ["python3", "/usr/bin/python3"] {
            let ok = Command::new(py)
                .args(["-c", "import prometheus_client"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return PathBuf::from(py);
            }
        }
        panic!(
            "no python3 with prometheus_client: install Debian's python3-prometheus-client \
             (apt-get install python3-prometheus-client; .ci/run does)"
        )
    })
}

const PARSE: &str = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.buffer.read().decode("utf-8")
out = []
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out.append([fam.name, fam.type, s.name, dict(s.labels), float(s.value)])
print(json.dumps(out))
"#;

/// One sample as the script prints it: family, type, name, labels, value.
type Row = (String, String, String, BTreeMap<String, String>, f64);

/// Parses `text` with `prometheus_client` (its OpenMetrics parser when
/// `openmetrics`, else the Prometheus text-format one); panics with the
/// parser's complaint if it refuses the text.
pub fn parse(text: &str, openmetrics: bool) -> Vec<Sample> {
    let mut child = Command::new(python_with_prometheus_client())
        .args([
            "-c",
            PARSE,
            if openmetrics { "openmetrics" } else { "text" },
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Row> = serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    rows.into_iter()
        .map(|(family, kind, name, labels, value)| Sample {
            family,
            kind,
            name,
            labels,
            value,
        })
        .collect()
}

/// The samples named `name` whose labels include every `(key, value)`.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The one sample named `name` with no labels (or with exactly `labels`);
/// panics if there is not exactly one.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
    found[0].value
}
