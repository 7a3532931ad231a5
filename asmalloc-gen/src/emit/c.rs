//! `mallocations.h` and `mallocations.c`.
//!
//! The header is a superset of the original ASMalloc sample table
//! (`test-mallocations.h`): the same `mallocation_type_t` enum values for
//! the first eight types, `mallocation_type_names[]` (full enumerator names,
//! as in the sample), `mallocation_t` with the original four fields first and
//! `function` last (so positional initialisers written for the 4-field struct
//! still compile), `NUM_MALLOCATIONS` and `mallocations[]` with entry 0 = no
//! site. Added: `NUM_MALLOCATION_TYPES`, `mallocation_type_short_names[]`
//! (`"MALLOC"`, the names the runtime prints), and a constructor that
//! registers the table with the LD_PRELOAD runtime through the weak symbol
//! `asm_register_mallocations` (a no-op without the preload).
//!
//! A header is included by many translation units, so it only *declares*
//! the arrays; they are defined where `ASMALLOC_MALLOCATIONS_DEFINE` is
//! defined before the include — which is all `mallocations.c` does.

use std::fmt::Write as _;

use crate::emit::{BANNER, HEADER_FILE};
use crate::ids::Table;
use crate::types::type_const_suffix;

/// A C string literal for `s`.
pub fn c_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' => out.push_str("\\?"), // no trigraphs
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

fn enumerator(t: &str) -> String {
    format!("MALLOCATION_TYPE_{}", type_const_suffix(t))
}

/// The header.
pub fn header(table: &Table) -> String {
    let mut o = String::new();
    let n = table.num_mallocations();
    let nt = table.types.len();
    let _ = write!(
        o,
        "/* {BANNER}.\n\
\x20*\n\
\x20* The mallocation table of this program: every allocation site that\n\
\x20* asmalloc-gen found, with a stable id (see mallocations.json).\n\
\x20*\n\
\x20* Include this header anywhere. Define the table in exactly one translation\n\
\x20* unit: compile mallocations.c, or write\n\
\x20*     #define ASMALLOC_MALLOCATIONS_DEFINE\n\
\x20*     #include \"mallocations.h\"\n\
\x20* there. The definition registers the table with the asmalloc LD_PRELOAD\n\
\x20* runtime when it is loaded, and does nothing when it is not.\n\
\x20*/\n\
#ifndef ASMALLOC_MALLOCATIONS_H\n\
#define ASMALLOC_MALLOCATIONS_H\n\
\n\
#include <stddef.h>\n\
\n\
#ifdef __cplusplus\n\
extern \"C\" {{\n\
#endif\n\
\n\
typedef enum mallocation_type_e {{\n"
    );
    for (i, t) in table.types.iter().enumerate() {
        let _ = writeln!(o, "\t{} = {i},", enumerator(t));
    }
    let _ = write!(
        o,
        "}} mallocation_type_t;\n\
\n\
#define NUM_MALLOCATION_TYPES ({nt})\n\
#define NUM_MALLOCATIONS ({n})\n\
\n\
typedef struct mallocation_s {{\n\
\tmallocation_type_t type;\n\
\tchar *file;\n\
\tint line;\n\
\tint id;\n\
\tconst char *function;\n\
}} mallocation_t;\n\
\n\
/* \"MALLOCATION_TYPE_MALLOC\", as in the original sample table. */\n\
extern char *mallocation_type_names[NUM_MALLOCATION_TYPES];\n\
/* \"MALLOC\": the names the runtime prints. */\n\
extern const char *const mallocation_type_short_names[NUM_MALLOCATION_TYPES];\n\
extern mallocation_t mallocations[NUM_MALLOCATIONS];\n\
\n\
#ifdef __cplusplus\n\
}}\n\
#endif\n\
\n\
#endif /* ASMALLOC_MALLOCATIONS_H */\n\
\n\
#if defined(ASMALLOC_MALLOCATIONS_DEFINE) && !defined(ASMALLOC_MALLOCATIONS_DEFINED)\n\
#define ASMALLOC_MALLOCATIONS_DEFINED\n\
\n\
char *mallocation_type_names[NUM_MALLOCATION_TYPES] = {{\n"
    );
    for t in &table.types {
        let _ = writeln!(o, "\t{},", c_string(&enumerator(t)));
    }
    o.push_str("};\n\nconst char *const mallocation_type_short_names[NUM_MALLOCATION_TYPES] = {\n");
    for t in &table.types {
        let _ = writeln!(o, "\t{},", c_string(t));
    }
    o.push_str(
        "};\n\nmallocation_t mallocations[NUM_MALLOCATIONS] = {\n\
         \t{ MALLOCATION_TYPE_NONE, \"\", 0, 0, \"\" }, /* 0: no site */\n",
    );
    for e in &table.entries {
        let ty = enumerator(&table.types[table.type_id(e)]);
        if e.retired {
            let _ = writeln!(o, "\t{{ {ty}, \"\", 0, {}, \"\" }}, /* retired */", e.id);
        } else {
            let _ = writeln!(
                o,
                "\t{{ {ty}, {}, {}, {}, {} }},",
                c_string(&e.file),
                e.line,
                e.id,
                c_string(&e.function)
            );
        }
    }
    o.push_str(
        "};\n\
\n\
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && defined(__LP64__)\n\
_Static_assert(sizeof(mallocation_t) == 32, \"mallocation_t layout the runtime reads\");\n\
#endif\n\
\n\
/* Provided by the asmalloc LD_PRELOAD runtime; NULL when it is not loaded. */\n\
extern int asm_register_mallocations(const char *const *type_names, size_t num_types,\n\
\t\tconst mallocation_t *table, size_t num_mallocations) __attribute__((weak));\n\
\n\
__attribute__((constructor)) static void asmalloc_register_mallocations_(void)\n\
{\n\
\tif (asm_register_mallocations)\n\
\t\t(void)asm_register_mallocations(mallocation_type_short_names,\n\
\t\t\t\tNUM_MALLOCATION_TYPES, mallocations, NUM_MALLOCATIONS);\n\
}\n\
\n\
#endif /* ASMALLOC_MALLOCATIONS_DEFINE */\n",
    );
    o
}

/// The C source that defines the table and registers it.
pub fn source() -> String {
    format!(
        "/* {BANNER}.\n * Defines the mallocation table and registers it with the asmalloc runtime. */\n\
         #define ASMALLOC_MALLOCATIONS_DEFINE\n#include \"{HEADER_FILE}\"\n"
    )
}
