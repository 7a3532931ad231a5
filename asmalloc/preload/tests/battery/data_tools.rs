//! The battery's data tools: sqlite3, sort, gzip/xz/zstd, jq, gawk, tar and
//! git, each doing real work on the generated inputs.

use std::fs;

use crate::ctx::{Ctx, Exec};
use crate::fixture;

pub fn run_sqlite3(ctx: &Ctx) -> Result<(), String> {
    let rows = ctx.mode.pick(4000, 200_000);
    let sql = fs::read_to_string(fixture("work.sql"))
        .map_err(|e| e.to_string())?
        .replace("@ROWS@", &rows.to_string());
    ctx.write("work.sql", sql.as_bytes())?;
    let mut c = ctx.cmd("sqlite3");
    c.args(["-bail", "db.sqlite"]);
    ctx.exec(
        "sqlite3 < work.sql",
        c,
        Exec {
            stdin: Some(ctx.dir.join("work.sql")),
            ..Exec::default()
        },
    )?;
    let mut c = ctx.cmd("sqlite3");
    c.args(["db.sqlite", ".output dump.sql", ".dump"]);
    ctx.run("sqlite3 .dump", c)
}

pub fn run_sort(ctx: &Ctx) -> Result<(), String> {
    let input = ctx.input("records.txt");
    let mut c = ctx.cmd("sort");
    // A small buffer: sort spills runs to temporary files and merges them.
    c.args([
        "-S",
        "64K",
        "-T",
        ".tmp",
        "-k2,2",
        "-k1,1n",
        "-o",
        "by-word.txt",
    ])
    .arg(&input);
    ctx.run("sort -k2,2 -k1,1n", c)?;
    let mut c = ctx.cmd("sort");
    c.args(["-n", "-r", "--parallel=2", "-S", "1M", "-o", "by-num.txt"])
        .arg(&input);
    ctx.run("sort -nr --parallel=2", c)?;
    let mut c = ctx.cmd("sort");
    c.args(["-u", "-k2,2", "-o", "uniq.txt"]).arg(&input);
    ctx.run("sort -u", c)?;
    // A failing check: exit status 1 and a message on stderr.
    let mut c = ctx.cmd("sort");
    c.args(["-c", "by-num.txt"]);
    ctx.exec(
        "sort -c (unsorted)",
        c,
        Exec {
            expect: 1,
            ..Exec::default()
        },
    )
}

/// A compressor: compress the corpus and the records, decompress, test, and
/// test a truncated file (exit status 1).
fn run_compressor(ctx: &Ctx, tool: &str, ext: &str, args: &[&[&str]; 5]) -> Result<(), String> {
    let [strong, fast, decompress, test, list] = args;
    let corpus = ctx.input("corpus.txt");
    let mut c = ctx.cmd(tool);
    c.args(*strong).arg(&corpus);
    ctx.exec(
        &format!("{tool} corpus"),
        c,
        Exec::to_file(&format!("corpus.{ext}")),
    )?;
    let mut c = ctx.cmd(tool);
    c.args(*fast).arg(ctx.input("records.txt"));
    ctx.exec(
        &format!("{tool} records"),
        c,
        Exec::to_file(&format!("records.{ext}")),
    )?;
    let mut c = ctx.cmd(tool);
    c.args(*decompress).arg(format!("corpus.{ext}"));
    ctx.exec(&format!("{tool} -d"), c, Exec::to_file("corpus.back"))?;
    let mut c = ctx.cmd(tool);
    c.args(*test).arg(format!("corpus.{ext}"));
    ctx.run(&format!("{tool} -t"), c)?;
    if !list.is_empty() {
        let mut c = ctx.cmd(tool);
        c.args(*list).arg(format!("corpus.{ext}"));
        ctx.run(&format!("{tool} list"), c)?;
    }
    let whole = fs::read(ctx.dir.join(format!("corpus.{ext}"))).map_err(|e| e.to_string())?;
    ctx.write(&format!("bad.{ext}"), &whole[..whole.len() / 2])?;
    let mut c = ctx.cmd(tool);
    c.args(*test).arg(format!("bad.{ext}"));
    ctx.exec(
        &format!("{tool} -t truncated"),
        c,
        Exec {
            expect: 1,
            ..Exec::default()
        },
    )
}

pub fn run_gzip(ctx: &Ctx) -> Result<(), String> {
    run_compressor(
        ctx,
        "gzip",
        "gz",
        &[
            &["-9", "-n", "-c"],
            &["-1", "-n", "-c"],
            &["-d", "-c"],
            &["-t"],
            &["-l"],
        ],
    )
}

pub fn run_xz(ctx: &Ctx) -> Result<(), String> {
    run_compressor(
        ctx,
        "xz",
        "xz",
        &[
            &["-T2", "-6", "-c"],
            &["-0", "-c"],
            &["-d", "-c"],
            &["-t"],
            &["--robot", "--list"],
        ],
    )
}

