/*
 * cleanup.c - the periodic removal of unused cache content, and the thread
 * that runs it and the evictions of the size bound (core/cache/evict.h).
 *
 * Replicas on other hosts sharing the storage (an S3 bucket) run cleanup
 * passes and evictions one at a time: each holds the storage's lease
 * CLEANUP_LEASE for its run, and a replica that finds it held skips its
 * own (counted: oci_registry_cleanup_skipped_total).
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops/cleanup.h"
#include "core/metrics/metrics.h"
#include "core/cache/repo.h"
#include "core/hosted/upload.h"
#include "util/log.h"

/* Without periodic cleanup, the size bound's totals are still walked this often. */
#define RECONCILE_SECONDS 3600
/* After an eviction that could not get under the bound (everything young or
 * in use), commits do not start another walk for this long: a walk per
 * commit would list the whole cache again and again for nothing. */
#define FUTILE_EVICTION_PAUSE 60
/* The storage lease of a cleanup pass or an eviction (storage_ops.lease_take). */
#define CLEANUP_LEASE "cleanup"

struct oci_cleaner {
    const struct oci_registry *reg;
    long interval;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool woken;         /* by a commit past the bound, or a full disk */
    time_t quiet_until; /* an eviction could not get under the bound: no walk before */
};

struct pass {
    const struct oci_registry *reg;
    time_t now;
    long blob_lifetime;
    struct oci_cleanup_stats *stats;
    struct oci_repo_pins pins; /* what hosted repositories hold: never removed */
};

/* The longest blob lifetime of any upstream a request can reach. */
static long blob_lifetime(const struct oci_registry *reg)
{
    long longest = reg->options.dynamic_namespaces ? OCI_DEFAULT_BLOB_INVALIDATION : 0;
    size_t i;

    for (i = 0; i < reg->config->count; i++)
        if (reg->config->upstreams[i].blob_invalidation_time > longest)
            longest = reg->config->upstreams[i].blob_invalidation_time;
    return longest;
}

static bool visit_blob(void *arg, const char *key, const struct storage_info *info)
{
    struct pass *p = arg;
    struct storage *st = p->reg->storage;
    time_t cutoff = p->now - p->blob_lifetime;

    if (info->mtime < cutoff && !oci_repo_pins_has(&p->pins, key) &&
        st->ops->remove_stale(st, key, cutoff) == STORAGE_OK) {
        oci_evict_removed(p->reg->evict, info->size);
        p->stats->blobs++;
    }
    return true;
}

/* A record's key is "manifests/<namespace>/...": its namespace decides its lifetime. */
static bool visit_manifest(void *arg, const char *key, const struct storage_info *info)
{
    struct pass *p = arg;
    struct storage *st = p->reg->storage;
    const char *ns = key + strlen("manifests/");
    char namespace_[OCI_NAMESPACE_MAX + 1];
    size_t len = strcspn(ns, "/");
    const struct oci_upstream *up;
    long lifetime = OCI_DEFAULT_BLOB_INVALIDATION;
    time_t cutoff;

    if (len > OCI_NAMESPACE_MAX)
        return true;
    memcpy(namespace_, ns, len);
    namespace_[len] = '\0';
    up = oci_config_find(p->reg->config, namespace_);
    if (up != NULL)
        lifetime = up->blob_invalidation_time;
    cutoff = p->now - lifetime;
    if (info->mtime < cutoff && st->ops->remove_stale(st, key, cutoff) == STORAGE_OK)
        p->stats->manifests++;
    return true;
}

void oci_cleanup_run(const struct oci_registry *reg, time_t now, struct oci_cleanup_stats *stats)
{
    struct pass p = {reg, now, blob_lifetime(reg), stats, {0}};
    struct storage *st = reg->storage;
    long upload_lifetime = reg->options.upload_lifetime > 0 ? reg->options.upload_lifetime
                                                            : OCI_UPLOAD_DEFAULT_LIFETIME;

    memset(stats, 0, sizeof(*stats));
    /* Records first: a record never outlives the content it points to by much. */
    st->ops->list(st, "manifests/", visit_manifest, &p);
    /* Without the list of what hosted repositories hold, no blob is safe to remove. */
    if (oci_repo_pins_collect(st, &p.pins))
        st->ops->list(st, "blobs/", visit_blob, &p);
    else
        oci_log(OCI_LOG_ERROR, "cleanup: cannot list the hosted repositories; no blob removed");
    oci_repo_pins_free(&p.pins);
    stats->uploads = oci_upload_expire(st, now - upload_lifetime);
    stats->orphans = st->ops->reap != NULL ? st->ops->reap(st) : 0;
}

/*
 * Takes the cleanup lease, so that of the hosts sharing the storage one
 * at a time runs a pass or an eviction. False when another holds it (the
 * pass is skipped, and counted) or the storage failed; *lease is then NULL.
 */
static bool cleanup_lease_take(const struct oci_registry *reg, const char *what,
                               struct storage_lease **lease)
{
    struct storage *st = reg->storage;
    enum storage_err err;

