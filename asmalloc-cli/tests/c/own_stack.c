/* A program that asks glibc where its own stack is, first thing, on the
 * main thread and on new threads (as Ruby's ruby_init_stack, the JVM and
 * Rust's standard library do). glibc's pthread_getattr_np allocates while
 * it holds the thread's own lock (fopen of /proc/self/maps on the main
 * thread, a CPU set on every thread): a tracker that asks the same thing
 * from inside that allocation waits for itself forever.
 *
 * Usage: own_stack THREADS BLOCKS — each thread (and main) asks, then
 * keeps BLOCKS blocks of 1 KiB in keep_block, frees nothing, and prints
 * the total it kept. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long blocks;

__attribute__((noinline)) static void *keep_block(void) {
    void *p = malloc(1024);
    if (p) memset(p, 1, 1024);
    return p;
}

static void *ask_and_keep(void *arg) {
    (void)arg;
    pthread_attr_t attr;
    void *base;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) abort();
    if (pthread_attr_getstack(&attr, &base, &size) != 0 || size == 0) abort();
    pthread_attr_destroy(&attr);
    long kept = 0;
    for (long i = 0; i < blocks; i++)
        if (keep_block()) kept++;
    return (void *)kept;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: own_stack THREADS BLOCKS\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    blocks = atol(argv[2]);
    long total = (long)ask_and_keep(NULL);
    pthread_t tid[64];
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, ask_and_keep, NULL) != 0) abort();
    for (int i = 0; i < threads; i++) {
        void *kept;
        pthread_join(tid[i], &kept);
        total += (long)kept;
    }
    printf("kept %ld blocks\n", total);
    return 0;
}
