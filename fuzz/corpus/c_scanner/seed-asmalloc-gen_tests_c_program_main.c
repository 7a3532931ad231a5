/* A small multi-file program used by tests/compile_c.rs. It prints its own
 * allocation results, then the table entry of one of its sites. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallocations.h"
#include "worker.h"

static const mallocation_t *find_site(const char *function, mallocation_type_t type)
{
	for (int i = 1; i < NUM_MALLOCATIONS; i++) {
		if (mallocations[i].function && strcmp(mallocations[i].function, function) == 0
				&& mallocations[i].type == type)
			return &mallocations[i];
	}
	return NULL;
}

int main(void)
{
	char *s = strdup("hello");
	char *b = make_buf(16);
	int *v = calloc(4, sizeof *v);
	v = realloc(v, 8 * sizeof *v);
	printf("%s %zu %d\n", s, strlen(b), v[0]);
	free(v);
	release(b);
	free(s);

	const mallocation_t *m = find_site("make_buf", MALLOCATION_TYPE_MALLOC);
	if (!m)
		return 1;
	printf("site %d: %s %s:%d %s\n", m->id, mallocation_type_short_names[m->type],
			m->file, m->line, m->function);
	printf("types %d sites %d first %s\n", NUM_MALLOCATION_TYPES, NUM_MALLOCATIONS,
			mallocation_type_names[MALLOCATION_TYPE_MALLOC]);
	return 0;
}
