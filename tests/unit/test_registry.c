/*
 * test_registry.c - the request pipeline without a network: which plan each
 * request gets from what the cache holds, and what a fetch answers when the
 * upstream cannot be reached (127.0.0.1:1, refused at once).
 *
 * Every test gets a fresh fs cache in its own scratch directory (tests/unit/scratch.h).
 */

#define _GNU_SOURCE /* nftw, in scratch.h */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/scratch.h"
#include "core/ops/cleanup.h"
#include "core/plan/fetch.h"
#include "core/registry.h"
#include "storage/fs.h"

/* "reg.test" is only ever planned for; "down.test" is fetched from and refuses. */
static const char config_yaml[] = "- namespace: reg.test\n"
                                  "  host: 127.0.0.1:9\n"
                                  "  tls: false\n"
                                  "  manifest_invalidation_time: 1h\n"
                                  "- namespace: down.test\n"
                                  "  host: 127.0.0.1:1\n"
                                  "  tls: false\n"
                                  "  manifest_invalidation_time: 1h\n";

#define HOUR         (60 * 60)
#define MANIFEST     "{\"schemaVersion\":2}"
#define MANIFEST_BAD "{\"schemaVersion\":3}" /* same length, other bytes */
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define LAYER        "layer bytes"
#define LAYER_BAD    "layer bytez"

struct fixture {
    char root[PATH_MAX];
    struct oci_config config;
    struct oci_registry reg;
    struct oci_plan plan;
};

static int group_setup(void **state)
{
    struct oci_upstream_timeouts timeouts = {.connect = 5, .low_speed = 5};

    (void)state;
    if (!oci_upstream_global_init())
        return -1;
    oci_upstream_set_timeouts(&timeouts);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    oci_upstream_global_cleanup();
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    if (f == NULL)
        return -1;
    if (!scratch_make("test_registry", f->root, sizeof(f->root)))
        return -1;
    if (!oci_config_parse(config_yaml, strlen(config_yaml), "test.yaml", &f->config, err,
                          sizeof(err))) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    f->reg.config = &f->config;
    f->reg.options.default_namespace = "reg.test";
    f->reg.options.dynamic_namespaces = true;
    f->reg.storage = storage_fs_open(f->root, err, sizeof(err));
    if (f->reg.storage == NULL) {
        fprintf(stderr, "storage: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    oci_plan_release(&f->plan);
    f->reg.storage->ops->destroy(f->reg.storage);
    oci_config_free(&f->config);
    scratch_remove(f->root);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* Plans method path?query into f->plan (releasing the previous plan). */
static struct oci_plan *plan(struct fixture *f, const char *method, const char *path,
                             const char *query)
{
    struct oci_request req = {.method = method, .path = path, .query = query};

    oci_plan_release(&f->plan);
    oci_registry_plan(&f->reg, &req, &f->plan);
    return &f->plan;
}

static struct oci_digest digest_of(const char *content)
{
    struct oci_digest d;

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, content, strlen(content), &d));
    return d;
}

static const char *digest_string(const char *content)
{
    static char s[OCI_DIGEST_STRING_MAX];
    struct oci_digest d = digest_of(content);

    oci_digest_format(&d, s);
    return s;
}

/* Request paths, built in static buffers (one of each alive at a time). */
static const char *blob_path(const char *name, const char *content)
{
    static char path[512];

    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", name, digest_string(content));
    return path;
}

static const char *manifest_path(const char *name, const char *reference)
{
    static char path[512];

    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", name, reference);
    return path;
}

/* Puts bytes at the blob key of digest_of(for_content): a (possibly corrupt) cached blob. */
static void put_blob(struct fixture *f, const char *for_content, const char *bytes)
{
    struct storage *st = f->reg.storage;
    struct oci_digest d = digest_of(for_content);
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(&d, key);
    assert_int_equal(st->ops->put_small(st, key, bytes, strlen(bytes)), STORAGE_OK);
}

static void remove_blob(struct fixture *f, const char *content)
{
    struct storage *st = f->reg.storage;
    struct oci_digest d = digest_of(content);
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(&d, key);
    assert_int_equal(st->ops->remove(st, key), STORAGE_OK);
}

static bool blob_present(struct fixture *f, const char *content)
{
    struct storage *st = f->reg.storage;
    struct oci_digest d = digest_of(content);
    struct storage_info info;
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(&d, key);
    return st->ops->stat(st, key, &info) == STORAGE_OK;
}

static struct oci_route route_of(const char *ns, const char *path)
{
    struct oci_route r;

    assert_int_equal(oci_route_parse(path, NULL, ns, &r), OCI_OK);
    return r;
}

/* Caches MANIFEST as ns/name:tag, the way a fetch would have. */
static void store_manifest(struct fixture *f, const char *ns, const char *name, const char *tag)
{
    struct oci_route r = route_of(ns, manifest_path(name, tag));
    struct oci_manifest_record rec = {.size = strlen(MANIFEST), .media_type = OCI_MANIFEST};

    rec.digest = digest_of(MANIFEST);
    assert_int_equal(oci_cache_manifest_store(f->reg.storage, &r, &rec, MANIFEST, strlen(MANIFEST)),
                     STORAGE_OK);
}

/* Sets the modification time of the record of a manifest path to seconds ago. */
static void age_record(struct fixture *f, const char *ns, const char *path, long seconds)
{
    struct storage *st = f->reg.storage;
    struct oci_route r = route_of(ns, path);
    struct storage_location loc;
    char key[OCI_CACHE_KEY_MAX];
    time_t then = time(NULL) - seconds;
    struct timespec times[2] = {{then, 0}, {then, 0}};

    oci_cache_manifest_key(&r, key);
    assert_int_equal(st->ops->locate(st, key, &loc), STORAGE_OK);
    assert_int_equal(utimensat(AT_FDCWD, loc.path, times, 0), 0);
}

/* Sets the modification time of a cached blob to seconds ago. */
static void age_blob(struct fixture *f, const char *content, long seconds)
{
    struct storage *st = f->reg.storage;
    struct oci_digest d = digest_of(content);
    struct storage_location loc;
    char key[OCI_CACHE_KEY_MAX];
    time_t then = time(NULL) - seconds;
    struct timespec times[2] = {{then, 0}, {then, 0}};

    oci_cache_blob_key(&d, key);
    assert_int_equal(st->ops->locate(st, key, &loc), STORAGE_OK);
    assert_int_equal(utimensat(AT_FDCWD, loc.path, times, 0), 0);
}

/* The "code" of the first error of a JSON error body. */
static void assert_error_body(const char *body, size_t len, const char *code)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errors, 0), "code");

    if (!cJSON_IsString(got) || strcmp(got->valuestring, code) != 0)
        fail_msg("body %.*s: want code %s", (int)len, body, code);
    cJSON_Delete(doc);
}

