/*
 * usage.h - the shared usage record: when each cached object was last used,
 * and how many bytes and objects the cache holds.
 *
 * One small file, mapped into every responder process on the host that
 * serves the same cache (the filesystem backend keeps it at ROOT/.usage,
 * which listings skip; S3 in a local file per bucket). It holds:
 *
 *   - a table of (digest prefix -> last-use minute): 2^16 sets of 4 entries,
 *     each entry one 64-bit word (32 bits of digest, 32 bits of minutes
 *     since 1970). A hit updates it with one atomic store, and only when the
 *     minute changed: the hit path costs a load and a compare. Words are
 *     written whole, so a crash never leaves a torn entry; an entry lost to
 *     a collision (a set's oldest is replaced) or to a new file falls back
 *     to the object's own time (its commit or last touch), which is what
 *     the table is rebuilt from, lazily, by every eviction walk.
 *   - the running totals of bytes and objects under blobs/, added to by
 *     every commit and removal of every process, and set from a walk of the
 *     cache at least every cleanup interval (see oci_usage_reconcile).
 *
 * A file with a wrong magic, version or size (damaged, or from another
 * version) is made anew; times ahead of the clock are not trusted.
 */
#ifndef OCI_USAGE_H
#define OCI_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/request/digest.h"

struct oci_usage;

/*
 * Maps the record at path, creating or renewing it when missing or damaged.
 * NULL with why in err when the file cannot be created or mapped.
 */
struct oci_usage *oci_usage_open(const char *path, char *err, size_t errlen);
void oci_usage_close(struct oci_usage *u);

/* Records that digest's object was used at now (the hit path: lock-free). */
void oci_usage_note(struct oci_usage *u, const struct oci_digest *digest, time_t now);

/* When digest's object was last used, to the minute; 0 when the table does not know. */
time_t oci_usage_last(const struct oci_usage *u, const struct oci_digest *digest, time_t now);

/* Adds to the running totals (negative: removals). */
void oci_usage_add(struct oci_usage *u, int64_t bytes, int64_t objects);

struct oci_usage_totals {
    uint64_t bytes;
    uint64_t objects;
    time_t reconciled; /* when a walk last set them; 0: never (not to be trusted) */
};

void oci_usage_totals(const struct oci_usage *u, struct oci_usage_totals *out);

/*
 * Reconciling with a walk: begin returns a mark; the walk counts what it
 * finds; end sets the totals to the walk's count plus whatever the
 * processes added or removed while it ran. An object committed or removed
 * during the walk in a part the walk had not reached yet is counted twice
 * (or not at all): the totals are exact to within the churn of one walk.
 */
struct oci_usage_mark {
    uint64_t bytes, objects;
};
void oci_usage_reconcile_begin(const struct oci_usage *u, struct oci_usage_mark *mark);
void oci_usage_reconcile_end(struct oci_usage *u, const struct oci_usage_mark *mark,
                             uint64_t walked_bytes, uint64_t walked_objects, time_t now);

/*
 * One evictor per host at a time: true when this caller took the right to
 * evict (until oci_usage_unlock_evict), false when another process has it.
 */
bool oci_usage_lock_evict(struct oci_usage *u);
void oci_usage_unlock_evict(struct oci_usage *u);

#endif
