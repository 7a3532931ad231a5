//! What the scanners find: one allocation site in one source file.

use serde::{Deserialize, Serialize};

/// The language a site was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteLang {
    /// C or C++ call of an allocation-family function or wrapper.
    C,
    /// Rust function carrying `#[track_alloc(type)]`.
    Rust,
}

/// One site as found in the sources (no id yet).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FoundSite {
    /// Path relative to the scanned root, `/`-separated.
    pub file: String,
    /// 1-based line: of the callee name (C; a call in a `#define` body is at
    /// the `#define`'s line), or of the function's name (Rust).
    pub line: u32,
    /// 1-based byte column of the same token.
    pub column: u32,
    /// Enclosing function (C), macro name (C, in a `#define`), or function
    /// path `module::Type::method` (Rust). Empty outside any function.
    pub function: String,
    /// Type name (`MALLOC`, `FREE`, a wrapper's type, a Rust category).
    pub type_name: String,
    /// The called function (C) or the Rust function's own name.
    pub callee: String,
    /// Fingerprint of the call's text (callee and argument tokens), used to
    /// recognise a site after lines moved. 16 hex digits.
    pub context: String,
    /// Language.
    pub lang: SiteLang,
}

/// 64-bit FNV-1a, as 16 lowercase hex digits: stable across platforms and
/// releases (unlike `std`'s hasher), so it can live in a stored table.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
