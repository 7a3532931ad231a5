//! Features, thresholds and the user callback: the process-wide settings.
//!
//! Values and defaults are the original ASMalloc's. Settings are plain
//! atomics read with relaxed loads on the allocation path; they are changed
//! rarely (at start-up or by a command) and a change becomes visible to other
//! threads within a few allocations, as in the original.

use std::ffi::c_void;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// The feature bit vector (`asm_features_t`), values as in the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Features(u64);

impl Features {
    /// Log the date and time.
    pub const DATESTAMP: Features = Features(1 << 0);
    /// Log live / total threads.
    pub const THREAD_STATS: Features = Features(1 << 1);
    /// Log memory counters per operation.
    pub const MEM_COUNT_STATS: Features = Features(1 << 2);
    /// Callback when a site's net size on a thread moves past the delta and
    /// time thresholds.
    pub const MALLOCATIONS: Features = Features(1 << 3);
    /// Callback on single blocks past the block threshold.
    pub const BLOCKS: Features = Features(1 << 4);
    /// glibc `malloc_info()` in reports.
    pub const MALLOC_INFO: Features = Features(1 << 5);
    /// glibc `malloc_stats()` in reports.
    pub const MALLOC_STATS: Features = Features(1 << 6);
    /// glibc `mallinfo2()` in reports.
    pub const MALLINFO: Features = Features(1 << 7);
    /// Process VM stats from `/proc/self/status` in reports.
    pub const VM_STATS: Features = Features(1 << 8);

    /// Every bit this version knows.
    pub const ALL: Features = Features((1 << 9) - 1);
    /// The original library's defaults.
    pub const DEFAULT: Features = Features(
        Self::DATESTAMP.0
            | Self::THREAD_STATS.0
            | Self::MEM_COUNT_STATS.0
            | Self::MALLOCATIONS.0
            | Self::BLOCKS.0
            | Self::VM_STATS.0,
    );
    /// No feature.
    pub const NONE: Features = Features(0);

    /// Names, in bit order, as accepted by [`Features::parse`].
    pub const NAMES: [(&'static str, Features); 9] = [
        ("DATESTAMP", Self::DATESTAMP),
        ("THREAD_STATS", Self::THREAD_STATS),
        ("MEM_COUNT_STATS", Self::MEM_COUNT_STATS),
        ("MALLOCATIONS", Self::MALLOCATIONS),
        ("BLOCKS", Self::BLOCKS),
        ("MALLOC_INFO", Self::MALLOC_INFO),
        ("MALLOC_STATS", Self::MALLOC_STATS),
        ("MALLINFO", Self::MALLINFO),
        ("VM_STATS", Self::VM_STATS),
    ];

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Features from raw bits; unknown bits are an error naming them.
    pub fn from_bits(bits: u64) -> Result<Features, ConfigError> {
        let unknown = bits & !Self::ALL.0;
        if unknown != 0 {
            return Err(ConfigError::UnknownFeatureBits(unknown));
        }
        Ok(Features(bits))
    }

    /// Features from raw bits, dropping unknown ones.
    pub const fn from_bits_truncate(bits: u64) -> Features {
        Features(bits & Self::ALL.0)
    }

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set.
    pub const fn intersects(self, other: Features) -> bool {
        self.0 & other.0 != 0
    }

    /// The bits of both (`|` in a `const`).
    pub const fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// Parses `DATESTAMP|VM_STATS` (also `,` or `+` separated, any case,
    /// with or without the `ASM_LOG_` prefix), `default`, `all`, `none`, or a
    /// number (decimal or `0x` hex).
    pub fn parse(text: &str) -> Result<Features, ConfigError> {
        let text = text.trim();
        if let Some(n) = parse_number(text) {
            return Features::from_bits(n);
        }
        let mut bits = 0;
        for word in text.split(['|', ',', '+']) {
            let word = word.trim();
            let bare = word
                .strip_prefix("ASM_LOG_")
                .or_else(|| word.strip_prefix("asm_log_"))
                .unwrap_or(word);
            let found = match bare.to_ascii_uppercase().as_str() {
                "DEFAULT" => Some(Self::DEFAULT),
                "ALL" => Some(Self::ALL),
                "NONE" | "" => Some(Self::NONE),
                upper => Self::NAMES
                    .iter()
                    .find(|(name, _)| *name == upper)
                    .map(|&(_, f)| f),
            };
            match found {
                Some(f) => bits |= f.0,
                None => return Err(ConfigError::UnknownFeatureName(word.to_string())),
            }
        }
        Ok(Features(bits))
    }
}

impl std::ops::BitOr for Features {
    type Output = Features;
    fn bitor(self, rhs: Features) -> Features {
        Features(self.0 | rhs.0)
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, bit) in Self::NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("NONE")?;
        }
        Ok(())
    }
}

