//! The layout that keeps down what each library costs a process in
//! resident memory (docs/preload.md, "Resident memory"), read from the
//! built libraries' ELF headers, under both libraries:
//!
//! * the code every process runs — the constructor, the C allocation
//!   family, the thread-start wrapper, the report at exit — and the PLT are
//!   in one section, `.text.asmalloc_hot`, at the start of the code and a
//!   small part of it (the kernel maps code in 64 KiB windows around each
//!   page touched);
//! * its large tables that start empty are in `.bss`, not `.data`.
//!
//! (That it needs no libgcc_s.so.1, its unwinder being linked in, is
//! `process.rs`'s `needs_only_libc_and_the_loader`.) What these save is
//! measured, not asserted here (the kernel and the page cache decide it):
//! `asmalloc-bench`'s peak RSS rows and the numbers in docs/preload.md.

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SectionIndex};

#[macro_use]
mod common;

use common::*;

under_both!(
    the_code_every_process_runs_is_together_at_the_start,
    tables_that_start_empty_are_in_bss,
);

fn read(which: Lib) -> Vec<u8> {
    std::fs::read(lib(which)).unwrap()
}

fn section_of<'a>(elf: &ElfFile64<'a, Endianness>, symbol: &str) -> (String, u64) {
    let sym = elf
        .symbols()
        .find(|s| s.name() == Ok(symbol))
        .unwrap_or_else(|| panic!("no symbol {symbol}"));
    section_name(elf, sym.section_index(), symbol, sym.address())
}

/// The section of the only function symbol whose name contains `part`.
fn section_of_containing<'a>(elf: &ElfFile64<'a, Endianness>, part: &str) -> (String, u64) {
    let found: Vec<_> = elf
        .symbols()
        .filter(|s| s.name().is_ok_and(|n| n.contains(part)) && s.size() > 0)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "symbols containing {part}: {:?}",
        found.iter().map(|s| s.name()).collect::<Vec<_>>()
    );
    section_name(elf, found[0].section_index(), part, found[0].address())
}

fn section_name(
    elf: &ElfFile64<'_, Endianness>,
    index: Option<SectionIndex>,
    what: &str,
    address: u64,
) -> (String, u64) {
    let index = index.unwrap_or_else(|| panic!("{what}: not in a section"));
    let name = elf
        .section_by_index(index)
        .unwrap()
        .name()
        .unwrap()
        .to_string();
    (name, address)
}

fn the_code_every_process_runs_is_together_at_the_start(which: Lib) {
    let data = read(which);
    let elf = ElfFile64::<Endianness>::parse(&*data).unwrap();
    let hot = elf
        .section_by_name(".text.asmalloc_hot")
        .expect("a .text.asmalloc_hot section");
    let text = elf.section_by_name(".text").expect("a .text section");
    // The allocation family and thread start (exported), the constructor,
    // and the report at exit.
    for name in [
        "malloc",
        "free",
        "calloc",
        "realloc",
        "posix_memalign",
        "pthread_create",
    ] {
        let (section, _) = section_of(&elf, name);
        assert_eq!(section, ".text.asmalloc_hot", "{name}");
    }
    for part in [
        "9lifecycle4init17h",
        "9lifecycle4fini17h",
        "6report4emit17h",
    ] {
        let (section, _) = section_of_containing(&elf, part);
        assert_eq!(section, ".text.asmalloc_hot", "{part}");
    }
    // No separate PLT at the end of the code: it is inside the hot part.
    assert!(
        elf.section_by_name(".plt").is_none(),
        "a .plt section outside the hot code"
    );
    // Before the rest, and a part of the code only (no pattern matching
    // everything). Release builds: about 260 KiB of 1.7 MB (glibc's heap),
    // 430 KiB of 2.2 MB (jemalloc's, which adds its own paths); an
    // unoptimized jemalloc has 220 KiB functions, and about 28 %.
    assert!(hot.address() < text.address());
    assert!(
        hot.size() * 2 < text.size(),
        "hot code {} bytes of {} in .text",
        hot.size(),
        text.size()
    );
}

fn tables_that_start_empty_are_in_bss(which: Lib) {
    let data = read(which);
    let elf = ElfFile64::<Endianness>::parse(&*data).unwrap();
    // The wrapper range sets (80 KiB) and the thread-name table.
    for part in ["8wrappers6ranges4SETS17h", "7threads5TABLE17h"] {
        let (section, _) = section_of_containing(&elf, part);
        assert_eq!(section, ".bss", "{part}");
    }
}
