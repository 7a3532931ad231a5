/* A server that was never instrumented: no asmalloc header, table or call.
 * Requests are made on the main thread and finished on a worker thread
 * (which frees what the main thread allocated). Each request allocates from
 * five functions; one of them, remember(), keeps ~1 KiB per request for
 * ever: the leak. Built with -g, run under `asmalloc run`, the leak must be
 * named by function and file:line through caller sites alone.
 *
 * Usage: uninstrumented REQUESTS REQUESTS_PER_SECOND */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct request {
	char *buffer;
	long *table;
	char *name;
	struct request *next;
};

__attribute__((noinline)) char *make_buffer(size_t n) { return malloc(n); }
__attribute__((noinline)) long *make_table(size_t n) { return calloc(n, sizeof(long)); }
__attribute__((noinline)) char *copy_name(const char *s) { return strdup(s); }
__attribute__((noinline)) char *grow(char *p, size_t n) { return realloc(p, n); }

static void *kept[200000];
static long nkept;
__attribute__((noinline)) void remember(long i) { kept[nkept++] = malloc(1000 + (size_t)(i % 48)); }

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
