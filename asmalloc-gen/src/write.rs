//! Atomic, change-only writes.
//!
//! A file is rewritten only when its bytes differ, so an unchanged table
//! keeps its modification time and `build.rs` never triggers a rebuild loop;
//! and it is written to a temporary file in the same directory and renamed
//! over the old one, so a reader (a compiler, `--check`, a crash mid-write)
//! never sees half a table.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` unless it already holds exactly these bytes.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> Result<bool, Error> {
    if let Ok(old) = fs::read(path)
        && old == contents
    {
        return Ok(false);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(true)
}
