/* glibc serves a block above its mmap threshold (128 KiB by default) with
 * mmap, and raises that threshold when such a block is freed: it is the
 * program's heap tuning, which a tracker must leave alone. This program
 * allocates 200 KiB at start and again after the library has done its own
 * work (start-up checks, the leak monitor's first samples, naming caller
 * sites), and says whether each came from mmap (mallinfo2's hblks). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The block is kept: freeing it would raise the threshold itself (the
 * program's own doing, which glibc does raw too). */
static const char *kind(void) {
    size_t before = mallinfo2().hblks;
    void *p = malloc(200 * 1024);
    if (!p) return "failed";
    memset(p, 1, 4096);
    return mallinfo2().hblks > before ? "mmapped" : "heap";
}

int main(void) {
    const char *first = kind();
    /* Let the monitor take a few samples (ASMALLOC_SAMPLE_INTERVAL). */
    struct timespec t = {0, 400 * 1000 * 1000};
    nanosleep(&t, NULL);
    const char *later = kind();
    printf("%s %s\n", first, later);
    return 0;
}
