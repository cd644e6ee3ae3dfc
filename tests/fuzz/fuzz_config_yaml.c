/*
 * fuzz_config_yaml.c - fuzz target: the upstream configuration file, as
 * core/upstream/config.c parses it. An accepted configuration has a valid namespace
 * for every entry and a valid host for every mirrored one (a hosted one has
 * none), no control character (but tab) in a string that goes into a
 * request (User-Agent), user names in push_users as htpasswd holds them (no
 * colon, blank or control character) and only on hosted entries, and frees
 * cleanly either way.
 */
#include <stdlib.h>
#include <string.h>

#include "core/upstream/config.h"
#include "core/request/reference.h"
#include "tests/fuzz/fuzz.h"

static bool clean(const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

static bool user_names_clean(char **users)
{
    for (; users != NULL && *users != NULL; users++)
        for (const char *c = *users; *c != '\0'; c++)
            if ((unsigned char)*c <= ' ' || *c == ':' || *c == 0x7f)
                return false;
    return true;
}

static void check_upstream(const struct oci_upstream *up)
{
    if (up->namespace_ == NULL || !oci_namespace_valid(up->namespace_, strlen(up->namespace_)) ||
        (up->hosted ? up->host != NULL
                    : up->host == NULL || !oci_namespace_valid(up->host, strlen(up->host))) ||
        !clean(up->user_agent) || (up->push_users != NULL && !up->hosted) ||
        !user_names_clean(up->push_users))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_config cfg;
    char err[256];
    size_t i;

    err[0] = '\0';
    if (oci_config_parse((const char *)data, size, "fuzz.yaml", &cfg, err, sizeof(err))) {
        for (i = 0; i < cfg.count; i++)
            check_upstream(&cfg.upstreams[i]);
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort();
    }
    oci_config_free(&cfg);
    return 0;
}
