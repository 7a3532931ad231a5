#include <stdlib.h>
#include <string.h>

#include "worker.h"

char *make_buf(size_t n)
{
	char *b = malloc(n + 1);
	if (b) {
		memset(b, 'x', n);
		b[n] = 0;
	}
	return b;
}

void release(char *b)
{
	free(b);
}
