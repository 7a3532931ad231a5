/* jemalloc's own API under libasmalloc_jem.so: mallocx, rallocx, xallocx,
 * sallocx, nallocx, dallocx, sdallocx, each charged to the site named just
 * before it. The program computes what every site should hold from what
 * jemalloc tells it (sallocx: the bytes it may use) and prints it; the test
 * compares with the exit report. Prints "jemapi FAILED" on any violated
 * contract (alignment, zeroing, nallocx predicting sallocx, data kept). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include "asmalloc.h"
#include "test_support.h"

/* jemalloc's API (no jemalloc header needed: the library exports these). */
void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
#define MALLOCX_LG_ALIGN(la) ((int)(la))
#define MALLOCX_ZERO ((int)0x40)


#define SITES 7
static long long bytes[SITES], count[SITES];

static void charge(int site, void *p)
{
	bytes[site] += (long long)sallocx(p, 0);
	count[site]++;
}

static void uncharge(int site, void *p)
{
	bytes[site] -= (long long)sallocx(p, 0);
	count[site]--;
}

int main(void)
{
	/* Site 1: plain mallocx; a third freed with sdallocx (the program's own
	 * size), a third with dallocx. */
	void *a[300];
	size_t asked[300];
	for (int i = 0; i < 300; i++) {
		asked[i] = 1 + (size_t)(i * 53 % 9000);
		asm_mallocation_set(1, 1, (ssize_t)asked[i]);
		a[i] = mallocx(asked[i], 0);
		CHECK(a[i] != NULL);
		CHECK(sallocx(a[i], 0) >= asked[i]);
		CHECK(malloc_usable_size(a[i]) == sallocx(a[i], 0));
		memset(a[i], 0x5a, sallocx(a[i], 0)); /* every usable byte */
		charge(1, a[i]);
	}
	for (int i = 0; i < 200; i++) {
		uncharge(1, a[i]);
		asm_mallocation_set(1, 6, 0); /* a free's site is the block's */
		if (i % 2)
			sdallocx(a[i], asked[i], 0);
		else
			dallocx(a[i], 0);
	}

	/* Site 2: aligned and zeroed; then rallocx moves each to site 3. */
	void *b[60];
	for (int i = 0; i < 60; i++) {
		size_t n = 100 + (size_t)i * 97;
		asm_mallocation_set(1, 2, (ssize_t)n);
		b[i] = mallocx(n, MALLOCX_LG_ALIGN(6 + i % 7) | MALLOCX_ZERO);
		CHECK(b[i] != NULL && ((uintptr_t)b[i] % ((uintptr_t)1 << (6 + i % 7))) == 0);
		size_t u = sallocx(b[i], 0);
		for (size_t j = 0; j < u; j++)
			if (((unsigned char *)b[i])[j]) {
				CHECK(!"MALLOCX_ZERO zeroed every usable byte");
				break;
			}
		memset(b[i], i, n);
		charge(2, b[i]);
	}
	for (int i = 0; i < 60; i++) {
		size_t n = 100 + (size_t)i * 97;
		uncharge(2, b[i]);
		asm_mallocation_set(1, 3, 0);
		void *q = rallocx(b[i], 3 * n + 5000, 0);
		CHECK(q != NULL);
		CHECK(((unsigned char *)q)[n - 1] == (unsigned char)i);
		b[i] = q;
		charge(3, b[i]);
	}

	/* Site 4, then xallocx under site 5: a block whose size changed moves
	 * to site 5, one that could not stays at 4. */
	void *c[40];
	for (int i = 0; i < 40; i++) {
		size_t n = i % 2 ? 300 : 20000;
		asm_mallocation_set(1, 4, (ssize_t)n);
		c[i] = mallocx(n, 0);
		size_t before = sallocx(c[i], 0);
		asm_mallocation_set(1, 5, 0);
		size_t after = xallocx(c[i], n * 2, 0, 0);
		CHECK(after == sallocx(c[i], 0));
		CHECK(after == before || after >= n * 2);
		charge(after == before ? 4 : 5, c[i]);
	}
	/* Shrinking in place. */
	asm_mallocation_set(1, 4, 0);
	void *d = mallocx(100000, 0);
	size_t before = sallocx(d, 0);
	asm_mallocation_set(1, 5, 0);
	size_t after = xallocx(d, 40000, 0, 0);
	CHECK(after == sallocx(d, 0) && after >= 40000);
	charge(after == before ? 4 : 5, d);

	/* nallocx predicts sallocx (the tag accounted for); site 6 ends empty. */
	for (size_t n = 1; n < 70000; n = n * 3 / 2 + 1) {
		for (int lg = 0; lg <= 12; lg += 4) {
			size_t want = nallocx(n, MALLOCX_LG_ALIGN(lg));
			asm_mallocation_set(1, 6, 0);
			void *p = mallocx(n, MALLOCX_LG_ALIGN(lg));
			CHECK(p && sallocx(p, 0) == want);
			dallocx(p, MALLOCX_LG_ALIGN(lg));
		}
	}

	/* mallctl works (jemalloc's, forwarded). */
	const char *version = NULL;
	size_t len = sizeof(version);
	CHECK(mallctl("version", &version, &len, NULL, 0) == 0 && version && version[0] == '5');

	for (int s = 1; s < SITES; s++)
		printf("site %d bytes=%lld count=%lld\n", s, bytes[s], count[s]);
	printf(check_failures ? "jemapi FAILED\n" : "jemapi ok\n");
	fflush(stdout);
	return check_failures != 0;
}
