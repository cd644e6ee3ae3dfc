/*
 * route.h - from a request path and query to what is asked of which upstream.
 *
 * Routes the pull side of the distribution API:
 *   /v2/                                       the API base
 *   /v2/<name>/manifests/<tag or digest>
 *   /v2/<name>/blobs/<digest>
 * the push side and discovery, for hosted namespaces (core/hosted/hosted.h):
 *   /v2/<name>/blobs/uploads/                  start an upload (POST)
 *   /v2/<name>/blobs/uploads/<id>              an upload session
 *   /v2/<name>/tags/list
 *   /v2/<name>/referrers/<digest>
 *   /v2/_catalog
 * and, outside the API, the health checks /healthz and /readyz and the
 * counters /metrics;
 * and resolves which upstream registry (namespace) a request is for:
 *   1. the "ns" query parameter (containerd hosts.toml mirrors); when the
 *      name also starts with that registry (containerd override_path), the
 *      prefix is dropped;
 *   2. else the first path component when it looks like a registry host
 *      and more components follow (cri-o "mirror:port/<registry>");
 *   3. else the default namespace (Docker registry-mirrors).
 * On docker.io a one-component name gets "library/".
 *
 * The path is the raw, undecoded request path: a valid name, tag or digest
 * has no percent-escapes, so any "%" is refused rather than decoded. Only the
 * query's "ns" value is percent-decoded.
 */
#ifndef OCI_ROUTE_H
#define OCI_ROUTE_H

#include <stdbool.h>

#include "core/request/digest.h"
#include "core/request/errors.h"
#include "core/request/reference.h"

enum oci_route_kind {
    OCI_ROUTE_BASE,         /* /v2/ */
    OCI_ROUTE_MANIFEST,     /* /v2/<name>/manifests/<reference> */
    OCI_ROUTE_BLOB,         /* /v2/<name>/blobs/<digest> */
    OCI_ROUTE_HEALTHZ,      /* /healthz: alive */
    OCI_ROUTE_READYZ,       /* /readyz: fit to serve */
    OCI_ROUTE_UPLOAD_START, /* /v2/<name>/blobs/uploads/ */
    OCI_ROUTE_UPLOAD,       /* /v2/<name>/blobs/uploads/<id>: reference is the id */
    OCI_ROUTE_TAGS,         /* /v2/<name>/tags/list */
    OCI_ROUTE_REFERRERS,    /* /v2/<name>/referrers/<digest> */
    OCI_ROUTE_CATALOG,      /* /v2/_catalog: namespace only */
    OCI_ROUTE_METRICS,      /* /metrics: counters, Prometheus text */
};

/* An upload session's id: 32 lowercase hex digits. */
#define OCI_UPLOAD_ID_LEN 32

struct oci_route {
    enum oci_route_kind kind;
    char namespace_[OCI_NAMESPACE_MAX + 1]; /* upstream registry, e.g. "docker.io" */
    char name[OCI_NAME_MAX + 1];            /* repository name at that registry */
    /* The reference as given: a tag, or a digest string. Empty for BASE. */
    char reference[OCI_DIGEST_STRING_MAX > OCI_TAG_MAX + 1 ? OCI_DIGEST_STRING_MAX
                                                           : OCI_TAG_MAX + 1];
    bool by_digest;           /* reference is a digest (always for blobs) */
    struct oci_digest digest; /* valid when by_digest */
    const char *why;          /* after a failed parse: what was wrong (static), or NULL */
    /* How the client named the repository, to build Location headers: the
     * path's first name_path_len bytes ("/v2/<name as sent>"), and the
     * namespace came from "?ns=" when ns_in_query. */
    size_t name_path_len;
    bool ns_in_query;
};

/*
 * Finds the query parameter name in query (may be NULL) and percent-decodes
 * its value into out (cap bytes, NUL-terminated); *found says whether it
 * was there. False when the parameter is given twice, its value has a bad
 * escape, does not fit, or decodes to a control character.
 */
bool oci_query_param(const char *query, const char *name, char *out, size_t cap, bool *found);

/* True when id[0..len) is an upload id (OCI_UPLOAD_ID_LEN lowercase hex digits). */
bool oci_upload_id_valid(const char *id, size_t len);

/*
 * Routes path (e.g. "/v2/library/alpine/manifests/3.19") with query (the
 * part after '?', or NULL). default_ns is the namespace used when neither the
 * query nor the path names one. Returns OCI_OK and fills out, or (out->kind
 * then says which endpoint it was, out->why may say more):
 *   OCI_E_NOT_FOUND       not a pull endpoint of the API
 *   OCI_E_NAME_INVALID    repository name or namespace fails the grammar
 *   OCI_E_TAG_INVALID     manifest reference that is neither tag nor digest
 *   OCI_E_DIGEST_INVALID  malformed digest, or one of an algorithm we do not
 *                         hash (the spec asks 400 for both)
 */
enum oci_error oci_route_parse(const char *path, const char *query, const char *default_ns,
                               struct oci_route *out);

/*
 * Resolves a repository name as a request path names it (a mount's "from"):
 * its namespace by the rules above into out->namespace_, the rest into
 * out->name (and ns_in_query, as a path would). OCI_E_NAME_INVALID when either
 * fails the grammar.
 */
enum oci_error oci_route_repository(const char *name, const char *query, const char *default_ns,
                                    struct oci_route *out);

/*
 * What a failed parse answers to a read (GET, HEAD): a manifest reference
 * that is neither tag nor digest names no manifest, so it is
 * OCI_E_MANIFEST_UNKNOWN (404, as the conformance suite expects); every other
 * error stays. A write keeps the parse's own error (TAG_INVALID).
 */
enum oci_error oci_route_read_error(const struct oci_route *route, enum oci_error err);

/* The namespace whose single-component names get "library/". */
#define OCI_DOCKER_HUB_NAMESPACE "docker.io"

#endif
