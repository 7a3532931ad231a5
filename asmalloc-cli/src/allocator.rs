//! Which allocator a program runs on, read from its ELF dependencies, so
//! that `asmalloc run` preloads the matching library by itself.
//!
//! Why: asmalloc interposes `malloc` and friends. A program linked against
//! jemalloc (redis, many servers) must run under `libasmalloc_jem.so`, which
//! carries jemalloc inside and answers its API (`mallctl`, `mallocx`, …),
//! not under `libasmalloc.so`, which sits on glibc's heap; a program on
//! tcmalloc or mimalloc can be tracked by neither build (the library steps
//! aside at run time and the program runs untracked). Picking by hand is
//! easy to get wrong and the mistake is silent, while the answer is written
//! in the program's `DT_NEEDED` entries — so `asmalloc run` reads them and
//! says what it picked.
//!
//! How, following the dynamic loader where it is cheap to:
//!
//! * a program named without a slash is found through `PATH`, as a shell
//!   would; a `#!` script is judged by its interpreter (one level: an
//!   interpreter that is itself a script is not followed; `#!/usr/bin/env
//!   NAME` is judged by `NAME`, found through `PATH`);
//! * the `DT_NEEDED` names of the program and then of its dependencies,
//!   breadth first — the order in which `ld.so` loads them and looks symbols
//!   up, so the first allocator library found is the one whose `malloc` the
//!   program would get. A name starting with `libjemalloc`, `libtcmalloc`
//!   or `libmimalloc` decides;
//! * a dependency is looked for in the `DT_RPATH` of the object and of the
//!   objects that loaded it (when the object has no `DT_RUNPATH`), then
//!   `LD_LIBRARY_PATH`, then the object's `DT_RUNPATH` (`$ORIGIN` expanded in
//!   both; entries with other `$` tokens are skipped), then standard
//!   directories: the running architecture's multiarch directories,
//!   `/lib/x86_64-linux-gnu`, `/usr/lib/x86_64-linux-gnu`, `/lib64`,
//!   `/usr/lib64`, `/lib`, `/usr/lib`, and last `/usr/local/lib` (with its
//!   multiarch directory). `/etc/ld.so.cache` is not read (its format is
//!   glibc's private one); these directories are what it lists on Debian
//!   and most distributions. A candidate of another ELF class or machine is
//!   skipped, as `ld.so` skips it;
//! * each file is read once (cycles end), at most [`MAX_OBJECTS`] of them,
//!   and of each only the ELF header, the section headers and the dynamic
//!   section and its strings (through `object`'s `ReadCache`, so a large
//!   binary is not read whole). A dependency that cannot be found is passed
//!   over: the loader will say so when the program starts.
//!
//! What `asmalloc run` says, always in one line ([`Detection::message`]):
//!
//! ```text
//! asmalloc: redis-server links libjemalloc.so.2 (jemalloc): using libasmalloc_jem.so
//! asmalloc: ./app links libjemalloc.so.2 (jemalloc) through libfoo.so: using libasmalloc_jem.so
//! asmalloc: ./app links libtcmalloc_minimal.so.4 (tcmalloc), which asmalloc does not track; it runs untracked
//! asmalloc: ./server links no jemalloc, tcmalloc or mimalloc library: using libasmalloc.so
//! asmalloc: tool.sh's interpreter /usr/bin/ruby links … (a script)
//! asmalloc: notes.txt is not an ELF file and has no #! line: using libasmalloc.so
//! ```
//!
//! The plain case says so too: which library was preloaded is worth one
//! line whenever it was not chosen by hand. A program that does not exist
//! gets no line (starting it fails and says so).
//!
//! Not seen: an allocator linked statically (not a `DT_NEEDED` entry), or
//! loaded with `dlopen`; an ELF file without section headers (its dynamic
//! section is found through them). Those programs get `libasmalloc.so`,
//! and `--jemalloc` or `--lib` chooses by hand.
//!
//! ELF is parsed by the `object` crate (read-only, no `unsafe` here).

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use object::Endianness;
use object::elf::{self, FileHeader32, FileHeader64};
use object::read::ReadCache;
use object::read::elf::FileHeader;

