/*
 * upload.h - blob uploads to hosted repositories (OCI distribution-spec
 * v1.1): sessions, monolithic uploads, cross-repository mounts.
 *
 *   POST   <name>/blobs/uploads/                 a session: 202, Location
 *   POST   <name>/blobs/uploads/?digest=D        the whole blob in the body: 201
 *   POST   <name>/blobs/uploads/?mount=D[&from=R] 201 when mounted, else a session
 *   PATCH  <name>/blobs/uploads/<id>             a chunk (Content-Range optional)
 *   PUT    <name>/blobs/uploads/<id>?digest=D    a last chunk, if any, and close
 *   GET    <name>/blobs/uploads/<id>             progress: 204 + Range
 *   DELETE <name>/blobs/uploads/<id>             cancel: 204
 *
 * A session lives in storage, so any worker of any process sharing it can
 * carry it on:
 *   uploads/<id>/state           "<namespace> <name> <size>\n"; written at
 *                                every step, its time is the last activity
 *   uploads/<id>/<offset>        one object per chunk, the bytes from that
 *                                offset (20 decimal digits) on
 * Bodies stream from the client into storage piece by piece, never whole
 * in memory. Closing hashes the chunks in order into a new object that is
 * committed under its digest's key (core/cache/cache.h) only when it matches the
 * digest given; then the blob is linked into the repository (core/cache/repo.h)
 * and the session removed.
 */
#ifndef OCI_UPLOAD_H
#define OCI_UPLOAD_H

#include <time.h>

#include "core/plan/plan.h"

/* How long a session may sit idle before cleanup removes it (default). */
#define OCI_UPLOAD_DEFAULT_LIFETIME (24L * 60 * 60)

/* POST to plan->route (an OCI_ROUTE_UPLOAD_START); the answer goes into plan. */
void oci_upload_start(const struct oci_registry *reg, const struct oci_request *req,
                      struct oci_plan *plan);

/* PATCH, PUT, GET or DELETE of the session plan->route names (an OCI_ROUTE_UPLOAD). */
void oci_upload_session(const struct oci_registry *reg, const struct oci_request *req,
                        struct oci_plan *plan);

/* Removes the objects of sessions idle since before cutoff; returns how many. */
unsigned long oci_upload_expire(struct storage *st, time_t cutoff);

#endif
