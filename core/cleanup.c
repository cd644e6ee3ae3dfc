/*
 * cleanup.c - the periodic removal of unused cache content.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/repo.h"
#include "core/upload.h"
#include "core/metrics.h"
#include "util/log.h"

struct oci_cleaner {
    const struct oci_registry *reg;
    long interval;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

/* The digests ("sha256:ab12...") that hosted repositories hold, sorted. */
struct pinned {
    char **digests;
    size_t count;
    bool failed;
};

struct pass {
    const struct oci_registry *reg;
    time_t now;
    long blob_lifetime;
    struct oci_cleanup_stats *stats;
    struct pinned pinned;
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

/* Collects the digest of a hosted blob link or manifest record. */
static bool visit_hosted(void *arg, const char *key, const struct storage_info *info)
{
    struct pinned *pin = arg;
    const char *leaf = strrchr(key, '/') + 1;
    size_t before = (size_t)(leaf - key);
    char **grown;

    (void)info;
    if (!((before > 8 && memcmp(leaf - 8, "/_blobs/", 8) == 0) ||
          (before > 10 && memcmp(leaf - 10, "/_digests/", 10) == 0)))
        return true;
    grown = realloc(pin->digests, (pin->count + 1) * sizeof(*grown));
    if (grown != NULL)
        pin->digests = grown;
    if (grown == NULL || (pin->digests[pin->count] = strdup(leaf)) == NULL) {
        pin->failed = true;
        return false;
    }
    pin->count++;
    return true;
}

static int digest_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Content a hosted repository holds is never removed: lists what that is. */
static bool collect_pinned(struct storage *st, struct pinned *pin)
{
    if (st->ops->list(st, OCI_REPO_PREFIX, visit_hosted, pin) != STORAGE_OK || pin->failed)
        return false;
    if (pin->count > 0) /* else digests is NULL, which qsort must not get */
        qsort(pin->digests, pin->count, sizeof(*pin->digests), digest_cmp);
    return true;
}

/* Whether "blobs/<alg>/<xx>/<hex>" is content of a hosted repository. */
static bool is_pinned(const struct pinned *pin, const char *key)
{
    const char *alg = key + strlen("blobs/"), *hex = strrchr(key, '/') + 1;
    char digest[OCI_DIGEST_STRING_MAX + 8];
    const char *want = digest;

    snprintf(digest, sizeof(digest), "%.*s:%s", (int)strcspn(alg, "/"), alg, hex);
    return pin->count > 0 &&
           bsearch(&want, pin->digests, pin->count, sizeof(*pin->digests), digest_cmp) != NULL;
}

static void pinned_free(struct pinned *pin)
{
    for (size_t i = 0; i < pin->count; i++)
        free(pin->digests[i]);
    free(pin->digests);
}

static bool visit_blob(void *arg, const char *key, const struct storage_info *info)
{
    struct pass *p = arg;
    struct storage *st = p->reg->storage;
    time_t cutoff = p->now - p->blob_lifetime;

    if (info->mtime < cutoff && !is_pinned(&p->pinned, key) &&
        st->ops->remove_stale(st, key, cutoff) == STORAGE_OK)
        p->stats->blobs++;
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
    if (collect_pinned(st, &p.pinned))
        st->ops->list(st, "blobs/", visit_blob, &p);
    else
        oci_log(OCI_LOG_ERROR, "cleanup: cannot list the hosted repositories; no blob removed");
    pinned_free(&p.pinned);
    stats->uploads = oci_upload_expire(st, now - upload_lifetime);
}

static void *cleaner_main(void *arg)
{
    struct oci_cleaner *c = arg;
    struct oci_cleanup_stats stats;
    struct timespec until;

    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += c->interval;
        while (!c->stopping && pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT)
            ;
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->lock);
        oci_cleanup_run(c->reg, time(NULL), &stats);
        oci_metrics_cleanup_run(stats.blobs, stats.manifests);
        if (stats.blobs > 0 || stats.manifests > 0 || stats.uploads > 0)
            oci_log(OCI_LOG_INFO,
                    "cleanup: removed %lu blobs, %lu manifest records and %lu upload objects",
                    stats.blobs, stats.manifests, stats.uploads);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
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
    return c;
}

void oci_cleaner_stop(struct oci_cleaner *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
