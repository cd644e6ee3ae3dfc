/*
 * fetch.c - how upstream answers and failures become answers to clients,
 * for manifests and blobs alike.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "core/fetch.h"
#include "util/log.h"

#define STALE_WARNING "110 - \"Response is Stale\""

void oci_fetch_send_error(struct oci_plan *plan, const struct oci_sink *sink, enum oci_error err,
                          const char *detail)
{
    oci_plan_error(plan, err, detail);
    oci_plan_send(plan, sink);
}

/* What an upstream's unsuccessful answer means for our client. */
enum oci_error oci_fetch_status_error(long status, bool blob)
{
    if (status == 404)
        return blob ? OCI_E_BLOB_UNKNOWN : OCI_E_MANIFEST_UNKNOWN;
    if (status == 401 || status == 403)
        return OCI_E_DENIED;
    if (status == 429)
        return OCI_E_TOOMANYREQUESTS;
    return OCI_E_UPSTREAM_FAILED;
}

enum oci_error oci_fetch_result_error(enum oci_fetch_result result)
{
    switch (result) {
    case OCI_FETCH_DENIED:
        return OCI_E_DENIED;
    case OCI_FETCH_UNREACHABLE:
        return OCI_E_UNAVAILABLE;
    case OCI_FETCH_DONE:
    case OCI_FETCH_BROKEN:
    case OCI_FETCH_STOPPED:
        break;
    }
    return OCI_E_UPSTREAM_FAILED;
}

void oci_fetch_keep_head(struct oci_upstream_answer *a, const struct oci_upstream_head *head)
{
    a->status = head->status;
    a->content_length = head->content_length;
    snprintf(a->content_type, sizeof(a->content_type), "%.*s",
             (int)strcspn(head->content_type ? head->content_type : "", "; "),
             head->content_type ? head->content_type : "");
    snprintf(a->digest, sizeof(a->digest), "%s", head->digest ? head->digest : "");
    snprintf(a->retry_after, sizeof(a->retry_after), "%s",
             head->retry_after ? head->retry_after : "");
}

struct oci_upstream_request oci_fetch_request(const struct oci_plan *plan, const char *kind,
                                              bool head)
{
    struct oci_upstream_request req = {
        .upstream = &plan->upstream,
        .guard = plan->guard,
        .head = head,
        .name = plan->route.name,
        .kind = kind,
        .reference = plan->route.reference,
    };
    return req;
}

/* Answers a failed fetch: a stale manifest when there is one, else an error. */
void oci_fetch_failed(const struct oci_registry *reg, struct oci_plan *plan,
                      const struct oci_sink *sink, enum oci_error err,
                      const struct oci_upstream_answer *a)
{
    bool stale_ok =
        err == OCI_E_UNAVAILABLE || err == OCI_E_UPSTREAM_FAILED || err == OCI_E_TOOMANYREQUESTS;

    if (plan->have_stale && stale_ok && oci_plan_stored_manifest(reg, plan)) {
        oci_log(OCI_LOG_WARN, "serving stale %s %s:%s: upstream failed (%s)",
                plan->route.namespace_, plan->route.name, plan->route.reference,
                oci_error_code(err));
        plan->head.warning = STALE_WARNING;
        plan->head.fresh_for = 0;
        oci_plan_send(plan, sink);
        return;
    }
    if (err == OCI_E_MANIFEST_UNKNOWN && plan->have_stale) {
        char key[OCI_CACHE_KEY_MAX];

        /* The tag is gone upstream: so is our record of it. */
        oci_cache_manifest_key(&plan->route, key);
        reg->storage->ops->remove(reg->storage, key);
    }
    oci_plan_error(plan, err, NULL);
    if (a != NULL && err == OCI_E_TOOMANYREQUESTS)
        snprintf(plan->head.retry_after, sizeof(plan->head.retry_after), "%s", a->retry_after);
    oci_plan_send(plan, sink);
}
