/*
 * evict.h - the cache's size bound: what counts, when eviction starts, and
 * the eviction of the least recently used blobs.
 *
 * What counts is every object under blobs/ (layers, configs and manifest
 * contents); downloads in progress (tmp/, S3 spools) and the small
 * manifest records do not. The size is a running total in the shared usage
 * record (core/cache/usage.h): every commit adds, every removal subtracts, and a
 * walk sets it at least every cleanup interval and at every eviction.
 *
 * A commit that takes the total past the bound wakes the cleanup thread,
 * which evicts in the background, oldest last use first, until the total
 * is under the low-water mark. Never evicted: downloads in progress,
 * content that hosted repositories hold (core/cache/repo.h; it counts toward the
 * bound all the same), and objects written or touched less than min_age ago. A full disk wakes it
 * too, and then it frees a tenth of the cache even under the bound.
 * Manifest records are never evicted: one whose content is gone is a
 * miss, fetched again. Eviction never holds up a hit: it takes no lock a
 * request takes, and removes objects one at a time (storage's
 * remove_unless, which spares an object used while it was being removed).
 * The size goes to /metrics (core/metrics/metrics.h) at every commit, removal and
 * walk; the cleanup thread counts the evictions there.
 */
#ifndef OCI_EVICT_H
#define OCI_EVICT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/request/digest.h"
#include "core/cache/usage.h"
#include "storage/storage.h"

#define OCI_EVICT_MIN_BOUND         (64ULL * 1024 * 1024) /* smaller bounds are refused */
#define OCI_EVICT_DEFAULT_MIN_AGE   600                   /* seconds */
#define OCI_EVICT_DEFAULT_LOW_WATER 90                    /* percent of the bound */

/*
 * Parses a size: a whole number of bytes with an optional unit, B, kB/KB/K,
 * MB/M, GB/G, TB/T (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024),
 * or, with percent not NULL, a percentage "1%" to "100%" (*percent set,
 * *bytes 0). False for anything else, or a size that does not fit.
 */
bool oci_size_parse(const char *s, uint64_t *bytes, unsigned *percent);

/*
 * percent of the size of the filesystem that holds path. False with why in
 * err when it cannot be known.
 */
bool oci_size_of_filesystem(const char *path, unsigned percent, uint64_t *bytes, char *err,
                            size_t errlen);

struct oci_evictor {
    struct oci_usage *usage; /* owned by whoever made the evictor */
    uint64_t max_bytes;      /* the bound */
    uint64_t low_water;      /* eviction goes down to this */
    long min_age;            /* seconds: objects younger than this stay */
    /* Set by the cleanup thread when it starts: wakes it. */
    void (*wake)(void *arg);
    void *wake_arg;
    /* Told of each candidate an eviction considers (done of total, total of
     * total at the end); NULL: nobody is (the cache command's progress). */
    void (*progress)(void *arg, unsigned long done, unsigned long total);
    void *progress_arg;
    atomic_bool pressure; /* the storage reported a full disk */
    atomic_bool stopping; /* a run in progress returns at the next object */
};

/* The hit path: digest's object is used now. NULL e: no bound, nothing to do. */
void oci_evict_used(struct oci_evictor *e, const struct oci_digest *digest);

/* A commit of bytes under digest's blob key: counted, marked used, eviction woken past the bound.
 */
void oci_evict_committed(struct oci_evictor *e, const struct oci_digest *digest, uint64_t bytes);

/* A removal of a blob of bytes by anyone but the evictor (cleanup, a bad digest, an operator). */
void oci_evict_removed(struct oci_evictor *e, uint64_t bytes);

/* The storage is out of space: evict now, even under the bound. */
void oci_evict_pressure(struct oci_evictor *e);

/* True when the cache is past its bound or the storage reported a full disk. */
bool oci_evict_due(struct oci_evictor *e);

struct oci_evict_stats {
    uint64_t walked_bytes, walked_objects; /* what the walk found */
    uint64_t evicted_bytes, evicted_objects;
    unsigned long spared; /* candidates kept: too young, or used while being removed */
    bool skipped;         /* another process was evicting */
};

/* oci_evict_run's target when the policy decides (see below). */
#define OCI_EVICT_BY_POLICY UINT64_MAX

/*
 * Walks blobs/, sets the running totals from it, and evicts least recently
 * used first until the total is at most target. OCI_EVICT_BY_POLICY: the
 * low-water mark when past the bound, 90% of the total under pressure,
 * else nothing (a walk that only reconciles).
 * Returns what the walk or storage reported; stats say what was done.
 */
enum storage_err oci_evict_run(struct storage *st, struct oci_evictor *e, uint64_t target,
                               time_t now, struct oci_evict_stats *stats);

#endif
