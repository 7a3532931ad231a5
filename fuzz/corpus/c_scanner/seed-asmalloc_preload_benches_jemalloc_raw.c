/* Plain jemalloc as an LD_PRELOAD library, for the churn benchmark's
 * baseline: the same jemalloc build libasmalloc_jem.so carries (the
 * _rjem_-prefixed static library of tikv-jemalloc-sys), exported under the
 * standard names with nothing else. Built by benches/churn.rs:
 *   cc -O2 -shared -fPIC jemalloc_raw.c libjemalloc_pic.a -pthread
 */
#include <stddef.h>

void *_rjem_malloc(size_t);
void *_rjem_calloc(size_t, size_t);
void *_rjem_realloc(void *, size_t);
void _rjem_free(void *);
int _rjem_posix_memalign(void **, size_t, size_t);
void *_rjem_aligned_alloc(size_t, size_t);
void *_rjem_memalign(size_t, size_t);
void *_rjem_valloc(size_t);
size_t _rjem_malloc_usable_size(void *);

void *malloc(size_t n) { return _rjem_malloc(n); }
void *calloc(size_t n, size_t s) { return _rjem_calloc(n, s); }
void *realloc(void *p, size_t n) { return _rjem_realloc(p, n); }
void free(void *p) { _rjem_free(p); }
int posix_memalign(void **out, size_t a, size_t n) { return _rjem_posix_memalign(out, a, n); }
void *aligned_alloc(size_t a, size_t n) { return _rjem_aligned_alloc(a, n); }
void *memalign(size_t a, size_t n) { return _rjem_memalign(a, n); }
void *valloc(size_t n) { return _rjem_valloc(n); }
size_t malloc_usable_size(void *p) { return _rjem_malloc_usable_size(p); }
