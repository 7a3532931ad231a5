//! Process VM statistics from `/proc/self/status` (the original's
//! `vm_stats.h`): the same twelve keys, in kB, with a key the kernel does not
//! report kept as *absent* rather than 0.

/// The keys, in the original's order (`vm_stats_key_t`).
pub const VM_KEYS: [&str; 12] = [
    "VmPeak", "VmSize", "VmLck", "VmPin", "VmHWM", "VmRSS", "VmData", "VmStk", "VmExe", "VmLib",
    "VmPTE", "VmSwap",
];

/// One reading; `values[i]` is key `VM_KEYS[i]` in kB, `None` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VmStats {
    /// Values by key index.
    pub values: [Option<u64>; 12],
}

impl VmStats {
    /// Parses the text of a `/proc/<pid>/status` file.
    pub fn parse(status: &str) -> VmStats {
        let mut out = VmStats::default();
        for line in status.lines() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            if let Some(i) = VM_KEYS.iter().position(|k| *k == key) {
                out.values[i] = rest.split_whitespace().next().and_then(|v| v.parse().ok());
            }
        }
        out
    }

    /// Reads the calling process's stats; all absent if the file cannot be
    /// read (no `/proc`).
    pub fn read_self() -> VmStats {
        std::fs::read_to_string("/proc/self/status")
            .map(|s| VmStats::parse(&s))
            .unwrap_or_default()
    }

    /// The value of a key by name.
    pub fn get(&self, key: &str) -> Option<u64> {
        VM_KEYS
            .iter()
            .position(|k| *k == key)
            .and_then(|i| self.values[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_are_absent_not_zero() {
        let s = VmStats::parse("Name:\tx\nVmPeak:\t  1000 kB\nVmRSS:\t 20 kB\nVmSwap:\t0 kB\n");
        assert_eq!(s.get("VmPeak"), Some(1000));
        assert_eq!(s.get("VmRSS"), Some(20));
        assert_eq!(s.get("VmSwap"), Some(0));
        assert_eq!(s.get("VmPin"), None);
        assert_eq!(s.get("VmLck"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = VmStats::read_self();
        assert!(s.get("VmRSS").unwrap_or(0) > 0);
    }
}
