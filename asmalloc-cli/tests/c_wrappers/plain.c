/* Compiled without the sites header: its allocation is no wrapper's. */
#include <stdlib.h>

void *plain_malloc(size_t n)
{
	return malloc(n);
}
