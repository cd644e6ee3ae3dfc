/*
 * inventory.c - operations on the cache as a whole (see inventory.h).
 *
 * Each operation first collects the keys it needs with one listing, then
 * acts on them: removing while a listing is in progress is not something
 * every backend promises to survive.
 */
#include "autoconfig.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache/inventory.h"
#include "core/cache/repo.h"
#include "util/grow.h"
#include "core/cache/listing.h"

/* Manifests above this size are not read for du (as the pipeline refuses them). */
#define MANIFEST_MAX (4 * 1024 * 1024)
#define COPY_CHUNK   (128 * 1024)

/* ---- references ---------------------------------------------------------- */

static bool set_part(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

bool oci_inventory_target(enum oci_inventory_kind kind, const char *ns, size_t ns_len,
                          const char *name, size_t name_len, const char *ref, size_t ref_len,
                          struct oci_inventory_target *t)
{
    size_t i;

    memset(t, 0, sizeof(*t));
    t->kind = kind;
    if (kind == OCI_INVENTORY_BLOB)
        return oci_digest_parse(ref, ref_len, &t->digest) == OCI_OK;
    if (!oci_namespace_valid(ns, ns_len) ||
        !set_part(t->namespace_, sizeof(t->namespace_), ns, ns_len))
        return false;
    for (i = 0; i < ns_len; i++)
        t->namespace_[i] = (char)tolower((unsigned char)t->namespace_[i]);
    if (kind == OCI_INVENTORY_NAMESPACE)
        return true;
    if (!oci_name_valid(name, name_len) || !set_part(t->name, sizeof(t->name), name, name_len))
        return false;
    if (kind == OCI_INVENTORY_REPOSITORY)
        return true;
    if (kind == OCI_INVENTORY_TAG)
        return oci_tag_valid(ref, ref_len) && set_part(t->tag, sizeof(t->tag), ref, ref_len);
    return oci_digest_parse(ref, ref_len, &t->digest) == OCI_OK;
}

bool oci_inventory_parse(const char *ref, struct oci_inventory_target *t)
{
    size_t len = strlen(ref), ns_len = strcspn(ref, "/");
    const char *name = ref + ns_len + 1, *at, *colon;

    if (ns_len == len) /* no '/': a blob's digest, or a namespace */
        return oci_inventory_target(OCI_INVENTORY_BLOB, NULL, 0, NULL, 0, ref, len, t) ||
               oci_inventory_target(OCI_INVENTORY_NAMESPACE, ref, len, NULL, 0, NULL, 0, t);
    if ((at = strchr(name, '@')) != NULL)
        return oci_inventory_target(OCI_INVENTORY_MANIFEST, ref, ns_len, name, (size_t)(at - name),
                                    at + 1, strlen(at + 1), t);
    colon = strrchr(name, ':');
    if (colon != NULL)
        return oci_inventory_target(OCI_INVENTORY_TAG, ref, ns_len, name, (size_t)(colon - name),
                                    colon + 1, strlen(colon + 1), t);
    return oci_inventory_target(OCI_INVENTORY_REPOSITORY, ref, ns_len, name, strlen(name), NULL, 0,
                                t);
}

/* The record prefix of a NAMESPACE or REPOSITORY target (or all, for NULL). */
static void record_prefix(const struct oci_inventory_target *t, char prefix[OCI_CACHE_KEY_MAX])
{
    if (t == NULL)
        snprintf(prefix, OCI_CACHE_KEY_MAX, "manifests/");
    else if (t->kind == OCI_INVENTORY_NAMESPACE)
        snprintf(prefix, OCI_CACHE_KEY_MAX, "manifests/%s/", t->namespace_);
    else
        snprintf(prefix, OCI_CACHE_KEY_MAX, "manifests/%s/%s/", t->namespace_, t->name);
}

/*
 * Splits a record key "manifests/<ns>/<name>/_tags|_digests/<ref>" into a
 * route (the reference checked again: keys come from storage). False for
 * anything else.
 */
static bool record_route(const char *key, struct oci_route *r)
{
    const char *ns = key + strlen("manifests/"), *slash = strchr(ns, '/'), *kind, *ref;
    size_t name_len;

    memset(r, 0, sizeof(*r));
    if (strncmp(key, "manifests/", 10) != 0 || slash == NULL)
        return false;
    if ((kind = strstr(slash, "/_tags/")) != NULL)
        ref = kind + strlen("/_tags/");
    else if ((kind = strstr(slash, "/_digests/")) != NULL)
        ref = kind + strlen("/_digests/");
    else
        return false;
    name_len = (size_t)(kind - slash - 1);
    r->kind = OCI_ROUTE_MANIFEST;
    r->by_digest = kind[2] == 'd';
    if (!set_part(r->namespace_, sizeof(r->namespace_), ns, (size_t)(slash - ns)) ||
        !set_part(r->name, sizeof(r->name), slash + 1, name_len) ||
        !set_part(r->reference, sizeof(r->reference), ref, strlen(ref)))
        return false;
    if (r->by_digest)
        return oci_digest_parse(ref, strlen(ref), &r->digest) == OCI_OK;
    return oci_tag_valid(ref, strlen(ref));
}

/* True when the record's repository is exactly the filter's (not one below it). */
static bool in_filter(const struct oci_route *r, const struct oci_inventory_target *filter)
{
    return filter == NULL || filter->kind != OCI_INVENTORY_REPOSITORY ||
           strcmp(r->name, filter->name) == 0;
}

/* ---- ls ------------------------------------------------------------------ */

static void fill_entry(struct storage *st, struct oci_usage *usage, const struct oci_route *r,
                       struct oci_inventory_entry *e)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;
    time_t last;

    memset(e, 0, sizeof(*e));
    snprintf(e->namespace_, sizeof(e->namespace_), "%s", r->namespace_);
    snprintf(e->name, sizeof(e->name), "%s", r->name);
    snprintf(e->reference, sizeof(e->reference), "%s", r->reference);
    e->by_digest = r->by_digest;
    if (oci_cache_manifest_lookup(st, r, &e->rec) != STORAGE_OK)
        return;
    oci_cache_blob_key(&e->rec.digest, key);
    e->cached = st->ops->stat(st, key, &info) == STORAGE_OK;
    if (!e->cached)
        return;
    last = usage ? oci_usage_last(usage, &e->rec.digest, time(NULL)) : 0;
    e->last_use = last > info.mtime ? last : info.mtime;
}

