/*
 * grow.c - arrays that double their capacity as they fill (see grow.h).
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/grow.h"

void *util_grow(void *items, size_t *cap, size_t n, size_t size, size_t first)
{
    size_t want;
    void *grown;

    if (n < *cap)
        return items;
    want = *cap == 0 ? first : *cap * 2;
    if (want < *cap || want > SIZE_MAX / size)
        return NULL;
    grown = realloc(items, want * size);
    if (grown != NULL)
        *cap = want;
    return grown;
}
