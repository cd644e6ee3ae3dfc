/*
 * s3.c - the S3 backend (see s3.h): signed requests over libcurl, objects
 * under a key prefix, spooled writers, multipart uploads, presigned URLs.
 *
 * Requests are signed here with storage/sigv4.c rather than with libcurl's
 * CURLOPT_AWS_SIGV4, so the exact bytes signed are the ones unit-tested,
 * and presigned URLs (which libcurl cannot make) share the code. Short
 * requests take an easy handle from a small pool (connections are reused)
 * and are retried with backoff when idempotent; a streaming reader runs
 * its own transfer in a curl multi handle, pulled by reader_read, so no
 * thread is needed and no more than a buffer is held in memory.
 *
 * Object times: every write sets x-amz-meta-mtime (the responder's clock,
 * as the filesystem's mtime); touch rewrites it with a copy onto itself;
 * objects without it fall back to Last-Modified.
 */
#include "autoconfig.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "storage/s3.h"
#include "storage/sigv4.h"

#define POOL_MAX       16
#define ERROR_BODY_MAX (64 * 1024)
#define LIST_BODY_MAX  (8 * 1024 * 1024)
#define READER_BUF     (256 * 1024)
#define MAX_PARTS      10000
#define TOUCH_COPY_MAX (64ULL * 1024 * 1024)
#define MAX_EXTRA      4
#define HASH_CHUNK     (128 * 1024)

struct s3 {
    struct storage base;
    char scheme[8];      /* "https" or "http" */
    char authority[512]; /* host[:port] as in URLs and the Host header */
    char bucket[256];
    char prefix[512]; /* "" or ending in '/' */
    bool path_style;
    char region[64];
    char *access_key, *secret_key;
    char *ca_file;
    long connect_timeout, low_speed_timeout, presign_expires;
    uint64_t threshold;
    pthread_mutex_t lock;
    CURL *idle[POOL_MAX];
    int idle_count;
};

/* What a request sends. */
struct s3_req {
    const char *method;
    const char *key;                      /* without the prefix; NULL: the bucket itself */
    const char *query;                    /* encoded, or NULL */
    struct sigv4_header extra[MAX_EXTRA]; /* x-amz-* headers, signed */
    size_t extra_count;
    const char *body; /* in memory, or NULL */
    int fd;           /* or from a file, when >= 0 */
    uint64_t offset, length;
    const char *payload_hash; /* NULL: the empty payload's */
    size_t max_body;          /* keep at most this much of a 2xx body */
    int attempts;             /* 1: no retry */
};

/* What came back. */
struct s3_resp {
    long status;
    char *body;
    size_t len;
    bool too_large;
    size_t max_body;
    bool have_length;
    uint64_t length;
    time_t last_modified, meta_mtime;
    char etag[130];
    bool headers_done;
};

/* Where an upload's bytes come from. */
struct body_src {
    const char *mem;
    int fd;
    uint64_t offset, left;
};

struct storage_reader {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    struct s3_resp resp;
    char *buf;
    size_t start, end;
    bool paused, done;
    CURLcode result;
};

struct storage_writer {
    struct s3 *s3;
    int fd;
    uint64_t size;
};

static struct s3 *s3_of(struct storage *st)
{
    return (struct s3 *)st;
}

/* ---- URLs and signing -------------------------------------------------- */

/* The encoded path of a key (or of the bucket, key NULL). */
static char *object_path(const struct s3 *s, const char *key)
{
    char *name = NULL, *enc = NULL, *path = NULL;
    size_t len;

    if (key != NULL && !storage_key_valid(key))
        return NULL;
    len = strlen(s->prefix) + (key ? strlen(key) : 0) + 1;
    if ((name = malloc(len)) == NULL)
        return NULL;
    snprintf(name, len, "%s%s", key ? s->prefix : "", key ? key : "");
    enc = sigv4_uri_encode(name, true);
    if (enc == NULL)
        goto done;
    len = strlen(s->bucket) + strlen(enc) + 3;
    if ((path = malloc(len)) == NULL)
        goto done;
    if (s->path_style)
        snprintf(path, len, "/%s/%s", s->bucket, enc);
    else
        snprintf(path, len, "/%s", enc);
done:
    free(name);
    free(enc);
    return path;
}

static struct sigv4_credentials credentials(const struct s3 *s)
{
    struct sigv4_credentials c = {s->access_key, s->secret_key, s->region, "s3"};
    return c;
}

/* Adds "Name: value" to a curl header list; false when out of memory. */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[2048];
    struct curl_slist *grown;

    snprintf(line, sizeof(line), "%s: %s", name, value);
    grown = curl_slist_append(*list, line);
    if (grown == NULL)
        return false;
    *list = grown;
    return true;
}

/* The signed headers of a request, Authorization included. */
static bool sign_headers(const struct s3 *s, const struct s3_req *req, const char *path,
                         struct curl_slist **list)
{
    struct sigv4_credentials cred = credentials(s);
    struct sigv4_header h[MAX_EXTRA + 3];
    char date[SIGV4_DATE_LEN + 1], *auth;
    const char *hash = req->payload_hash ? req->payload_hash : SIGV4_EMPTY_SHA256;
    struct sigv4_request sr = {req->method, path, req->query, h, 0, hash, date};
    size_t i, n = 0;
    bool ok;

