/*
 * hosted.c - manifests, blobs, tags, deletes, the catalog and referrers of
 * hosted namespaces (see hosted.h); uploads are core/hosted/upload.c's.
 */
#include "autoconfig.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hosted/hosted.h"
#include "core/hosted/manifest_check.h"
#include "core/cache/repo.h"
#include "core/hosted/upload.h"
#include "util/log.h"

#define OCI_INDEX_TYPE  "application/vnd.oci.image.index.v1+json"
#define REFERRER_MAX    (64 * 1024) /* one referrer's descriptor */
#define PAGE_PARAM_MAX  16
#define BODY_READ_CHUNK (64 * 1024)

static bool method_is(const struct oci_request *req, const char *method)
{
    return strcmp(req->method, method) == 0;
}

static bool is_read(const struct oci_request *req)
{
    return method_is(req, "GET") || method_is(req, "HEAD");
}

static void refuse_method(struct oci_plan *plan, const char *allow)
{
    oci_plan_error(plan, OCI_E_UNSUPPORTED, NULL);
    plan->head.allow = allow;
}

/* ---- lists of names, sorted and paginated ---------------------------------- */

struct names {
    char **items;
    size_t count;
    bool failed;
};

static void names_add(struct names *list, const char *s, size_t len)
{
    char **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
    char *copy = grown != NULL ? strndup(s, len) : NULL;

    if (grown != NULL)
        list->items = grown;
    if (copy == NULL) {
        list->failed = true;
        return;
    }
    list->items[list->count++] = copy;
}

static int names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops duplicates. */
static void names_sort(struct names *list)
{
    size_t kept = 0;

    if (list->count == 0)
        return; /* items may be NULL, which qsort must not get */
    qsort(list->items, list->count, sizeof(*list->items), names_cmp);
    for (size_t i = 0; i < list->count; i++) {
        if (kept > 0 && strcmp(list->items[kept - 1], list->items[i]) == 0)
            free(list->items[i]);
        else
            list->items[kept++] = list->items[i];
    }
    list->count = kept;
}

static void names_free(struct names *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
}

/* The n and last of a page; false when n is not a number. n is -1 when not given. */
static bool page_params(const char *query, long *n, char *last, size_t last_cap)
{
    char value[PAGE_PARAM_MAX];
    bool found;
    char *end;

    *n = -1;
    if (!oci_query_param(query, "last", last, last_cap, &found))
        return false;
    if (!found)
        last[0] = '\0';
    if (!oci_query_param(query, "n", value, sizeof(value), &found))
        return false;
    if (!found)
        return true;
    *n = strtol(value, &end, 10);
    return value[0] != '\0' && *end == '\0' && *n >= 0;
}

/*
 * Answers {"<name_key>": name, "<list_key>": [page]} for the names after
 * last, at most n of them, with a Link to the next page when there is more.
 */
static void answer_page(struct oci_plan *plan, const struct oci_request *req, const char *name,
                        const char *list_key, const struct names *list, const char *link_path)
{
    char last[OCI_NAME_MAX + 1];
    long n;
    size_t i = 0, shown = 0;
    cJSON *root = cJSON_CreateObject(), *array;
    char *body;

    if (!page_params(req->query, &n, last, sizeof(last))) {
        cJSON_Delete(root);
        oci_plan_error(plan, OCI_E_PARAM_INVALID, "n must be a number, last a name or tag");
        return;
    }
    if (root == NULL || (name != NULL && !cJSON_AddStringToObject(root, "name", name)) ||
        (array = cJSON_AddArrayToObject(root, list_key)) == NULL)
        goto oom;
    while (i < list->count && last[0] != '\0' && strcmp(list->items[i], last) <= 0)
        i++;
    for (; i < list->count && (n < 0 || (long)shown < n); i++, shown++) {
        if (!cJSON_AddItemToArray(array, cJSON_CreateString(list->items[i])))
            goto oom;
    }
    body = cJSON_PrintUnformatted(root);
    if (body == NULL)
        goto oom;
    oci_plan_respond(plan, 200, "application/json", body);
    free(body);
    if (i < list->count && shown > 0)
        oci_head_add(&plan->head, "Link", "<%s?n=%ld&last=%s%s%s>; rel=\"next\"", link_path, n,
                     list->items[i - 1], plan->route.ns_in_query ? "&ns=" : "",
                     plan->route.ns_in_query ? plan->route.namespace_ : "");
    cJSON_Delete(root);
    return;
oom:
    cJSON_Delete(root);
    oci_plan_error(plan, OCI_E_INTERNAL, "out of memory");
}

