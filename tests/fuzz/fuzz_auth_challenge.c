/*
 * fuzz_auth_challenge.c - fuzz target: WWW-Authenticate values of an upstream, as
 * core/upstream/auth.c parses them. Fields come out NUL-terminated within bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "core/upstream/auth.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = fuzz_string(data, size);
    struct oci_auth_challenge c;

    memset(&c, 0x55, sizeof(c));
    oci_auth_parse_challenge(value, &c);
    if (memchr(c.realm, '\0', sizeof(c.realm)) == NULL ||
        memchr(c.service, '\0', sizeof(c.service)) == NULL ||
        memchr(c.scope, '\0', sizeof(c.scope)) == NULL)
        abort();
    free(value);
    return 0;
}
