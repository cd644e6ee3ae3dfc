/*
 * blob.c - fetching blobs from the upstream, once for all who ask.
 *
 * A blob streams to its client as it arrives, hashed and written to a
 * storage writer on the way. Its last byte is held back until the digest
 * and length check out, so a client never receives a complete body that
 * does not match; a mismatch leaves the client a short body (which it
 * rejects) and nothing in the cache.
 *
 * Single flight: the first request for an uncached blob leads the download
 * (storage's writer_join); requests that come meanwhile, in this process or
 * another on the same cache, follow it, streaming the growing object and
 * releasing its last byte once the leader committed it. Where the storage
 * has the object in a file and the sink can send from one, a follower's
 * bytes go from the file to the client without a copy in our memory.
 */
#include "autoconfig.h"

#include <stdlib.h>

#include "core/plan/fetch.h"
#include "core/request/hashpipe.h"
#include "core/metrics/metrics.h"
#include "util/log.h"

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
    plan->head.content_type = OCI_OCTET_STREAM;
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

static void stream_flush(struct blob_stream *s)
{
    if (!s->client_gone && s->sink->flush(s->sink->ctx) != 0)
        s->client_gone = true;
}

/*
 * Sends all but the last byte received, which waits for the verdict. The
 * held byte joins the next piece in the sink's buffer: one write a piece.
 */
static void stream_forward(struct blob_stream *s, const void *buf, size_t len)
{
    if (len == 0)
        return;
    if (s->holding)
        stream_send(s, &s->held, 1);
    stream_send(s, buf, len - 1);
    stream_flush(s);
    s->held = ((const unsigned char *)buf)[len - 1];
    s->holding = true;
}

/* The content is verified: the client gets its last byte. */
static void stream_release(struct blob_stream *s)
{
    if (s->holding) {
        stream_send(s, &s->held, 1);
        stream_flush(s);
    }
    s->holding = false;
}

struct blob_fetch {
    const struct oci_registry *reg;
    struct oci_plan *plan;
    struct blob_stream stream;
    struct oci_upstream_answer answer;
    struct storage_writer *writer; /* NULL: not caching this one */
    struct oci_hashpipe *hash;     /* hashed on its own thread, alongside */
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

    oci_fetch_keep_head(&b->answer, head);
    if (head->status < 200 || head->status >= 300 || b->plan->head_only)
        return 0;
    b->hash = oci_hashpipe_new(b->plan->route.digest.alg);
    if (b->hash == NULL)
        return 1;
    stream_start(&b->stream, b->plan, head->content_length);
    return 0;
}

