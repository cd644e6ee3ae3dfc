/*
 * listing.h - a storage listing collected into memory, for the walks that
 * act on what they list (eviction, the cache command): removing while a
 * listing is in progress is not something every backend promises to survive.
 */
#ifndef OCI_LISTING_H
#define OCI_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

struct oci_listing_item {
    char *key; /* owned */
    struct storage_info info;
};

struct oci_listing {
    struct oci_listing_item *v;
    size_t n, cap;
    uint64_t bytes; /* the sum of the items' sizes */
    bool failed;    /* out of memory: the listing is incomplete */
};

/* Lists every object under prefix into l (zeroed by the caller), sorted by key. */
enum storage_err oci_listing_collect(struct storage *st, const char *prefix, struct oci_listing *l);

/* The item of key in a sorted listing, or NULL. */
const struct oci_listing_item *oci_listing_find(const struct oci_listing *l, const char *key);

void oci_listing_free(struct oci_listing *l);

#endif
