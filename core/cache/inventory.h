/*
 * inventory.h - the cache as a whole, for operators: what it holds, how much
 * each namespace uses, whether every blob still matches its digest, and the
 * removal of a namespace, a repository, a manifest or a blob. The logic of
 * the `cache` command (fcgi/cachecmd.c prints it) and of the /_admin/ API.
 *
 * References name what to act on:
 *   NS                   a namespace (registry): all its manifest records
 *   NS/REPO              a repository: its manifest records
 *   NS/REPO:TAG          a tag's record
 *   NS/REPO@DIGEST       a manifest: its record by digest, the repository's
 *                        tags that point at it, and its content
 *   DIGEST               a blob (layer, config or manifest content)
 * Removing records leaves the blobs they name (other repositories may share
 * them; eviction or cleanup takes them when unused). Whatever is removed is
 * a miss on its next request, fetched again.
 */
#ifndef OCI_INVENTORY_H
#define OCI_INVENTORY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/cache/cache.h"
#include "core/cache/evict.h"
#include "core/request/reference.h"

enum oci_inventory_kind {
    OCI_INVENTORY_NAMESPACE,
    OCI_INVENTORY_REPOSITORY,
    OCI_INVENTORY_TAG,
    OCI_INVENTORY_MANIFEST,
    OCI_INVENTORY_BLOB,
};

struct oci_inventory_target {
    enum oci_inventory_kind kind;
    char namespace_[OCI_NAMESPACE_MAX + 1]; /* lower case, as the cache keeps it */
    char name[OCI_NAME_MAX + 1];
    char tag[OCI_TAG_MAX + 1];
    struct oci_digest digest; /* MANIFEST, BLOB */
};

/* Parses an operator's reference (see above). False when it is not one. */
bool oci_inventory_parse(const char *ref, struct oci_inventory_target *t);

/*
 * Makes a target of kind from its parts (lengths given; name and reference
 * ignored where the kind has none): the /_admin/ paths. False when a part
 * does not pass its grammar.
 */
bool oci_inventory_target(enum oci_inventory_kind kind, const char *ns, size_t ns_len,
                          const char *name, size_t name_len, const char *ref, size_t ref_len,
                          struct oci_inventory_target *t);

/* One manifest record as `cache ls` shows it. */
struct oci_inventory_entry {
    char namespace_[OCI_NAMESPACE_MAX + 1];
    char name[OCI_NAME_MAX + 1];
    char reference[OCI_DIGEST_STRING_MAX > OCI_TAG_MAX + 1 ? OCI_DIGEST_STRING_MAX
                                                           : OCI_TAG_MAX + 1];
    bool by_digest;
    struct oci_manifest_record rec; /* confirmed: when the record was written or confirmed */
    bool cached;                    /* the manifest's content is in the cache */
    time_t last_use;                /* of the content, when cached */
};

typedef void (*oci_inventory_entry_fn)(void *arg, const struct oci_inventory_entry *e);

/*
 * Calls fn for every manifest record, or those of filter (a NAMESPACE or
 * REPOSITORY target; NULL: all), in key order. usage may be NULL.
 */
enum storage_err oci_inventory_list(struct storage *st, struct oci_usage *usage,
                                    const struct oci_inventory_target *filter,
                                    oci_inventory_entry_fn fn, void *arg);

/* What a namespace uses: its records, and the blobs its cached manifests name. */
struct oci_inventory_usage {
    char namespace_[OCI_NAMESPACE_MAX + 1];
    unsigned long records;
    unsigned long blobs;
    uint64_t bytes;
};

struct oci_inventory_du {
    uint64_t bytes; /* everything under blobs/ */
    unsigned long blobs;
    uint64_t unreferenced_bytes; /* blobs no cached manifest names */
    unsigned long unreferenced_blobs;
};

typedef void (*oci_inventory_du_fn)(void *arg, const struct oci_inventory_usage *u);

/* Progress of a long walk: done of total objects; key and its verdict when bad. */
typedef void (*oci_inventory_progress_fn)(void *arg, unsigned long done, unsigned long total,
                                          const char *bad_key);

/*
 * Calls fn once per namespace, in order. A blob named by several
 * namespaces counts in each; totals count it once. progress (may be NULL)
 * is told of each manifest record read.
 */
enum storage_err oci_inventory_du(struct storage *st, oci_inventory_du_fn fn, void *arg,
                                  oci_inventory_progress_fn progress,
                                  struct oci_inventory_du *totals);

struct oci_inventory_removed {
    unsigned long records;
    unsigned long blobs;
    uint64_t bytes; /* of the blobs */
};

/*
 * Removes what t names (see above), counting removed blobs in e (may be
 * NULL). STORAGE_NOT_FOUND when nothing was there.
 */
enum storage_err oci_inventory_remove(struct storage *st, struct oci_evictor *e,
                                      const struct oci_inventory_target *t,
                                      struct oci_inventory_removed *out);

struct oci_inventory_verified {
    unsigned long checked;
    uint64_t bytes;
    unsigned long corrupt;     /* did not hash to their digest (or are not named by one) */
    unsigned long quarantined; /* moved to quarantine/ (repair) */
};

/* Where repair moves a corrupt blob: out of blobs/, kept for a post-mortem. */
#define OCI_INVENTORY_QUARANTINE "quarantine/"

/*
 * Re-hashes every blob. With repair, a corrupt one is moved to
 * quarantine/<its key below blobs/> (and no longer counted in e): the next
 * request fetches it again. progress may be NULL.
 */
enum storage_err oci_inventory_verify(struct storage *st, struct oci_evictor *e, bool repair,
                                      oci_inventory_progress_fn progress, void *arg,
                                      struct oci_inventory_verified *out);

#endif
