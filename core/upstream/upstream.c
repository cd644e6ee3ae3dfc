/*
 * upstream.c - requests to upstream registries with libcurl.
 *
 * libcurl handles, whose connection caches keep upstream connections (and
 * TLS sessions) alive between requests, are pooled by the process: a fetch
 * takes the most recently used one, whatever thread it runs on. Configured
 * upstreams and dynamic namespaces have pools of their own, so that a
 * connection opened to a configured private host is never reused by a
 * guarded request.
 */
#include "autoconfig.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/upstream/addrguard.h"
#include "core/upstream/auth.h"
#include "core/request/digest.h"
#include "core/metrics/metrics.h"
#include "core/upstream/slots.h"
#include "util/log.h"
#include "util/tls_store.h"
#include "core/upstream/upstream.h"

#define UPSTREAM_BUFFER_SIZE (128L * 1024)
/*
 * Body bytes reach the handler in pieces of up to this much. libcurl hands
 * over each TLS record (16 KiB) as it decrypts it, and what a handler does
 * per piece - a blob's write to its cache file, a record to its client, a
 * wake-up of its hashing thread and, through the file, of every request
 * following the download - was most of what a miss cost the responder
 * (16 clients on one cold blob: a third of its CPU). Pieces gather and go
 * to the handler when this much is there and whenever libcurl has read all
 * it could for now (on_progress), so no byte waits for more to come. The
 * first bytes go at once: a client's first byte (and a puller's next layer)
 * does not wait for a whole piece to come in.
 */
#define UPSTREAM_PIECE_MAX     (256 * 1024)
#define UPSTREAM_MAX_REDIRECTS 5L
#define HEADER_VALUE_MAX       256
#define CHALLENGE_MAX          4096
#define TOKEN_MAX              16384
#define TOKEN_ANSWER_MAX       (64 * 1024)

/*
 * Idle libcurl handles, with their connections and TLS sessions, most
 * recently used last: a fetch takes the warmest, so a client pulling layer
 * after layer goes down one upstream connection, whichever worker serves
 * it. Handles that fetched for dynamic namespaces (behind the address
 * guard) are kept apart: a connection a trusted upstream opened to a
 * private address must never serve a guarded request. The lock is taken on
 * misses only, twice per fetch.
 */
#define POOL_MAX 16

struct handle_pool {
    pthread_mutex_t lock;
    CURL *idle[POOL_MAX];
    int count;
};

static struct handle_pool pools[2] = {{.lock = PTHREAD_MUTEX_INITIALIZER},
                                      {.lock = PTHREAD_MUTEX_INITIALIZER}};

static struct handle_pool *pool_of(bool guard)
{
    return &pools[guard ? 1 : 0];
}

static CURL *handle_take(bool guard)
{
    struct handle_pool *pool = pool_of(guard);
    CURL *easy = NULL;

    pthread_mutex_lock(&pool->lock);
    if (pool->count > 0)
        easy = pool->idle[--pool->count];
    pthread_mutex_unlock(&pool->lock);
    return easy != NULL ? easy : curl_easy_init();
}

