/*
 * repo.c - the layout of hosted repositories in storage (see repo.h).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache/repo.h"

void oci_repo_key(const struct oci_route *route, const char *part, const char *leaf,
                  char key[OCI_CACHE_KEY_MAX])
{
    snprintf(key, OCI_CACHE_KEY_MAX, OCI_REPO_PREFIX "%s/%s/%s/%s", route->namespace_, route->name,
             part, leaf);
}

void oci_repo_digest_key(const struct oci_route *route, const char *part,
                         const struct oci_digest *digest, char key[OCI_CACHE_KEY_MAX])
{
    char leaf[OCI_DIGEST_STRING_MAX];

    oci_digest_format(digest, leaf);
    oci_repo_key(route, part, leaf, key);
}

bool oci_repo_has_blob(struct storage *st, const struct oci_route *route,
                       const struct oci_digest *digest, struct storage_info *info)
{
    char key[OCI_CACHE_KEY_MAX];

    oci_repo_digest_key(route, "_blobs", digest, key);
    if (st->ops->stat(st, key, info) != STORAGE_OK)
        return false;
    oci_cache_blob_key(digest, key);
    return st->ops->stat(st, key, info) == STORAGE_OK;
}

/* Marks content used now: a cleanup pass that began before the link cannot remove it. */
static enum storage_err mark_content(struct storage *st, const struct oci_digest *digest)
{
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(digest, key);
    return st->ops->touch(st, key);
}

enum storage_err oci_repo_link_blob(struct storage *st, const struct oci_route *route,
                                    const struct oci_digest *digest)
{
    char key[OCI_CACHE_KEY_MAX];
    enum storage_err err;

    oci_repo_digest_key(route, "_blobs", digest, key);
    err = st->ops->put_small(st, key, "", 0);
    return err == STORAGE_OK ? mark_content(st, digest) : err;
}

/* The record key of route's reference: by digest, or the tag's. */
static void record_key(const struct oci_route *route, char key[OCI_CACHE_KEY_MAX])
{
    if (route->by_digest)
        oci_repo_digest_key(route, "_digests", &route->digest, key);
    else
        oci_repo_key(route, "_tags", route->reference, key);
}

enum storage_err oci_repo_manifest_lookup(struct storage *st, const struct oci_route *route,
                                          struct oci_manifest_record *rec)
{
    char key[OCI_CACHE_KEY_MAX];

    record_key(route, key);
    return oci_cache_record_read(st, key, rec);
}

enum storage_err oci_repo_manifest_store(struct storage *st, const struct oci_route *route,
                                         const struct oci_manifest_record *rec, const void *content,
                                         size_t len)
{
    char key[OCI_CACHE_KEY_MAX];
    enum storage_err err;

    oci_cache_blob_key(&rec->digest, key);
    err = st->ops->put_small(st, key, content, len);
    if (err != STORAGE_OK)
        return err;
    oci_repo_digest_key(route, "_digests", &rec->digest, key);
    err = oci_cache_record_write(st, key, rec);
    if (err != STORAGE_OK || route->by_digest)
        return err;
    record_key(route, key);
    return oci_cache_record_write(st, key, rec);
}

/* Collects the digest of a hosted blob link or manifest record. */
static bool visit_hosted(void *arg, const char *key, const struct storage_info *info)
{
    struct oci_repo_pins *pins = arg;
    const char *leaf = strrchr(key, '/') + 1;
    size_t before = (size_t)(leaf - key);
    char **grown;

    (void)info;
    if (!((before > 8 && memcmp(leaf - 8, "/_blobs/", 8) == 0) ||
          (before > 10 && memcmp(leaf - 10, "/_digests/", 10) == 0)))
        return true;
    grown = realloc(pins->digests, (pins->count + 1) * sizeof(*grown));
    if (grown != NULL)
        pins->digests = grown;
    if (grown == NULL || (pins->digests[pins->count] = strdup(leaf)) == NULL) {
        pins->failed = true;
        return false;
    }
    pins->count++;
    return true;
}

static int digest_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool oci_repo_pins_collect(struct storage *st, struct oci_repo_pins *pins)
{
    *pins = (struct oci_repo_pins){0};
    if (st->ops->list(st, OCI_REPO_PREFIX, visit_hosted, pins) != STORAGE_OK || pins->failed)
        return false;
    if (pins->count > 0) /* else digests is NULL, which qsort must not get */
        qsort(pins->digests, pins->count, sizeof(*pins->digests), digest_cmp);
    return true;
}

bool oci_repo_pins_has(const struct oci_repo_pins *pins, const char *blob_key)
{
    const char *alg = blob_key + strlen("blobs/"), *hex = strrchr(blob_key, '/') + 1;
    char digest[OCI_DIGEST_STRING_MAX + 8];
    const char *want = digest;

    snprintf(digest, sizeof(digest), "%.*s:%s", (int)strcspn(alg, "/"), alg, hex);
    return pins->count > 0 &&
           bsearch(&want, pins->digests, pins->count, sizeof(*pins->digests), digest_cmp) != NULL;
}

void oci_repo_pins_free(struct oci_repo_pins *pins)
{
    for (size_t i = 0; i < pins->count; i++)
        free(pins->digests[i]);
    free(pins->digests);
    *pins = (struct oci_repo_pins){0};
}

bool oci_repo_pinned(struct storage *st, const struct oci_digest *digest)
{
    char key[OCI_CACHE_KEY_MAX];
    struct oci_repo_pins pins;
    bool pinned;

    if (!oci_repo_pins_collect(st, &pins))
        return true;
    oci_cache_blob_key(digest, key);
    pinned = oci_repo_pins_has(&pins, key);
    oci_repo_pins_free(&pins);
    return pinned;
}
