/*
 * fuzz_route.c - fuzz target: request paths, as core/request/route.c routes them, and
 * the name, tag, namespace and host grammars of core/request/reference.c.
 *
 * Input: "<path>[?<query>]", as the FastCGI front splits REQUEST_URI. A
 * manifest or blob route that parses holds only what the grammars accept.
 */
#include <stdlib.h>
#include <string.h>

#include "core/request/reference.h"
#include "core/request/route.h"
#include "tests/fuzz/fuzz.h"

/* A manifest or blob route names only what the grammars accept. */
static void check_route(const struct oci_route *r)
{
    if (r->kind != OCI_ROUTE_MANIFEST && r->kind != OCI_ROUTE_BLOB)
        return;
    if (!oci_namespace_valid(r->namespace_, strlen(r->namespace_)) ||
        !oci_name_valid(r->name, strlen(r->name)))
        abort();
    if (r->by_digest
            ? r->digest.hex[0] == '\0'
            : r->kind == OCI_ROUTE_BLOB || !oci_tag_valid(r->reference, strlen(r->reference)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *raw = (const char *)data;
    char *path = fuzz_string(data, size), *query = strchr(path, '?');
    struct oci_route r;

    /* The grammars on the exact bytes: no read past size. */
    oci_name_valid(raw, size);
    oci_tag_valid(raw, size);
    oci_namespace_valid(raw, size);
    oci_namespace_host_len(raw, size);
    oci_looks_like_registry(raw, size);
    oci_host_is_ip_literal(raw, size);
    if (query != NULL)
        *query++ = '\0';
    memset(&r, 0, sizeof(r));
    if (oci_route_parse(path, query, "docker.io", &r) == OCI_OK)
        check_route(&r);
    free(path);
    return 0;
}
