/* Says who it runs as and whether an asmalloc library is in the process
 * (asm_hook can be found), after allocating a little. The safe-output tests
 * run it under the library with report and log files in a shared
 * directory, and as a set-user-ID copy. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char *p = malloc(100);
	strcpy(p, "probe");
	printf("%s: euid %d ruid %d asmalloc %s\n", p, (int)geteuid(), (int)getuid(),
	       dlsym(RTLD_DEFAULT, "asm_hook") != NULL ? "present" : "absent");
	free(p);
	return 0;
}
