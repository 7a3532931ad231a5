//! The battery's servers under a short loopback load (redis, nginx, a
//! forking server), and what running a server takes: starting it, waiting
//! for its port, signalling it, its threads' signal masks, waiting for it
//! to exit.

use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Mode;
use crate::ctx::{Ctx, Exec, Stdout, describe_status, file_create, kill_group, tail, wait_timeout};
use crate::normalise::{keep, norm_benchmark, norm_commandstats, norm_nginx_error, sorted_lines};

pub fn run_redis(ctx: &Ctx) -> Result<(), String> {
    let port = ctx.free_port()?;
    let p = port.to_string();
    let mut c = ctx.cmd("redis-server");
    c.args([
        "--port",
        &p,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        ".",
    ]);
    // Its log (stdout) has times and pids: kept under logs/, not compared.
    let mut server = ctx.spawn("redis-server", c)?;
    wait_port(&mut server, port)?;
    let n = ctx.mode.pick(20_000, 200_000).to_string();
    let mut c = ctx.cmd("redis-benchmark");
    c.args(["-h", "127.0.0.1", "-p", &p, "-n", &n, "-P", "32"])
        .args(["-t", "set,get,lpush,lpop,hset", "-d", "256", "-q"]);
    // Its lines report requests per second and latencies: only the test
    // names are compared.
    ctx.exec(
        "redis-benchmark",
        c,
        Exec {
            norm: norm_benchmark,
            ..Exec::default()
        },
    )?;
    let cli = |args: &[&str]| {
        let mut c = ctx.cmd("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &p]).args(args);
        c
    };
    ctx.run("redis-cli dbsize", cli(&["DBSIZE"]))?;
    ctx.run("redis-cli strlen", cli(&["STRLEN", "key:__rand_int__"]))?;
    ctx.run("redis-cli hlen", cli(&["HLEN", "myhash"]))?;
    ctx.run("redis-cli llen", cli(&["LLEN", "mylist"]))?;
    // The call counts per command (the times spent vary: dropped).
    ctx.exec(
        "redis-cli info commandstats",
        cli(&["INFO", "commandstats"]),
        Exec {
            norm: norm_commandstats,
            ..Exec::default()
        },
    )?;
    ctx.check_signal_masks(&server, Threads::Library)?;
    ctx.run("redis-cli shutdown", cli(&["SHUTDOWN", "NOSAVE"]))?;
    ctx.finish(server, Stdout::Ignore)
}

pub fn run_nginx(ctx: &Ctx) -> Result<(), String> {
    let port = ctx.free_port()?;
    let prefix = ctx.dir.join("nginx");
    for d in ["logs", "tmp"] {
        fs::create_dir_all(prefix.join(d)).map_err(|e| e.to_string())?;
    }
    let p = prefix.display();
    // Workers run as the user that starts nginx (as root, nginx would
    // switch them to nobody unless told otherwise).
    let user = if is_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}daemon off;\nmaster_process on;\nworker_processes 4;\npid {p}/nginx.pid;\n\
         error_log {p}/logs/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n  log_format t '$request $status $body_bytes_sent';\n\
           access_log {p}/logs/access.log t;\n\
           client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
           fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
           scgi_temp_path {p}/tmp/scgi;\n\
           types {{ text/plain txt; application/octet-stream bin; }}\n\
           default_type application/octet-stream;\n  sendfile on;\n\
           gzip on;\n  gzip_types *;\n  gzip_min_length 64;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {html};\n  }}\n}}\n",
        html = ctx.input("html").display(),
    );
    ctx.write("nginx/nginx.conf", conf.as_bytes())?;
    let mut c = ctx.cmd("nginx");
    c.arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .arg("-e")
        .arg(prefix.join("logs/error.log"));
    let mut server = ctx.spawn("nginx", c)?;
    wait_port(&mut server, port)?;
    let base = format!("http://127.0.0.1:{port}");
    let files = ctx.shared.html_files;
    let rounds = ctx.mode.pick(3, 20);
    for r in 0..rounds {
        let mut c = ctx.cmd("curl");
        c.args([
            "-sS",
            "--create-dirs",
            "-w",
            "%{http_code} %{size_download}\\n",
        ]);
        // Every other round asks for gzip: nginx compresses on the fly.
        if r % 2 == 1 {
            c.arg("--compressed");
        }
        c.arg(format!("{base}/t[1-{files}].txt"))
            .args(["-o", &format!("got/r{r}/t#1.txt")])
            .arg(format!("{base}/b[1-{files}].bin"))
            .args(["-o", &format!("got/r{r}/b#1.bin")]);
        ctx.run(&format!("curl round {r}"), c)?;
    }
    let mut c = ctx.cmd("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}\\n"])
        .arg(format!("{base}/missing.txt"));
    ctx.run("curl 404", c)?;
    // Four connections at once, spread over the workers.
    let mut c = ctx.cmd("curl");
    c.args([
        "-sS",
        // curl 7.88 shows the parallel progress meter even with -s.
        "--no-progress-meter",
        "--create-dirs",
        "--parallel",
        "--parallel-max",
        "4",
        "--compressed",
    ])
    .arg(format!("{base}/t[1-{files}].txt"))
    .args(["-o", "got/par/t#1.txt"]);
    ctx.run("curl --parallel", c)?;
    // The master is single-threaded: every other thread in it is the
    // library's.
    ctx.check_signal_masks(&server, Threads::AllButMain)?;
    ctx.signal(&server, libc::SIGQUIT)?;
    ctx.finish(server, Stdout::Compare)?;
    // The access log in request order depends on which connection of a
    // parallel transfer finished first: compared sorted. The error log's
    // lines start with a time, the worker's pid and the connection's
    // number (which worker took which connection varies): compared
    // without them, and with the port replaced.
    let access = fs::read_to_string(prefix.join("logs/access.log")).map_err(|e| e.to_string())?;
    ctx.write("access.sorted", sorted_lines(&access).as_bytes())?;
    let error = fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
    let error: String = error.lines().map(norm_nginx_error).collect();
    ctx.write("error.norm", ctx.unport(&error).as_bytes())
}