/* ---- tags and the catalog ---------------------------------------------------- */

static bool collect_leaf(void *arg, const char *key, const struct storage_info *info)
{
    const char *leaf = strrchr(key, '/') + 1;

    (void)info;
    names_add(arg, leaf, strlen(leaf));
    return !((struct names *)arg)->failed;
}

/* Lists the leaves under part/ of the route's repository, sorted. */
static bool list_leaves(struct storage *st, const struct oci_route *route, const char *part,
                        struct names *list)
{
    char prefix[OCI_CACHE_KEY_MAX];

    oci_repo_key(route, part, "", prefix);
    if (st->ops->list(st, prefix, collect_leaf, list) != STORAGE_OK || list->failed)
        return false;
    names_sort(list);
    return true;
}

static bool note_any(void *arg, const char *key, const struct storage_info *info)
{
    (void)key;
    (void)info;
    *(bool *)arg = true;
    return false; /* one is enough */
}

/* Whether anything was pushed to the route's repository: a blob or a manifest. */
static enum storage_err repo_known(struct storage *st, const struct oci_route *route, bool *known)
{
    static const char *const parts[] = {"_digests", "_blobs"};
    char prefix[OCI_CACHE_KEY_MAX];
    enum storage_err err = STORAGE_OK;

    *known = false;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && !*known && err == STORAGE_OK; i++) {
        oci_repo_key(route, parts[i], "", prefix);
        err = st->ops->list(st, prefix, note_any, known);
    }
    return err;
}

/* A repository nothing was pushed to is unknown (404 NAME_UNKNOWN, as the spec's end-8a). */
static void tags_list(const struct oci_registry *reg, const struct oci_request *req,
                      struct oci_plan *plan)
{
    struct names tags = {0};
    char link[OCI_HEAD_VALUE_MAX];
    bool known = true;

    snprintf(link, sizeof(link), "%.*s/tags/list", (int)plan->route.name_path_len, req->path);
    if (!list_leaves(reg->storage, &plan->route, "_tags", &tags) ||
        (tags.count == 0 && repo_known(reg->storage, &plan->route, &known) != STORAGE_OK))
        oci_plan_error(plan, OCI_E_UNAVAILABLE, "storage failed");
    else if (!known)
        oci_plan_error(plan, OCI_E_NAME_UNKNOWN, "nothing was pushed to this repository");
    else
        answer_page(plan, req, plan->route.name, "tags", &tags, link);
    names_free(&tags);
}

struct catalog {
    size_t prefix_len; /* of "hosted/<namespace>/" */
    struct names names;
};

/* A key below "hosted/<namespace>/" names its repository up to "/_". */
static bool collect_repository(void *arg, const char *key, const struct storage_info *info)
{
    struct catalog *c = arg;
    const char *name = key + c->prefix_len;
    const char *end = strstr(name, "/_");

    (void)info;
    if (end != NULL)
        names_add(&c->names, name, (size_t)(end - name));
    return !c->names.failed;
}

static void catalog(const struct oci_registry *reg, const struct oci_request *req,
                    struct oci_plan *plan)
{
    struct storage *st = reg->storage;
    struct catalog c = {0};
    char prefix[OCI_CACHE_KEY_MAX];

    c.prefix_len =
        (size_t)snprintf(prefix, sizeof(prefix), OCI_REPO_PREFIX "%s/", plan->route.namespace_);
    if (st->ops->list(st, prefix, collect_repository, &c) != STORAGE_OK || c.names.failed) {
        oci_plan_error(plan, OCI_E_UNAVAILABLE, "storage failed");
    } else {
        names_sort(&c.names);
        answer_page(plan, req, NULL, "repositories", &c.names, "/v2/_catalog");
    }
    names_free(&c.names);
}

/* ---- blobs ----------------------------------------------------------------- */

static void get_blob(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct storage_info info;

    if (oci_repo_has_blob(reg->storage, &plan->route, &plan->route.digest, &info))
        oci_plan_send_stored(plan, info.size, &plan->route.digest);
    else
        oci_plan_error(plan, OCI_E_BLOB_UNKNOWN, NULL);
}

