#ifndef CF_H
#define CF_H
#include <stddef.h>

/* Declarations are not sites. */
extern void *malloc(size_t size);
void free(void *);
void *(calloc)(size_t, size_t);
extern char *strdup(const char *s) __attribute__((malloc, malloc(free, 1)));

void *cf_malloc(size_t sz);
void cf_free(void *p);

/* A call inside a macro body is a site at the #define's line, named after
 * the macro. */
#define CF_STRDUP(s) \
	cf_strdup_impl(strdup(s), \
	               __FILE__)

#define CF_ZALLOC(n) calloc(1, (n))
#define NOT_A_CALL free

static inline char *cf_strdup_impl(char *s, const char *file)
{
	(void)file;
	return s;
}

#endif
