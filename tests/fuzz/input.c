/*
 * input.c - the input as a string, for the targets whose parser wants one
 * (see fuzz.h).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
