/* wordfreq: a small multi-file C project the battery builds with gcc, make
 * and cmake (and then runs): counts the words of a text file. */
#ifndef WORDFREQ_H
#define WORDFREQ_H

#include <stddef.h>
#include <stdint.h>

struct entry {
	char *word;
	long count;
};

struct table {
	struct entry *slots;
	size_t cap;
	size_t len;
};

/* table.c */
struct table *table_new(size_t cap);
void table_add(struct table *t, const char *word, size_t len);
struct entry *table_sorted(const struct table *t, size_t *n);
void table_free(struct table *t);

/* strutil.c */
uint64_t fnv1a(const char *s, size_t len);
char *read_file(const char *path, size_t *len);
int is_word_byte(int c);

/* sortout.c */
int write_counts(const char *path, const struct entry *e, size_t n);

#endif