enum storage_err oci_inventory_list(struct storage *st, struct oci_usage *usage,
                                    const struct oci_inventory_target *filter,
                                    oci_inventory_entry_fn fn, void *arg)
{
    char prefix[OCI_CACHE_KEY_MAX];
    struct oci_listing l = {0};
    struct oci_inventory_entry e;
    struct oci_route r;
    enum storage_err err;
    size_t i;

    record_prefix(filter, prefix);
    err = oci_listing_collect(st, prefix, &l);
    for (i = 0; err == STORAGE_OK && i < l.n; i++) {
        if (!record_route(l.v[i].key, &r) || !in_filter(&r, filter))
            continue;
        fill_entry(st, usage, &r, &e);
        fn(arg, &e);
    }
    oci_listing_free(&l);
    return err;
}

/* ---- du ------------------------------------------------------------------ */

struct refs {
    char (*keys)[OCI_CACHE_KEY_MAX];
    size_t n, cap;
    bool failed;
};

static void refs_add(struct refs *r, const struct oci_digest *d)
{
    void *grown = util_grow(r->keys, &r->cap, r->n, sizeof(*r->keys), 64);

    if (grown == NULL) {
        r->failed = true;
        return;
    }
    r->keys = grown;
    oci_cache_blob_key(d, r->keys[r->n++]);
}

static void refs_add_string(struct refs *r, const cJSON *desc)
{
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(desc, "digest");
    struct oci_digest d;

    if (cJSON_IsString(digest) &&
        oci_digest_parse(digest->valuestring, strlen(digest->valuestring), &d) == OCI_OK)
        refs_add(r, &d);
}

/* Adds a manifest's content and what it names (an index's manifests, once deep). */
static void refs_of_manifest(struct storage *st, const struct oci_digest *d, int depth,
                             struct refs *r)
{
    char key[OCI_CACHE_KEY_MAX], *buf = NULL;
    const cJSON *item;
    struct oci_digest child;
    size_t len;
    cJSON *doc;

    refs_add(r, d);
    oci_cache_blob_key(d, key);
    if (st->ops->read_small(st, key, MANIFEST_MAX, &buf, &len, NULL) != STORAGE_OK)
        return;
    doc = cJSON_ParseWithLength(buf, len);
    free(buf);
    refs_add_string(r, cJSON_GetObjectItemCaseSensitive(doc, "config"));
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "layers"))
        refs_add_string(r, item);
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "manifests"))
    {
        const cJSON *digest = cJSON_GetObjectItemCaseSensitive(item, "digest");

        if (depth > 0 && cJSON_IsString(digest) &&
            oci_digest_parse(digest->valuestring, strlen(digest->valuestring), &child) == OCI_OK)
            refs_of_manifest(st, &child, depth - 1, r);
    }
    cJSON_Delete(doc);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sums the blobs a namespace's references name (each once), marking them referenced. */
static void sum_refs(struct refs *r, const struct oci_listing *blobs, bool *referenced,
                     struct oci_inventory_usage *u)
{
    size_t i;