static void assert_error_plan(const struct oci_plan *p, int status, const char *code)
{
    assert_int_equal(p->kind, OCI_PLAN_RESPOND);
    assert_int_equal(p->head.status, status);
    assert_string_equal(p->head.content_type, "application/json");
    assert_int_equal(p->head.content_length, p->body_len);
    assert_error_body(p->body, p->body_len, code);
}

/* A blob hit: handed to the front server. */
static void assert_send_stored(const struct oci_plan *p, const char *content)
{
    struct oci_digest d = digest_of(content);
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(&d, key);
    assert_int_equal(p->kind, OCI_PLAN_SEND_STORED);
    assert_int_equal(p->head.status, 200);
    assert_string_equal(p->key, key);
    assert_int_equal(p->head.content_length, strlen(content));
    assert_string_equal(p->head.digest, digest_string(content));
    assert_string_equal(p->head.content_type, "application/octet-stream");
}

/* A manifest hit: its bytes answered from memory (a HEAD's from the record
 * alone, no body read); a cache in front may keep the answer about fresh_for
 * seconds (a clock tick either way). */
static void assert_manifest_answer(const struct oci_plan *p, const char *content, long fresh_for)
{
    assert_int_equal(p->kind, OCI_PLAN_RESPOND);
    assert_int_equal(p->head.status, 200);
    assert_string_equal(p->head.content_type, OCI_MANIFEST);
    assert_int_equal(p->head.content_length, strlen(content));
    if (p->head_only) {
        assert_null(p->body);
    } else {
        assert_int_equal(p->body_len, strlen(content));
        assert_memory_equal(p->body, content, p->body_len);
    }
    assert_string_equal(p->head.digest, digest_string(content));
    assert_in_range(p->head.fresh_for, fresh_for > 2 ? fresh_for - 2 : 0, fresh_for);
}

/* ---- requests answered from memory ------------------------------------- */

