/*
 * test_upload.c - hosted namespaces through the request pipeline, on a
 * real fs storage in a mkdtemp directory: who may write, blob uploads
 * (sessions, chunks, monolithic, mounts), manifest pushes, tags, deletes,
 * referrers, the catalog, and what cleanup keeps.
 *
 * Request bodies come from a source that gives at most a few bytes per
 * read, so every body is taken in many pieces, as from a slow client.
 */
#define _GNU_SOURCE /* nftw */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/ops/cleanup.h"
#include "core/cache/evict.h"
#include "core/registry.h"
#include "storage/fs.h"
#include "tests/unit/scratch.h"

static const char config_yaml[] = "- namespace: hosted.test\n"
                                  "  hosted: true\n"
                                  "  delete: true\n"
                                  "- namespace: open.test\n"
                                  "  hosted: true\n"
                                  "  anonymous_push: true\n"
                                  "- namespace: mirror.test\n"
                                  "  host: 127.0.0.1:9\n"
                                  "  tls: false\n";

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define DAY          (24L * 60 * 60)

struct fixture {
    char root[PATH_MAX];
    struct oci_config config;
    struct oci_registry reg;
    struct oci_plan plan;
};

/* A body given out a few bytes at a time; fail_at >= 0: the client goes away there. */
struct body {
    const char *data;
    size_t len, pos;
    long fail_at;
};

static long body_read(void *ctx, void *buf, size_t len)
{
    struct body *b = ctx;
    size_t n = b->len - b->pos;

    if (b->fail_at >= 0 && b->pos >= (size_t)b->fail_at)
        return -1;
    n = n < len ? n : len;
    n = n < 3 ? n : 3;
    memcpy(buf, b->data + b->pos, n);
    b->pos += n;
    return (long)n;
}

/* A registry on a fresh fs storage in a scratch directory, with config_yaml. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";
    bool ok = f != NULL && scratch_make("test_upload", f->root, sizeof(f->root)) &&
              oci_config_parse(config_yaml, strlen(config_yaml), "test.yaml", &f->config, err,
                               sizeof(err)) &&
              (f->reg.storage = storage_fs_open(f->root, err, sizeof(err))) != NULL;

    if (!ok) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    f->reg.config = &f->config;
    f->reg.options.default_namespace = "hosted.test";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->reg.storage;

    scratch_remove(f->root); /* the storage keeps no file open between requests */
    st->ops->destroy(st);
    oci_plan_release(&f->plan);
    oci_config_free(&f->config);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

struct call {
    const char *method, *path, *query;
    const char *body;  /* NULL: none */
    const char *range; /* Content-Range */
    const char *type;  /* Content-Type */
    const char *user;  /* REMOTE_USER; "-" for none */
    long fail_at;      /* the client goes away after this many body bytes; 0: never */
};

static struct oci_plan *run(struct fixture *f, struct call c)
{
    struct body b = {c.body, c.body ? strlen(c.body) : 0, 0, c.fail_at > 0 ? c.fail_at : -1};
    struct oci_source src = {&b, body_read};
    struct oci_request req = {
        .method = c.method,
        .path = c.path,
        .query = c.query,
        .remote_user = c.user == NULL             ? "alice"
                       : strcmp(c.user, "-") == 0 ? NULL
                                                  : c.user,
        .content_length = c.body ? (int64_t)b.len : -1,
        .content_range = c.range,
        .content_type = c.type,
        .body = c.body ? &src : NULL,
    };

    oci_plan_release(&f->plan);
    oci_registry_plan(&f->reg, &req, &f->plan);
    return &f->plan;
}

#define RUN(f, m, p, ...) run(f, (struct call){.method = (m), .path = (p), __VA_ARGS__})

/* The value of an extra header of the answer, or NULL. */
static const char *extra(const struct oci_plan *p, const char *name)
{
    for (size_t i = 0; i < p->head.extra_count; i++) {
        if (strcmp(p->head.extra[i].name, name) == 0)
            return p->head.extra[i].value;
    }
    return NULL;
}