static void handle_give_back(bool guard, CURL *easy)
{
    struct handle_pool *pool = pool_of(guard);

    if (easy == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    if (pool->count < POOL_MAX) {
        pool->idle[pool->count++] = easy;
        easy = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    curl_easy_cleanup(easy); /* a no-op when kept */
}

static struct oci_upstream_timeouts timeouts = {
    .connect = 10, .low_speed = 30, .deadline = 60, .min_speed = 16 * 1024};

/* One transfer in flight: what the callbacks need and what they found. */
struct transfer {
    const struct oci_upstream_request *req;
    const struct oci_upstream_handler *handler;
    CURL *easy;
    bool head_delivered;
    bool body_wanted; /* a 2xx answer: body goes to on_data */
    bool may_retry;   /* a 401 is kept from the handler: we retry with a token */
    bool challenged;  /* ... and this one was */
    bool denied;
    bool stopped;
    bool body_started; /* the answer's first body bytes were handed over */
    bool elsewhere;    /* asks the host a redirect led to: never with up's credentials */
    long deadline;     /* seconds for the whole answer; 0: a blob download, rate-limited */
    long elapsed_ms;
    uint64_t bytes;
    unsigned char *gathered; /* body bytes not handed over yet, UPSTREAM_PIECE_MAX */
    size_t gathered_len;
    char content_type[HEADER_VALUE_MAX];
    char digest[HEADER_VALUE_MAX];
    char retry_after[HEADER_VALUE_MAX];
    char challenge[CHALLENGE_MAX]; /* WWW-Authenticate */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ready;

static void global_init_once(void)
{
    global_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/*
 * libcurl, and OpenSSL's TLS state with it (about 2 MiB resident), is set up
 * by the first fetch: a responder that has only answered hits holds none.
 */
bool oci_upstream_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_ready;
}

void oci_upstream_global_cleanup(void)
{
    for (int i = 0; i < 2; i++)
        while (pools[i].count > 0)
            curl_easy_cleanup(pools[i].idle[--pools[i].count]);
    if (global_ready)
        curl_global_cleanup();
}

void oci_upstream_set_timeouts(const struct oci_upstream_timeouts *t)
{
    timeouts = *t;
}

/* Copies a header's value, trimmed, if the line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t name_len = strlen(name);

    if (len <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len) != 0)
        return;
    line += name_len + 1;
    len -= name_len + 1;
    while (len > 0 && (*line == ' ' || *line == '\t'))
        line++, len--;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    if (len >= outlen)
        len = 0; /* absurdly long: treat as absent */
    memcpy(out, line, len);
    out[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t count, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * count;

    /* A new status line starts a new response (after a redirect): forget the old one. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        t->content_type[0] = t->digest[0] = t->retry_after[0] = t->challenge[0] = '\0';
        return len;
    }
    header_value(line, len, "content-type", t->content_type, sizeof(t->content_type));
    header_value(line, len, "docker-content-digest", t->digest, sizeof(t->digest));
    header_value(line, len, "retry-after", t->retry_after, sizeof(t->retry_after));
    header_value(line, len, "www-authenticate", t->challenge, sizeof(t->challenge));
    return len;
}

/* Hands the final response's head to the caller, once. */
static int deliver_head(struct transfer *t)
{
    struct oci_upstream_head head = {0};
    curl_off_t length = -1;

    t->head_delivered = true;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &head.status);
    if (head.status == 401 && t->may_retry) {
        t->challenged = true; /* the handler sees only the retry's answer */
        return 0;
    }
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    head.content_length = length;
    head.content_type = t->content_type[0] ? t->content_type : NULL;
    head.digest = t->digest[0] ? t->digest : NULL;
    head.retry_after = t->retry_after[0] ? t->retry_after : NULL;
    t->body_wanted = head.status >= 200 && head.status < 300;
    return t->handler->on_head(t->handler->ctx, &head);
}

/* Hands the gathered bytes to the handler; nonzero when it wants no more. */
static int deliver_gathered(struct transfer *t)
{
    size_t len = t->gathered_len;

    t->gathered_len = 0;
    return len > 0 && t->handler->on_data(t->handler->ctx, t->gathered, len) != 0;
}

/* Adds a piece of the body to the gathered bytes, handing them over when full. */
static int gather(struct transfer *t, const char *buf, size_t len)
{
    if (t->gathered == NULL && (t->gathered = malloc(UPSTREAM_PIECE_MAX)) == NULL)
        return t->handler->on_data(t->handler->ctx, buf, len) != 0; /* as it comes */
    if (len > UPSTREAM_PIECE_MAX - t->gathered_len && deliver_gathered(t) != 0)
        return 1;
    if (len > UPSTREAM_PIECE_MAX)
        return t->handler->on_data(t->handler->ctx, buf, len) != 0;
    memcpy(t->gathered + t->gathered_len, buf, len);
    t->gathered_len += len;
    return 0;
}

static size_t on_body(char *buf, size_t size, size_t count, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * count;

    if (!t->head_delivered && deliver_head(t) != 0)
        goto stop;
    t->bytes += len;
    if (t->body_wanted && !t->body_started) {
        t->body_started = true;
        if (t->handler->on_data(t->handler->ctx, buf, len) != 0)
            goto stop;
    } else if (t->body_wanted && gather(t, buf, len) != 0) {
        goto stop;
    }
    return len;
stop:
    t->stopped = true;
    return CURL_WRITEFUNC_ERROR;
}

/*
 * libcurl calls this after each round of reading, when it has read what
 * the connection held (and about once a second while it waits): the
 * gathered bytes go now. Nonzero aborts the transfer.
 */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct transfer *t = arg;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (deliver_gathered(t) == 0)
        return 0;
    t->stopped = true;
    return 1;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct transfer *t = arg;

    (void)purpose;
    if (t->req->guard && !oci_addr_is_public(&addr->addr, addr->addrlen)) {
        t->denied = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* Builds the request URL with libcurl's URL API; NULL when it does not parse. */
static CURLU *request_url(const struct oci_upstream_request *req)
{
    char base[300], path[1024];
    CURLU *url = curl_url();

    if (url == NULL)
        return NULL;
    snprintf(base, sizeof(base), "%s://%s/", req->upstream->tls ? "https" : "http",
             req->upstream->host);
    snprintf(path, sizeof(path), "/v2/%s/%s/%s", req->name, req->kind, req->reference);
    if (curl_url_set(url, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(url, CURLUPART_PATH, path, 0) != CURLUE_OK) {
        curl_url_cleanup(url);
        return NULL;
    }
    return url;
}

static void set_tls(CURL *easy, const struct oci_upstream *up)
{
    long verify = up->accept_invalid_certs ? 0L : 1L;

    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    tls_store_use(easy, up->ca_file); /* a failure shows as the connection's */
}

/* Basic credentials, when configured: libcurl drops them when a redirect changes host. */
static void set_credentials(CURL *easy, const struct oci_upstream *up)
{
    if (up->username == NULL)
        return;
    curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(easy, CURLOPT_USERNAME, up->username);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, up->password ? up->password : "");
}

/*
 * A blob download may take long (gigabytes) but must keep up min_speed on
 * average over the low-speed window: a slow real link passes, a trickle
 * does not. Everything else is small, so it gets a deadline for the whole
 * answer; its rate floor stays at 1 byte/s (a short answer's average rate
 * says nothing). Both abort a wait for the first byte after the window.
 */
static void set_limits(CURL *easy, struct transfer *t)
{
    bool download = !t->req->head && strcmp(t->req->kind, "blobs") == 0;

    t->deadline = download ? 0 : timeouts.deadline;
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, timeouts.connect);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, t->deadline);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, download ? timeouts.min_speed : 1L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, timeouts.low_speed);
}

/*
 * Every address connected to passes the guard when the request is guarded.
 * A guarded request never goes through a proxy (an empty CURLOPT_PROXY
 * overrides the environment): the socket would be the proxy's, so the
 * guard would judge the proxy instead of the host the name leads to.
 */
static void set_guard(CURL *easy, struct transfer *t)
{
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t);
    if (t->req->guard)
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
}

