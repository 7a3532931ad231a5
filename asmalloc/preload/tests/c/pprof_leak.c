/* For the pprof tests: an uninstrumented program (no site table) whose
 * keep() holds 500 blocks of 1000 bytes at exit, while churn() allocates
 * and frees 2000 blocks of 100 bytes. Under ASMALLOC_CALLERS=1 each is a
 * caller site named from the debug information (-g).
 *
 * Usage: pprof_leak [EXIT_STATUS [PAUSE_MS]]: with PAUSE_MS, it waits that
 * long before exiting (for a monitor sample to write the profile while it
 * runs). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *kept[500];

__attribute__((noinline)) void *keep(size_t n) { return malloc(n); }
__attribute__((noinline)) void churn(void)
{
	char *p = malloc(100);
	memset(p, 1, 100);
	free(p);
}

int main(int argc, char **argv)
{
	for (int i = 0; i < 500; i++) {
		kept[i] = keep(1000);
		memset(kept[i], 2, 1000);
	}
	for (int i = 0; i < 2000; i++)
		churn();
	if (argc > 2) {
		long ms = atol(argv[2]);
		struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&pause, NULL);
	}
	return argc > 1 ? atoi(argv[1]) : 0;
}
