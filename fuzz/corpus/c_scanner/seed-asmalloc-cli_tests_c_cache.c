/* The session cache: in "leak" and "quick" modes it keeps every entry
 * forever; in "rise" mode it keeps entries during the first half of the
 * run and then empties itself. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

struct entry {
    struct entry *next;
    unsigned long id;
    char *data;
};

static struct entry *entries = NULL;
static unsigned long count = 0;
static int rise = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void cache_set_mode(const char *mode) { rise = strcmp(mode, "rise") == 0; }

int cache_mode_keeps(double elapsed, double total) { return !rise || elapsed < total / 2; }

void cache_put(unsigned long id, const char *data, size_t len) {
    struct entry *e = malloc(sizeof *e);
    e->id = id;
    e->data = malloc(len);
    memcpy(e->data, data, len);
    pthread_mutex_lock(&lock);
    e->next = entries;
    entries = e;
    count++;
    pthread_mutex_unlock(&lock);
}

static void cache_clear(void) {
    pthread_mutex_lock(&lock);
    struct entry *e = entries;
    entries = NULL;
    count = 0;
    pthread_mutex_unlock(&lock);
    while (e) {
        struct entry *next = e->next;
        free(e->data);
        free(e);
        e = next;
    }
}

/* In rise mode the workers stop keeping at half time; the cache is then
 * emptied and the process idles for the rest of the run. */
void cache_settle(double seconds) {
    if (rise) {
        cache_clear();
        usleep((useconds_t)(seconds * 1e6 / 2));
    }
}

unsigned long cache_size(void) { return count; }

static volatile char sink;

/* The length of `s` plus its NUL; frees `s`. */
size_t consume_len(char *s) {
    size_t n = strlen(s) + 1;
    free(s);
    return n;
}

void cache_touch(char *a, const char *b) {
    a[0] = b[0];
    sink = a[0];
}
