/* Sampled stacks: a server that keeps ~64 MiB through one path
 * (main → serve → handle → keep_node → malloc) and allocates ~190 MiB
 * more that it frees at once (scratch). Under `asmalloc run --stacks` the
 * report's sampled stacks name the keeping path, frame by frame, with an
 * estimate of its live bytes close to the exact count of its site.
 *
 * Usage: stacks REQUESTS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[20000];
static long nkept;

__attribute__((noinline)) void *keep_node(size_t n)
{
	char *p = malloc(n);
	p[0] = 'k';
	return p;
}

__attribute__((noinline)) size_t scratch(size_t n)
{
	char *p = malloc(n);
	memset(p, 1, n);
	size_t sum = (size_t)p[n / 2];
	free(p);
	return sum;
}

__attribute__((noinline)) size_t handle(long i)
{
	size_t sum = scratch(2000 + (size_t)(i % 9000)) + scratch(64 + (size_t)(i % 200));
	if (nkept < (long)(sizeof kept / sizeof kept[0]))
		kept[nkept++] = keep_node(3000 + (size_t)(i % 2000));
	return sum;
}

__attribute__((noinline)) size_t serve(long requests)
{
	size_t sum = 0;
	for (long i = 0; i < requests; i++)
		sum += handle(i);
	return sum;
}

int main(int argc, char **argv)
{
	long requests = argc > 1 ? atol(argv[1]) : 20000;
	size_t sum = serve(requests);
	printf("served %ld requests, kept %ld (%zu)\n", requests, nkept, sum);
	return 0;
}
