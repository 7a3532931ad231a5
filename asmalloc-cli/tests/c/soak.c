/* A soak test for `asmalloc run --budget` (tests/budget.rs), uninstrumented
 * (caller sites name its functions). For MS milliseconds it churns —
 * churn_one() keeps a ring of 64 blocks of 100 bytes, freeing the oldest
 * before each new one — and leak_more() keeps LEAK bytes every
 * millisecond. Then it exits with STATUS.
 *
 * Usage: soak MS LEAK STATUS */
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *ring[64];
static unsigned next;

__attribute__((noinline)) void churn_one(void)
{
	free(ring[next % 64]);
	ring[next % 64] = malloc(100);
	memset(ring[next % 64], 1, 100);
	next++;
}

static void **kept;
static long nkept;
__attribute__((noinline)) void leak_more(size_t n) { kept[nkept++] = malloc(n); }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 1000;
	long leak = argc > 2 ? atol(argv[2]) : 0;
	int status = argc > 3 ? atoi(argv[3]) : 0;
	kept = calloc((size_t)ms * 2 + 16, sizeof *kept);
	struct timespec tick = {0, 1000000};
	double start = now();
	while (now() - start < ms) {
		for (int i = 0; i < 10; i++)
			churn_one();
		if (leak > 0)
			leak_more((size_t)leak);
		nanosleep(&tick, NULL);
	}
	return status;
}
