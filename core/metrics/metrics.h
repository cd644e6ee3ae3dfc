/*
 * metrics.h - counters of what the responder did, one view for the host,
 * and their Prometheus text exposition (GET /metrics, format 0.0.4).
 *
 * The counters live in a small file that every responder process on the
 * host maps shared (spawn-fcgi -F N, several workers, one cache): a scrape
 * of any of them sees the sum of all, never one process's share. Every
 * update is an atomic add (or store, for gauges) on that mapping: no lock,
 * no system call, so a cache hit costs a few adds. Before oci_metrics_open,
 * and when the file cannot be had, the counters are the process's own.
 *
 * Label values come from fixed sets only, so no request can create series:
 * methods, routes, kinds and S3 operations are enumerations; statuses are
 * numbers from a fixed list (others fall into their class, "2xx" .. "5xx";
 * "0" is no answer); namespaces are those of the configuration and the
 * default namespace, and every other (dynamic) namespace is "other".
 *
 * Each request also has an outcome: a miss that was fetched, an error or
 * a stale answer is logged in one key=value line with the request id the
 * front server passed (FastCGI param REQUEST_ID, checked: at most
 * OCI_REQUEST_ID_MAX of [A-Za-z0-9._-]), or one of our own when it passed
 * none or a bad one; answers carry it as X-Request-Id.
 */
#ifndef OCI_METRICS_H
#define OCI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OCI_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define OCI_REQUEST_ID_MAX       64

/* ---- set-up ------------------------------------------------------------ */

/*
 * Maps the counters file at path (created 0600; one made by another layout
 * is replaced), registers the count namespaces (the configured ones and the
 * default) as label values, and records the build (storage: "filesystem" or "s3"). False with
 * why in err: the process then counts on its own.
 */
bool oci_metrics_open(const char *path, const char *storage, const char *const *namespaces,
                      size_t count, char *err, size_t errlen);
/* Unmaps the file; counting goes on in the process's own memory. */
void oci_metrics_close(void);

/* The Prometheus text of every series, as a new string (len set); NULL: no memory. */
char *oci_metrics_render(size_t *len);

/* ---- a request, on the worker thread that serves it -------------------- */

/* A request begins; raw_id is the front server's REQUEST_ID, or NULL. */
void oci_metrics_request_start(const char *raw_id);
/* This thread's request id: the front server's once checked, else one of ours. */
const char *oci_metrics_request_id(void);
/* What a request was answered, as the counters and the outcome line see it. */
struct oci_metrics_answer {
    const char *method;
    const char *path;       /* the request's path, without the query */
    const char *namespace_; /* the routed namespace, or "" */
    int status;
    bool answered_whole; /* the body was answered from memory (not streamed or sent) */
    uint64_t body_bytes; /* what was answered whole: 0 for a HEAD */
};

/* The request was answered: counts it, and logs its outcome when it matters
 * (core/plan/plan.h's oci_plan_count makes a from a plan). */
void oci_metrics_request_end(const struct oci_metrics_answer *a);

/* ---- events ------------------------------------------------------------ */

enum oci_metrics_kind {
    OCI_METRICS_MANIFEST,
    OCI_METRICS_BLOB,
};

/* The cache held it; bytes: what the responder answered from it (a whole manifest). */
void oci_metrics_cache_hit(enum oci_metrics_kind kind, uint64_t bytes);
/* The cache did not hold it (or a tag was too old): the upstream is asked. */
void oci_metrics_cache_miss(enum oci_metrics_kind kind);
/*
 * The front server sends a stored object of size bytes (X-Accel-Redirect,
 * X-Sendfile, S3 URL): counted as bytes from the cache, the Range's length
 * when range is one satisfiable "bytes=" range, nothing for a HEAD.
 */
void oci_metrics_stored_sent(int64_t size, const char *method, const char *range);
/* A stale manifest was answered because the upstream failed. */
void oci_metrics_stale_served(void);
/* A request followed a download another one leads (single flight). */
void oci_metrics_singleflight_follower(void);
/* One upstream request ended: status 0 when no answer came. */
void oci_metrics_upstream(const char *namespace_, bool head, long status, long ms, uint64_t bytes);
/* A token was asked of an upstream's token service. */
void oci_metrics_token_fetch(bool ok);
/* A cleanup pass ended, having removed so many blobs and manifest records. */
void oci_metrics_cleanup_run(unsigned long blobs, unsigned long manifests);
/* A cleanup pass or an eviction was skipped: another replica held the cleanup lease. */
void oci_metrics_cleanup_skipped(void);
/*
 * Whether the S3 server honours conditional writes, as the storage's probe
 * reported it (util/observe.h): 1 yes, 0 no, -1 not known (not S3, or not
 * probed yet).
 */
int oci_metrics_s3_conditional(void);

/* ---- cache size and eviction (called by the cache's accounting) -------- */

/* What the cache holds now (gauges, host-wide: the last report wins). */
void oci_metrics_cache_size(uint64_t bytes, uint64_t objects);
/* The size bound the cache is kept under; 0: none. */
void oci_metrics_cache_bound(uint64_t bytes);
/* One eviction batch removed so many objects and bytes (counted and logged). */
void oci_metrics_evicted(uint64_t objects, uint64_t bytes);

#endif
