/*
 * evict.c - the size bound (see evict.h): sizes, accounting, and eviction
 * of the least recently used blobs.
 *
 * Last use of an object is the later of its usage-table minute (hits and
 * commits on this host) and its storage time (commit, or touch by a hit at
 * most once a minute, by any replica): the table is the fine record, the
 * storage time the durable one that survives a lost table and that S3
 * replicas share. Eviction sorts a whole walk by it, so one eviction costs
 * one listing of blobs/ however many objects it removes; it runs when the
 * cache passed its bound and leaves it at the low-water mark, so walks are
 * at least (bound - low water) bytes of commits apart.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "core/cache/cache.h"
#include "core/cache/evict.h"
#include "core/cache/repo.h"
#include "core/cache/listing.h"
#include "core/metrics/metrics.h"
#include "util/log.h"

static const struct {
    const char *name;
    uint64_t factor;
} units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1000ULL},
    {"kb", 1000ULL},
    {"kib", 1ULL << 10},
    {"m", 1000ULL * 1000},
    {"mb", 1000ULL * 1000},
    {"mib", 1ULL << 20},
    {"g", 1000ULL * 1000 * 1000},
    {"gb", 1000ULL * 1000 * 1000},
    {"gib", 1ULL << 30},
    {"t", 1000ULL * 1000 * 1000 * 1000},
    {"tb", 1000ULL * 1000 * 1000 * 1000},
    {"tib", 1ULL << 40},
};

bool oci_size_parse(const char *s, uint64_t *bytes, unsigned *percent)
{
    uint64_t n = 0;
    const char *c = s;
    size_t i;

    if (!isdigit((unsigned char)*c))
        return false;
    for (; isdigit((unsigned char)*c); c++)
        if (__builtin_mul_overflow(n, 10, &n) ||
            __builtin_add_overflow(n, (uint64_t)(*c - '0'), &n))
            return false;
    if (percent != NULL && strcmp(c, "%") == 0) {
        if (n < 1 || n > 100)
            return false;
        *percent = (unsigned)n;
        *bytes = 0;
        return true;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(c, units[i].name) == 0) {
            if (__builtin_mul_overflow(n, units[i].factor, bytes))
                return false;
            if (percent != NULL)
                *percent = 0;
            return true;
        }
    }
    return false;
}

bool oci_size_of_filesystem(const char *path, unsigned percent, uint64_t *bytes, char *err,
                            size_t errlen)
{
    struct statvfs sv;

    if (statvfs(path, &sv) < 0) {
        snprintf(err, errlen, "cannot measure the filesystem of %s: %s", path, strerror(errno));
        return false;
    }
    *bytes = (uint64_t)sv.f_blocks * sv.f_frsize / 100 * percent;
    return true;
}

void oci_evict_used(struct oci_evictor *e, const struct oci_digest *digest)
{
    if (e != NULL)
        oci_usage_note(e->usage, digest, time(NULL));
}

static void wake(struct oci_evictor *e)
{
    if (e->wake != NULL)
        e->wake(e->wake_arg);
}

bool oci_evict_due(struct oci_evictor *e)
{
    struct oci_usage_totals t;

    if (e == NULL)
        return false;
    oci_usage_totals(e->usage, &t);
    return t.bytes > e->max_bytes || atomic_load(&e->pressure);
}

/* The cache's size for /metrics (a gauge: the last report of any process wins). */
static void report_size(const struct oci_evictor *e)
{
    struct oci_usage_totals t;

    oci_usage_totals(e->usage, &t);
    oci_metrics_cache_size(t.bytes, t.objects);
}

void oci_evict_committed(struct oci_evictor *e, const struct oci_digest *digest, uint64_t bytes)
{
    if (e == NULL)
        return;
    oci_usage_add(e->usage, (int64_t)bytes, 1);
    oci_usage_note(e->usage, digest, time(NULL));
    report_size(e);
    if (oci_evict_due(e))
        wake(e);
}

void oci_evict_removed(struct oci_evictor *e, uint64_t bytes)
{
    if (e == NULL)
        return;
    oci_usage_add(e->usage, -(int64_t)bytes, -1);
    report_size(e);
}

void oci_evict_pressure(struct oci_evictor *e)
{
    if (e == NULL)
        return;
    atomic_store(&e->pressure, true);
    wake(e);
}

/* ---- eviction ------------------------------------------------------------ */

struct candidate {
    const struct oci_listing_item *item; /* key, size, and the storage's time */
    time_t last;                         /* last use: the later of the table's and the storage's */
};

static time_t last_use(const struct oci_evictor *e, const char *key, time_t mtime, time_t now)
{
    struct oci_digest d;
    time_t table = oci_cache_blob_digest(key, &d) ? oci_usage_last(e->usage, &d, now) : 0;

    return table > mtime ? table : mtime;
}

