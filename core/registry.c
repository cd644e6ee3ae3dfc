/*
 * registry.c - the request pipeline: plans, and the fetches behind them.
 *
 * Planning reads only the cache. Fetching talks to the upstream, streams to
 * the sink and commits to storage only what it verified:
 *   - a blob streams through as it arrives, hashed and written to a storage
 *     writer on the way. Its last byte is held back until the digest and
 *     length check out, so a client never receives a complete body that
 *     does not match; a mismatch leaves the client with a short body (which
 *     it rejects) and nothing in the cache.
 *   - a manifest is small (at most OCI_MANIFEST_MAX): it is collected,
 *     verified, stored, then answered.
 * A tag past its invalidation time is revalidated with a HEAD, which does
 * not count against Docker Hub's pull limit; it is fetched again only when
 * its digest changed. When the upstream cannot answer, a stale tag is
 * served with a Warning header instead of an error.
 */
#include "autoconfig.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/registry.h"

/* Manifests above this size are refused, as distribution and containerd do. */
#define OCI_MANIFEST_MAX (4 * 1024 * 1024)

#define OCTET_STREAM  "application/octet-stream"
#define TOUCH_AFTER_SECONDS 60
#define STALE_WARNING "110 - \"Response is Stale\""

/* Every manifest type a pull client may use, for upstreams that negotiate. */
static const char manifest_accept[] = "application/vnd.oci.image.index.v1+json, "
                                      "application/vnd.oci.image.manifest.v1+json, "
                                      "application/vnd.docker.distribution.manifest.list.v2+json, "
                                      "application/vnd.docker.distribution.manifest.v2+json";

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
}

void oci_plan_release(struct oci_plan *plan)
{
    free(plan->body);
    plan->body = NULL;
}

static void plan_send_stored(struct oci_plan *plan, const char *content_type, uint64_t size,
                             const struct oci_digest *digest)
{
    plan->kind = OCI_PLAN_SEND_STORED;
    plan->head.status = 200;
    plan->head.content_type = content_type;
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

/* A cached object is usable when present and, if asked, still matching its digest. */
static bool cached(const struct oci_registry *reg, const struct oci_digest *digest,
                   struct storage_info *info)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage *st = reg->storage;

    oci_cache_blob_key(digest, key);
    if (st->ops->stat(st, key, info) != STORAGE_OK)
        return false;
    /* Marks it used for cleanup, at most once a minute: a hit stays one stat. A touch
     * that finds the file gone lost the race with cleanup: a miss. */
    if (time(NULL) - info->mtime > TOUCH_AFTER_SECONDS &&
        st->ops->touch(st, key) == STORAGE_NOT_FOUND)
        return false;
    if (reg->options.check_cache_digest && oci_cache_verify(st, key, digest) != STORAGE_OK) {
        oci_log(OCI_LOG_WARN, "cache: %s does not match its digest, removing it", key);
        st->ops->remove(st, key);
        return false;
    }
    return true;
}

static void plan_blob(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct storage_info info;

    if (cached(reg, &plan->route.digest, &info))
        plan_send_stored(plan, OCTET_STREAM, info.size, &plan->route.digest);
    else
        plan->kind = OCI_PLAN_FETCH;
}

