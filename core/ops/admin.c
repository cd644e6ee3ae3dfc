/*
 * admin.c - the /_admin/ API (see admin.h): its gate, its paths, its answers.
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/ops/admin.h"
#include "core/cache/inventory.h"
#include "util/log.h"

#define ADMIN_PREFIX "/_admin/"

bool oci_admin_path(const char *path)
{
    return strncmp(path, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) == 0 || strcmp(path, "/_admin") == 0;
}

/* "<ns>/<rest>": the length of ns, and rest (NULL when there is no '/'). */
static size_t split_ns(const char *s, const char **rest)
{
    size_t len = strcspn(s, "/");

    *rest = s[len] == '/' ? s + len + 1 : NULL;
    return len;
}

/* The target an API path names; false for a path that names none. */
static bool parse_path(const char *path, struct oci_inventory_target *t)
{
    const char *p = path + strlen(ADMIN_PREFIX), *rest, *ref;
    size_t ns_len;

    if (strncmp(p, "blobs/", 6) == 0)
        return oci_inventory_target(OCI_INVENTORY_BLOB, NULL, 0, NULL, 0, p + 6, strlen(p + 6), t);
    if (strncmp(p, "namespaces/", 11) == 0)
        return oci_inventory_target(OCI_INVENTORY_NAMESPACE, p + 11, strlen(p + 11), NULL, 0, NULL,
                                    0, t);
    if (strncmp(p, "repositories/", 13) == 0) {
        ns_len = split_ns(p + 13, &rest);
        return rest != NULL && oci_inventory_target(OCI_INVENTORY_REPOSITORY, p + 13, ns_len, rest,
                                                    strlen(rest), NULL, 0, t);
    }
    if (strncmp(p, "manifests/", 10) != 0)
        return false;
    ns_len = split_ns(p + 10, &rest);
    if (rest == NULL || (ref = strrchr(rest, '/')) == NULL)
        return false;
    return oci_inventory_target(strchr(ref, ':') ? OCI_INVENTORY_MANIFEST : OCI_INVENTORY_TAG,
                                p + 10, ns_len, rest, (size_t)(ref - rest), ref + 1,
                                strlen(ref + 1), t);
}

static void answer_removed(struct oci_plan *plan, const struct oci_inventory_removed *r)
{
    char body[160];

    snprintf(body, sizeof(body), "{\"records\":%lu,\"blobs\":%lu,\"bytes\":%" PRIu64 "}\n",
             r->records, r->blobs, r->bytes);
    oci_plan_respond(plan, 200, "application/json", body);
}

void oci_admin_plan(const struct oci_registry *reg, const struct oci_request *req,
                    struct oci_plan *plan)
{
    struct oci_inventory_target t;
    struct oci_inventory_removed removed;
    enum storage_err err;

    if (!reg->options.admin || !parse_path(req->path, &t)) {
        oci_plan_error(plan, OCI_E_NOT_FOUND, NULL);
        return;
    }
    if (!req->admin_marker) {
        oci_log(OCI_LOG_WARN,
                "admin: %s %s refused: it did not come through the front "
                "server's admin location",
                req->method, req->path);
        oci_plan_error(plan, OCI_E_DENIED,
                       "admin requests go through the front server's "
                       "protected /_admin/ location");
        return;
    }
    if (strcmp(req->method, "DELETE") != 0) {
        oci_plan_error(plan, OCI_E_UNSUPPORTED, "the admin API takes DELETE");
        plan->head.allow = "DELETE";
        return;
    }
    err = oci_inventory_remove(reg->storage, reg->evict, &t, &removed);
    if (err == STORAGE_NOT_FOUND) {
        oci_plan_error(plan,
                       t.kind == OCI_INVENTORY_BLOB ? OCI_E_BLOB_UNKNOWN
                       : t.kind == OCI_INVENTORY_TAG || t.kind == OCI_INVENTORY_MANIFEST
                           ? OCI_E_MANIFEST_UNKNOWN
                           : OCI_E_NAME_UNKNOWN,
                       "nothing cached there");
        return;
    }
    if (err != STORAGE_OK) {
        oci_plan_error(plan, OCI_E_UNAVAILABLE, storage_strerror(err));
        return;
    }
    oci_log(OCI_LOG_INFO, "admin: DELETE %s: removed %lu records and %lu blobs", req->path,
            removed.records, removed.blobs);
    answer_removed(plan, &removed);
}
