//! The metrics endpoint: a tiny HTTP/1.x server on one library thread,
//! serving `GET /metrics` from the latest published sample.
//!
//! It is built to never hurt the program it runs in:
//!
//! * One thread, no runtime: `std::net` sockets, all non-blocking, driven by
//!   `poll(2)`. A scrape never waits for the monitor (it reads the last
//!   published [`Model`] and renders it), and a slow or stuck client never
//!   holds up another: at most [`MAX_CONNECTIONS`] are open at once (at
//!   the bound, the one that has waited longest for its request is closed
//!   to make room; if all are being answered, newcomers wait in the
//!   kernel's queue), each must send its request within
//!   [`REQUEST_TIMEOUT`] and take the answer within [`WRITE_TIMEOUT`].
//! * Requests are bounded ([`MAX_REQUEST`] bytes of request line and
//!   headers; more is answered `431`), anything that is not an HTTP/1.x
//!   request line is answered `400`, a method other than `GET`/`HEAD`
//!   `405`, a path other than `/metrics` `404`. Every answer closes the
//!   connection (`Connection: close`), after the client had a moment to
//!   read it.
//! * The content type follows the client's `Accept`: OpenMetrics when it
//!   names `application/openmetrics-text` (Prometheus does), the Prometheus
//!   text format 0.0.4 otherwise.
//!
//! The thread starts with every signal blocked and marked as the library's
//! own work, so what it allocates is never charged to the program's sites.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::Model;
use super::render::{self, Format};

/// The most bytes of request line and headers read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// The most connections open at once; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a client has to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to take the whole answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, after the answer, what the client still sends is read and
/// dropped (closing with unread input would reset the connection and could
/// lose the answer).
const LINGER: Duration = Duration::from_millis(500);
/// The most connections taken from the queue per wake-up.
const ACCEPT_BATCH: usize = 8;
/// The longest `poll` waits, so the thread notices when it must stop.
const TICK: Duration = Duration::from_millis(200);

