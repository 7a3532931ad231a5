/*
 * asmalloc_sites.h — per-call-site attribution for C programs, no source edits.
 *
 * Shipped with asmalloc-gen (also written by `asmalloc-gen --emit-sites-header DIR`).
 * Add ONE compiler flag to every C translation unit:
 *
 *     cc -include asmalloc_sites.h ...
 *
 * Every call of the allocation family (malloc, calloc, realloc, reallocarray,
 * free, strdup, strndup, valloc, pvalloc, memalign, posix_memalign,
 * aligned_alloc) then tells the asmalloc runtime, just before the real call,
 * which call site it is: __FILE__, __LINE__, __func__ and the
 * MALLOCATION_TYPE_* number of the generated table. The runtime resolves
 * file + line to the table's id once and caches it in a per-call-site
 * static, and charges the next allocation of that thread to it. Without the
 * asmalloc LD_PRELOAD library, asm_site_enter is a NULL weak symbol and the
 * program does exactly what it did without this header.
 *
 * File names: the table records paths relative to the directory
 * asmalloc-gen scanned ("src/pool.c"); __FILE__ is whatever the compiler
 * was given ("../src/pool.c", "/build/x/src/pool.c"). The runtime matches a
 * table entry when its file equals __FILE__ or is a suffix of it starting
 * after a '/'. So scan the directory your build passes paths relative to,
 * or any ancestor of the sources that is below it.
 *
 * Caveats (see docs/generator.md):
 * - The system headers that declare these functions are included here,
 *   first, so that their declarations are not taken for macro calls when
 *   the program includes them again. Feature-test macros (_GNU_SOURCE,
 *   _POSIX_C_SOURCE, ...) must therefore be given on the command line
 *   (-D_GNU_SOURCE), not #defined at the top of a source file.
 * - A call through a struct member of the same name (`a->free(p)`) cannot be
 *   told apart by the preprocessor; compile such a file with
 *   -DASMALLOC_NO_SITE_FREE (one ASMALLOC_NO_SITE_<NAME> per function).
 * - C only: in C++ this header does nothing (std::malloc would break).
 * - jemalloc's *allocx functions are wrapped only with
 *   -DASMALLOC_SITES_JEMALLOC (then <jemalloc/jemalloc.h> is included first).
 * - Define ASMALLOC_SITES_DISABLE to turn the whole header off.
 */
#ifndef ASMALLOC_SITES_H
#define ASMALLOC_SITES_H

#if defined(__GNUC__) && !defined(__cplusplus) && !defined(ASMALLOC_SITES_DISABLE)

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__has_include)
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
#endif
#ifdef ASMALLOC_SITES_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

/* Provided by the asmalloc LD_PRELOAD runtime; NULL without it. */
extern void asm_site_enter(uint16_t *cache, uint16_t type, const char *file, int line,
		const char *function) __attribute__((weak));

/* MALLOCATION_TYPE_* values of every generated table (fixed ids). */
#define ASMALLOC_TYPE_REALLOC 1
#define ASMALLOC_TYPE_FREE 2
#define ASMALLOC_TYPE_CALLOC 3
#define ASMALLOC_TYPE_VALLOC 4
#define ASMALLOC_TYPE_STRDUP 5
#define ASMALLOC_TYPE_STRNDUP 6
#define ASMALLOC_TYPE_MALLOC 7
#define ASMALLOC_TYPE_REALLOCARRAY 8
#define ASMALLOC_TYPE_MEMALIGN 9
#define ASMALLOC_TYPE_POSIX_MEMALIGN 10
#define ASMALLOC_TYPE_ALIGNED_ALLOC 11
#define ASMALLOC_TYPE_PVALLOC 12
#define ASMALLOC_TYPE_MALLOCX 13
#define ASMALLOC_TYPE_RALLOCX 14
#define ASMALLOC_TYPE_XALLOCX 15
#define ASMALLOC_TYPE_DALLOCX 16
#define ASMALLOC_TYPE_SDALLOCX 17

