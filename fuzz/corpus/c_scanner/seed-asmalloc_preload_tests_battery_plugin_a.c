/* Plugin A: a word table built in its constructor (malloc, strdup), freed
 * in its destructor; each call concatenates table words with realloc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char **table;
static size_t table_len;
static size_t calls;

__attribute__((constructor)) static void plugin_a_init(void)
{
	static const char *const syll[] = {"ka", "lo", "mi", "ne", "su", "ta", "ri", "vo"};
	table_len = 256;
	table = malloc(table_len * sizeof *table);
	for (size_t i = 0; i < table_len; i++) {
		char w[16];
		snprintf(w, sizeof w, "%s%s%s", syll[i % 8], syll[(i / 8) % 8], syll[(i / 64) % 8]);
		table[i] = strdup(w);
	}
}

__attribute__((destructor)) static void plugin_a_fini(void)
{
	for (size_t i = 0; i < table_len; i++)
		free(table[i]);
	free(table);
}

const char *plugin_name(void)
{
	return "plugin-a";
}

size_t plugin_kept(void)
{
	return calls;
}

char *plugin_process(const char *in)
{
	calls++;
	size_t h = 5381;
	for (const char *c = in; *c; c++)
		h = h * 33 + (unsigned char)*c;
	char *out = NULL;
	size_t len = 0;
	for (int k = 0; k < 6; k++) {
		const char *w = table[(h >> (k * 5)) % table_len];
		size_t wl = strlen(w);
		out = realloc(out, len + wl + 2);
		memcpy(out + len, w, wl);
		len += wl;
		out[len++] = k < 5 ? '-' : '\0';
	}
	return out;
}
