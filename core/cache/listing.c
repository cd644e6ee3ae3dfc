/*
 * listing.c - storage listings collected into memory (see listing.h).
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "core/cache/listing.h"
#include "util/grow.h"

static bool collect(void *arg, const char *key, const struct storage_info *info)
{
    struct oci_listing *l = arg;

    struct oci_listing_item *grown = util_grow(l->v, &l->cap, l->n, sizeof(*grown), 256);

    if (grown == NULL)
        return !(l->failed = true);
    l->v = grown;
    if ((l->v[l->n].key = strdup(key)) == NULL)
        return !(l->failed = true);
    l->v[l->n++].info = *info;
    l->bytes += info->size;
    return true;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct oci_listing_item *)a)->key,
                  ((const struct oci_listing_item *)b)->key);
}

enum storage_err oci_listing_collect(struct storage *st, const char *prefix, struct oci_listing *l)
{
    enum storage_err err = st->ops->list(st, prefix, collect, l);

    if (err == STORAGE_OK && l->failed)
        err = STORAGE_NO_MEMORY;
    if (err == STORAGE_OK && l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), by_key);
    return err;
}

const struct oci_listing_item *oci_listing_find(const struct oci_listing *l, const char *key)
{
    struct oci_listing_item probe = {.key = (char *)key};

    return l->n ? bsearch(&probe, l->v, l->n, sizeof(*l->v), by_key) : NULL;
}

void oci_listing_free(struct oci_listing *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i].key);
    free(l->v);
}