/// The glibc build of the preload library.
pub(crate) const GLIBC_LIB: &str = "libasmalloc.so";
/// The jemalloc build of the preload library.
pub(crate) const JEMALLOC_LIB: &str = "libasmalloc_jem.so";

/// At most this many ELF files (the program and its dependencies) are read.
pub(crate) const MAX_OBJECTS: usize = 256;

/// An allocator that replaces `malloc` when its library is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Allocator {
    Jemalloc,
    Tcmalloc,
    Mimalloc,
}

impl Allocator {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Allocator::Jemalloc => "jemalloc",
            Allocator::Tcmalloc => "tcmalloc",
            Allocator::Mimalloc => "mimalloc",
        }
    }

    /// The allocator a library provides, by its file name
    /// (`libjemalloc.so.2`, `libtcmalloc_minimal.so.4`, …).
    pub(crate) fn of_library(name: &OsStr) -> Option<Allocator> {
        let file = Path::new(name).file_name()?.as_bytes();
        [
            (&b"libjemalloc"[..], Allocator::Jemalloc),
            (b"libtcmalloc", Allocator::Tcmalloc),
            (b"libmimalloc", Allocator::Mimalloc),
        ]
        .into_iter()
        .find(|(prefix, _)| file.starts_with(prefix))
        .map(|(_, a)| a)
    }
}

/// An allocator library that the program loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Linked {
    pub(crate) allocator: Allocator,
    /// The `DT_NEEDED` entry naming it (`libjemalloc.so.2`).
    pub(crate) library: String,
    /// The dependency (as its `DT_NEEDED` entry names it) that needs the
    /// allocator, when the program does not need it itself.
    pub(crate) through: Option<String>,
}

/// What [`detect`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Detection {
    /// No such executable file (or none on `PATH`): starting it will fail
    /// and say so.
    NotFound,
    /// Nothing to look into; the sentence says why ("is not an ELF file").
    Unknown(String),
    /// The ELF file looked at — the program, or the interpreter of a script
    /// (then `interpreter` is its path) — and the allocator it links, if any.
    Examined {
        interpreter: Option<PathBuf>,
        linked: Option<Linked>,
    },
}

impl Detection {
    /// Whether the program needs the jemalloc build.
    pub(crate) fn wants_jemalloc(&self) -> bool {
        matches!(
            self,
            Detection::Examined {
                linked: Some(Linked {
                    allocator: Allocator::Jemalloc,
                    ..
                }),
                ..
            }
        )
    }

    /// The preload library to use.
    pub(crate) fn library(&self) -> &'static str {
        if self.wants_jemalloc() {
            JEMALLOC_LIB
        } else {
            GLIBC_LIB
        }
    }

    /// The one line `asmalloc run` prints about its pick (`program` as the
    /// user wrote it); none when the program was not found.
    pub(crate) fn message(&self, program: &str) -> Option<String> {
        let lib = self.library();
        Some(match self {
            Detection::NotFound => return None,
            Detection::Unknown(why) => format!("asmalloc: {program} {why}: using {lib}"),
            Detection::Examined {
                interpreter,
                linked,
            } => {
                let subject = match interpreter {
                    None => program.to_string(),
                    Some(i) => format!("{program}'s interpreter {}", i.display()),
                };
                match linked {
                    None => format!(
                        "asmalloc: {subject} links no jemalloc, tcmalloc or mimalloc library: \
                         using {lib}"
                    ),
                    Some(l) => {
                        let through = l
                            .through
                            .as_ref()
                            .map_or(String::new(), |t| format!(" through {t}"));
                        let links = format!(
                            "{subject} links {} ({}){through}",
                            l.library,
                            l.allocator.name()
                        );
                        if l.allocator == Allocator::Jemalloc {
                            format!("asmalloc: {links}: using {lib}")
                        } else {
                            format!(
                                "asmalloc: {links}, which asmalloc does not track; it runs untracked"
                            )
                        }
                    }
                }
            }
        })
    }
}

