//! Safe output, under both preload libraries (tests/common/mod.rs): the
//! report file (`ASMALLOC_OUTPUT`) and the leak monitor's log
//! (`ASMALLOC_LOG`) in a directory everyone may write to (mode 1777, like
//! `/tmp`):
//!
//! * a new file is created `0600`, or less if the umask says so;
//! * an existing regular file of the user, with one link, is appended to
//!   (the documented behaviour), its mode left alone;
//! * a symbolic link planted there (to a file, or dangling), a file or FIFO
//!   of another user, a file with a second hard link are refused: one line
//!   on stderr naming the path and why, nothing written (no report, or no
//!   monitor), the program's output and status unchanged, and never a
//!   block in `open` on a planted FIFO;
//! * `/dev/null` is fine;
//! * set-user-ID programs: the loader does not preload the library into
//!   them, and a set-user-ID program linked against it ignores every
//!   `ASMALLOC_*` setting.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[macro_use]
mod common;

use common::*;

/// `nobody` on Debian.
const NOBODY: u32 = 65534;

/// A directory anyone may write to, sticky (as /tmp): in the system's
/// temporary directory, so a process of another user can reach it.
fn shared_dir(name: &str) -> PathBuf {
    let dir = asmalloc_test_support::fresh_dir(&format!("asmalloc-shared-{name}-"));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

struct Ran {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// Runs `exe` (under `lib`, with `env`, and `umask` if given), killing it
/// after 60 s: a test that blocks in `open` fails instead of hanging.
fn run_probe(
    exe: &Path,
    lib: Option<Lib>,
    env: &[(&str, &Path)],
    umask: Option<libc::mode_t>,
) -> Ran {
    let mut cmd = Command::new(exe);
    // The test run's own ASMALLOC_* settings are not the library's.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ASMALLOC_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("LD_PRELOAD")
        .env("ASMALLOC_REPORT_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(lib) = lib {
        cmd.env("LD_PRELOAD", common::lib(lib));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(mask) = umask {
        // SAFETY: umask is async-signal-safe and touches nothing but the
        // child's own file-creation mask.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
    }
    // A file just written (the setuid copy) can be briefly "busy" when a
    // parallel test forks while the copy's descriptor was open: retry.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.expect("start the probe"),
        }
    };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "{} did not finish in 60 s (blocked in open?)",
                exe.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

fn probe() -> PathBuf {
    compile("secure_probe", &["-ldl"])
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The monitor on (sampling every 10 ms), with a log at `log`.
fn log_env(log: &Path) -> [(&'static str, &Path); 2] {
    [
        ("ASMALLOC_LOG", log),
        ("ASMALLOC_SAMPLE_INTERVAL", Path::new("10ms")),
    ]
}

/// New report and log files are private: 0600 under the usual umask (022)
/// and under 077; 0400 under 377 (the stricter umask wins), still written.
fn new_files_are_created_private(lib: Lib) {
    let dir = shared_dir(&format!("new-{}", lib.name()));
    for (umask, want) in [(0o022, 0o600), (0o077, 0o600), (0o377, 0o400)] {
        let out = dir.join(format!("report-{umask:o}.json"));
        let log = dir.join(format!("log-{umask:o}.jsonl"));
        let [l1, l2] = log_env(&log);
        let r = run_probe(
            &probe(),
            Some(lib),
            &[("ASMALLOC_OUTPUT", &out), l1, l2],
            Some(umask),
        );
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(r.stdout.contains("asmalloc present"), "{}", r.stdout);
        assert_eq!(r.stderr, "", "umask {umask:o}");
        for file in [&out, &log] {
            assert_eq!(mode(file), want, "{} under umask {umask:o}", file.display());
            assert!(!json_lines(file).is_empty(), "{} written", file.display());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An existing report or log file of the user is appended to, and keeps
/// its mode (here 0644: the user's choice).
fn an_existing_own_file_is_appended_to(lib: Lib) {
    let dir = shared_dir(&format!("append-{}", lib.name()));
    let out = dir.join("report.json");
    let log = dir.join("log.jsonl");
    for file in [&out, &log] {
        std::fs::write(file, "{\"earlier\":1}\n").unwrap();
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let [l1, l2] = log_env(&log);
    for _ in 0..2 {
        let r = run_probe(
            &probe(),
            Some(lib),
            &[("ASMALLOC_OUTPUT", &out), l1, l2],
            None,
        );
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_eq!(r.stderr, "");
    }
    let reports = json_lines(&out);
    assert_eq!(reports[0]["earlier"], 1, "kept what was there");
    assert_eq!(reports.len(), 3, "two reports appended");
    assert_eq!(json_lines(&log)[0]["earlier"], 1);
    assert_eq!(mode(&out), 0o644);
    assert_eq!(mode(&log), 0o644);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a refusal looks like: same stdout and status as without the
/// library, exactly one line on stderr (naming `path` and `why`), and
/// `victim` (if any) untouched.
fn assert_refused(r: &Ran, plain: &Ran, path: &Path, why: &str, victim: Option<(&Path, &str)>) {
    assert_eq!(r.code, plain.code, "{}", r.stderr);
    assert_eq!(
        r.stdout.replace("present", "absent"),
        plain.stdout,
        "stdout as without the library"
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
    assert!(lines[0].starts_with("asmalloc: "), "{}", lines[0]);
    assert!(
        lines[0].contains(&path.display().to_string()),
        "names the path: {}",
        lines[0]
    );
    assert!(lines[0].contains(why), "says why ({why}): {}", lines[0]);
    if let Some((victim, was)) = victim {
        assert_eq!(
            std::fs::read_to_string(victim).ok().as_deref(),
            Some(was),
            "{} untouched",
            victim.display()
        );
    }
}

/// Symbolic links planted where the report or log will be written — to a
/// file of the user's, and dangling (pointing where a new file would be
/// created) — are never followed.
fn planted_symbolic_links_are_refused(lib: Lib) {
    let dir = shared_dir(&format!("symlink-{}", lib.name()));
    let plain = run_probe(&probe(), None, &[], None);
    let victim = dir.join("precious.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let missing = dir.join("created-through-the-link");
    for (name, target) in [("to-file", &victim), ("dangling", &missing)] {
        let link = dir.join(format!("report-{name}.json"));
        std::os::unix::fs::symlink(target, &link).unwrap();
        let r = run_probe(&probe(), Some(lib), &[("ASMALLOC_OUTPUT", &link)], None);
        assert_refused(
            &r,
            &plain,
            &link,
            "it is a symbolic link",
            Some((&victim, "precious\n")),
        );
        assert!(r.stderr.contains("no report is written"), "{}", r.stderr);
        assert!(!missing.exists(), "nothing created through the link");

        let log_link = dir.join(format!("log-{name}.jsonl"));
        std::os::unix::fs::symlink(target, &log_link).unwrap();
        let [l1, l2] = log_env(&log_link);
        let out = dir.join(format!("fine-{name}.json"));
        let r = run_probe(
            &probe(),
            Some(lib),
            &[l1, l2, ("ASMALLOC_OUTPUT", &out)],
            None,
        );
        assert_refused(
            &r,
            &plain,
            &log_link,
            "it is a symbolic link",
            Some((&victim, "precious\n")),
        );
        assert!(r.stderr.contains("no leak monitor"), "{}", r.stderr);
        assert!(!missing.exists(), "nothing created through the link");
        assert_eq!(json_lines(&out).len(), 1, "the report itself is written");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file of another user, a FIFO of another user (refused without
/// opening it, which would block until someone reads), and a file with a
/// second hard link are refused; /dev/null is written to.
fn files_of_others_and_hard_links_are_refused(lib: Lib) {
    let dir = shared_dir(&format!("others-{}", lib.name()));
    let plain = run_probe(&probe(), None, &[], None);
    let me = euid();
    // A file of another user: as root, one we give away; otherwise one of
    // root's, which this user cannot write anyway.
    let theirs = if me == 0 {
        let f = dir.join("theirs.json");
        std::fs::write(&f, "theirs\n").unwrap();
        std::os::unix::fs::chown(&f, Some(NOBODY), Some(NOBODY)).unwrap();
        f
    } else {
        PathBuf::from("/etc/passwd")
    };
    let was = std::fs::read_to_string(&theirs).unwrap();
    let r = run_probe(&probe(), Some(lib), &[("ASMALLOC_OUTPUT", &theirs)], None);
    let owner = std::fs::metadata(&theirs).unwrap().uid();
    assert_refused(
        &r,
        &plain,
        &theirs,
        &format!("it is a file of uid {owner}, not of this process's user (uid {me})"),
        Some((&theirs, &was)),
    );

    if me == 0 {
        let fifo = dir.join("theirs.fifo");
        let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        std::os::unix::fs::chown(&fifo, Some(NOBODY), Some(NOBODY)).unwrap();
        let r = run_probe(&probe(), Some(lib), &[("ASMALLOC_OUTPUT", &fifo)], None);
        assert_refused(&r, &plain, &fifo, "it is a FIFO or socket of uid", None);
    }

    let own = dir.join("own.json");
    std::fs::write(&own, "").unwrap();
    let linked = dir.join("second-name.json");
    std::fs::hard_link(&own, &linked).unwrap();
    let r = run_probe(&probe(), Some(lib), &[("ASMALLOC_OUTPUT", &linked)], None);
    assert_refused(&r, &plain, &linked, "it has 2 hard links", Some((&own, "")));

    let r = run_probe(
        &probe(),
        Some(lib),
        &[("ASMALLOC_OUTPUT", Path::new("/dev/null"))],
        None,
    );
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stderr, "", "/dev/null is fine");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Copies `exe` into `dir` as a set-user-ID program of `nobody` (mode
/// 4755), or `None` (saying why) when that cannot mean anything here: not
/// root (a set-user-ID copy of one's own program changes no id), or the
/// file system ignores the bit.
fn setuid_copy(exe: &Path, dir: &Path, name: &str) -> Option<PathBuf> {
    if euid() != 0 {
        eprintln!(
            "not root: a set-user-ID copy would run as this same user, which is no secure execution; skipped"
        );
        return None;
    }
    let copy = dir.join(name);
    std::fs::copy(exe, &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let r = run_probe(&copy, None, &[], None);
    if !r.stdout.contains(&format!("euid {NOBODY} ruid 0")) {
        eprintln!(
            "the set-user-ID bit did not take effect ({}): nosuid mount? skipped",
            r.stdout.trim()
        );
        return None;
    }
    Some(copy)
}

/// A set-user-ID program started with LD_PRELOAD: the loader ignores the
/// variable (secure execution), so the library is not in the process and
/// writes nothing — not to ASMALLOC_OUTPUT, a file the program's owner
/// could otherwise be made to create. The same program without the bit is
/// tracked (control).
fn setuid_programs_are_not_preloaded(lib: Lib) {
    let dir = shared_dir(&format!("setuid-{}", lib.name()));
    let Some(copy) = setuid_copy(&probe(), &dir, "probe-setuid") else {
        return;
    };
    let out = dir.join("report.json");
    let r = run_probe(&copy, Some(lib), &[("ASMALLOC_OUTPUT", &out)], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("probe: euid {NOBODY} ruid 0 asmalloc absent\n")
    );
    assert_eq!(r.stderr, "");
    assert!(!out.exists(), "the library was not there to write it");
    let r = run_probe(&probe(), Some(lib), &[("ASMALLOC_OUTPUT", &out)], None);
    assert!(r.stdout.ends_with("asmalloc present\n"), "{}", r.stdout);
    assert_eq!(json_lines(&out).len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A set-user-ID program linked against the library (which the loader
/// does load): every ASMALLOC_* setting is ignored — it says so in one
/// line, and the report goes to stderr, not to the file asked for.
fn setuid_programs_linked_against_the_library_ignore_the_settings(lib: Lib) {
    let dir = shared_dir(&format!("setuid-linked-{}", lib.name()));
    let linked = compile_linked(lib, "secure_probe", &["-ldl"]);
    let Some(copy) = setuid_copy(&linked, &dir, "probe-linked-setuid") else {
        return;
    };
    let out = dir.join("report.json");
    let log = dir.join("log.jsonl");
    let [l1, l2] = log_env(&log);
    let r = run_probe(&copy, None, &[("ASMALLOC_OUTPUT", &out), l1, l2], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("probe: euid {NOBODY} ruid 0 asmalloc present\n")
    );
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("asmalloc: this is a set-user-ID or set-group-ID program"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("---- pid"),
        "default report, on stderr: {}",
        r.stderr
    );
    assert!(!out.exists() && !log.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

under_both!(
    new_files_are_created_private,
    an_existing_own_file_is_appended_to,
    planted_symbolic_links_are_refused,
    files_of_others_and_hard_links_are_refused,
    setuid_programs_are_not_preloaded,
    setuid_programs_linked_against_the_library_ignore_the_settings,
);
