/* asm_mallocation_set names the site of the *next* allocation-family call
 * only: a call that fails uses it up, so it never lands on a later,
 * unrelated allocation. And a program block freed from inside the user's
 * callback (where the library holds its reentrancy guard) is still charged
 * back to its site. Prints each site's total on this thread. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "asmalloc.h"
#include "test_support.h"

static void *victim;

static void callback(uint64_t thread_id, uint16_t type, uint16_t loc, ssize_t delta_size,
		ssize_t total_size, struct timespec *last_time, void *udata)
{
	(void)thread_id; (void)type; (void)loc; (void)delta_size; (void)total_size;
	(void)last_time; (void)udata;
	free(victim);
	victim = NULL;
}

static ssize_t total(uint16_t loc)
{
	uint16_t type = 0;
	ssize_t t = 0, d = 0;
	struct timespec when;
	asm_mallocation_get(&type, loc, &t, &d, &when);
	return t;
}

int main(void)
{
	void *keep[4];

	asm_mallocation_set(7, 5, 0);
	void *huge = malloc(SIZE_MAX - 4); /* fails */
	keep[0] = malloc(1000);            /* not site 5 */

	asm_mallocation_set(7, 6, 0);
	void *moved = realloc(keep[0], SIZE_MAX / 2); /* fails, keep[0] intact */
	keep[1] = malloc(3000);                        /* not site 6 */

	asm_mallocation_set(7, 8, 0);
	void *aligned = NULL;
	int rc = posix_memalign(&aligned, 3, 100); /* EINVAL */
	keep[2] = malloc(500);                     /* not site 8 */

	asm_mallocation_set(7, 11, 0);
	void *arr = calloc(SIZE_MAX / 2, 4); /* overflow */
	keep[3] = malloc(700);               /* not site 11 */

	printf("failed: %p %p %d %p errno-ok %d\n", huge, moved, rc, arr, errno == ENOMEM);
	printf("site5 %zd site6 %zd site8 %zd site11 %zd\n", total(5), total(6), total(8), total(11));

	/* A block at site 9, freed by the callback that a big block at site 10
	 * triggers. */
	command(ASM_CMD_SET_FEATURES, (uint64_t)ASM_LOG_BLOCKS);
	command(ASM_CMD_SET_THRESHOLDS, (size_t)4096, (size_t)(1 << 30), (time_t)60);
	command(ASM_CMD_SET_CALLBACK, callback, (void *)0);
	asm_mallocation_set(7, 9, 0);
	victim = malloc(2000);
	ssize_t before = total(9);
	asm_mallocation_set(7, 10, 0);
	void *big = malloc(100000);
	printf("victim freed %d site9 before>0 %d after %zd\n", victim == NULL, before > 0, total(9));

	free(big);
	for (int i = 0; i < 4; i++)
		free(keep[i]);
	return 0;
}