/// Where programs and libraries are looked for.
#[derive(Clone, Debug)]
pub(crate) struct Search {
    /// `PATH`, for a program named without a slash.
    pub(crate) path: Option<OsString>,
    /// `LD_LIBRARY_PATH`.
    pub(crate) ld_library_path: Option<OsString>,
    /// The loader's default directories (instead of `/etc/ld.so.cache`).
    pub(crate) default_dirs: Vec<PathBuf>,
}

impl Search {
    /// This process's `PATH` and `LD_LIBRARY_PATH` (the program inherits
    /// them) and the standard directories.
    pub(crate) fn from_env() -> Search {
        Search {
            path: std::env::var_os("PATH"),
            ld_library_path: std::env::var_os("LD_LIBRARY_PATH"),
            default_dirs: default_dirs(),
        }
    }
}

/// Debian's multiarch tuple of the running architecture.
fn multiarch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "x86" => "i386-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "loongarch64" => "loongarch64-linux-gnu",
        _ => return None,
    })
}

/// The standard library directories, in the order searched.
pub(crate) fn default_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add = |d: String| {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    if let Some(m) = multiarch() {
        add(format!("/lib/{m}"));
        add(format!("/usr/lib/{m}"));
    }
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        add(d.to_string());
    }
    if let Some(m) = multiarch() {
        add(format!("/usr/local/lib/{m}"));
    }
    add("/usr/local/lib".to_string());
    dirs
}

/// Which allocator `program` (as it would be given to `exec`, found through
/// `search.path` when it has no slash) runs on.
pub(crate) fn detect(program: &OsStr, search: &Search) -> Detection {
    let Some(path) = find_program(program, search) else {
        return Detection::NotFound;
    };
    let head = match read_head(&path) {
        Ok(head) => head,
        Err(e) => return Detection::Unknown(format!("cannot be read ({e})")),
    };
    if head.starts_with(b"\x7fELF") {
        return examine(&path, None, search);
    }
    if !head.starts_with(b"#!") {
        return Detection::Unknown("is not an ELF file and has no #! line".to_string());
    }
    let Some(interpreter) = interpreter(&head, search) else {
        return Detection::Unknown("has a #! line naming no program found".to_string());
    };
    match read_head(&interpreter) {
        Ok(h) if h.starts_with(b"\x7fELF") => examine(&interpreter, Some(&interpreter), search),
        Ok(_) => Detection::Unknown(format!(
            "is a script for {}, which is not an ELF file",
            interpreter.display()
        )),
        Err(e) => Detection::Unknown(format!(
            "is a script for {}, which cannot be read ({e})",
            interpreter.display()
        )),
    }
}

/// The program `exec` would run: `program` itself when it has a slash,
/// else the first executable file of that name in `PATH` (`/bin:/usr/bin`
/// when unset, as glibc's `execvp`; an empty entry is the current
/// directory).
fn find_program(program: &OsStr, search: &Search) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return runnable(&p).then_some(p);
    }
    let path = search
        .path
        .clone()
        .unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    std::env::split_paths(&path)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".").join(program)
            } else {
                dir.join(program)
            }
        })
        .find(|candidate| runnable(candidate))
}

/// The first 256 bytes (the kernel's limit for a `#!` line).
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    File::open(path)?.take(256).read_to_end(&mut head)?;
    Ok(head)
}