    sigv4_format_date(time(NULL), date);
    h[n++] = (struct sigv4_header){"host", s->authority};
    h[n++] = (struct sigv4_header){"x-amz-content-sha256", hash};
    h[n++] = (struct sigv4_header){"x-amz-date", date};
    for (i = 0; i < req->extra_count; i++)
        h[n++] = req->extra[i];
    sr.header_count = n;
    auth = sigv4_authorization(&cred, &sr);
    if (auth == NULL)
        return false;
    ok = add_header(list, "Authorization", auth);
    free(auth);
    for (i = 0; ok && i < n; i++)
        ok = add_header(list, h[i].name, h[i].value);
    /* No 100-continue round trip, and no Content-Type that curl would invent for POST. */
    ok = ok && add_header(list, "Expect", "") && add_header(list, "Content-Type", "");
    return ok;
}

/* ---- transfers --------------------------------------------------------- */

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct s3_resp *resp = arg;
    size_t len = size * n, name;
    char value[256];

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        resp->status = 0, resp->have_length = false, resp->meta_mtime = 0;
        resp->headers_done = false;
        return len;
    }
    if (len <= 2) {
        resp->headers_done = true;
        return len;
    }
    name = strcspn(line, ":");
    if (name >= len)
        return len;
    snprintf(value, sizeof(value), "%.*s", (int)(len - name - 1), line + name + 1);
    value[strcspn(value, "\r\n")] = '\0';
    memmove(value, value + strspn(value, " \t"), strlen(value + strspn(value, " \t")) + 1);
    if (name == 14 && strncasecmp(line, "content-length", name) == 0) {
        resp->length = strtoull(value, NULL, 10);
        resp->have_length = true;
    } else if (name == 13 && strncasecmp(line, "last-modified", name) == 0) {
        resp->last_modified = curl_getdate(value, NULL);
    } else if (name == 16 && strncasecmp(line, "x-amz-meta-mtime", name) == 0) {
        resp->meta_mtime = (time_t)strtoll(value, NULL, 10);
    } else if (name == 4 && strncasecmp(line, "etag", name) == 0) {
        snprintf(resp->etag, sizeof(resp->etag), "%.128s", value);
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct s3_resp *resp = arg;
    size_t len = size * n;
    size_t max = resp->max_body;
    char *grown;

    if (resp->len + len > max) {
        resp->too_large = true;
        return 0;
    }
    grown = realloc(resp->body, resp->len + len + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + resp->len, data, len);
    resp->body = grown;
    resp->len += len;
    resp->body[resp->len] = '\0';
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct body_src *src = arg;
    size_t want = size * n;
    ssize_t got;

    if (want > src->left)
        want = (size_t)src->left;
    if (want == 0)
        return 0;
    if (src->mem != NULL) {
        memcpy(buf, src->mem, want);
        src->mem += want;
        src->left -= want;
        return want;
    }
    got = pread(src->fd, buf, want, (off_t)src->offset);
    if (got <= 0)
        return CURL_READFUNC_ABORT;
    src->offset += (uint64_t)got;
    src->left -= (uint64_t)got;
    return (size_t)got;
}

static void set_common(const struct s3 *s, CURL *c, const char *url, struct curl_slist *headers,
                       struct s3_resp *resp)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, s->connect_timeout);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->low_speed_timeout);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (s->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
}

/* The method and body of a request on an easy handle. */
static void set_method(CURL *c, const struct s3_req *req, struct body_src *src)
{
    bool has_body = req->body != NULL || req->fd >= 0;

    src->mem = req->body;
    src->fd = req->fd;
    src->offset = req->offset;
    src->left = req->length;
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->length);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->length);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (has_body) {
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, src);
    }
}

static char *request_url(const struct s3 *s, const char *path, const char *query)
{
    size_t len =
        strlen(s->scheme) + strlen(s->authority) + strlen(path) + (query ? strlen(query) : 0) + 8;
    char *url = malloc(len);

    if (url != NULL)
        snprintf(url, len, "%s://%s%s%s%s", s->scheme, s->authority, path, query ? "?" : "",
                 query ? query : "");
    return url;
}

static CURL *pool_take(struct s3 *s)
{
    CURL *c = NULL;

    pthread_mutex_lock(&s->lock);
    if (s->idle_count > 0)
        c = s->idle[--s->idle_count];
    pthread_mutex_unlock(&s->lock);
    if (c == NULL)
        return curl_easy_init();
    curl_easy_reset(c);
    return c;
}

static void pool_give(struct s3 *s, CURL *c)
{
    pthread_mutex_lock(&s->lock);
    if (s->idle_count < POOL_MAX) {
        s->idle[s->idle_count++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (c != NULL)
        curl_easy_cleanup(c);
}

static void resp_reset(struct s3_resp *resp, size_t max_body)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
    resp->max_body = max_body;
}

static void resp_free(struct s3_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
}

/* One attempt: CURLE_OK with resp->status set, or a transport error. */
static CURLcode attempt(struct s3 *s, const struct s3_req *req, const char *path, const char *url,
                        struct s3_resp *resp)
{
    struct curl_slist *headers = NULL;
    struct body_src src;
    CURL *c = pool_take(s);
    CURLcode rc = CURLE_OUT_OF_MEMORY;

    resp_reset(resp, req->max_body > ERROR_BODY_MAX ? req->max_body : ERROR_BODY_MAX);
    if (c == NULL || !sign_headers(s, req, path, &headers))
        goto done;
    set_common(s, c, url, headers, resp);
    set_method(c, req, &src);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (rc == CURLE_WRITE_ERROR && resp->too_large)
        rc = CURLE_OK;
done:
    curl_slist_free_all(headers);
    if (c != NULL)
        pool_give(s, c);
    return rc;
}

static void backoff(int attempt_no)
{
    long ms = 200L << (attempt_no < 5 ? attempt_no : 5);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&t, NULL);
}

