/*
 * fuzz_config_credentials.c - fuzz target: UPSTREAM_CREDENTIALS, the JSON that
 * core/upstream/config.c applies over a configuration. A rejected value leaves a
 * message that never repeats the input (it may hold a password).
 */
#include <stdlib.h>
#include <string.h>

#include "core/upstream/config.h"
#include "tests/fuzz/fuzz.h"

static const char base[] = "- namespace: example.com\n"
                           "  host: registry.example.com\n"
                           "  username: someone\n"
                           "  password: secret\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_string(data, size);
    struct oci_config cfg;
    char err[256];

    if (!oci_config_parse(base, sizeof(base) - 1, "base.yaml", &cfg, err, sizeof(err)))
        abort();
    err[0] = '\0';
    if (!oci_config_apply_credentials(&cfg, json, err, sizeof(err)) &&
        memchr(err, '\0', sizeof(err)) == NULL)
        abort();
    oci_config_free(&cfg);
    free(json);
    return 0;
}
