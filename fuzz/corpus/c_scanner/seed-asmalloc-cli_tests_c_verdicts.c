/* A program for the leak-verdict tests (tests/verdicts.rs), uninstrumented:
 * `asmalloc run` names its sites from its debug information (caller
 * sites). Each kind of memory has its own function, and each function one
 * malloc, marked with a comment the test looks for.
 *
 * usage: verdicts MODE SECONDS
 *   serve     for SECONDS: leak_session keeps 5 MiB/s for ever (the leak);
 *             batch_load grows 4 MiB/s from 2 s to 14 s, then frees it all
 *             (a legitimate surge); fill_cache fills 24 MiB in the first
 *             second, then holds it (a bounded cache); pool_cycle holds up
 *             to 16 MiB and frees it every 3 s (a GC-like saw-tooth); two
 *             worker threads allocate and free request buffers (churn).
 *   teardown  leak_session keeps 5 MiB/s for SECONDS, fill_cache holds
 *             24 MiB; then everything is freed before exit (as lua_close
 *             does).
 *   short     leak_session keeps 5 MiB/s for SECONDS, then exits.
 * Blocks are 16 KiB and never written to beyond malloc's own header, so the
 * resident memory stays small. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK (16 * 1024)
#define MIB (1024.0 * 1024.0)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A list of blocks one function owns. */
struct pile {
	void **blocks;
	size_t n, cap;
};

static void pile_push(struct pile *p, void *b)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 1024;
		p->blocks = realloc(p->blocks, p->cap * sizeof *p->blocks);
	}
	p->blocks[p->n++] = b;
}

static void pile_free(struct pile *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->blocks[i]);
	p->n = 0;
}

static struct pile sessions, batch, cache, pool;

__attribute__((noinline)) static void leak_session(void)
{
	pile_push(&sessions, malloc(BLOCK)); /* LEAK */
}

__attribute__((noinline)) static void batch_load(void)
{
	pile_push(&batch, malloc(BLOCK)); /* SURGE */
}

__attribute__((noinline)) static void fill_cache(void)
{
	pile_push(&cache, malloc(BLOCK)); /* CACHE */
}

__attribute__((noinline)) static void pool_cycle(void)
{
	pile_push(&pool, malloc(BLOCK)); /* POOL */
}

__attribute__((noinline)) static char *make_request(size_t n)
{
	return malloc(n); /* REQUEST */
}

static volatile int stop;

static void *worker(void *arg)
{
	unsigned long i = (unsigned long)arg;
	char *held[64] = { 0 };
	while (!stop) {
		for (int k = 0; k < 64; k++) {
			free(held[k]);
			held[k] = make_request(256 + (i++ * 7919) % 8192);
			held[k][0] = 1;
		}
		pause_ms(2);
	}
	for (int k = 0; k < 64; k++)
		free(held[k]);
	return NULL;
}

/* Calls `f` until `*made` blocks make `target_bytes`. */
static void grow_to(void (*f)(void), double *made, double target_bytes)
{
	while (*made + BLOCK <= target_bytes) {
		f();
		*made += BLOCK;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "serve";
	double seconds = argc > 2 ? atof(argv[2]) : 20.0;
	int serve = strcmp(mode, "serve") == 0;
	pthread_t workers[2];
	if (serve)
		for (long w = 0; w < 2; w++)
			pthread_create(&workers[w], NULL, worker, (void *)w);
	double start = now(), leaked = 0, batched = 0, cached = 0, pooled = 0;
	double pool_start = start;
	int batch_freed = 0;
	for (;;) {
		double t = now() - start;
		if (t >= seconds)
			break;
		grow_to(leak_session, &leaked, 5.0 * MIB * t);
		if (strcmp(mode, "short") != 0)
			grow_to(fill_cache, &cached, 24.0 * MIB * (t < 1.0 ? t : 1.0));
		if (serve) {
			if (t >= 2.0 && t < 14.0)
				grow_to(batch_load, &batched, 4.0 * MIB * (t - 2.0));
			if (t >= 14.0 && !batch_freed) {
				pile_free(&batch);
				batch_freed = 1;
			}
			double p = now() - pool_start;
			if (p >= 3.0) {
				pile_free(&pool);
				pooled = 0;
				pool_start = now();
				p = 0;
			}
			grow_to(pool_cycle, &pooled, 16.0 * MIB * p / 3.0);
		}
		pause_ms(10);
	}
	if (serve) {
		stop = 1;
		for (int w = 0; w < 2; w++)
			pthread_join(workers[w], NULL);
	}
	printf("%s: kept %.0f MiB\n", mode, leaked / MIB);
	if (strcmp(mode, "teardown") == 0) {
		pile_free(&sessions);
		pile_free(&cache);
		free(sessions.blocks);
		free(cache.blocks);
		printf("freed everything\n");
	}
	return 0;
}