static void set_request(CURL *easy, struct transfer *t, CURLU *url, struct curl_slist *headers)
{
    const struct oci_upstream *up = t->req->upstream;

    curl_easy_setopt(easy, CURLOPT_CURLU, url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, UPSTREAM_MAX_REDIRECTS);
    curl_easy_setopt(easy, CURLOPT_NOBODY, t->req->head ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT,
                     up->user_agent ? up->user_agent : PACKAGE_NAME "/" PACKAGE_VERSION);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, UPSTREAM_BUFFER_SIZE);
    /* One worker, one transfer at a time: HTTP/2's multiplexing buys nothing,
     * and its 16 KiB frames straddle TLS records, which halves the pieces a
     * blob streams in (twice the hashing calls, writes and wake-ups). */
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    set_limits(easy, t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    set_guard(easy, t);
    if (!t->elsewhere)
        set_credentials(easy, up);
    set_tls(easy, up);
}

static const char *const why_texts[] = {
    [OCI_WHY_NONE] = "no error",
    [OCI_WHY_DNS] = "its host name does not resolve",
    [OCI_WHY_REFUSED] = "connection refused",
    [OCI_WHY_CONNECT] = "cannot connect",
    [OCI_WHY_CONNECT_TIMEOUT] = "connection timed out",
    [OCI_WHY_TLS_VERIFY] = "TLS certificate verification failed",
    [OCI_WHY_TLS] = "TLS handshake failed",
    [OCI_WHY_DENIED] = "its address is not public",
    [OCI_WHY_PROXY] = "the proxy failed",
    [OCI_WHY_DEADLINE] = "no complete answer in time",
    [OCI_WHY_TOO_SLOW] = "the transfer was too slow",
    [OCI_WHY_BROKEN] = "the answer broke off",
    [OCI_WHY_OTHER] = "the transfer failed",
    [OCI_WHY_BUSY] = "too many requests are waiting on it",
    [OCI_WHY_ALL_BUSY] = "too many requests are waiting on upstreams",
};