/* Removes key; 202 when it was there, else err. Asked first: S3 removes what is not there. */
static void remove_answer(struct storage *st, const char *key, struct oci_plan *plan,
                          enum oci_error err)
{
    struct storage_info info;
    enum storage_err serr = st->ops->stat(st, key, &info);

    if (serr == STORAGE_OK)
        serr = st->ops->remove(st, key);
    if (serr == STORAGE_OK)
        oci_plan_respond(plan, 202, NULL, "");
    else if (serr == STORAGE_NOT_FOUND)
        oci_plan_error(plan, err, NULL);
    else
        oci_plan_error(plan, OCI_E_UNAVAILABLE, "storage failed");
}

/* The link goes; the content stays until cleanup finds it unused. */
static void delete_blob(const struct oci_registry *reg, struct oci_plan *plan)
{
    char key[OCI_CACHE_KEY_MAX];

    oci_repo_digest_key(&plan->route, "_blobs", &plan->route.digest, key);
    remove_answer(reg->storage, key, plan, OCI_E_BLOB_UNKNOWN);
}

/* ---- manifests --------------------------------------------------------------- */

static void get_manifest(const struct oci_registry *reg, struct oci_plan *plan)
{
    if (oci_repo_manifest_lookup(reg->storage, &plan->route, &plan->manifest) != STORAGE_OK ||
        !oci_plan_stored_manifest(reg, plan)) {
        oci_plan_error(plan, OCI_E_MANIFEST_UNKNOWN, NULL);
        return;
    }
    /* A tag may move and a manifest be deleted: nothing in front keeps it. */
    plan->head.fresh_for = 0;
}

/* Reads the whole body, at most max bytes, into a new buffer. */
static enum oci_error read_body(const struct oci_request *req, size_t max, char **out,
                                size_t *out_len)
{
    size_t len = 0, cap = 0;
    char *buf = NULL;
    long got;

    if (req->content_length > (int64_t)max)
        return OCI_E_MANIFEST_TOO_LARGE;
    do {
        if (cap - len < BODY_READ_CHUNK) {
            char *grown = len > max ? NULL : realloc(buf, cap + BODY_READ_CHUNK);

            if (grown == NULL) {
                free(buf);
                return len > max ? OCI_E_MANIFEST_TOO_LARGE : OCI_E_INTERNAL;
            }
            buf = grown;
            cap += BODY_READ_CHUNK;
        }
        got = req->body != NULL ? req->body->read(req->body->ctx, buf + len, cap - len) : 0;
        len += got > 0 ? (size_t)got : 0;
    } while (got > 0);
    if (got < 0 || len > max) {
        free(buf);
        return got < 0 ? OCI_E_MANIFEST_INVALID : OCI_E_MANIFEST_TOO_LARGE;
    }
    *out = buf;
    *out_len = len;
    return OCI_OK;
}

/* The first thing the manifest references that the repository lacks, or NULL. */
static const struct oci_digest *missing_ref(struct storage *st, const struct oci_route *route,
                                            const struct oci_manifest_info *info)
{
    struct oci_route by_digest = *route;
    struct oci_manifest_record rec;
    struct storage_info si;

    by_digest.by_digest = true;
    for (size_t i = 0; i < info->ref_count; i++) {
        by_digest.digest = info->refs[i];
        if (info->is_index ? oci_repo_manifest_lookup(st, &by_digest, &rec) != STORAGE_OK
                           : !oci_repo_has_blob(st, route, &info->refs[i], &si))
            return &info->refs[i];
    }
    return NULL;
}

