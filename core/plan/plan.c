/*
 * plan.c - answers made from a plan: errors, stored blobs, stored manifests,
 * and the sending of a plan into a sink.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/metrics/metrics.h"
#include "core/plan/plan.h"
#include "util/log.h"

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

void oci_plan_respond(struct oci_plan *plan, int status, const char *content_type, const char *body)
{
    free(plan->body);
    plan->body = strdup(body);
    if (plan->body == NULL) {
        oci_plan_error(plan, OCI_E_INTERNAL, "out of memory");
        return;
    }
    plan->kind = OCI_PLAN_RESPOND;
    plan->head.status = status;
    plan->head.content_type = content_type;
    plan->body_len = strlen(body);
    plan->head.content_length = (int64_t)plan->body_len;
}

void oci_head_add(struct oci_response_head *head, const char *name, const char *fmt, ...)
{
    struct oci_head_field *f = &head->extra[head->extra_count];
    va_list ap;
    int len;

    if (head->extra_count >= OCI_HEAD_EXTRA_MAX) {
        oci_log(OCI_LOG_ERROR, "answer: no room for the header %s", name);
        return;
    }
    va_start(ap, fmt);
    len = vsnprintf(f->value, sizeof(f->value), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(f->value)) {
        oci_log(OCI_LOG_ERROR, "answer: the header %s is too long", name);
        return;
    }
    f->name = name;
    head->extra_count++;
}

void oci_plan_count(const struct oci_request *req, const struct oci_plan *plan)
{
    struct oci_metrics_answer a = {
        .method = req->method,
        .path = req->path,
        .namespace_ = plan->route.namespace_,
        .status = plan->head.status,
        .answered_whole = plan->kind == OCI_PLAN_RESPOND,
        .body_bytes = plan->head_only ? 0 : plan->body_len,
    };

    oci_metrics_request_end(&a);
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

/* Marks a hit's object used, for cleanup, at most once a minute: a hit stays
 * one stat. False when the object went away in between (cleanup won the race). */
static bool mark_used(struct storage *st, const char *key, const struct storage_info *info)
{
    return time(NULL) - info->mtime <= TOUCH_AFTER_SECONDS ||
           st->ops->touch(st, key) != STORAGE_NOT_FOUND;
}

bool oci_plan_cached(const struct oci_registry *reg, const struct oci_digest *digest,
                     struct storage_info *info)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage *st = reg->storage;

    oci_cache_blob_key(digest, key);
    /* Marked before the stat: an eviction that takes it out of sight after
     * the stat sees the mark and puts it back (storage remove_unless). */
    oci_evict_used(reg->evict, digest);
    if (st->ops->stat(st, key, info) != STORAGE_OK || !mark_used(st, key, info))
        return false;
    if (reg->options.check_cache_digest && oci_cache_verify(st, key, digest) != STORAGE_OK) {
        oci_log(OCI_LOG_WARN, "cache: %s does not match its digest, removing it", key);
        if (st->ops->remove(st, key) == STORAGE_OK)
            oci_evict_removed(reg->evict, info->size);
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
        if (!oci_plan_cached(reg, &rec->digest, &info) || info.size != rec->size)
            return false;
        oci_plan_manifest_head(plan);
        return true;
    }
    oci_cache_blob_key(&rec->digest, key);
    oci_evict_used(reg->evict, &rec->digest);
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
        if (st->ops->remove(st, key) == STORAGE_OK)
            oci_evict_removed(reg->evict, len);
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

void oci_plan_send(const struct oci_plan *plan, const struct oci_sink *sink)
{
    if (plan->kind == OCI_PLAN_SEND_STORED)
        sink->send_stored(sink->ctx, &plan->head, plan->key);
    else if (sink->head(sink->ctx, &plan->head) == 0 && !plan->head_only && plan->body_len > 0)
        sink->body(sink->ctx, plan->body, plan->body_len);
}
