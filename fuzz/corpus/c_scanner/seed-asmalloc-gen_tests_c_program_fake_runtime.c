/* Strong definitions of the two runtime entry points, standing in for the
 * LD_PRELOAD library: they check the ABI the generated files use. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mallocations.h"

static const mallocation_t *g_table;
static size_t g_num;

int asm_register_mallocations(const char *const *type_names, size_t num_types,
		const mallocation_t *table, size_t num_mallocations)
{
	g_table = table;
	g_num = num_mallocations;
	fprintf(stderr, "register: %zu types (%s..%s), %zu sites, stride %zu\n", num_types,
			type_names[0], type_names[num_types - 1], num_mallocations, sizeof *table);
	return 0;
}

/* Table file equals __FILE__ or is a suffix of it after a '/'. */
static int file_matches(const char *table_file, const char *file)
{
	size_t t = strlen(table_file), f = strlen(file);
	if (t == 0 || t > f)
		return 0;
	if (strcmp(file + (f - t), table_file) != 0)
		return 0;
	return t == f || file[f - t - 1] == '/';
}

void asm_site_enter(uint16_t *cache, uint16_t type, const char *file, int line,
		const char *function)
{
	if (*cache == 0) {
		for (size_t i = 1; i < g_num; i++) {
			if (g_table[i].line == line && (uint16_t)g_table[i].type == type
					&& file_matches(g_table[i].file, file)) {
				*cache = (uint16_t)g_table[i].id;
				break;
			}
		}
		fprintf(stderr, "enter: %s:%d %s type %u -> id %u\n", file, line, function,
				(unsigned)type, (unsigned)*cache);
	}
}
