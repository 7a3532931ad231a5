/* A second layer of wrapper, in its own file (so xmalloc is not inlined
 * into it): a name it copies is two wrapper frames below its caller. */
#include <string.h>

#include "xalloc.h"

char *dup_name(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}
