/* A program whose executable is deleted while it runs (a deploy replacing
 * the binary, a rebuild): it unlinks argv[0] first, then keeps 100 blocks
 * allocated by hold(). Under ASMALLOC_CALLERS=1 the exit report must still
 * name hold() and its file:line, read through /proc/self/exe.
 *
 * Usage: self_delete (run it from a copy: it deletes itself). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *kept[100];

__attribute__((noinline)) void *hold(size_t n)
{
	return malloc(n);
}

int main(int argc, char **argv)
{
	(void)argc;
	if (unlink(argv[0]) != 0) {
		perror("unlink");
		return 2;
	}
	for (int i = 0; i < 100; i++) {
		kept[i] = hold(1000);
		memset(kept[i], 1, 1000);
	}
	puts("deleted and kept");
	return 0;
}
