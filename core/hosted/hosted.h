/*
 * hosted.h - the requests of hosted namespaces: content pushed by clients
 * and served from storage, never fetched from an upstream.
 *
 * A namespace is hosted when its config entry says `hosted: true` (core/upstream/config.h).
 * Every request for it comes here once routed (core/registry.c):
 *   GET/HEAD <name>/manifests/<ref>, <name>/blobs/<digest>   from storage
 *   PUT      <name>/manifests/<ref>       checked (core/hosted/manifest_check.h), stored
 *   DELETE   manifests, tags, blobs       when the entry says `delete: true`
 *   <name>/blobs/uploads/...              core/hosted/upload.h
 *   GET      <name>/tags/list, _catalog   paginated with n, last and Link
 *   GET      <name>/referrers/<digest>    an image index, artifactType filter
 * Who may write: the front server authenticates (REMOTE_USER); a write
 * without a user is refused with 401 and a Basic challenge unless the
 * entry says `anonymous_push: true`, and one by a user that the entry's
 * `push_users` does not list with 403 DENIED. Reads are open, like the mirror's.
 * Storage layout: core/cache/repo.h.
 */
#ifndef OCI_HOSTED_H
#define OCI_HOSTED_H

#include "core/plan/plan.h"

/* The realm of the Basic challenge of a refused write. */
#define OCI_HOSTED_REALM "oci-registry"

/*
 * The API base of a hosted namespace (GET /v2/): true, with a 401 and a Basic
 * challenge in plan, when writes need a user and the client sent no
 * credentials. Clients (Docker, containers/image) send their credentials
 * only to a registry whose base asked for them; anonymous pulls go on,
 * clients take a 401 there as "a registry with auth".
 */
bool oci_hosted_challenge(const struct oci_upstream *entry, const struct oci_request *req,
                          struct oci_plan *plan);

/* Carries out req for plan->route, of the hosted namespace entry; the answer goes into plan. */
void oci_hosted_plan(const struct oci_registry *reg, const struct oci_upstream *entry,
                     const struct oci_request *req, struct oci_plan *plan);

#endif
