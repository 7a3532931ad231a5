/* Loads a plugin with dlopen after start, waits for the monitor to sample
 * (it finds the plugin then), and has it keep 2,000 blocks of 1,000 bytes
 * and allocate and free 2,000 of 3,000. With a second argument, it then
 * unloads the plugin, loads it again and at once (before the monitor can
 * have seen the change) does the same again. */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW);
	if (h == NULL) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	void (*keep)(size_t) = (void (*)(size_t))dlsym(h, "plugin_keep");
	void (*scratch)(size_t) = (void (*)(size_t))dlsym(h, "plugin_scratch");
	if (keep == NULL || scratch == NULL)
		return 1;
	usleep(300 * 1000);
	for (int i = 0; i < 2000; i++) {
		keep(1000);
		scratch(3000);
	}
	if (argc == 3) {
		dlclose(h);
		h = dlopen(argv[1], RTLD_NOW);
		if (h == NULL)
			return 1;
		keep = (void (*)(size_t))dlsym(h, "plugin_keep");
		scratch = (void (*)(size_t))dlsym(h, "plugin_scratch");
		if (keep == NULL || scratch == NULL)
			return 1;
		for (int i = 0; i < 2000; i++) {
			keep(1000);
			scratch(3000);
		}
		printf("reloaded, kept 2000 more\n");
	}
	printf("kept 2000\n");
	return 0;
}
