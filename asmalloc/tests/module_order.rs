//! The runtime's modules form a layered order with no import circles: the
//! crate docs list them top to bottom ("## Module order"), and every module
//! may use only modules listed below it. Inside a module folder (`engine/`,
//! `site/`, `report/`), sibling files must not use each other both ways.
//!
//! The check reads the sources: a use is any `crate::NAME` path (or a name
//! inside `crate::{…}`) outside comments; between siblings, `super::NAME`.
//! A child using its parent's own items (`super::Item` defined in
//! `mod.rs`) is the normal shape of a module folder and is not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The source without `//` comments (doc comments included).
fn code_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Names used after `prefix` (`crate::` or `super::`), including those in
/// a `prefix{a, b::c}` group (first segment of each).
fn uses_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident_at(item.trim());
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        } else {
            out.insert(ident_at(rest).to_string());
        }
    }
    out
}

/// Top-level modules and the files each is made of.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut mods: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let files = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect();
            mods.insert(name, files);
        } else if name != "lib" {
            let name = if name == "private" {
                "__private".into()
            } else {
                name
            };
            mods.entry(name).or_default().push(path);
        }
    }
    mods
}

/// The order the crate docs give, top to bottom.
fn documented_order() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let section = lib
        .split("//! ## Module order")
        .nth(1)
        .expect("lib.rs docs have a '## Module order' section");
    section
        .lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .take_while(|l| !l.starts_with("##"))
        .filter_map(|l| {
            let l = l
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                .trim();
            l.strip_prefix('`')
                .map(|r| r[..r.find('`').unwrap()].to_string())
        })
        .collect()
}

#[test]
fn every_module_uses_only_modules_listed_below_it() {
    let mods = modules();
    let order = documented_order();
    let listed: BTreeSet<&String> = order.iter().collect();
    let actual: BTreeSet<&String> = mods.keys().collect();
    assert_eq!(
        listed, actual,
        "the documented order lists exactly the modules"
    );
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut wrong = Vec::new();
    for (module, files) in &mods {
        for file in files {
            for used in uses_after(&code_of(file), "crate::") {
                if used == *module || !mods.contains_key(&used) {
                    continue;
                }
                if rank[used.as_str()] < rank[module.as_str()] {
                    wrong.push(format!(
                        "{} uses `{used}`, which is listed above `{module}`",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn sibling_files_never_use_each_other_both_ways() {
    let mut circles = Vec::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let files: BTreeMap<String, PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_string(), p))
            .filter(|(name, _)| name != "mod")
            .collect();
        let uses: BTreeMap<&String, BTreeSet<String>> = files
            .iter()
            .map(|(name, path)| {
                let siblings = uses_after(&code_of(path), "super::")
                    .into_iter()
                    .filter(|u| u != name && files.contains_key(u))
                    .collect();
                (name, siblings)
            })
            .collect();
        for (a, used) in &uses {
            for b in used {
                if uses[b].contains(*a) && a.as_str() < b.as_str() {
                    circles.push(format!("{}: {a} <-> {b}", dir.display()));
                }
            }
        }
    }
    assert!(circles.is_empty(), "{}", circles.join("\n"));
}

#[test]
fn the_checker_sees_a_circle() {
    // The scanner itself: a use in code counts, one in a comment does not.
    let code = "use crate::{engine, site::x};\n// crate::monitor\nfn f() { crate::op::Op::Free; }";
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let used = uses_after(&code, "crate::");
    assert_eq!(
        used,
        ["engine", "op", "site"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
