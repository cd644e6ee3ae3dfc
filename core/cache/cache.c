/*
 * cache.c - where the cache keeps what, and the manifest records.
 *
 * See cache.h for the layout. Every key built here comes from a route that
 * core/request/route.c validated, so its components are known to be clean.
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache/cache.h"
#include "core/request/reference.h"

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

/* Reads the decimal size at *p, no sign, no blanks; false on overflow. */
static bool record_size(const char **p, const char *end, uint64_t *size)
{
    const char *s = *p;
    uint64_t n = 0;

    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *size = n;
    return true;
}

/*
 * Exactly "<digest> <size> <media type>", single spaces, then an optional
 * final newline: what record_put writes. The media type becomes a
 * Content-Type, so it is one that oci_media_type_valid() takes.
 */
bool oci_cache_record_parse(const char *buf, size_t len, struct oci_manifest_record *rec)
{
    const char *end = buf + len, *p;
    const char *space = memchr(buf, ' ', len);

    if (len > 0 && end[-1] == '\n')
        end--;
    if (space == NULL || space >= end ||
        oci_digest_parse(buf, (size_t)(space - buf), &rec->digest) != OCI_OK)
        return false;
    p = space + 1;
    if (!record_size(&p, end, &rec->size) || p == end || *p != ' ')
        return false;
    p++;
    if (!oci_media_type_valid(p, (size_t)(end - p)))
        return false;
    memcpy(rec->media_type, p, (size_t)(end - p));
    rec->media_type[end - p] = '\0';
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
    if (!oci_cache_record_parse(line, len, rec))
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
