/*
 * registry.c - the request pipeline: plans, and the dispatch of fetches.
 *
 * Planning reads only the cache, never the network: it validates and
 * routes the request, picks the upstream, and decides from what the cache
 * holds. Fetches are carried out by core/manifest.c and core/blob.c.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fetch.h"
#include "core/log.h"

/* A hit marks its blob used (for cleanup) at most this often. */
#define TOUCH_AFTER_SECONDS 60

void oci_plan_error(struct oci_plan *plan, enum oci_error err, const char *detail)
{
    free(plan->body);
    plan->kind = OCI_PLAN_RESPOND;
    plan->head.status = oci_error_status(err);
    plan->head.content_type = "application/json";
    plan->body = oci_error_body(err, NULL, detail);
    plan->body_len = plan->body ? strlen(plan->body) : 0;
    plan->head.content_length = (int64_t)plan->body_len;
    plan->head.digest[0] = '\0';
    plan->head.fresh_for = 0;
}

void oci_plan_release(struct oci_plan *plan)
{
    free(plan->body);
    plan->body = NULL;
}

void oci_plan_send_stored(struct oci_plan *plan, uint64_t size, const struct oci_digest *digest)
{
    plan->kind = OCI_PLAN_SEND_STORED;
    plan->head.status = 200;
    plan->head.content_type = OCI_OCTET_STREAM;
    plan->head.content_length = (int64_t)size;
    oci_digest_format(digest, plan->head.digest);
    oci_cache_blob_key(digest, plan->key);
}

/* Picks the upstream of the route's namespace; dynamic ones go behind the guard. */
static enum oci_error choose_upstream(const struct oci_registry *reg, struct oci_plan *plan)
{
    const char *ns = plan->route.namespace_;
    const struct oci_upstream *up = oci_config_find(reg->config, ns);

    if (up != NULL) {
        plan->upstream = *up;
        plan->guard = false;
        return OCI_OK;
    }
    if (!reg->options.dynamic_namespaces)
        return OCI_E_NAME_UNKNOWN;
    /* Only names can be dynamic upstreams: an address is reachable by config alone. */
    if (oci_host_is_ip_literal(ns, oci_namespace_host_len(ns, strlen(ns))))
        return OCI_E_DENIED;
    oci_upstream_default(ns, &plan->upstream);
    plan->guard = true;
    return OCI_OK;
}

/* Marks a hit's object used, for cleanup, at most once a minute: a hit stays
 * one stat. False when the object went away in between (cleanup won the race). */
static bool mark_used(struct storage *st, const char *key, const struct storage_info *info)
{
    return time(NULL) - info->mtime <= TOUCH_AFTER_SECONDS ||
           st->ops->touch(st, key) != STORAGE_NOT_FOUND;
}

/* A cached object is usable when present and, if asked, still matching its digest. */
static bool cached(const struct oci_registry *reg, const struct oci_digest *digest,
                   struct storage_info *info)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage *st = reg->storage;

    oci_cache_blob_key(digest, key);
    if (st->ops->stat(st, key, info) != STORAGE_OK || !mark_used(st, key, info))
        return false;
    if (reg->options.check_cache_digest && oci_cache_verify(st, key, digest) != STORAGE_OK) {
        oci_log(OCI_LOG_WARN, "cache: %s does not match its digest, removing it", key);
        st->ops->remove(st, key);
        return false;
    }
    return true;
}

/*
 * A manifest hit is answered with its bytes, not through the front server:
 * nginx stops reading a FastCGI answer at X-Accel-Redirect, before the end
 * of the request, and so closes the connection; a manifest is small, and
 * answered inline its hit costs one write on a kept-alive connection.
 */
bool oci_plan_stored_manifest(const struct oci_registry *reg, struct oci_plan *plan)
{
    const struct oci_manifest_record *rec = &plan->manifest;
    struct storage *st = reg->storage;
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;
    struct oci_digest actual;
    char *body;
    size_t len;

    if (plan->head_only) { /* the record says it all: a stat that the content is there */
        if (!cached(reg, &rec->digest, &info) || info.size != rec->size)
            return false;
        oci_plan_manifest_head(plan);
        return true;
    }
    oci_cache_blob_key(&rec->digest, key);
    if (st->ops->read_small(st, key, rec->size, &body, &len, &info) != STORAGE_OK)
        return false;
    if (len != rec->size) { /* damaged: fetched again, and stored anew */
        free(body);
        return false;
    }
    if (reg->options.check_cache_digest &&
        (!oci_digest_buffer(rec->digest.alg, body, len, &actual) ||
         !oci_digest_equal(&actual, &rec->digest))) {
        oci_log(OCI_LOG_WARN, "cache: %s does not match its digest, removing it", key);
        st->ops->remove(st, key);
        free(body);
        return false;
    }
    mark_used(st, key, &info); /* the bytes are in hand: a lost race does not matter */
    free(plan->body);
    plan->body = body;
    plan->body_len = len;
    oci_plan_manifest_head(plan);
    return true;
}

