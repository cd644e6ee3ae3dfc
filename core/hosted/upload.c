/*
 * upload.c - upload sessions in storage, and the pouring of request bodies
 * into storage writers (see upload.h).
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/cache/evict.h"
#include "core/cache/repo.h"
#include "core/hosted/upload.h"
#include "util/log.h"

#define POUR_CHUNK    (128 * 1024)
#define STATE_MAX     (OCI_NAMESPACE_MAX + OCI_NAME_MAX + 32)
#define OFFSET_DIGITS 20
#define CHUNKS_MAX    100000 /* a session of more chunks than this is refused */

struct session {
    char id[OCI_UPLOAD_ID_LEN + 1];
    uint64_t size; /* bytes received so far */
};

/* ---- keys and state ------------------------------------------------------ */

static void session_key(const char *id, const char *leaf, char key[OCI_CACHE_KEY_MAX])
{
    snprintf(key, OCI_CACHE_KEY_MAX, "uploads/%s/%s", id, leaf);
}

static void chunk_key(const char *id, uint64_t offset, char key[OCI_CACHE_KEY_MAX])
{
    char leaf[OFFSET_DIGITS + 1];

    snprintf(leaf, sizeof(leaf), "%0*" PRIu64, OFFSET_DIGITS, offset);
    session_key(id, leaf, key);
}

static enum storage_err state_write(struct storage *st, const struct oci_route *route,
                                    const struct session *s)
{
    char key[OCI_CACHE_KEY_MAX], line[STATE_MAX];
    int len = snprintf(line, sizeof(line), "%s %s %" PRIu64 "\n", route->namespace_, route->name,
                       s->size);

    session_key(s->id, "state", key);
    return st->ops->put_small(st, key, line, (size_t)len);
}

/* The session of route's id, when it is one of route's repository. */
static bool state_read(struct storage *st, const struct oci_route *route, struct session *s)
{
    char key[OCI_CACHE_KEY_MAX], ns[OCI_NAMESPACE_MAX + 1], name[OCI_NAME_MAX + 1];
    char *line;
    size_t len;
    bool ok;

    memcpy(s->id, route->reference, OCI_UPLOAD_ID_LEN); /* the route checked it */
    s->id[OCI_UPLOAD_ID_LEN] = '\0';
    session_key(s->id, "state", key);
    if (st->ops->read_small(st, key, STATE_MAX, &line, &len, NULL) != STORAGE_OK)
        return false;
    ok = sscanf(line, "%255s %255s %" SCNu64, ns, name, &s->size) == 3 &&
         strcmp(ns, route->namespace_) == 0 && strcmp(name, route->name) == 0;
    free(line);
    return ok;
}

/* ---- answers --------------------------------------------------------------- */

/* route's "/v2/<name as the client sent it>", then suffix, then "?ns=" if it used one. */
static void add_location(struct oci_plan *plan, const char *path, const char *suffix)
{
    const struct oci_route *r = &plan->route;

    oci_head_add(&plan->head, "Location", "%.*s%s%s%s", (int)r->name_path_len, path, suffix,
                 r->ns_in_query ? "?ns=" : "", r->ns_in_query ? r->namespace_ : "");
}

/* The spec's Range of what a session holds: "0-<last byte>", "0-0" when empty. */
static void add_range(struct oci_plan *plan, uint64_t size)
{
    oci_head_add(&plan->head, "Range", "0-%" PRIu64, size > 0 ? size - 1 : 0);
}

/* 202 or 204 with where the session is and what it holds. */
static void answer_session(struct oci_plan *plan, const char *path, int status,
                           const struct session *s)
{
    char suffix[sizeof("/blobs/uploads/") + OCI_UPLOAD_ID_LEN];

    oci_plan_respond(plan, status, NULL, "");
    snprintf(suffix, sizeof(suffix), "/blobs/uploads/%s", s->id);
    add_location(plan, path, suffix);
    oci_head_add(&plan->head, "Docker-Upload-UUID", "%s", s->id);
    add_range(plan, s->size);
}

