/* Five callers of the wrappers, each keeping its own count of the bytes
 * it leaves allocated (the shadow count), printed as `main.c:LINE BYTES`. */
#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

void *plain_malloc(size_t n);

struct big {
	char bytes[4000];
};

static void shadow(int line, size_t bytes)
{
	printf("main.c:%d %zu\n", line, bytes);
}

int main(void)
{
	void *keep[16];
	size_t k = 0;
	size_t n1 = 0, n4 = 0;
	int line1 = 0, line4 = 0;

	keep[k++] = xmalloc(1000); line1 = __LINE__; n1 += 1000;
	shadow(line1, n1);

	keep[k++] = xstrdup("sixteen chars.."); shadow(__LINE__, 16);

	keep[k++] = NEW(struct big); shadow(__LINE__, sizeof(struct big));

	for (int i = 0; i < 10; i++) {
		void *p = xmalloc(300); line4 = __LINE__;
		if (i % 2)
			xfree(p);
		else
			keep[k++] = p, n4 += 300;
	}
	shadow(line4, n4);

	/* The first call allocates 5000 bytes, the second returns the cached
	 * block without allocating: no site may be left pending. */
	keep[k++] = cache_get(5000); shadow(__LINE__, 5000);
	if (cache_get(5000) != keep[k - 1])
		return 2;
	/* Not a wrapper's: must not be charged to cache_get's call. */
	keep[k++] = plain_malloc(777);

	xfree(xmalloc(123)); shadow(__LINE__, 0);
	printf("kept %zu blocks\n", k);
	return 0;
}
