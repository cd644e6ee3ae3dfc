/*
 * fetch.h - what the fetches of core/ share; internal to core/.
 *
 * core/registry.c plans and dispatches, core/plan/manifest.c and core/plan/blob.c
 * carry out the FETCH plans of their kind. This header is their common
 * ground: the kept head of an upstream answer, the request built from a
 * plan, and how failures become answers.
 */
#ifndef OCI_FETCH_H
#define OCI_FETCH_H

#include "core/plan/plan.h"

/* The head of the upstream's answer, kept past the callback, and what the fetch did. */
struct oci_upstream_answer {
    long status;
    int64_t content_length;
    char content_type[OCI_MEDIA_TYPE_MAX + 1];
    char digest[OCI_DIGEST_STRING_MAX];
    char retry_after[32];
    struct oci_upstream_outcome outcome; /* filled by oci_upstream_fetch */
};

/*
 * Keeps the head of an upstream's answer, each value checked before it can
 * reach a record or a client: Content-Type as a media type without
 * parameters, "" when it is none (core/request/reference.h); Retry-After as seconds,
 * "" when it is neither seconds nor an HTTP-date.
 */
void oci_fetch_keep_head(struct oci_upstream_answer *a, const struct oci_upstream_head *head);

/* The upstream request for a plan: kind is "manifests" or "blobs". */
struct oci_upstream_request oci_fetch_request(const struct oci_plan *plan, const char *kind,
                                              bool head);

/* What an upstream's unsuccessful status means for our client. */
enum oci_error oci_fetch_status_error(long status, bool blob);

/* What a fetch that got no usable answer means for our client. */
enum oci_error oci_fetch_result_error(enum oci_fetch_result result);

/* Answers err with its JSON body. */
void oci_fetch_send_error(struct oci_plan *plan, const struct oci_sink *sink, enum oci_error err,
                          const char *detail);

/*
 * Answers a failed fetch: a stale manifest, with a Warning, when the plan
 * has one and the upstream is down, limited or broken; else the error, its
 * detail naming the upstream (namespace and host, never a URL) and why -
 * a's status or a->outcome.why - with a Retry-After where a retry may
 * succeed: the upstream's own for a 429 (none when it sent none) or a 5xx
 * that sent one, else a few seconds for failures that pass (refused,
 * timeouts, 5xx, busy).
 */
void oci_fetch_failed(const struct oci_registry *reg, struct oci_plan *plan,
                      const struct oci_sink *sink, enum oci_error err,
                      const struct oci_upstream_answer *a);

/* The FETCH plans of each kind (core/plan/manifest.c, core/plan/blob.c). */
void oci_fetch_manifest(const struct oci_registry *reg, struct oci_plan *plan,
                        const struct oci_sink *sink);
void oci_fetch_blob(const struct oci_registry *reg, struct oci_plan *plan,
                    const struct oci_sink *sink);

#endif
