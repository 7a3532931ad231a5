/* The exactness soak: THREADS threads make OPS random allocation-family
 * calls in all (malloc, calloc, realloc — growing, shrinking, to NULL, to
 * 0 —, posix_memalign, aligned_alloc, memalign, strndup, free) on SITES
 * sites, over a shared pool of slots, so most frees and resizes happen on
 * another thread than the allocation. Every call names its site
 * (asm_mallocation_set). The program keeps a shadow model: per site, the
 * net bytes (the usable size the library reports for each live block) and
 * blocks it must be charged.
 *
 * CHECKS times during the run all threads stop at a barrier and add up
 * their own records of every site (asm_mallocation_get: each thread's net
 * bytes, which are negative on a thread that freed more than it
 * allocated); the sum over the threads must equal the model for every
 * site. The program prints "check <n> sites=<s> drift=<d>" for each
 * (d = sites whose sum differs), then "site <id> bytes=<b> count=<c>" for
 * every site (all blocks still live, for the exit report and the monitor's
 * last sample) and "soak done ops=<n> threads=<t> sites=<s>".
 *
 * Usage: soak [ops] [seed] */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "asmalloc.h"
#include "test_support.h"

#define THREADS 8
#define SITES 1000
#define POOL 32768
#define CHECKS 10

struct slot {
	pthread_mutex_t lock;
	void *p;
	int site;
	size_t charged;
};

static struct slot pool[POOL];
static long long net_bytes[SITES + 1];
static long long net_count[SITES + 1];
static long long summed[SITES + 1];
static long ops_per_round;
static unsigned long long seed = 1;
static char text[70000];
static pthread_barrier_t barrier;
static atomic_long drift_total;

static size_t random_size(uint64_t *s)
{
	unsigned r = (unsigned)(xorshift64(s) % 1000);
	if (r == 0)
		return 64 * 1024 + xorshift64(s) % (192 * 1024);
	if (r < 50)
		return 512 + xorshift64(s) % 8192;
	if (r < 150)
		return 1 + xorshift64(s) % 8;
	return 1 + xorshift64(s) % 512;
}

static void charge(int site, void *p, struct slot *s)
{
	s->p = p;
	s->site = site;
	s->charged = malloc_usable_size(p);
	__atomic_add_fetch(&net_bytes[site], (long long)s->charged, __ATOMIC_RELAXED);
	__atomic_add_fetch(&net_count[site], 1, __ATOMIC_RELAXED);
}

static void uncharge(struct slot *s)
{
	__atomic_sub_fetch(&net_bytes[s->site], (long long)s->charged, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&net_count[s->site], 1, __ATOMIC_RELAXED);
	s->p = NULL;
}

static void *fresh(uint64_t *s, int site, size_t size)
{
	void *p = NULL;
	asm_mallocation_set(0, (uint16_t)site, (ssize_t)size);
	switch (xorshift64(s) % 8) {
	case 0: p = malloc(size); break;
	case 1: p = calloc(1 + size % 5, size / 5 + 1); break;
	case 2: if (posix_memalign(&p, 32, size) != 0) p = NULL; break;
	case 3: p = memalign(256, size); break;
	case 4: p = aligned_alloc(64, (size + 63) & ~(size_t)63); break;
	case 5: p = realloc(NULL, size); break;
	case 6: p = strndup(text, size < sizeof text ? size : sizeof text - 1); break;
	default: p = malloc(size); break;
	}
	if (p == NULL)
		die("allocation of %zu failed", size);
	return p;
}

static void one_op(uint64_t *s)
{
	struct slot *slot = &pool[xorshift64(s) % POOL];
	int site = 1 + (int)(xorshift64(s) % SITES);
	size_t size = random_size(s);
	unsigned op = (unsigned)(xorshift64(s) % 10);
	pthread_mutex_lock(&slot->lock);
	if (slot->p == NULL || op < 4) {
		if (slot->p != NULL) {
			void *old = slot->p;
			uncharge(slot);
			free(old);
		}
		charge(site, fresh(s, site, size), slot);
	} else if (op < 7) {
		void *p = slot->p;
		uncharge(slot);
		if (op == 6) {
			asm_mallocation_set(0, (uint16_t)site, 0);
			if (realloc(p, 0) != NULL)
				die("realloc(p, 0) returned a block");
		} else {
			free(p);
		}
	} else {
		void *p = slot->p;
		uncharge(slot);
		asm_mallocation_set(0, (uint16_t)site, (ssize_t)size);
		void *q = realloc(p, size);
		if (q == NULL)
			die("realloc to %zu failed", size);
		charge(site, q, slot);
	}
	pthread_mutex_unlock(&slot->lock);
}

/* All threads stopped: adds this thread's record of every site to the
 * sums; thread 0 then compares them with the model. */
static void check(int t, int n)
{
	for (int site = 1; site <= SITES; site++) {
		ssize_t total = 0;
		asm_mallocation_get(NULL, (uint16_t)site, &total, NULL, NULL);
		__atomic_add_fetch(&summed[site], (long long)total, __ATOMIC_RELAXED);
	}
	pthread_barrier_wait(&barrier);
	if (t == 0) {
		long drift = 0;
		for (int site = 1; site <= SITES; site++) {
			if (summed[site] != net_bytes[site]) {
				if (drift < 5)
					printf("check %d: site %d: threads' sum %lld, model %lld\n", n,
					       site, summed[site], net_bytes[site]);
				drift++;
			}
			summed[site] = 0;
		}
		printf("check %d sites=%d drift=%ld\n", n, SITES, drift);
		fflush(stdout);
		atomic_fetch_add(&drift_total, drift);
	}
	pthread_barrier_wait(&barrier);
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)t + 1;
	for (int n = 1; n <= CHECKS; n++) {
		for (long i = 0; i < ops_per_round; i++)
			one_op(&s);
		pthread_barrier_wait(&barrier);
		check(t, n);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long ops = argc > 1 ? atol(argv[1]) : 1000000;
	if (argc > 2)
		seed = strtoull(argv[2], NULL, 10);
	ops_per_round = ops / THREADS / CHECKS;
	if (ops_per_round < 1)
		die("too few operations: %ld", ops);
	memset(text, 'y', sizeof text);
	for (int i = 0; i < POOL; i++)
		pthread_mutex_init(&pool[i].lock, NULL);
	pthread_barrier_init(&barrier, NULL, THREADS);
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) != 0)
			die("pthread_create");
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	/* A monitor log line lists at most 256 changed sites (the rest come in
	 * the next lines): give the monitor, sampling every 10 ms, time to
	 * write them all before the exit. */
	usleep(300 * 1000);
	for (int site = 1; site <= SITES; site++)
		printf("site %d bytes=%lld count=%lld\n", site, net_bytes[site], net_count[site]);
	printf("soak done ops=%ld threads=%d sites=%d drift=%ld\n", ops_per_round * THREADS * CHECKS,
	       THREADS, SITES, atomic_load(&drift_total));
	return 0;
}
