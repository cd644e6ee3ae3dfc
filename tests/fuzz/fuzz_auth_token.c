/*
 * fuzz_auth_token.c - fuzz target: a token realm's JSON answer, as core/upstream/auth.c
 * reads it. A token comes out non-empty, fit for an Authorization header
 * (visible ASCII only), with a lifetime of at least 60 s.
 */
#include <stdlib.h>
#include <string.h>

#include "core/upstream/auth.h"
#include "tests/fuzz/fuzz.h"

static bool visible(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s <= ' ' || *s >= 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = NULL;
    long lifetime = 0;

    if (oci_auth_parse_token((const char *)data, size, &token, &lifetime) &&
        (token == NULL || token[0] == '\0' || !visible(token) || lifetime < 60))
        abort();
    free(token);
    return 0;
}
