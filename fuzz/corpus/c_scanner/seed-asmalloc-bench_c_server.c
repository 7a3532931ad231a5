/* Workload (b): a server-like request loop.
 *
 * THREADS threads each handle REQUESTS requests. A request allocates a
 * parse buffer (1-8 KiB) and fills it with a synthetic HTTP request,
 * tokenises it into a few header objects (a small struct plus its name and
 * value strings), does some work (a hash over the head and 512 B of body),
 * builds a response string that grows with realloc, and frees everything at
 * the end of the request. A slow leak: every LEAK_EVERY-th request keeps a
 * small session record (48-112 B) on a list that is never freed.
 *
 *   server THREADS REQUESTS     prints a checksum of the responses
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAK_EVERY 64

struct header {
    char *name;
    char *value;
    struct header *next;
};

struct session {
    struct session *next;
    uint64_t id;
    char tag[];
};

static long requests_per_thread;

static uint64_t next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static char *dup_range(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) abort();
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static const char *names[] = {"Host", "User-Agent", "Accept", "Cookie", "X-Request-Id",
                              "Content-Type", "Accept-Encoding", "Connection"};

static void *worker(void *arg) {
    uint64_t x = 0xc2b2ae3d27d4eb4full ^ ((uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull);
    struct session *leaked = NULL;
    uint64_t sum = 0;
    for (long req = 0; req < requests_per_thread; req++) {
        /* 1. read the request into a parse buffer */
        size_t cap = 1024 + (size_t)(next(&x) % 7168);
        char *buf = malloc(cap);
        if (!buf) abort();
        int nh = 3 + (int)(next(&x) % 6);
        size_t len = (size_t)snprintf(buf, cap, "GET /item/%llu?q=%llu HTTP/1.1\r\n",
                                      (unsigned long long)(next(&x) % 100000),
                                      (unsigned long long)req);
        for (int h = 0; h < nh && len + 128 < cap; h++)
            len += (size_t)snprintf(buf + len, cap - len, "%s: v%llx-%llx\r\n", names[h],
                                    (unsigned long long)next(&x),
                                    (unsigned long long)(next(&x) & 0xffff));
        len += (size_t)snprintf(buf + len, cap - len, "\r\n");
        memset(buf + len, 'a' + (int)(req % 26), cap - len - 1);
        buf[cap - 1] = 0;

        /* 2. parse: one object per header line, name and value copied */
        struct header *headers = NULL;
        char *line = strstr(buf, "\r\n");
        while (line && line[2] != '\r' && line[2] != 0) {
            char *start = line + 2;
            char *end = strstr(start, "\r\n");
            char *colon = memchr(start, ':', end ? (size_t)(end - start) : 0);
            if (!end || !colon) break;
            struct header *hd = malloc(sizeof *hd);
            if (!hd) abort();
            hd->name = dup_range(start, (size_t)(colon - start));
            hd->value = dup_range(colon + 2, (size_t)(end - colon - 2));
            hd->next = headers;
            headers = hd;
            line = end;
        }

        /* 3. work: hash the request line, headers and the body's first 512 B */
        uint64_t h = 0xcbf29ce484222325ull;
        size_t upto = len + 512 < cap - 1 ? len + 512 : cap - 1;
        for (size_t i = 0; i < upto; i++) h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ull;

        /* 4. response: grows as headers are echoed */
        size_t rcap = 64, rlen = 0;
        char *resp = malloc(rcap);
        if (!resp) abort();
        rlen = (size_t)snprintf(resp, rcap, "HTTP/1.1 200 OK\r\n");
        for (struct header *hd = headers; hd; hd = hd->next) {
            size_t need = rlen + strlen(hd->name) + strlen(hd->value) + 32;
            if (need > rcap) {
                while (rcap < need) rcap *= 2;
                resp = realloc(resp, rcap);
                if (!resp) abort();
            }
            rlen += (size_t)snprintf(resp + rlen, rcap - rlen, "X-Echo-%s: %s\r\n", hd->name, hd->value);
        }
        sum += h ^ rlen ^ (unsigned char)resp[rlen / 2];

        /* 5. end of request: everything freed ... */
        while (headers) {
            struct header *n = headers->next;
            free(headers->name);
            free(headers->value);
            free(headers);
            headers = n;
        }
        free(resp);
        free(buf);
        /* ... except, now and then, a session record (the slow leak) */
        if (req % LEAK_EVERY == 0) {
            size_t tag = 32 + (size_t)(next(&x) % 64);
            struct session *s = malloc(sizeof *s + tag);
            if (!s) abort();
            s->id = (uint64_t)req;
            memset(s->tag, 'S', tag);
            s->next = leaked;
            leaked = s;
        }
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: server THREADS REQUESTS_PER_THREAD\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    requests_per_thread = atol(argv[2]);
    if (threads < 1 || threads > 64 || requests_per_thread < 0) return 2;
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1))) return 1;
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (uint64_t)(uintptr_t)r;
    }
    printf("server %d x %ld requests: checksum %llu\n", threads, requests_per_thread,
           (unsigned long long)total);
    return 0;
}