    if (r->n > 1)
        qsort(r->keys, r->n, sizeof(*r->keys), by_string);
    for (i = 0; i < r->n; i++) {
        const struct oci_listing_item *hit;

        if (i > 0 && strcmp(r->keys[i], r->keys[i - 1]) == 0)
            continue;
        hit = oci_listing_find(blobs, r->keys[i]);
        if (hit == NULL)
            continue;
        referenced[hit - blobs->v] = true;
        u->blobs++;
        u->bytes += hit->info.size;
    }
    r->n = 0;
}

/* Walks the records (sorted, so namespace by namespace) and reports each namespace. */
static void du_namespaces(struct storage *st, const struct oci_listing *records,
                          const struct oci_listing *blobs, bool *referenced, oci_inventory_du_fn fn,
                          oci_inventory_progress_fn progress, void *arg)
{
    struct oci_inventory_usage u = {0};
    struct oci_manifest_record rec;
    struct refs r = {0};
    struct oci_route route;
    size_t i;

    for (i = 0; i <= records->n; i++) {
        bool valid = i < records->n && record_route(records->v[i].key, &route);

        if (progress != NULL && i < records->n)
            progress(arg, i + 1, records->n, NULL);
        if (i < records->n && !valid)
            continue;
        if (u.records > 0 && (i == records->n || strcmp(route.namespace_, u.namespace_) != 0)) {
            sum_refs(&r, blobs, referenced, &u);
            fn(arg, &u);
            memset(&u, 0, sizeof(u));
        }
        if (i == records->n)
            break;
        snprintf(u.namespace_, sizeof(u.namespace_), "%s", route.namespace_);
        u.records++;
        if (oci_cache_manifest_lookup(st, &route, &rec) == STORAGE_OK)
            refs_of_manifest(st, &rec.digest, 1, &r);
    }
    free(r.keys);
}

enum storage_err oci_inventory_du(struct storage *st, oci_inventory_du_fn fn, void *arg,
                                  oci_inventory_progress_fn progress,
                                  struct oci_inventory_du *totals)
{
    struct oci_listing records = {0}, blobs = {0};
    bool *referenced = NULL;
    enum storage_err err;
    size_t i;

    memset(totals, 0, sizeof(*totals));
    err = oci_listing_collect(st, "blobs/", &blobs);
    if (err == STORAGE_OK)
        err = oci_listing_collect(st, "manifests/", &records);
    if (err == STORAGE_OK && (referenced = calloc(blobs.n + 1, sizeof(*referenced))) == NULL)
        err = STORAGE_NO_MEMORY;
    if (err == STORAGE_OK) {
        du_namespaces(st, &records, &blobs, referenced, fn, progress, arg);
        for (i = 0; i < blobs.n; i++) {
            totals->bytes += blobs.v[i].info.size;
            totals->blobs++;
            if (!referenced[i]) {
                totals->unreferenced_bytes += blobs.v[i].info.size;
                totals->unreferenced_blobs++;
            }
        }
    }
    free(referenced);
    oci_listing_free(&records);
    oci_listing_free(&blobs);
    return err;
}

/* ---- rm ------------------------------------------------------------------ */

static void remove_record(struct storage *st, const char *key, struct oci_inventory_removed *out)
{
    if (st->ops->remove(st, key) == STORAGE_OK)
        out->records++;
}

static void remove_blob(struct storage *st, struct oci_evictor *e, const struct oci_digest *d,
                        struct oci_inventory_removed *out)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;

    oci_cache_blob_key(d, key);
    /* Content a hosted repository holds stays: its records would point at nothing. */
    if (oci_repo_pinned(st, d) || st->ops->stat(st, key, &info) != STORAGE_OK ||
        st->ops->remove(st, key) != STORAGE_OK)
        return;
    oci_evict_removed(e, info.size);
    out->blobs++;
    out->bytes += info.size;
}

/* The records of a namespace or repository, or those of a repository that name digest. */
static enum storage_err remove_records(struct storage *st, const struct oci_inventory_target *t,
                                       struct oci_inventory_removed *out)
{
    char prefix[OCI_CACHE_KEY_MAX];
    struct oci_listing l = {0};
    struct oci_manifest_record rec;
    struct oci_route r;
    enum storage_err err;
    size_t i;

    record_prefix(t, prefix); /* a manifest's: its repository's, filtered below */
    err = oci_listing_collect(st, prefix, &l);
    for (i = 0; err == STORAGE_OK && i < l.n; i++) {
        if (!record_route(l.v[i].key, &r))
            continue;
        if (t->kind != OCI_INVENTORY_NAMESPACE && strcmp(r.name, t->name) != 0)
            continue;
        if (t->kind == OCI_INVENTORY_MANIFEST &&
            (oci_cache_manifest_lookup(st, &r, &rec) != STORAGE_OK ||
             !oci_digest_equal(&rec.digest, &t->digest)))
            continue;
        remove_record(st, l.v[i].key, out);
    }
    oci_listing_free(&l);
    return err;
}

