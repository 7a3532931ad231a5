#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wordfreq.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: wordfreq INPUT OUTPUT\n");
		return 2;
	}
	size_t len;
	char *text = read_file(argv[1], &len);
	if (!text) {
		perror(argv[1]);
		return 1;
	}
	struct table *t = table_new(64);
	long words = 0;
	for (size_t i = 0; i < len;) {
		while (i < len && !is_word_byte((unsigned char)text[i]))
			i++;
		size_t start = i;
		while (i < len && is_word_byte((unsigned char)text[i])) {
			text[i] = (char)tolower((unsigned char)text[i]);
			i++;
		}
		if (i > start) {
			table_add(t, text + start, i - start);
			words++;
		}
	}
	size_t n;
	struct entry *sorted = table_sorted(t, &n);
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = sum * 31 + fnv1a(sorted[i].word, strlen(sorted[i].word)) + (uint64_t)sorted[i].count;
	printf("%ld words, %zu distinct, checksum %016llx\n", words, n, (unsigned long long)sum);
	for (size_t i = 0; i < n && i < 5; i++)
		printf("%6ld %s\n", sorted[i].count, sorted[i].word);
	int rc = write_counts(argv[2], sorted, n);
	free(sorted);
	table_free(t);
	free(text);
	return rc == 0 ? 0 : 1;
}
