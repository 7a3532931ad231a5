/* A program that frees everything before it exits, for the exit report's
 * calls, total bytes and peak columns (tests/exit_report.rs). Three sites,
 * named with asm_site_enter (no table): make_buffer, make_name and
 * make_node. Ten rounds of churn allocate names and nodes and free them;
 * then every site holds its peak for HOLD_MS (several monitor samples at
 * a short interval see it), and everything is freed.
 *
 * The program keeps its own count of what the library must charge (the
 * usable size of each block) and prints, per site:
 *   site FUNCTION calls=N total=BYTES peak=BYTES
 * where peak is what the site holds during the hold, the most it ever
 * holds. stdout is unbuffered, so stdio allocates nothing that is left
 * live at exit.
 *
 * Usage: exit_report [hold-ms]
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "asmalloc.h"

#define ROUNDS 10
#define NODES 100
#define NAMES 50
#define BUFFERS 4

struct count {
	const char *name;
	long long calls, total, live, peak;
};

static struct count buffer_count = { "make_buffer" };
static struct count name_count = { "make_name" };
static struct count node_count = { "make_node" };

static void *counted(struct count *c, void *p)
{
	if (!p) {
		fprintf(stderr, "exit_report: out of memory\n");
		exit(2);
	}
	long long n = (long long)malloc_usable_size(p);
	c->calls++;
	c->total += n;
	c->live += n;
	if (c->live > c->peak)
		c->peak = c->live;
	return p;
}

static void uncounted(struct count *c, void *p)
{
	c->live -= (long long)malloc_usable_size(p);
	free(p);
}

static void *make_buffer(void)
{
	static uint16_t cache;
	asm_site_enter(&cache, 1, __FILE__, __LINE__, __func__);
	return counted(&buffer_count, malloc(64 * 1024));
}

static void *make_name(void)
{
	static uint16_t cache;
	asm_site_enter(&cache, 2, __FILE__, __LINE__, __func__);
	return counted(&name_count, malloc(200));
}

static void *make_node(void)
{
	static uint16_t cache;
	asm_site_enter(&cache, 3, __FILE__, __LINE__, __func__);
	return counted(&node_count, calloc(1, 48));
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0)
		;
}

static void print(const struct count *c)
{
	printf("site %s calls=%lld total=%lld peak=%lld\n", c->name, c->calls,
	       c->total, c->peak);
}

int main(int argc, char **argv)
{
	long hold_ms = argc > 1 ? atol(argv[1]) : 300;
	void *buffers[BUFFERS], *names[NAMES], *nodes[NODES];
	setvbuf(stdout, NULL, _IONBF, 0);

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < NAMES; i++)
			names[i] = make_name();
		for (int i = 0; i < NODES; i++)
			nodes[i] = make_node();
		for (int i = 0; i < NAMES; i++)
			uncounted(&name_count, names[i]);
		for (int i = 0; i < NODES; i++)
			uncounted(&node_count, nodes[i]);
	}

	for (int i = 0; i < BUFFERS; i++)
		buffers[i] = make_buffer();
	for (int i = 0; i < NAMES; i++)
		names[i] = make_name();
	for (int i = 0; i < NODES; i++)
		nodes[i] = make_node();
	sleep_ms(hold_ms);
	for (int i = 0; i < BUFFERS; i++)
		uncounted(&buffer_count, buffers[i]);
	for (int i = 0; i < NAMES; i++)
		uncounted(&name_count, names[i]);
	for (int i = 0; i < NODES; i++)
		uncounted(&node_count, nodes[i]);
	/* A sample or two of the freed state before exit. */
	sleep_ms(120);

	print(&buffer_count);
	print(&name_count);
	print(&node_count);
	return 0;
}
