/*
 * manifest.c - fetching manifests from the upstream.
 *
 * A manifest is small (at most OCI_MANIFEST_MAX): it is collected whole,
 * verified against the digest asked for (or the upstream's
 * Docker-Content-Digest), stored, then answered. A tag past its
 * invalidation time is first revalidated with a HEAD, which does not count
 * against Docker Hub's pull limit; it is fetched again only when its digest
 * changed. When the upstream cannot answer, the stale tag is served.
 */
#include "autoconfig.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/plan/fetch.h"
#include "core/metrics/metrics.h"
#include "util/log.h"

/* Manifests above this size are refused, as distribution and containerd do. */
#define OCI_MANIFEST_MAX (4 * 1024 * 1024)

/* Every manifest type a pull client may use, for upstreams that negotiate. */
static const char manifest_accept[] = "application/vnd.oci.image.index.v1+json, "
                                      "application/vnd.oci.image.manifest.v1+json, "
                                      "application/vnd.docker.distribution.manifest.list.v2+json, "
                                      "application/vnd.docker.distribution.manifest.v2+json";

struct manifest_fetch {
    struct oci_upstream_answer answer;
    char *buf;
    size_t len;
    bool too_large;
    bool bad_content_type; /* the upstream sent a Content-Type that is no media type */
};

static int manifest_on_head(void *ctx, const struct oci_upstream_head *head)
{
    struct manifest_fetch *m = ctx;

    oci_fetch_keep_head(&m->answer, head);
    m->bad_content_type = head->content_type != NULL && m->answer.content_type[0] == '\0';
    if (head->content_length > OCI_MANIFEST_MAX) {
        m->too_large = true;
        return 1;
    }
    return 0;
}

static int manifest_on_data(void *ctx, const void *buf, size_t len)
{
    struct manifest_fetch *m = ctx;
    char *grown;

    if (m->len + len > OCI_MANIFEST_MAX) {
        m->too_large = true;
        return 1;
    }
    grown = realloc(m->buf, m->len + len);
    if (grown == NULL)
        return 1;
    memcpy(grown + m->len, buf, len);
    m->buf = grown;
    m->len += len;
    return 0;
}

/*
 * The manifest's media type: the upstream's Content-Type when it is a
 * specific one, else the manifest's mediaType field, else (neither said
 * anything) the OCI image manifest's. Returns NULL, or why the type cannot
 * be told: a value that is no media type never reaches a record or a client.
 */
static const char *manifest_media_type(const struct manifest_fetch *m, char *out, size_t outlen)
{
    const char *ct = m->answer.content_type;
    const char *why = NULL;
    cJSON *doc;
    const cJSON *field;

    if (ct[0] != '\0' && strcasecmp(ct, "application/json") != 0 &&
        strcasecmp(ct, "text/plain") != 0) {
        snprintf(out, outlen, "%s", ct);
        return NULL;
    }
    doc = cJSON_ParseWithLength(m->buf, m->len);
    field = cJSON_GetObjectItemCaseSensitive(doc, "mediaType");
    if (cJSON_IsString(field) &&
        oci_media_type_valid(field->valuestring, strlen(field->valuestring)))
        snprintf(out, outlen, "%s", field->valuestring);
    else if (field != NULL)
        why = "the manifest's mediaType is not a media type";
    else if (m->bad_content_type)
        why = "the upstream's Content-Type is not a media type and the manifest has no mediaType";
    else
        snprintf(out, outlen, "application/vnd.oci.image.manifest.v1+json");
    cJSON_Delete(doc);
    return why;
}

/*
 * Checks the fetched bytes against what was asked for: the digest of a
 * digest reference, else the upstream's Docker-Content-Digest when it sent
 * one of an algorithm we hash.
 */
static bool manifest_verify(const struct oci_plan *plan, const struct manifest_fetch *m,
                            struct oci_digest *digest)
{
    struct oci_digest claimed;
    bool have_claim =
        oci_digest_parse(m->answer.digest, strlen(m->answer.digest), &claimed) == OCI_OK;
    enum oci_digest_alg alg = plan->route.by_digest ? plan->route.digest.alg
                              : have_claim          ? claimed.alg
                                                    : OCI_DIGEST_SHA256;

    if (!oci_digest_buffer(alg, m->buf ? m->buf : "", m->len, digest))
        return false;
    if (plan->route.by_digest)
        return oci_digest_equal(digest, &plan->route.digest);
    return !have_claim || oci_digest_equal(digest, &claimed);
}

/*
 * Stores a verified manifest, counting its content for the size bound: a
 * content already held (another tag or repository) is replaced, not added.
 */
