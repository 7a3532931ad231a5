/* ASM_CMD_SET_CALLBACK while another thread's allocations fire the
 * callback: every call must pair a function with the user data it was set
 * with. Two callbacks alternate, each set with its own user data; each
 * checks that it got its own. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "asmalloc.h"

static int data_a, data_b;

/* The original API takes a va_list: the program's own variadic front. */
static int cmd(asm_cmd_t c, ...)
{
	va_list args;
	va_start(args, c);
	int rv = asm_cmd(c, args);
	va_end(args);
	return rv;
}
static atomic_long calls, wrong;
static atomic_int stop;

static void cb_a(uint64_t t, uint16_t ty, uint16_t loc, ssize_t d, ssize_t tot,
		 const struct timespec *lt, void *udata)
{
	(void)t; (void)ty; (void)loc; (void)d; (void)tot; (void)lt;
	atomic_fetch_add(&calls, 1);
	if (udata != &data_a)
		atomic_fetch_add(&wrong, 1);
}

static void cb_b(uint64_t t, uint16_t ty, uint16_t loc, ssize_t d, ssize_t tot,
		 const struct timespec *lt, void *udata)
{
	(void)t; (void)ty; (void)loc; (void)d; (void)tot; (void)lt;
	atomic_fetch_add(&calls, 1);
	if (udata != &data_b)
		atomic_fetch_add(&wrong, 1);
}

static void *allocate(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		/* Past the block threshold (1 KiB below): every call fires. */
		void *p = malloc(4096);
		free(p);
	}
	return NULL;
}

int main(void)
{
	cmd(ASM_CMD_SET_FEATURES, (uint64_t)ASM_LOG_BLOCKS);
	cmd(ASM_CMD_SET_THRESHOLDS, (size_t)1024, (size_t)1 << 40, (time_t)1000);
	cmd(ASM_CMD_SET_CALLBACK, cb_a, (void *)&data_a);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, allocate, NULL);
	while (atomic_load(&calls) == 0)
		; /* both threads are firing callbacks */
	for (int i = 0; i < 400000; i++) {
		if (i % 2)
			cmd(ASM_CMD_SET_CALLBACK, cb_a, (void *)&data_a);
		else
			cmd(ASM_CMD_SET_CALLBACK, cb_b, (void *)&data_b);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	long n = atomic_load(&calls), bad = atomic_load(&wrong);
	printf("%s: %ld callbacks, %ld with another callback's data\n", bad ? "mismatched" : "paired", n, bad);
	return bad != 0;
}
