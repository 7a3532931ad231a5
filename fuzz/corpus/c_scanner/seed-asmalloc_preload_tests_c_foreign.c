/* Blocks the tracker never tagged — here from glibc's __libc_malloc,
 * exactly like blocks allocated before the library initialised or under
 * its reentrancy guard — are freed, reallocated and measured safely. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);

int main(void)
{
	char *blocks[100];
	for (int i = 0; i < 100; i++) {
		blocks[i] = __libc_malloc(24 + i * 8);
		memset(blocks[i], 0xff, malloc_usable_size(blocks[i]));
	}
	for (int i = 0; i < 50; i++)
		free(blocks[i]);
	for (int i = 50; i < 100; i++) {
		blocks[i] = realloc(blocks[i], 1000);
		strcpy(blocks[i], "moved");
	}
	size_t total = 0;
	for (int i = 50; i < 100; i++) {
		total += malloc_usable_size(blocks[i]) >= 1000;
		free(blocks[i]);
	}
	char *z = __libc_calloc(1, 4096);
	free(z);
	printf("foreign ok %zu\n", total);
	return 0;
}