/// The callback thresholds (`ASM_CMD_SET_THRESHOLDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A single (de)allocation larger than this many bytes calls the callback
    /// (feature `BLOCKS`). Default 512 KiB.
    pub block_bytes: usize,
    /// A site's net size on a thread must move by more than this many bytes
    /// since its last report … (feature `MALLOCATIONS`). Default 1 MiB.
    pub delta_bytes: usize,
    /// … and more than this many whole seconds must have passed. Default 60.
    pub delta_seconds: i64,
}

impl Thresholds {
    /// The original's defaults: 512 KiB, 1 MiB, 60 s.
    pub const DEFAULT: Thresholds = Thresholds {
        block_bytes: 512 * 1024,
        delta_bytes: 1024 * 1024,
        delta_seconds: 60,
    };
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

/// A bad setting: the message names what was wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Feature bits this version does not know.
    UnknownFeatureBits(u64),
    /// A feature name this version does not know.
    UnknownFeatureName(String),
    /// A size that does not parse.
    BadSize(String),
    /// A duration that does not parse.
    BadDuration(String),
    /// A value that parses but is out of range (the message says why).
    OutOfRange(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownFeatureBits(bits) => write!(
                f,
                "asmalloc: unknown feature bits {bits:#x}; known bits are 0x1..{:#x} ({:#x} in all)",
                (Features::ALL.0 + 1) >> 1,
                Features::ALL.0
            ),
            ConfigError::UnknownFeatureName(name) => write!(
                f,
                "asmalloc: unknown feature '{name}'; use names from DATESTAMP, THREAD_STATS, \
                 MEM_COUNT_STATS, MALLOCATIONS, BLOCKS, MALLOC_INFO, MALLOC_STATS, MALLINFO, \
                 VM_STATS joined by '|' or ',', or default/all/none, or a number"
            ),
            ConfigError::BadSize(text) => write!(
                f,
                "asmalloc: bad size '{text}'; use a byte count with an optional K, M or G \
                 suffix (powers of 1024), e.g. 512K"
            ),
            ConfigError::OutOfRange(why) => write!(f, "asmalloc: {why}"),
            ConfigError::BadDuration(text) => write!(
                f,
                "asmalloc: bad duration '{text}'; use a number with an optional ms, s, m or h \
                 suffix (seconds by default), e.g. 10s"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

fn parse_number(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        text.parse().ok()
    }
}

/// Parses a byte size: `1048576`, `512K`, `1M`, `2GiB`, `4kb`.
pub fn parse_size(text: &str) -> Result<usize, ConfigError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| ConfigError::BadSize(text.to_string()))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(ConfigError::BadSize(text.to_string())),
    };
    n.checked_mul(mult)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| ConfigError::BadSize(text.to_string()))
}

/// Parses a duration into milliseconds: `250ms`, `10`, `10s`, `5m`, `1h`.
pub fn parse_duration_ms(text: &str) -> Result<u64, ConfigError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| ConfigError::BadDuration(text.to_string()))?;
    let mult: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(ConfigError::BadDuration(text.to_string())),
    };
    n.checked_mul(mult)
        .ok_or_else(|| ConfigError::BadDuration(text.to_string()))
}

// ---------------------------------------------------------------------------
// Process-wide settings.

static FEATURES: AtomicU64 = AtomicU64::new(Features::DEFAULT.0);
static BLOCK_BYTES: AtomicUsize = AtomicUsize::new(Thresholds::DEFAULT.block_bytes);
static DELTA_BYTES: AtomicUsize = AtomicUsize::new(Thresholds::DEFAULT.delta_bytes);
static DELTA_SECONDS: AtomicI64 = AtomicI64::new(Thresholds::DEFAULT.delta_seconds);

static WARNED_FEATURE_BITS: AtomicBool = AtomicBool::new(false);

