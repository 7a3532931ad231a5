/* The suite's launcher: runs a measured command as its own child and
 * writes that child's peak RSS (ru_maxrss, KiB) to a file.
 *
 *   launch REPORT PROGRAM [ARGS...]
 *
 * Why: Linux keeps, as a process's ru_maxrss, the larger of its peak
 * before and after execve. A child the suite spawns directly starts as a
 * vfork of the suite (posix_spawn), so its pre-exec peak is the suite's
 * whole resident set, a few MiB: every program smaller than the suite
 * measured the suite. This launcher is small, and its child is a fork of
 * it (page tables of its few written pages), so the child's ru_maxrss is
 * the program's own.
 *
 * The environment variable ASMALLOC_BENCH_PRELOAD, if set, becomes the
 * child's LD_PRELOAD (the suite passes the preload this way so that the
 * launcher itself runs without it). SIGTERM, SIGINT, SIGHUP, SIGQUIT,
 * SIGUSR1 and SIGUSR2 are passed on to the child; if the launcher dies
 * (SIGKILL on a timeout), the child is killed too (PR_SET_PDEATHSIG). The
 * launcher exits with the child's status, or dies of the child's signal.
 * CPU time needs nothing: the launcher waits for its child, so the
 * suite's wait4 on the launcher counts the child's.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int main(int argc, char **argv)
{
	static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	if (argc < 3) {
		fprintf(stderr, "usage: launch REPORT PROGRAM [ARGS...]\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = pass_on;
	sigemptyset(&sa.sa_mask);
	/* Blocked until the child's pid is known. */
	sigset_t block, old;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
		sigaction(forwarded[i], &sa, NULL);
		sigaddset(&block, forwarded[i]);
	}
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		perror("launch: fork");
		return 127;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
			signal(forwarded[i], SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		const char *preload = getenv("ASMALLOC_BENCH_PRELOAD");
		if (preload) {
			setenv("LD_PRELOAD", preload, 1);
			unsetenv("ASMALLOC_BENCH_PRELOAD");
		}
		execvp(argv[2], argv + 2);
		fprintf(stderr, "launch: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	child = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("launch: wait4");
			return 127;
		}
	}
	FILE *report = fopen(argv[1], "w");
	if (!report || fprintf(report, "%ld\n", ru.ru_maxrss) < 0 || fclose(report) != 0) {
		perror("launch: writing the report");
		return 127;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		raise(WTERMSIG(status));
	}
	return 127;
}
