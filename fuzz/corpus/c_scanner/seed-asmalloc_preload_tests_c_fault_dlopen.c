/* dlopen and dlclose, over and over, from two threads at once, of a
 * plugin (fault_plugin.c) whose constructor allocates and whose destructor
 * frees, and which has dynamic TLS. Each load's constructor hands one block
 * to keep_block (site 41); every block of site 40 is freed when the last
 * handle closes.
 *
 * Prints "site 40 bytes=0 count=0", "site 41 bytes=<b> count=<loads>" and
 * "dlopen done <rounds>". Usage: fault_dlopen PLUGIN [rounds] */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "test_support.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *kept[100000];
static long long kept_n, kept_bytes;
static const char *plugin;
static int rounds = 200;

void keep_block(void *p)
{
	pthread_mutex_lock(&lock);
	if (kept_n < (long long)(sizeof kept / sizeof kept[0]))
		kept[kept_n++] = p;
	kept_bytes += (long long)malloc_usable_size(p);
	pthread_mutex_unlock(&lock);
}

static void *loader(void *arg)
{
	(void)arg;
	long sum = 0;
	for (int i = 0; i < rounds; i++) {
		void *h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
		if (h == NULL)
			die("dlopen: %s", dlerror());
		int (*touch)(int) = (int (*)(int))dlsym(h, "plugin_touch");
		if (touch == NULL)
			die("dlsym: %s", dlerror());
		sum += touch(i);
		if (dlclose(h) != 0)
			die("dlclose: %s", dlerror());
	}
	return (void *)sum;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: fault_dlopen PLUGIN [rounds]");
	plugin = argv[1];
	if (argc > 2)
		rounds = atoi(argv[2]);
	pthread_t th;
	if (pthread_create(&th, NULL, loader, NULL) != 0)
		die("pthread_create");
	void *mine = loader(NULL);
	void *theirs;
	pthread_join(th, &theirs);
	if (mine != theirs)
		die("plugin_touch disagreed: %ld vs %ld", (long)mine, (long)theirs);
	printf("site 40 bytes=0 count=0\n");
	printf("site 41 bytes=%lld count=%lld\n", kept_bytes, kept_n);
	printf("dlopen done %d\n", rounds);
	return 0;
}