    *lease = NULL;
    if (st->ops->lease_take == NULL)
        return true;
    err = st->ops->lease_take(st, CLEANUP_LEASE, 0, lease);
    if (err == STORAGE_IN_PROGRESS) {
        oci_log(OCI_LOG_INFO, "%s: skipped: another replica holds the cleanup lease", what);
        oci_metrics_cleanup_skipped();
    } else if (err != STORAGE_OK) {
        oci_log(OCI_LOG_ERROR, "%s: skipped: cannot take the cleanup lease: %s", what,
                storage_strerror(err));
    }
    return err == STORAGE_OK;
}

static void cleanup_lease_release(const struct oci_registry *reg, struct storage_lease *lease)
{
    if (lease != NULL)
        reg->storage->ops->lease_release(lease);
}

/* The cleanup pass of each period. */
static void clean(const struct oci_cleaner *c)
{
    struct oci_cleanup_stats stats;
    struct storage_lease *lease;

    if (!cleanup_lease_take(c->reg, "cleanup", &lease))
        return;
    oci_log(OCI_LOG_INFO, "cleanup: pass begins");
    oci_cleanup_run(c->reg, time(NULL), &stats);
    oci_metrics_cleanup_run(stats.blobs, stats.manifests);
    oci_log(OCI_LOG_INFO,
            "cleanup: pass ends: removed %lu blobs, %lu manifest records and %lu upload "
            "objects; aborted %lu abandoned storage uploads",
            stats.blobs, stats.manifests, stats.uploads, stats.orphans);
    cleanup_lease_release(c->reg, lease);
}

/*
 * An eviction when due; with reconcile, a walk of the totals at least (when
 * stale). True when it is still due and worth trying again soon: another
 * process was evicting (and may have finished before it saw our commit), or
 * commits came while this one ran.
 */
static bool evict(struct oci_cleaner *c, long period, bool reconcile)
{
    struct oci_evictor *e = c->reg->evict;
    struct oci_usage_totals t;
    struct oci_evict_stats stats;
    struct storage_lease *lease;
    time_t now = time(NULL);
    enum storage_err err;

    oci_usage_totals(e->usage, &t);
    reconcile = reconcile && (t.reconciled == 0 || now - t.reconciled >= period);
    if (!reconcile && (!oci_evict_due(e) || now < c->quiet_until))
        return false;
    /* Another replica evicting the same storage: this one's turn comes with its next commit. */
    if (!cleanup_lease_take(c->reg, "evict", &lease))
        return false;
    err = oci_evict_run(c->reg->storage, e, OCI_EVICT_BY_POLICY, now, &stats);
    cleanup_lease_release(c->reg, lease);
    if (stats.skipped)
        return oci_evict_due(e);
    if (err != STORAGE_OK)
        oci_log(OCI_LOG_ERROR, "evict: cannot walk the cache: %s", storage_strerror(err));
    if (stats.evicted_objects > 0) /* counted, and logged, by metrics */
        oci_metrics_evicted(stats.evicted_objects, stats.evicted_bytes);
    if (err != STORAGE_OK || !oci_evict_due(e))
        return false;
    if (stats.evicted_objects > 0) /* commits came meanwhile: again soon */
        return true;
    c->quiet_until = now + FUTILE_EVICTION_PAUSE;
    oci_log(OCI_LOG_WARN,
            "evict: over the bound (%" PRIu64 " bytes) with nothing to evict: %lu objects are "
            "younger than --min-cache-age or in use",
            e->max_bytes, stats.spared);
    return false;
}

/* The end of a wait: the next period, or a second from now when sooner and retry. */
static struct timespec wait_until(const struct timespec *next, bool retry)
{
    struct timespec soon;

    clock_gettime(CLOCK_REALTIME, &soon);
    soon.tv_sec += 1;
    return retry && soon.tv_sec < next->tv_sec ? soon : *next;
}

static void *cleaner_main(void *arg)
{
    struct oci_cleaner *c = arg;
    long period = c->interval > 0 ? c->interval : RECONCILE_SECONDS;
    struct timespec next, until;
    bool first = true, periodic = true; /* at start: reconcile the totals if stale */
    bool retry = false;

    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->lock);
        if (periodic && !first && c->interval > 0)
            clean(c);
        retry = c->reg->evict != NULL && evict(c, period, periodic);
        pthread_mutex_lock(&c->lock);
        if (periodic) {
            clock_gettime(CLOCK_REALTIME, &next);
            next.tv_sec += period;
        }
        first = periodic = false;
        until = wait_until(&next, retry);
        while (!c->stopping && !c->woken) {
            if (pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT)
                continue; /* woken, or spuriously: the loop tells which */
            /* The period's end, or the retry's (an eviction then, no pass). */
            periodic = until.tv_sec == next.tv_sec && until.tv_nsec == next.tv_nsec;
            break;
        }
        c->woken = false;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void cleaner_wake(void *arg)
{
    struct oci_cleaner *c = arg;

    pthread_mutex_lock(&c->lock);
    c->woken = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

struct oci_cleaner *oci_cleaner_start(const struct oci_registry *reg, long interval)
{
    struct oci_cleaner *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->reg = reg;
    c->interval = interval;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, cleaner_main, c) != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    if (reg->evict != NULL) {
        reg->evict->wake_arg = c;
        reg->evict->wake = cleaner_wake;
    }
    return c;
}

void oci_cleaner_stop(struct oci_cleaner *c)
{
    if (c == NULL)
        return;
    if (c->reg->evict != NULL) {
        c->reg->evict->wake = NULL;
        atomic_store(&c->reg->evict->stopping, true);
    }
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
