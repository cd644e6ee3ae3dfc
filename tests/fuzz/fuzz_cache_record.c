/*
 * fuzz_cache_record.c - fuzz target: manifest records as core/cache.c reads them
 * back from storage (a tampered cache, a shared bucket). An accepted record
 * has a media type fit for a Content-Type header.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cache.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_manifest_record rec;
    size_t i, len;

    if (!oci_cache_record_parse((const char *)data, size, &rec))
        return 0;
    len = strlen(rec.media_type);
    if (len == 0 || len > OCI_MEDIA_TYPE_MAX)
        abort();
    for (i = 0; i < len; i++)
        if (rec.media_type[i] <= ' ' || rec.media_type[i] >= 0x7f)
            abort();
    return 0;
}
