/* Out-of-line wrappers (compiled with -DASMALLOC_NO_WRAPPERS: this file
 * defines them). The callback hook stands for an allocator function
 * pointer, as in Lua's lua_Alloc. */
#include <stdlib.h>
#include <stdio.h>

#include "xalloc.h"

static void *plain_alloc(size_t n)
{
	return malloc(n);
}

void *(*xalloc_hook)(size_t) = plain_alloc;

void *xmalloc(size_t n)
{
	void *p = xalloc_hook(n);
	if (!p) {
		fputs("out of memory\n", stderr);
		exit(1);
	}
	return p;
}

void xfree(void *p)
{
	free(p);
}
