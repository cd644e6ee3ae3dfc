/*
 * s3_http.c - the S3 transport (see s3_http.h): signed requests over libcurl.
 *
 * Requests are signed here with storage/sigv4.c rather than with libcurl's
 * CURLOPT_AWS_SIGV4, so the exact bytes signed are the ones unit-tested,
 * and presigned URLs (which libcurl cannot make) share the code. Short
 * requests take an easy handle from a small pool (connections are reused)
 * and are retried with backoff when idempotent.
 */
#include "autoconfig.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/observe.h"
#include "util/tls_store.h"
#include "storage/s3_http.h"
#include "storage/sigv4.h"

#define HASH_CHUNK (128 * 1024)

/* Where an upload's bytes come from. */
struct body_src {
    const char *mem;
    int fd;
    uint64_t offset, left;
};

/* ---- URLs and signing -------------------------------------------------- */

char *s3_http_object_path(const struct s3 *s, const char *key)
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

struct sigv4_credentials s3_http_credentials(const struct s3 *s)
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

bool s3_http_sign_headers(const struct s3 *s, const struct s3_req *req, const char *path,
                          struct curl_slist **list)
{
    struct sigv4_credentials cred = s3_http_credentials(s);
    struct sigv4_header h[S3_MAX_EXTRA + 4];
    char date[SIGV4_DATE_LEN + 1], *auth;
    const char *hash = req->payload_hash ? req->payload_hash : SIGV4_EMPTY_SHA256;
    struct sigv4_request sr = {req->method, path, req->query, h, 0, hash, date};
    size_t i, n = 0;
    bool ok;