const char *oci_upstream_why_text(enum oci_upstream_why why)
{
    if ((size_t)why >= sizeof(why_texts) / sizeof(why_texts[0]))
        why = OCI_WHY_OTHER;
    return why_texts[why];
}

/* A time limit was hit: while connecting, at the deadline, or for want of speed. */
static enum oci_upstream_why why_timed_out(const struct transfer *t)
{
    curl_off_t pretransfer = 0;

    /* Nothing sent yet: the TCP connection or the TLS handshake did not finish. */
    curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    if (pretransfer == 0)
        return OCI_WHY_CONNECT_TIMEOUT;
    return t->deadline > 0 && t->elapsed_ms >= t->deadline * 1000 ? OCI_WHY_DEADLINE
                                                                  : OCI_WHY_TOO_SLOW;
}

/* Why a transfer that did not stop of its own accord failed. */
static enum oci_upstream_why why_failed(const struct transfer *t, CURLcode rc, long status)
{
    long os_errno = 0;

    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return OCI_WHY_DNS;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
        return os_errno == ECONNREFUSED ? OCI_WHY_REFUSED : OCI_WHY_CONNECT;
    case CURLE_PEER_FAILED_VERIFICATION:
        return OCI_WHY_TLS_VERIFY;
    case CURLE_SSL_CONNECT_ERROR:
        return OCI_WHY_TLS;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
        return OCI_WHY_PROXY;
    case CURLE_OPERATION_TIMEDOUT:
        return why_timed_out(t);
    default:
        return status > 0 ? OCI_WHY_BROKEN : OCI_WHY_OTHER;
    }
}

/*
 * The result of a transfer, and why it failed. A time limit makes the
 * upstream unreachable even when a status had come: the answer never will.
 */
static enum oci_fetch_result classify(const struct transfer *t, CURLcode rc,
                                      enum oci_upstream_why *why)
{
    long status = 0;

    *why = OCI_WHY_NONE;
    if (rc == CURLE_OK)
        return OCI_FETCH_DONE;
    if (t->stopped)
        return OCI_FETCH_STOPPED;
    if (t->denied) {
        *why = OCI_WHY_DENIED;
        return OCI_FETCH_DENIED;
    }
    if (t->easy == NULL) { /* no handle could be made */
        *why = OCI_WHY_OTHER;
        return OCI_FETCH_UNREACHABLE;
    }
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    *why = why_failed(t, rc, status);
    return *why == OCI_WHY_BROKEN ? OCI_FETCH_BROKEN : OCI_FETCH_UNREACHABLE;
}

