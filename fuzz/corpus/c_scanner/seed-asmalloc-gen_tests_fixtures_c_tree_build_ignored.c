void ignored(void) { free(0); }
