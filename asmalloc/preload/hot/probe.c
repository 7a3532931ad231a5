/* What every process does through libasmalloc: the calls of the C
 * allocation family a program makes on its main thread and on a thread it
 * starts, then exit (the report). hot/regenerate runs it, with the bench's
 * workloads, under callgrind to find the library functions that run in
 * every process (see docs/preload.md, "Resident memory").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

static void work(void) {
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(16 + i % 512);
        char *q = calloc(4, 16 + i % 64);
        p = realloc(p, 4096 + i);
        memset(p, 1, 16);
        void *a = NULL;
        if (posix_memalign(&a, 64, 256) == 0)
            free(a);
        void *b = aligned_alloc(32, 128);
        void *c = memalign(16, 64);
        void *d = strdup("probe");
        (void)malloc_usable_size(q);
        free(b);
        free(c);
        free(d);
        free(q);
        free(p);
    }
    char *big = malloc(1 << 20); /* mmap'd by the heap */
    big[0] = 1;
    free(big);
}

static void *thread(void *arg) {
    (void)arg;
    work();
    return NULL;
}

int main(void) {
    pthread_t t;
    work();
    if (pthread_create(&t, NULL, thread, NULL) != 0)
        return 1;
    pthread_join(t, NULL);
    char *live = malloc(100); /* still live at exit */
    return live == NULL;
}
