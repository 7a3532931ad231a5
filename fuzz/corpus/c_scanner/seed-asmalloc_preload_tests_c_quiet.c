/* A program that allocates little or nothing: with no argument it does
 * nothing at all; with one it resizes NULL (= malloc), frees, and makes ten
 * malloc/free pairs. Run under the library with the monitor and log on, its
 * exit report must show exactly zero net blocks and bytes and no foreign
 * free: the library's own allocations (monitor thread, log writer, thread
 * destructor lists) are never the program's. */
#include <stdlib.h>

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		void *p = realloc(NULL, 16);
		free(p);
		void *v[10];
		for (int i = 0; i < 10; i++)
			v[i] = malloc(16 + (size_t)i * 8);
		for (int i = 0; i < 10; i++)
			free(v[i]);
	}
	return 0;
}