// What the allocation path compares against: the block and delta thresholds
// when their feature is on and a callback is registered, `usize::MAX` (never
// crossed) otherwise, so the common case is two loads and two compares, with
// no feature test. A crossing only ever calls the callback, so with none
// registered there is nothing to decide: a busy site past the delta threshold
// then costs nothing more than a quiet one. The price is in the first report
// after a callback is registered: its delta is measured from the site's last
// *reported* total (0 if it was never reported), not from a crossing that
// nobody saw.
static ARMED_BLOCK: AtomicUsize = AtomicUsize::new(usize::MAX);
static ARMED_DELTA: AtomicUsize = AtomicUsize::new(usize::MAX);
// Either of the two is armed: one load tells the allocation path it has
// nothing to compare.
static ARMED_ANY: AtomicBool = AtomicBool::new(false);

fn rearm() {
    let f = features();
    let t = thresholds();
    let listening = callback().is_some();
    ARMED_BLOCK.store(
        if listening && f.contains(Features::BLOCKS) {
            t.block_bytes
        } else {
            usize::MAX
        },
        Ordering::Relaxed,
    );
    ARMED_DELTA.store(
        if listening && f.contains(Features::MALLOCATIONS) {
            t.delta_bytes
        } else {
            usize::MAX
        },
        Ordering::Relaxed,
    );
    ARMED_ANY.store(
        listening && f.intersects(Features::BLOCKS.union(Features::MALLOCATIONS)),
        Ordering::Relaxed,
    );
}

/// The features in force.
#[inline]
pub fn features() -> Features {
    Features(FEATURES.load(Ordering::Relaxed))
}

/// Sets the features (`ASM_CMD_SET_FEATURES`).
pub fn set_features(features: Features) {
    FEATURES.store(features.0, Ordering::Relaxed);
    rearm();
}

/// Sets features from raw bits as the C API passes them: unknown bits give a
/// one-time warning and are dropped; the known ones take effect.
pub fn set_feature_bits(bits: u64) {
    if let Err(err) = Features::from_bits(bits) {
        crate::diag::warn_once(&WARNED_FEATURE_BITS, format_args!("{}", Bare(&err)));
    }
    set_features(Features::from_bits_truncate(bits));
}

/// The thresholds in force.
#[inline]
pub fn thresholds() -> Thresholds {
    Thresholds {
        block_bytes: BLOCK_BYTES.load(Ordering::Relaxed),
        delta_bytes: DELTA_BYTES.load(Ordering::Relaxed),
        delta_seconds: DELTA_SECONDS.load(Ordering::Relaxed),
    }
}

/// The block threshold if `BLOCKS` is on and a callback is registered, else
/// `usize::MAX`.
#[inline(always)]
pub(crate) fn armed_block_threshold() -> usize {
    ARMED_BLOCK.load(Ordering::Relaxed)
}

/// The delta threshold if `MALLOCATIONS` is on and a callback is registered,
/// else `usize::MAX`.
#[inline(always)]
pub(crate) fn armed_delta_threshold() -> usize {
    ARMED_DELTA.load(Ordering::Relaxed)
}

/// Whether the block or the delta threshold is armed (see
/// [`armed_block_threshold`]).
#[inline(always)]
pub(crate) fn thresholds_armed() -> bool {
    ARMED_ANY.load(Ordering::Relaxed)
}

/// The time threshold, whole seconds.
#[inline(always)]
pub(crate) fn delta_seconds() -> i64 {
    DELTA_SECONDS.load(Ordering::Relaxed)
}

/// Sets the thresholds (`ASM_CMD_SET_THRESHOLDS`).
pub fn set_thresholds(t: Thresholds) {
    BLOCK_BYTES.store(t.block_bytes, Ordering::Relaxed);
    DELTA_BYTES.store(t.delta_bytes, Ordering::Relaxed);
    DELTA_SECONDS.store(t.delta_seconds, Ordering::Relaxed);
    rearm();
}

/// Shows a [`ConfigError`] without its `asmalloc: ` prefix (diag adds it).
pub(crate) struct Bare<'a>(pub(crate) &'a ConfigError);

impl fmt::Display for Bare<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = crate::diag::StackBuf::<512>::new();
        let _ = fmt::Write::write_fmt(&mut s, format_args!("{}", self.0));
        let text = std::str::from_utf8(s.as_bytes()).unwrap_or("");
        f.write_str(text.strip_prefix("asmalloc: ").unwrap_or(text))
    }
}

// ---------------------------------------------------------------------------
// The callback.

