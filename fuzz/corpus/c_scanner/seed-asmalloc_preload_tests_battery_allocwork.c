/* Allocation-heavy work in a program linked against another allocator's
 * shared library: built three times, with -DUSE_TCMALLOC -ltcmalloc_minimal,
 * -DUSE_MIMALLOC -lmimalloc and -DUSE_JEMALLOC -ljemalloc. Two threads
 * churn strings and blocks through the standard calls (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, strdup, free) and a few blocks go
 * through the allocator's own API, allocated and freed in pairs.
 * Prints which allocator library is mapped and a checksum.
 * Usage: allocwork ROUNDS */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#if defined(USE_TCMALLOC)
#include <gperftools/tcmalloc.h>
#define OWN_MALLOC(n) tc_malloc(n)
#define OWN_FREE(p) tc_free(p)
#define LIBNAME "libtcmalloc_minimal"
#elif defined(USE_MIMALLOC)
#include <mimalloc.h>
#define OWN_MALLOC(n) mi_malloc(n)
#define OWN_FREE(p) mi_free(p)
#define LIBNAME "libmimalloc"
#elif defined(USE_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define OWN_MALLOC(n) mallocx(n, MALLOCX_ZERO)
#define OWN_FREE(p) dallocx(p, 0)
#define LIBNAME "libjemalloc"
#else
#error "define USE_TCMALLOC, USE_MIMALLOC or USE_JEMALLOC"
#endif

static int rounds;

struct result {
	uint64_t sum;
	size_t live_max;
};

static void *work(void *arg)
{
	struct result *res = arg;
	uint64_t rng = 88172645463325252ULL ^ (uintptr_t)res->sum;
	uint64_t h = FNV1A_INIT;
	size_t cap = 16, len = 0;
	char **strs = malloc(cap * sizeof *strs);
	for (int r = 0; r < rounds; r++) {
		xorshift64(&rng);
		size_t sz = 1 + rng % 3000;
		char *s;
		switch (r % 5) {
		case 0:
			s = malloc(sz);
			break;
		case 1:
			s = calloc(1, sz);
			break;
		case 2: {
			void *p = NULL;
			if (posix_memalign(&p, 64, sz) != 0)
				die("posix_memalign of %zu failed", sz);
			s = p;
			break;
		}
		case 3:
			s = aligned_alloc(32, (sz + 31) & ~(size_t)31);
			break;
		default:
			s = malloc(8);
			s = realloc(s, sz);
			break;
		}
		must(s, "allocation");
		memset(s, 'a' + r % 26, sz - 1);
		s[sz - 1] = '\0';
		char *d = strdup(s);
		h = fnv1a(h, d, strlen(d));
		free(d);
		if (len == cap) {
			cap *= 2;
			strs = realloc(strs, cap * sizeof *strs);
		}
		strs[len++] = s;
		if (len > 200) {
			/* Free a third of them, oldest first. */
			for (size_t i = 0; i < 70; i++)
				free(strs[i]);
			memmove(strs, strs + 70, (len - 70) * sizeof *strs);
			len -= 70;
		}
		if (len > res->live_max)
			res->live_max = len;
		if (r % 97 == 0) {
			unsigned char *own = OWN_MALLOC(1000 + (size_t)r);
			memset(own, r & 0xff, 1000);
			h = fnv1a(h, own, 1000);
			OWN_FREE(own);
		}
	}
	for (size_t i = 0; i < len; i++)
		free(strs[i]);
	free(strs);
	res->sum = h;
	return NULL;
}

/* Which allocator library this process has mapped (from /proc/self/maps). */
static const char *mapped_lib(void)
{
	static char found[256];
	FILE *f = fopen("/proc/self/maps", "r");
	char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0) {
		char *p = strstr(line, LIBNAME);
		if (p) {
			p[strcspn(p, "\n")] = '\0';
			snprintf(found, sizeof found, "%s", p);
			break;
		}
	}
	free(line);
	if (f)
		fclose(f);
	return found[0] ? found : "(none)";
}

int main(int argc, char **argv)
{
	rounds = argc > 1 ? atoi(argv[1]) : 10000;
	struct result res[2] = {{.sum = 1}, {.sum = 2}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, work, &res[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("mapped: %s\n", mapped_lib());
	printf("rounds %d, live at most %zu/%zu, checksums %016llx %016llx\n", rounds,
	       res[0].live_max, res[1].live_max, (unsigned long long)res[0].sum,
	       (unsigned long long)res[1].sum);
	return 0;
}