/* 201: the blob is in the repository. */
static void answer_blob(struct oci_plan *plan, const char *path, const struct oci_digest *digest)
{
    char suffix[sizeof("/blobs/") + OCI_DIGEST_STRING_MAX];

    oci_plan_respond(plan, 201, NULL, "");
    oci_digest_format(digest, plan->head.digest);
    snprintf(suffix, sizeof(suffix), "/blobs/%s", plan->head.digest);
    add_location(plan, path, suffix);
}

static void answer_storage_error(struct oci_plan *plan, enum storage_err err)
{
    oci_log(OCI_LOG_ERROR, "upload: storage: %s", storage_strerror(err));
    oci_plan_error(plan, OCI_E_UNAVAILABLE, "storage failed");
}

/* ---- pouring bytes --------------------------------------------------------- */

struct stored_source {
    struct storage *st;
    struct storage_reader *reader;
};

/* A stored chunk as a source, to pour it into the blob. */
static long stored_read(void *ctx, void *buf, size_t len)
{
    struct stored_source *src = ctx;
    size_t got;

    if (src->st->ops->reader_read(src->reader, buf, len, &got) != STORAGE_OK)
        return -1;
    return (long)got;
}

/*
 * Pours src into w (and h, when not NULL) to its end; *n counts the bytes.
 * OCI_E_BLOB_UPLOAD_INVALID when the source fails (the client went away, a
 * chunk could not be read), OCI_E_UNAVAILABLE when storage does.
 */
static enum oci_error pour(struct storage *st, const struct oci_source *src,
                           struct storage_writer *w, struct oci_hasher *h, uint64_t *n)
{
    char *buf = malloc(POUR_CHUNK);
    enum oci_error err = OCI_OK;
    long got;

    if (buf == NULL)
        return OCI_E_INTERNAL;
    while ((got = src->read(src->ctx, buf, POUR_CHUNK)) > 0) {
        if (h != NULL && !oci_hasher_update(h, buf, (size_t)got)) {
            err = OCI_E_INTERNAL;
            break;
        }
        if (st->ops->writer_write(w, buf, (size_t)got) != STORAGE_OK) {
            err = OCI_E_UNAVAILABLE;
            break;
        }
        *n += (uint64_t)got;
    }
    if (got < 0)
        err = OCI_E_BLOB_UPLOAD_INVALID;
    free(buf);
    return err;
}

/* ---- chunks ---------------------------------------------------------------- */

/* Parses "[bytes ]<start>-<end>[/<total>]". */
static bool parse_content_range(const char *s, uint64_t *start, uint64_t *end)
{
    int used = 0;

    if (strncmp(s, "bytes", 5) == 0)
        s += 5 + strspn(s + 5, " =");
    if (sscanf(s, "%" SCNu64 "-%" SCNu64 "%n", start, end, &used) != 2 || *end < *start)
        return false;
    return s[used] == '\0' || s[used] == '/';
}

/* The range a chunk claims must start where the session ends. */
static enum oci_error check_range(const struct oci_request *req, const struct session *s,
                                  bool *have, uint64_t *start, uint64_t *end)
{
    *have = req->content_range != NULL && req->content_range[0] != '\0';
    if (!*have)
        return OCI_OK;
    if (!parse_content_range(req->content_range, start, end))
        return OCI_E_RANGE_INVALID;
    return *start == s->size ? OCI_OK : OCI_E_RANGE_INVALID;
}

