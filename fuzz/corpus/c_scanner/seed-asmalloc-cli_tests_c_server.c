/* A small server for the end-to-end tests: worker threads handle requests
 * (churn: every buffer is freed), a producer hands messages to a consumer
 * thread that frees them (frees on another thread), and cache.c keeps a
 * little of every request (the leak) — or, in "rise" mode, keeps it for a
 * while and then lets it all go (a legitimate temporary rise).
 *
 * usage: server MODE SECONDS   (MODE: leak, rise, quick)
 * Built with -include asmalloc_sites.h and the generated mallocations.c;
 * without the preload it behaves exactly the same. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

static double seconds = 1.0;
static int quick = 0;
static volatile int stop = 0;
static unsigned long handled[3];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct msg {
    struct msg *next;
    char text[100];
};

static struct msg *queue = NULL;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

static struct msg *msg_new(unsigned long n) {
    struct msg *m = malloc(sizeof *m);
    snprintf(m->text, sizeof m->text, "message %lu", n);
    return m;
}

static void *producer(void *arg) {
    (void)arg;
    /* Quick mode makes exactly 2001 messages, however the threads are
     * scheduled, so the output is the same with and without the library. */
    for (unsigned long n = 0; quick || !stop; n++) {
        struct msg *m = msg_new(n);
        pthread_mutex_lock(&queue_lock);
        m->next = queue;
        queue = m;
        pthread_mutex_unlock(&queue_lock);
        if (!quick) usleep(200);
        if (quick && n >= 2000) break;
    }
    return NULL;
}

static unsigned long consumed = 0;

static void drain(void) {
    pthread_mutex_lock(&queue_lock);
    struct msg *m = queue;
    queue = NULL;
    pthread_mutex_unlock(&queue_lock);
    while (m) {
        struct msg *next = m->next;
        consumed++;
        free(m);
        m = next;
    }
}

static void *consumer(void *arg) {
    (void)arg;
    while (!stop) {
        drain();
        usleep(500);
    }
    return NULL;
}

static void handle(unsigned long id, int keep) {
    char *request = malloc(4096);
    memset(request, 'r', 4096);
    char *fields = calloc(32, sizeof(long));
    char *name = strdup("session");
    cache_touch(fields, name); /* another file: the compiler cannot drop them */
    /* Two calls on one line, one inside the other's argument. */
    char *copy = malloc(consume_len(strdup(name)));
    cache_touch(copy, name);
    free(copy);
    if (keep) cache_put(id, request, 1024);
    free(name);
    free(fields);
    free(request);
}

static void *worker(void *arg) {
    int w = (int)(long)arg;
    double end = now() + seconds;
    for (unsigned long i = 0; quick ? i < 1000 : now() < end; i++) {
        /* rise mode: keep for the first half, then drop everything */
        int keep = cache_mode_keeps(now() - (end - seconds), seconds);
        handle(i * 3 + w, keep);
        handled[w]++;
        if (!quick) usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "quick";
    seconds = argc > 2 ? atof(argv[2]) : 1.0;
    quick = strcmp(mode, "quick") == 0;
    cache_set_mode(mode);
    pthread_t workers[3], prod, cons;
    pthread_create(&prod, NULL, producer, NULL);
    pthread_create(&cons, NULL, consumer, NULL);
    for (long w = 0; w < 3; w++) pthread_create(&workers[w], NULL, worker, (void *)w);
    for (int w = 0; w < 3; w++) pthread_join(workers[w], NULL);
    if (!quick) cache_settle(seconds);
    stop = 1;
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    drain();
    printf("handled %lu requests, %lu messages, %lu cached\n",
           handled[0] + handled[1] + handled[2], consumed, cache_size());
    return 0;
}