/* The functions wrapped, declared here in case the program's feature-test
 * macros hide some of them (strndup, posix_memalign, reallocarray, ...); the
 * declarations match the C library's. */
void *reallocarray(void *p, size_t n, size_t size);
char *strdup(const char *s);
char *strndup(const char *s, size_t n);
void *valloc(size_t n);
void *pvalloc(size_t n);
void *memalign(size_t align, size_t n);
int posix_memalign(void **out, size_t align, size_t n);
void *aligned_alloc(size_t align, size_t n);

/* Tells the runtime which call site the next allocation-family call of
 * this thread is. */
#define ASMALLOC_SITE_PARAMS_ \
	uint16_t *cache, uint16_t type, const char *file, int line, const char *func
static inline __attribute__((always_inline)) void asmalloc_enter_(ASMALLOC_SITE_PARAMS_)
{
	if (asm_site_enter)
		asm_site_enter(cache, type, file, line, func);
}

/* One wrapper per function, defined before the macros below so the call
 * inside is the real function. The program's arguments are evaluated
 * before the wrapper runs, so an allocation inside an argument
 * (`free(strdup(s))`, `realloc(p, grow(n))`) is charged to its own call
 * site and cannot use up this one. */
static inline __attribute__((always_inline)) void *asmalloc_malloc_(ASMALLOC_SITE_PARAMS_, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return malloc(n);
}
static inline __attribute__((always_inline)) void *asmalloc_calloc_(ASMALLOC_SITE_PARAMS_, size_t n, size_t size)
{
	asmalloc_enter_(cache, type, file, line, func);
	return calloc(n, size);
}
static inline __attribute__((always_inline)) void *asmalloc_realloc_(ASMALLOC_SITE_PARAMS_, void *p, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return realloc(p, n);
}
static inline __attribute__((always_inline)) void *asmalloc_reallocarray_(ASMALLOC_SITE_PARAMS_, void *p, size_t n, size_t size)
{
	asmalloc_enter_(cache, type, file, line, func);
	return reallocarray(p, n, size);
}
static inline __attribute__((always_inline)) void asmalloc_free_(ASMALLOC_SITE_PARAMS_, void *p)
{
	asmalloc_enter_(cache, type, file, line, func);
	free(p);
}
static inline __attribute__((always_inline)) char *asmalloc_strdup_(ASMALLOC_SITE_PARAMS_, const char *s)
{
	asmalloc_enter_(cache, type, file, line, func);
	return strdup(s);
}
static inline __attribute__((always_inline)) char *asmalloc_strndup_(ASMALLOC_SITE_PARAMS_, const char *s, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return strndup(s, n);
}
static inline __attribute__((always_inline)) void *asmalloc_valloc_(ASMALLOC_SITE_PARAMS_, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return valloc(n);
}
static inline __attribute__((always_inline)) void *asmalloc_pvalloc_(ASMALLOC_SITE_PARAMS_, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return pvalloc(n);
}
static inline __attribute__((always_inline)) void *asmalloc_memalign_(ASMALLOC_SITE_PARAMS_, size_t align, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return memalign(align, n);
}
static inline __attribute__((always_inline)) int asmalloc_posix_memalign_(ASMALLOC_SITE_PARAMS_, void **out, size_t align, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return posix_memalign(out, align, n);
}
static inline __attribute__((always_inline)) void *asmalloc_aligned_alloc_(ASMALLOC_SITE_PARAMS_, size_t align, size_t n)
{
	asmalloc_enter_(cache, type, file, line, func);
	return aligned_alloc(align, n);
}
#ifdef ASMALLOC_SITES_JEMALLOC
static inline __attribute__((always_inline)) void *asmalloc_mallocx_(ASMALLOC_SITE_PARAMS_, size_t n, int flags)
{
	asmalloc_enter_(cache, type, file, line, func);
	return mallocx(n, flags);
}
static inline __attribute__((always_inline)) void *asmalloc_rallocx_(ASMALLOC_SITE_PARAMS_, void *p, size_t n, int flags)
{
	asmalloc_enter_(cache, type, file, line, func);
	return rallocx(p, n, flags);
}
static inline __attribute__((always_inline)) size_t asmalloc_xallocx_(ASMALLOC_SITE_PARAMS_, void *p, size_t n, size_t extra, int flags)
{
	asmalloc_enter_(cache, type, file, line, func);
	return xallocx(p, n, extra, flags);
}
static inline __attribute__((always_inline)) void asmalloc_dallocx_(ASMALLOC_SITE_PARAMS_, void *p, int flags)
{
	asmalloc_enter_(cache, type, file, line, func);
	dallocx(p, flags);
}
static inline __attribute__((always_inline)) void asmalloc_sdallocx_(ASMALLOC_SITE_PARAMS_, void *p, size_t n, int flags)
{
	asmalloc_enter_(cache, type, file, line, func);
	sdallocx(p, n, flags);
}
#endif