/* The S3 error code of an error body ("NoSuchKey"), or "". */
static void error_code(const struct s3_resp *resp, char *out, size_t len)
{
    const char *start = resp->body ? strstr(resp->body, "<Code>") : NULL;

    out[0] = '\0';
    if (start != NULL)
        snprintf(out, len, "%.*s", (int)strcspn(start + 6, "<"), start + 6);
}

/*
 * Sends a request, retrying transport failures and 5xx answers up to
 * req->attempts times with backoff. STORAGE_OK with resp->status set (any
 * status), or STORAGE_IO when no answer came.
 */
static enum storage_err perform(struct s3 *s, const struct s3_req *req, struct s3_resp *resp)
{
    char *path = object_path(s, req->key), *url = NULL;
    enum storage_err err = STORAGE_IO;
    CURLcode rc = CURLE_OK;
    int i, attempts = req->attempts > 0 ? req->attempts : 1;

    if (path == NULL) {
        err = req->key && !storage_key_valid(req->key) ? STORAGE_BAD_KEY : STORAGE_NO_MEMORY;
        goto done;
    }
    if ((url = request_url(s, path, req->query)) == NULL) {
        err = STORAGE_NO_MEMORY;
        goto done;
    }
    for (i = 0; i < attempts; i++) {
        if (i > 0)
            backoff(i - 1);
        rc = attempt(s, req, path, url, resp);
        if (rc == CURLE_OUT_OF_MEMORY) {
            err = STORAGE_NO_MEMORY;
            goto done;
        }
        if (rc == CURLE_OK && resp->status < 500) {
            err = STORAGE_OK;
            goto done;
        }
    }
    if (rc != CURLE_OK)
        oci_log(OCI_LOG_ERROR, "s3: %s %s: %s", req->method, req->key ? req->key : "(bucket)",
                curl_easy_strerror(rc));
    else
        err = STORAGE_OK; /* a 5xx after the retries: the caller reports it */
done:
    free(path);
    free(url);
    return err;
}

/* Maps an answer to a storage error, logging unexpected ones. */
static enum storage_err status_err(const struct s3_req *req, const struct s3_resp *resp)
{
    char code[64];

    if (resp->status >= 200 && resp->status < 300)
        return STORAGE_OK;
    if (resp->status == 404)
        return STORAGE_NOT_FOUND;
    error_code(resp, code, sizeof(code));
    oci_log(OCI_LOG_ERROR, "s3: %s %s: HTTP %ld %s", req->method, req->key ? req->key : "(bucket)",
            resp->status, code);
    return STORAGE_IO;
}

/* perform + status_err: the common case. */
static enum storage_err call(struct s3 *s, const struct s3_req *req, struct s3_resp *resp)
{
    enum storage_err err = perform(s, req, resp);

    return err == STORAGE_OK ? status_err(req, resp) : err;
}

static struct s3_req simple(const char *method, const char *key)
{
    struct s3_req req = {.method = method, .key = key, .fd = -1, .attempts = 3};
    return req;
}

static time_t resp_mtime(const struct s3_resp *resp)
{
    return resp->meta_mtime > 0 ? resp->meta_mtime : resp->last_modified;
}

/* ---- reading ------------------------------------------------------------ */

static enum storage_err s3_stat(struct storage *st, const char *key, struct storage_info *info)
{
    struct s3_req req = simple("HEAD", key);
    struct s3_resp resp = {0};
    enum storage_err err = call(s3_of(st), &req, &resp);

    if (err == STORAGE_OK) {
        info->size = resp.length;
        info->mtime = resp_mtime(&resp);
    }
    resp_free(&resp);
    return err;
}

static enum storage_err s3_read_small(struct storage *st, const char *key, size_t max, char **buf,
                                      size_t *len, struct storage_info *info)
{
    struct s3_req req = simple("GET", key);
    struct s3_resp resp = {0};
    enum storage_err err;

    req.max_body = max;
    err = call(s3_of(st), &req, &resp);
    if (err == STORAGE_OK && (resp.too_large || (resp.have_length && resp.length > max)))
        err = STORAGE_TOO_LARGE;
    if (err == STORAGE_OK && resp.body == NULL && (resp.body = strdup("")) == NULL)
        err = STORAGE_NO_MEMORY;
    if (err == STORAGE_OK) {
        if (info != NULL) {
            info->size = resp.len;
            info->mtime = resp_mtime(&resp);
        }
        *buf = resp.body;
        *len = resp.len;
        resp.body = NULL;
    }
    resp_free(&resp);
    return err;
}

/* The streaming reader's write callback: buffer, or pause when full. */
static size_t reader_on_body(char *data, size_t size, size_t n, void *arg)
{
    struct storage_reader *r = arg;
    size_t len = size * n;

    if (r->start > 0 && r->end + len > READER_BUF) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end + len > READER_BUF) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    memcpy(r->buf + r->end, data, len);
    r->end += len;
    return len;
}