static int by_last_use(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;

    if (x->last != y->last)
        return x->last < y->last ? -1 : 1;
    if (x->item->info.mtime != y->item->info.mtime)
        return x->item->info.mtime < y->item->info.mtime ? -1 : 1;
    return strcmp(x->item->key, y->item->key);
}

/* What must stay when its time comes: asked by remove_unless once it is out of sight. */
struct keep_ctx {
    const struct oci_evictor *e;
    const struct candidate *c;
    time_t now;
};

static bool keep(void *arg, const char *key, const struct storage_info *info)
{
    const struct keep_ctx *k = arg;

    /* Written or touched since it was chosen, young, or used on this host since. */
    return info->mtime > k->c->item->info.mtime || info->mtime > k->now - k->e->min_age ||
           last_use(k->e, key, info->mtime, k->now) > k->c->last;
}

static uint64_t policy_target(struct oci_evictor *e, uint64_t total)
{
    if (atomic_exchange(&e->pressure, false)) {
        uint64_t tenth_less = total / 10 * 9;
        return tenth_less < e->low_water ? tenth_less : e->low_water;
    }
    return total > e->max_bytes ? e->low_water : OCI_EVICT_BY_POLICY;
}

/* Removes candidates, least recently used first, until the shared total is at most target. */
static void evict_sorted(struct storage *st, struct oci_evictor *e, const struct candidate *c,
                         size_t count, time_t now, uint64_t target, struct oci_evict_stats *stats)
{
    struct oci_usage_totals t;
    size_t i;

    for (i = 0; i < count && !atomic_load(&e->stopping); i++) {
        const struct oci_listing_item *it = c[i].item;
        struct keep_ctx k = {e, &c[i], now};

        oci_usage_totals(e->usage, &t);
        if (t.bytes <= target)
            break;
        if (it->info.mtime > now - e->min_age ||
            st->ops->remove_unless(st, it->key, keep, &k) != STORAGE_OK) {
            stats->spared++;
            continue;
        }
        oci_usage_add(e->usage, -(int64_t)it->info.size, -1);
        stats->evicted_bytes += it->info.size;
        stats->evicted_objects++;
        if (e->progress != NULL)
            e->progress(e->progress_arg, i + 1, count);
    }
    if (e->progress != NULL)
        e->progress(e->progress_arg, count, count);
}

/*
 * Orders what the walk found by last use and evicts down to target. What
 * hosted repositories hold (core/cache/repo.h) is never a candidate: without
 * their list, nothing is.
 */
static enum storage_err evict_listed(struct storage *st, struct oci_evictor *e,
                                     const struct oci_listing *l, time_t now, uint64_t target,
                                     struct oci_evict_stats *stats)
{
    struct candidate *c = calloc(l->n + 1, sizeof(*c));
    struct oci_repo_pins pins;
    size_t i, n = 0;

    if (c == NULL)
        return STORAGE_NO_MEMORY;
    if (!oci_repo_pins_collect(st, &pins)) {
        free(c);
        return STORAGE_IO;
    }
    for (i = 0; i < l->n; i++) {
        if (oci_repo_pins_has(&pins, l->v[i].key))
            continue;
        c[n].item = &l->v[i];
        c[n++].last = last_use(e, l->v[i].key, l->v[i].info.mtime, now);
    }
    oci_repo_pins_free(&pins);
    if (n > 1)
        qsort(c, n, sizeof(*c), by_last_use);
    evict_sorted(st, e, c, n, now, target, stats);
    free(c);
    return STORAGE_OK;
}

enum storage_err oci_evict_run(struct storage *st, struct oci_evictor *e, uint64_t target,
                               time_t now, struct oci_evict_stats *stats)
{
    struct oci_listing l = {0};
    struct oci_usage_mark mark;
    enum storage_err err;

    memset(stats, 0, sizeof(*stats));
    if (!oci_usage_lock_evict(e->usage)) {
        stats->skipped = true;
        return STORAGE_OK;
    }
    oci_usage_reconcile_begin(e->usage, &mark);
    err = oci_listing_collect(st, "blobs/", &l);
    if (err == STORAGE_OK) {
        oci_usage_reconcile_end(e->usage, &mark, l.bytes, l.n, now);
        stats->walked_bytes = l.bytes;
        stats->walked_objects = l.n;
        if (target == OCI_EVICT_BY_POLICY)
            target = policy_target(e, l.bytes);
        if (target != OCI_EVICT_BY_POLICY)
            err = evict_listed(st, e, &l, now, target, stats);
        report_size(e);
    }
    oci_usage_unlock_evict(e->usage);
    oci_listing_free(&l);
    return err;
}
