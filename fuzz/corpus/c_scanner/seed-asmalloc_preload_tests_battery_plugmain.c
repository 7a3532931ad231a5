/* Loads plugins with dlopen, calls them, unloads them with dlclose, several
 * rounds. The plugins allocate in their constructors, on every call and
 * free in their destructors. Usage: plugmain ROUNDS CALLS PLUGIN.so... */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef const char *(*name_fn)(void);
typedef char *(*process_fn)(const char *);
typedef size_t (*kept_fn)(void);

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: plugmain ROUNDS CALLS PLUGIN...\n");
		return 2;
	}
	int rounds = atoi(argv[1]), calls = atoi(argv[2]);
	for (int r = 0; r < rounds; r++) {
		for (int p = 3; p < argc; p++) {
			void *h = dlopen(argv[p], RTLD_NOW | RTLD_LOCAL);
			if (!h) {
				fprintf(stderr, "dlopen: %s\n", dlerror());
				return 1;
			}
			name_fn name = (name_fn)dlsym(h, "plugin_name");
			process_fn process = (process_fn)dlsym(h, "plugin_process");
			kept_fn kept = (kept_fn)dlsym(h, "plugin_kept");
			if (!name || !process || !kept) {
				fprintf(stderr, "dlsym: %s\n", dlerror());
				return 1;
			}
			uint64_t h64 = 1469598103934665603ULL;
			for (int i = 0; i < calls; i++) {
				char in[64];
				snprintf(in, sizeof in, "item %d of round %d", i, r);
				char *out = process(in);
				for (char *c = out; *c; c++)
					h64 = (h64 ^ (unsigned char)*c) * 1099511628211ULL;
				if (i == calls - 1)
					printf("%s round %d: %s\n", name(), r, out);
				free(out);
			}
			printf("%s round %d: kept %zu, checksum %016llx\n", name(), r, kept(),
			       (unsigned long long)h64);
			if (dlclose(h) != 0) {
				fprintf(stderr, "dlclose: %s\n", dlerror());
				return 1;
			}
		}
	}
	return 0;
}