static void test_base(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p = plan(f, "GET", "/v2/", NULL);

    assert_int_equal(p->kind, OCI_PLAN_RESPOND);
    assert_int_equal(p->head.status, 200);
    assert_string_equal(p->head.content_type, "application/json");
    assert_int_equal(p->head.content_length, 2);
    assert_int_equal(p->body_len, 2);
    assert_memory_equal(p->body, "{}", 2);
    assert_false(p->head_only);

    p = plan(f, "HEAD", "/v2/", NULL);
    assert_int_equal(p->head.status, 200);
    assert_true(p->head_only);
}

static void assert_text_answer(const struct oci_plan *p, int status, const char *prefix)
{
    assert_int_equal(p->kind, OCI_PLAN_RESPOND);
    assert_int_equal(p->head.status, status);
    assert_string_equal(p->head.content_type, "text/plain");
    assert_int_equal(p->head.content_length, p->body_len);
    assert_true(p->body_len >= strlen(prefix));
    assert_memory_equal(p->body, prefix, strlen(prefix));
    assert_int_equal(p->head.fresh_for, 0);
}

static void test_healthz(void **state)
{
    struct fixture *f = *state;

    assert_text_answer(plan(f, "GET", "/healthz", NULL), 200, "ok\n");
    assert_text_answer(plan(f, "HEAD", "/healthz", NULL), 200, "ok\n");
    assert_error_plan(plan(f, "GET", "/healthz/x", NULL), 404, "NOT_FOUND");
    assert_error_plan(plan(f, "GET", "/healthzz", NULL), 404, "NOT_FOUND");
    assert_error_plan(plan(f, "POST", "/healthz", NULL), 405, "UNSUPPORTED");
}

/* /readyz writes a probe object, reads it back and removes it: none is left. */
static void test_readyz(void **state)
{
    struct fixture *f = *state;
    char dir[PATH_MAX + 16];

    assert_text_answer(plan(f, "GET", "/readyz", NULL), 200, "ready\n");
    assert_text_answer(plan(f, "GET", "/readyz", NULL), 200, "ready\n");
    assert_error_plan(plan(f, "GET", "/readyz/", NULL), 404, "NOT_FOUND");
    snprintf(dir, sizeof(dir), "%s/_health", f->root);
    assert_int_equal(rmdir(dir), 0); /* empty: every probe removed its object */
}

/* A storage that cannot be written is not ready, and the answer says why. */
static void test_readyz_storage_broken(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;

    scratch_remove(f->root);
    assert_int_equal(access(f->root, F_OK), -1);
    p = plan(f, "GET", "/readyz", NULL);
    assert_text_answer(p, 503, "not ready: storage write failed");
    assert_text_answer(plan(f, "GET", "/healthz", NULL), 200, "ok\n");
}

static void test_push_methods_refused(void **state)
{
    static const char *const methods[] = {"PUT", "POST", "DELETE", "PATCH", "OPTIONS", "get"};
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct oci_plan *p = plan(f, methods[i], manifest_path("x", "latest"), NULL);

        assert_error_plan(p, 405, "UNSUPPORTED");
        assert_non_null(p->head.allow);
        assert_string_equal(p->head.allow, "GET, HEAD");
    }
}

/*
 * Bad requests are answered from memory, GET and HEAD alike, before any
 * storage or network access: a manifest reference that is neither tag nor
 * digest is unknown (the conformance suite's ".INVALID_MANIFEST_NAME"), a
 * blob's bad digest is invalid (400, its algorithm's too), with why.
 */
static void test_bad_requests(void **state)
{
    static const struct {
        const char *path;
        int status;
        const char *code;
        const char *why; /* in the body's detail, or NULL */
    } cases[] = {
        {"/v2/Upper/manifests/latest", 400, "NAME_INVALID", NULL},
        {"/v2/a..b/manifests/latest", 400, "NAME_INVALID", NULL},
        {"/v2/x/manifests/-dash", 404, "MANIFEST_UNKNOWN", "neither a tag nor a digest"},
        {"/v2/x/manifests/..", 404, "MANIFEST_UNKNOWN", NULL},
        {"/v2/x/manifests/.INVALID_MANIFEST_NAME", 404, "MANIFEST_UNKNOWN", NULL},
        {"/v2/x/manifests/sha256:totallywrong", 404, "MANIFEST_UNKNOWN", NULL},
        {"/v2/x/manifests/md5:abc", 404, "MANIFEST_UNKNOWN", NULL},
        {"/v2/x/blobs/sha256:abc", 400, "DIGEST_INVALID", "64"},
        {"/v2/x/blobs/sha256:totallywrong", 400, "DIGEST_INVALID", NULL},
        {"/v2/x/blobs/md5:abc", 400, "DIGEST_INVALID", "unsupported digest algorithm"},
        {"/v2/x/blobs/latest", 400, "DIGEST_INVALID", NULL},
        {"/v2/x/tags/list", 404, "NOT_FOUND", NULL},
        {"/v3/", 404, "NOT_FOUND", NULL},
    };
    static const char *const methods[] = {"GET", "HEAD"};
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t m = 0; m < 2; m++) {
            struct oci_plan *p = plan(f, methods[m], cases[i].path, NULL);

            if (p->kind != OCI_PLAN_RESPOND || p->head.status != cases[i].status)
                fail_msg("%s %s: plan %d, status %d; want status %d", methods[m], cases[i].path,
                         (int)p->kind, p->head.status, cases[i].status);
            assert_error_plan(p, cases[i].status, cases[i].code);
            if (cases[i].why != NULL && strstr(p->body, cases[i].why) == NULL)
                fail_msg("%s: body %s does not say \"%s\"", cases[i].path, p->body, cases[i].why);
        }
    }
}

