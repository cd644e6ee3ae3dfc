/*
 * config_yaml.c - fuzz target: the upstream configuration file, as
 * core/config.c parses it. An accepted configuration has a namespace and a
 * host for every entry, and frees cleanly either way.
 */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_config cfg;
    char err[256];
    size_t i;

    err[0] = '\0';
    if (oci_config_parse((const char *)data, size, "fuzz.yaml", &cfg, err, sizeof(err))) {
        for (i = 0; i < cfg.count; i++)
            if (cfg.upstreams[i].namespace_ == NULL || cfg.upstreams[i].host == NULL)
                abort();
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort();
    }
    oci_config_free(&cfg);
    return 0;
}
