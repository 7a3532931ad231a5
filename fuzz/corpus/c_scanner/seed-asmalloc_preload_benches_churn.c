/* Multi-threaded allocation churn for the preload benchmark.
 *
 *   churn THREADS OPS_PER_THREAD MODE [WORK]
 *
 * Each thread keeps a working set of 4096 slots and, per operation,
 * replaces one: free the old block, allocate a new one (sizes 16 B..4 KiB,
 * skewed small, some realloc/calloc), and initialise it, as a program
 * would. MODE "sites" names one of 8 call sites before every allocation
 * with asm_mallocation_set (when the preload is there: the symbol is weak);
 * MODE "plain" never calls the API (everything goes to site 0). WORK
 * (default 0) is how many times each new block is read back and hashed, as
 * a program uses what it allocates: 0 measures the allocator alone. Prints a
 * checksum so the work cannot be optimised away. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

extern void asm_mallocation_set(uint16_t type, uint16_t loc, ssize_t delta) __attribute__((weak));

#define SLOTS 4096
static long ops;
static int sites, work;
static uint64_t sums[64];

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1), sum = 0;
	char **slot = calloc(SLOTS, sizeof(char *));
	for (long i = 0; i < ops; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		int k = (int)(x % SLOTS);
		size_t n = 16 + ((x >> 20) % 16 == 0 ? (x >> 32) % 4080 : (x >> 32) % 240);
		if (sites && asm_mallocation_set)
			asm_mallocation_set(7, (uint16_t)(1 + (x >> 8) % 8), (ssize_t)n);
		char *p;
		if (slot[k] && (x & 7) == 0) {
			p = realloc(slot[k], n);
		} else {
			free(slot[k]);
			p = (x & 6) == 0 ? calloc(1, n) : malloc(n);
		}
		memset(p, (int)(x & 0xff), n);
		sum += (unsigned char)p[n / 2];
		for (int w = 0; w < work; w++)
			for (size_t j = 0; j < n; j++)
				sum = sum * 31 + (unsigned char)p[j];
		slot[k] = p;
	}
	for (int k = 0; k < SLOTS; k++)
		free(slot[k]);
	free(slot);
	sums[t] = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	ops = argc > 2 ? atol(argv[2]) : 1000000;
	sites = argc > 3 && strcmp(argv[3], "sites") == 0;
	work = argc > 4 ? atoi(argv[4]) : 0;
	if (threads < 1 || threads > 64)
		return 2;
	pthread_t th[64];
	for (int t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	uint64_t total = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		total += sums[t];
	}
	printf("%lu\n", (unsigned long)total);
	return 0;
}