/* Indexes a manifest with a subject for the referrers API: its descriptor as JSON. */
static enum storage_err store_referrer(struct storage *st, const struct oci_route *route,
                                       const struct oci_manifest_info *info,
                                       const struct oci_manifest_record *rec)
{
    char subject[OCI_DIGEST_STRING_MAX], digest[OCI_DIGEST_STRING_MAX];
    char leaf[2 * OCI_DIGEST_STRING_MAX], key[OCI_CACHE_KEY_MAX];
    cJSON *desc = cJSON_CreateObject();
    char *json = NULL;
    enum storage_err err = STORAGE_NO_MEMORY;

    oci_digest_format(&info->subject, subject);
    oci_digest_format(&rec->digest, digest);
    if (desc != NULL && cJSON_AddStringToObject(desc, "mediaType", rec->media_type) &&
        cJSON_AddStringToObject(desc, "digest", digest) &&
        cJSON_AddNumberToObject(desc, "size", (double)rec->size) &&
        (info->artifact_type[0] == '\0' ||
         cJSON_AddStringToObject(desc, "artifactType", info->artifact_type)) &&
        (info->annotations == NULL ||
         cJSON_AddItemToObject(desc, "annotations", cJSON_Parse(info->annotations))))
        json = cJSON_PrintUnformatted(desc);
    if (json != NULL) {
        snprintf(leaf, sizeof(leaf), "%s/%s", subject, digest);
        oci_repo_key(route, "_referrers", leaf, key);
        err = st->ops->put_small(st, key, json, strlen(json));
    }
    free(json);
    cJSON_Delete(desc);
    return err;
}

/* The digest a manifest is stored under: the route's, which the bytes must match. */
static enum oci_error manifest_digest(const struct oci_route *route, const char *body, size_t len,
                                      struct oci_digest *out)
{
    enum oci_digest_alg alg = route->by_digest ? route->digest.alg : OCI_DIGEST_SHA256;

    if (!oci_digest_buffer(alg, body, len, out))
        return OCI_E_INTERNAL;
    return !route->by_digest || oci_digest_equal(out, &route->digest) ? OCI_OK
                                                                      : OCI_E_DIGEST_INVALID;
}

static void answer_manifest_put(struct oci_plan *plan, const struct oci_request *req,
                                const struct oci_manifest_info *info,
                                const struct oci_manifest_record *rec)
{
    char digest[OCI_DIGEST_STRING_MAX];

    oci_digest_format(&rec->digest, digest);
    oci_plan_respond(plan, 201, NULL, "");
    strcpy(plan->head.digest, digest);
    oci_head_add(&plan->head, "Location", "%.*s/manifests/%s%s%s", (int)plan->route.name_path_len,
                 req->path, digest, plan->route.ns_in_query ? "?ns=" : "",
                 plan->route.ns_in_query ? plan->route.namespace_ : "");
    if (info->has_subject) {
        oci_digest_format(&info->subject, digest);
        oci_head_add(&plan->head, "OCI-Subject", "%s", digest);
    }
}

/* Checks, then stores; the error and why when it may not be stored. */
static enum oci_error store_manifest(struct storage *st, const struct oci_route *route,
                                     const char *body, const struct oci_manifest_info *info,
                                     struct oci_manifest_record *rec, char *why, size_t why_len)
{
    const struct oci_digest *missing = missing_ref(st, route, info);
    char digest[OCI_DIGEST_STRING_MAX];

    if (missing != NULL) {
        oci_digest_format(missing, digest);
        snprintf(why, why_len, "%s %s is not in the repository",
                 info->is_index ? "manifest" : "blob", digest);
        return OCI_E_MANIFEST_BLOB_UNKNOWN;
    }
    snprintf(rec->media_type, sizeof(rec->media_type), "%s", info->media_type);
    if (oci_repo_manifest_store(st, route, rec, body, rec->size) != STORAGE_OK ||
        (info->has_subject && store_referrer(st, route, info, rec) != STORAGE_OK))
        return OCI_E_UNAVAILABLE;
    return OCI_OK;
}

static void put_manifest(const struct oci_registry *reg, const struct oci_request *req,
                         struct oci_plan *plan)
{
    struct oci_manifest_info info = {0};
    struct oci_manifest_record rec = {0};
    const char *static_why = NULL;
    char why[256] = "";
    char *body = NULL;
    size_t len = 0;
    enum oci_error err = read_body(req, OCI_MANIFEST_MAX, &body, &len);

    if (err == OCI_E_MANIFEST_TOO_LARGE)
        static_why = "a manifest may have at most 4 MiB";
    if (err == OCI_OK)
        err = oci_manifest_check(body, len, req->content_type, &info, &static_why);
    if (err == OCI_OK)
        err = manifest_digest(&plan->route, body, len, &rec.digest);
    if (err == OCI_E_DIGEST_INVALID)
        static_why = "the manifest does not match the digest it is pushed by";
    rec.size = len;
    if (err == OCI_OK)
        err = store_manifest(reg->storage, &plan->route, body, &info, &rec, why, sizeof(why));
    if (err == OCI_OK)
        answer_manifest_put(plan, req, &info, &rec);
    else
        oci_plan_error(plan, err, static_why != NULL ? static_why : why[0] ? why : NULL);
    oci_manifest_info_free(&info);
    free(body);
}

