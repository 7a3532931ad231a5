//! Wrappers end to end: a C server allocating only through out-of-line
//! wrappers (`xmalloc`, `xcalloc`, `xrealloc` in their own file, and
//! `dup_name`, a second layer over `xmalloc`), built with `-O2` and without
//! frame pointers. Under `asmalloc run --wrapper …` the leak verdict names
//! the leaking caller and its line, and every caller is a site of its own,
//! through one and two wrapper frames; with the wrappers not followed,
//! everything is charged to the wrappers. A real program nobody here
//! wrote, `glib-compile-schemas`, allocates through GLib's `g_malloc`
//! family: with the built-in wrapper list its sites are the GLib functions
//! that call them, never the wrappers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use asmalloc_test_support::{Cc, Lib, fresh_dir};

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

/// The `asmalloc` binary, with libasmalloc.so built next to it.
fn asmalloc() -> Command {
    Lib::Glibc.path();
    Command::new(env!("CARGO_BIN_EXE_asmalloc"))
}

/// `asmalloc run` on the wrapped server (6,000 requests at 3,000 a second),
/// with the built-in wrapper list on or off.
fn run(exe: &Path, builtin: bool, extra: &[&str]) -> Output {
    let out = asmalloc()
        .args([
            "run",
            "--interval",
            "100ms",
            "--window",
            "1s",
            "--threshold",
            "256K",
        ])
        .args(extra)
        .arg("--")
        .arg(exe)
        .args(["6000", "3000"])
        .env_remove("LD_PRELOAD")
        .env_remove("ASMALLOC_WRAPPERS")
        .env("ASMALLOC_BUILTIN_WRAPPERS", if builtin { "1" } else { "0" })
        .output()
        .expect("run asmalloc");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "served 6000 requests, kept 6000\n"
    );
    out
}

/// The exit report's rows (`id type place function net …`).
fn report_rows(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .skip_while(|l| !l.contains("at exit ----"))
        .skip_while(|l| !l.trim_start().starts_with("id "))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn verdict(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("LEAK at exit") || l.contains("possible progressive leak"))
        .unwrap_or_else(|| panic!("no verdict:\n{stderr}"))
}

/// The 1-based line of `needle` in `file` (in tests/c).
fn line_of(file: &str, needle: &str) -> usize {
    std::fs::read_to_string(c_dir().join(file))
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {file}"))
        + 1
}

fn build_wrapped(dir: &Path) -> PathBuf {
    build_wrapped_with(dir, "-fomit-frame-pointer")
}

fn build_wrapped_with(dir: &Path, frame_pointer: &str) -> PathBuf {
    Cc::new()
        .args(["-O2", "-g", frame_pointer, "-fno-builtin", "-pthread"])
        .arg(format!("-I{}", c_dir().display()))
        .arg(c_dir().join("wrapped.c"))
        .arg(c_dir().join("xalloc.c"))
        .arg(c_dir().join("xname.c"))
        .build(&dir.join(format!("wrapped{frame_pointer}")))
}

#[test]
fn calls_through_named_wrappers_are_charged_to_their_callers() {
    let dir = fresh_dir("wrappers");
    charged_to_callers(&build_wrapped(&dir));
}

/// The same with frame pointers: the wrappers' unwind rules then use the
/// frame pointer, which the remembered frame sizes cannot (they are only
/// kept for rules relative to the stack pointer), so every call walks.
#[test]
fn wrappers_with_frame_pointers_are_followed_too() {
    let dir = fresh_dir("wrappers-fp");
    charged_to_callers(&build_wrapped_with(&dir, "-fno-omit-frame-pointer"));
}

