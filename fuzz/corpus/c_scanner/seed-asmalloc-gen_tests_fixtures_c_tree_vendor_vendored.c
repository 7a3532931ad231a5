void vendored(void) { free(0); }
