//! `asmalloc run --metrics-file FILE --metrics-addr ADDR`: the program runs
//! with its metrics published both ways — the endpoint answers while it
//! runs, the textfile holds its last sample after — and the leaking
//! function is named in both (a caller site, named from the program's
//! debug information). A bad address is refused before anything runs.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use asmalloc_test_support::{Cc, Lib, prom, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

const LEAKY: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <time.h>
__attribute__((noinline)) void leak_grow(void) { char *p = malloc(4096); memset(p, 1, 4096); }
int main(void) {
	struct timespec t = { 0, 20 * 1000000L };
	for (int i = 0; i < 100; i++) { leak_grow(); nanosleep(&t, NULL); }
	return 0;
}
"#;

#[test]
fn run_publishes_the_textfile_and_the_endpoint() {
    let so = Lib::Glibc.path();
    assert_eq!(so.parent(), Path::new(ASMALLOC).parent());
    let src = scratch().join("leaky_metrics.c");
    std::fs::write(&src, LEAKY).unwrap();
    let exe = Cc::new()
        .args(["-O1", "-g", "-fno-builtin"])
        .arg(&src)
        .build(&scratch().join("leaky_metrics"));
    let file = scratch().join("run.prom");
    let mut child = Command::new(ASMALLOC)
        .args(["run", "--glibc", "--interval", "100ms", "--metrics-file"])
        .arg(&file)
        .args(["--metrics-addr", "127.0.0.1:0", "--"])
        .arg(&exe)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let forward = std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if let Some(p) = line
                .strip_prefix("asmalloc: serving metrics on http://127.0.0.1:")
                .and_then(|r| r.strip_suffix("/metrics"))
            {
                let _ = tx.send(p.parse::<u16>().unwrap());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the endpoint's port announced");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // While it runs: the endpoint, once the leak is in a sample.
    let start = std::time::Instant::now();
    loop {
        let a = prom::get_when_up(addr, "/metrics", &[], Duration::from_secs(10));
        let s = prom::parse(&a.body, false);
        let leak = prom::find(&s, "asmalloc_site_net_bytes", &[("function", "leak_grow")]);
        if leak.first().is_some_and(|l| l.value > 0.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no leak_grow in {}",
            a.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    forward.join().unwrap();
    assert!(status.success(), "{status:?}");
    // After it: the textfile's last sample has every block.
    let s = prom::parse(&std::fs::read_to_string(&file).unwrap(), false);
    let leak = prom::find(&s, "asmalloc_site_net_bytes", &[("function", "leak_grow")]);
    assert_eq!(leak.len(), 1, "{s:?}");
    assert_eq!(leak[0].value, 100.0 * 4096.0);
    assert!(
        leak[0].labels["file"].ends_with("leaky_metrics.c"),
        "{leak:?}"
    );
    assert_eq!(
        prom::value(&s, "asmalloc_site_net_blocks", &[("function", "leak_grow")]),
        100.0
    );
}

#[test]
fn a_bad_metrics_address_is_refused_before_the_program_runs() {
    let marker = scratch().join("ran");
    let out = Command::new(ASMALLOC)
        .args(["run", "--metrics-addr", "example.com:80", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-addr") && err.contains("is not an IP address and port"),
        "{err}"
    );
    assert!(!marker.exists(), "the program must not run");
}
