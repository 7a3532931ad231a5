/* Allocation while the process and its threads end.
 *
 * - atexit handlers: one allocates 50 blocks at site 50 and keeps them, one
 *   frees 10 of the 20 blocks main kept at site 51;
 * - the main thread's thread-local destructor (__cxa_thread_atexit_impl,
 *   what C++ thread_local objects use; it runs at exit, before the atexit
 *   handlers) allocates 5 blocks at site 54;
 * - THREADS threads each keep a block at site 53; their pthread key
 *   destructors free it and allocate a block at site 52 (kept), and set the
 *   key again, so a second round of destructors runs and allocates one more
 *   at site 52; their thread-local destructors allocate one block at site
 *   55 (kept) and free a block at site 56 the thread allocated.
 *
 * The blocks kept are known only when the last handler ran, so each
 * handler prints its own "site ..." lines, for the process's report (which
 * the library writes after them all).
 * Usage: fault_atexit [threads] */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);
extern void *__dso_handle;

static pthread_key_t key;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long long bytes52, count52, bytes55, count55;
static void *main_blocks[20];
static long long main_bytes[20];

static void add(long long *bytes, long long *count, void *p)
{
	pthread_mutex_lock(&lock);
	*bytes += (long long)malloc_usable_size(p);
	*count += 1;
	pthread_mutex_unlock(&lock);
}

/* pthread key destructor: value is the thread's site-53 block (first
 * round) or (void *)1 (second round). */
static void key_destructor(void *value)
{
	if (value != (void *)1) {
		free(value);
		pthread_setspecific(key, (void *)1); /* another round */
	}
	set_site(52);
	add(&bytes52, &count52, must(malloc(80), "malloc"));
}

static void tls_destructor(void *obj)
{
	free(obj); /* the thread's site-56 block */
	set_site(55);
	add(&bytes55, &count55, must(malloc(120), "malloc"));
}

static void main_tls_destructor(void *obj)
{
	(void)obj;
	long long bytes = 0;
	for (int i = 0; i < 5; i++) {
		set_site(54);
		bytes += (long long)malloc_usable_size(must(malloc(300 + (size_t)i), "malloc"));
	}
	printf("site 54 bytes=%lld count=5\n", bytes);
}

static void *worker(void *arg)
{
	set_site(53);
	pthread_setspecific(key, must(malloc(40), "malloc"));
	set_site(56);
	void *obj = must(malloc(60), "malloc");
	if (__cxa_thread_atexit_impl(tls_destructor, obj, __dso_handle) != 0)
		die("__cxa_thread_atexit_impl");
	return arg;
}

static void allocate_at_exit(void)
{
	long long bytes = 0;
	for (int i = 0; i < 50; i++) {
		set_site(50);
		bytes += (long long)malloc_usable_size(must(malloc(1000 + (size_t)i), "malloc"));
	}
	printf("site 50 bytes=%lld count=50\n", bytes);
	printf("site 52 bytes=%lld count=%lld\n", bytes52, count52);
	printf("site 53 bytes=0 count=0\n");
	printf("site 55 bytes=%lld count=%lld\n", bytes55, count55);
	printf("site 56 bytes=0 count=0\n");
	fflush(stdout);
}

static void free_at_exit(void)
{
	long long bytes = 0;
	for (int i = 0; i < 20; i++) {
		if (i % 2)
			free(main_blocks[i]);
		else
			bytes += main_bytes[i];
	}
	printf("site 51 bytes=%lld count=10\n", bytes);
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 200;
	if (pthread_key_create(&key, key_destructor) != 0)
		die("pthread_key_create");
	for (int i = 0; i < 20; i++) {
		set_site(51);
		main_blocks[i] = must(malloc(500 + (size_t)i), "malloc");
		main_bytes[i] = (long long)malloc_usable_size(main_blocks[i]);
	}
	/* Registered first, so it runs last: it prints what the others did. */
	atexit(allocate_at_exit);
	atexit(free_at_exit);
	if (__cxa_thread_atexit_impl(main_tls_destructor, NULL, __dso_handle) != 0)
		die("__cxa_thread_atexit_impl");
	for (int base = 0; base < threads; base += 8) {
		pthread_t th[8];
		for (int i = 0; i < 8; i++)
			if (pthread_create(&th[i], NULL, worker, NULL) != 0)
				die("pthread_create");
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
	}
	printf("atexit main done, %d threads\n", threads);
	return 0;
}