static void assert_error(const struct oci_plan *p, int status, const char *code)
{
    assert_int_equal(p->kind, OCI_PLAN_RESPOND);
    assert_int_equal(p->head.status, status);
    assert_non_null(p->body);
    if (strstr(p->body, code) == NULL)
        fail_msg("body %s has no %s", p->body, code);
}

static const char *digest_of(const char *content, char buf[OCI_DIGEST_STRING_MAX])
{
    struct oci_digest d;

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, content, strlen(content), &d));
    oci_digest_format(&d, buf);
    return buf;
}

/* Starts a session; its path ("/v2/<name>/blobs/uploads/<id>") goes into path. */
static void start_session(struct fixture *f, const char *name, char path[256])
{
    char post[256];
    struct oci_plan *p;

    snprintf(post, 256, "/v2/%s/blobs/uploads/", name);
    p = RUN(f, "POST", post);
    assert_int_equal(p->head.status, 202);
    assert_non_null(extra(p, "Location"));
    assert_string_equal(extra(p, "Range"), "0-0");
    assert_int_equal(strlen(extra(p, "Docker-Upload-UUID")), 32);
    snprintf(path, 256, "%s", extra(p, "Location"));
    assert_non_null(strstr(path, extra(p, "Docker-Upload-UUID")));
}

/* Pushes content as a blob of name in one POST. */
static void push_blob(struct fixture *f, const char *name, const char *content)
{
    char path[256], query[128], d[OCI_DIGEST_STRING_MAX];

    snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", name);
    snprintf(query, sizeof(query), "digest=%s", digest_of(content, d));
    assert_int_equal(RUN(f, "POST", path, .query = query, .body = content)->head.status, 201);
}

static char *image_manifest(const char *config, const char *layer, const char *subject)
{
    char dc[OCI_DIGEST_STRING_MAX], dl[OCI_DIGEST_STRING_MAX], ds[512] = "";
    char *m = malloc(2048);

    if (subject != NULL)
        snprintf(ds, sizeof(ds),
                 ",\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":1}",
                 subject);
    snprintf(m, 2048,
             "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
             "\"config\":{\"mediaType\":\"application/x.test\",\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[{\"mediaType\":\"application/x.layer\",\"digest\":\"%s\",\"size\":%zu}]"
             "%s}",
             digest_of(config, dc), strlen(config), digest_of(layer, dl), strlen(layer), ds);
    return m;
}

