/*
 * cache.c - where the cache keeps what, and the manifest records.
 *
 * See cache.h for the layout. Every key built here comes from a route that
 * core/route.c validated, so its components are known to be clean.
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache.h"

/* A record is one short line; anything longer is damaged. */
#define RECORD_MAX   512
#define VERIFY_CHUNK (128 * 1024)

void oci_cache_blob_key(const struct oci_digest *digest, char key[OCI_CACHE_KEY_MAX])
{
    snprintf(key, OCI_CACHE_KEY_MAX, "blobs/%s/%.2s/%s", oci_digest_alg_name(digest->alg),
             digest->hex, digest->hex);
}

bool oci_cache_blob_digest(const char *key, struct oci_digest *digest)
{
    const char *alg = key + strlen("blobs/"), *hex = strrchr(key, '/');
    char s[OCI_DIGEST_STRING_MAX + 8];
    int n;

    if (strncmp(key, "blobs/", 6) != 0 || hex == NULL || strchr(alg, '/') == NULL)
        return false;
    n = snprintf(s, sizeof(s), "%.*s:%s", (int)strcspn(alg, "/"), alg, hex + 1);
    return n > 0 && (size_t)n < sizeof(s) && oci_digest_parse(s, (size_t)n, digest) == OCI_OK;
}

void oci_cache_manifest_key(const struct oci_route *route, char key[OCI_CACHE_KEY_MAX])
{
    snprintf(key, OCI_CACHE_KEY_MAX, "manifests/%s/%s/%s/%s", route->namespace_, route->name,
             route->by_digest ? "_digests" : "_tags", route->reference);
}

/* The record key of the manifest a tag points to. */
static void digest_record_key(const struct oci_route *route, const struct oci_digest *digest,
                              char key[OCI_CACHE_KEY_MAX])
{
    char ref[OCI_DIGEST_STRING_MAX];

    oci_digest_format(digest, ref);
    snprintf(key, OCI_CACHE_KEY_MAX, "manifests/%s/%s/_digests/%s", route->namespace_, route->name,
             ref);
}

static bool record_parse(const char *line, struct oci_manifest_record *rec)
{
    char digest[OCI_DIGEST_STRING_MAX + 1];
    /* The last %n is left unset when no media type follows the size. */
    int digest_len = 0, type_start = 0, type_end = 0;

    if (sscanf(line, "%136s%n %" SCNu64 " %n%*s%n", digest, &digest_len, &rec->size, &type_start,
               &type_end) != 2)
        return false;
    if (type_end <= type_start || type_end - type_start > OCI_MEDIA_TYPE_MAX ||
        oci_digest_parse(digest, (size_t)digest_len, &rec->digest) != OCI_OK)
        return false;
    memcpy(rec->media_type, line + type_start, (size_t)(type_end - type_start));
    rec->media_type[type_end - type_start] = '\0';
    return true;
}

enum storage_err oci_cache_record_read(struct storage *st, const char *key,
                                       struct oci_manifest_record *rec)
{
    struct storage_info info;
    char *line;
    size_t len;
    enum storage_err err = st->ops->read_small(st, key, RECORD_MAX, &line, &len, &info);

    if (err == STORAGE_TOO_LARGE)
        return STORAGE_NOT_FOUND;
    if (err != STORAGE_OK)
        return err;
    /* A record holds a media type fit to be a Content-Type, or it is damaged. */
    if (!record_parse(line, rec) || !oci_media_type_valid(rec->media_type, strlen(rec->media_type)))
        err = STORAGE_NOT_FOUND;
    rec->confirmed = info.mtime;
    free(line);
    return err;
}

enum storage_err oci_cache_manifest_lookup(struct storage *st, const struct oci_route *route,
                                           struct oci_manifest_record *rec)
{
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_manifest_key(route, key);
    return oci_cache_record_read(st, key, rec);
}

enum storage_err oci_cache_record_write(struct storage *st, const char *key,
                                        const struct oci_manifest_record *rec)
{
    char digest[OCI_DIGEST_STRING_MAX], line[RECORD_MAX];
    int len;

    if (!oci_media_type_valid(rec->media_type, strnlen(rec->media_type, sizeof(rec->media_type))))
        return STORAGE_BAD_KEY;
    oci_digest_format(&rec->digest, digest);
    len = snprintf(line, sizeof(line), "%s %" PRIu64 " %s\n", digest, rec->size, rec->media_type);
    if (len < 0 || (size_t)len >= sizeof(line))
        return STORAGE_BAD_KEY;
    return st->ops->put_small(st, key, line, (size_t)len);
}

enum storage_err oci_cache_manifest_store(struct storage *st, const struct oci_route *route,
                                          const struct oci_manifest_record *rec,
                                          const void *content, size_t len)
{
    char key[OCI_CACHE_KEY_MAX];
    enum storage_err err;

    if (!oci_media_type_valid(rec->media_type, strnlen(rec->media_type, sizeof(rec->media_type))))
        return STORAGE_BAD_KEY;
    oci_cache_blob_key(&rec->digest, key);
    err = st->ops->put_small(st, key, content, len);
    if (err != STORAGE_OK)
        return err;
    digest_record_key(route, &rec->digest, key);
    err = oci_cache_record_write(st, key, rec);
    if (err != STORAGE_OK || route->by_digest)
        return err;
    oci_cache_manifest_key(route, key);
    return oci_cache_record_write(st, key, rec);
}

enum storage_err oci_cache_manifest_confirm(struct storage *st, const struct oci_route *route)
{
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_manifest_key(route, key);
    return st->ops->touch(st, key);
}

enum storage_err oci_cache_verify(struct storage *st, const char *key,
                                  const struct oci_digest *digest)
{
    struct storage_reader *r;
    struct oci_hasher *h = NULL;
    struct oci_digest got;
    char *buf = NULL;
    size_t n;
    enum storage_err err = st->ops->reader_open(st, key, &r);

    if (err != STORAGE_OK)
        return err;
    buf = malloc(VERIFY_CHUNK);
    h = oci_hasher_new(digest->alg);
    if (buf == NULL || h == NULL) {
        err = STORAGE_NO_MEMORY;
        goto done;
    }
    while ((err = st->ops->reader_read(r, buf, VERIFY_CHUNK, &n)) == STORAGE_OK && n > 0) {
        if (!oci_hasher_update(h, buf, n)) {
            err = STORAGE_NO_MEMORY;
            goto done;
        }
    }
    if (err == STORAGE_OK && (!oci_hasher_final(h, &got) || !oci_digest_equal(&got, digest)))
        err = STORAGE_NOT_FOUND;
done:
    oci_hasher_free(h);
    free(buf);
    st->ops->reader_close(r);
    return err;
}