struct untag {
    struct storage *st;
    const char *suffix; /* "/<digest>" of referrer keys, or NULL for tags */
    struct oci_digest digest;
};

/* Removes the tags of a deleted manifest and its referrer entry. */
static bool untag(void *arg, const char *key, const struct storage_info *info)
{
    struct untag *u = arg;
    struct oci_manifest_record rec;
    size_t len = strlen(key), slen;

    (void)info;
    if (u->suffix != NULL) {
        slen = strlen(u->suffix);
        if (len > slen && strcmp(key + len - slen, u->suffix) == 0)
            u->st->ops->remove(u->st, key);
    } else if (oci_cache_record_read(u->st, key, &rec) == STORAGE_OK &&
               oci_digest_equal(&rec.digest, &u->digest)) {
        u->st->ops->remove(u->st, key);
    }
    return true;
}

static void delete_manifest(const struct oci_registry *reg, struct oci_plan *plan)
{
    struct storage *st = reg->storage;
    char key[OCI_CACHE_KEY_MAX], suffix[OCI_DIGEST_STRING_MAX + 1];
    struct untag u = {st, NULL, plan->route.digest};

    if (!plan->route.by_digest) {
        oci_repo_key(&plan->route, "_tags", plan->route.reference, key);
        remove_answer(st, key, plan, OCI_E_MANIFEST_UNKNOWN);
        return;
    }
    oci_repo_digest_key(&plan->route, "_digests", &plan->route.digest, key);
    remove_answer(st, key, plan, OCI_E_MANIFEST_UNKNOWN);
    if (plan->head.status != 202)
        return;
    oci_repo_key(&plan->route, "_tags", "", key);
    st->ops->list(st, key, untag, &u);
    snprintf(suffix, sizeof(suffix), "/%s", plan->route.reference);
    u.suffix = suffix;
    oci_repo_key(&plan->route, "_referrers", "", key);
    st->ops->list(st, key, untag, &u);
}

/* ---- referrers --------------------------------------------------------------- */

struct referrers {
    struct storage *st;
    const char *artifact_type; /* the filter, or NULL */
    cJSON *manifests;
    bool failed;
};

static bool add_referrer(void *arg, const char *key, const struct storage_info *info)
{
    struct referrers *r = arg;
    const cJSON *at;
    cJSON *desc;
    char *json;
    size_t len;

    (void)info;
    if (r->st->ops->read_small(r->st, key, REFERRER_MAX, &json, &len, NULL) != STORAGE_OK)
        return true; /* removed meanwhile */
    desc = cJSON_ParseWithLength(json, len);
    free(json);
    at = cJSON_GetObjectItemCaseSensitive(desc, "artifactType");
    if (desc != NULL && r->artifact_type != NULL &&
        !(cJSON_IsString(at) && strcmp(at->valuestring, r->artifact_type) == 0)) {
        cJSON_Delete(desc);
        return true;
    }
    r->failed = desc == NULL || !cJSON_AddItemToArray(r->manifests, desc);
    return !r->failed;
}

static void referrers(const struct oci_registry *reg, const struct oci_request *req,
                      struct oci_plan *plan)
{
    char filter[OCI_MEDIA_TYPE_MAX + 1], subject[OCI_DIGEST_STRING_MAX + 1];
    char key[OCI_CACHE_KEY_MAX];
    cJSON *index = cJSON_CreateObject();
    struct referrers r = {reg->storage, NULL, NULL, false};
    char *body = NULL;
    bool found;

