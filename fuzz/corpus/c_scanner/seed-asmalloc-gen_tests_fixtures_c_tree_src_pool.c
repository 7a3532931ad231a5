/* pool.c — allocation sites of every common shape.
 * Not sites: malloc(1) in this comment. */
#include <stdlib.h>
#include <string.h>
#include "util/cf.h"

struct pool {
	void *(*alloc)(size_t);
	void (*free)(void *);
	char *name;
};

static const char *msg = "calloc(3, 4) in a string";
static const char quote = '(';

void *pool_grow(struct pool *p, size_t n)
{
	void *b = malloc(n);              // plain call
	char *s = (char *)calloc(1,
	                         n);      // multi-line call
	void *c = (*(&malloc))(n);        /* through a pointer expression */
	void *d = (realloc)(b, n * 2);
	p->free(s);                       /* member call: not a site */
	p->name = strdup("pool");
	free(c);
	return d ? d : (void *)msg;
}

#if 0
void dead(void) { free(malloc(3)); } /* don't count */
#elif 0
void dead2(void) { free(0); }
#else
static void alive(void) { free(strndup("ab", 1)); }
#endif

#if 1
static void on(void *p) { free(p); }
#else
static void off(void *p) { free(p); }
#endif

#ifdef POOL_DEBUG
int pool_check(struct pool *p, int verbose) {
#else
int pool_check(struct pool *p) {
#endif
	char *t = cf_malloc(16);
	cf_free(t);
	return p != 0;
}

/* K&R definition */
void *
old_style(n, m)
	size_t n;
	size_t m;
{
	return reallocarray(NULL, n, m);
}

int aligned(void **out)
{
	void *v = valloc(64); void *w = pvalloc(64); free(v); free(w);
	*out = memalign(64, 128);
	if (posix_memalign(out, 64, 128) != 0)
		return -1;
	return aligned_alloc(64, 128) != NULL;
}

void callbacks(void (*each)(void (*)(void *)))
{
	each(free);                       /* a pointer, not a call */
	each(&free);
	(void)quote;
	on(0);
	alive();
}
