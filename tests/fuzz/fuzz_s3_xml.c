/*
 * fuzz_s3_xml.c - fuzz target: XML answers of an S3 server, as storage/ reads
 * them: ListObjectsV2 pages (storage/s3_list.c), error codes and single
 * elements (storage/s3_http.c). The same page is read twice, as a server
 * that repeats itself would send it. Every key reported is a valid storage
 * key.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/s3_http.h"
#include "storage/s3_list.h"
#include "tests/fuzz/fuzz.h"

static bool on_key(void *arg, const char *key, const struct storage_info *info)
{
    (void)info;
    if (!storage_key_valid(key))
        abort();
    return ++*(int *)arg < 1000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_string(data, size), *copy = fuzz_string(data, size), *text;
    struct s3_resp resp = {.body = body, .len = size};
    char code[64];
    int keys = 0;
    struct s3_listing l = {.prefix = "cache/", .fn = on_key, .arg = &keys};

    s3_http_error_code(&resp, code, sizeof(code));
    free(s3_http_xml_text(body, "UploadId"));
    text = s3_http_xml_text(body, "ETag");
    free(text);
    if (s3_list_page(&l, body) == STORAGE_OK)
        s3_list_page(&l, copy);
    s3_listing_free(&l);
    free(body);
    free(copy);
    return 0;
}
