//! The textfile: the exposition written for node_exporter's textfile
//! collector (or anything else that reads a file), replaced atomically at
//! every sample.
//!
//! A reader must never see half a file — node_exporter reads whenever it is
//! scraped — so the text goes to a temporary file in the same directory
//! (`.NAME.tmp-PID`), which is then renamed over the target: `rename(2)`
//! swaps the name in one step, and a reader has either the old file open or
//! the new one. The temporary file is created with `O_CREAT | O_EXCL |
//! O_NOFOLLOW` (a link planted under its name is never written through),
//! mode `0644` less the umask — node_exporter usually runs as another
//! user. No `fsync`: the file is rewritten at the next interval anyway, and
//! after a crash a stale or missing file is what a reader should see.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The temporary file's path beside `target`.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics".into());
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Replaces `target` with `text`, atomically.
pub fn write_atomically(target: &Path, text: &[u8]) -> io::Result<()> {
    let temp = temp_path(target);
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
    };
    let mut file = match open() {
        Ok(f) => f,
        // Left over by a process that had this pid and died mid-write.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&temp)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    let written = file.write_all(text).and_then(|()| {
        drop(file);
        std::fs::rename(&temp, target)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("asmalloc-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("asmalloc.prom");
        write_atomically(&target, b"a 1\n").unwrap();
        write_atomically(&target, b"a 2\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a 2\n");
        // A stale temporary file (same pid) is replaced, not an error.
        std::fs::write(temp_path(&target), b"stale").unwrap();
        write_atomically(&target, b"a 3\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a 3\n");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["asmalloc.prom".to_string()]);
        let err = write_atomically(&dir.join("no/such/dir.prom"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
