/*
 * plan.h - what the pipeline decided to do with a request, and how that is
 * sent: the plan, the head of an answer, the sink it goes to, and the
 * answers made from what the cache holds.
 *
 * core/registry.c makes plans; core/plan/manifest.c and core/plan/blob.c carry out
 * the FETCH plans and end in plans of their own (a stored manifest, an
 * error). Both sides use this module, and it uses neither of them.
 */
#ifndef OCI_PLAN_H
#define OCI_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cache/cache.h"
#include "core/upstream/config.h"
#include "core/request/errors.h"
#include "core/cache/evict.h"
#include "core/request/route.h"
#include "core/upstream/upstream.h"
#include "storage/storage.h"

#define OCI_OCTET_STREAM "application/octet-stream"

struct oci_registry_options {
    const char *default_namespace; /* "docker.io" unless set */
    bool check_cache_digest;       /* hash cached objects before serving them */
    bool dynamic_namespaces;       /* serve namespaces that are not configured */
    long upload_lifetime;          /* seconds an upload may sit idle; 0: the default (24h) */
    bool admin;                    /* the /_admin/ API is on (core/ops/admin.h) */
};

struct oci_registry {
    struct oci_registry_options options;
    const struct oci_config *config;
    struct storage *storage;
    struct oci_evictor *evict; /* the size bound, or NULL: none */
};

/*
 * A request's body as the front end reads it from the client, piece by
 * piece as it arrives: uploads stream to storage, never whole in memory.
 */
struct oci_source {
    void *ctx;
    /* Reads up to len bytes into buf: how many, 0 at the end, -1 when the client is gone. */
    long (*read)(void *ctx, void *buf, size_t len);
};

/* A request as the front end saw it; all strings borrowed. */
struct oci_request {
    const char *method;
    const char *path;  /* raw path, without the query */
    const char *query; /* after '?', or NULL */
    const char *accept;
    bool admin_marker; /* the front server set OCI_ADMIN_MARKER (core/ops/admin.h) */
    /* Writes (hosted namespaces): */
    const char *remote_user;       /* authenticated by the front server, or NULL */
    bool has_credentials;          /* the client sent an Authorization header */
    int64_t content_length;        /* -1: not announced (chunked: read to the end) */
    const char *content_range;     /* Content-Range, or NULL */
    const char *content_type;      /* Content-Type, or NULL */
    const struct oci_source *body; /* NULL: no body */
};

/* A header of an answer beyond the fixed ones (Location, Range, Link, ...). */
#define OCI_HEAD_EXTRA_MAX 4
#define OCI_HEAD_VALUE_MAX 1024
struct oci_head_field {
    const char *name; /* static */
    char value[OCI_HEAD_VALUE_MAX];
};

/* The head of an answer. */
struct oci_response_head {
    int status;
    const char *content_type;           /* NULL: none */
    int64_t content_length;             /* -1: unknown (streamed) */
    char digest[OCI_DIGEST_STRING_MAX]; /* Docker-Content-Digest, "" when none */
    const char *warning;                /* Warning header (stale answers), or NULL */
    const char *allow;                  /* Allow header (405), or NULL */
    char retry_after[32];               /* Retry-After passed on from a 429, or "" */
    long fresh_for;                     /* seconds a cache in front may keep it; 0: none */
    struct oci_head_field extra[OCI_HEAD_EXTRA_MAX];
    size_t extra_count;
};

/* Adds a header to head; one that does not fit (count or length) is left out and logged. */
__attribute__((format(printf, 3, 4))) void oci_head_add(struct oci_response_head *head,
                                                        const char *name, const char *fmt, ...);

enum oci_plan_kind {
    OCI_PLAN_RESPOND,
    OCI_PLAN_SEND_STORED,
    OCI_PLAN_FETCH,
};

struct oci_plan {
    enum oci_plan_kind kind;
    bool head_only; /* a HEAD request: send no body */
    struct oci_response_head head;
    char *body; /* RESPOND: owned, freed by oci_plan_release */
    size_t body_len;
    char key[OCI_CACHE_KEY_MAX]; /* SEND_STORED: the blob to send */
    /* FETCH: what to fetch and from where */
    struct oci_route route;
    struct oci_upstream upstream;
    bool guard;
    /* Manifests: the cached record (a stale tag's, served if the upstream
     * fails, when have_stale), then the fetched one. */
    bool have_stale;
    struct oci_manifest_record manifest;
};

/* Where an answer goes: the front end's output. Non-zero: the client is gone. */
struct oci_sink {
    void *ctx;
    int (*head)(void *ctx, const struct oci_response_head *head);
    /* Writes body bytes; they may wait in a buffer until flush or the end. */
    int (*body)(void *ctx, const void *buf, size_t len);
    /* Pushes what was written to the client now (streams, after each piece). */
    int (*flush)(void *ctx);
    /*
     * Sends len bytes of the file fd from offset now, behind what was
     * written before, without passing them through our memory (storage's
     * reader_file). NULL when the front end cannot.
     */
    int (*body_file)(void *ctx, int fd, int64_t offset, size_t len);
    /* Has the front server send a stored blob. */
    int (*send_stored)(void *ctx, const struct oci_response_head *head, const char *key);
};

/* Sends a RESPOND or SEND_STORED plan into sink. */
void oci_plan_send(const struct oci_plan *plan, const struct oci_sink *sink);

/* Makes plan a RESPOND of status with a copy of the text body. */
void oci_plan_respond(struct oci_plan *plan, int status, const char *content_type,
                      const char *body);

/* Fills plan with an error answer (JSON body per the spec). */
void oci_plan_error(struct oci_plan *plan, enum oci_error err, const char *detail);

void oci_plan_release(struct oci_plan *plan);

/* Counts the answered request and logs its outcome (core/metrics/metrics.h). */
void oci_plan_count(const struct oci_request *req, const struct oci_plan *plan);

/* Makes plan a SEND_STORED of the blob digest names. */
void oci_plan_send_stored(struct oci_plan *plan, uint64_t size, const struct oci_digest *digest);

/*
 * True when the cache holds the blob digest names (info filled in) and, with
 * check_cache_digest, it still matches its digest (a mismatch is removed).
 * Marks the blob used, for cleanup and eviction.
 */
bool oci_plan_cached(const struct oci_registry *reg, const struct oci_digest *digest,
                     struct storage_info *info);

/*
 * Makes plan a RESPOND with the cached manifest plan->manifest names, read
 * from storage (a HEAD reads nothing). False when the cache does not hold it
 * whole; plan is then unchanged.
 */
bool oci_plan_stored_manifest(const struct oci_registry *reg, struct oci_plan *plan);

/* The head of a 200 answer with the manifest plan->manifest names; makes plan a RESPOND. */
void oci_plan_manifest_head(struct oci_plan *plan);

#endif