/* ---- blobs ------------------------------------------------------------- */

static void test_blob_uncached_fetches(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p = plan(f, "GET", blob_path("x", LAYER), NULL);

    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_int_equal(p->route.kind, OCI_ROUTE_BLOB);
    assert_string_equal(p->route.namespace_, "reg.test");
    assert_string_equal(p->route.name, "x");
    assert_string_equal(p->route.reference, digest_string(LAYER));
    assert_string_equal(p->upstream.host, "127.0.0.1:9");
    assert_false(p->upstream.tls);
    assert_false(p->guard); /* configured: trusted even on a private address */
}

static void test_blob_cached_sent_stored(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;

    put_blob(f, LAYER, LAYER);
    p = plan(f, "GET", blob_path("x", LAYER), NULL);
    assert_send_stored(p, LAYER);
    assert_false(p->head_only);

    p = plan(f, "HEAD", blob_path("x", LAYER), NULL);
    assert_send_stored(p, LAYER);
    assert_true(p->head_only);

    /* Content is shared: another repository finds the same bytes. */
    p = plan(f, "GET", blob_path("other/repo", LAYER), NULL);
    assert_send_stored(p, LAYER);
}

/* ---- manifests --------------------------------------------------------- */

/* A fresh tag is kept in front until it goes stale here; a digest for as long as blobs. */
static void test_manifest_fresh_answered(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;

    store_manifest(f, "reg.test", "x", "latest");
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_manifest_answer(p, MANIFEST, HOUR - 1);

    p = plan(f, "HEAD", manifest_path("x", digest_string(MANIFEST)), NULL);
    assert_manifest_answer(p, MANIFEST, f->config.upstreams[0].blob_invalidation_time);
    assert_true(p->head_only);

    /* Within the invalidation time a tag is still fresh, for what is left of it. */
    age_record(f, "reg.test", manifest_path("x", "latest"), HOUR / 2);
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_manifest_answer(p, MANIFEST, HOUR / 2 - 1);

    /* A HEAD reads no body, but the content must still be there. */
    remove_blob(f, MANIFEST);
    p = plan(f, "HEAD", manifest_path("x", "latest"), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
}

static void test_manifest_uncached_fetches(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p = plan(f, "GET", manifest_path("x", "latest"), NULL);

    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_int_equal(p->route.kind, OCI_ROUTE_MANIFEST);
    assert_false(p->have_stale);

    /* A record whose content is gone is no hit, and nothing to fall back on. */
    store_manifest(f, "reg.test", "x", "latest");
    age_record(f, "reg.test", manifest_path("x", "latest"), 2 * HOUR);
    remove_blob(f, MANIFEST);
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_false(p->have_stale);

    /* Nor is content of another size than the record says. */
    put_blob(f, MANIFEST, "{}");
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_false(p->have_stale);
}

static void test_manifest_stale_tag_fetches(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;
    struct oci_digest d = digest_of(MANIFEST);

    store_manifest(f, "reg.test", "x", "latest");
    age_record(f, "reg.test", manifest_path("x", "latest"), 2 * HOUR);
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_true(p->have_stale);
    /* What the fetch serves if the upstream fails. */
    assert_true(oci_digest_equal(&p->manifest.digest, &d));
    assert_int_equal(p->manifest.size, strlen(MANIFEST));
    assert_string_equal(p->manifest.media_type, OCI_MANIFEST);
}

/* A record a second ahead of the clock is fresh (fine-grained file times run a
 * tick ahead of time()); one far ahead is not trusted: the clock went back. */
static void test_manifest_record_from_the_future(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;

    store_manifest(f, "reg.test", "x", "latest");
    age_record(f, "reg.test", manifest_path("x", "latest"), -1);
    assert_manifest_answer(plan(f, "GET", manifest_path("x", "latest"), NULL), MANIFEST, HOUR - 1);

    age_record(f, "reg.test", manifest_path("x", "latest"), -HOUR);
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_true(p->have_stale);
}

/* A digest names the same bytes forever: its record never goes stale. */
static void test_manifest_by_digest_never_stale(void **state)
{
    struct fixture *f = *state;
    const char *path;

    store_manifest(f, "reg.test", "x", "latest");
    path = manifest_path("x", digest_string(MANIFEST));
    age_record(f, "reg.test", path, 365L * 24 * HOUR);
    assert_manifest_answer(plan(f, "GET", path, NULL), MANIFEST,
                           f->config.upstreams[0].blob_invalidation_time);
}

/* A record that does not parse is a miss, not an error and not a crash. */
static void test_manifest_damaged_record(void **state)
{
    static const char *const records[] = {
        "",
        "garbage\n",
        "sha256:abc 5 " OCI_MANIFEST "\n",
        /* Digest and size but no media type. */
        "sha256:e1f0c6b1c81b1d6b52e1f4f1c6a05b37c2d1b9e4fd4b01dc8c3c1e0e6a3c9b2a 19\n",
        "sha256:e1f0c6b1c81b1d6b52e1f4f1c6a05b37c2d1b9e4fd4b01dc8c3c1e0e6a3c9b2a 19 ",
    };
    struct fixture *f = *state;
    struct storage *st = f->reg.storage;
    struct oci_route r = route_of("reg.test", manifest_path("x", "latest"));
    struct oci_manifest_record rec;
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_manifest_key(&r, key);
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        struct oci_plan *p;

        assert_int_equal(st->ops->put_small(st, key, records[i], strlen(records[i])), STORAGE_OK);
        if (oci_cache_manifest_lookup(st, &r, &rec) != STORAGE_NOT_FOUND)
            fail_msg("record \"%s\" parsed", records[i]);
        p = plan(f, "GET", manifest_path("x", "latest"), NULL);
        assert_int_equal(p->kind, OCI_PLAN_FETCH);
        assert_false(p->have_stale);
    }
}