static void plan_manifest(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct oci_manifest_record *rec = &plan->manifest;
    struct storage_info info;
    time_t age;

    plan->kind = OCI_PLAN_FETCH;
    if (oci_cache_manifest_lookup(reg->storage, &plan->route, rec) != STORAGE_OK ||
        !cached(reg, &rec->digest, &info) || info.size != rec->size)
        return;
    age = time(NULL) - rec->confirmed;
    /* A record from the future (the clock went back) is not trusted as fresh. */
    if (plan->route.by_digest || (age >= 0 && age < plan->upstream.manifest_invalidation_time)) {
        plan_send_stored(plan, rec->media_type, rec->size, &rec->digest);
        return;
    }
    plan->have_stale = true;
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

/* ---- answering through the sink ---------------------------------------- */

void oci_plan_send(const struct oci_plan *plan, const struct oci_sink *sink)
{
    if (plan->kind == OCI_PLAN_SEND_STORED)
        sink->send_stored(sink->ctx, &plan->head, plan->key);
    else if (sink->head(sink->ctx, &plan->head) == 0 && !plan->head_only && plan->body_len > 0)
        sink->body(sink->ctx, plan->body, plan->body_len);
}

static void send_error(struct oci_plan *plan, const struct oci_sink *sink, enum oci_error err,
                       const char *detail)
{
    oci_plan_error(plan, err, detail);
    oci_plan_send(plan, sink);
}

/* What an upstream's unsuccessful answer means for our client. */
static enum oci_error upstream_error(long status, bool blob)
{
    if (status == 404)
        return blob ? OCI_E_BLOB_UNKNOWN : OCI_E_MANIFEST_UNKNOWN;
    if (status == 401 || status == 403)
        return OCI_E_DENIED;
    if (status == 429)
        return OCI_E_TOOMANYREQUESTS;
    return OCI_E_UPSTREAM_FAILED;
}

static enum oci_error fetch_error(enum oci_fetch_result result)
{
    switch (result) {
    case OCI_FETCH_DENIED:
        return OCI_E_DENIED;
    case OCI_FETCH_UNREACHABLE:
        return OCI_E_UNAVAILABLE;
    case OCI_FETCH_DONE:
    case OCI_FETCH_BROKEN:
    case OCI_FETCH_STOPPED:
        break;
    }
    return OCI_E_UPSTREAM_FAILED;
}

/* The head of the upstream's answer, kept past the callback. */
struct upstream_answer {
    long status;
    int64_t content_length;
    char content_type[OCI_MEDIA_TYPE_MAX + 1];
    char digest[OCI_DIGEST_STRING_MAX];
    char retry_after[32];
};

static void keep_head(struct upstream_answer *a, const struct oci_upstream_head *head)
{
    a->status = head->status;
    a->content_length = head->content_length;
    snprintf(a->content_type, sizeof(a->content_type), "%.*s",
             (int)strcspn(head->content_type ? head->content_type : "", "; "),
             head->content_type ? head->content_type : "");
    snprintf(a->digest, sizeof(a->digest), "%s", head->digest ? head->digest : "");
    snprintf(a->retry_after, sizeof(a->retry_after), "%s",
             head->retry_after ? head->retry_after : "");
}

static struct oci_upstream_request upstream_request(const struct oci_plan *plan, const char *kind,
                                                    bool head)
{
    struct oci_upstream_request req = {
        .upstream = &plan->upstream,
        .guard = plan->guard,
        .head = head,
        .name = plan->route.name,
        .kind = kind,
        .reference = plan->route.reference,
    };
    return req;
}

/* Answers a failed fetch: a stale manifest when there is one, else an error. */
static void answer_failure(const struct oci_registry *reg, struct oci_plan *plan,
                           const struct oci_sink *sink, enum oci_error err,
                           const struct upstream_answer *a)
{
    bool stale_ok =
        err == OCI_E_UNAVAILABLE || err == OCI_E_UPSTREAM_FAILED || err == OCI_E_TOOMANYREQUESTS;

    if (plan->have_stale && stale_ok) {
        oci_log(OCI_LOG_WARN, "serving stale %s %s:%s: upstream failed (%s)",
                plan->route.namespace_, plan->route.name, plan->route.reference,
                oci_error_code(err));
        plan_send_stored(plan, plan->manifest.media_type, plan->manifest.size, &plan->manifest.digest);
        plan->head.warning = STALE_WARNING;
        oci_plan_send(plan, sink);
        return;
    }
    if (err == OCI_E_MANIFEST_UNKNOWN && plan->have_stale) {
        char key[OCI_CACHE_KEY_MAX];

        /* The tag is gone upstream: so is our record of it. */
        oci_cache_manifest_key(&plan->route, key);
        reg->storage->ops->remove(reg->storage, key);
    }
    oci_plan_error(plan, err, NULL);
    if (a != NULL && err == OCI_E_TOOMANYREQUESTS)
        snprintf(plan->head.retry_after, sizeof(plan->head.retry_after), "%s", a->retry_after);
    oci_plan_send(plan, sink);
}

/* ---- manifests --------------------------------------------------------- */

struct manifest_fetch {
    struct upstream_answer answer;
    char *buf;
    size_t len;
    bool too_large;
};

static int manifest_on_head(void *ctx, const struct oci_upstream_head *head)
{
    struct manifest_fetch *m = ctx;

    keep_head(&m->answer, head);
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

/* The manifest's media type: the upstream's Content-Type, else its mediaType field. */
static void manifest_media_type(const struct manifest_fetch *m, char *out, size_t outlen)
{
    cJSON *doc;
    const cJSON *field;

    if (m->answer.content_type[0] != '\0' &&
        strcasecmp(m->answer.content_type, "application/json") != 0 &&
        strcasecmp(m->answer.content_type, "text/plain") != 0) {
        snprintf(out, outlen, "%s", m->answer.content_type);
        return;
    }
    snprintf(out, outlen, "application/vnd.oci.image.manifest.v1+json");
    doc = cJSON_ParseWithLength(m->buf, m->len);
    field = cJSON_GetObjectItemCaseSensitive(doc, "mediaType");
    if (cJSON_IsString(field) && strlen(field->valuestring) < outlen &&
        strcspn(field->valuestring, " \t\r\n") == strlen(field->valuestring))
        snprintf(out, outlen, "%s", field->valuestring);
    cJSON_Delete(doc);
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

static void manifest_answer(const struct oci_registry *reg, struct oci_plan *plan,
                            const struct oci_sink *sink, struct manifest_fetch *m)
{
    struct oci_manifest_record rec = {0};
    enum storage_err serr;

    if (!manifest_verify(plan, m, &rec.digest)) {
        oci_log(OCI_LOG_ERROR, "upstream %s %s:%s: manifest does not match its digest",
                plan->route.namespace_, plan->route.name, plan->route.reference);
        send_error(plan, sink, OCI_E_UPSTREAM_FAILED, "manifest does not match its digest");
        return;
    }
    rec.size = m->len;
    manifest_media_type(m, rec.media_type, sizeof(rec.media_type));
    serr = oci_cache_manifest_store(reg->storage, &plan->route, &rec, m->buf ? m->buf : "", m->len);
    if (serr != STORAGE_OK)
        oci_log(OCI_LOG_ERROR, "cache: cannot store manifest %s:%s: %s", plan->route.name,
                plan->route.reference, storage_strerror(serr));
    plan->kind = OCI_PLAN_RESPOND;
    plan->head.status = 200;
    plan->manifest = rec;
    plan->head.content_type = plan->manifest.media_type;
    plan->head.content_length = (int64_t)m->len;
    oci_digest_format(&rec.digest, plan->head.digest);
    if (sink->head(sink->ctx, &plan->head) == 0 && !plan->head_only && m->len > 0)
        sink->body(sink->ctx, m->buf, m->len);
}

/*
 * Asks the upstream with a HEAD whether a stale tag still names the same
 * manifest. True when it does (and the record is marked confirmed).
 */
static bool manifest_still_current(const struct oci_registry *reg, struct oci_upstream_conn *conn,
                                   struct oci_plan *plan, struct upstream_answer *a,
                                   enum oci_fetch_result *result)
{
    struct manifest_fetch probe = {0};
    struct oci_upstream_request req = upstream_request(plan, "manifests", true);
    struct oci_upstream_handler handler = {&probe, manifest_on_head, manifest_on_data};
    struct oci_digest current;
    uint64_t bytes;

    req.accept = manifest_accept;
    *result = oci_upstream_fetch(conn, &req, &handler, &bytes);
    *a = probe.answer;
    if (*result != OCI_FETCH_DONE || a->status != 200 ||
        oci_digest_parse(a->digest, strlen(a->digest), &current) != OCI_OK ||
        !oci_digest_equal(&current, &plan->manifest.digest))
        return false;
    oci_cache_manifest_confirm(reg->storage, &plan->route);
    return true;
}

static void fetch_manifest(const struct oci_registry *reg, struct oci_upstream_conn *conn,
                           struct oci_plan *plan, const struct oci_sink *sink)
{
    struct manifest_fetch m = {0};
    struct oci_upstream_request req = upstream_request(plan, "manifests", false);
    struct oci_upstream_handler handler = {&m, manifest_on_head, manifest_on_data};
    enum oci_fetch_result result;
    uint64_t bytes;

    if (plan->have_stale) {
        if (manifest_still_current(reg, conn, plan, &m.answer, &result)) {
            plan_send_stored(plan, plan->manifest.media_type, plan->manifest.size, &plan->manifest.digest);
            oci_plan_send(plan, sink);
            return;
        }
        if (result != OCI_FETCH_DONE || m.answer.status >= 300) {
            answer_failure(reg, plan, sink,
                           result == OCI_FETCH_DONE ? upstream_error(m.answer.status, false)
                                                    : fetch_error(result),
                           &m.answer);
            return;
        }
    }
    req.accept = manifest_accept;
    result = oci_upstream_fetch(conn, &req, &handler, &bytes);
    if (m.too_large)
        send_error(plan, sink, OCI_E_UPSTREAM_FAILED, "manifest larger than 4 MiB");
    else if (result != OCI_FETCH_DONE)
        answer_failure(reg, plan, sink, fetch_error(result), &m.answer);
    else if (m.answer.status != 200)
        answer_failure(reg, plan, sink, upstream_error(m.answer.status, false), &m.answer);
    else
        manifest_answer(reg, plan, sink, &m);
    free(m.buf);
}

/* ---- blobs ------------------------------------------------------------- */

/* What a blob's client has been sent so far. */
struct blob_stream {
    const struct oci_sink *sink;
    bool started;     /* the client has our head */
    bool client_gone; /* stop sending; a leader goes on filling the cache */
    bool holding;     /* held is the last byte received, not yet sent */
    unsigned char held;
};

static void stream_start(struct blob_stream *s, struct oci_plan *plan, int64_t length)
{
    plan->head.status = 200;
    plan->head.content_type = OCTET_STREAM;
    plan->head.content_length = length;
    oci_digest_format(&plan->route.digest, plan->head.digest);
    s->started = true;
    s->client_gone = s->sink->head(s->sink->ctx, &plan->head) != 0;
}

static void stream_send(struct blob_stream *s, const void *buf, size_t len)
{
    if (!s->client_gone && len > 0 && s->sink->body(s->sink->ctx, buf, len) != 0)
        s->client_gone = true;
}

/* Sends all but the last byte received, which waits for the verdict. */
static void stream_forward(struct blob_stream *s, const void *buf, size_t len)
{
    if (len == 0)
        return;
    if (s->holding)
        stream_send(s, &s->held, 1);
    stream_send(s, buf, len - 1);
    s->held = ((const unsigned char *)buf)[len - 1];
    s->holding = true;
}

/* The content is verified: the client gets its last byte. */
static void stream_release(struct blob_stream *s)
{
    if (s->holding)
        stream_send(s, &s->held, 1);
    s->holding = false;
}

struct blob_fetch {
    const struct oci_registry *reg;
    struct oci_plan *plan;
    struct blob_stream stream;
    struct upstream_answer answer;
    struct storage_writer *writer; /* NULL: not caching this one */
    struct oci_hasher *hasher;
    uint64_t received;
};

/* Gives up caching; why is logged, or NULL when nothing went wrong (a 404, say). */
static void blob_stop_caching(struct blob_fetch *b, const char *why)
{
    if (b->writer == NULL)
        return;
    if (why != NULL)
        oci_log(OCI_LOG_ERROR, "cache: not storing %s %s: %s", b->plan->route.name,
                b->plan->route.reference, why);
    b->reg->storage->ops->writer_abort(b->writer);
    b->writer = NULL;
}

static int blob_on_head(void *ctx, const struct oci_upstream_head *head)
{
    struct blob_fetch *b = ctx;

    keep_head(&b->answer, head);
    if (head->status < 200 || head->status >= 300 || b->plan->head_only)
        return 0;
    b->hasher = oci_hasher_new(b->plan->route.digest.alg);
    if (b->hasher == NULL)
        return 1;
    stream_start(&b->stream, b->plan, head->content_length);
    return 0;
}

static int blob_on_data(void *ctx, const void *buf, size_t len)
{
    struct blob_fetch *b = ctx;
    struct storage *st = b->reg->storage;

    if (!oci_hasher_update(b->hasher, buf, len))
        return 1;
    b->received += len;
    if (b->writer != NULL && st->ops->writer_write(b->writer, buf, len) != STORAGE_OK)
        blob_stop_caching(b, "storage write failed");
    stream_forward(&b->stream, buf, len);
    /* Nobody to serve and nothing to cache: no reason to go on. */
    return b->stream.client_gone && b->writer == NULL;
}

/* The end of a streamed blob: release the held byte and commit, or neither. */
static void blob_finish(struct blob_fetch *b, enum oci_fetch_result result)
{
    struct oci_plan *plan = b->plan;
    struct storage *st = b->reg->storage;
    struct oci_digest got;
    char key[OCI_CACHE_KEY_MAX];
    enum storage_err err;

    if (result != OCI_FETCH_DONE) {
        blob_stop_caching(b, "upstream transfer failed");
        return;
    }
    if (!oci_hasher_final(b->hasher, &got) || !oci_digest_equal(&got, &plan->route.digest) ||
        (b->answer.content_length >= 0 && b->received != (uint64_t)b->answer.content_length)) {
        oci_log(OCI_LOG_ERROR, "upstream %s %s %s: content does not match its digest",
                plan->route.namespace_, plan->route.name, plan->route.reference);
        blob_stop_caching(b, "digest mismatch");
        return;
    }
    stream_release(&b->stream);
    if (b->writer == NULL)
        return;
    oci_cache_blob_key(&plan->route.digest, key);
    err = st->ops->writer_commit(b->writer, key);
    b->writer = NULL;
    if (err != STORAGE_OK)
        oci_log(OCI_LOG_ERROR, "cache: cannot commit %s: %s", key, storage_strerror(err));
}

/* A HEAD of an uncached blob: the upstream's HEAD answer, nothing cached. */
static void blob_head_answer(struct oci_plan *plan, const struct oci_sink *sink,
                             const struct upstream_answer *a)
{
    plan->kind = OCI_PLAN_RESPOND;
    plan->head.status = 200;
    plan->head.content_type = OCTET_STREAM;
    plan->head.content_length = a->content_length;
    oci_digest_format(&plan->route.digest, plan->head.digest);
    sink->head(sink->ctx, &plan->head);
}

/* Fetches the blob from the upstream, committing it through writer (may be NULL). */
static void lead_blob(const struct oci_registry *reg, struct oci_upstream_conn *conn,
                      struct oci_plan *plan, const struct oci_sink *sink,
                      struct storage_writer *writer)
{
    struct blob_fetch b = {.reg = reg, .plan = plan, .stream = {.sink = sink}, .writer = writer};
    struct oci_upstream_request req = upstream_request(plan, "blobs", plan->head_only);
    struct oci_upstream_handler handler = {&b, blob_on_head, blob_on_data};
    enum oci_fetch_result result;
    uint64_t bytes;

    result = oci_upstream_fetch(conn, &req, &handler, &bytes);
    if (b.stream.started)
        blob_finish(&b, result);
    else if (result != OCI_FETCH_DONE)
        answer_failure(reg, plan, sink, fetch_error(result), &b.answer);
    else if (b.answer.status < 200 || b.answer.status >= 300)
        answer_failure(reg, plan, sink, upstream_error(b.answer.status, true), &b.answer);
    else if (plan->head_only)
        blob_head_answer(plan, sink, &b.answer);
    else
        send_error(plan, sink, OCI_E_INTERNAL, "cannot hash the blob");
    blob_stop_caching(&b, NULL);
    oci_hasher_free(b.hasher);
}

#define FOLLOW_CHUNK (128 * 1024)

/*
 * Streams a download that another request leads, as it grows. False when
 * that download failed before we sent anything: the caller tries again
 * (and may lead). A failure later leaves the client a short body.
 */
static bool follow_blob(struct oci_plan *plan, const struct oci_sink *sink,
                        struct storage *st, struct storage_reader *r)
{
    struct blob_stream s = {.sink = sink};
    char *buf = malloc(FOLLOW_CHUNK);
    enum storage_err err = buf ? STORAGE_OK : STORAGE_NO_MEMORY;
    size_t n;

    oci_log(OCI_LOG_INFO, "following the download of %s %s %s", plan->route.namespace_,
            plan->route.name, plan->route.reference);
    while (err == STORAGE_OK && !s.client_gone) {
        err = st->ops->reader_read(r, buf, FOLLOW_CHUNK, &n);
        if (err != STORAGE_OK)
            break;
        if (!s.started)
            stream_start(&s, plan, -1);
        if (n == 0) {
            stream_release(&s); /* the leader committed: every byte is verified */
            break;
        }
        stream_forward(&s, buf, n);
    }
    if (err != STORAGE_OK && s.started)
        oci_log(OCI_LOG_WARN, "following %s %s: %s", plan->route.name, plan->route.reference,
                storage_strerror(err));
    free(buf);
    st->ops->reader_close(r);
    return s.started;
}

/*
 * A blob miss: one request leads the download and the others that come
 * meanwhile - in this process or another on the same cache - follow it.
 */
static void fetch_blob(const struct oci_registry *reg, struct oci_upstream_conn *conn,
                       struct oci_plan *plan, const struct oci_sink *sink)
{
    struct storage *st = reg->storage;
    struct storage_writer *writer;
    struct storage_reader *follow;
    struct storage_info info;
    char key[OCI_CACHE_KEY_MAX];
    int attempt;

    if (plan->head_only) {
        lead_blob(reg, conn, plan, sink, NULL);
        return;
    }
    oci_cache_blob_key(&plan->route.digest, key);
    for (attempt = 0; attempt < 3; attempt++) {
        switch (st->ops->writer_join(st, key, &writer, &follow)) {
        case STORAGE_EXISTS:
            if (st->ops->stat(st, key, &info) != STORAGE_OK)
                continue;
            plan_send_stored(plan, OCTET_STREAM, info.size, &plan->route.digest);
            oci_plan_send(plan, sink);
            return;
        case STORAGE_IN_PROGRESS:
            if (follow_blob(plan, sink, st, follow))
                return;
            continue;
        case STORAGE_OK:
            lead_blob(reg, conn, plan, sink, writer);
            return;
        default:
            lead_blob(reg, conn, plan, sink, NULL); /* storage trouble: serve uncached */
            return;
        }
    }
    send_error(plan, sink, OCI_E_UNAVAILABLE, "the download of this blob keeps failing");
}

void oci_registry_fetch(const struct oci_registry *reg, struct oci_upstream_conn *conn,
                        struct oci_plan *plan, const struct oci_sink *sink)
{
    if (plan->route.kind == OCI_ROUTE_MANIFEST)
        fetch_manifest(reg, conn, plan, sink);
    else
        fetch_blob(reg, conn, plan, sink);
}
