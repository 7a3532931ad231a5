/* Helpers shared by the preload's C test programs in tests/c (which find
 * this header beside them) and the battery's helper programs in
 * tests/battery (built with -I tests/c): the xorshift64 generator, the
 * FNV-1a hash, dying with a message, CHECK, and asm_cmd with its arguments
 * in the call.
 *
 * Deliberately not used by: api.c (it calls the original interface exactly
 * as a program written against the original header would, built with
 * -pedantic -Werror), the battery's C project tests/battery/cproj (a
 * standalone project that gcc, make and cmake build as it is), and the
 * asmalloc command's tests/c (a server built with the call-site header and
 * a generated site table, which repeats none of these). */
#ifndef ASMALLOC_TEST_SUPPORT_H
#define ASMALLOC_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Marsaglia's xorshift64: advances the state (which must not be 0) and
 * returns the new state. */
static inline uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* FNV-1a, 64 bits: start from FNV1A_INIT; pass the result on to continue
 * over more bytes. */
#define FNV1A_INIT 1469598103934665603ULL
static inline uint64_t fnv1a(uint64_t h, const void *bytes, size_t n)
{
	const unsigned char *p = bytes;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Prints the message (printf-style) and a newline on stderr, and exits
 * with status 3. */
__attribute__((noreturn, format(printf, 1, 2))) static inline void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(3);
}

/* `p`, or die saying that `what` failed when it is NULL. */
static inline void *must(void *p, const char *what)
{
	if (p == NULL)
		die("%s failed", what);
	return p;
}

/* CHECK(cond): prints "FAILED line N: cond" on stdout when `cond` is false
 * and counts it in check_failures (the program reports and exits non-zero
 * when there were any). */
static int check_failures __attribute__((unused));
#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			printf("FAILED line %d: %s\n", __LINE__, #cond);         \
			check_failures++;                                        \
		}                                                                \
	} while (0)

#ifdef ASMALLOC_ASMALLOC_H
/* asm_cmd (which takes a va_list) with its arguments in the call. Defined
 * when asmalloc.h is included before this header. */
static inline int command(asm_cmd_t cmd, ...)
{
	va_list args;
	va_start(args, cmd);
	int rv = asm_cmd(cmd, args);
	va_end(args);
	return rv;
}
#endif

#if defined(ASMALLOC_ASMALLOC_H) && defined(ASMALLOC_TEST_WEAK_API)
/* For programs that also run without the library (to compare their output
 * with and without it): define ASMALLOC_TEST_WEAK_API and include
 * asmalloc.h before this header. The API becomes weak references, NULL when
 * no library is loaded. */
#pragma weak asm_mallocation_set
#pragma weak asm_mallocation_get

/* True when an asmalloc library is loaded. */
static inline int tracker_loaded(void)
{
	return asm_mallocation_set != NULL;
}

/* Names `site` for the thread's next allocation-family call (a no-op
 * without the library). */
static inline void set_site(uint16_t site)
{
	if (asm_mallocation_set != NULL)
		asm_mallocation_set(0, site, 0);
}
#endif

#endif
