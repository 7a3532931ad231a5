/* Latin-1 comment: café © */
#include <stdlib.h>
char *latin(void) { return malloc(3); }
