/* Workload (a): allocator-heavy churn.
 *
 * THREADS threads; each keeps a ring of 1,000 live blocks and, for OPS
 * steps, replaces one: 85 % free + malloc, 10 % realloc, 5 % free + calloc.
 * Sizes 16 B - 64 KiB: 70 % <= 256 B, 25 % <= 4 KiB, 5 % <= 64 KiB
 * (uniform inside each class), so about 2.4 MB is live per thread. A new
 * block has its first and last byte written (the allocator is the work).
 *
 *   churn THREADS OPS     prints a checksum of the ring's contents
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 1000

static long ops_per_thread;

static uint64_t next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static size_t pick_size(uint64_t r) {
    unsigned cls = (unsigned)(r % 100);
    uint64_t v = r >> 8;
    if (cls < 70) return 16 + v % (256 - 16 + 1);
    if (cls < 95) return 257 + v % (4096 - 257 + 1);
    return 4097 + v % (65536 - 4097 + 1);
}

static void *worker(void *arg) {
    uint64_t x = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uintptr_t)arg * 0x100000001b3ull);
    unsigned char *ring[RING];
    size_t len[RING];
    uint64_t sum = 0;
    for (int i = 0; i < RING; i++) {
        len[i] = pick_size(next(&x));
        ring[i] = malloc(len[i]);
        if (!ring[i]) abort();
        ring[i][0] = (unsigned char)i;
        ring[i][len[i] - 1] = (unsigned char)i;
    }
    for (long i = 0; i < ops_per_thread; i++) {
        uint64_t r = next(&x);
        size_t slot = (size_t)((r >> 32) % RING);
        size_t size = pick_size(next(&x));
        unsigned op = (unsigned)(r % 100);
        unsigned char *p;
        if (op < 85) {
            sum += ring[slot][0];
            free(ring[slot]);
            p = malloc(size);
        } else if (op < 95) {
            p = realloc(ring[slot], size);
        } else {
            sum += ring[slot][len[slot] - 1];
            free(ring[slot]);
            p = calloc(1, size);
        }
        if (!p) abort();
        p[0] = (unsigned char)i;
        p[size - 1] = (unsigned char)(i >> 8);
        ring[slot] = p;
        len[slot] = size;
    }
    for (int i = 0; i < RING; i++) {
        sum += ring[i][0] + ring[i][len[i] - 1];
        free(ring[i]);
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: churn THREADS OPS_PER_THREAD\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    ops_per_thread = atol(argv[2]);
    if (threads < 1 || threads > 64 || ops_per_thread < 0) return 2;
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1))) return 1;
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (uint64_t)(uintptr_t)r;
    }
    printf("churn %d x %ld: checksum %llu\n", threads, ops_per_thread, (unsigned long long)total);
    return 0;
}
