/* The plugin fault_dlopen loads and unloads: its constructor allocates 100
 * blocks at site 40 (freed by its destructor) and one block at site 41
 * that it hands to the program (keep_block, exported by the program with
 * -rdynamic); its thread-local buffer is dynamic TLS, allocated by glibc on
 * each thread's first access after every load. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

void keep_block(void *p);

static void *blocks[100];
static __thread char tls_buf[16384];

__attribute__((constructor)) static void on_load(void)
{
	for (int i = 0; i < 100; i++) {
		set_site(40);
		blocks[i] = must(malloc(32 + (size_t)i * 7), "plugin malloc");
		memset(blocks[i], 0x5a, 32);
	}
	set_site(41);
	keep_block(must(calloc(1, 100), "plugin calloc"));
}

__attribute__((destructor)) static void on_unload(void)
{
	for (int i = 0; i < 100; i++) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
}

int plugin_touch(int x)
{
	tls_buf[x % (int)sizeof tls_buf] = (char)x;
	char *s = strdup("plugin");
	int n = (int)strlen(s) + tls_buf[x % (int)sizeof tls_buf];
	free(s);
	return n;
}
