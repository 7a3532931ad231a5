/* fork in a multi-threaded program, then allocate in the child: four
 * threads allocate and free without pause while the main thread forks
 * FORKS children. Each child (only the forking thread survives in it)
 * allocates 1,000 blocks at site 30, frees every other one, starts a thread
 * of its own that allocates 100 blocks at site 31 and frees 50, and exits
 * with status (child number % 7). The parent checks every child's status.
 *
 * Every child prints "child <pid> site <id> bytes=<b> count=<c>" for the
 * blocks it still holds (what its report must show); the parent prints
 * "fork <n> status <s>" for each child, then "forks done". Runs the same
 * without the library.
 *
 * Usage: fault_fork [forks] */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define THREADS 4

static atomic_int stop;

static void *churn(void *arg)
{
	uint16_t site = (uint16_t)(1 + (intptr_t)arg);
	uint64_t s = 0x9e3779b97f4a7c15ULL + site;
	void *keep[64] = {0};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t i = xorshift64(&s) % 64;
		free(keep[i]);
		set_site(site);
		keep[i] = must(malloc(1 + xorshift64(&s) % 3000), "malloc");
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	return NULL;
}

static long long child_thread_bytes;

static void *child_thread(void *arg)
{
	void *b[100];
	for (int i = 0; i < 100; i++) {
		set_site(31);
		b[i] = must(malloc(100 + (size_t)i * 3), "child thread malloc");
	}
	for (int i = 0; i < 100; i += 2)
		free(b[i]);
	for (int i = 1; i < 100; i += 2)
		child_thread_bytes += (long long)malloc_usable_size(b[i]);
	return arg;
}

static void child(int n)
{
	void *b[1000];
	for (int i = 0; i < 1000; i++) {
		set_site(30);
		b[i] = must(malloc(16 + (size_t)i), "child malloc");
	}
	for (int i = 0; i < 1000; i += 2)
		free(b[i]);
	long long bytes = 0;
	for (int i = 1; i < 1000; i += 2)
		bytes += (long long)malloc_usable_size(b[i]);
	pthread_t th;
	if (pthread_create(&th, NULL, child_thread, NULL) != 0)
		die("pthread_create in the child");
	pthread_join(th, NULL);
	printf("child %d site 30 bytes=%lld count=500\n", (int)getpid(), bytes);
	printf("child %d site 31 bytes=%lld count=50\n", (int)getpid(), child_thread_bytes);
	exit(n % 7);
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 20;
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, churn, (void *)(intptr_t)t) != 0)
			die("pthread_create");
	for (int n = 0; n < forks; n++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			child(n);
		int status;
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
		if (WIFEXITED(status))
			printf("fork %d status %d\n", n, WEXITSTATUS(status));
		else
			printf("fork %d killed by signal %d\n", n, WTERMSIG(status));
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	printf("forks done\n");
	return 0;
}
