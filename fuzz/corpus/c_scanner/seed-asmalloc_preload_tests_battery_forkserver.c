/* A forking echo server for the battery: listens on 127.0.0.1:PORT, accepts
 * exactly N connections and forks a child for each; the child reads lines,
 * allocates while answering each one (the line's words reversed, with a
 * hash), keeps a history it frees at the end, and exits with exit(3) (so a
 * preloaded library's exit handlers run in every child). The parent reaps
 * every child and prints one summary line. Usage: forkserver PORT N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"

/* The words of `line` in reverse order, in a new block. */
static char *reverse_words(const char *line)
{
	char *copy = strdup(line);
	char **words = NULL;
	size_t n = 0, cap = 0, total = 1;
	char *save = NULL;
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			words = must(realloc(words, cap * sizeof *words), "realloc");
		}
		words[n++] = strdup(w);
		total += strlen(w) + 1;
	}
	char *out = must(malloc(total), "malloc");
	out[0] = '\0';
	for (size_t i = n; i-- > 0;) {
		strcat(out, words[i]);
		if (i)
			strcat(out, " ");
		free(words[i]);
	}
	free(words);
	free(copy);
	return out;
}

static void serve(int fd)
{
	FILE *in = fdopen(fd, "r");
	FILE *out = fdopen(dup(fd), "w");
	if (!in || !out)
		die("forkserver: fdopen failed");
	char *line = NULL, **history = NULL;
	size_t cap = 0, nhist = 0;
	ssize_t len;
	long lines = 0;
	while ((len = getline(&line, &cap, in)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (strcmp(line, "QUIT") == 0)
			break;
		char *rev = reverse_words(line);
		char *resp;
		uint64_t hash = fnv1a(FNV1A_INIT, rev, strlen(rev));
		if (asprintf(&resp, "%ld %s %016llx\n", lines, rev, (unsigned long long)hash) < 0)
			die("forkserver: asprintf failed");
		fputs(resp, out);
		fflush(out);
		free(resp);
		history = must(realloc(history, (nhist + 1) * sizeof *history), "realloc");
		history[nhist++] = rev;
		lines++;
	}
	size_t kept = 0;
	for (size_t i = 0; i < nhist; i++) {
		kept += strlen(history[i]);
		free(history[i]);
	}
	fprintf(out, "BYE %ld lines %zu bytes\n", lines, kept);
	free(history);
	free(line);
	fclose(out);
	fclose(in);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: forkserver PORT N\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	/* A client that connects and goes away (the test's readiness probe)
	 * must not kill its child. */
	signal(SIGPIPE, SIG_IGN);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 64) != 0) {
		perror("forkserver: bind/listen");
		return 1;
	}
	pid_t *kids = calloc((size_t)n, sizeof *kids);
	int ok = 0, reaped = 0;
	for (int i = 0; i < n;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("forkserver: accept");
			return 1;
		}
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(fd);
			exit(0);
		}
		if (pid < 0) {
			perror("forkserver: fork");
			return 1;
		}
		close(fd);
		kids[i++] = pid;
		int status;
		while (waitpid(-1, &status, WNOHANG) > 0) {
			reaped++;
			ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
		}
	}
	close(lfd);
	int status;
	while (reaped < n && waitpid(-1, &status, 0) > 0) {
		reaped++;
		ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	free(kids);
	printf("served %d connections; %d children exited with status 0\n", n, ok);
	return ok == n ? 0 : 1;
}
