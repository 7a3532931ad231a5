/* The metrics tests' program (tests/metrics.rs): one leaking site whose
 * file name needs escaping in the exposition (a quote, a backslash, a
 * newline, non-ASCII), and one churning site.
 *
 * metrics STEPS STEP_MS LEAK_BYTES IDLE_MS: STEPS times, leaks LEAK_BYTES
 * at site 1 and allocates and frees 1000 bytes at site 2, then sleeps
 * STEP_MS; then sleeps IDLE_MS without allocating; prints "done STEPS". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "asmalloc.h"

typedef struct mallocation_s {
	int type;
	const char *file;
	int line;
	int id;
	const char *function;
} mallocation_t;

static const char *const type_names[] = { "NONE", "MALLOC" };
static const mallocation_t table[] = {
	{ 0, "", 0, 0, NULL },
	{ 1, "src/we\"ird\\dir/na\xc3\xafve\nname.c", 42, 1, "leak_grow" },
	{ 1, "src/cache.c", 17, 2, "cache_put" },
};

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0)
		;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: metrics STEPS STEP_MS LEAK_BYTES IDLE_MS\n");
		return 2;
	}
	long steps = atol(argv[1]), step_ms = atol(argv[2]), idle_ms = atol(argv[4]);
	size_t leak = (size_t)atol(argv[3]);
	if (asm_register_mallocations(type_names, 2, (const struct mallocation_s *)table, 3) != 0)
		return 3;
	for (long i = 0; i < steps; i++) {
		asm_mallocation_set(1, 1, leak);
		char *p = malloc(leak);
		memset(p, 1, leak);
		asm_mallocation_set(1, 2, 1000);
		char *q = malloc(1000);
		memset(q, 2, 1000);
		free(q);
		sleep_ms(step_ms);
	}
	sleep_ms(idle_ms);
	printf("done %ld\n", steps);
	return 0;
}