fn charged_to_callers(exe: &Path) {
    let exe = exe.to_path_buf();
    // Named by pattern and by name; the built-in list off, so only these.
    let out = run(
        &exe,
        false,
        &["--wrapper", "x*alloc", "--wrapper", "dup_name"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let leak = format!(
        "wrapped.c:{} remember",
        line_of("wrapped.c", "void remember(long i)")
    );
    assert!(verdict(&stderr).contains(&leak), "{stderr}");
    let rows = report_rows(&stderr);
    for (function, needle) in [
        ("make_buffer", "*make_buffer(size_t n)"),
        ("make_table", "*make_table(size_t n)"),
        // Two wrapper frames: copy_name → dup_name → xmalloc → malloc.
        ("copy_name", "*copy_name(const char *s)"),
        ("grow", "*grow(char *p, size_t n)"),
        ("remember", "void remember(long i)"),
    ] {
        let row = rows
            .iter()
            .find(|r| r.get(3).map(String::as_str) == Some(function))
            .unwrap_or_else(|| panic!("no site for {function}:\n{stderr}"));
        assert!(
            row[2].ends_with(&format!("wrapped.c:{}", line_of("wrapped.c", needle))),
            "{function}: {row:?}"
        );
        let net_count: i64 = row[row.len() - 1].parse().unwrap();
        let expected = if function == "remember" { 6000 } else { 0 };
        assert_eq!(net_count, expected, "{function}: {row:?}");
    }
    for wrapper in ["xmalloc", "xcalloc", "xrealloc", "dup_name"] {
        assert!(
            rows.iter().all(|r| r[3] != wrapper),
            "no site inside {wrapper}:\n{stderr}"
        );
    }
}

#[test]
fn the_jemalloc_library_follows_wrappers_too() {
    Lib::Jemalloc.path();
    let dir = fresh_dir("wrappers-jem");
    let exe = build_wrapped(&dir);
    let out = run(
        &exe,
        false,
        &[
            "--jemalloc",
            "--wrapper",
            "x*alloc",
            "--wrapper",
            "dup_name",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The jemalloc library's report has jemalloc's own line.
    assert!(stderr.contains("  jemalloc: allocated "), "{stderr}");
    let leak = format!(
        "wrapped.c:{} remember",
        line_of("wrapped.c", "void remember(long i)")
    );
    assert!(verdict(&stderr).contains(&leak), "{stderr}");
    let rows = report_rows(&stderr);
    let copy = rows
        .iter()
        .find(|r| r[3] == "copy_name")
        .unwrap_or_else(|| panic!("no copy_name site:\n{stderr}"));
    assert!(
        copy[2].ends_with(&format!(
            "wrapped.c:{}",
            line_of("wrapped.c", "*copy_name(const char *s)")
        )),
        "{copy:?}"
    );
}

#[test]
fn without_the_wrappers_named_the_wrapper_is_the_site() {
    let dir = fresh_dir("wrappers-off");
    let exe = build_wrapped(&dir);
    let out = run(&exe, false, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let leak = format!(
        "xalloc.c:{} xmalloc",
        line_of("xalloc.c", "void *p = malloc(n);")
    );
    assert!(verdict(&stderr).contains(&leak), "{stderr}");
    // A name that matches nothing says so and changes nothing.
    let out = run(&exe, false, &["--wrapper", "no_such_wrapper"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("ASMALLOC_WRAPPERS: no function 'no_such_wrapper'"),
        "{stderr}"
    );
    assert!(verdict(&stderr).contains(&leak), "{stderr}");
}

#[test]
fn the_builtin_list_follows_xmalloc_without_being_told() {
    let dir = fresh_dir("wrappers-builtin");
    let exe = build_wrapped(&dir);
    let out = run(&exe, true, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let leak = format!(
        "wrapped.c:{} remember",
        line_of("wrapped.c", "void remember(long i)")
    );
    assert!(verdict(&stderr).contains(&leak), "{stderr}");
    // dup_name is not on the list: the site is its call of xmalloc.
    let rows = report_rows(&stderr);
    let row = rows
        .iter()
        .find(|r| r[3] == "dup_name")
        .unwrap_or_else(|| panic!("no dup_name site:\n{stderr}"));
    assert!(
        row[2].ends_with(&format!(
            "xname.c:{}",
            line_of("xname.c", "char *p = xmalloc(n);")
        )),
        "{row:?}"
    );
}

/// GLib's allocation wrappers on the built-in list.
const GLIB_WRAPPERS: [&str; 6] = [
    "g_malloc",
    "g_malloc0",
    "g_realloc",
    "g_strdup",
    "g_strndup",
    "g_try_malloc",
];

/// The functions named by the exit report of `glib-compile-schemas` on a
/// one-schema directory.
fn glib_sites(dir: &Path, builtin: bool) -> Vec<String> {
    let out = asmalloc()
        .args(["run", "--"])
        .arg("glib-compile-schemas")
        .args(["--strict", "--targetdir"])
        .arg(dir)
        .arg(dir)
        .env_remove("LD_PRELOAD")
        .env_remove("ASMALLOC_WRAPPERS")
        .env("ASMALLOC_TOP_SITES", "1000")
        .env("ASMALLOC_BUILTIN_WRAPPERS", if builtin { "1" } else { "0" })
        .output()
        .expect("run glib-compile-schemas (Debian package libglib2.0-bin)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.join("gschemas.compiled").exists(), "{stderr}");
    report_rows(&stderr)
        .into_iter()
        .filter_map(|r| r.get(3).cloned())
        .collect()
}

#[test]
fn a_real_glib_program_is_charged_to_the_callers_of_g_malloc() {
    let dir = fresh_dir("wrappers-glib");
    std::fs::write(
        dir.join("org.example.test.gschema.xml"),
        r#"<schemalist>
  <schema id="org.example.test" path="/org/example/test/">
    <key name="greeting" type="s"><default>'hello'</default></key>
    <key name="names" type="as"><default>['a','b','c']</default></key>
  </schema>
</schemalist>
"#,
    )
    .unwrap();
    let plain = glib_sites(&dir, false);
    assert!(
        plain.iter().any(|f| GLIB_WRAPPERS.contains(&f.as_str())),
        "without the list, GLib's wrappers are sites: {plain:?}"
    );
    let followed = glib_sites(&dir, true);
    assert!(
        followed
            .iter()
            .all(|f| !GLIB_WRAPPERS.contains(&f.as_str())),
        "with the list, no site is a wrapper: {followed:?}"
    );
    // The callers are GLib's own exported functions (named from .dynsym)
    // that build what the program asked for.
    assert!(
        followed
            .iter()
            .any(|f| f.starts_with("g_markup_") || f.starts_with("g_option_")),
        "{followed:?}"
    );
    assert!(followed.len() > plain.len(), "{plain:?} → {followed:?}");
}

/// The functions named by the exit report of `perl -e SCRIPT` under the
/// library with caller sites on, and its stdout.
fn perl_sites(builtin: bool) -> (Vec<String>, String) {
    let script = "my %h; for my $i (1..50000) { $h{\"k$i\"} = [$i, \"v\" x ($i % 50)] } \
                  my @k = sort keys %h; print scalar(@k), \" $k[0] $k[-1]\\n\";";
    let out = Command::new("perl")
        .args(["-e", script])
        .env("LD_PRELOAD", Lib::Glibc.path())
        .env("ASMALLOC_CALLERS", "1")
        .env("ASMALLOC_TOP_SITES", "1000")
        .env("ASMALLOC_BUILTIN_WRAPPERS", if builtin { "1" } else { "0" })
        .env_remove("ASMALLOC_WRAPPERS")
        .output()
        .expect("run perl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sites = report_rows(&stderr)
        .into_iter()
        .filter_map(|r| r.get(3).cloned())
        .collect();
    (sites, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn perl_is_charged_past_its_safesysmalloc_and_runs_the_same() {
    let plain = Command::new("perl")
        .args([
            "-e",
            "my %h; for my $i (1..50000) { $h{\"k$i\"} = [$i, \"v\" x ($i % 50)] } \
             my @k = sort keys %h; print scalar(@k), \" $k[0] $k[-1]\\n\";",
        ])
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run perl");
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    let (without, out_without) = perl_sites(false);
    let (with, out_with) = perl_sites(true);
    assert_eq!(out_without, plain);
    assert_eq!(out_with, plain);
    let wrappers = [
        "Perl_safesysmalloc",
        "Perl_safesyscalloc",
        "Perl_safesysrealloc",
    ];
    assert!(
        without.iter().any(|f| wrappers.contains(&f.as_str())),
        "{without:?}"
    );
    assert!(
        with.iter().all(|f| !wrappers.contains(&f.as_str())),
        "{with:?}"
    );
    // Perl's own functions that asked for the memory (named from libperl's
    // exports), e.g. Perl_newSV_type, Perl_hv_common, Perl_sv_grow.
    assert!(with.iter().any(|f| f.starts_with("Perl_")), "{with:?}");
}
