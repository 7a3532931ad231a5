//! Regenerating after edits keeps every surviving site's id.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use asmalloc_gen::{Builder, Lang, Table};
use common::{copy_dir, fixture, temp_dir};

fn generate(root: &Path, out: &Path) -> Table {
    Builder::new()
        .scan(root)
        .lang(Lang::Auto)
        .wrapper("cf_malloc", "MALLOC")
        .wrapper("cf_free", "FREE")
        .cargo_metadata(false)
        .try_write(out, &[asmalloc_gen::Format::C])
        .unwrap();
    let text = std::fs::read_to_string(out.join("mallocations.json")).unwrap();
    asmalloc_gen::emit::json::parse(&text, out).unwrap()
}

/// id → (file, function, type, context) of live sites.
fn live(t: &Table) -> BTreeMap<u16, (String, String, String, String)> {
    t.live()
        .map(|e| {
            (
                e.id,
                (
                    e.file.clone(),
                    e.function.clone(),
                    e.type_name.clone(),
                    e.context.clone(),
                ),
            )
        })
        .collect()
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

#[test]
fn ids_survive_inserts_additions_removals_and_renames() {
    let t = temp_dir("stable");
    let root = t.path().join("tree");
    let out = t.path().join("out");
    copy_dir(&fixture("c_tree").join("src"), &root);
    let t0 = generate(&root, &out);
    let before = live(&t0);
    let max0 = t0.entries.len() as u16;
    assert!(before.len() > 20);

    // 1. Insert lines at the top of a file: every line moves, no id changes.
    edit(&root.join("pool.c"), |s| {
        format!("/* one */\n/* two */\n\n{s}")
    });
    let t1 = generate(&root, &out);
    assert_eq!(live(&t1), before);
    let moved = t1.live().find(|e| e.function == "pool_grow").unwrap();
    let was = t0.live().find(|e| e.id == moved.id).unwrap();
    assert_eq!(moved.line, was.line + 3);

    // 2. Add a site at the top of an existing function: it gets a new id,
    //    the function's other sites keep theirs.
    edit(&root.join("pool.c"), |s| {
        s.replace(
            "{\n\tvoid *b = malloc(n);",
            "{\n\tvoid *z = malloc(n + 7); free(z);\n\tvoid *b = malloc(n);",
        )
    });
    let t2 = generate(&root, &out);
    let after2 = live(&t2);
    for (id, v) in &before {
        assert_eq!(after2.get(id), Some(v), "id {id} changed");
    }
    assert_eq!(after2.len(), before.len() + 2);
    assert!(
        after2
            .keys()
            .filter(|id| !before.contains_key(id))
            .all(|&id| id > max0)
    );

    // 3. Remove a site: its id is retired, not reused; the rest are kept.
    let removed = t2
        .live()
        .find(|e| e.function == "on" && e.type_name == "FREE")
        .unwrap()
        .id;
    edit(&root.join("pool.c"), |s| {
        s.replace(
            "static void on(void *p) { free(p); }",
            "static void on(void *p) { (void)p; }",
        )
    });
    let t3 = generate(&root, &out);
    assert!(t3.entries[usize::from(removed) - 1].retired);
    let after3 = live(&t3);
    assert!(!after3.contains_key(&removed));
    for (id, v) in &after2 {
        if *id != removed {
            assert_eq!(after3.get(id), Some(v), "id {id} changed");
        }
    }
    // A new site now gets a fresh id, not the retired one.
    edit(&root.join("pool.c"), |s| {
        format!("{s}void more(void) {{ free(strdup(\"x\")); }}\n")
    });
    let t4 = generate(&root, &out);
    let new_ids: Vec<u16> = live(&t4)
        .keys()
        .filter(|id| !after3.contains_key(id))
        .copied()
        .collect();
    assert_eq!(new_ids.len(), 2);
    assert!(
        new_ids.iter().all(|&id| id > t3.entries.len() as u16),
        "{new_ids:?}"
    );
    assert!(t4.entries[usize::from(removed) - 1].retired);

    // 4. Rename a file: its sites keep their ids under the new name.
    let cf_ids: Vec<u16> = t4
        .live()
        .filter(|e| e.file == "util/cf.c")
        .map(|e| e.id)
        .collect();
    assert_eq!(cf_ids.len(), 2);
    std::fs::rename(root.join("util/cf.c"), root.join("util/cf_alloc.c")).unwrap();
    let t5 = generate(&root, &out);
    for id in cf_ids {
        let e = &t5.entries[usize::from(id) - 1];
        assert_eq!(e.file, "util/cf_alloc.c");
        assert!(!e.retired);
    }
    assert_eq!(t5.entries.len(), t4.entries.len());

    // 5. --fresh renumbers from 1 with no holes.
    let fresh = Builder::new()
        .scan(&root)
        .fresh(true)
        .cargo_metadata(false)
        .try_generate()
        .unwrap();
    assert!(fresh.table.entries.iter().all(|e| !e.retired));
}

#[test]
fn rust_ids_survive_moves() {
    let t = temp_dir("stable-rs");
    let root = t.path().join("tree");
    let out = t.path().join("out");
    copy_dir(&fixture("rust_tree"), &root);
    std::fs::remove_file(root.join("src/broken.rs")).unwrap();
    let t0 = generate(&root, &out);
    edit(&root.join("src/lib.rs"), |s| {
        s.replace(
            "mod net;",
            "mod net;\n\n#[track_alloc(cache)]\npub fn first() {}\n",
        )
    });
    let t1 = generate(&root, &out);
    assert!(t1.live().any(|e| e.function == "first"));
    for (id, v) in live(&t0) {
        assert_eq!(live(&t1).get(&id), Some(&v));
    }
    assert_eq!(t1.live().count(), t0.live().count() + 1);
}

#[test]
fn a_file_that_fails_to_parse_keeps_its_ids() {
    let t = temp_dir("stable-broken");
    let root = t.path().join("tree");
    let out = t.path().join("out");
    copy_dir(&fixture("rust_tree"), &root);
    std::fs::remove_file(root.join("src/broken.rs")).unwrap();
    let t0 = generate(&root, &out);
    edit(&root.join("src/net/mod.rs"), |s| {
        format!("{s}\nfn oops( {{\n")
    });
    let t1 = generate(&root, &out);
    assert_eq!(live(&t1), live(&t0));
    edit(&root.join("src/net/mod.rs"), |s| {
        s.replace("\nfn oops( {\n", "")
    });
    assert_eq!(live(&generate(&root, &out)), live(&t0));
}