/* Whether the fs storage still has the folder of upload session id. */
static bool dir_exists(struct fixture *f, const char *id)
{
    char dir[PATH_MAX + 64];
    struct stat sb;

    snprintf(dir, sizeof(dir), "%s/uploads/%s", f->root, id);
    return stat(dir, &sb) == 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_config(void **state)
{
    struct oci_config cfg;
    char err[256];

    (void)state;
    assert_false(oci_config_parse("- namespace: a.test\n  hosted: true\n  host: x.test\n", 48,
                                  "t.yaml", &cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "hosted namespace has no 'host'"));
    assert_false(oci_config_parse("- namespace: a.test\n", 20, "t.yaml", &cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "without 'host'"));
}

/* Only an authenticated user writes, unless the namespace takes anonymous pushes. */
static void test_who_may_write(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;

    p = RUN(f, "POST", "/v2/app/blobs/uploads/", .user = "-");
    assert_error(p, 401, "UNAUTHORIZED");
    assert_string_equal(extra(p, "WWW-Authenticate"), "Basic realm=\"oci-registry\"");
    assert_error(RUN(f, "PUT", "/v2/app/manifests/v1", .body = "{}", .user = ""), 401,
                 "UNAUTHORIZED");
    assert_int_equal(RUN(f, "POST", "/v2/open.test/app/blobs/uploads/", .user = "-")->head.status,
                     202);
    /* Reads are open. */
    assert_error(RUN(f, "GET", "/v2/app/manifests/v1", .user = "-"), 404, "MANIFEST_UNKNOWN");
    /* A mirrored namespace takes no write, whoever asks. */
    p = RUN(f, "POST", "/v2/mirror.test/app/blobs/uploads/");
    assert_error(p, 405, "UNSUPPORTED");
    assert_error(RUN(f, "PUT", "/v2/mirror.test/app/manifests/v1", .body = "{}"), 405,
                 "UNSUPPORTED");
    assert_error(RUN(f, "GET", "/v2/mirror.test/app/tags/list"), 404, "NOT_FOUND");
    assert_error(RUN(f, "POST", "/v2/"), 405, "UNSUPPORTED");
}

/* A chunked upload: in order, out of order, a lying range, progress, close. */
static void test_chunked_upload(void **state)
{
    struct fixture *f = *state;
    char path[256], query[200], d[OCI_DIGEST_STRING_MAX], blob[256];
    struct oci_plan *p;

    start_session(f, "app", path);
    p = RUN(f, "PATCH", path, .body = "hello ", .range = "0-5");
    assert_int_equal(p->head.status, 202);
    assert_string_equal(extra(p, "Range"), "0-5");
    /* Out of order and overlapping chunks: 416 with what the session holds. */
    p = RUN(f, "PATCH", path, .body = "xx", .range = "3-4");
    assert_error(p, 416, "BLOB_UPLOAD_INVALID");
    assert_string_equal(extra(p, "Range"), "0-5");
    p = RUN(f, "PATCH", path, .body = "xx", .range = "7-8");
    assert_int_equal(p->head.status, 416);
    /* A range that does not match the body's length, and a garbled one. */
    assert_int_equal(RUN(f, "PATCH", path, .body = "xyz", .range = "6-6")->head.status, 416);
    assert_int_equal(RUN(f, "PATCH", path, .body = "xyz", .range = "bogus")->head.status, 416);
    /* A client that goes away mid-chunk leaves nothing. */
    assert_int_equal(RUN(f, "PATCH", path, .body = "abcdefgh", .fail_at = 4)->head.status, 400);
    p = RUN(f, "GET", path);
    assert_int_equal(p->head.status, 204);
    assert_string_equal(extra(p, "Range"), "0-5");
    /* Without Content-Range, a chunk goes at the end. */
    assert_string_equal(extra(RUN(f, "PATCH", path, .body = "wor"), "Range"), "0-8");
    snprintf(query, sizeof(query), "digest=%s", digest_of("hello world", d));
    p = RUN(f, "PUT", path, .query = query, .body = "ld", .range = "9-10");
    assert_int_equal(p->head.status, 201);
    assert_string_equal(p->head.digest, d);
    snprintf(blob, sizeof(blob), "/v2/app/blobs/%s", d);
    assert_string_equal(extra(p, "Location"), blob);
    /* The session is gone; the blob is there. */
    assert_error(RUN(f, "GET", path), 404, "BLOB_UPLOAD_UNKNOWN");
    p = RUN(f, "GET", blob);
    assert_int_equal(p->kind, OCI_PLAN_SEND_STORED);
    assert_int_equal(p->head.content_length, 11);
    assert_string_equal(p->head.digest, d);
    /* Another repository does not hold it. */
    snprintf(blob, sizeof(blob), "/v2/other/blobs/%s", d);
    assert_error(RUN(f, "GET", blob), 404, "BLOB_UNKNOWN");
}

/* A closing digest that does not match leaves nothing visible. */
static void test_digest_mismatch(void **state)
{
    struct fixture *f = *state;
    char path[256], query[200], d[OCI_DIGEST_STRING_MAX], blob[256];

    start_session(f, "app", path);
    assert_int_equal(RUN(f, "PATCH", path, .body = "some bytes")->head.status, 202);
    snprintf(query, sizeof(query), "digest=%s", digest_of("other bytes", d));
    assert_error(RUN(f, "PUT", path, .query = query), 400, "DIGEST_INVALID");
    snprintf(blob, sizeof(blob), "/v2/app/blobs/%s", d);
    assert_error(RUN(f, "HEAD", blob), 404, "BLOB_UNKNOWN");
    digest_of("some bytes", d);
    snprintf(blob, sizeof(blob), "/v2/app/blobs/%s", d);
    assert_error(RUN(f, "HEAD", blob), 404, "BLOB_UNKNOWN");
    /* Missing and malformed digests. */
    start_session(f, "app", path);
    assert_error(RUN(f, "PUT", path), 400, "DIGEST_INVALID");
    assert_error(RUN(f, "PUT", path, .query = "digest=sha256:xyz"), 400, "DIGEST_INVALID");
    assert_error(RUN(f, "POST", "/v2/app/blobs/uploads/", .query = "digest=md5:abc", .body = "x"),
                 400, "DIGEST_INVALID");
    assert_true(dir_exists(f, strrchr(path, '/') + 1));
    assert_int_equal(RUN(f, "DELETE", path)->head.status, 204);
    assert_false(dir_exists(f, strrchr(path, '/') + 1));
    assert_error(RUN(f, "PATCH", path, .body = "x"), 404, "BLOB_UPLOAD_UNKNOWN");
}

/* Monolithic uploads, sha512 too, and mounts. */
static void test_monolithic_and_mount(void **state)
{
    struct fixture *f = *state;
    char query[300], d[OCI_DIGEST_STRING_MAX], d512[OCI_DIGEST_STRING_MAX], blob[300];
    struct oci_digest dg;
    struct oci_plan *p;

    push_blob(f, "app", "layer one");
    digest_of("layer one", d);
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA512, "big", 3, &dg));
    oci_digest_format(&dg, d512);
    snprintf(query, sizeof(query), "digest=%s", d512);
    assert_int_equal(
        RUN(f, "POST", "/v2/app/blobs/uploads/", .query = query, .body = "big")->head.status, 201);
    snprintf(blob, sizeof(blob), "/v2/app/blobs/%s", d512);
    assert_int_equal(RUN(f, "HEAD", blob)->kind, OCI_PLAN_SEND_STORED);
    /* Mount from a repository that holds it: 201; from one that does not: a session. */
    snprintf(query, sizeof(query), "mount=%s&from=app", d);
    p = RUN(f, "POST", "/v2/copy/blobs/uploads/", .query = query);
    assert_int_equal(p->head.status, 201);
    assert_string_equal(p->head.digest, d);
    snprintf(query, sizeof(query), "mount=%s&from=nothing", d);
    assert_int_equal(RUN(f, "POST", "/v2/copy2/blobs/uploads/", .query = query)->head.status, 202);
    snprintf(blob, sizeof(blob), "/v2/copy2/blobs/%s", d);
    assert_error(RUN(f, "HEAD", blob), 404, "BLOB_UNKNOWN");
    /* Without from, nothing is mounted, not even content the storage has: a session. */
    snprintf(query, sizeof(query), "mount=%s", d);
    assert_int_equal(RUN(f, "POST", "/v2/copy3/blobs/uploads/", .query = query)->head.status, 202);
    snprintf(blob, sizeof(blob), "/v2/copy3/blobs/%s", d);
    assert_error(RUN(f, "HEAD", blob), 404, "BLOB_UNKNOWN");
    assert_error(RUN(f, "POST", "/v2/copy/blobs/uploads/", .query = "mount=sha256:zz"), 400,
                 "DIGEST_INVALID");
    /* A body shorter than announced (the client went away) commits nothing. */
    digest_of("abcdefgh", d);
    snprintf(query, sizeof(query), "digest=%s", d);
    assert_int_equal(
        RUN(f, "POST", "/v2/app/blobs/uploads/", .query = query, .body = "abcdefgh", .fail_at = 3)
            ->head.status,
        400);
    snprintf(blob, sizeof(blob), "/v2/app/blobs/%s", d);
    assert_error(RUN(f, "HEAD", blob), 404, "BLOB_UNKNOWN");
}