    if (!oci_query_param(req->query, "artifactType", filter, sizeof(filter), &found)) {
        cJSON_Delete(index);
        oci_plan_error(plan, OCI_E_PARAM_INVALID, "artifactType is not a media type");
        return;
    }
    r.artifact_type = found ? filter : NULL;
    snprintf(subject, sizeof(subject), "%s/", plan->route.reference);
    oci_repo_key(&plan->route, "_referrers", subject, key);
    if (index != NULL && cJSON_AddNumberToObject(index, "schemaVersion", 2) &&
        cJSON_AddStringToObject(index, "mediaType", OCI_INDEX_TYPE) &&
        (r.manifests = cJSON_AddArrayToObject(index, "manifests")) != NULL &&
        reg->storage->ops->list(reg->storage, key, add_referrer, &r) == STORAGE_OK && !r.failed)
        body = cJSON_PrintUnformatted(index);
    cJSON_Delete(index);
    if (body == NULL) {
        oci_plan_error(plan, OCI_E_UNAVAILABLE, "cannot list the referrers");
        return;
    }
    oci_plan_respond(plan, 200, OCI_INDEX_TYPE, body);
    free(body);
    if (found)
        oci_head_add(&plan->head, "OCI-Filters-Applied", "artifactType");
}

/* ---- dispatch ---------------------------------------------------------------- */

static void plan_manifest(const struct oci_registry *reg, const struct oci_upstream *entry,
                          const struct oci_request *req, struct oci_plan *plan)
{
    if (is_read(req))
        get_manifest(reg, plan);
    else if (method_is(req, "PUT"))
        put_manifest(reg, req, plan);
    else if (method_is(req, "DELETE") && entry->delete_)
        delete_manifest(reg, plan);
    else
        refuse_method(plan, entry->delete_ ? "GET, HEAD, PUT, DELETE" : "GET, HEAD, PUT");
}

static void plan_blob(const struct oci_registry *reg, const struct oci_upstream *entry,
                      const struct oci_request *req, struct oci_plan *plan)
{
    if (is_read(req))
        get_blob(reg, plan);
    else if (method_is(req, "DELETE") && entry->delete_)
        delete_blob(reg, plan);
    else
        refuse_method(plan, entry->delete_ ? "GET, HEAD, DELETE" : "GET, HEAD");
}

/* The discovery endpoints: reads only. */
static void plan_read_only(const struct oci_registry *reg, const struct oci_request *req,
                           struct oci_plan *plan)
{
    if (!is_read(req))
        refuse_method(plan, "GET, HEAD");
    else if (plan->route.kind == OCI_ROUTE_TAGS)
        tags_list(reg, req, plan);
    else if (plan->route.kind == OCI_ROUTE_REFERRERS)
        referrers(reg, req, plan);
    else
        catalog(reg, req, plan);
}

static void challenge(struct oci_plan *plan, const char *why)
{
    oci_plan_error(plan, OCI_E_UNAUTHORIZED, why);
    oci_head_add(&plan->head, "WWW-Authenticate", "Basic realm=\"" OCI_HOSTED_REALM "\"");
}

bool oci_hosted_challenge(const struct oci_upstream *entry, const struct oci_request *req,
                          struct oci_plan *plan)
{
    if (entry->anonymous_push || req->has_credentials)
        return false;
    challenge(plan, "pushing here needs a user; pulls need none");
    return true;
}

/* A write needs a checked user (401 with a challenge) whom push_users lists (403). */
static bool write_allowed(const struct oci_upstream *entry, const struct oci_request *req,
                          struct oci_plan *plan)
{
    if (!entry->anonymous_push && (req->remote_user == NULL || req->remote_user[0] == '\0')) {
        challenge(plan, "pushing here needs a user");
        return false;
    }
    if (!oci_upstream_may_push(entry, req->remote_user)) {
        oci_plan_error(plan, OCI_E_DENIED, "this user may not push to this namespace (push_users)");
        return false;
    }
    return true;
}

void oci_hosted_plan(const struct oci_registry *reg, const struct oci_upstream *entry,
                     const struct oci_request *req, struct oci_plan *plan)
{
    if (!is_read(req) && !write_allowed(entry, req, plan))
        return;
    switch (plan->route.kind) {
    case OCI_ROUTE_MANIFEST:
        plan_manifest(reg, entry, req, plan);
        break;
    case OCI_ROUTE_BLOB:
        plan_blob(reg, entry, req, plan);
        break;
    case OCI_ROUTE_UPLOAD_START:
        if (method_is(req, "POST"))
            oci_upload_start(reg, req, plan);
        else
            refuse_method(plan, "POST");
        break;
    case OCI_ROUTE_UPLOAD:
        oci_upload_session(reg, req, plan);
        break;
    default:
        plan_read_only(reg, req, plan);
        break;
    }
}
