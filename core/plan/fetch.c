/*
 * fetch.c - how upstream answers and failures become answers to clients,
 * for manifests and blobs alike.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/plan/fetch.h"
#include "core/metrics/metrics.h"
#include "util/log.h"

/* The distribution spec's form of a registry warning (warn-code 299, agent
 * "-"), which clients such as containerd and oras show to their users. */
#define STALE_WARNING "299 - \"stale: upstream unavailable, cached copy\""
/* Long enough for an upstream to restart or a burst to pass, short enough
 * that a client pulling layers in parallel does not stall. */
#define RETRY_AFTER_SECONDS "5"
#define DETAIL_MAX          (2 * OCI_NAMESPACE_MAX + 64)

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

/* The media type of a Content-Type value, without parameters, or "" when it is none. */
static void keep_media_type(char *out, size_t outlen, const char *value)
{
    size_t len = strcspn(value, ";");

    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (!oci_media_type_valid(value, len) || len >= outlen)
        len = 0;
    memcpy(out, value, len);
    out[len] = '\0';
}

/* What a cache must take a delta-seconds it cannot hold for (RFC 9111 1.2.2). */
#define DELTA_SECONDS_MAX 2147483648LL

/*
 * Retry-After (RFC 9110 10.2.3) as seconds from now: delta-seconds, or an
 * HTTP-date in the IMF-fixdate form senders must use; "" for anything else.
 * Only digits leave here, whatever the upstream sent.
 */
static void keep_retry_after(char *out, size_t outlen, const char *value)
{
    long long seconds = 0;
    struct tm tm = {0};
    const char *end;
    size_t digits = strspn(value, "0123456789");

    if (digits > 0 && value[digits] == '\0') {
        for (size_t i = 0; i < digits && seconds < DELTA_SECONDS_MAX; i++)
            seconds = seconds * 10 + (value[i] - '0');
    } else if ((end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm)) != NULL && *end == '\0') {
        seconds = (long long)(timegm(&tm) - time(NULL));
    } else {
        out[0] = '\0';
        if (value[0] != '\0')
            oci_log(OCI_LOG_WARN, "upstream: Retry-After \"%s\" is no delay: dropped", value);
        return;
    }
    if (seconds < 0) /* a date gone by: now */
        seconds = 0;
    snprintf(out, outlen, "%lld", seconds < DELTA_SECONDS_MAX ? seconds : DELTA_SECONDS_MAX);
}

void oci_fetch_keep_head(struct oci_upstream_answer *a, const struct oci_upstream_head *head)
{
    a->status = head->status;
    a->content_length = head->content_length;
    keep_media_type(a->content_type, sizeof(a->content_type),
                    head->content_type ? head->content_type : "");
    snprintf(a->digest, sizeof(a->digest), "%s", head->digest ? head->digest : "");
    keep_retry_after(a->retry_after, sizeof(a->retry_after),
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

/*
 * Why a fetch failed, for the client: the upstream by namespace and host
 * (what the config names; no URL, no query, no credentials) and what went
 * wrong. Empty for a 404, which says all there is to say.
 */
static void failure_detail(const struct oci_plan *plan, const struct oci_upstream_answer *a,
                           char *out, size_t len)
{
    const struct oci_upstream *up = &plan->upstream;

    out[0] = '\0';
    if (a->outcome.why != OCI_WHY_NONE)
        snprintf(out, len, "upstream %s (%s): %s", up->namespace_, up->host,
                 oci_upstream_why_text(a->outcome.why));
    else if (a->status != 404)
        snprintf(out, len, "upstream %s (%s) answered %ld", up->namespace_, up->host, a->status);
}

/* The Retry-After of a failure a retry may cure, or "" when it cannot. */
static const char *failure_retry_after(const struct oci_upstream_answer *a)
{
    switch (a->outcome.why) {
    case OCI_WHY_NONE:
        /* A 429 says when itself (or not: then we cannot know better); a
         * 5xx usually passes. */
        if (a->status == 429 || (a->status >= 500 && a->retry_after[0] != '\0'))
            return a->retry_after;
        return a->status >= 500 ? RETRY_AFTER_SECONDS : "";
    case OCI_WHY_DNS:
    case OCI_WHY_TLS_VERIFY:
    case OCI_WHY_TLS:
    case OCI_WHY_DENIED:
        return ""; /* the config or the name is wrong: asking again changes nothing */
    default:
        return RETRY_AFTER_SECONDS;
    }
}

/* Answers a failed fetch: a stale manifest when there is one, else an error. */
void oci_fetch_failed(const struct oci_registry *reg, struct oci_plan *plan,
                      const struct oci_sink *sink, enum oci_error err,
                      const struct oci_upstream_answer *a)
{
    bool stale_ok =
        err == OCI_E_UNAVAILABLE || err == OCI_E_UPSTREAM_FAILED || err == OCI_E_TOOMANYREQUESTS;
    char detail[DETAIL_MAX] = "";

    if (plan->have_stale && stale_ok && oci_plan_stored_manifest(reg, plan)) {
        oci_log(OCI_LOG_WARN, "serving stale %s %s:%s: upstream failed (%s)",
                plan->route.namespace_, plan->route.name, plan->route.reference,
                oci_error_code(err));
        oci_metrics_stale_served();
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
    if (a != NULL)
        failure_detail(plan, a, detail, sizeof(detail));
    oci_plan_error(plan, err, detail[0] != '\0' ? detail : NULL);
    if (a != NULL)
        snprintf(plan->head.retry_after, sizeof(plan->head.retry_after), "%s",
                 failure_retry_after(a));
    oci_plan_send(plan, sink);
}