/*
 * A record's media type becomes a Content-Type: one that is not a media type
 * (written by an older version, or by hand) makes the record damaged, a miss;
 * and none is ever written.
 */
static void test_manifest_record_media_type(void **state)
{
    static const char *const types[] = {
        "application/vnd.oci.image.manifest.v1+json\x01",
        "text/html\x7f",
        "a\x1b/b",
        "application/json;charset=utf-8",
        "x",
    };
    struct fixture *f = *state;
    struct storage *st = f->reg.storage;
    struct oci_route r = route_of("reg.test", manifest_path("x", "latest"));
    struct oci_manifest_record rec = {.size = strlen(MANIFEST)};
    char key[OCI_CACHE_KEY_MAX], line[512];

    store_manifest(f, "reg.test", "x", "latest");
    oci_cache_manifest_key(&r, key);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(line, sizeof(line), "%s %zu %s\n", digest_string(MANIFEST), strlen(MANIFEST),
                 types[i]);
        assert_int_equal(st->ops->put_small(st, key, line, strlen(line)), STORAGE_OK);
        if (oci_cache_manifest_lookup(st, &r, &rec) != STORAGE_NOT_FOUND)
            fail_msg("record with media type \"%s\" parsed", types[i]);
        assert_int_equal(plan(f, "GET", manifest_path("x", "latest"), NULL)->kind, OCI_PLAN_FETCH);
    }

    r = route_of("reg.test", manifest_path("x", "other"));
    rec.digest = digest_of(MANIFEST_BAD);
    snprintf(rec.media_type, sizeof(rec.media_type), "application/json\r\nX-Injected: 1");
    assert_int_equal(oci_cache_manifest_store(st, &r, &rec, MANIFEST_BAD, strlen(MANIFEST_BAD)),
                     STORAGE_BAD_KEY);
    assert_int_equal(oci_cache_manifest_lookup(st, &r, &rec), STORAGE_NOT_FOUND);
    assert_false(blob_present(f, MANIFEST_BAD));
}

