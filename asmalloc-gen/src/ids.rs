//! Stable site ids.
//!
//! A site's id is what the runtime counts by and what a long-running
//! dashboard or log refers to, so regenerating the table after an edit must
//! not renumber the program. Given the previous table, the new sites are
//! matched to the old ones in passes, each only among what is still
//! unmatched:
//!
//! 1. same file, function, type and *call text* (a fingerprint of the callee
//!    and its argument tokens; the n-th identical call in a function matches
//!    the n-th) — survives inserted or deleted lines and new sites elsewhere
//!    in the same function;
//! 2. same file, function and type: in order when the counts are equal (the
//!    arguments of a call were edited), else nearest line first;
//! 3. a file that vanished and a file that appeared (a rename): same
//!    function, type and call text, then same function, type and ordinal;
//! 4. same file and type within 10 lines (the enclosing function was
//!    renamed), nearest first.
//!
//! Unmatched new sites get fresh ids above every id ever used, in file/line
//! order. Unmatched old sites are *retired*: their id stays in the table as
//! a `NONE` entry (ids are indices, so there is a hole rather than a shift)
//! and is never given to another site. `--fresh` (or
//! [`crate::Builder::fresh`]) drops the previous table and numbers from 1.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::rust_sites::rust_site_key;
use crate::site::{FoundSite, SiteLang};

/// One entry of the table (ids from 1; entry 0 is implicit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The site's id, its index in the emitted tables.
    pub id: u16,
    /// Type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// File relative to the scanned root.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// Enclosing function, macro name, or Rust function path.
    pub function: String,
    /// Index among the sites of the same file, function and type.
    pub ordinal: u32,
    /// Call-text fingerprint.
    pub context: String,
    /// Language.
    pub lang: SiteLang,
    /// Rust sites: the key the `#[track_alloc]` macro computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A site that disappeared; its id is kept unused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// A full table: type names and entries with ids `1..=entries.len()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Type names by type id (built-ins first).
    pub types: Vec<String>,
    /// Entries by id − 1.
    pub entries: Vec<Entry>,
}

impl Table {
    /// Number of entries including entry 0 (`NUM_MALLOCATIONS`).
    pub fn num_mallocations(&self) -> usize {
        self.entries.len() + 1
    }

    /// Type id of an entry (`NONE` for a retired one).
    pub fn type_id(&self, e: &Entry) -> usize {
        if e.retired {
            return 0;
        }
        self.types
            .iter()
            .position(|t| *t == e.type_name)
            .unwrap_or(0)
    }

    /// Entries that are live sites.
    pub fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.retired)
    }
}

type GroupKey<'a> = (&'a str, &'a str, &'a str);

/// Unmatched new and old indices of one group.
type Pending = (Vec<usize>, Vec<usize>);

fn group_key<'a>(file: &'a str, function: &'a str, type_name: &'a str) -> GroupKey<'a> {
    (file, function, type_name)
}

struct Item<'a> {
    file: &'a str,
    function: &'a str,
    type_name: &'a str,
    context: &'a str,
    line: u32,
    ordinal: u32,
    occ: u32,
}

/// Ordinal (within file+function+type) and occurrence (within
/// file+function+type+context) of each item, in the given order.
fn number<'a>(items: &mut [Item<'a>]) {
    let mut ord: HashMap<GroupKey<'a>, u32> = HashMap::new();
    let mut occ: HashMap<(GroupKey<'a>, &'a str), u32> = HashMap::new();
    for it in items.iter_mut() {
        let g = group_key(it.file, it.function, it.type_name);
        let o = ord.entry(g).or_default();
        it.ordinal = *o;
        *o += 1;
        let c = occ.entry((g, it.context)).or_default();
        it.occ = *c;
        *c += 1;
    }
}

