/* A program linked against another allocator's shared library (Debian's
 * jemalloc, tcmalloc or mimalloc; -DUSE_JEMALLOC / -DUSE_TCMALLOC /
 * -DUSE_MIMALLOC), calling the standard family and that allocator's own
 * API, and passing blocks from one to the other as the allocator allows.
 * Under a preload library it must run exactly as without one. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(USE_JEMALLOC)
#include <jemalloc/jemalloc.h>
static void *own_alloc(size_t n) { return mallocx(n, 0); }
static void own_free(void *p) { dallocx(p, 0); }
#define NAME "jemalloc"
#elif defined(USE_TCMALLOC)
#include <gperftools/tcmalloc.h>
static void *own_alloc(size_t n) { return tc_malloc(n); }
static void own_free(void *p) { tc_free(p); }
#define NAME "tcmalloc"
#elif defined(USE_MIMALLOC)
#include <mimalloc.h>
static void *own_alloc(size_t n) { return mi_malloc(n); }
static void own_free(void *p) { mi_free(p); }
#define NAME "mimalloc"
#else
#error "define USE_JEMALLOC, USE_TCMALLOC or USE_MIMALLOC"
#endif

int main(void)
{
	char *v[2000];
	long sum = 0;
	for (int i = 0; i < 2000; i++) {
		v[i] = (i % 3 == 0) ? own_alloc(16 + (size_t)i) : malloc(16 + (size_t)i);
		memset(v[i], i & 0x7f, 16 + (size_t)i);
	}
	for (int i = 0; i < 2000; i += 2) {
		v[i] = realloc(v[i], 4000 - (size_t)i);
		sum += (long)malloc_usable_size(v[i]) >= 4000 - i;
	}
	for (int i = 0; i < 2000; i++) {
		sum += v[i][7];
		/* A block of the allocator's own API freed with free(), and a
		 * malloc'd one with the allocator's own free. */
		if (i % 5 == 0)
			own_free(v[i]);
		else
			free(v[i]);
	}
	void *p = NULL;
	if (posix_memalign(&p, 4096, 10000) == 0)
		free(p);
	char *d = strdup("foreign heap");
	printf("%s %s %ld\n", NAME, d, sum);
	free(d);
	return 0;
}
