/*
 * cleanup.h - removes what was not used for longer than its invalidation time.
 *
 * Blobs (layers, configs and manifest contents) are marked used when served
 * and removed when unused for longer than blob_invalidation_time; blobs are
 * shared by all namespaces, so the longest such time of any upstream that
 * can be served applies. Manifest records of a namespace are removed by that
 * namespace's own blob_invalidation_time. A removal is safe against a
 * request that marks the object used at the same moment (see
 * storage_ops.remove_stale); downloads in progress live elsewhere and are
 * never touched. What hosted repositories hold (core/cache/repo.h) is never
 * removed: their keys, and content any of them names. Upload sessions idle
 * for longer than the registry's upload_lifetime are removed, and so is what
 * writers that died left in the storage (storage_ops.reap). Of the hosts
 * sharing a storage, one at a time runs a pass or an eviction (the
 * storage's "cleanup" lease).
 */
#ifndef OCI_CLEANUP_H
#define OCI_CLEANUP_H

#include <time.h>

#include "core/plan/plan.h"

struct oci_cleanup_stats {
    unsigned long blobs;
    unsigned long manifests;
    unsigned long uploads; /* objects of abandoned upload sessions */
    unsigned long orphans; /* the storage's own leftovers of dead writers (S3 multipart uploads) */
};

/* One pass over the cache, as of now. */
void oci_cleanup_run(const struct oci_registry *reg, time_t now, struct oci_cleanup_stats *stats);

/*
 * Runs a pass every interval seconds (0: none) in a thread of its own, until
 * stopped. With a size bound (reg->evict), the thread also evicts whenever
 * a commit wakes it past the bound, and walks the cache's totals at start
 * (when no process did for an interval) and every interval (an hour when
 * 0). Start it before requests are served and stop it after.
 */
struct oci_cleaner;
struct oci_cleaner *oci_cleaner_start(const struct oci_registry *reg, long interval);
/* Stops the thread (waiting for a pass in progress) and frees it; NULL is fine. */
void oci_cleaner_stop(struct oci_cleaner *cleaner);

#endif
