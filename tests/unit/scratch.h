/*
 * scratch.h - a scratch directory per unit test: made in /tmp, removed with
 * everything in it. Header-only, for the tests that keep a storage there.
 */
#ifndef TESTS_UNIT_SCRATCH_H
#define TESTS_UNIT_SCRATCH_H

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int scratch_remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

/* Makes /tmp/<name>.XXXXXX into dir (cap bytes); false when it cannot. */
static inline bool scratch_make(const char *name, char *dir, size_t cap)
{
    return (size_t)snprintf(dir, cap, "/tmp/%s.XXXXXX", name) < cap && mkdtemp(dir) != NULL;
}

/* Removes dir and everything below it. */
static inline void scratch_remove(const char *dir)
{
    nftw(dir, scratch_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
