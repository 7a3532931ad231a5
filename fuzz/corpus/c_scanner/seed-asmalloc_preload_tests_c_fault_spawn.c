/* vfork, posix_spawn, popen and system: the parent keeps 100 blocks at
 * site 5 while it starts children that exec this program again (as
 * "fault_spawn child"), through vfork + execv, posix_spawn (with file
 * actions) and posix_spawnp; popen and system run /bin/sh. Each exec'd
 * child keeps 300 blocks at site 6, prints
 * "child <pid> site 6 bytes=<b> count=300" and exits with status 7.
 *
 * The parent prints one line per child with its status and
 * "site 5 bytes=<b> count=100". Runs the same without the library.
 *
 * Usage: fault_spawn [rounds] */
#define _GNU_SOURCE /* POSIX_SPAWN_USEVFORK */
#include <malloc.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "asmalloc.h"
#define ASMALLOC_TEST_WEAK_API
#include "test_support.h"

extern char **environ;

static int child(void)
{
	long long bytes = 0;
	void *b[300];
	for (int i = 0; i < 300; i++) {
		set_site(6);
		b[i] = must(malloc(24 + (size_t)i * 5), "malloc");
		bytes += (long long)malloc_usable_size(b[i]);
	}
	printf("child %d site 6 bytes=%lld count=300\n", (int)getpid(), bytes);
	return 7;
}

static void waited(const char *how, pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid (%s)", how);
	printf("%s: %s %d\n", how, WIFEXITED(status) ? "status" : "signal",
	       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return child();
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	long long bytes = 0;
	void *keep[100];
	for (int i = 0; i < 100; i++) {
		set_site(5);
		keep[i] = must(malloc(40 + (size_t)i), "malloc");
		bytes += (long long)malloc_usable_size(keep[i]);
	}
	char *args[] = {argv[0], "child", NULL};
	for (int r = 0; r < rounds; r++) {
		fflush(stdout);
		pid_t pid = vfork();
		if (pid < 0)
			die("vfork");
		if (pid == 0) {
			execv("/proc/self/exe", args);
			_exit(127);
		}
		waited("vfork+execv", pid);

		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, 1, 1);
		posix_spawn_file_actions_addopen(&fa, 9, "/dev/null", 0, 0);
		fflush(stdout);
		if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ) != 0)
			die("posix_spawn");
		posix_spawn_file_actions_destroy(&fa);
		waited("posix_spawn", pid);

		posix_spawnattr_t attr;
		posix_spawnattr_init(&attr);
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_USEVFORK);
		fflush(stdout);
		if (posix_spawnp(&pid, "/proc/self/exe", NULL, &attr, args, environ) != 0)
			die("posix_spawnp");
		posix_spawnattr_destroy(&attr);
		waited("posix_spawnp", pid);

		fflush(stdout);
		FILE *f = popen("echo popen says hello", "r");
		if (f == NULL)
			die("popen");
		char line[100];
		if (fgets(line, sizeof line, f) == NULL)
			die("popen read");
		printf("popen: %s", line);
		printf("popen: pclose %d\n", WEXITSTATUS(pclose(f)));
		fflush(stdout);
		printf("system: %d\n", WEXITSTATUS(system("exit 3")));
	}
	printf("site 5 bytes=%lld count=100\n", bytes);
	printf("spawn done\n");
	return 0;
}
