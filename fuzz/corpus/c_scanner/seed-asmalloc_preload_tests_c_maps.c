#define _GNU_SOURCE
/* Net mmap and net System V shared memory, exactly. */
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include "asmalloc.h"

static void show(const char *when)
{
	asm_stats_t *s = NULL;
	asm_hook(NULL, &s, NULL);
	printf("%s net_mmaps=%zu net_shm=%zu\n", when, s->net_mmaps, s->net_shm);
}

int main(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	show("start");
	char *a = mmap(NULL, 10 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *b = mmap(NULL, 3 * page + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a[0] = b[0] = 1;
	show("mapped");
	munmap(a, 10 * page);
	show("unmapped");
	b = mremap(b, 4 * page, 8 * page, MREMAP_MAYMOVE);
	show("remapped");
	munmap(b, 8 * page);

	int id = shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0600);
	if (id < 0) {
		printf("shmget failed\n");
		return 0;
	}
	char *s1 = shmat(id, NULL, 0);
	char *s2 = shmat(id, NULL, SHM_RDONLY);
	s1[0] = 1;
	show("attached");
	shmdt(s1);
	show("detached one");
	shmdt(s2);
	shmctl(id, IPC_RMID, NULL);
	show("detached all");
	return 0;
}
