/* Alignment, malloc_usable_size, realloc edge cases, overflow, errno.
 * Exits 0 and prints "edges ok" only if every check holds; runs the same
 * with and without the preload. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

/* Fills the whole usable size: with a tag in the wrong place this would
 * corrupt it and the free would count as foreign (or crash). */
static void fill(void *p, size_t n)
{
	size_t u = malloc_usable_size(p);
	CHECK(u >= n);
	memset(p, 0xa5, u);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	for (size_t align = sizeof(void *); align <= 65536; align *= 2) {
		for (size_t n = 0; n < 300; n += 37) {
			void *p = NULL;
			CHECK(posix_memalign(&p, align, n) == 0);
			CHECK(((uintptr_t)p % align) == 0);
			fill(p, n);
			free(p);
			p = aligned_alloc(align, n);
			CHECK(p && ((uintptr_t)p % align) == 0);
			fill(p, n);
			free(p);
			p = memalign(align, n);
			CHECK(p && ((uintptr_t)p % align) == 0);
			fill(p, n);
			free(p);
		}
	}
	void *p = NULL;
	CHECK(posix_memalign(&p, 3, 16) == EINVAL);
	CHECK(posix_memalign(&p, sizeof(void *) / 2, 16) == EINVAL);
	p = valloc(100);
	CHECK(p && ((uintptr_t)p % page) == 0);
	fill(p, 100);
	free(p);
	p = pvalloc(100);
	CHECK(p && ((uintptr_t)p % page) == 0);
	fill(p, 100);
	free(p);

	/* malloc_usable_size: at least what was asked, all of it usable, kept
	 * by realloc. */
	CHECK(malloc_usable_size(NULL) == 0);
	for (size_t n = 0; n < 5000; n += 123) {
		unsigned char *b = malloc(n);
		size_t u = malloc_usable_size(b);
		CHECK(u >= n);
		for (size_t i = 0; i < u; i++)
			b[i] = (unsigned char)i;
		unsigned char *c = realloc(b, u + 1000);
		CHECK(c != NULL);
		for (size_t i = 0; i < u; i++)
			if (c[i] != (unsigned char)i) {
				CHECK(!"realloc kept the data");
				break;
			}
		c = realloc(c, n / 2 + 1);
		CHECK(c != NULL);
		free(c);
	}

	/* realloc edge cases. */
	p = realloc(NULL, 64);
	CHECK(p != NULL);
	fill(p, 64);
	errno = 0;
	CHECK(realloc(p, 0) == NULL); /* frees, as glibc */
	free(NULL);

	/* Overflow and huge sizes: NULL with ENOMEM, the block left alone. */
	errno = 0;
	CHECK(calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(calloc(SIZE_MAX, SIZE_MAX) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(malloc(SIZE_MAX) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(malloc(SIZE_MAX - 4) == NULL && errno == ENOMEM);
	char *keep = malloc(32);
	strcpy(keep, "still here");
	errno = 0;
	CHECK(reallocarray(keep, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(realloc(keep, SIZE_MAX - 2) == NULL && errno == ENOMEM);
	CHECK(strcmp(keep, "still here") == 0);
	char *ra = reallocarray(keep, 10, 10);
	CHECK(ra != NULL && strcmp(ra, "still here") == 0);
	free(ra);

	/* calloc zeroes everything the program may use. */
	unsigned char *z = calloc(100, 3);
	size_t zu = malloc_usable_size(z);
	for (size_t i = 0; i < zu; i++)
		if (z[i]) {
			CHECK(!"calloc zeroed");
			break;
		}
	free(z);

	/* strdup / strndup. */
	char *s = strdup("hello world");
	CHECK(strcmp(s, "hello world") == 0);
	char *t = strndup("hello world", 5);
	CHECK(strcmp(t, "hello") == 0);
	char *u = strndup("hi", 100);
	CHECK(strcmp(u, "hi") == 0);
	free(s);
	free(t);
	free(u);

	/* errno survives successful calls. */
	errno = 1234;
	void *e = malloc(10);
	e = realloc(e, 100);
	free(e);
	e = calloc(1, 10);
	free(e);
	CHECK(errno == 1234);

	printf(check_failures ? "edges FAILED\n" : "edges ok\n");
	return check_failures != 0;
}
