/*
 * upstream.h - the HTTP client that talks to upstream registries (libcurl).
 *
 * One request is one call to oci_upstream_fetch: it builds the URL with
 * libcurl's URL API, applies the upstream's TLS settings, follows redirects
 * (registries send blobs from CDNs) and hands the caller the final
 * response's head, then its body as it arrives. Upstream credentials, when
 * the upstream is configured with them, never follow a redirect to another
 * host: libcurl drops them on a host change, and we never set
 * CURLOPT_UNRESTRICTED_AUTH.
 *
 * For namespaces that are not configured, every address connected to -
 * after DNS, after every redirect - must pass core/addrguard.h; otherwise the
 * fetch ends with OCI_FETCH_DENIED before a byte is sent.
 *
 * libcurl handles are shared by the whole process (most recently used
 * first), so upstream connections and TLS sessions are reused by whichever
 * thread fetches next.
 */
#ifndef OCI_UPSTREAM_H
#define OCI_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

/* Process-wide set-up (curl_global_init), done by the first fetch if not
 * before, and its undoing (at exit, when it was done). */
bool oci_upstream_global_init(void);
void oci_upstream_global_cleanup(void);

/* The head of the upstream's final answer, valid during on_head only. */
struct oci_upstream_head {
    long status;
    const char *content_type; /* NULL when absent */
    int64_t content_length;   /* -1 when unknown */
    const char *digest;       /* Docker-Content-Digest, NULL when absent */
    const char *retry_after;  /* NULL when absent */
};

/* What the caller does with a response; non-zero stops the transfer. */
struct oci_upstream_handler {
    void *ctx;
    /* Called once with the final response's head before any body byte. */
    int (*on_head)(void *ctx, const struct oci_upstream_head *head);
    /* Called with body bytes as they arrive (only for 2xx answers). */
    int (*on_data)(void *ctx, const void *buf, size_t len);
};

struct oci_upstream_request {
    const struct oci_upstream *upstream;
    bool guard;       /* refuse non-public addresses (dynamic namespace) */
    bool head;        /* HEAD instead of GET */
    const char *name; /* repository name */
    const char *kind; /* "manifests" or "blobs" */
    const char *reference;
    const char *accept; /* Accept header value, or NULL */
};

enum oci_fetch_result {
    OCI_FETCH_DONE,        /* a whole response arrived; see the head's status */
    OCI_FETCH_DENIED,      /* the guard refused an address */
    OCI_FETCH_UNREACHABLE, /* DNS, connect, TLS or timeout before a response */
    OCI_FETCH_BROKEN,      /* the response stopped before its end */
    OCI_FETCH_STOPPED,     /* a handler returned non-zero */
};

/*
 * Performs the request. bytes receives the number of body bytes received.
 * Logs one line with method, upstream, name, reference, status, bytes and
 * duration.
 */
enum oci_fetch_result oci_upstream_fetch(const struct oci_upstream_request *req,
                                         const struct oci_upstream_handler *handler,
                                         uint64_t *bytes);

/* Timeouts applied to every upstream request, in seconds. */
struct oci_upstream_timeouts {
    long connect;   /* connection and TLS handshake */
    long low_speed; /* abort after this long below 1 byte/s */
};

/* Sets the timeouts (process-wide, before any fetch). */
void oci_upstream_set_timeouts(const struct oci_upstream_timeouts *t);

#endif
