/* The allocation path in steady state: no system call, and the clock read
 * at most once per 1024 threshold checks. The program defines
 * clock_gettime itself (exported with -rdynamic, so the preload library's
 * calls reach it first), counting calls and forwarding to the C library's.
 * It fills 4 MiB at one site (past the 1 MiB delta threshold, so every
 * later allocation there is checked against the time threshold), then
 * churns ITERATIONS malloc/free/realloc/calloc calls, and prints how many
 * clock reads the churn made.
 *
 * Usage: steady ITERATIONS */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_long clock_reads;

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	atomic_fetch_add(&clock_reads, 1);
	if (real == NULL)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	return real(id, ts);
}

#define LIVE 1024

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 100000;
	void *live[LIVE];
	for (int i = 0; i < LIVE; i++)
		live[i] = malloc(4096);
	long before = atomic_load(&clock_reads);
	unsigned x = 12345;
	for (long i = 0; i < iterations; i++) {
		x = x * 1103515245u + 12345u;
		int k = (int)(x >> 8) % LIVE;
		switch (x % 4) {
		case 0: free(live[k]); live[k] = malloc(4000 + (x >> 20) % 200); break;
		case 1: live[k] = realloc(live[k], 4000 + (x >> 16) % 200); break;
		case 2: free(live[k]); live[k] = calloc(1, 4096); break;
		default: { void *t = malloc(64); memset(t, 1, 64); free(t); break; }
		}
	}
	long during = atomic_load(&clock_reads) - before;
	for (int i = 0; i < LIVE; i++)
		free(live[i]);
	printf("iterations %ld clock_reads %ld\n", iterations, during);
	return 0;
}
