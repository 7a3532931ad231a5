//! A small "server" with a slow leak, to show what asmalloc reports.
//!
//! Worker threads take requests from a queue. Each request is parsed into a
//! buffer, answered with a rendered response, and logged — all freed when
//! the request is done — except that `SessionCache::remember` keeps about
//! 1 KiB per request in a cache that is never evicted: a progressive leak.
//! At the end the report names the leaking function and line at the top.
//!
//! Run: `cargo run --release -p asmalloc-examples --bin leaky_server -- [REQUESTS] [WORKERS] [RATE]`
//! (RATE: requests per second, 0 = as fast as it can). Under
//! `asmalloc run --linked`, the leak monitor names the leak while it runs.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use asmalloc::{AsmAlloc, track_alloc};

#[global_allocator]
static GLOBAL: AsmAlloc = AsmAlloc::system();

// The site table, generated from this crate's sources by build.rs
// (asmalloc_gen::Builder): one site per #[track_alloc] function.
include!(concat!(env!("OUT_DIR"), "/mallocations.rs"));

struct Request {
    id: u64,
    body: String,
}

#[track_alloc(request)]
fn parse_request(req: &Request) -> Vec<String> {
    req.body.split('&').map(str::to_owned).collect()
}

#[track_alloc(request)]
fn render_response(fields: &[String]) -> String {
    let mut out = String::with_capacity(4096);
    for f in fields {
        out.push_str("<td>");
        out.push_str(f);
        out.push_str("</td>");
    }
    out
}

struct SessionCache {
    entries: HashMap<u64, Vec<u8>>,
}

impl SessionCache {
    #[track_alloc(cache)]
    fn remember(&mut self, id: u64, response: &str) {
        // The bug: every session is kept forever (~1 KiB each).
        let mut entry = Vec::with_capacity(1024);
        entry.extend_from_slice(&response.as_bytes()[..response.len().min(1024)]);
        self.entries.insert(id, entry);
    }
}

#[track_alloc(log)]
fn access_log(id: u64, bytes: usize) -> String {
    format!("request {id}: {bytes} bytes")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    asmalloc::register_sites(&MALLOCATIONS).expect("the generated site table is valid");
    asmalloc::configure_from_env();

    let cache = Arc::new(Mutex::new(SessionCache {
        entries: HashMap::new(),
    }));
    let (tx, rx) = mpsc::sync_channel::<Request>(256);
    let rx = Arc::new(Mutex::new(rx));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let rx = Arc::clone(&rx);
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut served = 0u64;
                loop {
                    let next = rx.lock().unwrap().recv();
                    let Ok(req) = next else { break };
                    let fields = parse_request(&req);
                    let response = render_response(&fields);
                    cache.lock().unwrap().remember(req.id, &response);
                    let line = access_log(req.id, response.len());
                    std::hint::black_box(line);
                    served += 1;
                }
                served
            })
        })
        .collect();
    let start = std::time::Instant::now();
    for id in 0..requests {
        let body = format!(
            "user={id}&item={}&qty={}&note=hello-world-{id}",
            id % 97,
            id % 7
        );
        tx.send(Request { id, body }).unwrap();
        if rate > 0 && id % 100 == 99 {
            // Pace the load: request `id` is due at id / rate seconds.
            let due = std::time::Duration::from_secs_f64(id as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    drop(tx);
    let served: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    eprintln!("leaky_server: served {served} requests with {workers} workers");
    asmalloc::print_report();
}
