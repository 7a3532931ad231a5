/* The process ends from a thread other than main.
 *
 * "exit": main keeps 100 blocks at site 7; three threads allocate and free
 * their own blocks (sites 8-10) without pause; a fourth thread calls
 * exit(5) while they run (the atexit handler prints, the report is written
 * while the others still allocate). The exit status must be 5.
 *
 * "pthread_exit": main keeps 100 blocks at site 7, starts a thread and
 * calls pthread_exit; the thread keeps 50 blocks at site 9 and returns, and
 * the process exits (status 0) when that last thread ends — exit handlers
 * and the library's report run on it.
 *
 * Prints "site ..." lines for the blocks still held at exit.
 * Usage: fault_exit exit|pthread_exit */
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

static atomic_int spinning;

static void *churn(void *arg)
{
	uint16_t site = (uint16_t)(8 + (intptr_t)arg);
	uint64_t s = 77 + site;
	void *keep[32] = {0};
	atomic_fetch_add(&spinning, 1);
	for (;;) {
		size_t i = xorshift64(&s) % 32;
		free(keep[i]);
		set_site(site);
		keep[i] = must(malloc(1 + xorshift64(&s) % 5000), "malloc");
	}
	return NULL;
}

static void *exiter(void *arg)
{
	while (atomic_load(&spinning) < 3)
		usleep(1000);
	usleep(20 * 1000);
	fflush(stdout);
	exit((int)(intptr_t)arg);
}

static void said_at_exit(void)
{
	printf("atexit handler ran\n");
}

static void *last_thread(void *arg)
{
	usleep(20 * 1000);
	long long bytes = 0;
	for (int i = 0; i < 50; i++) {
		set_site(9);
		void *p = must(malloc(64 + (size_t)i), "malloc");
		bytes += (long long)malloc_usable_size(p);
	}
	printf("site 9 bytes=%lld count=50\n", bytes);
	return arg;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "exit";
	atexit(said_at_exit);
	long long bytes = 0;
	for (int i = 0; i < 100; i++) {
		set_site(7);
		void *p = must(malloc(200 + (size_t)i), "malloc");
		bytes += (long long)malloc_usable_size(p);
	}
	printf("site 7 bytes=%lld count=100\n", bytes);
	pthread_t th;
	if (strcmp(mode, "exit") == 0) {
		for (intptr_t t = 0; t < 3; t++)
			if (pthread_create(&th, NULL, churn, (void *)t) != 0)
				die("pthread_create");
		if (pthread_create(&th, NULL, exiter, (void *)5) != 0)
			die("pthread_create");
		for (;;)
			pause();
	}
	if (pthread_create(&th, NULL, last_thread, NULL) != 0)
		die("pthread_create");
	fflush(stdout);
	pthread_exit(NULL);
}