static void test_manifest_push(void **state)
{
    struct fixture *f = *state;
    char *m = image_manifest("cfg", "layer", NULL);
    char d[OCI_DIGEST_STRING_MAX], path[300];
    struct oci_plan *p;

    /* Blobs not pushed yet. */
    assert_error(RUN(f, "PUT", "/v2/app/manifests/v1", .body = m, .type = OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN");
    push_blob(f, "app", "cfg");
    assert_error(RUN(f, "PUT", "/v2/app/manifests/v1", .body = m, .type = OCI_MANIFEST), 400,
                 "MANIFEST_BLOB_UNKNOWN");
    push_blob(f, "app", "layer");
    assert_error(RUN(f, "PUT", "/v2/app/manifests/v1", .body = "not json", .type = OCI_MANIFEST),
                 400, "MANIFEST_INVALID");
    assert_error(RUN(f, "PUT", "/v2/app/manifests/v1", .body = m, .type = OCI_INDEX), 400,
                 "MANIFEST_INVALID");
    assert_error(RUN(f, "PUT", "/v2/app/manifests/-bad", .body = m), 400, "TAG_INVALID");
    p = RUN(f, "PUT", "/v2/app/manifests/v1", .body = m, .type = OCI_MANIFEST);
    assert_int_equal(p->head.status, 201);
    assert_string_equal(p->head.digest, digest_of(m, d));
    snprintf(path, sizeof(path), "/v2/app/manifests/%s", d);
    assert_string_equal(extra(p, "Location"), path);
    /* Served as pushed, by tag and by digest; nothing in front may keep it. */
    p = RUN(f, "GET", "/v2/app/manifests/v1");
    assert_int_equal(p->head.status, 200);
    assert_memory_equal(p->body, m, strlen(m));
    assert_string_equal(p->head.content_type, OCI_MANIFEST);
    assert_int_equal(p->head.fresh_for, 0);
    assert_int_equal(RUN(f, "HEAD", path)->head.status, 200);
    /* By digest: the bytes must match it. */
    assert_int_equal(RUN(f, "PUT", path, .body = m)->head.status, 201);
    snprintf(path, sizeof(path), "/v2/app/manifests/%s", digest_of("x", d));
    assert_error(RUN(f, "PUT", path, .body = m), 400, "DIGEST_INVALID");
    free(m);
}

static void test_index_and_referrers(void **state)
{
    struct fixture *f = *state;
    char *m = image_manifest("cfg", "layer", NULL), *sig;
    char dm[OCI_DIGEST_STRING_MAX], ds[OCI_DIGEST_STRING_MAX], index[1024], path[300];
    struct oci_plan *p;

    push_blob(f, "app", "cfg");
    push_blob(f, "app", "layer");
    digest_of(m, dm);
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[{\"mediaType\":"
             "\"" OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu}]}",
             dm, strlen(m));
    assert_error(RUN(f, "PUT", "/v2/app/manifests/multi", .body = index), 400,
                 "MANIFEST_BLOB_UNKNOWN");
    assert_int_equal(RUN(f, "PUT", "/v2/app/manifests/v1", .body = m)->head.status, 201);
    assert_int_equal(RUN(f, "PUT", "/v2/app/manifests/multi", .body = index)->head.status, 201);
    /* A manifest with a subject. */
    sig = image_manifest("cfg", "layer", dm);
    p = RUN(f, "PUT", "/v2/app/manifests/sig", .body = sig);
    assert_int_equal(p->head.status, 201);
    assert_string_equal(extra(p, "OCI-Subject"), dm);
    snprintf(path, sizeof(path), "/v2/app/referrers/%s", dm);
    p = RUN(f, "GET", path);
    assert_int_equal(p->head.status, 200);
    assert_string_equal(p->head.content_type, OCI_INDEX);
    assert_non_null(strstr(p->body, digest_of(sig, ds)));
    assert_non_null(strstr(p->body, "\"artifactType\":\"application/x.test\""));
    assert_null(extra(p, "OCI-Filters-Applied"));
    p = RUN(f, "GET", path, .query = "artifactType=application/x.other");
    assert_string_equal(extra(p, "OCI-Filters-Applied"), "artifactType");
    assert_null(strstr(p->body, ds));
    /* Deleting the referrer takes it out of the list. */
    snprintf(path, sizeof(path), "/v2/app/manifests/%s", ds);
    assert_int_equal(RUN(f, "DELETE", path)->head.status, 202);
    snprintf(path, sizeof(path), "/v2/app/referrers/%s", dm);
    assert_null(strstr(RUN(f, "GET", path)->body, ds));
    free(sig);
    free(m);
}