void oci_plan_manifest_head(struct oci_plan *plan)
{
    const struct oci_manifest_record *rec = &plan->manifest;
    long age = (long)(time(NULL) - rec->confirmed);
    long left = plan->upstream.manifest_invalidation_time - (age > 0 ? age : 0);

    plan->kind = OCI_PLAN_RESPOND;
    plan->head.status = 200;
    plan->head.content_type = rec->media_type;
    plan->head.content_length = (int64_t)rec->size;
    oci_digest_format(&rec->digest, plan->head.digest);
    /* A digest's answer never changes; a tag's may once it goes stale here
     * (a second less: the front server's clock ticks in whole seconds). */
    if (plan->route.by_digest)
        plan->head.fresh_for = plan->upstream.blob_invalidation_time;
    else
        plan->head.fresh_for = left > 1 ? left - 1 : 0;
}

static void plan_blob(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct storage_info info;

    if (cached(reg, &plan->route.digest, &info))
        oci_plan_send_stored(plan, info.size, &plan->route.digest);
    else
        plan->kind = OCI_PLAN_FETCH;
}

static void plan_manifest(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct oci_manifest_record *rec = &plan->manifest;
    struct storage_info info;
    time_t age;

    plan->kind = OCI_PLAN_FETCH;
    if (oci_cache_manifest_lookup(reg->storage, &plan->route, rec) != STORAGE_OK)
        return;
    age = time(NULL) - rec->confirmed;
    /* A file's time may run a clock tick ahead of time() (fine-grained file
     * times): a second ahead is now. A record further in the future (the
     * clock went back) is not trusted as fresh. */
    if (plan->route.by_digest || (age >= -1 && age < plan->upstream.manifest_invalidation_time))
        oci_plan_stored_manifest(reg, plan); /* else a miss: fetched */
    else
        plan->have_stale = cached(reg, &rec->digest, &info) && info.size == rec->size;
}

void oci_registry_plan(const struct oci_registry *reg, const struct oci_request *req,
                       struct oci_plan *plan)
{
    enum oci_error err;

    memset(plan, 0, sizeof(*plan));
    plan->head.content_length = -1;
    plan->head_only = strcmp(req->method, "HEAD") == 0;
    if (!plan->head_only && strcmp(req->method, "GET") != 0) {
        oci_plan_error(plan, OCI_E_UNSUPPORTED, "this registry is a pull-through cache");
        plan->head.allow = "GET, HEAD";
        return;
    }
    err = oci_route_parse(req->path, req->query, reg->options.default_namespace, &plan->route);
    if (err == OCI_OK && plan->route.kind != OCI_ROUTE_BASE)
        err = choose_upstream(reg, plan);
    if (err != OCI_OK) {
        oci_plan_error(plan, err, NULL);
        return;
    }
    switch (plan->route.kind) {
    case OCI_ROUTE_BASE:
        plan->kind = OCI_PLAN_RESPOND;
        plan->head.status = 200;
        plan->head.content_type = "application/json";
        plan->body = strdup("{}");
        plan->body_len = 2;
        plan->head.content_length = 2;
        if (plan->body == NULL)
            oci_plan_error(plan, OCI_E_INTERNAL, "out of memory");
        break;
    case OCI_ROUTE_BLOB:
        plan_blob(reg, plan);
        break;
    case OCI_ROUTE_MANIFEST:
        plan_manifest(reg, plan);
        break;
    }
}

void oci_plan_send(const struct oci_plan *plan, const struct oci_sink *sink)
{
    if (plan->kind == OCI_PLAN_SEND_STORED)
        sink->send_stored(sink->ctx, &plan->head, plan->key);
    else if (sink->head(sink->ctx, &plan->head) == 0 && !plan->head_only && plan->body_len > 0)
        sink->body(sink->ctx, plan->body, plan->body_len);
}

void oci_registry_fetch(const struct oci_registry *reg, struct oci_plan *plan,
                        const struct oci_sink *sink)
{
    if (plan->route.kind == OCI_ROUTE_MANIFEST)
        oci_fetch_manifest(reg, plan, sink);
    else
        oci_fetch_blob(reg, plan, sink);
}