static long elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void log_fetch(const struct transfer *t, CURLcode rc)
{
    const struct oci_upstream_request *req = t->req;
    long status = 0;

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    oci_log(rc == CURLE_OK ? OCI_LOG_INFO : OCI_LOG_WARN,
            "upstream %s %s %s %s %s status=%ld bytes=%llu ms=%ld%s%s", req->head ? "HEAD" : "GET",
            req->upstream->namespace_, req->name, req->kind, req->reference, status,
            (unsigned long long)t->bytes, t->elapsed_ms, rc == CURLE_OK ? "" : " error=",
            rc == CURLE_OK ? "" : (t->denied ? "address refused" : curl_easy_strerror(rc)));
    oci_metrics_upstream(req->upstream->namespace_, req->head, rc == CURLE_OK ? status : 0,
                         t->elapsed_ms, t->bytes);
}

/* Collects a token answer, bounded. */
struct token_answer {
    char *buf;
    size_t len;
};

static size_t on_token_body(char *buf, size_t size, size_t count, void *arg)
{
    struct token_answer *a = arg;
    size_t len = size * count;
    char *grown;

    if (a->len + len > TOKEN_ANSWER_MAX || (grown = realloc(a->buf, a->len + len + 1)) == NULL)
        return CURL_WRITEFUNC_ERROR;
    memcpy(grown + a->len, buf, len);
    a->buf = grown;
    a->len += len;
    a->buf[a->len] = '\0';
    return len;
}

/* The realm's URL with service and scope added as query parameters. */
static CURLU *token_url(const struct oci_auth_challenge *c)
{
    char param[OCI_AUTH_FIELD_MAX + 16];
    CURLU *url = curl_url();

    if (url == NULL)
        return NULL;
    if (curl_url_set(url, CURLUPART_URL, c->realm, 0) != CURLUE_OK)
        goto fail;
    snprintf(param, sizeof(param), "service=%s", c->service);
    if (c->service[0] != '\0' &&
        curl_url_set(url, CURLUPART_QUERY, param, CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
        goto fail;
    snprintf(param, sizeof(param), "scope=%s", c->scope);
    if (curl_url_set(url, CURLUPART_QUERY, param, CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
        goto fail;
    return url;
fail:
    curl_url_cleanup(url);
    return NULL;
}

/*
 * Gets a token from the challenge's realm, with the upstream's credentials
 * as Basic when core/upstream/auth.h allows them there, through the same guard as
 * the request. The token is cached under keep_as (the upstream's namespace,
 * or the origin of the host a redirect led to) and the scope.
 */
static bool fetch_token(struct transfer *t, const struct oci_auth_challenge *c,
                        bool with_credentials, const char *keep_as, char *token, size_t len)
{
    const struct oci_upstream *up = t->req->upstream;
    struct token_answer answer = {0};
    CURLU *url = token_url(c);
    long status = 0, lifetime;
    char *value = NULL;
    bool ok = false;
    CURLcode rc;

    if (url == NULL)
        return false;
    curl_easy_reset(t->easy);
    curl_easy_setopt(t->easy, CURLOPT_CURLU, url);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT, timeouts.connect);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT, timeouts.deadline);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT,
                     up->user_agent ? up->user_agent : PACKAGE_NAME "/" PACKAGE_VERSION);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_token_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, &answer);
    set_guard(t->easy, t);
    if (with_credentials)
        set_credentials(t->easy, up);
    set_tls(t->easy, up);
    rc = curl_easy_perform(t->easy);
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status == 200 && answer.buf != NULL &&
        oci_auth_parse_token(answer.buf, answer.len, &value, &lifetime) && strlen(value) < len) {
        strcpy(token, value);
        oci_auth_token_put(keep_as, c->scope, value, lifetime);
        ok = true;
    }
    /* Never the token or the credentials: the realm, the scope and the outcome. */
    oci_log(ok ? OCI_LOG_INFO : OCI_LOG_WARN, "token %s scope=%s status=%ld%s%s", up->namespace_,
            c->scope, status,
            rc == CURLE_OK ? "" : " error=", rc == CURLE_OK ? "" : curl_easy_strerror(rc));
    oci_metrics_token_fetch(ok);
    free(value);
    free(answer.buf);
    curl_url_cleanup(url);
    return ok;
}

