/*
 * fuzz_manifest_check.c - fuzz target: manifests as clients push them to a
 * hosted namespace (core/hosted/manifest_check.c), the first byte choosing the
 * Content-Type sent with them. An accepted manifest has a media type fit
 * for a Content-Type header, an artifact type that is empty or one, and as
 * many digests as it says.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hosted/manifest_check.h"
#include "tests/fuzz/fuzz.h"

static const char *const content_types[] = {
    NULL,
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
};

static bool type_ok(const char *type, bool may_be_empty)
{
    size_t len = strnlen(type, OCI_MEDIA_TYPE_MAX + 1);

    return (may_be_empty && len == 0) || oci_media_type_valid(type, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_manifest_info info;
    const char *why;
    const char *type;

    if (size == 0)
        return 0;
    type = content_types[data[0] % (sizeof(content_types) / sizeof(content_types[0]))];
    if (oci_manifest_check((const char *)data + 1, size - 1, type, &info, &why) != OCI_OK)
        return 0;
    if (!type_ok(info.media_type, false) || !type_ok(info.artifact_type, true) ||
        (info.ref_count > 0 && info.refs == NULL))
        abort();
    for (size_t i = 0; i < info.ref_count; i++)
        if (strlen(info.refs[i].hex) != (info.refs[i].alg == OCI_DIGEST_SHA256 ? 64 : 128))
            abort();
    oci_manifest_info_free(&info);
    return 0;
}
