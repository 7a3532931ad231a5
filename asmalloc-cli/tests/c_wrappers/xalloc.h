/* The program's allocation wrappers: an out-of-line pair (xalloc.c), two
 * static inline wrappers, one of them calling another wrapper, one that
 * hands out a cached block, and a function-like macro expanding to a
 * wrapper call. */
#ifndef XALLOC_H
#define XALLOC_H

#include <stddef.h>
#include <string.h>

void *xmalloc(size_t n);
void xfree(void *p);

/* Calls a wrapper: charged to the outermost call. */
static inline char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}

/* Allocates on its first call only; afterwards returns the cached block. */
static inline void *cache_get(size_t n)
{
	static void *cached;
	if (!cached)
		cached = xmalloc(n);
	return cached;
}

#define NEW(T) ((T *)xmalloc(sizeof(T)))

#endif