/*
 * What is kept of an upstream's head: a Content-Type that is a media type
 * (parameters dropped), a Retry-After that is a number of seconds or a date
 * (made seconds); anything else is dropped, so no byte of it reaches a
 * record or a client.
 */
static void test_keep_head(void **state)
{
    static const struct {
        const char *content_type, *kept_type;
    } types[] = {
        {OCI_MANIFEST, OCI_MANIFEST},
        {OCI_MANIFEST "; charset=utf-8", OCI_MANIFEST},
        {OCI_MANIFEST " ;x=y", OCI_MANIFEST},
        {OCI_MANIFEST "\t;x=y", OCI_MANIFEST},
        {OCI_MANIFEST "\rX-Injected: 1", ""},
        {OCI_MANIFEST "\nX-Injected: 1", ""},
        {"application/js\x01on", ""},
        {"text/html\x7f", ""},
        {"application", ""},
        {"", ""},
        {NULL, ""},
    };
    static const struct {
        const char *retry_after, *kept;
    } delays[] = {
        {"7", "7"},
        {"0", "0"},
        {"0007", "7"},
        {"99999999999999999999999", "2147483648"},
        {"Thu, 01 Jan 1970 00:00:00 GMT", "0"},
        {"7\rX-Injected: 1", ""},
        {"7 ", ""},
        {"-7", ""},
        {"+7", ""},
        {"7.5", ""},
        {"soon", ""},
        {"Thu, 01 Jan 1970 00:00:00 GMT\r", ""},
        {"Thursday, 01-Jan-70 00:00:00 GMT", ""},
        {"", ""},
        {NULL, ""},
    };
    struct oci_upstream_answer a;
    char future[64];
    time_t then = time(NULL) + 120;
    struct tm tm;

    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct oci_upstream_head head = {.status = 200, .content_type = types[i].content_type};

        oci_fetch_keep_head(&a, &head);
        if (strcmp(a.content_type, types[i].kept_type) != 0)
            fail_msg("Content-Type \"%s\" kept as \"%s\"", types[i].content_type, a.content_type);
    }
    for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        struct oci_upstream_head head = {.status = 429, .retry_after = delays[i].retry_after};

        oci_fetch_keep_head(&a, &head);
        if (strcmp(a.retry_after, delays[i].kept) != 0)
            fail_msg("Retry-After \"%s\" kept as \"%s\"", delays[i].retry_after, a.retry_after);
    }
    /* A date two minutes ahead is about 120 seconds. */
    strftime(future, sizeof(future), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&then, &tm));
    oci_fetch_keep_head(&a, &(struct oci_upstream_head){.status = 429, .retry_after = future});
    assert_in_range(strtol(a.retry_after, NULL, 10), 115, 120);
}

