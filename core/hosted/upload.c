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
#include "core/request/hashpipe.h"
#include "util/log.h"

#define POUR_CHUNK    (128 * 1024)
#define STATE_MAX     (OCI_NAMESPACE_MAX + OCI_NAME_MAX + 32)
#define OFFSET_DIGITS 20
#define CHUNKS_MAX    100000 /* a session of more chunks than this is refused */

struct session {
    char id[OCI_UPLOAD_ID_LEN + 1];
    uint64_t size;          /* bytes received so far */
    bool busy;              /* another request is writing to it (writer_resume) */
    enum storage_err fault; /* how storage failed, when it did */
};

/* True when the storage grows a session in one object, in place (storage.h). */
static bool in_place(const struct storage *st)
{
    return st->ops->writer_resume != NULL && st->ops->move != NULL;
}

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

/* In place, the data object's size is what the session holds (none yet: 0). */
static bool data_size(struct storage *st, struct session *s)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;
    enum storage_err err;

    session_key(s->id, "data", key);
    err = st->ops->stat(st, key, &info);
    s->size = err == STORAGE_OK ? info.size : 0;
    return err == STORAGE_OK || err == STORAGE_NOT_FOUND;
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
    s->busy = false;
    return ok && (!in_place(st) || data_size(st, s));
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

/* A stored object as a source, to hash it or pour it into the blob. */
static long stored_read(void *ctx, void *buf, size_t len)
{
    struct stored_source *src = ctx;
    size_t got;

    if (src->st->ops->reader_read(src->reader, buf, len, &got) != STORAGE_OK)
        return -1;
    return (long)got;
}

/*
 * Pours src into w (when not NULL) and h (when not NULL) to its end; *n
 * counts the bytes. OCI_E_BLOB_UPLOAD_INVALID when the source fails (the
 * client went away, an object could not be read), OCI_E_UNAVAILABLE when
 * storage does (s->fault says how).
 */
static enum oci_error pour(struct storage *st, const struct oci_source *src,
                           struct storage_writer *w, struct oci_hashpipe *h, uint64_t *n,
                           struct session *s)
{
    char *buf = malloc(POUR_CHUNK);
    enum oci_error err = OCI_OK;
    long got;

