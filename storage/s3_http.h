/*
 * s3_http.h - the S3 transport, internal to storage/ (storage/s3_http.c).
 *
 * The state the S3 backend shares between its files (struct s3), what a
 * request sends and what comes back, object paths and URLs, SigV4 header
 * signing, and sending a request: an easy handle from a small pool,
 * retries with backoff, the status mapped to a storage error. Also the
 * little both the backend and its multipart uploads read and write: the
 * x-amz-meta-mtime value, payload hashes of files, text out of XML bodies.
 */
#ifndef OCI_STORAGE_S3_HTTP_H
#define OCI_STORAGE_S3_HTTP_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "storage/sigv4.h"
#include "storage/storage.h"

#define S3_POOL_MAX       16
#define S3_ERROR_BODY_MAX (64 * 1024)
#define S3_MAX_EXTRA      4

struct s3 {
    struct storage base;
    /* Downloads in progress on this host, shared by every process on the
     * same endpoint, bucket and prefix: a filesystem storage whose single
     * flight (storage/fs.c) the S3 writers and followers use. NULL: none
     * could be made, every writer spools alone. */
    struct storage *spool;
    char scheme[8];      /* "https" or "http" */
    char authority[512]; /* host[:port] as in URLs and the Host header */
    char bucket[256];
    char prefix[512]; /* "" or ending in '/' */
    bool path_style;
    char region[64];
    char *access_key, *secret_key;
    char *session_token; /* NULL: long-term keys */
    char *ca_file;
    long connect_timeout, low_speed_timeout, presign_expires;
    uint64_t threshold;
    bool curl_ready; /* holds a reference to libcurl's global state */
    /* Until when (CLOCK_MONOTONIC seconds) requests fail at once: the
     * endpoint was just unreachable, and a request that waits out the
     * connect timeout and its retries again would hold a worker for tens of
     * seconds. 0: not down. */
    atomic_llong down_until;
    atomic_int last_transport_error; /* the CURLcode of the last failed attempt */
    /* Leases (storage/s3_lease.h): what the probe found (enum
     * s3_conditional), how If-Match on PUT is honoured (enum s3_if_match),
     * the ttl of our leases, and when (CLOCK_MONOTONIC seconds) an unknown
     * outcome may be probed again. */
    atomic_int conditional;
    atomic_int if_match;
    long lease_ttl;
    atomic_llong next_probe;
    pthread_mutex_t lock;
    CURL *idle[S3_POOL_MAX];
    int idle_count;
    /* Uploads of fetched objects still running after their commit
     * returned (storage/s3.c): destroy waits for them. */
    pthread_mutex_t uploads_lock;
    pthread_cond_t uploads_done;
    int uploads_running;
};

/* What a request sends. */
struct s3_req {
    const char *method;
    const char *key;                         /* without the prefix; NULL: the bucket itself */
    const char *query;                       /* encoded, or NULL */
    struct sigv4_header extra[S3_MAX_EXTRA]; /* x-amz-* headers, signed */
    size_t extra_count;
    const char *body; /* in memory, or NULL */
    int fd;           /* or from a file, when >= 0 */
    uint64_t offset, length;
    const char *payload_hash; /* NULL: the empty payload's */
    size_t max_body;          /* keep at most this much of a 2xx body */
    int attempts;             /* 1: no retry */
    bool through_outage;      /* tried even while the endpoint is down (clean-ups) */
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
    time_t date; /* the server's clock when it answered (Date), or 0 */
    char etag[130];
    bool headers_done;
};

/* The handle pool: its lock at open, its idle handles freed at destroy. */
void s3_http_pool_init(struct s3 *s);
void s3_http_pool_destroy(struct s3 *s);

/* ---- URLs and signing -------------------------------------------------- */

/* The encoded path of a key (or of the bucket, key NULL); NULL for a bad key or no memory. */
char *s3_http_object_path(const struct s3 *s, const char *key);
/* scheme://authority path [?query], as a new string. */
char *s3_http_request_url(const struct s3 *s, const char *path, const char *query);
struct sigv4_credentials s3_http_credentials(const struct s3 *s);
/* Appends the signed headers of a request, Authorization included, to list. */
bool s3_http_sign_headers(const struct s3 *s, const struct s3_req *req, const char *path,
                          struct curl_slist **list);
/* The options every transfer shares: URL, headers, timeouts, resp gets headers and body. */
void s3_http_set_common(const struct s3 *s, CURL *c, const char *url, struct curl_slist *headers,
                        struct s3_resp *resp);

/* ---- requests ---------------------------------------------------------- */

/* A request of method on key: no body, no query, 3 attempts. */
struct s3_req s3_http_req(const char *method, const char *key);
/*
 * Sends a request, retrying transport failures and 5xx answers up to
 * req->attempts times with backoff. STORAGE_OK with resp->status set (any
 * status), or STORAGE_IO when no answer came.
 */
enum storage_err s3_http_perform(struct s3 *s, const struct s3_req *req, struct s3_resp *resp);
/* Maps an answer to a storage error, logging unexpected ones. */
enum storage_err s3_http_status_err(const struct s3_req *req, const struct s3_resp *resp);
/* s3_http_perform + s3_http_status_err: the common case. */
enum storage_err s3_http_call(struct s3 *s, const struct s3_req *req, struct s3_resp *resp);
void s3_http_resp_free(struct s3_resp *resp);

/* ---- bodies and headers ------------------------------------------------ */

/* The S3 error code of an error body ("NoSuchKey"), or "". */
void s3_http_error_code(const struct s3_resp *resp, char *out, size_t len);
/* The text of the first <tag>...</tag> in body, as a new string, or NULL. */
char *s3_http_xml_text(const char *body, const char *tag);
/* The x-amz-meta-mtime header value for now. */
void s3_http_now_header(char *buf, size_t len);
/* CLOCK_MONOTONIC seconds. */
long long s3_http_monotonic(void);
/* Hex SHA-256 of len bytes of fd at offset: the payload hash of a body from a file. */
bool s3_http_file_sha256(int fd, uint64_t offset, uint64_t len, char out[SIGV4_HEX_LEN + 1]);

#endif
