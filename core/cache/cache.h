/*
 * cache.h - the cache's layout in storage and its manifest records.
 *
 * Keys (relative to the storage root):
 *   blobs/<alg>/<first two hex>/<hex>          content: layers, configs and
 *                                              manifests, content-addressed
 *   manifests/<namespace>/<name>/_tags/<tag>   record of a tag
 *   manifests/<namespace>/<name>/_digests/<alg>:<hex>
 *                                              record of a manifest by digest
 * (No name component starts with '_', so "_tags" never clashes with a
 * repository whose name goes on below <name>.)
 * A record is one line, "<digest> <size> <media type>\n": what the manifest
 * is, so a hit is answered from the record and the content's file without
 * parsing JSON. The media type is one that oci_media_type_valid() takes (it
 * becomes a Content-Type): a record with another is neither written nor
 * read. A tag record's modification time is when the tag was last
 * confirmed upstream; records by digest never go stale.
 *
 * Content is shared between namespaces: equal digests are equal bytes.
 */
#ifndef OCI_CACHE_H
#define OCI_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/request/digest.h"
#include "core/request/route.h"
#include "storage/storage.h"

#define OCI_CACHE_KEY_MAX 1024

struct oci_manifest_record {
    struct oci_digest digest;
    uint64_t size;
    char media_type[OCI_MEDIA_TYPE_MAX + 1];
    time_t confirmed; /* when the upstream last confirmed it (tag records) */
};

/*
 * Parses a record's bytes (buf need not be NUL-terminated). False when the
 * record is damaged in any way; rec is then partly written.
 */
bool oci_cache_record_parse(const char *buf, size_t len, struct oci_manifest_record *rec);

/* The content key of a digest: "blobs/sha256/ab/ab12...". */
void oci_cache_blob_key(const struct oci_digest *digest, char key[OCI_CACHE_KEY_MAX]);

/* The digest a content key names; false for a key that is not one (a stray file). */
bool oci_cache_blob_digest(const char *key, struct oci_digest *digest);

/* The record key of a manifest route, by tag or by digest. */
void oci_cache_manifest_key(const struct oci_route *route, char key[OCI_CACHE_KEY_MAX]);

/*
 * Looks up the record of a manifest route. Returns STORAGE_NOT_FOUND when
 * there is none or it does not parse (a damaged record is a miss, not an
 * error).
 */
enum storage_err oci_cache_manifest_lookup(struct storage *st, const struct oci_route *route,
                                           struct oci_manifest_record *rec);

/*
 * Stores a fetched manifest: its content under its blob key, then its record
 * by digest, then (for a tag route) the tag's record - in that order, so a
 * record never points at missing content. STORAGE_BAD_KEY, with nothing
 * written, when rec's media type is not one.
 */
enum storage_err oci_cache_manifest_store(struct storage *st, const struct oci_route *route,
                                          const struct oci_manifest_record *rec,
                                          const void *content, size_t len);

/*
 * Reads and writes one record under key (core/cache/repo.c keeps hosted ones
 * elsewhere). A damaged record reads as STORAGE_NOT_FOUND; a record whose
 * media type is not one is not written (STORAGE_BAD_KEY).
 */
enum storage_err oci_cache_record_read(struct storage *st, const char *key,
                                       struct oci_manifest_record *rec);
enum storage_err oci_cache_record_write(struct storage *st, const char *key,
                                        const struct oci_manifest_record *rec);

/* Marks a tag record as confirmed by the upstream now. */
enum storage_err oci_cache_manifest_confirm(struct storage *st, const struct oci_route *route);

/*
 * Hashes a stored object and compares it with digest (--check-cache-digest).
 * Returns STORAGE_OK when equal, STORAGE_NOT_FOUND when missing or different.
 */
enum storage_err oci_cache_verify(struct storage *st, const char *key,
                                  const struct oci_digest *digest);

#endif
