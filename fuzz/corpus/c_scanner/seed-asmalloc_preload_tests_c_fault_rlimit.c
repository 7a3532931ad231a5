/* Address-space exhaustion (RLIMIT_AS): the program lowers its soft limit
 * to what it uses now plus HEADROOM, then
 * - allocates 1 MiB blocks at site 60 until malloc fails, and 4 KiB blocks
 *   at site 61 until it fails again (each failure must be NULL with errno
 *   ENOMEM);
 * - asks for impossible sizes at site 62 (malloc, calloc, realloc,
 *   reallocarray, posix_memalign, aligned_alloc, memalign, valloc): every
 *   one fails cleanly and a failed realloc leaves its block intact;
 * - frees one 1 MiB block and starts a thread with a small stack (creating
 *   it may fail: EAGAIN) that allocates at site 63 — the tracker has no
 *   memory for the thread's own table then;
 * - frees every other 1 MiB block, and exits with the rest still held and
 *   the limit still in force: the library's exit report is written with
 *   the address space full.
 *
 * With "nothread" the late thread is not started: jemalloc cannot make an
 * arena for a thread that starts with the address space (nearly) full and
 * crashes (Debian's libjemalloc.so.2 alone as well), so the jemalloc runs
 * leave it out.
 *
 * Prints "site ..." lines (sites 60-63), "stat ..." lines (counts that
 * depend on the machine) and "rlimit done".
 * Usage: fault_rlimit [headroom-MiB [nothread]] */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

#define MAX_BLOCKS 200000

static void *big[4096];
static void *small[MAX_BLOCKS];
static long long t_bytes, t_count;

static long vm_size_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmSize:", 7) == 0)
			kb = atol(line + 7);
	if (f != NULL)
		fclose(f);
	return kb;
}

#define FAILS(expr)                                                                  \
	do {                                                                         \
		errno = 0;                                                           \
		set_site(62);                                                        \
		void *r_ = (expr);                                                   \
		if (r_ != NULL || errno != ENOMEM)                                   \
			die("%s: %p, errno %d", #expr, r_, errno);                   \
	} while (0)

static void *thread_main(void *arg)
{
	for (int i = 0; i < 10; i++) {
		set_site(63);
		void *p = malloc(64);
		if (p != NULL) {
			t_bytes += (long long)malloc_usable_size(p);
			t_count++;
		} else if (errno != ENOMEM) {
			die("thread malloc: errno %d", errno);
		}
	}
	return arg;
}

int main(int argc, char **argv)
{
	long headroom = argc > 1 ? atol(argv[1]) : 256;
	int late_thread = !(argc > 2 && strcmp(argv[2], "nothread") == 0);
	struct rlimit lim;
	if (getrlimit(RLIMIT_AS, &lim) != 0)
		die("getrlimit");
	long kb = vm_size_kb();
	if (kb <= 0)
		die("no VmSize");
	lim.rlim_cur = (rlim_t)(kb + headroom * 1024) * 1024;
	if (setrlimit(RLIMIT_AS, &lim) != 0)
		die("setrlimit");

	long nbig = 0, nsmall = 0;
	long long big_bytes[4096];
	for (;;) {
		if (nbig == 4096)
			die("1 MiB blocks never ran out");
		errno = 0;
		set_site(60);
		void *p = malloc(1 << 20);
		if (p == NULL) {
			if (errno != ENOMEM)
				die("malloc failed with errno %d", errno);
			break;
		}
		memset(p, 0x77, 64);
		big_bytes[nbig] = (long long)malloc_usable_size(p);
		big[nbig++] = p;
	}
	long long small_bytes = 0;
	for (;;) {
		if (nsmall == MAX_BLOCKS)
			die("4 KiB blocks never ran out");
		errno = 0;
		set_site(61);
		void *p = malloc(4096);
		if (p == NULL) {
			if (errno != ENOMEM)
				die("malloc failed with errno %d", errno);
			break;
		}
		small_bytes += (long long)malloc_usable_size(p);
		small[nsmall++] = p;
	}

	/* Sizes the compiler cannot see (it warns about the constants). */
	volatile size_t almost_all = SIZE_MAX - 4, half = SIZE_MAX / 2;
	FAILS(malloc(almost_all));
	FAILS(malloc((size_t)1 << 40));
	FAILS(calloc((size_t)1 << 20, (size_t)1 << 20));
	FAILS(calloc(half, 3));
	FAILS(realloc(big[0], (size_t)1 << 40));
	FAILS(reallocarray(big[0], (size_t)1 << 30, (size_t)1 << 30));
	FAILS(aligned_alloc(64, (size_t)1 << 40));
	FAILS(memalign(4096, (size_t)1 << 40));
	FAILS(valloc((size_t)1 << 40));
	void *q = NULL;
	set_site(62);
	int rc = posix_memalign(&q, 64, (size_t)1 << 40);
	if (rc != ENOMEM || q != NULL)
		die("posix_memalign: %d", rc);
	unsigned char *b0 = big[0];
	for (int i = 0; i < 64; i++)
		if (b0[i] != 0x77)
			die("a failed realloc changed its block");

	/* Room for a small thread stack (a freed 1 MiB block is unmapped by
	 * glibc; jemalloc keeps it), not for much more. */
	free(big[1]);
	big[1] = NULL;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t th;
	rc = late_thread ? pthread_create(&th, &attr, thread_main, NULL) : EAGAIN;
	if (rc == 0)
		pthread_join(th, NULL);
	else if (rc != EAGAIN)
		die("pthread_create: %d", rc);

	long long kept = 0, kept_n = 0;
	for (long i = 0; i < nbig; i++) {
		if (i % 2) {
			free(big[i]); /* big[1] is NULL by now */
		} else {
			kept += big_bytes[i];
			kept_n++;
		}
	}
	printf("stat big=%ld small=%ld thread=%s thread_blocks=%lld\n", nbig, nsmall,
	       rc == 0 ? "started" : "EAGAIN", t_count);
	printf("site 60 bytes=%lld count=%lld\n", kept, kept_n);
	printf("site 61 bytes=%lld count=%ld\n", small_bytes, nsmall);
	printf("site 62 bytes=0 count=0\n");
	printf("site 63 bytes=%lld count=%lld\n", t_bytes, t_count);
	if (nbig < 16)
		die("only %ld blocks of 1 MiB before the limit", nbig);
	printf("rlimit done\n");
	return 0;
}
