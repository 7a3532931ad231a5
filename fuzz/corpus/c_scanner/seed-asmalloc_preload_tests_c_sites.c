/* asm_site_enter without a table: sites are named from the call site. */
#include <stdint.h>
#include <stdlib.h>
#include "asmalloc.h"

static void *grow(size_t n)
{
	static uint16_t cache;
	asm_site_enter(&cache, 7, __FILE__, __LINE__, __func__);
	return malloc(n);
}

int main(void)
{
	for (int i = 0; i < 10; i++)
		(void)grow(1000); /* leaked on purpose */
	return 0;
}
