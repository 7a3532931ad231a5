#include <stdlib.h>
#include <string.h>

#include "wordfreq.h"

struct table *table_new(size_t cap)
{
	struct table *t = malloc(sizeof *t);
	if (!t)
		abort();
	t->cap = cap;
	t->len = 0;
	t->slots = calloc(cap, sizeof *t->slots);
	if (!t->slots)
		abort();
	return t;
}

static struct entry *find(struct entry *slots, size_t cap, const char *w, size_t len)
{
	size_t i = fnv1a(w, len) & (cap - 1);
	for (;;) {
		struct entry *e = &slots[i];
		if (!e->word || (strncmp(e->word, w, len) == 0 && e->word[len] == '\0'))
			return e;
		i = (i + 1) & (cap - 1);
	}
}

static void grow(struct table *t)
{
	size_t cap = t->cap * 2;
	struct entry *slots = calloc(cap, sizeof *slots);
	if (!slots)
		abort();
	for (size_t i = 0; i < t->cap; i++) {
		struct entry *e = &t->slots[i];
		if (e->word)
			*find(slots, cap, e->word, strlen(e->word)) = *e;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
}

void table_add(struct table *t, const char *word, size_t len)
{
	if ((t->len + 1) * 4 > t->cap * 3)
		grow(t);
	struct entry *e = find(t->slots, t->cap, word, len);
	if (!e->word) {
		e->word = strndup(word, len);
		if (!e->word)
			abort();
		t->len++;
	}
	e->count++;
}

static int by_count(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->word, y->word);
}

struct entry *table_sorted(const struct table *t, size_t *n)
{
	struct entry *out = malloc((t->len ? t->len : 1) * sizeof *out);
	if (!out)
		abort();
	size_t k = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].word)
			out[k++] = t->slots[i];
	qsort(out, k, sizeof *out, by_count);
	*n = k;
	return out;
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].word);
	free(t->slots);
	free(t);
}