/// The original's callback:
/// `void cb(uint64_t thread_id, uint16_t type, uint16_t loc, ssize_t delta_size,
///          ssize_t total_size, struct timespec *last_time, void *udata)`.
pub type Callback = extern "C" fn(
    thread_id: u64,
    type_id: u16,
    loc: u16,
    delta_size: isize,
    total_size: isize,
    last_time: *const libc::timespec,
    user_data: *mut c_void,
);

static CALLBACK: crate::callback_cell::CallbackCell<Callback> =
    crate::callback_cell::CallbackCell::new();

/// Sets (or with `None` clears) the callback and its user data
/// (`ASM_CMD_SET_CALLBACK`).
pub fn set_callback(callback: Option<Callback>, user_data: *mut c_void) {
    CALLBACK.set(callback, user_data);
    rearm();
}

/// The callback in force and its user data.
#[inline]
pub(crate) fn callback() -> Option<(Callback, *mut c_void)> {
    CALLBACK.get()
}

// ---------------------------------------------------------------------------
// Environment variables.

/// The settings this module reads from the environment, with the accepted
/// form of each (for error messages and `--help`); the whole list is
/// [`crate::env::ENV_VARS`].
pub const CONFIG_VARS: [(&str, &str); 4] = [
    (
        "ASMALLOC_FEATURES",
        "feature names joined by '|' or ',' (DATESTAMP, THREAD_STATS, MEM_COUNT_STATS, \
         MALLOCATIONS, BLOCKS, MALLOC_INFO, MALLOC_STATS, MALLINFO, VM_STATS), default, all, \
         none, or a number",
    ),
    (
        "ASMALLOC_BLOCK_THRESHOLD",
        "bytes with optional K/M/G suffix (default 512K)",
    ),
    (
        "ASMALLOC_DELTA_THRESHOLD",
        "bytes with optional K/M/G suffix (default 1M)",
    ),
    (
        "ASMALLOC_TIME_THRESHOLD",
        "seconds, or a duration with ms/s/m/h suffix (default 60s)",
    ),
];

/// Applies one of this module's `ASMALLOC_*` settings. `Ok(false)` for a
/// name it does not own; an error leaves the setting unchanged.
pub fn apply_setting(name: &str, value: &str) -> Result<bool, ConfigError> {
    match name {
        "ASMALLOC_FEATURES" => set_features(Features::parse(value)?),
        "ASMALLOC_BLOCK_THRESHOLD" => {
            set_thresholds(Thresholds {
                block_bytes: parse_size(value)?,
                ..thresholds()
            });
        }
        "ASMALLOC_DELTA_THRESHOLD" => {
            set_thresholds(Thresholds {
                delta_bytes: parse_size(value)?,
                ..thresholds()
            });
        }
        "ASMALLOC_TIME_THRESHOLD" => {
            let ms = parse_duration_ms(value)?;
            set_thresholds(Thresholds {
                delta_seconds: i64::try_from(ms / 1000)
                    .map_err(|_| ConfigError::BadDuration(value.to_string()))?,
                ..thresholds()
            });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_parse_names_numbers_and_errors() {
        assert_eq!(
            Features::parse("DATESTAMP|vm_stats").unwrap(),
            Features::DATESTAMP | Features::VM_STATS
        );
        assert_eq!(Features::parse("ASM_LOG_BLOCKS").unwrap(), Features::BLOCKS);
        assert_eq!(Features::parse("0x3").unwrap().bits(), 3);
        assert_eq!(Features::parse("default").unwrap(), Features::DEFAULT);
        // The original's default set: datestamp, thread and count stats,
        // both callbacks, VM stats.
        assert_eq!(Features::DEFAULT.bits(), 0x11f);
        let err = Features::parse("DATESTAMP|BOGUS").unwrap_err();
        assert!(err.to_string().contains("unknown feature 'BOGUS'"));
        assert_eq!(
            Features::from_bits(1 << 20),
            Err(ConfigError::UnknownFeatureBits(1 << 20))
        );
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("17").unwrap(), 17);
        assert!(
            parse_size("12Q")
                .unwrap_err()
                .to_string()
                .contains("bad size '12Q'")
        );
        assert!(parse_size("").is_err());
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("10").unwrap(), 10_000);
        assert_eq!(parse_duration_ms("2m").unwrap(), 120_000);
        assert!(parse_duration_ms("soon").is_err());
    }
}
