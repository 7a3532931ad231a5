#include <stdlib.h>
#include "cf.h"

void *
cf_malloc(size_t sz)
{
	return malloc(sz);
}

void
cf_free(void *p)
{
	free(p);
}
