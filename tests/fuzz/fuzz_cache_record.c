/*
 * fuzz_cache_record.c - fuzz target: manifest records as core/cache/cache.c reads them
 * back from storage (a tampered cache, a shared bucket). An accepted record
 * has a media type fit for a Content-Type header.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cache/cache.h"
#include "core/request/reference.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_manifest_record rec;

    if (oci_cache_record_parse((const char *)data, size, &rec) &&
        !oci_media_type_valid(rec.media_type, strnlen(rec.media_type, sizeof(rec.media_type))))
        abort();
    return 0;
}