/* Moves the transfer along; waits up to a second when there is nothing to do. */
static void reader_pump(struct storage_reader *r)
{
    int running = 0, left;
    CURLMsg *msg;

    if (r->paused) {
        r->paused = false;
        curl_easy_pause(r->easy, CURLPAUSE_CONT);
    }
    curl_multi_perform(r->multi, &running);
    while ((msg = curl_multi_info_read(r->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            r->done = true;
            r->result = msg->data.result;
        }
    }
    if (!r->done && !r->paused && r->start == r->end)
        curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
}

static void s3_reader_close(struct storage_reader *r)
{
    if (r->multi != NULL && r->easy != NULL)
        curl_multi_remove_handle(r->multi, r->easy);
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    if (r->multi != NULL)
        curl_multi_cleanup(r->multi);
    curl_slist_free_all(r->headers);
    resp_free(&r->resp);
    free(r->buf);
    free(r);
}

/* Starts the GET in a multi handle. */
static enum storage_err reader_start(struct s3 *s, struct storage_reader *r, const char *key)
{
    struct s3_req req = simple("GET", key);
    char *path = object_path(s, key), *url = NULL;
    enum storage_err err = STORAGE_NO_MEMORY;

    if (path == NULL)
        return storage_key_valid(key) ? STORAGE_NO_MEMORY : STORAGE_BAD_KEY;
    r->buf = malloc(READER_BUF);
    r->multi = curl_multi_init();
    r->easy = curl_easy_init();
    url = request_url(s, path, NULL);
    if (r->buf == NULL || r->multi == NULL || r->easy == NULL || url == NULL ||
        !sign_headers(s, &req, path, &r->headers))
        goto done;
    set_common(s, r->easy, url, r->headers, &r->resp);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, reader_on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    if (curl_multi_add_handle(r->multi, r->easy) == CURLM_OK)
        err = STORAGE_OK;
done:
    free(path);
    free(url);
    return err;
}

static enum storage_err s3_reader_open(struct storage *st, const char *key,
                                       struct storage_reader **out)
{
    struct storage_reader *r = calloc(1, sizeof(*r));
    struct s3_req req = simple("GET", key);
    enum storage_err err;

    if (r == NULL)
        return STORAGE_NO_MEMORY;
    err = reader_start(s3_of(st), r, key);
    while (err == STORAGE_OK && !r->resp.headers_done && !r->done)
        reader_pump(r);
    if (err == STORAGE_OK && r->done && r->result != CURLE_OK) {
        oci_log(OCI_LOG_ERROR, "s3: GET %s: %s", key, curl_easy_strerror(r->result));
        err = STORAGE_IO;
    }
    if (err == STORAGE_OK) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->resp.status);
        err = status_err(&req, &r->resp);
    }
    if (err != STORAGE_OK) {
        s3_reader_close(r);
        return err;
    }
    *out = r;
    return STORAGE_OK;
}

static enum storage_err s3_reader_read(struct storage_reader *r, void *buf, size_t len, size_t *got)
{
    size_t n;

    while (r->start == r->end && !r->done)
        reader_pump(r);
    if (r->start == r->end) {
        if (r->result != CURLE_OK) {
            oci_log(OCI_LOG_ERROR, "s3: reading an object: %s", curl_easy_strerror(r->result));
            return STORAGE_IO;
        }
        *got = 0;
        return STORAGE_OK;
    }
    n = r->end - r->start < len ? r->end - r->start : len;
    memcpy(buf, r->buf + r->start, n);
    r->start += n;
    *got = n;
    return STORAGE_OK;
}

/* ---- writing ------------------------------------------------------------ */

/* The x-amz-meta-mtime header value for now. */
static void now_header(char *buf, size_t len)
{
    snprintf(buf, len, "%lld", (long long)time(NULL));
}

static enum storage_err put_object(struct s3 *s, const char *key, const char *mem, int fd,
                                   uint64_t length, const char *hash)
{
    struct s3_req req = simple("PUT", key);
    struct s3_resp resp = {0};
    char mtime[32];
    enum storage_err err;

    now_header(mtime, sizeof(mtime));
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-meta-mtime", mtime};
    req.body = mem;
    req.fd = fd;
    req.length = length;
    req.payload_hash = hash;
    err = call(s, &req, &resp);
    resp_free(&resp);
    return err;
}

static enum storage_err s3_put_small(struct storage *st, const char *key, const void *buf,
                                     size_t len)
{
    char hash[SIGV4_HEX_LEN + 1];

    sigv4_sha256_hex(buf, len, hash);
    return put_object(s3_of(st), key, len ? buf : "", -1, len, hash);
}

/* The spool directory: TMPDIR, else /tmp. */
static const char *spool_dir(void)
{
    const char *dir = getenv("TMPDIR");

    return dir != NULL && *dir != '\0' ? dir : "/tmp";
}

static enum storage_err s3_writer_open(struct storage *st, struct storage_writer **out)
{
    struct storage_writer *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return STORAGE_NO_MEMORY;
    w->s3 = s3_of(st);
    /* Unnamed: the spool disappears with the writer, even after a crash. */
    w->fd = open(spool_dir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        oci_log(OCI_LOG_ERROR, "s3: cannot create a spool file in %s: %s", spool_dir(),
                strerror(errno));
        free(w);
        return STORAGE_IO;
    }
    *out = w;
    return STORAGE_OK;
}

/* Local single flight is optional for S3: every caller writes its own copy. */
static enum storage_err s3_writer_join(struct storage *st, const char *key,
                                       struct storage_writer **out, struct storage_reader **follow)
{
    (void)key, (void)follow;
    return s3_writer_open(st, out);
}

static enum storage_err s3_writer_write(struct storage_writer *w, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            oci_log(OCI_LOG_ERROR, "s3: writing the spool file: %s", strerror(errno));
            return STORAGE_IO;
        }
        p += n;
        len -= (size_t)n;
        w->size += (uint64_t)n;
    }
    return STORAGE_OK;
}

static void writer_free(struct storage_writer *w)
{
    close(w->fd);
    free(w);
}

