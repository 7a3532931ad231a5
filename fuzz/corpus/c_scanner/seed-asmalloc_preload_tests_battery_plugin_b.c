/* Plugin B: a cache allocated in its constructor (calloc) that keeps a copy
 * of every input (strdup, grown with realloc) until its destructor. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

struct cache {
	char **items;
	size_t len, cap;
};

static struct cache *cache;

__attribute__((constructor)) static void plugin_b_init(void)
{
	cache = calloc(1, sizeof *cache);
}

__attribute__((destructor)) static void plugin_b_fini(void)
{
	for (size_t i = 0; i < cache->len; i++)
		free(cache->items[i]);
	free(cache->items);
	free(cache);
}

const char *plugin_name(void)
{
	return "plugin-b";
}

size_t plugin_kept(void)
{
	return cache->len;
}

char *plugin_process(const char *in)
{
	if (cache->len == cache->cap) {
		cache->cap = cache->cap ? cache->cap * 2 : 8;
		cache->items = realloc(cache->items, cache->cap * sizeof *cache->items);
	}
	cache->items[cache->len++] = strdup(in);
	char *up = strdup(in);
	for (char *c = up; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	char *out;
	if (asprintf(&out, "%s #%zu", up, cache->len) < 0)
		die("plugin-b: asprintf failed");
	free(up);
	return out;
}
