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
 *   uploads/<id>/state           "<namespace> <name> <size>\n"; its time
 *                                is the last activity
 * and, on a backend that grows objects in place (the filesystem, see
 * storage.h writer_resume):
 *   uploads/<id>/data            the bytes so far, appended to by one request
 *                                at a time; its size is what the session holds
 * or else (S3):
 *   uploads/<id>/<offset>        one object per chunk, the bytes from that
 *                                offset (20 decimal digits) on; state's size
 *                                says which of them count
 * Bodies stream from the client into storage piece by piece, never whole
 * in memory, each written once. Closing hashes the session's bytes and the
 * last chunk; in place, the data object is then moved to its digest's key
 * (core/cache/cache.h), else the chunks are poured in order into a new
 * object committed there - in both cases only when it matches the digest
 * given. Then the blob is linked into the repository (core/cache/repo.h) and
 * the session removed. A session with nothing yet closed with the whole
 * body streams it straight into the blob.
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