/* Hex SHA-256 of len bytes of fd at offset. */
static bool file_sha256(int fd, uint64_t offset, uint64_t len, char out[SIGV4_HEX_LEN + 1])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *buf = malloc(HASH_CHUNK);
    bool ok = ctx != NULL && buf != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static const char digits[] = "0123456789abcdef";
    unsigned int i;

    while (ok && len > 0) {
        ssize_t n = pread(fd, buf, len < HASH_CHUNK ? (size_t)len : HASH_CHUNK, (off_t)offset);
        ok = n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n);
        offset += n > 0 ? (uint64_t)n : 0;
        len -= n > 0 ? (uint64_t)n : len;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (i = 0; ok && i < mdlen; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    if (ok)
        out[2 * mdlen] = '\0';
    EVP_MD_CTX_free(ctx);
    free(buf);
    return ok;
}

/* A multipart upload in progress. */
struct multipart {
    struct s3 *s3;
    const char *key;
    char *upload_id; /* as S3 gave it */
    char *id_query;  /* "uploadId=<encoded>" */
    char (*etags)[130];
    unsigned parts;
};

/* The text of the first <tag>...</tag> in body, as a new string, or NULL. */
static char *xml_text(const char *body, const char *tag)
{
    char open[64], close_[64];
    const char *start, *end;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close_, sizeof(close_), "</%s>", tag);
    if (body == NULL || (start = strstr(body, open)) == NULL)
        return NULL;
    start += strlen(open);
    if ((end = strstr(start, close_)) == NULL)
        return NULL;
    return strndup(start, (size_t)(end - start));
}

static enum storage_err multipart_start(struct multipart *m)
{
    struct s3_req req = simple("POST", m->key);
    struct s3_resp resp = {0};
    char mtime[32], *enc;
    enum storage_err err;
    size_t len;

    now_header(mtime, sizeof(mtime));
    req.query = "uploads";
    req.attempts = 1; /* not idempotent: a retry could leave an upload behind */
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-meta-mtime", mtime};
    req.max_body = ERROR_BODY_MAX;
    err = call(m->s3, &req, &resp);
    if (err == STORAGE_OK && (m->upload_id = xml_text(resp.body, "UploadId")) == NULL) {
        oci_log(OCI_LOG_ERROR, "s3: POST %s?uploads: no UploadId in the answer", m->key);
        err = STORAGE_IO;
    }
    resp_free(&resp);
    if (err != STORAGE_OK)
        return err;
    enc = sigv4_uri_encode(m->upload_id, false);
    len = enc ? strlen(enc) + 16 : 0;
    if (enc == NULL || (m->id_query = malloc(len)) == NULL) {
        free(enc);
        return STORAGE_NO_MEMORY;
    }
    snprintf(m->id_query, len, "uploadId=%s", enc);
    free(enc);
    return STORAGE_OK;
}

static enum storage_err multipart_put_part(struct multipart *m, int fd, unsigned number,
                                           uint64_t offset, uint64_t length)
{
    struct s3_req req = simple("PUT", m->key);
    struct s3_resp resp = {0};
    char hash[SIGV4_HEX_LEN + 1], query[1024];
    enum storage_err err;

    if (!file_sha256(fd, offset, length, hash))
        return STORAGE_IO;
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, m->id_query);
    req.query = query;
    req.fd = fd;
    req.offset = offset;
    req.length = length;
    req.payload_hash = hash;
    err = call(m->s3, &req, &resp);
    if (err == STORAGE_OK && resp.etag[0] == '\0') {
        oci_log(OCI_LOG_ERROR, "s3: part %u of %s: no ETag in the answer", number, m->key);
        err = STORAGE_IO;
    }
    if (err == STORAGE_OK)
        memcpy(m->etags[number - 1], resp.etag, sizeof(resp.etag));
    resp_free(&resp);
    return err;
}