/// The program a `#!` line runs: its interpreter, or for `/usr/bin/env
/// [OPTIONS] [NAME=VALUE…] NAME` the program `NAME` found through `PATH`.
fn interpreter(head: &[u8], search: &Search) -> Option<PathBuf> {
    let line = &head[2..];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let interp = PathBuf::from(OsStr::from_bytes(words.next()?));
    if interp.file_name() != Some(OsStr::new("env")) {
        return Some(interp);
    }
    let name = words.find(|w| !w.starts_with(b"-") && !w.contains(&b'='))?;
    find_program(OsStr::from_bytes(name), search)
}

/// What the loader needs of one ELF file.
#[derive(Default)]
struct ElfInfo {
    class64: bool,
    machine: u16,
    needed: Vec<OsString>,
    rpath: Vec<OsString>,
    runpath: Option<Vec<OsString>>,
}

/// The dynamic section of the ELF file at `path`; `None` when it is not an
/// ELF file object can read.
fn read_elf(path: &Path) -> Option<ElfInfo> {
    let file = File::open(path).ok()?;
    let data = ReadCache::new(file);
    let ident = object::ReadRef::read_bytes_at(&data, 0, 16).ok()?;
    if !ident.starts_with(b"\x7fELF") {
        return None;
    }
    // e_ident[EI_CLASS]
    match elf::FileClass(ident[4]) {
        elf::ELFCLASS32 => dynamic::<FileHeader32<Endianness>>(&data),
        elf::ELFCLASS64 => dynamic::<FileHeader64<Endianness>>(&data),
        _ => None,
    }
}

fn dynamic<Elf: FileHeader<Endian = Endianness>>(data: &ReadCache<File>) -> Option<ElfInfo> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let mut info = ElfInfo {
        class64: header.is_class_64(),
        machine: header.e_machine(endian).0,
        ..ElfInfo::default()
    };
    let sections = header.sections(endian, data).ok()?;
    let table = sections.dynamic_table(endian, data).ok()?;
    for d in table.iter() {
        let list = match d.tag {
            elf::DT_NEEDED => &mut info.needed,
            elf::DT_RPATH => &mut info.rpath,
            elf::DT_RUNPATH => info.runpath.get_or_insert_with(Vec::new),
            _ => continue,
        };
        let Ok(value) = table.string(d) else {
            continue;
        };
        if d.tag == elf::DT_NEEDED {
            list.push(OsString::from_vec(value.to_vec()));
        } else {
            list.extend(
                value
                    .split(|&b| b == b':')
                    .map(|p| OsString::from_vec(p.to_vec())),
            );
        }
    }
    Some(info)
}