/* One request to the upstream, with a bearer token when one is given. */
static CURLcode perform(CURL *easy, struct transfer *t, CURLU *url, struct curl_slist *headers,
                        const char *bearer)
{
    struct timespec start;
    CURLcode rc;

    t->easy = easy;
    if (easy == NULL)
        return CURLE_OUT_OF_MEMORY;
    curl_easy_reset(t->easy);
    set_request(t->easy, t, url, headers);
    if (bearer != NULL) {
        /* libcurl drops it, like Basic, when a redirect leaves the host. */
        curl_easy_setopt(t->easy, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(t->easy, CURLOPT_XOAUTH2_BEARER, bearer);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = curl_easy_perform(t->easy);
    t->elapsed_ms = elapsed_ms(&start);
    if (rc == CURLE_OK && ((!t->head_delivered && deliver_head(t) != 0) || deliver_gathered(t))) {
        t->stopped = true;
        rc = CURLE_WRITE_ERROR;
    }
    /* A failed transfer's last bytes are dropped: its answer is cut short anyway. */
    free(t->gathered);
    t->gathered = NULL;
    t->gathered_len = 0;
    t->body_started = false;
    log_fetch(t, rc);
    return rc;
}

/* A slot for the request (core/upstream/slots.h); false, with why, when there is none. */
static bool take_slot(const struct oci_upstream_request *req, struct oci_upstream_outcome *out)
{
    switch (oci_slots_take(req->upstream->namespace_)) {
    case OCI_SLOT_TAKEN:
        return true;
    case OCI_SLOT_ALL_BUSY:
        out->why = OCI_WHY_ALL_BUSY;
        break;
    case OCI_SLOT_UPSTREAM_BUSY:
        out->why = OCI_WHY_BUSY;
        break;
    }
    oci_log(OCI_LOG_WARN, "upstream %s: not asked for %s %s: %s", req->upstream->namespace_,
            req->name, req->reference, oci_upstream_why_text(out->why));
    return false;
}

/*
 * After a 401 with a Bearer challenge: a token for the retry, or false. A
 * 401 from a host a redirect led to is not the upstream's challenge: that
 * host's own realm (same origin) is asked without credentials, and the
 * retry goes to where the redirect led (*elsewhere, to free), since a
 * redirect drops the token; any other realm there is not asked. Such a
 * token is kept under that host's origin, never under up's namespace, so it
 * only ever goes back there: a redirect taken for every blob (lscr.io to
 * ghcr.io) then costs one token per scope, not one per blob. With
 * may_reuse, a kept one is taken (*reused says so: if it is refused, the
 * caller asks again without may_reuse).
 */
static bool token_for_retry(struct transfer *t, const char *default_scope, bool may_reuse,
                            char *token, size_t len, char **elsewhere, bool *reused)
{
    const struct oci_upstream *up = t->req->upstream;
    struct oci_auth_challenge c;
    enum oci_realm_access access = OCI_REALM_REFUSED;
    char *where = NULL, *origin = NULL;
    bool ok;

    *reused = false;
    oci_auth_parse_challenge(t->challenge, &c);
    if (c.scheme != OCI_AUTH_BEARER || c.realm[0] == '\0')
        return false;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &where);
    if (where != NULL && oci_auth_challenge_is_upstreams(up, where)) {
        access = oci_auth_realm_access(up, c.realm);
    } else if (where != NULL && oci_auth_same_origin(where, c.realm)) {
        /* Copied now: fetch_token reuses the handle that owns where. */
        *elsewhere = strdup(where);
        origin = oci_auth_origin(where);
        access = *elsewhere != NULL && origin != NULL ? OCI_REALM_ANONYMOUS : OCI_REALM_REFUSED;
    }
    if (access == OCI_REALM_REFUSED) {
        oci_log(OCI_LOG_WARN, "token %s: challenge not followed (another host or no realm)",
                up->namespace_);
        free(origin);
        return false;
    }
    if (c.scope[0] == '\0')
        snprintf(c.scope, sizeof(c.scope), "%s", default_scope);
    if (origin != NULL && may_reuse && oci_auth_token_get(origin, c.scope, token, len))
        ok = *reused = true;
    else
        ok = fetch_token(t, &c, access == OCI_REALM_CREDENTIALS,
                         origin != NULL ? origin : up->namespace_, token, len);
    free(origin);
    return ok;
}

/* The retry's URL: where a redirect led (a copy to parse), else the request's own. */
static CURLU *retry_url(CURLU *url, const char *elsewhere)
{
    CURLU *there;

    if (elsewhere == NULL)
        return url;
    there = curl_url();
    if (there != NULL && curl_url_set(there, CURLUPART_URL, elsewhere, 0) != CURLUE_OK) {
        curl_url_cleanup(there);
        there = NULL;
    }
    return there;
}

enum oci_fetch_result oci_upstream_fetch(const struct oci_upstream_request *req,
                                         const struct oci_upstream_handler *handler,
                                         struct oci_upstream_outcome *out)
{
    CURL *easy = NULL;
    struct transfer t = {.req = req, .handler = handler, .may_retry = true};
    struct curl_slist *headers = NULL;
    char accept[2048], scope[OCI_AUTH_FIELD_MAX];
    char *token = malloc(TOKEN_MAX), *elsewhere = NULL;
    CURLU *url = request_url(req), *there;
    enum oci_fetch_result result = OCI_FETCH_UNREACHABLE;
    CURLcode rc;

    *out = (struct oci_upstream_outcome){.why = OCI_WHY_OTHER};
    if (!oci_upstream_global_init() || url == NULL || token == NULL)
        goto done;
    if (req->accept != NULL) {
        snprintf(accept, sizeof(accept), "Accept: %s", req->accept);
        headers = curl_slist_append(NULL, accept);
        if (headers == NULL)
            goto done;
    }
    if (!take_slot(req, out))
        goto done;
    snprintf(scope, sizeof(scope), "repository:%s:pull", req->name);
    easy = handle_take(req->guard);
    rc = perform(easy, &t, url, headers,
                 oci_auth_token_get(req->upstream->namespace_, scope, token, TOKEN_MAX) ? token
                                                                                        : NULL);
    /* A kept token of a host a redirect led to may be refused: one more try
     * with a new one. */
    for (bool may_reuse = true, reused = false; t.challenged; may_reuse = false) {
        free(elsewhere);
        elsewhere = NULL;
        if (!token_for_retry(&t, scope, may_reuse, token, TOKEN_MAX, &elsewhere, &reused) ||
            (there = retry_url(url, elsewhere)) == NULL)
            break;
        t = (struct transfer){
            .req = req, .handler = handler, .elsewhere = elsewhere != NULL, .may_retry = reused};
        rc = perform(easy, &t, there, headers, token);
        if (there != url)
            curl_url_cleanup(there);
    }
    if (t.challenged) {
        /* No token to be had (or a Basic challenge): the 401 is the answer, without
         * asking the upstream the same question twice. */
        struct oci_upstream_head refused = {.status = 401, .content_length = -1};

        if (handler->on_head(handler->ctx, &refused) != 0)
            t.stopped = true;
    }
    result = classify(&t, rc, &out->why);
    out->bytes = t.bytes;
    oci_slots_give_back(req->upstream->namespace_);
done:
    handle_give_back(req->guard, easy);
    free(elsewhere);
    free(token);
    curl_slist_free_all(headers);
    curl_url_cleanup(url);
    return result;
}
