/*
 * manifest_check.h - what a pushed manifest is and what it points to.
 *
 * A manifest PUT to a hosted namespace is checked before anything is
 * stored: it must be JSON, of an image manifest or index media type (OCI or
 * Docker), and every descriptor in it must carry a digest this build
 * verifies. What it references (an image's config and layers, an index's
 * manifests), its subject and its artifact type come back for the caller
 * to check against storage and to index for the referrers API. The bytes
 * are only read: they are stored exactly as pushed.
 */
#ifndef OCI_MANIFEST_CHECK_H
#define OCI_MANIFEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/request/digest.h"
#include "core/request/errors.h"
#include "core/request/reference.h"

/* The largest manifest taken (the spec's suggested minimum limit, 4 MiB). */
#define OCI_MANIFEST_MAX (4 * 1024 * 1024)

struct oci_manifest_info {
    char media_type[OCI_MEDIA_TYPE_MAX + 1];
    bool is_index;           /* refs are manifests, else blobs */
    struct oci_digest *refs; /* owned; what must exist before it may be stored */
    size_t ref_count;
    bool has_subject;
    struct oci_digest subject;
    /* artifactType, else (image manifests) the config's media type; "" when none. */
    char artifact_type[OCI_MEDIA_TYPE_MAX + 1];
    char *annotations; /* owned: the "annotations" object as JSON, or NULL */
};

/*
 * Checks body[0..len) as a manifest; content_type is the request's
 * Content-Type (parameters ignored) or NULL. The media type is the
 * manifest's "mediaType" and, when it has none, the Content-Type; both
 * given must agree. Returns OCI_OK with out filled (free it with
 * oci_manifest_info_free), or OCI_E_MANIFEST_INVALID with *why saying what
 * was wrong (static text).
 */
enum oci_error oci_manifest_check(const char *body, size_t len, const char *content_type,
                                  struct oci_manifest_info *out, const char **why);

void oci_manifest_info_free(struct oci_manifest_info *info);

#endif
