/*
 * grow.h - arrays that double their capacity as they fill.
 *
 * The owner keeps the array, its count and its capacity; this only makes
 * room for one more item, so that every growing array of the program
 * grows (and fails) the same way.
 */
#ifndef OCI_GROW_H
#define OCI_GROW_H

#include <stddef.h>

/*
 * Room for item n of the array items (capacity *cap items of size bytes;
 * NULL with *cap 0 at first): items itself when n < *cap, else the array
 * reallocated to twice the capacity (first items the first time), *cap
 * updated. NULL when out of memory: items and *cap are then unchanged, and
 * still the caller's.
 */
void *util_grow(void *items, size_t *cap, size_t n, size_t size, size_t first);

#endif
