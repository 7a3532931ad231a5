/*
 * vm_stats.h — process virtual-memory statistics, as in the original
 * ASMalloc interface (aerospike/asmalloc include/vm_stats.h).
 *
 * Provided by libasmalloc.so (the asmalloc LD_PRELOAD library). The values
 * are the "Vm*" lines of /proc/<pid>/status, in kB; a line the kernel does
 * not provide reads as UINT64_MAX.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#ifndef ASMALLOC_VM_STATS_H
#define ASMALLOC_VM_STATS_H
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One statistic: its /proc key name and its byte offset in vm_stats_t. */
typedef struct vm_stats_desc_s {
	char *name;
	size_t offset;
} vm_stats_desc_t;

/* VM_NUM_KEYS descriptions in vm_stats_key_t order, then { NULL, 0 }. */
extern vm_stats_desc_t vm_stats_desc[];

/* A process's VM statistics, all in kB (UINT64_MAX = not reported). */
typedef struct vm_stats_s {
	vm_stats_desc_t *desc; /* vm_stats_desc */
	uint64_t
		vm_peak,  /* VmPeak: peak virtual size */
		vm_size,  /* VmSize: virtual size */
		vm_lck,   /* VmLck: mlock()ed */
		vm_pin,   /* VmPin: pinned */
		vm_hwm,   /* VmHWM: peak resident set */
		vm_rss,   /* VmRSS: resident set */
		vm_data,  /* VmData: data segment */
		vm_stk,   /* VmStk: stack */
		vm_exe,   /* VmExe: text segment */
		vm_lib,   /* VmLib: shared library code */
		vm_pte,   /* VmPTE: page tables */
		vm_swap;  /* VmSwap: swapped out */
} vm_stats_t;

/* Index of each statistic in vm_stats_desc[]. */
typedef enum vm_stats_key_e {
	VM_PEAK,
	VM_SIZE,
	VM_LCK,
	VM_PIN,
	VM_HWM,
	VM_RSS,
	VM_DATA,
	VM_STK,
	VM_EXE,
	VM_LIB,
	VM_PTE,
	VM_SWAP,
	VM_NUM_KEYS
} vm_stats_key_t;

/* The /proc key name of `key`, e.g. "VmRSS". */
#define vm_stats_key_name(key) (vm_stats_desc[(key)].name)

/* The value of `key` in the vm_stats_t that `vm_stats_tp` points to. */
#define vm_stats_get_key_value(vm_stats_tp, key) \
	(*(uint64_t *)(((char *)(vm_stats_tp)) + vm_stats_desc[(key)].offset))

/* Sets the value of `key` in the vm_stats_t that `vm_stats_tp` points to. */
#define vm_stats_set_key_value(vm_stats_tp, key, val) \
	((*(uint64_t *)(((char *)(vm_stats_tp)) + vm_stats_desc[(key)].offset)) = (val))

/* Reads process `pid`'s statistics (0 = the calling process) into *stats.
 * Returns 0, or -1 if /proc/<pid>/status cannot be read. */
int get_vm_stats(int pid, vm_stats_t *stats);

/* Reads and logs process `pid`'s statistics; returns a pointer to a
 * library-owned copy (overwritten by the next call), NULL on failure. */
vm_stats_t *log_vm_stats(int pid);

#ifdef __cplusplus
}
#endif

#endif /* ASMALLOC_VM_STATS_H */