/// A search-path entry with `$ORIGIN` expanded (the directory of the object
/// that carries it); `None` for an entry with another `$` token.
fn expand(entry: &OsStr, origin: &Path) -> Option<PathBuf> {
    let origin = origin.as_os_str().as_bytes();
    let mut out = Vec::new();
    let mut rest = entry.as_bytes();
    while let Some(i) = rest.iter().position(|&b| b == b'$') {
        out.extend_from_slice(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix(b"${ORIGIN}") {
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"$ORIGIN").filter(|a| {
            !a.first()
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
        }) {
            rest = after;
        } else {
            return None;
        }
        out.extend_from_slice(origin);
    }
    out.extend_from_slice(rest);
    if out.is_empty() {
        out.push(b'.');
    }
    Some(PathBuf::from(OsString::from_vec(out)))
}

/// An object still to look into.
struct Pending {
    info: ElfInfo,
    /// Its directory as found (`$ORIGIN`).
    origin: PathBuf,
    /// How its loader named it; `None` for the program.
    name: Option<OsString>,
    /// The `DT_RPATH` directories of the objects that loaded it.
    inherited_rpath: Vec<PathBuf>,
}

/// Walks the ELF file at `path` and its dependencies.
fn examine(path: &Path, interpreter: Option<&Path>, search: &Search) -> Detection {
    let examined = |linked| Detection::Examined {
        interpreter: interpreter.map(Path::to_path_buf),
        linked,
    };
    let Some(info) = read_elf(path) else {
        return Detection::Unknown("is an ELF file that cannot be parsed".to_string());
    };
    // The main program's $ORIGIN is where it really is (the loader reads
    // /proc/self/exe); a library's is the directory it was found in.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let (class64, machine) = (info.class64, info.machine);
    let mut seen = HashSet::from([real.clone()]);
    let mut queue = VecDeque::from([Pending {
        info,
        origin: real.parent().map(Path::to_path_buf).unwrap_or_default(),
        name: None,
        inherited_rpath: Vec::new(),
    }]);
    let ld_library_path: Vec<PathBuf> = search
        .ld_library_path
        .as_ref()
        .map(|v| {
            v.as_bytes()
                .split(|&b| b == b':' || b == b';')
                .map(|d| if d.is_empty() { &b"."[..] } else { d })
                .map(|d| PathBuf::from(OsStr::from_bytes(d)))
                .collect()
        })
        .unwrap_or_default();
    while let Some(obj) = queue.pop_front() {
        for needed in &obj.info.needed {
            if let Some(allocator) = Allocator::of_library(needed) {
                return examined(Some(Linked {
                    allocator,
                    library: needed.to_string_lossy().into_owned(),
                    through: obj.name.as_ref().map(|n| n.to_string_lossy().into_owned()),
                }));
            }
        }
        // Where this object's dependencies are looked for.
        let own_rpath: Vec<PathBuf> = obj
            .info
            .rpath
            .iter()
            .filter_map(|e| expand(e, &obj.origin))
            .collect();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let child_rpath = match &obj.info.runpath {
            Some(runpath) => {
                dirs.extend(ld_library_path.iter().cloned());
                dirs.extend(runpath.iter().filter_map(|e| expand(e, &obj.origin)));
                // Objects with DT_RUNPATH pass no DT_RPATH on.
                obj.inherited_rpath.clone()
            }
            None => {
                let chain: Vec<PathBuf> = own_rpath
                    .iter()
                    .chain(&obj.inherited_rpath)
                    .cloned()
                    .collect();
                dirs.extend(chain.iter().cloned());
                dirs.extend(ld_library_path.iter().cloned());
                chain
            }
        };
        dirs.extend(search.default_dirs.iter().cloned());
        for needed in &obj.info.needed {
            let candidates: Vec<PathBuf> = if needed.as_bytes().contains(&b'/') {
                vec![PathBuf::from(needed)]
            } else {
                dirs.iter().map(|d| d.join(needed)).collect()
            };
            for candidate in candidates {
                let Ok(real) = std::fs::canonicalize(&candidate) else {
                    continue;
                };
                if seen.contains(&real) {
                    break;
                }
                if seen.len() >= MAX_OBJECTS {
                    return examined(None);
                }
                let Some(info) = read_elf(&candidate) else {
                    continue;
                };
                if info.class64 != class64 || info.machine != machine {
                    continue;
                }
                seen.insert(real);
                queue.push_back(Pending {
                    info,
                    origin: candidate
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                    name: Some(needed.clone()),
                    inherited_rpath: child_rpath.clone(),
                });
                break;
            }
        }
    }
    examined(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocators_by_library_name() {
        let of = |n: &str| Allocator::of_library(OsStr::new(n));
        assert_eq!(of("libjemalloc.so.2"), Some(Allocator::Jemalloc));
        assert_eq!(
            of("/opt/je/lib/libjemalloc_debug.so"),
            Some(Allocator::Jemalloc)
        );
        assert_eq!(of("libtcmalloc_minimal.so.4"), Some(Allocator::Tcmalloc));
        assert_eq!(
            of("libtcmalloc_and_profiler.so.4"),
            Some(Allocator::Tcmalloc)
        );
        assert_eq!(of("libmimalloc.so.2"), Some(Allocator::Mimalloc));
        assert_eq!(of("libc.so.6"), None);
        assert_eq!(of("jemalloc.so"), None);
        assert_eq!(of("libjemalloc/libfoo.so"), None, "the file name decides");
    }

    #[test]
    fn origin_is_expanded_and_other_tokens_skipped() {
        let o = Path::new("/opt/app/bin");
        let e = |s: &str| expand(OsStr::new(s), o);
        assert_eq!(
            e("$ORIGIN/../lib"),
            Some(PathBuf::from("/opt/app/bin/../lib"))
        );
        assert_eq!(e("${ORIGIN}/lib"), Some(PathBuf::from("/opt/app/bin/lib")));
        assert_eq!(e("$ORIGIN"), Some(PathBuf::from("/opt/app/bin")));
        assert_eq!(e("/usr/lib/x"), Some(PathBuf::from("/usr/lib/x")));
        assert_eq!(e(""), Some(PathBuf::from(".")));
        assert_eq!(e("$ORIGINAL/lib"), None);
        assert_eq!(e("/usr/$LIB"), None);
        assert_eq!(e("$PLATFORM"), None);
    }

    #[test]
    fn interpreter_lines() {
        let search = Search {
            path: Some(OsString::from("/no/such/dir:/bin:/usr/bin")),
            ld_library_path: None,
            default_dirs: Vec::new(),
        };
        let i = |s: &str| interpreter(s.as_bytes(), &search);
        assert_eq!(i("#!/bin/sh\necho"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(i("#! /bin/sh -e\n"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(i("#!/opt/x/ruby"), Some(PathBuf::from("/opt/x/ruby")));
        assert_eq!(i("#!\n"), None);
        // env: the program it runs, through PATH.
        let sh = find_program(OsStr::new("sh"), &search).expect("sh on PATH");
        assert_eq!(i("#!/usr/bin/env sh\n"), Some(sh.clone()));
        assert_eq!(i("#!/usr/bin/env -S A=1 sh -e\n"), Some(sh));
        assert_eq!(i("#!/usr/bin/env no-such-program-asm\n"), None);
    }

    #[test]
    fn sentences() {
        let jem = Linked {
            allocator: Allocator::Jemalloc,
            library: "libjemalloc.so.2".into(),
            through: None,
        };
        let d = Detection::Examined {
            interpreter: None,
            linked: Some(jem.clone()),
        };
        assert!(d.wants_jemalloc());
        assert_eq!(
            d.message("redis-server").unwrap(),
            "asmalloc: redis-server links libjemalloc.so.2 (jemalloc): using libasmalloc_jem.so"
        );
        let d = Detection::Examined {
            interpreter: Some(PathBuf::from("/usr/bin/ruby")),
            linked: Some(Linked {
                through: Some("libruby.so.3".into()),
                ..jem
            }),
        };
        assert_eq!(
            d.message("tool").unwrap(),
            "asmalloc: tool's interpreter /usr/bin/ruby links libjemalloc.so.2 (jemalloc) \
             through libruby.so.3: using libasmalloc_jem.so"
        );
        let d = Detection::Examined {
            interpreter: None,
            linked: Some(Linked {
                allocator: Allocator::Tcmalloc,
                library: "libtcmalloc_minimal.so.4".into(),
                through: None,
            }),
        };
        assert!(!d.wants_jemalloc());
        assert_eq!(d.library(), GLIBC_LIB);
        assert_eq!(
            d.message("PROG").unwrap(),
            "asmalloc: PROG links libtcmalloc_minimal.so.4 (tcmalloc), which asmalloc does not \
             track; it runs untracked"
        );
        let d = Detection::Examined {
            interpreter: None,
            linked: None,
        };
        assert_eq!(
            d.message("server").unwrap(),
            "asmalloc: server links no jemalloc, tcmalloc or mimalloc library: using libasmalloc.so"
        );
        assert_eq!(Detection::NotFound.message("x"), None);
        assert_eq!(Detection::NotFound.library(), GLIBC_LIB);
    }
}
