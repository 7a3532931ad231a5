//! Operation kinds, for the per-operation memory count statistics.
//!
//! Every call the runtime sees is counted under one `Op` (count and bytes) in
//! the calling thread's table; reports sum them across threads.

/// One kind of memory operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    /// `malloc`, Rust `alloc`.
    Malloc,
    /// `calloc`, Rust `alloc_zeroed`.
    Calloc,
    /// `realloc`, `reallocarray`, Rust `realloc` (bytes = new size).
    Realloc,
    /// `free`, Rust `dealloc`.
    Free,
    /// `posix_memalign`, `aligned_alloc`, `memalign`.
    Memalign,
    /// `valloc`, `pvalloc`.
    Valloc,
    /// `strdup`.
    Strdup,
    /// `strndup`.
    Strndup,
    /// jemalloc `mallocx`.
    Mallocx,
    /// jemalloc `rallocx`, `xallocx`.
    Rallocx,
    /// jemalloc `dallocx`, `sdallocx`.
    Dallocx,
    /// `mmap`, `mmap64`.
    Mmap,
    /// `munmap`.
    Munmap,
    /// `mremap`.
    Mremap,
    /// `shmat` (bytes attached).
    Shmat,
    /// `shmdt` (bytes detached).
    Shmdt,
    /// `shmget` (bytes requested).
    Shmget,
    /// `shmctl` (bytes 0).
    Shmctl,
    /// `brk`.
    Brk,
    /// `sbrk` (bytes = increment when positive).
    Sbrk,
    /// A free of a block whose tag did not validate: allocated before the
    /// tracker started, by another allocator, or corrupted. Counted here and
    /// never charged to a site.
    ForeignFree,
}

impl Op {
    /// Number of kinds.
    pub const COUNT: usize = Op::ForeignFree as usize + 1;

    /// All kinds, in report order.
    pub const ALL: [Op; Op::COUNT] = [
        Op::Malloc,
        Op::Calloc,
        Op::Realloc,
        Op::Free,
        Op::Memalign,
        Op::Valloc,
        Op::Strdup,
        Op::Strndup,
        Op::Mallocx,
        Op::Rallocx,
        Op::Dallocx,
        Op::Mmap,
        Op::Munmap,
        Op::Mremap,
        Op::Shmat,
        Op::Shmdt,
        Op::Shmget,
        Op::Shmctl,
        Op::Brk,
        Op::Sbrk,
        Op::ForeignFree,
    ];

    /// The name used in reports and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Malloc => "malloc",
            Op::Calloc => "calloc",
            Op::Realloc => "realloc",
            Op::Free => "free",
            Op::Memalign => "memalign",
            Op::Valloc => "valloc",
            Op::Strdup => "strdup",
            Op::Strndup => "strndup",
            Op::Mallocx => "mallocx",
            Op::Rallocx => "rallocx",
            Op::Dallocx => "dallocx",
            Op::Mmap => "mmap",
            Op::Munmap => "munmap",
            Op::Mremap => "mremap",
            Op::Shmat => "shmat",
            Op::Shmdt => "shmdt",
            Op::Shmget => "shmget",
            Op::Shmctl => "shmctl",
            Op::Brk => "brk",
            Op::Sbrk => "sbrk",
            Op::ForeignFree => "foreign_free",
        }
    }
}
