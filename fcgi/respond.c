/*
 * respond.c - the FastCGI side of an answer: CGI-style headers and body.
 *
 * The head goes out as "Status:" and header lines through libfcgi's output
 * stream. The body does not: libfcgi cuts it into records of its 8 KiB
 * buffer, a write(2) each, which for a streamed blob times 16 clients was
 * most of the responder's and nginx's system time. Body bytes leave in
 * FCGI_STDOUT records of up to 64 KiB written straight to the request's
 * socket, one writev(2) for a piece - after libfcgi's stream is flushed, so
 * the order holds; libfcgi still writes the end of the stream and of the
 * request. Pieces a few bytes long (a blob's held back last byte) wait in
 * `pending` and go out with the next piece, or at a flush. A small answer
 * (an error's JSON) stays in libfcgi's buffer and leaves in one write with
 * the end of the request, as before. A download followed from its file
 * (core/plan/blob.c) is sent with sendfile(2) behind each record's header: its
 * bytes never pass through our memory. A streamed answer first widens the
 * socket's send buffer (STREAM_SNDBUF): at the default 208 KiB a writer
 * that outruns nginx sleeps and is woken every ~100 KiB, and those wake-ups
 * were most of what 16 followers cost. Every piece is written out as it
 * comes, so a streamed blob reaches nginx (which does not buffer it, see
 * contrib/nginx) as it arrives. A write that fails means the client or the
 * front server went away; it is reported to core, which decides whether to
 * go on. An answer nginx may keep (a cached manifest) says for how long in
 * X-Accel-Expires, at most --front-cache-time.
 *
 * A stored blob is handed to the front server: X-Accel-Redirect for nginx,
 * X-Sendfile for lighttpd. A stored object that the storage can serve by URL (S3's presigned GET
 * URLs) goes to nginx's internal location FCGI_S3_ACCEL_PREFIX, which
 * proxies the URL (contrib/nginx), or to the client as a 307 with
 * --s3-redirect; other front servers get it streamed through a storage
 * reader. A HEAD needs no byte of it: its head is answered here.
 *
 * No header value leaves with a control character in it, whatever core
 * checked before: one is left out (or, for the headers that hand an object
 * over, the answer refused) and logged.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fastcgi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/metrics/metrics.h"
#include "fcgi/respond.h"
#include "util/log.h"

#define STREAM_CHUNK (128 * 1024)
/* A record's content: the most FastCGI allows, kept a multiple of 8. */
#define RECORD_MAX (FCGI_MAX_LENGTH & ~7)
/* Records per writev(2): 1 MiB of body at most. */
#define RECORDS_PER_WRITE 16
#define PENDING_MAX       64
/* A piece this small is copied into libfcgi's 8 KiB buffer instead. */
#define BUFFERED_MAX 4096
/* A streamed answer's socket send buffer; the kernel caps it at net.core.wmem_max. */
#define STREAM_SNDBUF (1024 * 1024)

/* Set once at start, before the workers run. */
static bool s3_redirect;
static long front_cache_time = 60;

void fcgi_respond_set_s3_redirect(bool on)
{
    s3_redirect = on;
}

void fcgi_respond_set_front_cache_time(long seconds)
{
    front_cache_time = seconds;
}

/* How long nginx may keep an answer that stays right for fresh_for seconds:
 * no longer than --front-cache-time, since nothing tells nginx when one is
 * removed here (cache rm, the admin API) - a digest's answer would otherwise
 * outlive its removal by up to blob_invalidation_time. */
static long front_keeps(long fresh_for)
{
    return fresh_for < front_cache_time ? fresh_for : front_cache_time;
}

struct response {
    FCGX_Request *req;
    enum fcgi_front front;
    const struct oci_registry *reg;
    /* Body bytes too few for a record of their own: they lead the next. */
    unsigned char pending[PENDING_MAX];
    size_t pending_len;
    bool widened; /* the socket's send buffer is STREAM_SNDBUF */
};

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}