/* The call: a per-call-site cache, then the wrapper. */
#define ASMALLOC_SITE_CALL_(ty, fn, ...)                                            \
	(__extension__({                                                            \
		static uint16_t asmalloc_site_cache_;                               \
		asmalloc_##fn##_(&asmalloc_site_cache_, ASMALLOC_TYPE_##ty, __FILE__, \
			__LINE__, __func__, __VA_ARGS__);                           \
	}))

#ifndef ASMALLOC_NO_SITE_MALLOC
#undef malloc
#define malloc(...) ASMALLOC_SITE_CALL_(MALLOC, malloc, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_CALLOC
#undef calloc
#define calloc(...) ASMALLOC_SITE_CALL_(CALLOC, calloc, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_REALLOC
#undef realloc
#define realloc(...) ASMALLOC_SITE_CALL_(REALLOC, realloc, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_REALLOCARRAY
#undef reallocarray
#define reallocarray(...) ASMALLOC_SITE_CALL_(REALLOCARRAY, reallocarray, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_FREE
#undef free
#define free(...) ASMALLOC_SITE_CALL_(FREE, free, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_STRDUP
#undef strdup
#define strdup(...) ASMALLOC_SITE_CALL_(STRDUP, strdup, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_STRNDUP
#undef strndup
#define strndup(...) ASMALLOC_SITE_CALL_(STRNDUP, strndup, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_VALLOC
#undef valloc
#define valloc(...) ASMALLOC_SITE_CALL_(VALLOC, valloc, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_PVALLOC
#undef pvalloc
#define pvalloc(...) ASMALLOC_SITE_CALL_(PVALLOC, pvalloc, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_MEMALIGN
#undef memalign
#define memalign(...) ASMALLOC_SITE_CALL_(MEMALIGN, memalign, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_POSIX_MEMALIGN
#undef posix_memalign
#define posix_memalign(...) ASMALLOC_SITE_CALL_(POSIX_MEMALIGN, posix_memalign, __VA_ARGS__)
#endif
#ifndef ASMALLOC_NO_SITE_ALIGNED_ALLOC
#undef aligned_alloc
#define aligned_alloc(...) ASMALLOC_SITE_CALL_(ALIGNED_ALLOC, aligned_alloc, __VA_ARGS__)
#endif

#ifdef ASMALLOC_SITES_JEMALLOC
#undef mallocx
#define mallocx(...) ASMALLOC_SITE_CALL_(MALLOCX, mallocx, __VA_ARGS__)
#undef rallocx
#define rallocx(...) ASMALLOC_SITE_CALL_(RALLOCX, rallocx, __VA_ARGS__)
#undef xallocx
#define xallocx(...) ASMALLOC_SITE_CALL_(XALLOCX, xallocx, __VA_ARGS__)
#undef dallocx
#define dallocx(...) ASMALLOC_SITE_CALL_(DALLOCX, dallocx, __VA_ARGS__)
#undef sdallocx
#define sdallocx(...) ASMALLOC_SITE_CALL_(SDALLOCX, sdallocx, __VA_ARGS__)
#endif

#endif /* __GNUC__ && !__cplusplus && !ASMALLOC_SITES_DISABLE */
#endif /* ASMALLOC_SITES_H */
