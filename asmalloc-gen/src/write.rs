//! Atomic, change-only writes.
//!
//! A file is rewritten only when its bytes differ, so an unchanged table
//! keeps its modification time and `build.rs` never triggers a rebuild loop;
//! and it is written to a temporary file in the same directory
//! (`tempfile::NamedTempFile`, a hidden `.NAME.XXXXXX.tmp`, removed if
//! anything fails) and renamed over the old one, so a reader (a compiler,
//! `--check`, a crash mid-write) never sees half a table.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::error::Error;

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
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Like `File::create`: readable by others as the umask allows (a
    // tempfile is private by default).
    #[cfg(unix)]
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o666);
    #[cfg(unix)]
    builder.permissions(perms);
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_changes_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.h");
        assert!(write_if_changed(&path, b"one").unwrap());
        assert!(!write_if_changed(&path, b"one").unwrap());
        assert!(write_if_changed(&path, b"two").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
        #[cfg(unix)]
        {
            // Not the tempfile's private 0o600: what `File::create` gives.
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode();
            let reference = dir.path().join("reference");
            fs::File::create(&reference).unwrap();
            assert_eq!(mode(&path), mode(&reference));
        }
    }
}
