/*
 * repo.h - hosted repositories in storage: what was pushed to which
 * repository of a hosted namespace.
 *
 * Keys (relative to the storage root), beside the cache's (core/cache/cache.h):
 *   hosted/<namespace>/<name>/_blobs/<alg>:<hex>     the repository holds
 *                                                    this blob (empty object)
 *   hosted/<namespace>/<name>/_digests/<alg>:<hex>   record of a manifest
 *   hosted/<namespace>/<name>/_tags/<tag>            record of a tag
 *   hosted/<namespace>/<name>/_referrers/<subject alg:hex>/<alg:hex>
 *                                                    a manifest with that
 *                                                    subject: its descriptor
 *                                                    as JSON (referrers API)
 * Records have the cache's one-line format. The bytes themselves - pushed
 * blobs and manifests - are content like any other, under the cache's
 * content-addressed blobs/ keys, so the front server sends them as it sends
 * cached ones and equal content is kept once. Cleanup (core/ops/cleanup.c)
 * never removes anything under hosted/, nor content that a key under
 * hosted/ names; every link or record written here marks the content used
 * at once, so a cleanup pass that listed hosted/ before cannot take it.
 * Everything here is of validated routes and digests.
 */
#ifndef OCI_REPO_H
#define OCI_REPO_H

#include <stdbool.h>

#include "core/cache/cache.h"

#define OCI_REPO_PREFIX "hosted/"

/* "hosted/<namespace>/<name>/<part>/" plus leaf (leaf may be ""). */
void oci_repo_key(const struct oci_route *route, const char *part, const char *leaf,
                  char key[OCI_CACHE_KEY_MAX]);

/* The key of a blob link, a manifest record or referrer under route's repository. */
void oci_repo_digest_key(const struct oci_route *route, const char *part,
                         const struct oci_digest *digest, char key[OCI_CACHE_KEY_MAX]);

/* True when the repository holds the blob and its content is in storage (info filled). */
bool oci_repo_has_blob(struct storage *st, const struct oci_route *route,
                       const struct oci_digest *digest, struct storage_info *info);

/* Makes the stored content digest a blob of the repository (and marks it used). */
enum storage_err oci_repo_link_blob(struct storage *st, const struct oci_route *route,
                                    const struct oci_digest *digest);

/*
 * The record of a manifest of the repository, by route's tag or digest.
 * STORAGE_NOT_FOUND when there is none.
 */
enum storage_err oci_repo_manifest_lookup(struct storage *st, const struct oci_route *route,
                                          struct oci_manifest_record *rec);

/*
 * Stores a pushed manifest: content, then its record by digest, then (route
 * by tag) the tag's record, each written whole: concurrent pushes of a tag
 * end with one of them, never a mix.
 */
enum storage_err oci_repo_manifest_store(struct storage *st, const struct oci_route *route,
                                         const struct oci_manifest_record *rec, const void *content,
                                         size_t len);

/*
 * The content hosted repositories hold ("sha256:ab12..." of every blob link
 * and manifest record), sorted: what cleanup and eviction must not remove.
 */
struct oci_repo_pins {
    char **digests;
    size_t count;
    bool failed;
};

/* Lists hosted/ into pins; false (pins then say nothing) when storage cannot. */
bool oci_repo_pins_collect(struct storage *st, struct oci_repo_pins *pins);

/* Whether a content key ("blobs/<alg>/<xx>/<hex>") is one of pins. */
bool oci_repo_pins_has(const struct oci_repo_pins *pins, const char *blob_key);

void oci_repo_pins_free(struct oci_repo_pins *pins);

/* Whether a hosted repository holds digest's content (true when storage cannot tell). */
bool oci_repo_pinned(struct storage *st, const struct oci_digest *digest);

#endif
