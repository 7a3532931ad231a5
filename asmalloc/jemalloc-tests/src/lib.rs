//! Tests only: see `tests/` (asmalloc's runtime over jemalloc).