static int blob_on_data(void *ctx, const void *buf, size_t len)
{
    struct blob_fetch *b = ctx;
    struct storage *st = b->reg->storage;

    /* To the client first, all but its last byte, which waits for the
     * verdict: the client works on the piece while it is hashed and stored. */
    stream_forward(&b->stream, buf, len);
    if (!oci_hashpipe_write(b->hash, buf, len))
        return 1;
    b->received += len;
    if (b->writer != NULL) {
        enum storage_err err = st->ops->writer_write(b->writer, buf, len);

        if (err == STORAGE_FULL)
            oci_evict_pressure(b->reg->evict); /* the client is still served, uncached */
        if (err != STORAGE_OK)
            blob_stop_caching(b, storage_strerror(err));
    }
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
    if (!oci_hashpipe_finish(b->hash, &got) || !oci_digest_equal(&got, &plan->route.digest) ||
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
    if (err == STORAGE_OK)
        oci_evict_committed(b->reg->evict, &plan->route.digest, b->received);
    else if (err == STORAGE_FULL)
        oci_evict_pressure(b->reg->evict);
    if (err != STORAGE_OK)
        oci_log(OCI_LOG_ERROR, "cache: cannot commit %s: %s", key, storage_strerror(err));
}

/* A HEAD of an uncached blob: the upstream's HEAD answer, nothing cached. */
static void blob_head_answer(struct oci_plan *plan, const struct oci_sink *sink,
                             const struct oci_upstream_answer *a)
{
    plan->kind = OCI_PLAN_RESPOND;
    plan->head.status = 200;
    plan->head.content_type = OCI_OCTET_STREAM;
    plan->head.content_length = a->content_length;
    oci_digest_format(&plan->route.digest, plan->head.digest);
    sink->head(sink->ctx, &plan->head);
}

/* Fetches the blob from the upstream, committing it through writer (may be NULL). */
static void lead_blob(const struct oci_registry *reg, struct oci_plan *plan,
                      const struct oci_sink *sink, struct storage_writer *writer)
{
    struct blob_fetch b = {.reg = reg, .plan = plan, .stream = {.sink = sink}, .writer = writer};
    struct oci_upstream_request req = oci_fetch_request(plan, "blobs", plan->head_only);
    struct oci_upstream_handler handler = {&b, blob_on_head, blob_on_data};
    enum oci_fetch_result result;

    result = oci_upstream_fetch(&req, &handler, &b.answer.outcome);
    if (b.stream.started)
        blob_finish(&b, result);
    else if (result != OCI_FETCH_DONE)
        oci_fetch_failed(reg, plan, sink, oci_fetch_result_error(result), &b.answer);
    else if (b.answer.status < 200 || b.answer.status >= 300)
        oci_fetch_failed(reg, plan, sink, oci_fetch_status_error(b.answer.status, true), &b.answer);
    else if (plan->head_only)
        blob_head_answer(plan, sink, &b.answer);
    else
        oci_fetch_send_error(plan, sink, OCI_E_INTERNAL, "cannot hash the blob");
    blob_stop_caching(&b, NULL);
    oci_hashpipe_free(b.hash);
}

#define FOLLOW_CHUNK (128 * 1024)
/* At most this much of the file is sent between two looks at the client. */
#define FOLLOW_FILE_MAX (4 * 1024 * 1024)

/*
 * The file's bytes from *from to end are in: all but the last are sent, it
 * waits for the verdict (stream_forward's held byte, here still in the file).
 */
static void file_forward(struct blob_stream *s, int fd, int64_t *from, int64_t end)
{
    if (!s->client_gone && end - 1 > *from &&
        s->sink->body_file(s->sink->ctx, fd, *from, (size_t)(end - 1 - *from)) != 0)
        s->client_gone = true;
    if (end - 1 > *from)
        *from = end - 1;
}

/* The leader committed: the held last byte goes, from the file. */
static void file_release(struct blob_stream *s, int fd, int64_t from, int64_t end)
{
    if (!s->client_gone && end > from &&
        s->sink->body_file(s->sink->ctx, fd, from, (size_t)(end - from)) != 0)
        s->client_gone = true;
}

/* follow_blob's loop with the bytes sent from the followed file. */
static enum storage_err follow_file(struct oci_plan *plan, struct blob_stream *s,
                                    struct storage *st, struct storage_reader *r)
{
    int64_t from = 0, at;
    size_t n;
    int fd;
    enum storage_err err = STORAGE_OK;

    while (err == STORAGE_OK && !s->client_gone) {
        err = st->ops->reader_file(r, FOLLOW_FILE_MAX, &fd, &at, &n);
        if (err != STORAGE_OK)
            break;
        if (!s->started)
            stream_start(s, plan, -1);
        if (n == 0) {
            file_release(s, fd, from, at); /* the leader committed: every byte is verified */
            break;
        }
        file_forward(s, fd, &from, at + (int64_t)n);
    }
    return err;
}

/* follow_blob's loop with the bytes read into our memory, then sent. */
static enum storage_err follow_read(struct oci_plan *plan, struct blob_stream *s,
                                    struct storage *st, struct storage_reader *r)
{
    char *buf = malloc(FOLLOW_CHUNK);
    enum storage_err err = buf ? STORAGE_OK : STORAGE_NO_MEMORY;
    size_t n;

    while (err == STORAGE_OK && !s->client_gone) {
        err = st->ops->reader_read(r, buf, FOLLOW_CHUNK, &n);
        if (err != STORAGE_OK)
            break;
        if (!s->started)
            stream_start(s, plan, -1);
        if (n == 0) {
            stream_release(s); /* the leader committed: every byte is verified */
            break;
        }
        stream_forward(s, buf, n);
    }
    free(buf);
    return err;
}

/*
 * Streams a download that another request leads, as it grows. False when
 * that download failed before we sent anything: the caller tries again
 * (and may lead). A failure later leaves the client a short body.
 */
static bool follow_blob(struct oci_plan *plan, const struct oci_sink *sink, struct storage *st,
                        struct storage_reader *r)
{
    struct blob_stream s = {.sink = sink};
    enum storage_err err;

    oci_log(OCI_LOG_INFO, "following the download of %s %s %s", plan->route.namespace_,
            plan->route.name, plan->route.reference);
    oci_metrics_singleflight_follower();
    if (st->ops->reader_file != NULL && sink->body_file != NULL)
        err = follow_file(plan, &s, st, r);
    else
        err = follow_read(plan, &s, st, r);
    if (err != STORAGE_OK && s.started)
        oci_log(OCI_LOG_WARN, "following %s %s: %s", plan->route.name, plan->route.reference,
                storage_strerror(err));
    st->ops->reader_close(r);
    return s.started;
}

/*
 * A blob miss: one request leads the download and the others that come
 * meanwhile - in this process or another on the same cache - follow it.
 */
void oci_fetch_blob(const struct oci_registry *reg, struct oci_plan *plan,
                    const struct oci_sink *sink)
{
    struct storage *st = reg->storage;
    struct storage_writer *writer;
    struct storage_reader *follow;
    struct storage_info info;
    char key[OCI_CACHE_KEY_MAX];
    int attempt;

    oci_metrics_cache_miss(OCI_METRICS_BLOB);
    if (plan->head_only) {
        lead_blob(reg, plan, sink, NULL);
        return;
    }
    oci_cache_blob_key(&plan->route.digest, key);
    for (attempt = 0; attempt < 3; attempt++) {
        switch (st->ops->writer_join(st, key, &writer, &follow)) {
        case STORAGE_EXISTS:
            if (st->ops->stat(st, key, &info) != STORAGE_OK)
                continue;
            oci_plan_send_stored(plan, info.size, &plan->route.digest);
            oci_plan_send(plan, sink);
            return;
        case STORAGE_IN_PROGRESS:
            if (follow_blob(plan, sink, st, follow))
                return;
            continue;
        case STORAGE_OK:
            lead_blob(reg, plan, sink, writer);
            return;
        default:
            lead_blob(reg, plan, sink, NULL); /* storage trouble: serve uncached */
            return;
        }
    }
    oci_fetch_send_error(plan, sink, OCI_E_UNAVAILABLE, "the download of this blob keeps failing");
}