    if (buf == NULL)
        return OCI_E_INTERNAL;
    while ((got = src->read(src->ctx, buf, POUR_CHUNK)) > 0) {
        if (h != NULL && !oci_hashpipe_write(h, buf, (size_t)got)) {
            err = OCI_E_INTERNAL;
            break;
        }
        if (w != NULL && (s->fault = st->ops->writer_write(w, buf, (size_t)got)) != STORAGE_OK) {
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

/* Pours the stored object key into w and h. */
static enum oci_error pour_object(struct storage *st, const char *key, struct storage_writer *w,
                                  struct oci_hashpipe *h, uint64_t *n, struct session *s)
{
    struct stored_source src = {st, NULL};
    struct oci_source source = {&src, stored_read};
    enum oci_error err;

    if ((s->fault = st->ops->reader_open(st, key, &src.reader)) != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    err = pour(st, &source, w, h, n, s);
    st->ops->reader_close(src.reader);
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

/*
 * Pours the request's body, if any, into w (and h) after the s->size bytes
 * the session holds; the range a chunk claims must start there and be the
 * body's. s->size grows by what was poured.
 */
static enum oci_error append_body(struct storage *st, const struct oci_request *req,
                                  struct session *s, struct storage_writer *w,
                                  struct oci_hashpipe *h)
{
    uint64_t start = 0, end = 0, n = 0;
    bool have_range = req->content_range != NULL && req->content_range[0] != '\0';
    enum oci_error err;

    if (have_range && (!parse_content_range(req->content_range, &start, &end) || start != s->size))
        return OCI_E_RANGE_INVALID;
    if (req->body == NULL || req->content_length == 0)
        return have_range ? OCI_E_RANGE_INVALID : OCI_OK;
    err = pour(st, req->body, w, h, &n, s);
    if (err == OCI_OK && have_range && end - start + 1 != n)
        err = OCI_E_RANGE_INVALID;
    else if (err == OCI_OK && req->content_length >= 0 && n != (uint64_t)req->content_length)
        err = OCI_E_SIZE_INVALID;
    if (err == OCI_OK)
        s->size += n;
    return err;
}

/*
 * In place: takes the session's data object for this request alone, and
 * learns what it holds. Another request writing to it is a chunk that
 * does not continue the upload (yet).
 */
static enum oci_error data_resume(struct storage *st, struct session *s, struct storage_writer **w)
{
    char key[OCI_CACHE_KEY_MAX];

    session_key(s->id, "data", key);
    s->fault = st->ops->writer_resume(st, key, &s->size, w);
    s->busy = s->fault == STORAGE_IN_PROGRESS;
    return s->busy ? OCI_E_RANGE_INVALID : s->fault != STORAGE_OK ? OCI_E_UNAVAILABLE : OCI_OK;
}

/* Appends the request's body to the session's data object (in place). */
static enum oci_error append_in_place(struct storage *st, const struct oci_request *req,
                                      struct session *s)
{
    struct storage_writer *w;
    char key[OCI_CACHE_KEY_MAX];
    enum oci_error err = data_resume(st, s, &w);

    if (err != OCI_OK)
        return err;
    err = append_body(st, req, s, w, NULL);
    if (err != OCI_OK) {
        st->ops->writer_abort(w); /* what this request wrote goes */
        return err;
    }
    session_key(s->id, "data", key);
    st->ops->writer_commit(w, key);
    session_key(s->id, "state", key);
    return st->ops->touch(st, key) == STORAGE_OK ? OCI_OK : OCI_E_UNAVAILABLE; /* active */
}

/*
 * Storage that other hosts share (S3) has no lock to append under: the
 * session is leased while a chunk is written, so that of two PATCHes at
 * once one writes and the other gets 416 with what the session holds
 * (else both would write the chunk at the same offset and both be told
 * 202). The state is read again once the lease is ours. *lease NULL:
 * nothing to give back.
 */
static enum oci_error session_lease(struct storage *st, const struct oci_route *route,
                                    struct session *s, struct storage_lease **lease)
{
    char name[OCI_CACHE_KEY_MAX];

    *lease = NULL;
    if (st->ops->lease_take == NULL)
        return OCI_OK;
    session_key(s->id, "writing", name);
    s->fault = st->ops->lease_take(st, name, 0, lease);
    if (s->fault == STORAGE_IN_PROGRESS) {
        s->busy = true;
        return OCI_E_RANGE_INVALID;
    }
    if (s->fault != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    if (*lease == NULL) /* a server without leases: the state read before is as good */
        return OCI_OK;
    return state_read(st, route, s) ? OCI_OK : OCI_E_BLOB_UPLOAD_UNKNOWN;
}

/* Appends the request's body, if any, to the session as one more chunk object. */
static enum oci_error append_chunk_object(struct storage *st, const struct oci_route *route,
                                          const struct oci_request *req, struct session *s)
{
    struct storage_writer *w;
    char key[OCI_CACHE_KEY_MAX];
    uint64_t start = s->size;
    enum oci_error err;

    if ((s->fault = st->ops->writer_open(st, &w)) != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    err = append_body(st, req, s, w, NULL);
    if (err != OCI_OK || s->size == start) { /* a failure, or no body */
        st->ops->writer_abort(w);
        return err;
    }
    chunk_key(s->id, start, key);
    if ((s->fault = st->ops->writer_commit(w, key)) != STORAGE_OK ||
        (s->fault = state_write(st, route, s)) != STORAGE_OK)
        return OCI_E_UNAVAILABLE;
    return OCI_OK;
}

static enum oci_error append_object(struct storage *st, const struct oci_route *route,
                                    const struct oci_request *req, struct session *s)
{
    struct storage_lease *lease;
    enum oci_error err = session_lease(st, route, s, &lease);

    if (err == OCI_OK)
        err = append_chunk_object(st, route, req, s);
    if (lease != NULL)
        st->ops->lease_release(lease);
    return err;
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

/* Pours the session's chunk objects, in order and without a gap, into w and h. */
static enum oci_error pour_session(struct storage *st, struct session *s, struct storage_writer *w,
                                   struct oci_hashpipe *h)
{
    char key[OCI_CACHE_KEY_MAX];
    struct chunk_list list = {0};
    uint64_t pos = 0;
    enum oci_error err = OCI_OK;

    session_key(s->id, "", key);
    if (st->ops->list(st, key, collect_chunk, &list) != STORAGE_OK || list.failed) {
        free(list.items);
        return OCI_E_UNAVAILABLE;
    }
    if (list.count > 0) /* else items is NULL, which qsort must not get */
        qsort(list.items, list.count, sizeof(*list.items), chunk_cmp);
    /* A chunk at the end is one whose state was never written: not part of it. */
    for (size_t i = 0; err == OCI_OK && i < list.count && pos < s->size; i++) {
        chunk_key(s->id, pos, key);
        if (list.items[i].offset != pos)
            err = OCI_E_BLOB_UPLOAD_INVALID;
        else
            err = pour_object(st, key, w, h, &pos, s);
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

/* The blob of digest, n bytes, was committed: count it and link it into route's repository. */
static enum oci_error blob_committed(const struct oci_registry *reg, const struct oci_route *route,
                                     const struct oci_digest *digest, uint64_t n)
{
    oci_evict_committed(reg->evict, digest, n); /* counts toward the size bound */
    return oci_repo_link_blob(reg->storage, route, digest) == STORAGE_OK ? OCI_OK
                                                                         : OCI_E_UNAVAILABLE;
}

/*
 * Pours into a new object what the session has (chunk objects) and then
 * the request's body, and commits it as the blob of digest when it
 * matches (and links it into route's repository); nothing is visible
 * otherwise.
 */
static enum oci_error commit_blob(const struct oci_registry *reg, const struct oci_route *route,
                                  const struct oci_request *req, const struct oci_digest *digest,
                                  struct session *s)
{
    struct storage *st = reg->storage;
    struct storage_writer *w = NULL;
    struct oci_hashpipe *h = oci_hashpipe_new(digest->alg);
    struct oci_digest got;
    char key[OCI_CACHE_KEY_MAX];
    enum oci_error err = OCI_E_UNAVAILABLE;

    if (h == NULL)
        return OCI_E_INTERNAL;
    if ((s->fault = st->ops->writer_open(st, &w)) != STORAGE_OK)
        goto done;
    err = s->size > 0 ? pour_session(st, s, w, h) : OCI_OK;
    if (err == OCI_OK)
        err = append_body(st, req, s, w, h);
    if (err == OCI_OK && (!oci_hashpipe_finish(h, &got) || !oci_digest_equal(&got, digest)))
        err = OCI_E_DIGEST_INVALID;
    if (err != OCI_OK) {
        st->ops->writer_abort(w);
        goto done;
    }
    oci_cache_blob_key(digest, key);
    if ((s->fault = st->ops->writer_commit(w, key)) != STORAGE_OK)
        goto done;
    err = blob_committed(reg, route, digest, s->size);
done:
    oci_hashpipe_free(h);
    return err;
}

/*
 * In place: hashes what the session's data object holds, appends the
 * body hashing it too, and moves the object to the blob's key when it
 * matches digest - all while holding the object, so no other request
 * adds to it between the check and the move.
 */
static enum oci_error commit_in_place(const struct oci_registry *reg, const struct oci_route *route,
                                      const struct oci_request *req,
                                      const struct oci_digest *digest, struct session *s)
{
    struct storage *st = reg->storage;
    struct storage_writer *w;
    struct oci_hashpipe *h = oci_hashpipe_new(digest->alg);
    struct oci_digest got;
    char data[OCI_CACHE_KEY_MAX], key[OCI_CACHE_KEY_MAX];
    uint64_t n = 0;
    enum oci_error err = h == NULL ? OCI_E_INTERNAL : data_resume(st, s, &w);

    if (err != OCI_OK)
        goto done;
    session_key(s->id, "data", data);
    if (s->size > 0)
        err = pour_object(st, data, NULL, h, &n, s);
    if (err == OCI_OK && n != s->size)
        err = OCI_E_BLOB_UPLOAD_INVALID;
    if (err == OCI_OK)
        err = append_body(st, req, s, w, h);
    if (err != OCI_OK) {
        st->ops->writer_abort(w); /* the body goes; the session stays */
        goto done;
    }
    if (!oci_hashpipe_finish(h, &got) || !oci_digest_equal(&got, digest)) {
        err = OCI_E_DIGEST_INVALID;
    } else {
        oci_cache_blob_key(digest, key);
        if ((s->fault = st->ops->move(st, data, key)) != STORAGE_OK)
            err = OCI_E_UNAVAILABLE;
    }
    st->ops->writer_commit(w, data);
    if (err == OCI_OK)
        err = blob_committed(reg, route, digest, s->size);
done:
    oci_hashpipe_free(h);
    return err;
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

/*
 * Answers a failed upload step: a 416 says what the session holds; a full
 * storage is a fault of ours, which says so.
 */
static void upload_error(struct oci_plan *plan, enum oci_error err, const struct session *s)
{
    if (err == OCI_E_UNAVAILABLE && s->fault == STORAGE_FULL) {
        oci_plan_error(plan, OCI_E_INTERNAL, "the storage is full");
        return;
    }
    oci_plan_error(plan, err,
                   err == OCI_E_RANGE_INVALID && s->busy
                       ? "another request is writing to the upload"
                   : err == OCI_E_RANGE_INVALID  ? "Content-Range does not continue the upload"
                   : err == OCI_E_SIZE_INVALID   ? "the body is not Content-Length long"
                   : err == OCI_E_DIGEST_INVALID ? "the upload does not match the digest"
                   : err == OCI_E_UNAVAILABLE    ? "storage failed"
                                                 : NULL);
    if (err == OCI_E_RANGE_INVALID)
        add_range(plan, s->size);
}

void oci_upload_start(const struct oci_registry *reg, const struct oci_request *req,
                      struct oci_plan *plan)
{
    struct session whole = {.size = 0}; /* the body, as a session of one request */
    struct oci_digest digest;
    enum oci_error err;
    bool found;

    if (try_mount(reg, req, plan) || !query_digest(req, plan, "digest", &digest, &found))
        return;
    if (!found) {
        session_new(reg, req, plan);
        return;
    }
    err = commit_blob(reg, &plan->route, req, &digest, &whole);
    if (err != OCI_OK)
        upload_error(plan, err, &whole);
    else
        answer_blob(plan, req->path, &digest);
}

/*
 * PUT: the body, if any, is the last chunk; the whole is committed when it
 * matches the digest. The session stays when the body or storage failed
 * (the client may try again), and goes when the digest did not match.
 */
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
    err = in_place(reg->storage) ? commit_in_place(reg, &plan->route, req, &digest, s)
                                 : commit_blob(reg, &plan->route, req, &digest, s);
    if (err == OCI_OK || err == OCI_E_DIGEST_INVALID)
        session_remove(reg->storage, s);
    if (err != OCI_OK)
        upload_error(plan, err, s);
    else
        answer_blob(plan, req->path, &digest);
}

void oci_upload_session(const struct oci_registry *reg, const struct oci_request *req,
                        struct oci_plan *plan)
{
    struct storage *st = reg->storage;
    struct session s;
    enum oci_error err;

    if (!state_read(st, &plan->route, &s)) {
        oci_plan_error(plan, OCI_E_BLOB_UPLOAD_UNKNOWN, NULL);
        return;
    }
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        answer_session(plan, req->path, 204, &s);
    } else if (strcmp(req->method, "PATCH") == 0) {
        err =
            in_place(st) ? append_in_place(st, req, &s) : append_object(st, &plan->route, req, &s);
        if (err != OCI_OK)
            upload_error(plan, err, &s);
        else
            answer_session(plan, req->path, 202, &s);
    } else if (strcmp(req->method, "PUT") == 0) {
        session_close(reg, req, plan, &s);
    } else if (strcmp(req->method, "DELETE") == 0) {
        session_remove(st, &s);
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
