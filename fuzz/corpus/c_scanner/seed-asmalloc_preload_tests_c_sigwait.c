/* A program that takes its signals synchronously: it blocks SIGUSR1 and
 * SIGCHLD in its only thread, sends itself SIGUSR1 and forks a child, then
 * collects both with sigwait. Process-directed signals go to a thread that
 * does not block them: if the library's own threads (reporter, monitor) did
 * not block every signal, SIGUSR1 would be delivered there and its default
 * action would kill the process. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return 2;
	void *p = malloc(100);
	kill(getpid(), SIGUSR1);
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	int got = 0, seen = 0;
	while (seen != 3) {
		if (sigwait(&set, &got) != 0)
			return 3;
		seen |= got == SIGUSR1 ? 1 : got == SIGCHLD ? 2 : 0;
	}
	waitpid(child, NULL, 0);
	free(p);
	printf("both signals taken by sigwait\n");
	return 0;
}