pub fn run_zstd(ctx: &Ctx) -> Result<(), String> {
    run_compressor(
        ctx,
        "zstd",
        "zst",
        &[
            &["-q", "-T2", "-12", "-c"],
            &["-q", "-3", "-c"],
            &["-q", "-d", "-c"],
            &["-q", "-t"],
            &[],
        ],
    )?;
    // Dictionary training: many small samples, a lot of allocation.
    let mut c = ctx.cmd("zstd");
    c.args(["--train", "-q", "--maxdict=16384", "-r"])
        .arg(ctx.input("tree"))
        .args(["-o", "dict"]);
    ctx.run("zstd --train", c)
}

pub fn run_jq(ctx: &Ctx) -> Result<(), String> {
    let records = ctx.input("records.json");
    let mut c = ctx.cmd("jq");
    c.arg("-f").arg(fixture("query.jq")).arg(&records);
    ctx.run("jq -f query.jq", c)?;
    let mut c = ctx.cmd("jq");
    c.args([
        "-c",
        ".[] | select(.score > 900) | {id, name, tags: (.tags | join(\"+\"))}",
    ])
    .arg(&records);
    ctx.exec("jq select", c, Exec::to_file("selected.jsonl"))?;
    // -e: exit status 1 when the last output is null.
    let mut c = ctx.cmd("jq");
    c.args(["-e", ".[0].missing"]).arg(&records);
    ctx.exec(
        "jq -e (null)",
        c,
        Exec {
            expect: 1,
            ..Exec::default()
        },
    )
}

pub fn run_gawk(ctx: &Ctx) -> Result<(), String> {
    let mut c = ctx.cmd("gawk");
    c.arg("-f")
        .arg(fixture("words.awk"))
        .args(["-v", "out=words.txt"])
        .arg(ctx.input("corpus.txt"));
    ctx.run("gawk -f words.awk", c)
}

pub fn run_tar(ctx: &Ctx) -> Result<(), String> {
    let mut c = ctx.cmd("tar");
    // Reproducible: sorted names, fixed times and owners.
    c.args([
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--format=gnu",
        "-cf",
        "tree.tar",
        "-C",
    ])
    .arg(ctx.shared.inputs.as_path())
    .arg("tree");
    ctx.run("tar -c", c)?;
    let mut c = ctx.cmd("tar");
    c.args(["-tvf", "tree.tar"]);
    ctx.run("tar -tv", c)?;
    fs::create_dir_all(ctx.dir.join("x")).map_err(|e| e.to_string())?;
    let mut c = ctx.cmd("tar");
    c.args(["-xf", "tree.tar", "-C", "x"]);
    ctx.run("tar -x", c)
}

pub fn run_git(ctx: &Ctx) -> Result<(), String> {
    let repo = ctx.dir.join("repo");
    fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
    let git = |args: &[&str]| {
        let mut c = ctx.cmd("git");
        c.args(["-C", "repo"])
            .args([
                "-c",
                "user.name=Battery",
                "-c",
                "user.email=battery@example.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "gc.autoDetach=false",
                // One delta-search thread: the pack (its size in
                // count-objects) is then the same every run.
                "-c",
                "pack.threads=1",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z");
        c
    };
    ctx.run("git init", git(&["init", "-q"]))?;
    let corpus = fs::read_to_string(ctx.input("corpus.txt")).map_err(|e| e.to_string())?;
    let commits = ctx.mode.pick(6, 40);
    let files = ctx.mode.pick(40, 300);
    for k in 0..commits {
        for i in 0..files {
            // Each commit rewrites a third of the files and removes a few.
            if (i + k) % 3 != 0 && k > 0 {
                continue;
            }
            let path = repo.join(format!("d{}/f{i:03}.txt", i % 7));
            if k > 0 && (i * 7 + k) % 23 == 0 {
                let _ = fs::remove_file(&path);
                continue;
            }
            let start = (i * 997 + k * 131) % (corpus.len() - 4096);
            let len = 200 + (i * 31 + k * 17) % 3000;
            fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
            fs::write(&path, &corpus[start..start + len]).map_err(|e| e.to_string())?;
        }
        ctx.run("git add", git(&["add", "-A"]))?;
        ctx.run(
            "git commit",
            git(&["commit", "-q", "-m", &format!("commit {k}")]),
        )?;
    }
    ctx.run(
        "git log",
        git(&["log", "--stat", "--format=%H %an <%ae> %s"]),
    )?;
    ctx.run("git diff", git(&["diff", "--stat", "HEAD~3", "HEAD"]))?;
    ctx.run("git gc", git(&["gc", "--quiet"]))?;
    ctx.run("git count-objects", git(&["count-objects", "-v"]))?;
    ctx.run("git fsck", git(&["fsck", "--full", "--no-progress"]))?;
    ctx.run("git grep", git(&["grep", "-c", "the", "HEAD", "--", "d1"]))?;
    ctx.run(
        "git archive",
        git(&["archive", "--format=tar", "-o", "../head.tar", "HEAD"]),
    )
}
