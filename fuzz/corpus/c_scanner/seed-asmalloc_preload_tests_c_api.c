/* Uses every call and command of the original ASMalloc interface, as a
 * program written against the original header would (plus the two new
 * registration entry points). Built with -Wall -Wextra -Werror. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asmalloc.h"
#include "vm_stats.h"

static int calls;

static void callback(uint64_t thread_id, uint16_t type, uint16_t loc, ssize_t delta_size,
		ssize_t total_size, struct timespec *last_time, void *udata)
{
	(void)thread_id;
	(void)last_time;
	calls++;
	printf("callback type=%u loc=%u delta=%zd total=%zd udata=%s\n", type, loc, delta_size,
			total_size, (const char *)udata);
}

static int my_asm_cmd(asm_cmd_t cmd, ...)
{
	va_list args;
	va_start(args, cmd);
	int rv = asm_cmd(cmd, args);
	va_end(args);
	return rv;
}

int main(void)
{
	asm_features_t features = ASM_LOG_DATESTAMP | ASM_LOG_THREAD_STATS | ASM_LOG_MEM_COUNT_STATS |
		ASM_LOG_MALLOCATIONS | ASM_LOG_BLOCKS | ASM_LOG_VM_STATS;
	int rv = my_asm_cmd(ASM_CMD_SET_FEATURES, (uint64_t)features);
	rv |= my_asm_cmd(ASM_CMD_SET_THRESHOLDS, (size_t)4096, (size_t)(1 << 20), (time_t)60);
	rv |= my_asm_cmd(ASM_CMD_SET_CALLBACK, callback, (void *)"user-data");
	rv |= my_asm_cmd(ASM_CMD_PRINT_STATS);
	printf("asm_cmd rv=%d\n", rv);

	asm_mallocation_set(7, 12, 100000); /* above the block threshold: callback now */
	char *p = malloc(100000);
	memset(p, 7, 100000);

	uint16_t type = 0;
	ssize_t total = 0, delta = 0;
	struct timespec when = { 0, 0 };
	asm_mallocation_get(&type, 12, &total, &delta, &when);
	printf("get type=%u total_ok=%d delta=%zd time_ok=%d\n", type, total >= 100000, delta,
			when.tv_sec > 0);
	asm_mallocation_get(NULL, 12, NULL, NULL, NULL);

	asm_stats_t *as = NULL;
	vm_stats_t *vs = NULL;
	rv = asm_hook(NULL, &as, &vs);
	printf("asm_hook rv=%d mem_count_ok=%d net_mmaps=%zu net_shm=%zu\n", rv,
			as != NULL && as->mem_count >= 100000, as ? as->net_mmaps : 0, as ? as->net_shm : 0);
	printf("vm_stats %s rss_ok=%d\n", vs ? "set" : "null",
			vs != NULL && vm_stats_get_key_value(vs, VM_RSS) > 0 &&
			vm_stats_get_key_value(vs, VM_RSS) != UINT64_MAX);

	vm_stats_t mine;
	memset(&mine, 0, sizeof(mine));
	rv = get_vm_stats(getpid(), &mine);
	printf("get_vm_stats rv=%d desc_ok=%d\n", rv, mine.desc == vm_stats_desc);
	for (int k = 0; k < VM_NUM_KEYS; k++)
		printf("%s%s", k ? " " : "keys: ", vm_stats_key_name(k));
	printf("\n");
	vm_stats_set_key_value(&mine, VM_SWAP, 42);
	printf("set_key VmSwap=%lu field=%lu\n", (unsigned long)vm_stats_get_key_value(&mine, VM_SWAP),
			(unsigned long)mine.vm_swap);
	vm_stats_t *logged = log_vm_stats(getpid());
	printf("log_vm_stats %s\n", logged ? "ok" : "null");

	uint16_t cache = 0;
	asm_site_enter(&cache, 7, __FILE__, __LINE__, __func__);
	char *q = malloc(10);
	printf("site_enter cache_set=%d\n", cache != 0);
	free(q);
	free(p);
	printf("callbacks=%d\n", calls);
	return 0;
}
