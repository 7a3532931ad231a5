#include <stdio.h>

#include "wordfreq.h"

int write_counts(const char *path, const struct entry *e, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%ld %s\n", e[i].count, e[i].word);
	return fclose(f);
}