/* With check_cache_digest, content that no longer matches is removed and fetched again. */
static void test_check_cache_digest(void **state)
{
    struct fixture *f = *state;
    struct oci_plan *p;

    f->reg.options.check_cache_digest = true;
    put_blob(f, LAYER, LAYER);
    assert_send_stored(plan(f, "GET", blob_path("x", LAYER), NULL), LAYER);

    put_blob(f, LAYER, LAYER_BAD);
    p = plan(f, "GET", blob_path("x", LAYER), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_false(blob_present(f, LAYER));

    /* The same for a manifest's content behind a fresh record. */
    store_manifest(f, "reg.test", "x", "latest");
    put_blob(f, MANIFEST, MANIFEST_BAD);
    p = plan(f, "GET", manifest_path("x", "latest"), NULL);
    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_false(p->have_stale);
    assert_false(blob_present(f, MANIFEST));
}

/* Without the check, corrupt content of the right size is served (it is not hashed). */
static void test_no_check_cache_digest(void **state)
{
    struct fixture *f = *state;

    put_blob(f, LAYER, LAYER_BAD);
    assert_send_stored(plan(f, "GET", blob_path("x", LAYER), NULL), LAYER);
}

/* ---- namespaces -------------------------------------------------------- */

static void test_dynamic_namespaces(void **state)
{
    static const struct {
        const char *path;
        const char *query;
        const char *host;
        const char *name;
    } cases[] = {
        {"/v2/x/manifests/latest", "ns=docker.io", "registry-1.docker.io", "library/x"},
        {"/v2/owner/img/manifests/1.0", "ns=ghcr.io", "ghcr.io", "owner/img"},
        {"/v2/quay.io/owner/img/manifests/1.0", NULL, "quay.io", "owner/img"},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct oci_plan *p = plan(f, "GET", cases[i].path, cases[i].query);

        if (p->kind != OCI_PLAN_FETCH)
            fail_msg("%s?%s: plan %d, status %d", cases[i].path, cases[i].query, (int)p->kind,
                     p->head.status);
        assert_string_equal(p->upstream.host, cases[i].host);
        assert_string_equal(p->route.name, cases[i].name);
        assert_true(p->upstream.tls);
        assert_false(p->upstream.configured);
        /* Not configured: every address it resolves to must be public. */
        assert_true(p->guard);
    }
}

static void test_dynamic_namespaces_disabled(void **state)
{
    struct fixture *f = *state;

    f->reg.options.dynamic_namespaces = false;
    assert_error_plan(plan(f, "GET", "/v2/x/manifests/latest", "ns=docker.io"), 404,
                      "NAME_UNKNOWN");
    /* Configured namespaces still work. */
    assert_int_equal(plan(f, "GET", "/v2/x/manifests/latest", "ns=down.test")->kind,
                     OCI_PLAN_FETCH);
    /* /v2/ needs no upstream. */
    assert_int_equal(plan(f, "GET", "/v2/", "ns=docker.io")->head.status, 200);
}

/* An address can only be an upstream by configuration, never on a client's say-so. */
static void test_ip_literal_namespace_denied(void **state)
{
    static const char *const queries[] = {"ns=10.0.0.1", "ns=127.0.0.1:5000", "ns=8.8.8.8"};
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
        assert_error_plan(plan(f, "GET", "/v2/x/manifests/latest", queries[i]), 403, "DENIED");
}

/* ---- fetching from an upstream that refuses connections ----------------- */

/* A sink that records what it is given. */
struct capture {
    int heads, stored;
    struct oci_response_head head;
    char content_type[OCI_MEDIA_TYPE_MAX + 1];
    char warning[64];
    char body[4096];
    size_t body_len;
};

static void capture_head(struct capture *c, const struct oci_response_head *head)
{
    c->head = *head;
    /* The head's strings may point into the plan: keep copies. */
    snprintf(c->content_type, sizeof(c->content_type), "%s",
             head->content_type ? head->content_type : "");
    snprintf(c->warning, sizeof(c->warning), "%s", head->warning ? head->warning : "");
}

static int sink_head(void *ctx, const struct oci_response_head *head)
{
    struct capture *c = ctx;

    c->heads++;
    capture_head(c, head);
    return 0;
}

static int sink_body(void *ctx, const void *buf, size_t len)
{
    struct capture *c = ctx;

    assert_true(c->body_len + len <= sizeof(c->body));
    memcpy(c->body + c->body_len, buf, len);
    c->body_len += len;
    return 0;
}

static int sink_flush(void *ctx)
{
    (void)ctx;
    return 0;
}

static int sink_send_stored(void *ctx, const struct oci_response_head *head, const char *key)
{
    struct capture *c = ctx;

    (void)key;
    c->stored++;
    capture_head(c, head);
    return 0;
}

/* Plans and fetches method path from down.test into c. */
static void fetch(struct fixture *f, const char *method, const char *path, struct capture *c)
{
    struct oci_sink sink = {c, sink_head, sink_body, sink_flush, NULL, sink_send_stored};
    struct oci_plan *p = plan(f, method, path, "ns=down.test");

    assert_int_equal(p->kind, OCI_PLAN_FETCH);
    assert_string_equal(p->upstream.host, "127.0.0.1:1");
    memset(c, 0, sizeof(*c));
    oci_registry_fetch(&f->reg, p, &sink);
}

static void assert_unavailable(const struct capture *c, bool with_body)
{
    assert_int_equal(c->heads, 1);
    assert_int_equal(c->stored, 0);
    assert_int_equal(c->head.status, 503);
    assert_string_equal(c->content_type, "application/json");
    if (with_body)
        assert_error_body(c->body, c->body_len, "UNAVAILABLE");
    else
        assert_int_equal(c->body_len, 0);
}

static void test_fetch_unreachable(void **state)
{
    struct fixture *f = *state;
    struct capture c;

    fetch(f, "GET", blob_path("x", LAYER), &c);
    assert_unavailable(&c, true);
    assert_false(blob_present(f, LAYER));

    fetch(f, "GET", manifest_path("x", "latest"), &c);
    assert_unavailable(&c, true);

    /* A HEAD gets the same status, without the body. */
    fetch(f, "HEAD", blob_path("x", LAYER), &c);
    assert_unavailable(&c, false);
}

/* A stale tag beats an error: it is served, marked stale, and kept. */
static void test_fetch_unreachable_serves_stale(void **state)
{
    struct fixture *f = *state;
    struct capture c;
    struct oci_manifest_record rec;
    struct oci_route r = route_of("down.test", manifest_path("x", "latest"));

    store_manifest(f, "down.test", "x", "latest");
    age_record(f, "down.test", manifest_path("x", "latest"), 2 * HOUR);
    fetch(f, "GET", manifest_path("x", "latest"), &c);
    assert_true(f->plan.have_stale);

    assert_int_equal(c.stored, 0);
    assert_int_equal(c.heads, 1);
    assert_int_equal(c.head.status, 200);
    assert_int_equal(c.head.content_length, strlen(MANIFEST));
    assert_int_equal(c.body_len, strlen(MANIFEST));
    assert_memory_equal(c.body, MANIFEST, c.body_len);
    assert_string_equal(c.head.digest, digest_string(MANIFEST));
    assert_string_equal(c.content_type, OCI_MANIFEST);
    assert_string_equal(c.warning, "299 - \"stale: upstream unavailable, cached copy\"");
    assert_int_equal(c.head.fresh_for, 0); /* never kept by a cache in front */

    /* Unconfirmed, the record stays stale (and present) for the next try. */
    assert_int_equal(oci_cache_manifest_lookup(f->reg.storage, &r, &rec), STORAGE_OK);
    assert_true(time(NULL) - rec.confirmed >= 2 * HOUR - 5);
}

/* ---- cleanup ---------------------------------------------------------- */

#define DAY (24 * HOUR)

static void test_cleanup_removes_unused(void **state)
{
    struct fixture *f = *state;
    struct oci_manifest_record rec;
    struct oci_cleanup_stats stats;
    struct oci_route r = route_of("reg.test", manifest_path("x", "v1"));

    put_blob(f, LAYER, LAYER);
    age_blob(f, LAYER, 40 * DAY); /* past the default 30 days */
    store_manifest(f, "reg.test", "x", "v1");
    age_record(f, "reg.test", manifest_path("x", "v1"), 40 * DAY);
    put_blob(f, LAYER_BAD, LAYER_BAD); /* used just now */

    oci_cleanup_run(&f->reg, time(NULL), &stats);
    assert_int_equal(stats.blobs, 1);
    assert_int_equal(stats.manifests, 1); /* the tag record; the digest record is fresh */
    assert_false(blob_present(f, LAYER));
    assert_true(blob_present(f, LAYER_BAD));
    assert_int_equal(oci_cache_manifest_lookup(f->reg.storage, &r, &rec), STORAGE_NOT_FOUND);
    assert_true(blob_present(f, MANIFEST));
}

static void test_cleanup_spares_what_a_hit_used(void **state)
{
    struct fixture *f = *state;
    struct oci_cleanup_stats stats;

    put_blob(f, LAYER, LAYER);
    age_blob(f, LAYER, 40 * DAY);
    /* A hit marks the blob used, so the next pass keeps it. */
    assert_int_equal(plan(f, "GET", blob_path("reg.test/x", LAYER), NULL)->kind,
                     OCI_PLAN_SEND_STORED);
    oci_cleanup_run(&f->reg, time(NULL), &stats);
    assert_int_equal(stats.blobs, 0);
    assert_true(blob_present(f, LAYER));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_base),
        T(test_healthz),
        T(test_readyz),
        T(test_readyz_storage_broken),
        T(test_push_methods_refused),
        T(test_bad_requests),
        T(test_blob_uncached_fetches),
        T(test_blob_cached_sent_stored),
        T(test_manifest_fresh_answered),
        T(test_manifest_uncached_fetches),
        T(test_manifest_stale_tag_fetches),
        T(test_manifest_record_from_the_future),
        T(test_manifest_by_digest_never_stale),
        T(test_manifest_damaged_record),
        T(test_manifest_record_media_type),
        T(test_keep_head),
        T(test_check_cache_digest),
        T(test_no_check_cache_digest),
        T(test_dynamic_namespaces),
        T(test_dynamic_namespaces_disabled),
        T(test_ip_literal_namespace_denied),
        T(test_fetch_unreachable),
        T(test_fetch_unreachable_serves_stale),
        T(test_cleanup_removes_unused),
        T(test_cleanup_spares_what_a_hit_used),
    };
#undef T

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
