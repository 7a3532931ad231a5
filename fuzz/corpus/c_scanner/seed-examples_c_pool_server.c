/*
 * pool_server.c — a small multi-threaded "server" that uses the asmalloc C
 * API the way the original ASMalloc test program did: it looks the API up
 * with dlsym (so it runs unchanged without the library), registers its site
 * table, sets thresholds and a callback, names the site of each allocation
 * with asm_mallocation_set, and calls asm_hook periodically. One site
 * (session_cache_put) forgets to free what it allocates.
 *
 * Build and run (see docs/preload.md):
 *   cc -O2 -pthread -I include examples/c/pool_server.c -o pool_server -ldl
 *   ./pool_server                                   # runs, no tracking
 *   LD_PRELOAD=target/release/libasmalloc.so ./pool_server
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asmalloc.h"

/* The site table. asmalloc-gen writes this for you (mallocations.h);
 * here it is by hand, in the generated layout. */
typedef struct mallocation_s {
	int type;
	const char *file;
	int line;
	int id;
	const char *function;
} mallocation_t;

enum { T_NONE, T_MALLOC, T_CALLOC, T_FREE, NUM_TYPES };
static const char *const type_names[NUM_TYPES] = { "NONE", "MALLOC", "CALLOC", "FREE" };

enum { S_NONE, S_REQUEST_BUF, S_RESPONSE, S_SESSION, S_REQUEST_FREE, NUM_SITES };
static const mallocation_t sites[NUM_SITES] = {
	{ T_NONE, "", 0, S_NONE, NULL },
	{ T_MALLOC, "examples/c/pool_server.c", 110, S_REQUEST_BUF, "handle_request" },
	{ T_CALLOC, "examples/c/pool_server.c", 116, S_RESPONSE, "handle_request" },
	{ T_MALLOC, "examples/c/pool_server.c", 99, S_SESSION, "session_cache_put" },
	{ T_FREE, "examples/c/pool_server.c", 121, S_REQUEST_FREE, "handle_request" },
};

/* The API, looked up at run time: NULL without libasmalloc.so. */
static int (*p_register)(const char *const *, size_t, const struct mallocation_s *, size_t);
static int (*p_cmd)(asm_cmd_t, va_list);
static int (*p_hook)(void *, asm_stats_t **, vm_stats_t **);
static void (*p_set)(uint16_t, uint16_t, ssize_t);

static void lookup_api(void)
{
	p_register = (int (*)(const char *const *, size_t, const struct mallocation_s *, size_t))
		dlsym(RTLD_DEFAULT, "asm_register_mallocations");
	p_cmd = (int (*)(asm_cmd_t, va_list))dlsym(RTLD_DEFAULT, "asm_cmd");
	p_hook = (int (*)(void *, asm_stats_t **, vm_stats_t **))dlsym(RTLD_DEFAULT, "asm_hook");
	p_set = (void (*)(uint16_t, uint16_t, ssize_t))dlsym(RTLD_DEFAULT, "asm_mallocation_set");
}

static int cmd(asm_cmd_t c, ...)
{
	if (!p_cmd)
		return -1;
	va_list ap;
	va_start(ap, c);
	int rc = p_cmd(c, ap);
	va_end(ap);
	return rc;
}

#define SITE(type, site, size) \
	do { if (p_set) p_set((type), (site), (ssize_t)(size)); } while (0)

/* Called by asmalloc when a site's net size on a thread moved past the
 * delta threshold, or one block passed the block threshold (total 0). */
static void on_threshold(uint64_t thread_id, uint16_t type, uint16_t loc, ssize_t delta,
		ssize_t total, struct timespec *when, void *udata)
{
	(void)when;
	const mallocation_t *s = loc < NUM_SITES ? &sites[loc] : &sites[0];
	fprintf(stderr, "[%s] thread %lu: %s site %u %s:%d %s(): %+zd bytes, now %zd\n",
			(const char *)udata, (unsigned long)thread_id,
			type < NUM_TYPES ? type_names[type] : "?", loc, s->file, s->line,
			s->function ? s->function : "?", delta, total);
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char *session_cache[1 << 16];
static unsigned session_count;

/* The leak: sessions are cached and never evicted. */
static void session_cache_put(const char *id, size_t len)
{
	SITE(T_MALLOC, S_SESSION, len + 64);
	char *s = malloc(len + 64);
	snprintf(s, len + 64, "session:%s", id);
	pthread_mutex_lock(&cache_lock);
	session_cache[session_count++ % (1 << 16)] = s; /* overwritten, never freed */
	pthread_mutex_unlock(&cache_lock);
}

static unsigned long handle_request(unsigned seed)
{
	size_t n = 256 + seed % 4096;
	SITE(T_MALLOC, S_REQUEST_BUF, n);
	char *buf = malloc(n);
	memset(buf, 'a' + (int)(seed % 26), n);
	unsigned long sum = 0;
	for (size_t i = 0; i < n; i += 64)
		sum += (unsigned char)buf[i];
	SITE(T_CALLOC, S_RESPONSE, 128);
	char *resp = calloc(1, 128);
	snprintf(resp, 128, "%lu", sum);
	if (seed % 8 == 0)
		session_cache_put(resp, strlen(resp));
	SITE(T_FREE, S_REQUEST_FREE, -(ssize_t)n);
	free(buf);
	free(resp);
	return sum;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned long total = 0;
	for (int i = 0; i < 200000; i++) {
		seed = seed * 1103515245u + 12345u;
		total += handle_request(seed >> 8);
	}
	return (void *)(uintptr_t)(total & 0xffff);
}

int main(void)
{
	lookup_api();
	if (p_register) {
		p_register(type_names, NUM_TYPES, (const struct mallocation_s *)sites, NUM_SITES);
		cmd(ASM_CMD_SET_FEATURES, (uint64_t)(ASM_LOG_DATESTAMP | ASM_LOG_THREAD_STATS |
				ASM_LOG_MEM_COUNT_STATS | ASM_LOG_MALLOCATIONS | ASM_LOG_BLOCKS |
				ASM_LOG_VM_STATS));
		/* Blocks over 64 KiB; a site moving by 256 KiB, at most once a second. */
		cmd(ASM_CMD_SET_THRESHOLDS, (size_t)(64 * 1024), (size_t)(256 * 1024), (time_t)0);
		cmd(ASM_CMD_SET_CALLBACK, on_threshold, (void *)"pool_server");
	} else {
		fprintf(stderr, "pool_server: libasmalloc.so not loaded; running untracked\n");
	}

	enum { THREADS = 4 };
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)(t + 1));

	/* The "admin" loop: a hook call now and then, as a server would on a
	 * timer or an admin command. */
	for (int tick = 0; tick < 3; tick++) {
		usleep(200 * 1000);
		if (p_hook) {
			asm_stats_t *stats = NULL;
			vm_stats_t *vm = NULL;
			p_hook(NULL, &stats, &vm);
			fprintf(stderr, "pool_server: tick %d: heap %zu bytes, mmap %zu, shm %zu\n", tick,
					stats->mem_count, stats->net_mmaps, stats->net_shm);
		}
	}
	unsigned long check = 0;
	for (int t = 0; t < THREADS; t++) {
		void *r;
		pthread_join(th[t], &r);
		check += (uintptr_t)r;
	}
	printf("pool_server: done, %u sessions cached, check %lu\n", session_count, check);
	return 0;
}