static void manifest_store(const struct oci_registry *reg, const struct oci_plan *plan,
                           const struct oci_manifest_record *rec, const struct manifest_fetch *m)
{
    struct storage *st = reg->storage;
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info held;
    bool was_held;
    enum storage_err err;

    oci_cache_blob_key(&rec->digest, key);
    was_held = reg->evict != NULL && st->ops->stat(st, key, &held) == STORAGE_OK;
    err = oci_cache_manifest_store(st, &plan->route, rec, m->buf ? m->buf : "", m->len);
    if (err == STORAGE_FULL)
        oci_evict_pressure(reg->evict);
    if (err != STORAGE_OK) {
        oci_log(OCI_LOG_ERROR, "cache: cannot store manifest %s:%s: %s", plan->route.name,
                plan->route.reference, storage_strerror(err));
        return;
    }
    if (was_held)
        oci_evict_removed(reg->evict, held.size);
    oci_evict_committed(reg->evict, &rec->digest, m->len);
}

static void manifest_answer(const struct oci_registry *reg, struct oci_plan *plan,
                            const struct oci_sink *sink, struct manifest_fetch *m)
{
    struct oci_manifest_record rec = {0};
    const char *why = manifest_verify(plan, m, &rec.digest)
                          ? manifest_media_type(m, rec.media_type, sizeof(rec.media_type))
                          : "manifest does not match its digest";

    if (why != NULL) {
        oci_log(OCI_LOG_ERROR, "upstream %s %s:%s: %s", plan->route.namespace_, plan->route.name,
                plan->route.reference, why);
        oci_fetch_send_error(plan, sink, OCI_E_UPSTREAM_FAILED, why);
        return;
    }
    rec.size = m->len;
    rec.confirmed = time(NULL);
    manifest_store(reg, plan, &rec, m);
    plan->manifest = rec;
    oci_plan_manifest_head(plan);
    if (sink->head(sink->ctx, &plan->head) == 0 && !plan->head_only && m->len > 0)
        sink->body(sink->ctx, m->buf, m->len);
}

/*
 * Asks the upstream with a HEAD whether a stale tag still names the same
 * manifest. True when it does (and the record is marked confirmed).
 */
static bool manifest_still_current(const struct oci_registry *reg, struct oci_plan *plan,
                                   struct oci_upstream_answer *a, enum oci_fetch_result *result)
{
    struct manifest_fetch probe = {0};
    struct oci_upstream_request req = oci_fetch_request(plan, "manifests", true);
    struct oci_upstream_handler handler = {&probe, manifest_on_head, manifest_on_data};
    struct oci_digest current;

    req.accept = manifest_accept;
    *result = oci_upstream_fetch(&req, &handler, &probe.answer.outcome);
    *a = probe.answer;
    if (*result != OCI_FETCH_DONE || a->status != 200 ||
        oci_digest_parse(a->digest, strlen(a->digest), &current) != OCI_OK ||
        !oci_digest_equal(&current, &plan->manifest.digest))
        return false;
    oci_cache_manifest_confirm(reg->storage, &plan->route);
    plan->manifest.confirmed = time(NULL);
    return true;
}

void oci_fetch_manifest(const struct oci_registry *reg, struct oci_plan *plan,
                        const struct oci_sink *sink)
{
    struct manifest_fetch m = {0};
    struct oci_upstream_request req = oci_fetch_request(plan, "manifests", false);
    struct oci_upstream_handler handler = {&m, manifest_on_head, manifest_on_data};
    enum oci_fetch_result result;

    oci_metrics_cache_miss(OCI_METRICS_MANIFEST);
    if (plan->have_stale) {
        if (manifest_still_current(reg, plan, &m.answer, &result) &&
            oci_plan_stored_manifest(reg, plan)) {
            oci_plan_send(plan, sink);
            return;
        }
        if (result != OCI_FETCH_DONE || m.answer.status >= 300) {
            oci_fetch_failed(reg, plan, sink,
                             result == OCI_FETCH_DONE
                                 ? oci_fetch_status_error(m.answer.status, false)
                                 : oci_fetch_result_error(result),
                             &m.answer);
            return;
        }
    }
    req.accept = manifest_accept;
    result = oci_upstream_fetch(&req, &handler, &m.answer.outcome);
    if (m.too_large)
        oci_fetch_send_error(plan, sink, OCI_E_UPSTREAM_FAILED, "manifest larger than 4 MiB");
    else if (result != OCI_FETCH_DONE)
        oci_fetch_failed(reg, plan, sink, oci_fetch_result_error(result), &m.answer);
    else if (m.answer.status != 200)
        oci_fetch_failed(reg, plan, sink, oci_fetch_status_error(m.answer.status, false),
                         &m.answer);
    else
        manifest_answer(reg, plan, sink, &m);
    free(m.buf);
}
