//! A small "server" with a slow leak, to show what asmalloc reports.
//!
//! Worker threads take requests from a queue. Each request is parsed into a
//! buffer, answered with a rendered response, and logged — all freed when
//! the request is done — except that `SessionCache::remember` keeps about
//! 1 KiB per request in a cache that is never evicted: a progressive leak.
//! At the end (and every `--report-every` requests) the report names the
//! leaking function and line at the top.
//!
//! Run: `cargo run --release -p asmalloc-examples --bin leaky_server -- [REQUESTS] [WORKERS]`

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use asmalloc::{AsmAlloc, Site, SiteTable};

#[global_allocator]
static GLOBAL: AsmAlloc = AsmAlloc::system();

// The site table. asmalloc-gen writes this from `#[track_alloc]` functions;
// here it is spelled out, with each function's real line from `line!()`.
const TYPE_REQUEST: u16 = 1;
const TYPE_CACHE: u16 = 2;
const TYPE_LOG: u16 = 3;
const SITE_PARSE: u16 = 1;
const SITE_RENDER: u16 = 2;
const SITE_REMEMBER: u16 = 3;
const SITE_LOG: u16 = 4;

static SITES: SiteTable = SiteTable::new(
    &["NONE", "request", "cache", "log"],
    &[
        Site::NONE,
        Site::new(
            SITE_PARSE,
            TYPE_REQUEST,
            file!(),
            PARSE_LINE,
            "parse_request",
        ),
        Site::new(
            SITE_RENDER,
            TYPE_REQUEST,
            file!(),
            RENDER_LINE,
            "render_response",
        ),
        Site::new(
            SITE_REMEMBER,
            TYPE_CACHE,
            file!(),
            REMEMBER_LINE,
            "SessionCache::remember",
        ),
        Site::new(SITE_LOG, TYPE_LOG, file!(), LOG_LINE, "access_log"),
    ],
);

struct Request {
    id: u64,
    body: String,
}

const PARSE_LINE: u32 = line!() + 1;
fn parse_request(req: &Request) -> Vec<String> {
    let _site = asmalloc::enter_scope(SITE_PARSE, TYPE_REQUEST);
    req.body.split('&').map(str::to_owned).collect()
}

const RENDER_LINE: u32 = line!() + 1;
fn render_response(fields: &[String]) -> String {
    let _site = asmalloc::enter_scope(SITE_RENDER, TYPE_REQUEST);
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
    const REMEMBER_LINE: u32 = line!() + 1;
    fn remember(&mut self, id: u64, response: &str) {
        let _site = asmalloc::enter_scope(SITE_REMEMBER, TYPE_CACHE);
        // The bug: every session is kept forever (~1 KiB each).
        let mut entry = Vec::with_capacity(1024);
        entry.extend_from_slice(&response.as_bytes()[..response.len().min(1024)]);
        self.entries.insert(id, entry);
    }
}
const REMEMBER_LINE: u32 = SessionCache::REMEMBER_LINE;

const LOG_LINE: u32 = line!() + 1;
fn access_log(id: u64, bytes: usize) -> String {
    let _site = asmalloc::enter_scope(SITE_LOG, TYPE_LOG);
    format!("request {id}: {bytes} bytes")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    asmalloc::register_sites(&SITES).expect("the site table is valid");
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
    for id in 0..requests {
        let body = format!(
            "user={id}&item={}&qty={}&note=hello-world-{id}",
            id % 97,
            id % 7
        );
        tx.send(Request { id, body }).unwrap();
    }
    drop(tx);
    let served: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    eprintln!("leaky_server: served {served} requests with {workers} workers");
    asmalloc::print_report();
}
