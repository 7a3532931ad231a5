/* The shadow-model exactness scenario for the preload libraries: THREADS
 * threads make random allocation-family calls (malloc, calloc, realloc,
 * posix_memalign, memalign, aligned_alloc, strdup, realloc to 0, free) on
 * SITES sites over a shared pool of slots, so blocks are freed and resized
 * on other threads than the one that allocated them. The program keeps its
 * own count per site of what the library must charge — the usable size the
 * library reports for each live block — and prints it at the end with every
 * block still live; the test compares it with the library's exit report.
 *
 * Usage: exactness [ops-per-thread] [seed]
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "asmalloc.h"
#include "test_support.h"

#define THREADS 4
#define SITES 40
#define POOL 4096

struct slot {
	pthread_mutex_t lock;
	void *p;
	int site;
	size_t charged;
};

static struct slot pool[POOL];
static long long net_bytes[SITES + 1];
static long long net_count[SITES + 1];
static long ops_per_thread = 100000;
static unsigned long long seed = 1;
static char text[700000];

/* Sizes from tiny to past glibc's mmap threshold. */
static size_t random_size(uint64_t *s)
{
	switch (xorshift64(s) % 10) {
	case 0: return 1 + xorshift64(s) % 8;
	case 7: case 8: return 512 + xorshift64(s) % (64 * 1024);
	case 9: return 128 * 1024 + xorshift64(s) % (512 * 1024);
	default: return 1 + xorshift64(s) % 512;
	}
}

static void charge(int site, void *p)
{
	__atomic_add_fetch(&net_bytes[site], (long long)malloc_usable_size(p), __ATOMIC_RELAXED);
	__atomic_add_fetch(&net_count[site], 1, __ATOMIC_RELAXED);
}

static void uncharge(struct slot *s)
{
	__atomic_sub_fetch(&net_bytes[s->site], (long long)s->charged, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&net_count[s->site], 1, __ATOMIC_RELAXED);
	s->p = NULL;
}

/* A fresh block of `size` bytes at `site` by one of the allocation calls. */
static void *fresh(uint64_t *s, int site, size_t size)
{
	void *p = NULL;
	asm_mallocation_set(0, (uint16_t)site, (ssize_t)size);
	switch (xorshift64(s) % 7) {
	case 0: p = malloc(size); break;
	case 1: p = calloc(1 + size % 7, size / 7 + 1); break;
	case 2: if (posix_memalign(&p, 64, size) != 0) p = NULL; break;
	case 3: p = memalign(4096, size); break;
	case 4: p = aligned_alloc(64, (size + 63) & ~(size_t)63); break;
	case 5: p = realloc(NULL, size); break;
	default: p = strndup(text, size < sizeof text ? size : sizeof text - 1); break;
	}
	return p;
}

static void *worker(void *arg)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)(intptr_t)arg + 1;
	for (long i = 0; i < ops_per_thread; i++) {
		struct slot *slot = &pool[xorshift64(&s) % POOL];
		int site = 1 + (int)(xorshift64(&s) % SITES);
		size_t size = random_size(&s);
		unsigned op = (unsigned)(xorshift64(&s) % 10);
		pthread_mutex_lock(&slot->lock);
		if (slot->p == NULL || op < 4) {
			if (slot->p != NULL) {
				void *old = slot->p;
				uncharge(slot);
				free(old);
			}
			void *p = fresh(&s, site, size);
			if (p == NULL)
				die("allocation of %zu failed", size);
			charge(site, p);
			slot->p = p;
			slot->site = site;
			slot->charged = malloc_usable_size(p);
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
			charge(site, q);
			slot->p = q;
			slot->site = site;
			slot->charged = malloc_usable_size(q);
		}
		pthread_mutex_unlock(&slot->lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		ops_per_thread = atol(argv[1]);
	if (argc > 2)
		seed = strtoull(argv[2], NULL, 10);
	memset(text, 'x', sizeof text);
	for (int i = 0; i < POOL; i++)
		pthread_mutex_init(&pool[i].lock, NULL);
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int site = 1; site <= SITES; site++)
		printf("site %d bytes=%lld count=%lld\n", site, net_bytes[site], net_count[site]);
	printf("exactness done\n");
	return 0;
}
