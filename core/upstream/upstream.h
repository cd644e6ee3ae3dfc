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
 * after DNS, after every redirect - must pass core/upstream/addrguard.h; otherwise the
 * fetch ends with OCI_FETCH_DENIED before a byte is sent.
 *
 * libcurl handles are shared by the whole process (most recently used
 * first), so upstream connections and TLS sessions are reused by whichever
 * thread fetches next.
 *
 * Proxies: unguarded upstreams honour http_proxy, https_proxy, all_proxy
 * and no_proxy from the environment, as libcurl does. Guarded requests
 * (and their token realms) never use a proxy: through one, the only
 * address the guard could judge is the proxy's, and the proxy would
 * connect wherever the name leads.
 *
 * Each request takes a slot (core/upstream/slots.h) or is not sent: the fetch ends
 * at once with OCI_FETCH_UNREACHABLE and OCI_WHY_BUSY or OCI_WHY_ALL_BUSY.
 *
 * Time limits: a blob download must keep up a minimum average rate; every
 * other request (manifests, HEADs, tokens) has a deadline for the whole
 * answer. Neither lets a trickling upstream hold a worker indefinitely.
 */
#ifndef OCI_UPSTREAM_H
#define OCI_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/upstream/config.h"

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
    OCI_FETCH_UNREACHABLE, /* DNS, connect, TLS or a time limit: no usable answer */
    OCI_FETCH_BROKEN,      /* the response stopped before its end */
    OCI_FETCH_STOPPED,     /* a handler returned non-zero */
};

/* Why a fetch got no whole answer: what the client is told, never a URL. */
enum oci_upstream_why {
    OCI_WHY_NONE,            /* it did (or a handler stopped it) */
    OCI_WHY_DNS,             /* the host name does not resolve */
    OCI_WHY_REFUSED,         /* connection refused */
    OCI_WHY_CONNECT,         /* cannot connect otherwise (unreachable, reset) */
    OCI_WHY_CONNECT_TIMEOUT, /* no connection within the connect timeout */
    OCI_WHY_TLS_VERIFY,      /* the certificate did not verify */
    OCI_WHY_TLS,             /* the TLS handshake failed otherwise */
    OCI_WHY_DENIED,          /* the guard refused an address */
    OCI_WHY_PROXY,           /* the proxy failed */
    OCI_WHY_DEADLINE,        /* no whole answer within the deadline */
    OCI_WHY_TOO_SLOW,        /* below the minimum rate */
    OCI_WHY_BROKEN,          /* the answer stopped before its end */
    OCI_WHY_OTHER,           /* any other transfer error */
    OCI_WHY_BUSY,            /* not asked: its slots are taken (core/upstream/slots.h) */
    OCI_WHY_ALL_BUSY,        /* not asked: every upstream slot is taken */
};

/* What a fetch did besides its result. */
struct oci_upstream_outcome {
    uint64_t bytes; /* body bytes received */
    enum oci_upstream_why why;
};

/* A short lower-case phrase for why, e.g. "connection refused". */
const char *oci_upstream_why_text(enum oci_upstream_why why);

/*
 * Performs the request; out receives what it did. Logs one line with
 * method, upstream, name, reference, status, bytes, duration and why.
 */
enum oci_fetch_result oci_upstream_fetch(const struct oci_upstream_request *req,
                                         const struct oci_upstream_handler *handler,
                                         struct oci_upstream_outcome *out);

/* Time limits applied to every upstream request. */
struct oci_upstream_timeouts {
    long connect;   /* seconds: connection and TLS handshake */
    long low_speed; /* seconds: the window the rates below are averaged over */
    long deadline;  /* seconds for a whole answer, except blob downloads */
    long min_speed; /* bytes/s a blob download keeps up, averaged over low_speed */
};

/* Sets the timeouts (process-wide, before any fetch). */
void oci_upstream_set_timeouts(const struct oci_upstream_timeouts *t);

#endif