    sigv4_format_date(time(NULL), date);
    h[n++] = (struct sigv4_header){"host", s->authority};
    h[n++] = (struct sigv4_header){"x-amz-content-sha256", hash};
    h[n++] = (struct sigv4_header){"x-amz-date", date};
    if (s->session_token != NULL)
        h[n++] = (struct sigv4_header){"x-amz-security-token", s->session_token};
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
    } else if (name == 4 && strncasecmp(line, "date", name) == 0) {
        resp->date = curl_getdate(value, NULL);
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

void s3_http_set_common(const struct s3 *s, CURL *c, const char *url, struct curl_slist *headers,
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
    tls_store_use(c, s->ca_file); /* a failure shows as the connection's */
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

char *s3_http_request_url(const struct s3 *s, const char *path, const char *query)
{
    size_t len =
        strlen(s->scheme) + strlen(s->authority) + strlen(path) + (query ? strlen(query) : 0) + 8;
    char *url = malloc(len);

    if (url != NULL)
        snprintf(url, len, "%s://%s%s%s%s", s->scheme, s->authority, path, query ? "?" : "",
                 query ? query : "");
    return url;
}

void s3_http_pool_init(struct s3 *s)
{
    pthread_mutex_init(&s->lock, NULL);
}

void s3_http_pool_destroy(struct s3 *s)
{
    int i;

    for (i = 0; i < s->idle_count; i++)
        curl_easy_cleanup(s->idle[i]);
    pthread_mutex_destroy(&s->lock);
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
    if (s->idle_count < S3_POOL_MAX) {
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

void s3_http_resp_free(struct s3_resp *resp)
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

    resp_reset(resp, req->max_body > S3_ERROR_BODY_MAX ? req->max_body : S3_ERROR_BODY_MAX);
    if (c == NULL || !s3_http_sign_headers(s, req, path, &headers))
        goto done;
    s3_http_set_common(s, c, url, headers, resp);
    set_method(c, req, &src);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (rc == CURLE_WRITE_ERROR && resp->too_large)
        rc = CURLE_OK;
    oci_observe_s3(req->method, req->query, rc == CURLE_OK ? resp->status : 0);
done:
    curl_slist_free_all(headers);
    if (c != NULL)
        pool_give(s, c);
    return rc;
}

/* How long requests fail at once after the endpoint could not be reached. */
#define S3_DOWN_SECONDS 5

long long s3_http_monotonic(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec;
}

/*
 * True while the endpoint counts as down. The first request after the
 * window tries again for real; while one is down, a request costs nothing,
 * so hits become misses (served from the upstream) and /readyz says 503 at
 * once instead of after the connect timeouts.
 */
static bool endpoint_down(struct s3 *s, const struct s3_req *req)
{
    return !req->through_outage && s3_http_monotonic() < atomic_load(&s->down_until);
}

static void endpoint_result(struct s3 *s, CURLcode rc)
{
    long long was = atomic_load(&s->down_until);

    if (rc != CURLE_OK)
        atomic_store(&s->last_transport_error, (int)rc);
    if (rc == CURLE_OK) {
        if (was != 0 && atomic_exchange(&s->down_until, 0) != 0)
            oci_log(OCI_LOG_INFO, "s3: endpoint %s://%s answers again", s->scheme, s->authority);
        return;
    }
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR) {
        atomic_store(&s->down_until, s3_http_monotonic() + S3_DOWN_SECONDS);
        if (was == 0)
            oci_log(OCI_LOG_ERROR,
                    "s3: endpoint %s://%s unreachable (%s): requests fail at once for %d s at a "
                    "time until it answers",
                    s->scheme, s->authority, curl_easy_strerror(rc), S3_DOWN_SECONDS);
    }
}

static void backoff(int attempt_no)
{
    long ms = 200L << (attempt_no < 5 ? attempt_no : 5);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&t, NULL);
}

enum storage_err s3_http_perform(struct s3 *s, const struct s3_req *req, struct s3_resp *resp)
{
    char *path = s3_http_object_path(s, req->key), *url = NULL;
    enum storage_err err = STORAGE_IO;
    CURLcode rc = CURLE_OK;
    int i, attempts = req->attempts > 0 ? req->attempts : 1;

    if (path == NULL) {
        err = req->key && !storage_key_valid(req->key) ? STORAGE_BAD_KEY : STORAGE_NO_MEMORY;
        goto done;
    }
    if ((url = s3_http_request_url(s, path, req->query)) == NULL) {
        err = STORAGE_NO_MEMORY;
        goto done;
    }
    if (endpoint_down(s, req))
        goto done;
    for (i = 0; i < attempts; i++) {
        if (i > 0)
            backoff(i - 1);
        rc = attempt(s, req, path, url, resp);
        endpoint_result(s, rc);
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

enum storage_err s3_http_status_err(const struct s3_req *req, const struct s3_resp *resp)
{
    char code[64];

    if (resp->status >= 200 && resp->status < 300)
        return STORAGE_OK;
    if (resp->status == 404)
        return STORAGE_NOT_FOUND;
    s3_http_error_code(resp, code, sizeof(code));
    oci_log(OCI_LOG_ERROR, "s3: %s %s: HTTP %ld %s", req->method, req->key ? req->key : "(bucket)",
            resp->status, code);
    return STORAGE_IO;
}

enum storage_err s3_http_call(struct s3 *s, const struct s3_req *req, struct s3_resp *resp)
{
    enum storage_err err = s3_http_perform(s, req, resp);

    return err == STORAGE_OK ? s3_http_status_err(req, resp) : err;
}

struct s3_req s3_http_req(const char *method, const char *key)
{
    struct s3_req req = {.method = method, .key = key, .fd = -1, .attempts = 3};
    return req;
}

/* ---- bodies and headers ------------------------------------------------ */

void s3_http_error_code(const struct s3_resp *resp, char *out, size_t len)
{
    const char *start = resp->body ? strstr(resp->body, "<Code>") : NULL;

    out[0] = '\0';
    if (start != NULL)
        snprintf(out, len, "%.*s", (int)strcspn(start + 6, "<"), start + 6);
}

char *s3_http_xml_text(const char *body, const char *tag)
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

void s3_http_now_header(char *buf, size_t len)
{
    snprintf(buf, len, "%lld", (long long)time(NULL));
}

bool s3_http_file_sha256(int fd, uint64_t offset, uint64_t len, char out[SIGV4_HEX_LEN + 1])
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
