/* A multi-threaded allocation workload with deterministic output. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#define THREADS 4
static uint64_t sums[THREADS];

void *worker(void *arg);
void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t x = 88172645463325252ull + (uint64_t)t, sum = 0;
	char *slots[256] = { 0 };
	for (int i = 0; i < 200000; i++) {
		xorshift64(&x);
		int k = (int)(x % 256);
		size_t n = 1 + (size_t)(x >> 40) % 2000;
		if (slots[k]) {
			sum += (unsigned char)slots[k][0];
			if (x & 1) {
				slots[k] = realloc(slots[k], n);
			} else {
				free(slots[k]);
				slots[k] = (x & 2) ? calloc(1, n) : malloc(n);
			}
		} else {
			slots[k] = malloc(n);
		}
		memset(slots[k], (int)(x & 0xff), n);
	}
	for (int k = 0; k < 256; k++)
		free(slots[k]);
	sums[t] = sum;
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		printf("thread %d sum %lu\n", t, (unsigned long)sums[t]);
	}
	return 0;
}
