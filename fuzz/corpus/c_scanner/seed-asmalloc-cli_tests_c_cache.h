#ifndef CACHE_H
#define CACHE_H
#include <stddef.h>
void cache_set_mode(const char *mode);
int cache_mode_keeps(double elapsed, double total);
void cache_put(unsigned long id, const char *data, size_t len);
void cache_settle(double seconds);
unsigned long cache_size(void);
void cache_touch(char *a, const char *b);
size_t consume_len(char *s);
#endif
