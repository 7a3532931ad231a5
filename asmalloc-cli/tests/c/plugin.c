/* A plugin loaded with dlopen after the program started: it allocates
 * through a wrapper of its own (plugin_xmalloc, out of line), kept by
 * plugin_keep and freed by plugin_scratch. */
#include <stdlib.h>
#include <string.h>

/* Global (not static): the stores cannot be dropped, so plugin_keep
 * does not tail-call the wrapper. */
void *kept[100000];
int nkept;

__attribute__((noinline)) void *plugin_xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL)
		abort();
	memset(p, 0x5a, 1);
	return p;
}

__attribute__((noinline)) void plugin_keep(size_t n)
{
	if (nkept < 100000)
		kept[nkept++] = plugin_xmalloc(n);
}

__attribute__((noinline)) void plugin_scratch(size_t n)
{
	char *p = plugin_xmalloc(n);
	p[n - 1] = 1;
	free(p);
}