pub fn run_forkserver(ctx: &Ctx) -> Result<(), String> {
    let exe = ctx.bin("forkserver")?;
    let port = ctx.free_port()?;
    let conns = ctx.mode.pick(12, 120);
    let lines = ctx.mode.pick(40, 400);
    let mut c = ctx.cmd(&exe.to_string_lossy());
    // One more connection than the clients make: the readiness probe.
    c.arg(port.to_string()).arg((conns + 1).to_string());
    let mut server = ctx.spawn("forkserver", c)?;
    wait_port(&mut server, port)?;
    let replies = ctx.dir.join("replies");
    fs::create_dir_all(&replies).map_err(|e| e.to_string())?;
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let replies = &replies;
                s.spawn(move || {
                    (t..conns)
                        .step_by(2)
                        .try_for_each(|i| echo_client(port, i, lines, replies))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    ctx.finish(server, Stdout::Compare)
}

/// One connection to the forking server: `lines` requests, each answered
/// with one line, then QUIT and the server's goodbye. The transcript is an
/// output file.
fn echo_client(port: u16, i: usize, lines: usize, dir: &Path) -> Result<(), String> {
    let err = |e: std::io::Error| format!("client {i}: {e}");
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(err)?;
    // One small request at a time, each waiting for its answer: without
    // this, Nagle and delayed ACKs add 40 ms to every round trip.
    stream.set_nodelay(true).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    let mut w = stream.try_clone().map_err(err)?;
    let mut r = BufReader::new(stream);
    let mut transcript = String::new();
    const WORDS: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    for j in 0..lines {
        let n = 1 + (i * 7 + j * 3) % 12;
        let req: Vec<String> = (0..n)
            .map(|k| format!("{}{}", WORDS[(i + j + k) % 8], (i * j + k) % 100))
            .collect();
        writeln!(w, "{}", req.join(" ")).map_err(err)?;
        let mut line = String::new();
        if r.read_line(&mut line).map_err(err)? == 0 {
            return Err(format!("client {i}: connection closed after {j} lines"));
        }
        transcript.push_str(&line);
    }
    writeln!(w, "QUIT").map_err(err)?;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(err)? == 0 {
            break;
        }
        transcript.push_str(&line);
    }
    fs::write(dir.join(format!("conn-{i:03}.txt")), transcript).map_err(|e| e.to_string())
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// How long a server may take to exit once told to (or, for the forking
/// server, once its last client is done).
fn server_exit_timeout(mode: Mode) -> Duration {
    Duration::from_secs(mode.pick(30, 120))
}

impl Ctx<'_> {
    /// Starts a server (stopped, with everything it started, when the
    /// returned guard is dropped unless [`Ctx::finish`] saw it exit).
    pub fn spawn(&self, label: &str, mut cmd: Command) -> Result<Server, String> {
        let (out, err) = self.next_log(label);
        cmd.stdout(file_create(&out)?)
            .stderr(file_create(&err)?)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("{label}: cannot start: {e}"))?;
        Ok(Server {
            child,
            label: label.to_string(),
            out,
            err,
            done: false,
        })
    }

    pub fn signal(&self, server: &Server, sig: libc::c_int) -> Result<(), String> {
        let pid = server.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of a child we have not reaped yet (so
        // the pid cannot have been reused).
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(format!(
                "kill {} {sig}: {}",
                server.label,
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// Waits for a server to exit (it was told to, or exits by itself) and
    /// records it like a command.
    pub fn finish(&self, mut server: Server, stdout: Stdout) -> Result<(), String> {
        let status =
            wait_timeout(&mut server.child, server_exit_timeout(self.mode)).ok_or_else(|| {
                format!(
                    "{}: still running after {:?}",
                    server.label,
                    server_exit_timeout(self.mode)
                )
            })?;
        server.done = true;
        // Anything left in its process group (none expected) goes too.
        kill_group(server.child.id());
        let out = (stdout == Stdout::Compare).then_some(server.out.as_path());
        self.record(&server.label, status, out, &server.err, 0, keep)
    }
}

/// Polls until `port` accepts a connection (bounded); fails at once if
/// the server exits.
pub fn wait_port(server: &mut Server, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut pause = Duration::from_millis(1);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            server.done = true;
            return Err(format!(
                "{} exited before accepting connections: {}; stderr:\n{}",
                server.label,
                describe_status(status),
                tail(&fs::read_to_string(&server.err).unwrap_or_default(), 20)
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} does not accept connections on port {port} after 60 s",
                server.label
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Which threads of a server [`Ctx::check_signal_masks`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Threads named `asmalloc…` (the library's reporter and monitor).
    Library,
    /// Every thread but the main one (the program has no threads of its own).
    AllButMain,
}

/// The signals a server is told things with (and told about its children
/// with). A thread of the library that does not block them can be picked
/// by the kernel to handle one: the handler runs there, and a main thread
/// waiting in sigsuspend() for it never wakes up (seen: nginx's master
/// hanging at shutdown).
const SERVER_SIGNALS: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGWINCH,
    libc::SIGIO,
];

impl Ctx<'_> {
    /// Records whether the server's extra threads block [`SERVER_SIGNALS`]
    /// (as "ok" when they do, the same line as without the preload).
    pub fn check_signal_masks(&self, server: &Server, which: Threads) -> Result<(), String> {
        let pid = server.child.id();
        let tasks = fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| format!("{}: /proc/{pid}/task: {e}", server.label))?;
        let mut bad = Vec::new();
        for t in tasks.flatten() {
            let tid = t.file_name().to_string_lossy().into_owned();
            if tid == pid.to_string() {
                continue;
            }
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            if which == Threads::Library && !comm.starts_with("asmalloc") {
                continue;
            }
            let status = fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let blocked = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                .unwrap_or(0);
            let open: Vec<String> = SERVER_SIGNALS
                .iter()
                .filter(|&&sig| blocked & (1u64 << (sig - 1)) == 0)
                .map(|sig| sig.to_string())
                .collect();
            if !open.is_empty() {
                bad.push(format!("thread {comm:?} takes signals {}", open.join(",")));
            }
        }
        bad.sort();
        let verdict = if bad.is_empty() {
            "ok".to_string()
        } else {
            bad.join("; ")
        };
        self.cap
            .borrow_mut()
            .statuses
            .push(format!("{} signal masks: {verdict}", server.label));
        Ok(())
    }
}

/// A running server: killed with its whole process group unless it exited.
pub struct Server {
    pub child: Child,
    pub label: String,
    pub out: PathBuf,
    pub err: PathBuf,
    pub done: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.done {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}
