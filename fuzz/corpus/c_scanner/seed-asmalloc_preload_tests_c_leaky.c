/* A leaking site must be named by the callback; both thresholds fire. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "asmalloc.h"
#include "test_support.h"

typedef struct mallocation_s {
	int type;
	const char *file;
	int line;
	int id;
	const char *function;
} mallocation_t;

static const char *const type_names[] = { "NONE", "MALLOC", "FREE" };
static const mallocation_t table[] = {
	{ 0, "", 0, 0, NULL },
	{ 1, "src/cache.c", 17, 1, "cache_put" },
	{ 1, "src/bigbuf.c", 88, 2, "bigbuf_new" },
	{ 1, "src/leaky.c", 42, 3, "leak_grow" },
	{ 2, "src/cache.c", 30, 4, "cache_drop" },
};

static void cb(uint64_t thread_id, uint16_t type, uint16_t loc, ssize_t delta, ssize_t total,
		struct timespec *when, void *udata)
{
	const char *file = loc < 5 ? table[loc].file : "?";
	int line = loc < 5 ? table[loc].line : 0;
	printf("%s thread=%lu type=%u loc=%u site=%s:%d delta=%zd total=%zd udata=%s time=%d\n",
			total == 0 ? "block" : "delta", (unsigned long)thread_id, type, loc, file, line,
			delta, total, (const char *)udata, when->tv_sec > 0);
}

int main(void)
{
	if (asm_register_mallocations(type_names, 3, (const struct mallocation_s *)table, 5) != 0)
		return 2;
	command(ASM_CMD_SET_FEATURES, (uint64_t)(ASM_LOG_MALLOCATIONS | ASM_LOG_BLOCKS));
	command(ASM_CMD_SET_THRESHOLDS, (size_t)(256 * 1024), (size_t)(64 * 1024), (time_t)0);
	command(ASM_CMD_SET_CALLBACK, cb, (void *)"ud");

	/* A healthy site: allocates and frees. */
	for (int i = 0; i < 1000; i++) {
		asm_mallocation_set(1, 1, 1000);
		char *p = malloc(1000);
		memset(p, 1, 1000);
		asm_mallocation_set(2, 4, -1000);
		free(p);
	}
	/* One big block: the block threshold. */
	asm_mallocation_set(1, 2, 1 << 20);
	char *big = malloc(1 << 20);
	memset(big, 0, 1 << 20);
	free(big);
	/* The leak: 100 KiB kept, in 1 KiB steps. */
	for (int i = 0; i < 100; i++) {
		asm_mallocation_set(1, 3, 1024);
		char *p = malloc(1024);
		p[0] = 1;
		(void)p;
	}
	fflush(stdout);
	return 0;
}
