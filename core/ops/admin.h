/*
 * admin.h - the /_admin/ API: operators remove what the cache holds over
 * HTTP, with the removals of core/cache/inventory.h.
 *
 *   DELETE /_admin/namespaces/<ns>                    its manifest records
 *   DELETE /_admin/repositories/<ns>/<name>           its manifest records
 *   DELETE /_admin/manifests/<ns>/<name>/<tag>        the tag's record
 *   DELETE /_admin/manifests/<ns>/<name>/<digest>     the manifest (records,
 *                                                     tags on it, content)
 *   DELETE /_admin/blobs/<digest>                     a blob
 *
 * Answers 200 with {"records":N,"blobs":N,"bytes":N}, or 404 when nothing
 * was cached there. The API is off unless the responder runs with --admin:
 * then every /_admin/ path is a 404, like any unknown path, so there is
 * nothing to discover. When on, a request must carry the front server's
 * marker, the FastCGI parameter OCI_REGISTRY_ADMIN (which only the front's
 * configuration can set: a client's headers arrive as HTTP_* parameters),
 * set only in the protected /_admin/ location (contrib/nginx); without it
 * the answer is 403. Unknown paths are 404, other methods 405.
 */
#ifndef OCI_ADMIN_H
#define OCI_ADMIN_H

#include <stdbool.h>

#include "core/plan/plan.h"

/* The FastCGI parameter the front server's admin location sets. */
#define OCI_ADMIN_MARKER "OCI_REGISTRY_ADMIN"

/* True when path is one of the API's ("/_admin" or below). */
bool oci_admin_path(const char *path);

/* Plans an /_admin/ request (a RESPOND plan; the removal is done by then). */
void oci_admin_plan(const struct oci_registry *reg, const struct oci_request *req,
                    struct oci_plan *plan);

#endif
