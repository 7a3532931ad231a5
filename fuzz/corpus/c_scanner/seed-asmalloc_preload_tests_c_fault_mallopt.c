/* mallopt and malloc_trim while the program allocates: M_ARENA_MAX 2,
 * M_MMAP_THRESHOLD 64 KiB (fixed), M_TRIM_THRESHOLD, M_TOP_PAD, M_PERTURB
 * (glibc fills every new block and every freed one with a byte pattern),
 * then four threads allocate, resize and free random blocks at sites 1-16
 * (a shared pool, so frees happen on other threads) while the main thread
 * calls malloc_trim(0) every millisecond and switches M_MMAP_MAX between 0 and 65536 and
 * M_MMAP_THRESHOLD between 64 KiB and 1 MiB. Under libasmalloc_jem.so these
 * are glibc's calls on glibc's (unused) heap: they must change nothing.
 *
 * Prints "site <id> bytes=<b> count=<c>" for sites 1-16 and
 * "mallopt done". Usage: fault_mallopt [ops-per-thread] */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define THREADS 4
#define SITES 16
#define POOL 512

struct slot {
	pthread_mutex_t lock;
	void *p;
	int site;
	size_t charged;
};

static struct slot pool[POOL];
static long long net_bytes[SITES + 1], net_count[SITES + 1];
static long ops = 10000;
static atomic_int done;

static size_t random_size(uint64_t *s)
{
	switch (xorshift64(s) % 8) {
	case 0: return 64 * 1024 + xorshift64(s) % (512 * 1024);
	case 1: return 4096 + xorshift64(s) % 60000;
	default: return 1 + xorshift64(s) % 1024;
	}
}

static void *worker(void *arg)
{
	uint64_t s = 1234567 + (uint64_t)(intptr_t)arg;
	for (long i = 0; i < ops; i++) {
		struct slot *slot = &pool[xorshift64(&s) % POOL];
		int site = 1 + (int)(xorshift64(&s) % SITES);
		size_t size = random_size(&s);
		pthread_mutex_lock(&slot->lock);
		if (slot->p != NULL) {
			__atomic_sub_fetch(&net_bytes[slot->site], (long long)slot->charged, __ATOMIC_RELAXED);
			__atomic_sub_fetch(&net_count[slot->site], 1, __ATOMIC_RELAXED);
		}
		set_site((uint16_t)site);
		void *p;
		if (slot->p != NULL && xorshift64(&s) % 2) {
			p = realloc(slot->p, size);
		} else {
			free(slot->p);
			set_site((uint16_t)site);
			p = xorshift64(&s) % 2 ? malloc(size) : calloc(1, size);
		}
		if (p == NULL)
			die("allocation of %zu failed", size);
		memset(p, 0x11, size < 64 ? size : 64);
		slot->p = p;
		slot->site = site;
		slot->charged = malloc_usable_size(p);
		__atomic_add_fetch(&net_bytes[site], (long long)slot->charged, __ATOMIC_RELAXED);
		__atomic_add_fetch(&net_count[site], 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&slot->lock);
	}
	atomic_fetch_add(&done, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		ops = atol(argv[1]);
	int ok = 1;
	ok &= mallopt(M_ARENA_MAX, 2);
	ok &= mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	ok &= mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	ok &= mallopt(M_TOP_PAD, 64 * 1024);
	ok &= mallopt(M_PERTURB, 0xa5);
	if (!ok)
		die("mallopt refused a setting");
	for (int i = 0; i < POOL; i++)
		pthread_mutex_init(&pool[i].lock, NULL);
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) != 0)
			die("pthread_create");
	long round = 0;
	while (atomic_load(&done) < THREADS) {
		malloc_trim(0);
		mallopt(M_MMAP_MAX, round % 2 ? 65536 : 0);
		mallopt(M_MMAP_THRESHOLD, round % 3 ? 64 * 1024 : 1024 * 1024);
		round++;
		usleep(1000);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	malloc_trim(0);
	for (int site = 1; site <= SITES; site++)
		printf("site %d bytes=%lld count=%lld\n", site, net_bytes[site], net_count[site]);
	printf("mallopt done\n");
	return 0;
}
