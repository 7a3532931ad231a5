/* The metrics tests' fork program (tests/metrics.rs): forks FORKS children
 * one after another while the parent's endpoint is being scraped (each
 * child allocates, frees and exits through exit(), so its own monitor
 * starts, samples and publishes), then forks one child that outlives the
 * parent by ORPHAN_MS, and exits. Prints "forks ok N" when every child
 * ended normally. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0)
		;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: metrics_fork FORKS ORPHAN_MS\n");
		return 2;
	}
	int forks = atoi(argv[1]);
	long orphan_ms = atol(argv[2]);
	for (int i = 0; i < forks; i++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			return 3;
		if (pid == 0) {
			char *p = malloc(1000 + i);
			memset(p, i, 1000 + i);
			free(p);
			sleep_ms(20);
			exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			return 4;
		sleep_ms(10);
	}
	printf("forks ok %d\n", forks);
	fflush(stdout);
	if (fork() == 0) {
		/* The orphan: keeps nothing of the parent's stdout (the test reads
		 * it to its end) and outlives the parent. */
		int null = open("/dev/null", O_WRONLY);
		if (null < 0 || dup2(null, 1) < 0)
			_exit(5);
		close(null);
		sleep_ms(orphan_ms);
		_exit(0);
	}
	return 0;
}
