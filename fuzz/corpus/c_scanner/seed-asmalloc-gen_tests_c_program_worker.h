#ifndef WORKER_H
#define WORKER_H
#include <stddef.h>
char *make_buf(size_t n);
void release(char *b);
#endif
