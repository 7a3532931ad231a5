/* pthread_cancel: THREADS threads (BATCH at a time) each keep one block at
 * site 13 for good, then allocate blocks at site 12 into a list whose
 * cleanup handler (pthread_cleanup_push) frees them, and loop through
 * cancellation points (nanosleep, pthread_testcancel) until cancelled; a
 * third of them are cancelled while blocked in pthread_cond_wait. Every
 * join must see PTHREAD_CANCELED.
 *
 * Prints "site 12 bytes=0 count=0", "site 13 bytes=<b> count=THREADS" and
 * "cancel done". Usage: fault_cancel [threads] */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define BATCH 16

struct list {
	void *blocks[256];
	int n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static long long kept_bytes;
static void *kept[100000];
static int kept_n;

static void free_list(void *arg)
{
	struct list *l = arg;
	for (int i = 0; i < l->n; i++)
		free(l->blocks[i]);
	free(l);
}

static void unlock(void *arg)
{
	pthread_mutex_unlock(arg);
}

static void *worker(void *arg)
{
	intptr_t n = (intptr_t)arg;
	set_site(13);
	void *mine = must(malloc(50 + (size_t)(n % 100)), "malloc");
	pthread_mutex_lock(&lock);
	kept[kept_n++] = mine;
	kept_bytes += (long long)malloc_usable_size(mine);
	pthread_mutex_unlock(&lock);

	set_site(12);
	struct list *l = must(calloc(1, sizeof *l), "calloc");
	pthread_cleanup_push(free_list, l);
	uint64_t s = 1 + (uint64_t)n;
	if (n % 3 == 0) {
		for (int i = 0; i < 8; i++) {
			set_site(12);
			l->blocks[l->n++] = must(malloc(8 + xorshift64(&s) % 400), "malloc");
		}
		pthread_mutex_lock(&lock);
		pthread_cleanup_push(unlock, &lock);
		for (;;)
			pthread_cond_wait(&never, &lock);
		pthread_cleanup_pop(1);
	}
	for (;;) {
		if (l->n == 256) {
			for (int i = 0; i < l->n; i++)
				free(l->blocks[i]);
			l->n = 0;
		}
		set_site(12);
		l->blocks[l->n++] = must(malloc(8 + xorshift64(&s) % 400), "malloc");
		if (xorshift64(&s) % 8 == 0) {
			struct timespec ts = {0, 1000};
			nanosleep(&ts, NULL);
		}
		pthread_testcancel();
	}
	pthread_cleanup_pop(1);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 480;
	int cancelled = 0;
	for (int base = 0; base < threads; base += BATCH) {
		pthread_t th[BATCH];
		int n = threads - base < BATCH ? threads - base : BATCH;
		for (int i = 0; i < n; i++)
			if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)(base + i)) != 0)
				die("pthread_create");
		struct timespec ts = {0, 200 * 1000};
		nanosleep(&ts, NULL);
		for (int i = 0; i < n; i++)
			pthread_cancel(th[i]);
		for (int i = 0; i < n; i++) {
			void *rv;
			pthread_join(th[i], &rv);
			cancelled += rv == PTHREAD_CANCELED;
		}
	}
	printf("site 12 bytes=0 count=0\n");
	printf("site 13 bytes=%lld count=%d\n", kept_bytes, kept_n);
	printf("cancel done: %d of %d cancelled\n", cancelled, threads);
	return 0;
}