/// Assigns ids to `found` (sorted by file, line, column), keeping those of
/// `prev`. The previous sites of files in `kept` (files that could not be
/// scanned this time) are carried over unchanged, so a file that briefly
/// fails to parse does not lose its ids.
pub fn assign(
    prev: Option<&Table>,
    kept: &HashSet<String>,
    found: &[FoundSite],
) -> Result<Table, Error> {
    let empty = Table::default();
    let prev = prev.unwrap_or(&empty);
    let carried: Vec<&Entry> = prev.live().filter(|e| kept.contains(&e.file)).collect();
    let mut news: Vec<Item<'_>> = found
        .iter()
        .map(|s| Item {
            file: &s.file,
            function: &s.function,
            type_name: &s.type_name,
            context: &s.context,
            line: s.line,
            ordinal: 0,
            occ: 0,
        })
        .collect();
    number(&mut news);
    let live: Vec<&Entry> = {
        let mut v: Vec<&Entry> = prev.live().filter(|e| !kept.contains(&e.file)).collect();
        v.sort_by(|a, b| (&a.file, a.line, a.column, a.id).cmp(&(&b.file, b.line, b.column, b.id)));
        v
    };
    let mut olds: Vec<Item<'_>> = live
        .iter()
        .map(|e| Item {
            file: &e.file,
            function: &e.function,
            type_name: &e.type_name,
            context: &e.context,
            line: e.line,
            ordinal: 0,
            occ: 0,
        })
        .collect();
    number(&mut olds);

    let mut new_id: Vec<Option<u16>> = vec![None; news.len()];
    let mut old_used: Vec<bool> = vec![false; olds.len()];

    // Pass 1: exact call text.
    {
        let mut by_key: HashMap<(GroupKey<'_>, &str, u32), usize> = HashMap::new();
        for (k, o) in olds.iter().enumerate() {
            by_key.insert(
                (group_key(o.file, o.function, o.type_name), o.context, o.occ),
                k,
            );
        }
        for (n, it) in news.iter().enumerate() {
            let key = (
                group_key(it.file, it.function, it.type_name),
                it.context,
                it.occ,
            );
            if let Some(&k) = by_key.get(&key) {
                new_id[n] = Some(live[k].id);
                old_used[k] = true;
            }
        }
    }

    // Pass 2: same file, function, type.
    let groups =
        |news: &[Item<'_>], new_id: &[Option<u16>], olds: &[Item<'_>], old_used: &[bool]| {
            let mut g: BTreeMap<GroupKey<'_>, Pending> = BTreeMap::new();
            for (n, it) in news.iter().enumerate() {
                if new_id[n].is_none() {
                    g.entry(group_key(it.file, it.function, it.type_name))
                        .or_default()
                        .0
                        .push(n);
                }
            }
            for (k, o) in olds.iter().enumerate() {
                if !old_used[k] {
                    g.entry(group_key(o.file, o.function, o.type_name))
                        .or_default()
                        .1
                        .push(k);
                }
            }
            g.into_values()
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .collect::<Vec<_>>()
        };
    for (ns, os) in groups(&news, &new_id, &olds, &old_used) {
        if ns.len() == os.len() {
            for (n, k) in ns.into_iter().zip(os) {
                new_id[n] = Some(live[k].id);
                old_used[k] = true;
            }
        } else {
            nearest(
                &ns,
                &os,
                u32::MAX,
                &news,
                &olds,
                &live,
                &mut new_id,
                &mut old_used,
            );
        }
    }

    // Pass 3: renamed files.
    let new_files: HashSet<&str> = news.iter().map(|i| i.file).collect();
    let old_files: HashSet<&str> = olds.iter().map(|i| i.file).collect();
    for exact in [true, false] {
        let mut by_key: HashMap<(&str, &str, &str, u32), Vec<usize>> = HashMap::new();
        for (k, o) in olds.iter().enumerate() {
            if !old_used[k] && !new_files.contains(o.file) {
                let (c, n) = if exact {
                    (o.context, o.occ)
                } else {
                    ("", o.ordinal)
                };
                by_key
                    .entry((o.function, o.type_name, c, n))
                    .or_default()
                    .push(k);
            }
        }
        for (n, it) in news.iter().enumerate() {
            if new_id[n].is_some() || old_files.contains(it.file) {
                continue;
            }
            let (c, o) = if exact {
                (it.context, it.occ)
            } else {
                ("", it.ordinal)
            };
            if let Some(ks) = by_key.get_mut(&(it.function, it.type_name, c, o))
                && let Some(pos) = ks.iter().position(|&k| !old_used[k])
            {
                let k = ks.remove(pos);
                new_id[n] = Some(live[k].id);
                old_used[k] = true;
            }
        }
    }

    // Pass 4: same file and type, close by.
    {
        let mut g: BTreeMap<(&str, &str), Pending> = BTreeMap::new();
        for (n, it) in news.iter().enumerate() {
            if new_id[n].is_none() {
                g.entry((it.file, it.type_name)).or_default().0.push(n);
            }
        }
        for (k, o) in olds.iter().enumerate() {
            if !old_used[k] {
                g.entry((o.file, o.type_name)).or_default().1.push(k);
            }
        }
        for (ns, os) in g.into_values() {
            if !ns.is_empty() && !os.is_empty() {
                nearest(
                    &ns,
                    &os,
                    10,
                    &news,
                    &olds,
                    &live,
                    &mut new_id,
                    &mut old_used,
                );
            }
        }
    }

    // Build the table.
    let max_old = prev.entries.iter().map(|e| e.id).max().unwrap_or(0);
    let mut entries: BTreeMap<u16, Entry> = BTreeMap::new();
    for e in &prev.entries {
        if e.retired {
            entries.insert(e.id, e.clone());
        }
    }
    for e in carried {
        entries.insert(e.id, e.clone());
    }
    for (k, e) in live.iter().enumerate() {
        if !old_used[k] {
            let mut r = (*e).clone();
            r.retired = true;
            entries.insert(r.id, r);
        }
    }
    let mut next = u32::from(max_old) + 1;
    for (n, (s, it)) in found.iter().zip(&news).enumerate() {
        let id = match new_id[n] {
            Some(id) => id,
            None => {
                let id = u16::try_from(next).map_err(|_| Error::TooManySites(next as usize))?;
                next += 1;
                id
            }
        };
        entries.insert(
            id,
            Entry {
                id,
                type_name: s.type_name.clone(),
                file: s.file.clone(),
                line: s.line,
                column: s.column,
                function: s.function.clone(),
                ordinal: it.ordinal,
                context: s.context.clone(),
                lang: s.lang,
                key: (s.lang == SiteLang::Rust).then(|| rust_site_key(&s.file, &s.function)),
                retired: false,
            },
        );
    }
    // Fill holes (an id retired by an older table that lost it) so ids
    // stay indices.
    let max_id = entries.keys().next_back().copied().unwrap_or(0);
    let mut list = Vec::with_capacity(usize::from(max_id));
    for id in 1..=max_id {
        list.push(entries.remove(&id).unwrap_or_else(|| Entry {
            id,
            type_name: "NONE".into(),
            file: String::new(),
            line: 0,
            column: 0,
            function: String::new(),
            ordinal: 0,
            context: String::new(),
            lang: SiteLang::C,
            key: None,
            retired: true,
        }));
    }
    let types = crate::types::type_list(
        list.iter()
            .filter(|e| !e.retired)
            .map(|e| e.type_name.as_str()),
    );
    Ok(Table {
        types,
        entries: list,
    })
}

/// Greedy nearest-line matching within `max_dist` lines.
#[allow(clippy::too_many_arguments)]
fn nearest(
    ns: &[usize],
    os: &[usize],
    max_dist: u32,
    news: &[Item<'_>],
    olds: &[Item<'_>],
    live: &[&Entry],
    new_id: &mut [Option<u16>],
    old_used: &mut [bool],
) {
    let mut pairs: Vec<(u32, usize, usize)> = Vec::new();
    for &n in ns {
        for &k in os {
            let d = news[n].line.abs_diff(olds[k].line);
            if d <= max_dist {
                pairs.push((d, n, k));
            }
        }
    }
    pairs.sort_unstable();
    for (_, n, k) in pairs {
        if new_id[n].is_none() && !old_used[k] {
            new_id[n] = Some(live[k].id);
            old_used[k] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(file: &str, line: u32, function: &str, ty: &str, ctx: &str) -> FoundSite {
        FoundSite {
            file: file.into(),
            line,
            column: 1,
            function: function.into(),
            type_name: ty.into(),
            callee: "malloc".into(),
            context: ctx.into(),
            lang: SiteLang::C,
        }
    }

    fn no() -> HashSet<String> {
        HashSet::new()
    }

    fn ids(t: &Table) -> Vec<(u16, u32, bool)> {
        t.entries
            .iter()
            .map(|e| (e.id, e.line, e.retired))
            .collect()
    }

    #[test]
    fn insert_before_keeps_ids() {
        let a = assign(
            None,
            &no(),
            &[
                site("a.c", 10, "f", "MALLOC", "x"),
                site("a.c", 20, "f", "MALLOC", "y"),
            ],
        )
        .unwrap();
        // A new call at the top of f, everything moved by 5 lines.
        let b = assign(
            Some(&a),
            &no(),
            &[
                site("a.c", 12, "f", "MALLOC", "z"),
                site("a.c", 15, "f", "MALLOC", "x"),
                site("a.c", 25, "f", "MALLOC", "y"),
            ],
        )
        .unwrap();
        assert_eq!(ids(&b), [(1, 15, false), (2, 25, false), (3, 12, false)]);
    }

    #[test]
    fn removed_ids_are_not_reused() {
        let a = assign(
            None,
            &no(),
            &[
                site("a.c", 10, "f", "MALLOC", "x"),
                site("a.c", 90, "g", "FREE", "y"),
            ],
        )
        .unwrap();
        let b = assign(Some(&a), &no(), &[site("a.c", 10, "f", "MALLOC", "x")]).unwrap();
        assert_eq!(ids(&b), [(1, 10, false), (2, 90, true)]);
        let c = assign(
            Some(&b),
            &no(),
            &[
                site("a.c", 10, "f", "MALLOC", "x"),
                site("a.c", 50, "h", "CALLOC", "q"),
            ],
        )
        .unwrap();
        assert_eq!(ids(&c), [(1, 10, false), (2, 90, true), (3, 50, false)]);
        assert_eq!(c.type_id(&c.entries[1]), 0);
    }

    #[test]
    fn rename_file() {
        let a = assign(None, &no(), &[site("a.c", 10, "f", "MALLOC", "x")]).unwrap();
        let b = assign(Some(&a), &no(), &[site("b.c", 3, "f", "MALLOC", "x")]).unwrap();
        assert_eq!(ids(&b), [(1, 3, false)]);
    }
}