enum storage_err oci_inventory_remove(struct storage *st, struct oci_evictor *e,
                                      const struct oci_inventory_target *t,
                                      struct oci_inventory_removed *out)
{
    struct oci_route r = {.kind = OCI_ROUTE_MANIFEST};
    char key[OCI_CACHE_KEY_MAX];
    enum storage_err err = STORAGE_OK;

    memset(out, 0, sizeof(*out));
    switch (t->kind) {
    case OCI_INVENTORY_BLOB:
        remove_blob(st, e, &t->digest, out);
        break;
    case OCI_INVENTORY_TAG:
        snprintf(r.namespace_, sizeof(r.namespace_), "%s", t->namespace_);
        snprintf(r.name, sizeof(r.name), "%s", t->name);
        snprintf(r.reference, sizeof(r.reference), "%s", t->tag);
        oci_cache_manifest_key(&r, key);
        remove_record(st, key, out);
        break;
    case OCI_INVENTORY_MANIFEST:
        err = remove_records(st, t, out);
        if (err == STORAGE_OK && out->records > 0)
            remove_blob(st, e, &t->digest, out);
        break;
    case OCI_INVENTORY_NAMESPACE:
    case OCI_INVENTORY_REPOSITORY:
        err = remove_records(st, t, out);
        break;
    }
    if (err == STORAGE_OK && out->records == 0 && out->blobs == 0)
        err = STORAGE_NOT_FOUND;
    return err;
}

/* ---- verify -------------------------------------------------------------- */

/* Copies key to dst through a writer (any size, any backend). */
static enum storage_err copy_object(struct storage *st, const char *key, const char *dst)
{
    struct storage_reader *rd = NULL;
    struct storage_writer *w = NULL;
    char *buf = malloc(COPY_CHUNK);
    enum storage_err err = buf ? st->ops->reader_open(st, key, &rd) : STORAGE_NO_MEMORY;
    size_t n;

    if (err == STORAGE_OK)
        err = st->ops->writer_open(st, &w);
    while (err == STORAGE_OK &&
           (err = st->ops->reader_read(rd, buf, COPY_CHUNK, &n)) == STORAGE_OK && n > 0)
        err = st->ops->writer_write(w, buf, n);
    if (err == STORAGE_OK)
        err = st->ops->writer_commit(w, dst);
    else if (w != NULL)
        st->ops->writer_abort(w);
    if (rd != NULL)
        st->ops->reader_close(rd);
    free(buf);
    return err;
}

/* Moves a corrupt blob to quarantine/; true when it is out of blobs/. */
static bool quarantine(struct storage *st, struct oci_evictor *e, const struct oci_listing_item *it)
{
    char dst[OCI_CACHE_KEY_MAX];

    snprintf(dst, sizeof(dst), OCI_INVENTORY_QUARANTINE "%s", it->key + strlen("blobs/"));
    if (copy_object(st, it->key, dst) != STORAGE_OK || st->ops->remove(st, it->key) != STORAGE_OK)
        return false;
    oci_evict_removed(e, it->info.size);
    return true;
}

enum storage_err oci_inventory_verify(struct storage *st, struct oci_evictor *e, bool repair,
                                      oci_inventory_progress_fn progress, void *arg,
                                      struct oci_inventory_verified *out)
{
    struct oci_listing l = {0};
    struct oci_digest d;
    enum storage_err err;
    size_t i;

    memset(out, 0, sizeof(*out));
    err = oci_listing_collect(st, "blobs/", &l);
    for (i = 0; err == STORAGE_OK && i < l.n; i++) {
        const struct oci_listing_item *it = &l.v[i];
        struct storage_info now;
        enum storage_err v = oci_cache_blob_digest(it->key, &d) ? oci_cache_verify(st, it->key, &d)
                                                                : STORAGE_NOT_FOUND;
        bool bad = v == STORAGE_NOT_FOUND;

        if (bad && st->ops->stat(st, it->key, &now) == STORAGE_NOT_FOUND)
            continue;                  /* evicted or removed since the listing */
        if (v != STORAGE_OK && !bad) { /* could not read it: not a verdict on the content */
            err = v;
            break;
        }
        out->checked++;
        out->bytes += it->info.size;
        if (bad) {
            out->corrupt++;
            if (repair && quarantine(st, e, it))
                out->quarantined++;
        }
        if (progress != NULL)
            progress(arg, i + 1, l.n, bad ? it->key : NULL);
    }
    oci_listing_free(&l);
    return err;
}