static void test_tags_and_catalog(void **state)
{
    struct fixture *f = *state;
    static const char *const tags[] = {"b", "a", "c", "d"};
    char *m = image_manifest("cfg", "layer", NULL);
    struct oci_plan *p;

    push_blob(f, "org/app", "cfg");
    push_blob(f, "org/app", "layer");
    for (size_t i = 0; i < 4; i++) {
        char path[100];

        snprintf(path, sizeof(path), "/v2/org/app/manifests/%s", tags[i]);
        assert_int_equal(RUN(f, "PUT", path, .body = m)->head.status, 201);
    }
    push_blob(f, "org/zzz", "cfg");
    p = RUN(f, "GET", "/v2/org/app/tags/list");
    assert_string_equal(p->body, "{\"name\":\"org/app\",\"tags\":[\"a\",\"b\",\"c\",\"d\"]}");
    assert_null(extra(p, "Link"));
    p = RUN(f, "GET", "/v2/org/app/tags/list", .query = "n=2");
    assert_string_equal(p->body, "{\"name\":\"org/app\",\"tags\":[\"a\",\"b\"]}");
    assert_string_equal(extra(p, "Link"), "</v2/org/app/tags/list?n=2&last=b>; rel=\"next\"");
    p = RUN(f, "GET", "/v2/org/app/tags/list", .query = "n=2&last=b");
    assert_string_equal(p->body, "{\"name\":\"org/app\",\"tags\":[\"c\",\"d\"]}");
    assert_null(extra(p, "Link"));
    assert_error(RUN(f, "GET", "/v2/org/app/tags/list", .query = "n=x"), 400, "PARAM_INVALID");
    p = RUN(f, "GET", "/v2/_catalog", .query = "n=1");
    assert_string_equal(p->body, "{\"repositories\":[\"org/app\"]}");
    assert_string_equal(extra(p, "Link"), "</v2/_catalog?n=1&last=org/app>; rel=\"next\"");
    p = RUN(f, "GET", "/v2/_catalog", .query = "n=1&last=org/app");
    assert_string_equal(p->body, "{\"repositories\":[\"org/zzz\"]}");
    /* Deletes: a tag, then 404; the manifest by digest takes its other tags along. */
    assert_int_equal(RUN(f, "DELETE", "/v2/org/app/manifests/a")->head.status, 202);
    assert_error(RUN(f, "DELETE", "/v2/org/app/manifests/a"), 404, "MANIFEST_UNKNOWN");
    assert_error(RUN(f, "GET", "/v2/org/app/manifests/a"), 404, "MANIFEST_UNKNOWN");
    {
        char d[OCI_DIGEST_STRING_MAX], path[300];

        snprintf(path, sizeof(path), "/v2/org/app/manifests/%s", digest_of(m, d));
        assert_int_equal(RUN(f, "DELETE", path)->head.status, 202);
        assert_string_equal(RUN(f, "GET", "/v2/org/app/tags/list")->body,
                            "{\"name\":\"org/app\",\"tags\":[]}");
        snprintf(path, sizeof(path), "/v2/org/app/blobs/%s", digest_of("cfg", d));
        assert_int_equal(RUN(f, "DELETE", path)->head.status, 202);
        assert_error(RUN(f, "DELETE", path), 404, "BLOB_UNKNOWN");
        /* Deletes are off unless the entry allows them. */
        snprintf(path, sizeof(path), "/v2/open.test/org/app/blobs/%s", d);
        assert_error(RUN(f, "DELETE", path), 405, "UNSUPPORTED");
    }
    free(m);
}

