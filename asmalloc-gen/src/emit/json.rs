//! `mallocations.json`: the table for tools, and the generator's memory of
//! ids. It is read back as the previous table on the next run, so it is
//! always written, whatever `--format` says.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::emit::BANNER;
use crate::error::Error;
use crate::ids::{Entry, Table};

/// Format version of the JSON file.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Doc {
    #[serde(rename = "@generated")]
    generated: String,
    format_version: u32,
    types: Vec<String>,
    sites: Vec<Entry>,
}

/// The JSON text (pretty, one site per few lines, trailing newline).
pub fn document(table: &Table) -> String {
    let doc = Doc {
        generated: BANNER.to_owned(),
        format_version: FORMAT_VERSION,
        types: table.types.clone(),
        sites: table.entries.clone(),
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("a table always serializes");
    s.push('\n');
    s
}

/// Reads a table back; `path` is only used in errors.
pub fn parse(text: &str, path: &Path) -> Result<Table, Error> {
    let bad = |line: usize, cause: String| Error::PreviousTable {
        path: path.to_path_buf(),
        line,
        cause,
    };
    let doc: Doc = serde_json::from_str(text).map_err(|e| bad(e.line(), e.to_string()))?;
    if doc.format_version != FORMAT_VERSION {
        return Err(bad(
            1,
            format!(
                "format_version {} is not {FORMAT_VERSION}",
                doc.format_version
            ),
        ));
    }
    for (i, e) in doc.sites.iter().enumerate() {
        if usize::from(e.id) != i + 1 {
            return Err(bad(
                0,
                format!("site #{} has id {}; ids must be 1, 2, 3, …", i + 1, e.id),
            ));
        }
    }
    Ok(Table {
        types: doc.types,
        entries: doc.sites,
    })
}
