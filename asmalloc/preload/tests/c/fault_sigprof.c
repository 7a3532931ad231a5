/* Allocation in signal handlers that interrupt the same site's updates.
 *
 * The main thread (the only thread) churns for RUN_MS milliseconds:
 * names site SITE, allocates a block, frees it. Two interval timers
 * interrupt it — ITIMER_PROF (SIGPROF, every tick of CPU time) and
 * ITIMER_REAL (SIGALRM, every 50 us) — with a handler that names the very
 * same site and allocates HANDLER_ALLOCS blocks there, and keeps them. A
 * handler that lands while the interrupted allocation is updating the
 * site's counters (or the thread's malloc call count) updates the same
 * counters: with plain load/store pairs one of the two updates would be
 * lost; the library diverts the handler's update to its shared table, so
 * every count stays exact.
 *
 * The heap is kept safe as a careful program must (POSIX does not allow
 * malloc in a handler): the main loop's size has a thread-cache bin of its
 * own that it takes one block from and gives it back to (no lock), and the
 * handler's size another bin.
 *
 * Prints "site <id> bytes=<b> count=<c>" for the site (the main loop frees
 * all of its blocks; the handlers keep theirs), "stat loops=<n> frees=<n>
 * handler_mallocs=<n> handler_runs=<n>" and "sigprof done".
 * Usage: fault_sigprof [run_ms] */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define SITE 4242
#define MAIN_SIZE 200
#define HANDLER_SIZE 72
#define HANDLER_ALLOCS 4
#define MAX_KEPT (1 << 20)

static void *kept[MAX_KEPT];
static volatile long nkept, handler_runs;

static void handler(int sig)
{
	(void)sig;
	int saved = errno;
	handler_runs++;
	for (int i = 0; i < HANDLER_ALLOCS && nkept < MAX_KEPT; i++) {
		set_site(SITE);
		void *p = malloc(HANDLER_SIZE);
		if (p != NULL)
			kept[nkept++] = p;
	}
	errno = saved;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	long run_ms = argc > 1 ? atol(argv[1]) : 500;
	/* Each size's cache bin holds a free block before the signals come. */
	free(must(malloc(HANDLER_SIZE), "malloc"));
	free(must(malloc(MAIN_SIZE), "malloc"));

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGPROF);
	sigaddset(&sa.sa_mask, SIGALRM);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPROF, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval prof = {{0, 1000}, {0, 1000}};
	struct itimerval real = {{0, 50}, {0, 50}};
	setitimer(ITIMER_PROF, &prof, NULL);
	setitimer(ITIMER_REAL, &real, NULL);

	long loops = 0, frees = 0, end = now_ms() + run_ms;
	for (;;) {
		for (int i = 0; i < 1024; i++) {
			set_site(SITE);
			char *p = malloc(MAIN_SIZE);
			if (p == NULL)
				die("malloc");
			p[0] = (char)i;
			free(p);
			loops++;
			frees++;
		}
		if (now_ms() >= end)
			break;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_PROF, &off, NULL);
	setitimer(ITIMER_REAL, &off, NULL);

	long long bytes = 0;
	for (long i = 0; i < nkept; i++)
		bytes += (long long)malloc_usable_size(kept[i]);
	printf("site %d bytes=%lld count=%ld\n", SITE, bytes, nkept);
	printf("stat loops=%ld frees=%ld handler_mallocs=%ld handler_runs=%ld\n", loops, frees,
	       nkept, handler_runs);
	if (handler_runs < 100)
		die("only %ld signals handled", handler_runs);
	printf("sigprof done\n");
	return 0;
}
