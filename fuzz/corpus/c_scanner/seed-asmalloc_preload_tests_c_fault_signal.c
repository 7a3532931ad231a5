/* Allocation in signal handlers. Two lanes run one short-lived thread
 * after another for RUN_MS milliseconds; each thread names 512 sites in
 * turn (site 128 * k + 1, each in a 64-site block of its table it has not
 * written before) and allocates and frees a block at each. A sender thread,
 * which blocks the signals, interrupts the lanes' threads with SIGUSR1
 * (pthread_kill, every few microseconds) and an interval timer sends
 * SIGALRM to the process. The handler allocates a block at site
 * 128 * k + 65 — the neighbouring block of the very site the interrupted
 * thread is naming, so the handler's first write to a block of the table
 * lands in the middle of the interrupted thread's first write to the block
 * next to it — and keeps it.
 *
 * POSIX does not allow malloc in a signal handler: the heap may be in the
 * middle of the interrupted call. The program keeps the heap safe the way
 * a careful program must: the interrupted code's size has a thread cache
 * bin of its own that never runs empty or full (it takes its one block and
 * gives it back, with no lock), and the handler's size another bin, so the
 * heap's state is never shared between the two; what is left is the
 * tracker's own state being interrupted half-way.
 *
 * Prints "site <id> bytes=<b> count=<c>" for every site used (the lanes
 * free every block: 0; the handlers keep theirs), "stat ..." (all threads'
 * own calls, for the report's operation counts, and how often the handler
 * ran) and "signals done". Usage: fault_signal [run_ms] */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define HANDLER_SIZE 72
#define SITES 512
#define MAX_KEPT 4096
#define LANES 2

struct worker {
	size_t size;
	/* The site index the thread is naming; read by its handler. */
	volatile unsigned k;
	/* Written by the handler only (on this thread). */
	void *kept[MAX_KEPT];
	uint16_t kept_site[MAX_KEPT];
	int nkept;
	long loops;
};

static atomic_int stop;
static pthread_mutex_t lanes_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t current[LANES];
static int running[LANES];
static __thread struct worker *me;
static sigset_t both;
static long long site_bytes[65536];
static long site_count[65536];
static long generations, loops, handler_mallocs, handler_runs;

static uint16_t loop_site(unsigned k)
{
	return (uint16_t)(128 * k + 1);
}

static void handler(int sig)
{
	(void)sig;
	int saved = errno;
	struct worker *w = me;
	if (w != NULL && w->nkept < MAX_KEPT) {
		uint16_t site = (uint16_t)(loop_site(w->k % SITES) + 64);
		set_site(site);
		void *p = malloc(HANDLER_SIZE);
		if (p != NULL) {
			w->kept[w->nkept] = p;
			w->kept_site[w->nkept] = site;
			w->nkept++;
		}
	}
	errno = saved;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	/* Each size's cache bin holds a free block before the signals come. */
	free(must(malloc(HANDLER_SIZE), "malloc"));
	free(must(malloc(w->size), "malloc"));
	pthread_sigmask(SIG_UNBLOCK, &both, NULL);
	me = w;
	for (unsigned k = 0; k < SITES; k++) {
		w->k = k;
		set_site(loop_site(k));
		void *p = malloc(w->size);
		if (p == NULL)
			die("malloc");
		memset(p, 1, 16);
		free(p);
		w->loops++;
	}
	me = NULL;
	return NULL;
}

static void *lane(void *arg)
{
	int l = (int)(intptr_t)arg;
	while (!atomic_load(&stop)) {
		struct worker *w = calloc(1, sizeof *w);
		if (w == NULL)
			die("calloc");
		w->size = l == 0 ? 200 : 500;
		pthread_t th;
		/* The sender signals the thread only while it is listed. */
		pthread_mutex_lock(&lanes_lock);
		if (pthread_create(&th, NULL, work, w) != 0)
			die("pthread_create");
		current[l] = th;
		running[l] = 1;
		pthread_mutex_unlock(&lanes_lock);
		void *rv;
		pthread_join(th, &rv);
		pthread_mutex_lock(&lanes_lock);
		running[l] = 0;
		pthread_mutex_unlock(&lanes_lock);
		for (int i = 0; i < w->nkept; i++) {
			site_bytes[w->kept_site[i]] += (long long)malloc_usable_size(w->kept[i]);
			site_count[w->kept_site[i]]++;
		}
		__atomic_add_fetch(&handler_mallocs, w->nkept, __ATOMIC_RELAXED);
		__atomic_add_fetch(&loops, w->loops, __ATOMIC_RELAXED);
		__atomic_add_fetch(&generations, 1, __ATOMIC_RELAXED);
		free(w);
	}
	return NULL;
}

static void *sender(void *arg)
{
	(void)arg;
	struct timespec nap = {0, 5000};
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&lanes_lock);
		for (int l = 0; l < LANES; l++)
			if (running[l] && pthread_kill(current[l], SIGUSR1) == 0)
				handler_runs++;
		pthread_mutex_unlock(&lanes_lock);
		nanosleep(&nap, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long run_ms = argc > 1 ? atol(argv[1]) : 500;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR1);
	sigaddset(&sa.sa_mask, SIGALRM);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);

	/* Every thread but the lanes' workers blocks the signals (the
	 * workers unblock them). */
	sigemptyset(&both);
	sigaddset(&both, SIGUSR1);
	sigaddset(&both, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &both, NULL);

	pthread_t lanes[LANES], snd;
	for (int l = 0; l < LANES; l++)
		if (pthread_create(&lanes[l], NULL, lane, (void *)(intptr_t)l) != 0)
			die("pthread_create");
	if (pthread_create(&snd, NULL, sender, NULL) != 0)
		die("pthread_create");
	struct itimerval every = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &every, NULL);
	usleep((useconds_t)run_ms * 1000);
	atomic_store(&stop, 1);
	for (int l = 0; l < LANES; l++)
		pthread_join(lanes[l], NULL);
	pthread_join(snd, NULL);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);

	for (unsigned k = 0; k < SITES; k++) {
		printf("site %d bytes=0 count=0\n", loop_site(k));
		uint16_t h = (uint16_t)(loop_site(k) + 64);
		printf("site %d bytes=%lld count=%ld\n", h, site_bytes[h], site_count[h]);
	}
	printf("stat generations=%ld loops=%ld handler_mallocs=%ld signals_sent=%ld\n", generations,
	       loops, handler_mallocs, handler_runs);
	if (handler_mallocs < 100)
		die("only %ld allocations in handlers", handler_mallocs);
	printf("signals done\n");
	return 0;
}
