/*
 * cleanup.c - the periodic removal of unused cache content.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "util/log.h"

struct oci_cleaner {
    const struct oci_registry *reg;
    long interval;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

struct pass {
    const struct oci_registry *reg;
    time_t now;
    long blob_lifetime;
    struct oci_cleanup_stats *stats;
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

    if (info->mtime < cutoff && st->ops->remove_stale(st, key, cutoff) == STORAGE_OK)
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
    struct pass p = {reg, now, blob_lifetime(reg), stats};
    struct storage *st = reg->storage;

    memset(stats, 0, sizeof(*stats));
    /* Records first: a record never outlives the content it points to by much. */
    st->ops->list(st, "manifests/", visit_manifest, &p);
    st->ops->list(st, "blobs/", visit_blob, &p);
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
        if (stats.blobs > 0 || stats.manifests > 0)
            oci_log(OCI_LOG_INFO, "cleanup: removed %lu blobs and %lu manifest records",
                    stats.blobs, stats.manifests);
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