/* The CompleteMultipartUpload document. */
static char *complete_body(const struct multipart *m)
{
    size_t cap = 128 + (size_t)m->parts * 200, len;
    char *xml = malloc(cap);
    unsigned i;

    if (xml == NULL)
        return NULL;
    len = (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (i = 0; i < m->parts; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                m->etags[i]);
    snprintf(xml + len, cap - len, "</CompleteMultipartUpload>");
    return xml;
}

static enum storage_err multipart_complete(struct multipart *m)
{
    struct s3_req req = simple("POST", m->key);
    struct s3_resp resp = {0};
    char hash[SIGV4_HEX_LEN + 1], code[64];
    char *xml = complete_body(m);
    enum storage_err err;

    if (xml == NULL)
        return STORAGE_NO_MEMORY;
    sigv4_sha256_hex(xml, strlen(xml), hash);
    req.query = m->id_query;
    req.body = xml;
    req.length = strlen(xml);
    req.payload_hash = hash;
    req.max_body = ERROR_BODY_MAX;
    req.attempts = 1;
    err = call(m->s3, &req, &resp);
    /* S3 may answer 200 and then report an error in the body. */
    if (err == STORAGE_OK && resp.body != NULL && strstr(resp.body, "<Error>") != NULL) {
        error_code(&resp, code, sizeof(code));
        oci_log(OCI_LOG_ERROR, "s3: completing %s: %s", m->key, code);
        err = STORAGE_IO;
    }
    free(xml);
    resp_free(&resp);
    return err;
}

/* Aborts the upload, insisting for a while: an upload left open keeps its parts. */
static void multipart_abort(struct multipart *m)
{
    struct s3_req req = simple("DELETE", m->key);
    struct s3_resp resp = {0};
    enum storage_err err;

    req.query = m->id_query;
    req.attempts = 8; /* about 25 s of backoff: S3 may be restarting */
    err = call(m->s3, &req, &resp);
    if (err == STORAGE_OK || err == STORAGE_NOT_FOUND)
        oci_log(OCI_LOG_WARN, "s3: aborted the multipart upload of %s", m->key);
    else
        oci_log(OCI_LOG_ERROR,
                "s3: could not abort the multipart upload of %s: its parts stay "
                "until the bucket's lifecycle rule removes them",
                m->key);
    resp_free(&resp);
}

/* Part size: at least S3_PART_SIZE, larger when the parts would be too many. */
static uint64_t part_size(uint64_t size)
{
    uint64_t part = S3_PART_SIZE;

    while (size / part >= MAX_PARTS)
        part *= 2;
    return part;
}

static enum storage_err multipart_upload(struct s3 *s, const char *key, int fd, uint64_t size)
{
    struct multipart m = {.s3 = s, .key = key};
    uint64_t part = part_size(size), offset;
    enum storage_err err;

    m.parts = (unsigned)((size + part - 1) / part);
    m.etags = calloc(m.parts, sizeof(*m.etags));
    if (m.etags == NULL)
        return STORAGE_NO_MEMORY;
    err = multipart_start(&m);
    for (offset = 0; err == STORAGE_OK && offset < size; offset += part)
        err = multipart_put_part(&m, fd, (unsigned)(offset / part) + 1, offset,
                                 size - offset < part ? size - offset : part);
    if (err == STORAGE_OK)
        err = multipart_complete(&m);
    if (err != STORAGE_OK && m.upload_id != NULL)
        multipart_abort(&m);
    free(m.upload_id);
    free(m.id_query);
    free(m.etags);
    return err;
}

static enum storage_err s3_writer_commit(struct storage_writer *w, const char *key)
{
    char hash[SIGV4_HEX_LEN + 1];
    enum storage_err err;

    if (!storage_key_valid(key))
        err = STORAGE_BAD_KEY;
    else if (w->size > w->s3->threshold)
        err = multipart_upload(w->s3, key, w->fd, w->size);
    else if (!file_sha256(w->fd, 0, w->size, hash))
        err = STORAGE_IO;
    else
        err = put_object(w->s3, key, NULL, w->fd, w->size, hash);
    writer_free(w);
    return err;
}

static void s3_writer_abort(struct storage_writer *w)
{
    writer_free(w);
}

/* ---- metadata, removal, listing ---------------------------------------- */

/*
 * A copy onto itself with a new x-amz-meta-mtime. Objects above
 * TOUCH_COPY_MAX are not copied (a server-side copy of gigabytes per hit
 * costs too much): their time stays that of their upload.
 */
static enum storage_err s3_touch(struct storage *st, const char *key)
{
    struct s3 *s = s3_of(st);
    struct storage_info info;
    struct s3_req req = simple("PUT", key);
    struct s3_resp resp = {0};
    char mtime[32], *source = NULL, *enc = NULL;
    enum storage_err err = s3_stat(st, key, &info);
    size_t len;

    if (err != STORAGE_OK || info.size > TOUCH_COPY_MAX)
        return err;
    len = strlen(s->bucket) + strlen(s->prefix) + strlen(key) + 3;
    if ((source = malloc(len)) == NULL)
        return STORAGE_NO_MEMORY;
    snprintf(source, len, "/%s/%s%s", s->bucket, s->prefix, key);
    if ((enc = sigv4_uri_encode(source, true)) == NULL) {
        err = STORAGE_NO_MEMORY;
        goto done;
    }
    now_header(mtime, sizeof(mtime));
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-copy-source", enc};
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-metadata-directive", "REPLACE"};
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-meta-mtime", mtime};
    req.body = "";
    err = call(s, &req, &resp);
done:
    free(source);
    free(enc);
    resp_free(&resp);
    return err;
}

static enum storage_err s3_remove(struct storage *st, const char *key)
{
    struct s3_req req = simple("DELETE", key);
    struct s3_resp resp = {0};
    enum storage_err err = call(s3_of(st), &req, &resp);

    resp_free(&resp);
    return err;
}

/*
 * HEAD, compare, DELETE. S3 has no conditional delete on a time, so a
 * touch between the HEAD and the DELETE loses: the object is fetched
 * again on its next request, which costs a download and breaks nothing.
 */
static enum storage_err s3_remove_stale(struct storage *st, const char *key, time_t cutoff)
{
    struct storage_info info;
    enum storage_err err = s3_stat(st, key, &info);

    if (err != STORAGE_OK)
        return err;
    if (info.mtime >= cutoff)
        return STORAGE_NOT_FOUND;
    return s3_remove(st, key);
}

/* Replaces XML's five entities in place. */
static void xml_unescape(char *s)
{
    static const struct {
        const char *entity;
        char c;
    } map[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *in = s, *out = s;
    size_t i;

    while (*in) {
        for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (strncmp(in, map[i].entity, strlen(map[i].entity)) == 0)
                break;
        if (*in == '&' && i < sizeof(map) / sizeof(map[0])) {
            *out++ = map[i].c;
            in += strlen(map[i].entity);
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* An ISO 8601 time of a listing, "2015-08-30T12:36:00.000Z"; 0 when unreadable. */
static time_t iso8601_time(const char *s)
{
    struct tm tm = {0};

    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
        return 0;
    return timegm(&tm);
}

/* Reports each <Contents> of one ListObjectsV2 page; false when fn stopped. */
static bool list_page(struct s3 *s, char *body, storage_list_fn fn, void *arg)
{
    char *item = body, *end;
    size_t plen = strlen(s->prefix);

    while ((item = strstr(item, "<Contents>")) != NULL && (end = strstr(item, "</Contents>"))) {
        char *key, *modified, *size;
        struct storage_info info = {0};
        bool go_on = true;

        *end = '\0';
        key = xml_text(item, "Key");
        modified = xml_text(item, "LastModified");
        size = xml_text(item, "Size");
        if (key != NULL) {
            xml_unescape(key);
            info.size = size ? strtoull(size, NULL, 10) : 0;
            info.mtime = iso8601_time(modified);
            if (strncmp(key, s->prefix, plen) == 0 && storage_key_valid(key + plen))
                go_on = fn(arg, key + plen, &info);
        }
        free(key);
        free(modified);
        free(size);
        item = end + 1;
        if (!go_on)
            return false;
    }
    return true;
}

/* The query of one page, parameters sorted (as the canonical form wants them). */
static char *list_query(const struct s3 *s, const char *prefix, const char *token)
{
    size_t len = strlen(s->prefix) + strlen(prefix) + 1;
    char *full = malloc(len), *enc_prefix = NULL, *enc_token = NULL, *q = NULL;

    if (full == NULL)
        return NULL;
    snprintf(full, len, "%s%s", s->prefix, prefix);
    enc_prefix = sigv4_uri_encode(full, false);
    enc_token = token ? sigv4_uri_encode(token, false) : strdup("");
    if (enc_prefix == NULL || enc_token == NULL)
        goto done;
    len = strlen(enc_prefix) + strlen(enc_token) + 64;
    if ((q = malloc(len)) == NULL)
        goto done;
    snprintf(q, len, "%s%s%slist-type=2&prefix=%s", token ? "continuation-token=" : "", enc_token,
             token ? "&" : "", enc_prefix);
done:
    free(full);
    free(enc_prefix);
    free(enc_token);
    return q;
}

static enum storage_err s3_list(struct storage *st, const char *prefix, storage_list_fn fn,
                                void *arg)
{
    struct s3 *s = s3_of(st);
    char *token = NULL, *truncated;
    enum storage_err err = STORAGE_OK;
    bool more = true;

    if (*prefix == '\0' || prefix[strlen(prefix) - 1] != '/')
        return STORAGE_BAD_KEY;
    while (err == STORAGE_OK && more) {
        struct s3_req req = simple("GET", NULL);
        struct s3_resp resp = {0};
        char *query = list_query(s, prefix, token);

        if (query == NULL) {
            err = STORAGE_NO_MEMORY;
            break;
        }
        req.query = query;
        req.max_body = LIST_BODY_MAX;
        err = call(s, &req, &resp);
        free(token);
        token = NULL;
        more = false;
        if (err == STORAGE_OK && resp.body != NULL) {
            truncated = xml_text(resp.body, "IsTruncated");
            if (truncated != NULL && strcmp(truncated, "true") == 0)
                token = xml_text(resp.body, "NextContinuationToken");
            free(truncated);
            more = list_page(s, resp.body, fn, arg) && token != NULL;
        }
        free(query);
        resp_free(&resp);
    }
    free(token);
    return err;
}

/* A presigned GET URL: the front server or the client fetches it, not us. */
static enum storage_err s3_locate(struct storage *st, const char *key, struct storage_location *loc)
{
    struct s3 *s = s3_of(st);
    struct sigv4_credentials cred = credentials(s);
    char date[SIGV4_DATE_LEN + 1], *path = object_path(s, key), *query = NULL;
    enum storage_err err = STORAGE_NO_MEMORY;
    int n;

    loc->path[0] = '\0';
    loc->url[0] = '\0';
    if (path == NULL)
        return storage_key_valid(key) ? STORAGE_NO_MEMORY : STORAGE_BAD_KEY;
    sigv4_format_date(time(NULL), date);
    query = sigv4_presign_query(&cred, "GET", s->authority, path, NULL, date, s->presign_expires);
    if (query == NULL)
        goto done;
    n = snprintf(loc->url, sizeof(loc->url), "%s://%s%s?%s", s->scheme, s->authority, path, query);
    err = n > 0 && (size_t)n < sizeof(loc->url) ? STORAGE_OK : STORAGE_BAD_KEY;
    if (err != STORAGE_OK)
        loc->url[0] = '\0';
done:
    free(path);
    free(query);
    return err;
}

static void s3_destroy(struct storage *st)
{
    struct s3 *s = s3_of(st);
    int i;

    for (i = 0; i < s->idle_count; i++)
        curl_easy_cleanup(s->idle[i]);
    pthread_mutex_destroy(&s->lock);
    if (s->secret_key != NULL)
        OPENSSL_cleanse(s->secret_key, strlen(s->secret_key));
    free(s->access_key);
    free(s->secret_key);
    free(s->ca_file);
    free(s);
}

static const struct storage_ops s3_ops = {
    .stat = s3_stat,
    .read_small = s3_read_small,
    .reader_open = s3_reader_open,
    .reader_read = s3_reader_read,
    .reader_close = s3_reader_close,
    .put_small = s3_put_small,
    .writer_open = s3_writer_open,
    .writer_join = s3_writer_join,
    .writer_write = s3_writer_write,
    .writer_commit = s3_writer_commit,
    .writer_abort = s3_writer_abort,
    .touch = s3_touch,
    .remove = s3_remove,
    .remove_stale = s3_remove_stale,
    .list = s3_list,
    .locate = s3_locate,
    .destroy = s3_destroy,
};

/*
 * Splits host into scheme and authority; a default port is dropped, since
 * neither curl nor nginx send it in the Host header that is signed.
 */
static bool parse_host(struct s3 *s, const struct storage_s3_config *cfg, char *err, size_t errlen)
{
    char host[512];
    const char *h = cfg->host;
    size_t len;

    snprintf(s->scheme, sizeof(s->scheme), "https");
    if (h == NULL || *h == '\0') {
        snprintf(host, sizeof(host), "s3.%s.amazonaws.com", s->region);
    } else {
        if (strncasecmp(h, "http://", 7) == 0) {
            snprintf(s->scheme, sizeof(s->scheme), "http");
            h += 7;
        } else if (strncasecmp(h, "https://", 8) == 0) {
            h += 8;
        }
        snprintf(host, sizeof(host), "%s", h);
        host[strcspn(host, "/")] = '\0';
    }
    len = strlen(host);
    if (len == 0 || strpbrk(host, " \t\r\n?#@") != NULL) {
        snprintf(err, errlen, "S3 host '%s' is not host[:port]", cfg->host);
        return false;
    }
    if (len > 4 && strcmp(host + len - 4, ":443") == 0 && strcmp(s->scheme, "https") == 0)
        host[len - 4] = '\0';
    else if (len > 3 && strcmp(host + len - 3, ":80") == 0 && strcmp(s->scheme, "http") == 0)
        host[len - 3] = '\0';
    if (cfg->path_style)
        snprintf(s->authority, sizeof(s->authority), "%s", host);
    else
        snprintf(s->authority, sizeof(s->authority), "%.250s.%.250s", s->bucket, host);
    return true;
}

static bool set_prefix(struct s3 *s, const char *prefix, char *err, size_t errlen)
{
    size_t len;

    while (prefix != NULL && *prefix == '/')
        prefix++;
    if (prefix == NULL || *prefix == '\0')
        return true;
    snprintf(s->prefix, sizeof(s->prefix) - 1, "%s", prefix);
    len = strlen(s->prefix);
    while (len > 0 && s->prefix[len - 1] == '/')
        s->prefix[--len] = '\0';
    if (!storage_key_valid(s->prefix)) {
        snprintf(err, errlen, "S3 prefix '%s' is not a clean relative path", prefix);
        return false;
    }
    strcat(s->prefix, "/");
    return true;
}

/* One signed ListObjectsV2 of at most one key: are the bucket and the keys right? */
static bool check_bucket(struct s3 *s, char *err, size_t errlen)
{
    struct s3_req req = simple("GET", NULL);
    struct s3_resp resp = {0};
    char code[64];
    enum storage_err e;

    req.query = "list-type=2&max-keys=1";
    req.attempts = 2;
    req.max_body = ERROR_BODY_MAX;
    e = perform(s, &req, &resp);
    error_code(&resp, code, sizeof(code));
    if (e != STORAGE_OK)
        snprintf(err, errlen, "S3 endpoint %s://%s cannot be reached (see the log line above)",
                 s->scheme, s->authority);
    else if (resp.status == 403 && (strcmp(code, "SignatureDoesNotMatch") == 0 ||
                                    strcmp(code, "InvalidAccessKeyId") == 0))
        snprintf(err, errlen, "S3 bucket %s: %s: check the access key and the secret key",
                 s->bucket, code);
    else if (resp.status < 200 || resp.status >= 300)
        snprintf(err, errlen, "S3 bucket %s at %s://%s: HTTP %ld %s", s->bucket, s->scheme,
                 s->authority, resp.status, code);
    resp_free(&resp);
    return e == STORAGE_OK && resp.status >= 200 && resp.status < 300;
}

static bool copy_config(struct s3 *s, const struct storage_s3_config *cfg, char *err, size_t errlen)
{
    if (cfg->bucket == NULL || *cfg->bucket == '\0' || strlen(cfg->bucket) >= sizeof(s->bucket) ||
        strpbrk(cfg->bucket, "/?#%& ") != NULL) {
        snprintf(err, errlen, "S3 needs a valid --bucket");
        return false;
    }
    if (cfg->access_key == NULL || *cfg->access_key == '\0' || cfg->secret_key == NULL ||
        *cfg->secret_key == '\0') {
        snprintf(err, errlen, "S3 needs --access-key and --secret-key");
        return false;
    }
    snprintf(s->bucket, sizeof(s->bucket), "%s", cfg->bucket);
    snprintf(s->region, sizeof(s->region), "%s",
             cfg->region && *cfg->region ? cfg->region : S3_DEFAULT_REGION);
    s->path_style = cfg->path_style;
    s->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : 10;
    s->low_speed_timeout = cfg->low_speed_timeout > 0 ? cfg->low_speed_timeout : 30;
    s->presign_expires = cfg->presign_expires > 0 ? cfg->presign_expires : 300;
    s->threshold = cfg->multipart_threshold > 0 ? cfg->multipart_threshold : S3_DEFAULT_THRESHOLD;
    s->access_key = strdup(cfg->access_key);
    s->secret_key = strdup(cfg->secret_key);
    s->ca_file = cfg->ca_file && *cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (s->access_key == NULL || s->secret_key == NULL ||
        (cfg->ca_file && *cfg->ca_file && s->ca_file == NULL)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return set_prefix(s, cfg->prefix, err, errlen) && parse_host(s, cfg, err, errlen);
}

struct storage *storage_s3_open(const struct storage_s3_config *cfg, char *err, size_t errlen)
{
    struct s3 *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &s3_ops;
    pthread_mutex_init(&s->lock, NULL);
    if (!copy_config(s, cfg, err, errlen) || !check_bucket(s, err, errlen)) {
        s3_destroy(&s->base);
        return NULL;
    }
    return &s->base;
}
