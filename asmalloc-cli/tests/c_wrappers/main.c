/* Five callers of the wrappers. Each keeps its own count of what it leaves
 * allocated (the shadow count: malloc_usable_size of each kept block, the
 * size the tracker charges), printed at exit as `shadow main.c:LINE BYTES
 * BLOCKS`. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

void *plain_malloc(size_t n);

struct big {
	char bytes[4000];
};

struct shadow {
	int line;
	size_t bytes, blocks;
};
static struct shadow shadows[8];
static int nshadows;

/* Counts block p as left allocated by the call at line. */
static void *kept(int line, void *p)
{
	struct shadow *s = shadows;
	while (s < shadows + nshadows && s->line != line)
		s++;
	if (s == shadows + nshadows) {
		nshadows++;
		s->line = line;
	}
	s->bytes += malloc_usable_size(p);
	s->blocks++;
	return p;
}

int main(void)
{
	void *keep[16];
	size_t k = 0;

	keep[k++] = kept(__LINE__, xmalloc(1000));
	keep[k++] = kept(__LINE__, xstrdup("sixteen chars.."));
	keep[k++] = kept(__LINE__, NEW(struct big));
	for (int i = 0; i < 10; i++) {
		void *p = xmalloc(300 + i);
		if (i % 2)
			xfree(p);
		else
			keep[k++] = kept(__LINE__ - 4, p);
	}
	/* The first call allocates, the second returns the cached block
	 * without allocating: no site may be left pending. */
	keep[k++] = kept(__LINE__, cache_get(5000));
	if (cache_get(5000) != keep[k - 1])
		return 2;
	/* Not a wrapper's: must not be charged to cache_get's call. */
	keep[k++] = plain_malloc(777);
	xfree(xmalloc(123));

	for (int i = 0; i < nshadows; i++)
		printf("shadow main.c:%d %zu %zu\n", shadows[i].line, shadows[i].bytes,
				shadows[i].blocks);
	printf("kept %zu blocks\n", k);
	return 0;
}
