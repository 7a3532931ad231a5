/* Blocks whose tag was overwritten, and blocks the tracker never handed
 * out, passed to free and realloc.
 *
 * 200 blocks at site 70. With a library loaded, the program then overruns
 * some of them by 8 bytes past malloc_usable_size — exactly where the tag
 * is — with garbage (50 blocks), with another live block's tag (25), or
 * with the block's own tag with one bit flipped (25; site bits and
 * check bits); 50 of those are
 * freed and 50 resized with realloc (at site 71) and freed again. The
 * other 100 are freed normally. Then blocks from __libc_malloc and
 * __libc_memalign (never tagged) are freed and resized.
 *
 * A corrupted block is a foreign block: freed (or resized) and counted as
 * a foreign free, never charged to a site — site 70 keeps the 100 blocks
 * whose frees could not be charged back. Without the library nothing is
 * overrun (the bytes past malloc_usable_size are glibc's there) and the
 * output is the same.
 *
 * Prints "site 70 ...", "site 71 bytes=0 count=0",
 * "stat foreign <n>" (the frees the library must count as foreign) and
 * "corrupt done". */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

extern void *__libc_malloc(size_t);
extern void *__libc_memalign(size_t, size_t);

int main(void)
{
	int overrun = tracker_loaded();
	void *b[200];
	size_t usable[200];
	for (int i = 0; i < 200; i++) {
		set_site(70);
		b[i] = must(malloc(8 + (size_t)i * 13), "malloc");
		usable[i] = malloc_usable_size(b[i]);
		memset(b[i], 0x33, usable[i]);
	}
	long long kept_bytes = 0;
	long foreign = 0;
	for (int i = 0; i < 200; i++) {
		if (i % 2 == 0) {
			free(b[i]);
			continue;
		}
		/* Odd blocks: overrun into the tag (only with a library). */
		unsigned char *tag = (unsigned char *)b[i] + usable[i];
		if (overrun) {
			if (i % 4 == 1) {
				memset(tag, 0x5a, 8);
			} else if (i % 8 == 3) {
				memcpy(tag, (unsigned char *)b[(i + 2) % 200] + usable[(i + 2) % 200], 8);
			} else {
				tag[(i / 8) % 8] ^= (unsigned char)(1u << (i % 3));
			}
		}
		kept_bytes += (long long)usable[i];
		foreign++;
	}
	/* Odd blocks: half freed, half resized (then freed). The blocks whose
	 * tags the copies came from are freed last. */
	for (int i = 1; i < 200; i += 2) {
		if (i % 4 == 1) {
			free(b[i]);
		} else {
			set_site(71);
			void *q = must(realloc(b[i], 5000 + (size_t)i), "realloc");
			memset(q, 0x44, 5000);
			free(q);
		}
	}
	/* Never tagged: glibc's own entry points (the jemalloc build exports
	 * them as its untracked heap). */
	for (int i = 0; i < 20; i++) {
		void *p = must(__libc_malloc(100 + (size_t)i), "__libc_malloc");
		if (i % 2) {
			free(p);
		} else {
			set_site(71);
			free(must(realloc(p, 3000), "realloc"));
		}
		free(must(__libc_memalign(64, 200), "__libc_memalign"));
		foreign += 2;
	}
	if (!overrun)
		kept_bytes = 0;
	printf("site 70 bytes=%lld count=%d\n", kept_bytes, overrun ? 100 : 0);
	printf("site 71 bytes=0 count=0\n");
	printf("stat foreign %ld\n", overrun ? foreign : 40);
	printf("corrupt done\n");
	return 0;
}
