/*
 * gc.h - garbage collection of hosted content: the removal of blobs that no
 * manifest of a hosted repository references any more (`oci-registry gc`).
 *
 * Mark: every manifest recorded in a hosted repository (core/cache/repo.h)
 * - with delete_untagged, only those a tag points at, those recorded within
 * the grace period, and, transitively, the children of marked indexes and
 * the referrers of marked manifests - and what marked image manifests
 * reference (config and layers), read from the stored manifest bytes.
 * Sweep, per repository: the blob links (and, with delete_untagged, the
 * manifest records and their referrer entries) that nothing marked names
 * and that were written before the grace period; then the content of what
 * was unlinked, unless another hosted repository still links or records it,
 * a mirrored manifest record names it (directly or through the manifest's
 * references), or it was written, touched or used within the grace period.
 * Content that no hosted key named when gc began is the cache's business
 * (cleanup, eviction), never gc's. Upload sessions are not looked at.
 *
 * Safe while responders serve the same storage: see the top of gc.c.
 */
#ifndef OCI_GC_H
#define OCI_GC_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/cache/evict.h"
#include "storage/storage.h"

#define OCI_GC_DEFAULT_GRACE 3600 /* seconds */

struct oci_gc_options {
    time_t now;           /* when the run starts */
    long grace;           /* seconds: what was written or used this recently stays */
    bool dry_run;         /* report what would be removed, remove nothing */
    bool delete_untagged; /* manifests no tag reaches are removed too */
};

enum oci_gc_kind {
    OCI_GC_MANIFEST, /* a manifest record of a repository (delete_untagged) */
    OCI_GC_LINK,     /* a repository's link to a blob */
    OCI_GC_BLOB,     /* content under blobs/ */
};

/* Told of each object removed (or, dry run, that would be): its key and size. */
typedef void (*oci_gc_report_fn)(void *arg, enum oci_gc_kind kind, const char *key, uint64_t size);

struct oci_gc_stats {
    unsigned long repositories;
    unsigned long manifests_marked;
    unsigned long manifests_removed;
    unsigned long links_removed;
    unsigned long blobs_kept;    /* distinct blobs hosted repositories still link */
    unsigned long blobs_spared;  /* unlinked, but mirrored, shared or used within grace */
    unsigned long blobs_removed; /* content removed */
    uint64_t bytes_freed;
    unsigned long unreadable; /* repositories left unswept: a manifest could not be read */
};

/* The storage lease a collection holds (storage_ops.lease_take). */
#define OCI_GC_LEASE "gc"

/*
 * Runs one collection on st. e (may be NULL) is told of removed content
 * (the size bound's totals) and gives last uses. A storage failure stops
 * the run before anything more is removed and is returned; stats say what
 * was done until then. On storage shared by several hosts (S3 with
 * conditional writes) it first takes the gc lease: STORAGE_IN_PROGRESS,
 * and nothing done, while another host's collection holds it.
 */
enum storage_err oci_gc_run(struct storage *st, struct oci_evictor *e,
                            const struct oci_gc_options *o, oci_gc_report_fn report, void *arg,
                            struct oci_gc_stats *stats);

#endif