/* Sets a key's times to long ago. */
static void age(struct fixture *f, const char *key)
{
    char path[PATH_MAX + 300];
    struct timespec times[2] = {{time(NULL) - 400 * DAY, 0}, {time(NULL) - 400 * DAY, 0}};

    snprintf(path, sizeof(path), "%s/%s", f->root, key);
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static bool exists(struct fixture *f, const char *key)
{
    struct storage_info info;

    return f->reg.storage->ops->stat(f->reg.storage, key, &info) == STORAGE_OK;
}

/*
 * A blob pushed to hosted.test/app ("kept", its key into key) and a cached
 * one ("blobs/sha256/aa/aaaa"), both last used long ago.
 */
static void old_hosted_and_cached(struct fixture *f, char key[300])
{
    struct storage *st = f->reg.storage;
    char d[OCI_DIGEST_STRING_MAX];

    push_blob(f, "app", "kept");
    assert_int_equal(st->ops->put_small(st, "blobs/sha256/aa/aaaa", "cached", 6), STORAGE_OK);
    digest_of("kept", d);
    snprintf(key, 300, "blobs/sha256/%.2s/%s", d + 7, d + 7);
    age(f, key);
    age(f, "blobs/sha256/aa/aaaa");
}

/* Cleanup keeps what hosted repositories hold and removes abandoned sessions. */
static void test_cleanup(void **state)
{
    struct fixture *f = *state;
    struct oci_cleanup_stats stats;
    char path[256], id[40], key[300], hosted[300];

    old_hosted_and_cached(f, hosted);
    start_session(f, "app", path);
    assert_int_equal(RUN(f, "PATCH", path, .body = "part")->head.status, 202);
    snprintf(id, sizeof(id), "%s", strrchr(path, '/') + 1);
    snprintf(key, sizeof(key), "uploads/%s/state", id);
    /* Old cached content goes, old hosted content stays, a fresh session stays. */
    oci_cleanup_run(&f->reg, time(NULL), &stats);
    assert_int_equal(stats.blobs, 1);
    assert_false(exists(f, "blobs/sha256/aa/aaaa"));
    assert_int_equal(stats.uploads, 0);
    assert_true(exists(f, key));
    age(f, key);
    snprintf(key, sizeof(key), "uploads/%s/%020d", id, 0);
    age(f, key);
    oci_cleanup_run(&f->reg, time(NULL), &stats);
    assert_true(exists(f, hosted));
    assert_int_equal(stats.uploads, 2);
    assert_false(dir_exists(f, strrchr(path, '/') + 1)); /* its folder went too */
    assert_error(RUN(f, "GET", path), 404, "BLOB_UPLOAD_UNKNOWN");
}

/* Eviction down to nothing takes cached content and leaves what hosted repositories hold. */
static void test_eviction_keeps_hosted(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->reg.storage;
    struct oci_evictor e = {.min_age = 0};
    struct oci_evict_stats stats;
    char usage[PATH_MAX + 16], err[256], key[300];

    snprintf(usage, sizeof(usage), "%s/.usage", f->root);
    e.usage = oci_usage_open(usage, err, sizeof(err));
    assert_non_null(e.usage);
    old_hosted_and_cached(f, key);
    assert_int_equal(oci_evict_run(st, &e, 0, time(NULL), &stats), STORAGE_OK);
    assert_int_equal(stats.evicted_objects, 1);
    assert_false(exists(f, "blobs/sha256/aa/aaaa"));
    assert_true(exists(f, key));
    oci_usage_close(e.usage);
}

/* --upload-lifetime: a session idle for longer is removed, a fresher one stays. */
static void test_upload_lifetime(void **state)
{
    struct fixture *f = *state;
    struct oci_cleanup_stats stats;
    char path[256], key[300], file[PATH_MAX + 400];
    struct timespec two_minutes_ago[2] = {{time(NULL) - 120, 0}, {time(NULL) - 120, 0}};

    start_session(f, "app", path);
    snprintf(key, sizeof(key), "uploads/%s/state", strrchr(path, '/') + 1);
    snprintf(file, sizeof(file), "%s/%s", f->root, key);
    assert_int_equal(utimensat(AT_FDCWD, file, two_minutes_ago, 0), 0);
    f->reg.options.upload_lifetime = 180;
    oci_cleanup_run(&f->reg, time(NULL), &stats);
    assert_true(exists(f, key));
    f->reg.options.upload_lifetime = 60;
    oci_cleanup_run(&f->reg, time(NULL), &stats);
    assert_int_equal(stats.uploads, 1);
    assert_false(exists(f, key));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_who_may_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monolithic_and_mount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_and_referrers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_and_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_lifetime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_keeps_hosted, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
