/* Threads free each other's blocks; per-site net bytes must stay exact. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include "asmalloc.h"

#define THREADS 4
#define BLOCKS 2000
#define KEEP 10
#define SITE 5

static void *blocks[THREADS][BLOCKS];
static ssize_t thread_total[THREADS + 1];
static pthread_barrier_t barrier;

void *worker(void *arg);
void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int i = 0; i < BLOCKS; i++) {
		asm_mallocation_set(7, SITE, 0);
		blocks[t][i] = malloc(16 + (size_t)((i * 37 + t * 11) % 3000));
	}
	pthread_barrier_wait(&barrier);
	/* Free the next thread's blocks, but keep KEEP of them. */
	int victim = (t + 1) % THREADS;
	for (int i = KEEP; i < BLOCKS; i++) {
		free(blocks[victim][i]);
		blocks[victim][i] = NULL;
	}
	pthread_barrier_wait(&barrier);
	asm_mallocation_get(NULL, SITE, &thread_total[t], NULL, NULL);
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	size_t expect = 0, count = 0;
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < KEEP; i++) {
			expect += malloc_usable_size(blocks[t][i]);
			count++;
		}
	ssize_t sum = 0;
	for (int t = 0; t < THREADS; t++)
		sum += thread_total[t];
	printf("expect_bytes=%zu expect_count=%zu sum_of_thread_totals=%zd\n", expect, count, sum);
	for (int t = 0; t < THREADS; t++)
		printf("thread %d net=%zd\n", t, thread_total[t]);
	return 0;
}
