/* uninstrumented.c, allocating through wrappers (xalloc.c): every
 * allocation of the five functions goes through xmalloc, xcalloc,
 * xrealloc or dup_name (which calls xmalloc: two wrapper frames). Built
 * with -O2 and without frame pointers. Under `asmalloc run --wrapper …`
 * the leak must be named by remember() and its line, not by xmalloc.
 *
 * Usage: wrapped REQUESTS REQUESTS_PER_SECOND */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

struct request {
	char *buffer;
	long *table;
	char *name;
	struct request *next;
};

/* Not tail calls (each uses the result), so each keeps its frame. */
__attribute__((noinline)) char *make_buffer(size_t n) { char *p = xmalloc(n); p[0] = 'b'; return p; }
__attribute__((noinline)) long *make_table(size_t n) { long *t = xcalloc(n, sizeof(long)); t[0] = 1; return t; }
__attribute__((noinline)) char *copy_name(const char *s) { char *p = dup_name(s); p[0] = 'R'; return p; }
__attribute__((noinline)) char *grow(char *p, size_t n) { char *q = xrealloc(p, n); q[n - 1] = 0; return q; }

static void *kept[200000];
static long nkept;
__attribute__((noinline)) void remember(long i) { kept[nkept] = xmalloc(1000 + (size_t)(i % 48)); nkept++; }

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static struct request *queue;
static int done;

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&lock);
		while (queue == NULL && !done)
			pthread_cond_wait(&ready, &lock);
		struct request *r = queue;
		if (r != NULL)
			queue = r->next;
		pthread_mutex_unlock(&lock);
		if (r == NULL)
			return NULL;
		free(r->buffer);
		free(r->table);
		free(r->name);
		free(r);
	}
}

int main(int argc, char **argv)
{
	long requests = argc > 1 ? atol(argv[1]) : 10000;
	long rate = argc > 2 ? atol(argv[2]) : 0;
	pthread_t th;
	pthread_create(&th, NULL, worker, NULL);
	struct timespec pause = {0, rate > 0 ? 1000000000L / rate : 0};
	for (long i = 0; i < requests; i++) {
		struct request *r = malloc(sizeof *r);
		r->buffer = grow(make_buffer(64 + (size_t)(i % 200)), 512);
		r->table = make_table(16);
		r->name = copy_name("request");
		if (i < (long)(sizeof kept / sizeof kept[0]))
			remember(i);
		pthread_mutex_lock(&lock);
		r->next = queue;
		queue = r;
		pthread_cond_signal(&ready);
		pthread_mutex_unlock(&lock);
		if (rate > 0)
			nanosleep(&pause, NULL);
	}
	pthread_mutex_lock(&lock);
	done = 1;
	pthread_cond_broadcast(&ready);
	pthread_mutex_unlock(&lock);
	pthread_join(th, NULL);
	printf("served %ld requests, kept %ld\n", requests, nkept);
	return 0;
}
