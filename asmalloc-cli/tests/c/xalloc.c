/* Allocation wrappers, as real programs have them: out of line (their own
 * file, so never inlined into callers), abort on failure, built with -O2
 * and without frame pointers. dup_name() (xname.c) is a second layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void out_of_memory(size_t n)
{
	fprintf(stderr, "out of memory (%zu bytes)\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL && n != 0)
		out_of_memory(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (p == NULL && n != 0 && size != 0)
		out_of_memory(n * size);
	return p;
}

void *xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n);
	if (p == NULL && n != 0)
		out_of_memory(n);
	return p;
}