/* The front server that sends stored files for this request. */
static enum fcgi_front front_of(const struct response *r)
{
    const char *software;

    if (r->front != FCGI_FRONT_AUTO)
        return r->front;
    software = FCGX_GetParam("SERVER_SOFTWARE", r->req->envp);
    if (software != NULL && strncmp(software, "lighttpd", 8) == 0)
        return FCGI_FRONT_LIGHTTPD;
    return FCGI_FRONT_NGINX;
}

/* A header that hands a stored object over: X-Accel-Redirect, X-Sendfile, Location. */
struct header {
    const char *name;
    const char *value;
};

/*
 * A value fit to be sent: no control character but HTAB (RFC 9110 5.5). A
 * CR or LF would end the header early - nginx refuses the whole answer with
 * a 502, lighttpd passes it on to the client - whatever core checked before.
 */
static bool value_clean(const char *value)
{
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++) {
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return false;
    }
    return true;
}

/* Writes "name: value"; a value that is not clean is left out, and logged. */
static int put_header(FCGX_Stream *out, const char *name, const char *value)
{
    if (!value_clean(value)) {
        oci_log(OCI_LOG_ERROR, "respond: %s \"%s\" left out: a control character", name, value);
        return 0;
    }
    return FCGX_FPrintF(out, "%s: %s\r\n", name, value);
}

/*
 * Writes the head, with n headers more that hand a stored object over (the
 * front server sends the body then). Without those the answer is no answer:
 * when one is not clean nothing is written and 1 returned, and the front
 * server answers 502 for us.
 */
static int put_head(struct response *r, const struct oci_response_head *head,
                    const struct header *more, size_t n)
{
    FCGX_Stream *out = r->req->out;
    long keep = front_keeps(head->fresh_for);
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (!value_clean(more[i].value)) { /* not logged: a presigned URL is a credential */
            oci_log(OCI_LOG_ERROR, "respond: %s refused: a control character", more[i].name);
            return 1;
        }
    }
    rc = FCGX_FPrintF(out, "Status: %d %s\r\nDocker-Distribution-API-Version: registry/2.0\r\n",
                      head->status, reason_phrase(head->status));
    if (rc >= 0 && head->content_type != NULL)
        rc = put_header(out, "Content-Type", head->content_type);
    if (rc >= 0 && head->content_length >= 0 && n == 0)
        rc = FCGX_FPrintF(out, "Content-Length: %lld\r\n", (long long)head->content_length);
    if (rc >= 0 && head->digest[0] != '\0')
        rc = put_header(out, "Docker-Content-Digest", head->digest);
    if (rc >= 0 && head->warning != NULL)
        rc = put_header(out, "Warning", head->warning);
    if (rc >= 0 && head->allow != NULL)
        rc = put_header(out, "Allow", head->allow);
    if (rc >= 0 && oci_metrics_request_id()[0] != '\0')
        rc = put_header(out, "X-Request-Id", oci_metrics_request_id());
    if (rc >= 0 && head->retry_after[0] != '\0')
        rc = put_header(out, "Retry-After", head->retry_after);
    for (size_t i = 0; rc >= 0 && i < head->extra_count; i++)
        rc = put_header(out, head->extra[i].name, head->extra[i].value);
    if (rc >= 0 && head->content_length < 0)
        rc = FCGX_PutS("X-Accel-Buffering: no\r\n", out);
    /* nginx may keep the answer in its cache this long (contrib/nginx), and
     * does not pass the header on. */
    if (rc >= 0 && keep > 0 && front_of(r) == FCGI_FRONT_NGINX)
        rc = FCGX_FPrintF(out, "X-Accel-Expires: %ld\r\n", keep);
    for (size_t i = 0; rc >= 0 && i < n; i++)
        rc = FCGX_FPrintF(out, "%s: %s\r\n", more[i].name, more[i].value);
    if (rc >= 0)
        rc = FCGX_PutS("\r\n", out);
    /* No flush: a complete answer leaves in one write with the end of the
     * request; a streamed one is flushed with its first body bytes. */
    return rc < 0;
}

