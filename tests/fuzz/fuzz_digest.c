/*
 * fuzz_digest.c - fuzz target: digest strings, as core/request/digest.c parses them from
 * paths, headers and manifests. A digest that parses formats back to the
 * same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/request/digest.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_digest d, again;
    char text[OCI_DIGEST_STRING_MAX];

    if (oci_digest_parse((const char *)data, size, &d) != OCI_OK)
        return 0;
    oci_digest_format(&d, text);
    if (strlen(text) != size || memcmp(text, data, size) != 0 ||
        oci_digest_parse(text, strlen(text), &again) != OCI_OK || !oci_digest_equal(&d, &again))
        abort();
    return 0;
}
