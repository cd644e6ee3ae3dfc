/*
 * registry.c - the request pipeline: plans, and the dispatch of fetches.
 *
 * Planning reads only the cache, never the network: it validates and
 * routes the request, picks the upstream, and decides from what the cache
 * holds (core/plan/plan.c makes the answers). Fetches are carried out by
 * core/plan/manifest.c and core/plan/blob.c.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ops/admin.h"
#include "core/plan/fetch.h"
#include "core/ops/health.h"
#include "core/hosted/hosted.h"
#include "core/metrics/metrics.h"
#include "core/registry.h"
#include "util/log.h"

/* Picks the upstream of the route's namespace; dynamic ones go behind the guard. */
static enum oci_error choose_upstream(const struct oci_registry *reg, struct oci_plan *plan)
{
    const char *ns = plan->route.namespace_;
    const struct oci_upstream *up = oci_config_find(reg->config, ns);

    if (up != NULL) {
        plan->upstream = *up;
        plan->guard = !up->configured; /* named in UPSTREAM_CREDENTIALS alone */
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

static void plan_blob(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct storage_info info;

    if (oci_plan_cached(reg, &plan->route.digest, &info))
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
        plan->have_stale = oci_plan_cached(reg, &rec->digest, &info) && info.size == rec->size;
}

/* /readyz: 200 when storage takes a write and gives it back, else 503 with why. */
static void plan_ready(const struct oci_registry *reg, struct oci_plan *plan)
{
    char reason[256], details[256], body[600];

    oci_health_details(details, sizeof(details));
    if (oci_health_probe_storage(reg->storage, reason, sizeof(reason))) {
        snprintf(body, sizeof(body), "ready\n%s", details);
        oci_plan_respond(plan, 200, "text/plain", body);
        return;
    }
    oci_log(OCI_LOG_WARN, "readyz: not ready: %s", reason);
    snprintf(body, sizeof(body), "not ready: %s\n%s", reason, details);
    oci_plan_respond(plan, 503, "text/plain", body);
}

/* The hosted entry of the route's namespace, or NULL (mirrored, or no namespace). */
static const struct oci_upstream *hosted_entry(const struct oci_registry *reg,
                                               const struct oci_route *route)
{
    const struct oci_upstream *up;

    if (route->namespace_[0] == '\0')
        return NULL;
    up = oci_config_find(reg->config, route->namespace_);
    return up != NULL && up->hosted ? up : NULL;
}

/* Pushes and discovery are for hosted namespaces; the mirror only pulls. */
static bool mirror_refuses(const struct oci_request *req, struct oci_plan *plan)
{
    enum oci_route_kind kind = plan->route.kind;

    if (!plan->head_only && strcmp(req->method, "GET") != 0) {
        oci_plan_error(plan, OCI_E_UNSUPPORTED, "this namespace is a pull-through cache");
        plan->head.allow = "GET, HEAD";
        return true;
    }
    if (kind == OCI_ROUTE_UPLOAD_START || kind == OCI_ROUTE_UPLOAD || kind == OCI_ROUTE_TAGS ||
        kind == OCI_ROUTE_REFERRERS || kind == OCI_ROUTE_CATALOG) {
        oci_plan_error(plan, OCI_E_NOT_FOUND, "served for hosted namespaces only");
        return true;
    }
    return false;
}

/* /metrics: every counter of the host's responders, never kept by a cache. */
static void plan_metrics(struct oci_plan *plan)
{
    size_t len;
    char *text = oci_metrics_render(&len);

    if (text == NULL) {
        oci_plan_error(plan, OCI_E_INTERNAL, "out of memory");
        return;
    }
    oci_plan_respond(plan, 200, OCI_METRICS_CONTENT_TYPE, text);
    free(text);
}

void oci_registry_plan(const struct oci_registry *reg, const struct oci_request *req,
                       struct oci_plan *plan)
{
    const struct oci_upstream *hosted;
    enum oci_error err;
    bool write;

    memset(plan, 0, sizeof(*plan));
    plan->head.content_length = -1;
    plan->head_only = strcmp(req->method, "HEAD") == 0;
    if (oci_admin_path(req->path)) { /* methods and rules of its own */
        oci_admin_plan(reg, req, plan);
        return;
    }
    write = !plan->head_only && strcmp(req->method, "GET") != 0;
    err = oci_route_parse(req->path, req->query, reg->options.default_namespace, &plan->route);
    hosted = hosted_entry(reg, &plan->route);
    /* A write anywhere but a hosted namespace's repositories is refused whatever its path. */
    if ((hosted == NULL || plan->route.kind == OCI_ROUTE_BASE) && mirror_refuses(req, plan))
        return;
    if (err != OCI_OK && !write)
        err = oci_route_read_error(&plan->route, err);
    else if (err == OCI_OK && hosted == NULL &&
             (plan->route.kind == OCI_ROUTE_MANIFEST || plan->route.kind == OCI_ROUTE_BLOB))
        err = choose_upstream(reg, plan);
    if (err != OCI_OK) {
        oci_plan_error(plan, err, plan->route.why);
        return;
    }
    if (hosted != NULL && plan->route.kind != OCI_ROUTE_BASE) {
        oci_hosted_plan(reg, hosted, req, plan);
        return;
    }
    switch (plan->route.kind) {
    case OCI_ROUTE_BASE:
        if (hosted == NULL || !oci_hosted_challenge(hosted, req, plan))
            oci_plan_respond(plan, 200, "application/json", "{}");
        break;
    case OCI_ROUTE_HEALTHZ:
        oci_plan_respond(plan, 200, "text/plain", "ok\n");
        break;
    case OCI_ROUTE_READYZ:
        plan_ready(reg, plan);
        break;
    case OCI_ROUTE_METRICS:
        plan_metrics(plan);
        break;
    case OCI_ROUTE_BLOB:
        plan_blob(reg, plan);
        break;
    case OCI_ROUTE_MANIFEST:
        plan_manifest(reg, plan);
        break;
    default: /* the hosted endpoints, refused above */
        break;
    }
}

void oci_registry_fetch(const struct oci_registry *reg, struct oci_plan *plan,
                        const struct oci_sink *sink)
{
    if (plan->route.kind == OCI_ROUTE_MANIFEST)
        oci_fetch_manifest(reg, plan, sink);
    else
        oci_fetch_blob(reg, plan, sink);
}
