/*
 * registry.h - the request pipeline: from a request to a plan, and the
 * carrying out of the plans that need the upstream.
 *
 *   oci_registry_plan()   validates and routes a request, asks storage what
 *                         the cache holds and decides, without touching the
 *                         network, one of:
 *       OCI_PLAN_RESPOND      answer head and body from memory (errors, /v2/,
 *                             cached manifests: small, read whole)
 *       OCI_PLAN_SEND_STORED  answer head; the front server sends the cached
 *                             blob (X-Accel-Redirect, X-Sendfile)
 *       OCI_PLAN_FETCH        go to the upstream: oci_registry_fetch()
 *   oci_registry_fetch()  fetches from the upstream, streams the answer into
 *                         a sink as it arrives, verifies it and only then
 *                         commits it to the cache.
 *
 * The front end (fcgi/) turns its protocol into an oci_request and a sink,
 * and a plan into its protocol: this module knows nothing of FastCGI.
 */
#ifndef OCI_REGISTRY_H
#define OCI_REGISTRY_H

#include "core/plan/plan.h"

/* Decides what to do with req. Never fails: errors become RESPOND plans. */
void oci_registry_plan(const struct oci_registry *reg, const struct oci_request *req,
                       struct oci_plan *plan);

/* Carries out a FETCH plan: the whole answer goes to sink. */
void oci_registry_fetch(const struct oci_registry *reg, struct oci_plan *plan,
                        const struct oci_sink *sink);

#endif