static int sink_head(void *ctx, const struct oci_response_head *head)
{
    return put_head(ctx, head, NULL, 0);
}

/* Writes all of iov (modified on the way); -1 when the socket fails. */
static int write_iov(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void record_header(FCGI_Header *h, int request_id, size_t len)
{
    *h = (FCGI_Header){.version = FCGI_VERSION_1,
                       .type = FCGI_STDOUT,
                       .requestIdB1 = (unsigned char)(request_id >> 8),
                       .requestIdB0 = (unsigned char)request_id,
                       .contentLengthB1 = (unsigned char)(len >> 8),
                       .contentLengthB0 = (unsigned char)len};
}

/*
 * Writes the pending bytes and then buf as FCGI_STDOUT records straight to
 * the socket, after what libfcgi's stream holds (the head). The pending
 * bytes lead the first record, never more than PENDING_MAX of them.
 */
static int write_records(struct response *r, const unsigned char *buf, size_t len)
{
    FCGI_Header heads[RECORDS_PER_WRITE];
    struct iovec iov[RECORDS_PER_WRITE * 2 + 1];

    if (FCGX_FFlush(r->req->out) < 0)
        return 1;
    if (!r->widened) {
        int size = STREAM_SNDBUF;

        /* Advice: a smaller buffer costs wake-ups, not bytes. */
        setsockopt(r->req->ipcFd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        r->widened = true;
    }
    while (len > 0 || r->pending_len > 0) {
        int n = 0, k;

        for (k = 0; k < RECORDS_PER_WRITE && (len > 0 || r->pending_len > 0); k++) {
            size_t lead = r->pending_len, take = len < RECORD_MAX - lead ? len : RECORD_MAX - lead;

            record_header(&heads[k], r->req->requestId, lead + take);
            iov[n++] = (struct iovec){&heads[k], sizeof(heads[k])};
            if (lead > 0)
                iov[n++] = (struct iovec){r->pending, lead};
            r->pending_len = 0;
            if (take > 0) {
                iov[n++] = (struct iovec){(void *)buf, take};
                buf += take;
                len -= take;
            }
        }
        if (write_iov(r->req->ipcFd, iov, n) < 0)
            return 1;
    }
    return 0;
}

/* Moves the pending bytes into libfcgi's buffer, behind what it holds. */
static int buffer_pending(struct response *r)
{
    size_t n = r->pending_len;

    r->pending_len = 0;
    return n > 0 && FCGX_PutStr((const char *)r->pending, (int)n, r->req->out) < 0;
}

static int sink_body(void *ctx, const void *buf, size_t len)
{
    struct response *r = ctx;

    if (len <= PENDING_MAX - r->pending_len) {
        memcpy(r->pending + r->pending_len, buf, len);
        r->pending_len += len;
        return 0;
    }
    if (len <= BUFFERED_MAX)
        return buffer_pending(r) || FCGX_PutStr(buf, (int)len, r->req->out) < 0;
    return write_records(r, buf, len);
}

static int sink_flush(void *ctx)
{
    return write_records(ctx, NULL, 0);
}

/* Sends len bytes of the file fd from offset as records, each header then sendfile(2). */
static int sink_body_file(void *ctx, int fd, int64_t offset, size_t len)
{
    struct response *r = ctx;
    off_t at = (off_t)offset;

    if (write_records(r, NULL, 0) != 0)
        return 1;
    while (len > 0) {
        size_t take = len < RECORD_MAX ? len : RECORD_MAX;
        FCGI_Header h;

        record_header(&h, r->req->requestId, take);
        if (write_iov(r->req->ipcFd, &(struct iovec){&h, sizeof(h)}, 1) < 0)
            return 1;
        len -= take;
        while (take > 0) {
            ssize_t n = sendfile(r->req->ipcFd, fd, &at, take);

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) /* 0: the file is shorter than promised, the record cannot be ended */
                return 1;
            take -= (size_t)n;
        }
    }
    return 0;
}

static bool is_head_request(const struct response *r)
{
    const char *method = FCGX_GetParam("REQUEST_METHOD", r->req->envp);

    return method != NULL && strcmp(method, "HEAD") == 0;
}

/* Sends a stored object's bytes through the responder (fronts that cannot fetch URLs). */
static int stream_stored(struct response *r, const struct oci_response_head *head, const char *key)
{
    struct storage *st = r->reg->storage;
    struct storage_reader *reader;
    char *buf;
    size_t got = 0;
    enum storage_err err;
    int rc = 1;

    if (st->ops->reader_open(st, key, &reader) != STORAGE_OK)
        return 1;
    buf = malloc(STREAM_CHUNK);
    if (buf == NULL || put_head(r, head, NULL, 0) != 0)
        goto done;
    while ((err = st->ops->reader_read(reader, buf, STREAM_CHUNK, &got)) == STORAGE_OK && got > 0)
        if (sink_body(r, buf, got) != 0 || sink_flush(r) != 0)
            goto done;
    rc = err != STORAGE_OK; /* a short body: the client sees the length is wrong */
done:
    free(buf);
    st->ops->reader_close(reader);
    return rc;
}

/* An object the storage serves by URL: nginx proxies it, or the client is redirected to it. */
static int send_by_url(struct response *r, const struct oci_response_head *head, const char *key,
                       const char *url)
{
    struct oci_response_head redirect = *head;
    char accel[sizeof(FCGI_S3_ACCEL_PREFIX) + OCI_CACHE_KEY_MAX];
    struct header more[2] = {{"X-Oci-Presigned-Url", url}, {"X-Accel-Redirect", accel}};

    if (is_head_request(r))
        return put_head(r, head, NULL, 0);
    if (s3_redirect) {
        redirect.status = 307;
        redirect.content_length = 0;
        redirect.content_type = NULL;
        return put_head(r, &redirect, &(struct header){"Location", url}, 1);
    }
    if (front_of(r) != FCGI_FRONT_NGINX)
        return stream_stored(r, head, key);
    snprintf(accel, sizeof(accel), FCGI_S3_ACCEL_PREFIX "%s", key);
    return put_head(r, head, more, 2);
}

/* Hands a stored object to the front server: the responder sends no byte of it. */
static int sink_send_stored(void *ctx, const struct oci_response_head *head, const char *key)
{
    struct response *r = ctx;
    struct storage *st = r->reg->storage;
    struct storage_location loc;
    char accel[sizeof(FCGI_ACCEL_PREFIX) + OCI_CACHE_KEY_MAX];
    enum storage_err err = st->ops->locate(st, key, &loc);

    oci_metrics_stored_sent(head->content_length, FCGX_GetParam("REQUEST_METHOD", r->req->envp),
                            FCGX_GetParam("HTTP_RANGE", r->req->envp));
    if (err == STORAGE_OK && loc.url[0] != '\0')
        return send_by_url(r, head, key, loc.url);
    if (front_of(r) == FCGI_FRONT_NGINX) {
        snprintf(accel, sizeof(accel), FCGI_ACCEL_PREFIX "%s", key);
        return put_head(r, head, &(struct header){"X-Accel-Redirect", accel}, 1);
    }
    if (err != STORAGE_OK || loc.path[0] == '\0')
        return 1;
    return put_head(r, head, &(struct header){"X-Sendfile", loc.path}, 1);
}

void fcgi_respond(FCGX_Request *req, enum fcgi_front front, const struct oci_registry *reg,
                  struct oci_plan *plan)
{
    struct response r = {.req = req, .front = front, .reg = reg};
    struct oci_sink sink = {&r, sink_head, sink_body, sink_flush, sink_body_file, sink_send_stored};

    if (plan->kind == OCI_PLAN_FETCH)
        oci_registry_fetch(reg, plan, &sink);
    else
        oci_plan_send(plan, &sink);
    buffer_pending(&r); /* libfcgi writes it with the end of the request */
}
