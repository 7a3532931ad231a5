/*
 * The C part of libasmalloc.so: what stable Rust cannot express.
 *
 * 1. asm_cmd() takes a va_list. The exported asm_cmd is Rust; on every
 *    supported ABI a va_list parameter is passed as a pointer, which Rust
 *    hands to asmalloc_shim_cmd_args() here to pull the arguments with
 *    va_arg into a plain struct.
 * 2. The thread start trampoline of the pthread_create wrapper. It is C so
 *    that pthread_exit() and cancellation, which unwind the thread's stack,
 *    pass through an ordinary frame with unwind tables.
 *
 * Nothing here allocates or is visible outside the library.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "asmalloc.h"

struct asmalloc_cmd_args {
	uint64_t features;
	size_t block_size;
	size_t delta_size;
	int64_t delta_time;
	void *callback;
	void *udata;
};

/* Reads the arguments command `cmd` takes; returns 0, or -1 for an unknown
 * command (nothing is read then). */
int asmalloc_shim_cmd_args(int cmd, va_list args, struct asmalloc_cmd_args *out)
{
	switch (cmd) {
	case ASM_CMD_SET_FEATURES:
		out->features = va_arg(args, uint64_t);
		return 0;
	case ASM_CMD_SET_THRESHOLDS:
		out->block_size = va_arg(args, size_t);
		out->delta_size = va_arg(args, size_t);
		out->delta_time = (int64_t)va_arg(args, time_t);
		return 0;
	case ASM_CMD_SET_CALLBACK:
		out->callback = va_arg(args, void *);
		out->udata = va_arg(args, void *);
		return 0;
	case ASM_CMD_PRINT_STATS:
		return 0;
	default:
		return -1;
	}
}

/* Filled by the pthread_create wrapper (in memory from the real allocator)
 * and consumed by the trampoline. */
struct asmalloc_launch {
	void *(*start_routine)(void *);
	void *arg;
	/* Frees the launch record, names and registers the thread. */
	void (*started)(struct asmalloc_launch *);
};

void *asmalloc_shim_trampoline(void *p)
{
	struct asmalloc_launch *launch = p;
	void *(*start_routine)(void *) = launch->start_routine;
	void *arg = launch->arg;
	launch->started(launch); /* frees `launch` */
	return start_routine(arg);
}

#ifdef ASMALLOC_JEMALLOC
/*
 * 3. libasmalloc_jem.so only: where jemalloc's own calls to mmap, munmap
 *    and sbrk go. The library is linked with -Wl,--wrap=mmap (etc.), so the
 *    jemalloc objects' references land here instead of on the library's
 *    exported, counting mmap: the mappings the allocator makes for the heap
 *    are not the program's mappings (as glibc's internal ones are not).
 *    Raw system calls (glibc's own mmap symbol would resolve back to this
 *    library); sbrk goes to glibc's __sbrk, which keeps its idea of the
 *    break consistent.
 */
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

extern void *__sbrk(intptr_t increment);

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, offset);
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, offset);
}

int __wrap_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

void *__wrap_sbrk(intptr_t increment)
{
	return __sbrk(increment);
}
#endif