/* Appends the request's body, if any, to the session as one chunk. */
static enum oci_error append_chunk(struct storage *st, const struct oci_route *route,
                                   const struct oci_request *req, struct session *s)
{
    struct storage_writer *w;
    char key[OCI_CACHE_KEY_MAX];
    uint64_t start = 0, end = 0, n = 0;
    bool have_range;
    enum oci_error err = check_range(req, s, &have_range, &start, &end);

    if (err != OCI_OK || req->body == NULL || req->content_length == 0)
        return have_range && req->content_length == 0 ? OCI_E_RANGE_INVALID : err;
    if (st->ops->writer_open(st, &w) != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    err = pour(st, req->body, w, NULL, &n);
    if (err == OCI_OK && have_range && end - start + 1 != n)
        err = OCI_E_RANGE_INVALID;
    else if (err == OCI_OK && req->content_length >= 0 && n != (uint64_t)req->content_length)
        err = OCI_E_SIZE_INVALID;
    if (err != OCI_OK || n == 0) {
        st->ops->writer_abort(w);
        return err;
    }
    chunk_key(s->id, s->size, key);
    if (st->ops->writer_commit(w, key) != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    s->size += n;
    return state_write(st, route, s) == STORAGE_OK ? OCI_OK : OCI_E_UNAVAILABLE;
}

struct chunk {
    uint64_t offset, size;
};

struct chunk_list {
    struct chunk *items;
    size_t count;
    bool failed;
};

/* Collects the chunk objects of a session: leaves of OFFSET_DIGITS digits. */
static bool collect_chunk(void *arg, const char *key, const struct storage_info *info)
{
    struct chunk_list *list = arg;
    const char *leaf = strrchr(key, '/') + 1;
    struct chunk *grown;

    if (strlen(leaf) != OFFSET_DIGITS || strspn(leaf, "0123456789") != OFFSET_DIGITS)
        return true;
    grown =
        list->count < CHUNKS_MAX ? realloc(list->items, (list->count + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        list->failed = true;
        return false;
    }
    list->items = grown;
    list->items[list->count].offset = strtoull(leaf, NULL, 10);
    list->items[list->count++].size = info->size;
    return true;
}

static int chunk_cmp(const void *a, const void *b)
{
    const struct chunk *x = a, *y = b;

    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Pours one stored chunk into w and h. */
static enum oci_error pour_chunk(struct storage *st, const struct session *s, uint64_t offset,
                                 struct storage_writer *w, struct oci_hasher *h, uint64_t *n)
{
    char key[OCI_CACHE_KEY_MAX];
    struct stored_source src = {st, NULL};
    struct oci_source source = {&src, stored_read};
    enum oci_error err;

    chunk_key(s->id, offset, key);
    if (st->ops->reader_open(st, key, &src.reader) != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    err = pour(st, &source, w, h, n);
    st->ops->reader_close(src.reader);
    return err;
}

/* Pours the session's chunks, in order and without a gap, into w and h. */
static enum oci_error pour_session(struct storage *st, const struct session *s,
                                   struct storage_writer *w, struct oci_hasher *h)
{
    char prefix[OCI_CACHE_KEY_MAX];
    struct chunk_list list = {0};
    uint64_t pos = 0;
    enum oci_error err = OCI_OK;

    session_key(s->id, "", prefix);
    if (st->ops->list(st, prefix, collect_chunk, &list) != STORAGE_OK || list.failed) {
        free(list.items);
        return OCI_E_UNAVAILABLE;
    }
    if (list.count > 0) /* else items is NULL, which qsort must not get */
        qsort(list.items, list.count, sizeof(*list.items), chunk_cmp);
    /* A chunk at the end is one whose state was never written: not part of it. */
    for (size_t i = 0; err == OCI_OK && i < list.count && pos < s->size; i++) {
        if (list.items[i].offset != pos)
            err = OCI_E_BLOB_UPLOAD_INVALID;
        else
            err = pour_chunk(st, s, pos, w, h, &pos);
    }
    free(list.items);
    if (err == OCI_OK && pos != s->size)
        err = OCI_E_BLOB_UPLOAD_INVALID;
    if (err != OCI_OK)
        oci_log(OCI_LOG_ERROR, "upload %s: its chunks do not make up its %" PRIu64 " bytes", s->id,
                s->size);
    return err;
}

/* ---- blobs ----------------------------------------------------------------- */

/*
 * Pours what fill gives into a new object and commits it as the blob of
 * digest when it matches (and links it into route's repository); nothing
 * is visible otherwise.
 */
typedef enum oci_error (*fill_fn)(struct storage *st, const void *arg, struct storage_writer *w,
                                  struct oci_hasher *h, uint64_t *n);

static enum oci_error commit_blob(const struct oci_registry *reg, const struct oci_route *route,
                                  const struct oci_digest *digest, fill_fn fill, const void *arg)
{
    struct storage *st = reg->storage;
    struct storage_writer *w = NULL;
    struct oci_hasher *h = oci_hasher_new(digest->alg);
    struct oci_digest got;
    char key[OCI_CACHE_KEY_MAX];
    uint64_t n = 0;
    enum oci_error err = OCI_E_UNAVAILABLE;

    if (h == NULL)
        return OCI_E_INTERNAL;
    if (st->ops->writer_open(st, &w) != STORAGE_OK)
        goto done;
    err = fill(st, arg, w, h, &n);
    if (err == OCI_OK && (!oci_hasher_final(h, &got) || !oci_digest_equal(&got, digest)))
        err = OCI_E_DIGEST_INVALID;
    if (err != OCI_OK) {
        st->ops->writer_abort(w);
        goto done;
    }
    oci_cache_blob_key(digest, key);
    if (st->ops->writer_commit(w, key) != STORAGE_OK) {
        err = OCI_E_UNAVAILABLE;
        goto done;
    }
    oci_evict_committed(reg->evict, digest, n); /* counts toward the size bound */
    err = oci_repo_link_blob(st, route, digest) == STORAGE_OK ? OCI_OK : OCI_E_UNAVAILABLE;
done:
    oci_hasher_free(h);
    return err;
}

static enum oci_error fill_from_body(struct storage *st, const void *arg, struct storage_writer *w,
                                     struct oci_hasher *h, uint64_t *n)
{
    const struct oci_request *req = arg;
    enum oci_error err;

    if (req->body == NULL)
        return OCI_OK;
    err = pour(st, req->body, w, h, n);
    if (err == OCI_OK && req->content_length >= 0 && *n != (uint64_t)req->content_length)
        err = OCI_E_SIZE_INVALID;
    return err;
}

static enum oci_error fill_from_session(struct storage *st, const void *arg,
                                        struct storage_writer *w, struct oci_hasher *h, uint64_t *n)
{
    const struct session *s = arg;

    *n = s->size;
    return pour_session(st, s, w, h);
}

/* The "digest" query parameter; false with plan answered when it is missing or bad. */
static bool query_digest(const struct oci_request *req, struct oci_plan *plan, const char *param,
                         struct oci_digest *digest, bool *found)
{
    char value[OCI_DIGEST_STRING_MAX + 1];

    if (!oci_query_param(req->query, param, value, sizeof(value), found) ||
        (*found && oci_digest_parse(value, strlen(value), digest) != OCI_OK)) {
        oci_plan_error(plan, OCI_E_DIGEST_INVALID,
                       "the digest parameter is not a sha256 or sha512 digest");
        return false;
    }
    return true;
}

/* ---- sessions ---------------------------------------------------------------- */

static bool remove_object(void *arg, const char *key, const struct storage_info *info)
{
    struct storage *st = arg;

    (void)info;
    if (strcmp(strrchr(key, '/'), "/state") != 0)
        st->ops->remove(st, key);
    return true;
}

/* Forgets the folder of a session that is gone. */
static void session_prune(struct storage *st, const char *id)
{
    char prefix[OCI_CACHE_KEY_MAX];

    session_key(id, "", prefix);
    if (st->ops->prune != NULL)
        st->ops->prune(st, prefix);
}

/* Removes a session: its chunks, then its state, then its folder. */
static void session_remove(struct storage *st, const struct session *s)
{
    char key[OCI_CACHE_KEY_MAX];

    session_key(s->id, "", key);
    st->ops->list(st, key, remove_object, st);
    session_key(s->id, "state", key);
    st->ops->remove(st, key);
    session_prune(st, s->id);
}

static void session_new(const struct oci_registry *reg, const struct oci_request *req,
                        struct oci_plan *plan)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[OCI_UPLOAD_ID_LEN / 2];
    struct session s = {.size = 0};
    enum storage_err err;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        oci_plan_error(plan, OCI_E_INTERNAL, "no randomness for an upload id");
        return;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        s.id[2 * i] = hex[raw[i] >> 4];
        s.id[2 * i + 1] = hex[raw[i] & 15];
    }
    err = state_write(reg->storage, &plan->route, &s);
    if (err != STORAGE_OK)
        answer_storage_error(plan, err);
    else
        answer_session(plan, req->path, 202, &s);
}

/* ?mount=D[&from=R]: true when the blob was mounted (plan answered) or plan holds an error. */
static bool try_mount(const struct oci_registry *reg, const struct oci_request *req,
                      struct oci_plan *plan)
{
    struct storage *st = reg->storage;
    struct oci_route from = plan->route;
    struct oci_digest digest;
    struct storage_info info;
    char from_name[OCI_NAMESPACE_MAX + 1 + OCI_NAME_MAX + 1];
    bool found, from_found;

    if (!query_digest(req, plan, "mount", &digest, &found))
        return true;
    if (!found)
        return false;
    /* "from" names a repository as a path does ("hosted.test/myorg/app" or,
     * in the default namespace, "myorg/app"). */
    if (!oci_query_param(req->query, "from", from_name, sizeof(from_name), &from_found) ||
        (from_found && oci_route_repository(from_name, req->query, reg->options.default_namespace,
                                            &from) != OCI_OK)) {
        oci_plan_error(plan, OCI_E_NAME_INVALID, "from is not a repository name");
        return true;
    }
    /* Namespaces share no repositories: a mount from another one is an
     * upload (202). So is a mount without "from" (no automatic content
     * discovery, as distribution): the storage holds other namespaces'
     * pushed blobs and the mirrors' cached ones, whose reads the front
     * server may guard, and a digest alone must not link them here. */
    if (!from_found || strcmp(from.namespace_, plan->route.namespace_) != 0)
        return false;
    if (!oci_repo_has_blob(st, &from, &digest, &info))
        return false;
    if (oci_repo_link_blob(st, &plan->route, &digest) != STORAGE_OK)
        oci_plan_error(plan, OCI_E_UNAVAILABLE, "storage failed");
    else
        answer_blob(plan, req->path, &digest);
    return true;
}

void oci_upload_start(const struct oci_registry *reg, const struct oci_request *req,
                      struct oci_plan *plan)
{
    struct oci_digest digest;
    enum oci_error err;
    bool found;

    if (try_mount(reg, req, plan) || !query_digest(req, plan, "digest", &digest, &found))
        return;
    if (!found) {
        session_new(reg, req, plan);
        return;
    }
    err = commit_blob(reg, &plan->route, &digest, fill_from_body, req);
    if (err != OCI_OK)
        oci_plan_error(plan, err,
                       err == OCI_E_DIGEST_INVALID ? "the body does not match the digest" : NULL);
    else
        answer_blob(plan, req->path, &digest);
}

/* Answers a failed chunk: a 416 says what the session holds. */
static void chunk_error(struct oci_plan *plan, enum oci_error err, const struct session *s)
{
    oci_plan_error(plan, err,
                   err == OCI_E_RANGE_INVALID  ? "Content-Range does not continue the upload"
                   : err == OCI_E_SIZE_INVALID ? "the body is not Content-Length long"
                                               : NULL);
    if (err == OCI_E_RANGE_INVALID)
        add_range(plan, s->size);
}

static void session_close(const struct oci_registry *reg, const struct oci_request *req,
                          struct oci_plan *plan, struct session *s)
{
    struct oci_digest digest;
    enum oci_error err;
    bool found;

    if (!query_digest(req, plan, "digest", &digest, &found))
        return;
    if (!found) {
        oci_plan_error(plan, OCI_E_DIGEST_INVALID, "closing an upload needs ?digest=");
        return;
    }
    err = append_chunk(reg->storage, &plan->route, req, s);
    if (err != OCI_OK) {
        chunk_error(plan, err, s);
        return;
    }
    err = commit_blob(reg, &plan->route, &digest, fill_from_session, s);
    if (err == OCI_E_UNAVAILABLE || err == OCI_E_INTERNAL) {
        oci_plan_error(plan, err, NULL); /* the session stays: the client may try again */
        return;
    }
    session_remove(reg->storage, s);
    if (err != OCI_OK)
        oci_plan_error(plan, err,
                       err == OCI_E_DIGEST_INVALID ? "the upload does not match the digest" : NULL);
    else
        answer_blob(plan, req->path, &digest);
}

void oci_upload_session(const struct oci_registry *reg, const struct oci_request *req,
                        struct oci_plan *plan)
{
    struct session s;
    enum oci_error err;

    if (!state_read(reg->storage, &plan->route, &s)) {
        oci_plan_error(plan, OCI_E_BLOB_UPLOAD_UNKNOWN, NULL);
        return;
    }
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        answer_session(plan, req->path, 204, &s);
    } else if (strcmp(req->method, "PATCH") == 0) {
        err = append_chunk(reg->storage, &plan->route, req, &s);
        if (err != OCI_OK)
            chunk_error(plan, err, &s);
        else
            answer_session(plan, req->path, 202, &s);
    } else if (strcmp(req->method, "PUT") == 0) {
        session_close(reg, req, plan, &s);
    } else if (strcmp(req->method, "DELETE") == 0) {
        session_remove(reg->storage, &s);
        oci_plan_respond(plan, 204, NULL, "");
    } else {
        oci_plan_error(plan, OCI_E_UNSUPPORTED, NULL);
        plan->head.allow = "GET, HEAD, PATCH, PUT, DELETE";
    }
}

/* ---- expiry ------------------------------------------------------------------ */

struct expiry {
    struct storage *st;
    time_t cutoff;
    char id[OCI_UPLOAD_ID_LEN + 1]; /* the session last looked at */
    bool idle;                      /* and whether it is idle */
    unsigned long removed;
};

static bool expire_object(void *arg, const char *key, const struct storage_info *info)
{
    struct expiry *e = arg;
    const char *id = key + strlen("uploads/");
    char state[OCI_CACHE_KEY_MAX];
    struct storage_info si;

    if (strcspn(id, "/") != OCI_UPLOAD_ID_LEN || !oci_upload_id_valid(id, OCI_UPLOAD_ID_LEN))
        return true;
    if (memcmp(e->id, id, OCI_UPLOAD_ID_LEN) != 0) {
        if (e->idle) /* a listing goes folder by folder: the last one is done */
            session_prune(e->st, e->id);
        memcpy(e->id, id, OCI_UPLOAD_ID_LEN);
        session_key(e->id, "state", state);
        e->idle = e->st->ops->stat(e->st, state, &si) != STORAGE_OK || si.mtime < e->cutoff;
    }
    if (e->idle && info->mtime < e->cutoff &&
        e->st->ops->remove_stale(e->st, key, e->cutoff) == STORAGE_OK)
        e->removed++;
    return true;
}

unsigned long oci_upload_expire(struct storage *st, time_t cutoff)
{
    struct expiry e = {.st = st, .cutoff = cutoff};

    st->ops->list(st, "uploads/", expire_object, &e);
    if (e.idle)
        session_prune(st, e.id);
    return e.removed;
}