/// The answer to a complete (or hopeless) request; `None` while more of it
/// is needed. `latest` gives the sample to serve.
pub fn answer(request: &[u8], latest: impl FnOnce() -> Option<Arc<Model>>) -> Option<Vec<u8>> {
    let Some(line_end) = request.iter().position(|&b| b == b'\n') else {
        return (request.len() >= MAX_REQUEST).then(|| status(431, "request too large\n"));
    };
    let line = trim_cr(&request[..line_end]);
    let Some((method, target)) = request_line(line) else {
        return Some(status(400, "not an HTTP/1.x request line\n"));
    };
    let Some(head_end) = find(request, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(request, b"\n\n").map(|i| i + 2))
    else {
        return (request.len() >= MAX_REQUEST).then(|| status(431, "request too large\n"));
    };
    let mut accept = "";
    for header in request[line_end + 1..head_end].split(|&b| b == b'\n') {
        let header = trim_cr(header);
        if header.is_empty() {
            continue;
        }
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            return Some(status(400, "malformed header\n"));
        };
        let (name, value) = (&header[..colon], &header[colon + 1..]);
        if name.eq_ignore_ascii_case(b"accept") {
            accept = std::str::from_utf8(value).unwrap_or("").trim();
        }
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Some(status(405, "only GET and HEAD\n")),
    };
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return Some(status(404, "not found; metrics are at /metrics\n"));
    }
    let Some(model) = latest() else {
        return Some(status(503, "no sample yet\n"));
    };
    let format = if accept.contains("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    let body = render::render(&model, format);
    let mut out = headers(200, format.content_type(), body.len());
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    Some(out)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `METHOD SP TARGET SP HTTP/1.x`: the method and target, if it is one.
fn request_line(line: &[u8]) -> Option<(&str, &str)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    let target_ok = target.starts_with('/') && target.bytes().all(|b| b.is_ascii_graphic());
    let version_ok = matches!(version, "HTTP/1.0" | "HTTP/1.1");
    (parts.next().is_none() && token && target_ok && version_ok).then_some((method, target))
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn headers(code: u16, content_type: &str, len: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        reason(code)
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn status(code: u16, body: &str) -> Vec<u8> {
    let mut out = headers(code, "text/plain; charset=utf-8", body.len());
    out.extend_from_slice(body.as_bytes());
    out
}

enum Phase {
    Reading(Vec<u8>),
    Writing(Vec<u8>, usize),
    Lingering,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    deadline: Instant,
}

impl Conn {
    fn reply(&mut self, out: Vec<u8>) {
        self.phase = Phase::Writing(out, 0);
        self.deadline = Instant::now() + WRITE_TIMEOUT;
    }

    /// Moves the connection on after `poll` said it is ready (or its time
    /// ran out); false when it is done and should be closed.
    fn step(&mut self, latest: &dyn Fn() -> Option<Arc<Model>>, now: Instant) -> bool {
        let expired = now >= self.deadline;
        match &mut self.phase {
            Phase::Reading(buf) => {
                let mut chunk = [0u8; 2048];
                let mut eof = false;
                loop {
                    let room = MAX_REQUEST - buf.len().min(MAX_REQUEST);
                    if room == 0 {
                        break;
                    }
                    match self.stream.read(&mut chunk[..room.min(2048)]) {
                        // The client may have sent its request and shut
                        // its side: it still gets the answer.
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => return false,
                    }
                }
                if let Some(out) = answer(buf, latest) {
                    self.reply(out);
                    return self.step(latest, now);
                }
                if eof {
                    return false;
                }
                if expired {
                    self.reply(status(408, "request not received in time\n"));
                    return self.step(latest, now);
                }
                true
            }
            Phase::Writing(out, pos) => {
                while *pos < out.len() {
                    match self.stream.write(&out[*pos..]) {
                        Ok(0) => return false,
                        Ok(n) => *pos += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return !expired,
                        Err(_) => return false,
                    }
                }
                let _ = self.stream.shutdown(Shutdown::Write);
                self.phase = Phase::Lingering;
                self.deadline = now + LINGER;
                true
            }
            Phase::Lingering => {
                let mut sink = [0u8; 2048];
                loop {
                    match self.stream.read(&mut sink) {
                        Ok(0) => return false,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return !expired,
                        Err(_) => return false,
                    }
                }
            }
        }
    }

    fn events(&self) -> libc::c_short {
        match self.phase {
            Phase::Writing(..) => libc::POLLOUT,
            _ => libc::POLLIN,
        }
    }
}

/// Waits for any of `fds` to be ready, at most `timeout`.
fn poll(fds: &mut [libc::pollfd], timeout: Duration) {
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()`
    // pollfd structures for the duration of the call.
    let _ = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

/// Binds `addr` (non-blocking): the listener the server thread takes.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `listener` until `stop()` says so. `latest` gives the sample to
/// serve.
pub fn serve(listener: TcpListener, latest: &dyn Fn() -> Option<Arc<Model>>, stop: fn() -> bool) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    while !stop() {
        let now = Instant::now();
        let wait = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(TICK)
            .min(TICK);
        fds.clear();
        // With every slot busy answering, new clients wait in the queue.
        let room = conns.len() < MAX_CONNECTIONS
            || conns.iter().any(|c| matches!(c.phase, Phase::Reading(_)));
        fds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: if room { libc::POLLIN } else { 0 },
            revents: 0,
        });
        fds.extend(conns.iter().map(|c| libc::pollfd {
            fd: c.stream.as_raw_fd(),
            events: c.events(),
            revents: 0,
        }));
        poll(&mut fds, wait);
        let now = Instant::now();
        // Existing connections first (their slots match `fds[1..]`).
        let mut i = 0;
        conns.retain_mut(|c| {
            let ready = fds[i + 1].revents != 0;
            i += 1;
            if ready || now >= c.deadline {
                c.step(latest, now)
            } else {
                true
            }
        });
        if fds[0].revents != 0 {
            accept_all(&listener, &mut conns, latest, now);
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    conns: &mut Vec<Conn>,
    latest: &dyn Fn() -> Option<Arc<Model>>,
    now: Instant,
) {
    // A few at a time: clients that reconnect as fast as they are answered
    // must not keep this loop from the connections already open.
    for _ in 0..ACCEPT_BATCH {
        // At the bound, the connection that has waited longest for its
        // request makes room (a crowd of silent clients cannot lock scrapes
        // out); if every one is being answered, newcomers wait in the
        // kernel's queue.
        if conns.len() >= MAX_CONNECTIONS {
            let oldest = conns
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c.phase, Phase::Reading(_)))
                .min_by_key(|(_, c)| c.deadline)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => drop(conns.swap_remove(i)),
                None => return,
            }
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let mut c = Conn {
                    stream,
                    phase: Phase::Reading(Vec::new()),
                    deadline: now + REQUEST_TIMEOUT,
                };
                // The request is often there already.
                if c.step(latest, now) {
                    conns.push(c);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // WouldBlock: all taken; anything else (EMFILE, a connection
            // reset before it was taken): try again at the next wake-up.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Option<Arc<Model>> {
        Some(Arc::new(Model {
            net_bytes: 77,
            ..Model::default()
        }))
    }

    fn text(r: Option<Vec<u8>>) -> String {
        String::from_utf8(r.expect("an answer")).unwrap()
    }

    #[test]
    fn metrics_in_the_format_the_client_accepts() {
        let r = text(answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", model));
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(r.contains("\nasmalloc_net_bytes 77\n"), "{r}");
        let body = &r[r.find("\r\n\r\n").unwrap() + 4..];
        assert!(r.contains(&format!("Content-Length: {}\r\n", body.len())));

        let r = text(answer(
            b"GET /metrics?x=1 HTTP/1.1\r\naccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n",
            model,
        ));
        assert!(r.contains("Content-Type: application/openmetrics-text; version=1.0.0"));
        assert!(r.ends_with("# EOF\n"));

        let r = text(answer(b"HEAD /metrics HTTP/1.0\n\n", model));
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        assert!(!r.contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn waits_for_the_whole_head_then_answers() {
        assert_eq!(answer(b"GET /metr", model), None);
        assert_eq!(answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", model), None);
    }

    #[test]
    fn bad_requests_get_their_status() {
        let code = |req: &[u8]| text(answer(req, model))[9..12].to_string();
        assert_eq!(code(b"garbage\r\n\r\n"), "400");
        assert_eq!(
            code(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"),
            "400"
        );
        assert_eq!(code(b"GET /metrics HTTP/2.0\r\n"), "400");
        assert_eq!(code(b"GET metrics HTTP/1.1\r\n"), "400");
        assert_eq!(code(b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"), "400");
        assert_eq!(code(b"POST /metrics HTTP/1.1\r\n\r\n"), "405");
        assert_eq!(code(b"GET / HTTP/1.1\r\n\r\n"), "404");
        assert_eq!(code(b"GET /metricsx HTTP/1.1\r\n\r\n"), "404");
        assert_eq!(code(&[b'a'; MAX_REQUEST]), "431");
        let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
        long.resize(MAX_REQUEST, b'x');
        assert_eq!(code(&long), "431");
        assert_eq!(
            text(answer(b"GET /metrics HTTP/1.1\r\n\r\n", || None))[9..12].to_string(),
            "503"
        );
    }
}
