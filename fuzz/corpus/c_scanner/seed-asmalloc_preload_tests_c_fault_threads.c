/* Many short-lived threads: THREADS threads, at most 8 alive at a time,
 * half of them joined and half detached. Thread n allocates two blocks at
 * site 20 + n % 8, frees one, frees the block thread n - 8 left in its slot
 * (a free on another thread, after that thread ended) and leaves its other
 * block in the slot. At the end the slots hold the last 8 threads' blocks.
 *
 * Prints "site <id> bytes=<b> count=<c>" for sites 20-27 and
 * "threads done <n>". Usage: fault_threads [threads] */
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define LIVE 8

static void *slot[LIVE];
static int slot_site[LIVE];
static sem_t room[LIVE]; /* slot i is free for the next thread */

static void *worker(void *arg)
{
	intptr_t n = (intptr_t)arg;
	uint16_t site = (uint16_t)(20 + n % LIVE);
	set_site(site);
	void *a = must(malloc(16 + (size_t)(n % 200)), "malloc");
	set_site(site);
	void *b = must(calloc(1, 32 + (size_t)(n % 300)), "calloc");
	free(a);
	/* The slot is this thread's alone: thread n - LIVE, its previous
	 * owner, posted room[n % LIVE] before this thread was created. */
	free(slot[n % LIVE]);
	slot[n % LIVE] = b;
	slot_site[n % LIVE] = site;
	sem_post(&room[n % LIVE]);
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = argc > 1 ? atol(argv[1]) : 100000;
	for (int i = 0; i < LIVE; i++)
		sem_init(&room[i], 0, 1);
	pthread_attr_t detached;
	pthread_attr_init(&detached);
	pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
	pthread_t joinable[LIVE];
	int has_joinable[LIVE] = {0};
	for (long n = 0; n < threads; n++) {
		int i = (int)(n % LIVE);
		while (sem_wait(&room[i]) != 0)
			;
		if (has_joinable[i]) {
			pthread_join(joinable[i], NULL);
			has_joinable[i] = 0;
		}
		pthread_t th;
		int detach = n % 2;
		if (pthread_create(&th, detach ? &detached : NULL, worker, (void *)(intptr_t)n) != 0)
			die("pthread_create %ld", n);
		if (!detach) {
			joinable[i] = th;
			has_joinable[i] = 1;
		}
	}
	for (int i = 0; i < LIVE; i++)
		while (sem_wait(&room[i]) != 0)
			;
	for (int i = 0; i < LIVE; i++)
		if (has_joinable[i])
			pthread_join(joinable[i], NULL);
	long long bytes[LIVE] = {0}, count[LIVE] = {0};
	for (int i = 0; i < LIVE; i++)
		if (slot[i] != NULL) {
			bytes[slot_site[i] - 20] += (long long)malloc_usable_size(slot[i]);
			count[slot_site[i] - 20]++;
		}
	for (int i = 0; i < LIVE; i++)
		printf("site %d bytes=%lld count=%lld\n", 20 + i, bytes[i], count[i]);
	printf("threads done %ld\n", threads);
	return 0;
}
