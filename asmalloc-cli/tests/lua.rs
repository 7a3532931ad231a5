//! Lua 5.4 (as the `lua-src` crate ships it) built with the header written
//! for its allocation wrappers, the `luaM_*` functions of lmem.c, which the
//! interpreter reaches through macros (`luaM_new`, `luaM_newvector`, …) and
//! which allocate through a callback, the `lua_Alloc` function of
//! lauxlib.c (`l_alloc`, calling `realloc`). Under the preload, what that
//! callback allocates is charged to the wrapper calls in the interpreter
//! (`luaC_newobjdt`, `luaH_resize`, …), not to the one `realloc` line in
//! `l_alloc`; the script's output is the same without the preload.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use asmalloc_test_support::{Cc, Lib, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

const WRAPPERS: &[&str] = &[
    "luaM_malloc_=MALLOC",
    "luaM_realloc_=REALLOC",
    "luaM_saferealloc_=REALLOC",
    "luaM_free_=FREE",
    "luaM_growaux_=REALLOC",
    "luaM_shrinkvector_=REALLOC",
];

const MAIN: &str = r#"#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include <stdio.h>
int main(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	int rc = luaL_dostring(L, argc > 1 ? argv[1] : "print(1)");
	if (rc != 0)
		fprintf(stderr, "%s\n", lua_tostring(L, -1));
	lua_close(L);
	return rc;
}
"#;

const SCRIPT: &str = "local t = {} for i = 1, 20000 do t[i] = ('x'):rep(i % 50) .. i end \
                      print(#t, t[20000])";

fn build(src: &Path, dir: &Path) -> PathBuf {
    let gen_dir = dir.join("gen");
    let mut generate = Command::new(ASMALLOC);
    generate
        .args(["gen", "--lang", "c", "-q", "--root"])
        .arg(src)
        .arg("--out")
        .arg(&gen_dir)
        .arg("--emit-sites-header")
        .arg(&gen_dir);
    for w in WRAPPERS {
        generate.args(["--wrapper", w]);
    }
    let out = generate.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = gen_dir.join("asmalloc_sites.h");
    let text = std::fs::read_to_string(&header).unwrap();
    assert!(text.contains("lmem.c (luaM_free_"), "{text}");
    std::fs::write(dir.join("main.c"), MAIN).unwrap();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    sources.push(dir.join("main.c"));
    sources.push(gen_dir.join("mallocations.c"));
    let mut objects = Vec::new();
    for f in &sources {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        // lmem.c defines the wrappers (the header lists it); the table's
        // source declares nothing of Lua's. LUA_CORE is what the core files
        // #define before their includes: the header includes lmem.h first,
        // so it must come from the command line.
        let mut cc = Cc::new()
            .args(["-c", "-O1", "-w", "-DLUA_USE_LINUX", "-DLUA_CORE", "-I"])
            .arg(src)
            .arg("-include")
            .arg(&header);
        if name == "lmem" || name == "mallocations" {
            cc = cc.arg("-DASMALLOC_NO_WRAPPERS");
        }
        objects.push(cc.arg(f).build(&dir.join(format!("{name}.o"))));
    }
    Cc::new()
        .args(&objects)
        .args(["-lm", "-ldl"])
        .build(&dir.join("lua"))
}

#[test]
fn what_lua_allocates_through_its_callback_is_charged_to_the_wrapper_calls() {
    let src = common::registry_crate("lua-src", "551.1.0").join("lua-5.4.9");
    let dir = scratch().join("lua");
    std::fs::create_dir_all(&dir).unwrap();
    let lua = build(&src, &dir);
    let plain = Command::new(&lua).arg(SCRIPT).output().unwrap();
    let traced = Command::new(&lua)
        .arg(SCRIPT)
        .env("LD_PRELOAD", Lib::Glibc.path())
        .env("ASMALLOC_TOP_SITES", "200")
        .output()
        .unwrap();
    assert!(plain.status.success() && traced.status.success());
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "20000\t20000\n");
    assert_eq!(plain.stdout, traced.stdout);
    let report = String::from_utf8_lossy(&traced.stderr);
    assert!(!report.contains("not in the site table"), "{report}");
    let rows: Vec<Vec<&str>> = report
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() >= 8 && c[0].parse::<u32>().is_ok())
        .collect();
    let calls = |r: &Vec<&str>| r[4].parse::<u64>().unwrap();
    // The callback's realloc line: only what lua_newstate allocates itself
    // (not through a wrapper).
    let callback: u64 = rows
        .iter()
        .filter(|r| r[2].starts_with("lauxlib.c:") && r[3] == "l_alloc")
        .map(calls)
        .sum();
    assert!(
        callback <= 2,
        "l_alloc is charged for {callback} calls:\n{report}"
    );
    // The objects the script creates are charged to the wrapper call that
    // made them (luaC_newobjdt's luaM_newobject).
    let objects = rows
        .iter()
        .find(|r| r[2].starts_with("lgc.c:") && r[3] == "luaC_newobjdt")
        .unwrap_or_else(|| panic!("no luaC_newobjdt row:\n{report}"));
    assert!(calls(objects) >= 20_000, "{objects:?}");
    assert!(
        rows.iter()
            .any(|r| r[2].starts_with("ltable.c:") && r[3] == "luaH_resize"),
        "{report}"
    );
}
