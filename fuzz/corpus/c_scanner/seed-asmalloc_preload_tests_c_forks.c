/* fork without exec (the child keeps tracking and reporting), fork+exec,
 * and threads across a fork. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *spin(void *arg)
{
	for (int i = 0; i < 20000; i++)
		free(malloc(100 + (size_t)(i % 500)));
	return arg;
}

int main(int argc, char **argv)
{
	if (argc > 1) { /* the exec'd child */
		char *s = strdup(argv[1]);
		printf("exec child says %s\n", s);
		free(s);
		return 0;
	}
	pthread_t th;
	pthread_create(&th, NULL, spin, NULL); /* allocating while we fork */
	fflush(stdout);
	pid_t a = fork();
	if (a == 0) {
		char *keep[1000];
		for (int i = 0; i < 1000; i++)
			keep[i] = malloc(64);
		for (int i = 0; i < 1000; i++)
			free(keep[i]);
		printf("child pid %d\n", (int)getpid());
		fflush(stdout);
		usleep(400 * 1000); /* long enough for a periodic report */
		exit(0);
	}
	int status;
	waitpid(a, &status, 0);
	printf("child exit %d\n", WEXITSTATUS(status));
	fflush(stdout);
	pid_t b = fork();
	if (b == 0) {
		execl("/proc/self/exe", argv[0], "hello", (char *)NULL);
		_exit(127);
	}
	waitpid(b, &status, 0);
	printf("exec child exit %d\n", WEXITSTATUS(status));
	pthread_join(th, NULL);
	return 0;
}
