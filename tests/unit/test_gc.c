/*
 * test_gc.c - garbage collection of hosted content (core/ops/gc.h) on a real
 * fs storage in a scratch directory: what is marked (tags, records, an
 * index's children, referrers), what is swept (links, then content), the
 * grace period, content shared with another repository or with the mirror,
 * dry runs, unreadable manifests, and a manifest pushed while gc runs.
 *
 * Ages are set with utimensat on the storage's files: the fs backend's
 * object times are its files' mtimes.
 */
#define _GNU_SOURCE /* nftw, in scratch.h */
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

#include "core/cache/repo.h"
#include "core/ops/gc.h"
#include "storage/fs.h"
#include "tests/unit/scratch.h"

#define HOUR         3600
#define OLD          (2 * HOUR) /* older than the default grace */
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define NS           "hosted.test"

struct fixture {
    char root[PATH_MAX];
    struct storage *st;
    struct oci_gc_options o;
    struct oci_gc_stats s;
    char reported[16][OCI_CACHE_KEY_MAX]; /* "<kind> <key>" of each report */
    size_t nreported;
    /* The storage's ops with remove_unless running before_remove first (a push racing gc). */
    struct storage_ops wrap_ops;
    const struct storage_ops *fs_ops;
    void (*before_remove)(struct fixture *f);
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    if (f == NULL || !scratch_make("test_gc", f->root, sizeof(f->root)))
        return -1;
    f->st = storage_fs_open(f->root, err, sizeof(err));
    if (f->st == NULL) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    f->o = (struct oci_gc_options){.now = time(NULL), .grace = HOUR};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    f->st->ops->destroy(f->st);
    scratch_remove(f->root);
    free(f);
    return 0;
}

/* ---- building hosted repositories ------------------------------------------ */

static void age(struct fixture *f, const char *key, long seconds)
{
    char path[PATH_MAX + OCI_CACHE_KEY_MAX];
    struct timespec t[2] = {{f->o.now - seconds, 0}, {f->o.now - seconds, 0}};

    snprintf(path, sizeof(path), "%s/%s", f->root, key);
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static struct oci_route route(const char *name)
{
    struct oci_route r = {.kind = OCI_ROUTE_MANIFEST};

    snprintf(r.namespace_, sizeof(r.namespace_), NS);
    snprintf(r.name, sizeof(r.name), "%s", name);
    return r;
}

/* Stores content; its digest into d, its age set. */
static void content(struct fixture *f, const char *bytes, long seconds, struct oci_digest *d)
{
    char key[OCI_CACHE_KEY_MAX];

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, bytes, strlen(bytes), d));
    oci_cache_blob_key(d, key);
    assert_int_equal(f->st->ops->put_small(f->st, key, bytes, strlen(bytes)), STORAGE_OK);
    age(f, key, seconds);
}

/* A blob pushed to repo: content and link, both seconds old. */
static struct oci_digest blob(struct fixture *f, const char *repo, const char *bytes, long seconds)
{
    struct oci_route r = route(repo);
    char key[OCI_CACHE_KEY_MAX];
    struct oci_digest d;

    content(f, bytes, seconds, &d);
    assert_int_equal(oci_repo_link_blob(f->st, &r, &d), STORAGE_OK);
    oci_repo_digest_key(&r, "_blobs", &d, key);
    age(f, key, seconds);
    oci_cache_blob_key(&d, key);
    age(f, key, seconds);
    return d;
}

static void digest_string(const struct oci_digest *d, char s[OCI_DIGEST_STRING_MAX])
{
    oci_digest_format(d, s);
}

/* An image manifest of config and layers (NULL-ended), with subject when not NULL. */
static void image_json(char *buf, size_t cap, const struct oci_digest *config,
                       const struct oci_digest *layers, size_t nlayers,
                       const struct oci_digest *subject)
{
    char d[OCI_DIGEST_STRING_MAX];
    size_t len;

    digest_string(config, d);
    len = (size_t)snprintf(buf, cap,
                           "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
                           "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                           "\"digest\":\"%s\",\"size\":1},\"layers\":[",
                           d);
    for (size_t i = 0; i < nlayers; i++) {
        digest_string(&layers[i], d);
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                                "\"digest\":\"%s\",\"size\":1}",
                                i ? "," : "", d);
    }
    len += (size_t)snprintf(buf + len, cap - len, "]");
    if (subject != NULL) {
        digest_string(subject, d);
        len += (size_t)snprintf(buf + len, cap - len,
                                ",\"subject\":{\"mediaType\":\"" OCI_MANIFEST "\","
                                "\"digest\":\"%s\",\"size\":1}",
                                d);
    }
    snprintf(buf + len, cap - len, "}");
}

/* A manifest pushed to repo by tag (NULL: by digest), seconds old. */
static struct oci_digest manifest(struct fixture *f, const char *repo, const char *tag,
                                  const char *json, const char *media_type, long seconds)
{
    struct oci_route r = route(repo);
    struct oci_manifest_record rec = {0};
    char key[OCI_CACHE_KEY_MAX];

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, json, strlen(json), &rec.digest));
    rec.size = strlen(json);
    snprintf(rec.media_type, sizeof(rec.media_type), "%s", media_type);
    r.by_digest = tag == NULL;
    r.digest = rec.digest;
    snprintf(r.reference, sizeof(r.reference), "%s", tag ? tag : "");
    assert_int_equal(oci_repo_manifest_store(f->st, &r, &rec, json, rec.size), STORAGE_OK);
    oci_cache_blob_key(&rec.digest, key);
    age(f, key, seconds);
    oci_repo_digest_key(&r, "_digests", &rec.digest, key);
    age(f, key, seconds);
    if (tag != NULL) {
        oci_repo_key(&r, "_tags", tag, key);
        age(f, key, seconds);
    }
    return rec.digest;
}

/* An image of one config and the given layers, tagged (or not), seconds old. */
static struct oci_digest image(struct fixture *f, const char *repo, const char *tag,
                               const struct oci_digest *config, const struct oci_digest *layers,
                               size_t nlayers, const struct oci_digest *subject, long seconds)
{
    char json[4096];

    image_json(json, sizeof(json), config, layers, nlayers, subject);
    return manifest(f, repo, tag, json, OCI_MANIFEST, seconds);
}

/* ---- looking at the result -------------------------------------------------- */

static void report(void *arg, enum oci_gc_kind kind, const char *key, uint64_t size)
{
    struct fixture *f = arg;

    (void)size;
    assert_true(f->nreported < 16);
    snprintf(f->reported[f->nreported++], OCI_CACHE_KEY_MAX, "%s %s",
             kind == OCI_GC_BLOB   ? "blob"
             : kind == OCI_GC_LINK ? "link"
                                   : "manifest",
             key);
}

static void run(struct fixture *f)
{
    f->nreported = 0;
    assert_int_equal(oci_gc_run(f->st, NULL, &f->o, report, f, &f->s), STORAGE_OK);
}

static bool has_content(struct fixture *f, const struct oci_digest *d)
{
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;

    oci_cache_blob_key(d, key);
    return f->st->ops->stat(f->st, key, &info) == STORAGE_OK;
}

static bool has_key(struct fixture *f, const char *repo, const char *part,
                    const struct oci_digest *d)
{
    struct oci_route r = route(repo);
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;

    oci_repo_digest_key(&r, part, d, key);
    return f->st->ops->stat(f->st, key, &info) == STORAGE_OK;
}

static bool linked(struct fixture *f, const char *repo, const struct oci_digest *d)
{
    return has_key(f, repo, "_blobs", d);
}

static bool recorded(struct fixture *f, const char *repo, const struct oci_digest *d)
{
    return has_key(f, repo, "_digests", d);
}

/* ---- mark and sweep ------------------------------------------------------------ */

/* Two images share a layer; one is deleted: only what it alone used goes. */
static void test_unreferenced_blobs_go(void **state)
{
    struct fixture *f = *state;
    struct oci_digest c1 = blob(f, "app", "config one", OLD);
    struct oci_digest c2 = blob(f, "app", "config two", OLD);
    struct oci_digest shared = blob(f, "app", "shared layer", OLD);
    struct oci_digest own = blob(f, "app", "layer of two only", OLD);
    struct oci_digest l2[] = {shared, own};
    struct oci_digest m2;
    struct oci_route r = route("app");
    char key[OCI_CACHE_KEY_MAX];

    image(f, "app", "v1", &c1, &shared, 1, NULL, OLD);
    m2 = image(f, "app", "v2", &c2, l2, 2, NULL, OLD);
    /* DELETE of v2 by digest, as the API does: record and tag go, content stays. */
    oci_repo_digest_key(&r, "_digests", &m2, key);
    assert_int_equal(f->st->ops->remove(f->st, key), STORAGE_OK);
    oci_repo_key(&r, "_tags", "v2", key);
    assert_int_equal(f->st->ops->remove(f->st, key), STORAGE_OK);

    run(f);
    assert_true(linked(f, "app", &c1) && has_content(f, &c1));
    assert_true(linked(f, "app", &shared) && has_content(f, &shared));
    assert_false(linked(f, "app", &c2) || has_content(f, &c2));
    assert_false(linked(f, "app", &own) || has_content(f, &own));
    assert_int_equal(f->s.repositories, 1);
    assert_int_equal(f->s.manifests_marked, 1);
    assert_int_equal(f->s.links_removed, 2);
    assert_int_equal(f->s.blobs_removed, 2);
    assert_int_equal(f->s.blobs_kept, 2);
    assert_int_equal(f->s.bytes_freed, strlen("config two") + strlen("layer of two only"));
    assert_int_equal(f->nreported, 4); /* two links, then two blobs */
    assert_non_null(strstr(f->reported[3], "blob blobs/sha256/"));

    run(f); /* nothing left to do */
    assert_int_equal(f->s.links_removed + f->s.blobs_removed, 0);
}

static void test_dry_run_removes_nothing(void **state)
{
    struct fixture *f = *state;
    struct oci_digest orphan = blob(f, "app", "orphan", OLD);

    f->o.dry_run = true;
    run(f);
    assert_int_equal(f->s.links_removed, 1);
    assert_int_equal(f->s.blobs_removed, 1);
    assert_int_equal(f->s.bytes_freed, strlen("orphan"));
    assert_int_equal(f->nreported, 2);
    assert_true(linked(f, "app", &orphan) && has_content(f, &orphan));
    f->o.dry_run = false;
    run(f);
    assert_false(linked(f, "app", &orphan) || has_content(f, &orphan));
}

/* A push uploads blobs before its manifest: within the grace period they stay. */
static void test_grace(void **state)
{
    struct fixture *f = *state;
    struct oci_digest young = blob(f, "app", "uploaded a minute ago", 60);
    struct oci_digest used = blob(f, "app", "linked long ago, pulled now", OLD);
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(&used, key);
    age(f, key, 10); /* a hit touched the content */
    run(f);
    assert_true(linked(f, "app", &young) && has_content(f, &young));
    assert_false(linked(f, "app", &used)); /* the link is old and unreferenced */
    assert_true(has_content(f, &used));    /* the content was used within grace */
    assert_int_equal(f->s.blobs_spared, 1);

    f->o.grace = 0; /* --grace 0: what is unreferenced goes at once */
    f->o.now += 1;
    run(f);
    assert_false(linked(f, "app", &young) || has_content(f, &young));
}

/* A blob another repository still links, or the mirror's manifests name, keeps its bytes. */
static void test_shared_content_stays(void **state)
{
    struct fixture *f = *state;
    struct oci_digest layer = blob(f, "app", "layer everyone has", OLD);
    struct oci_digest config = blob(f, "other", "config of other", OLD);
    struct oci_digest mirrored = blob(f, "app", "layer the mirror also has", OLD);
    struct oci_digest mconfig;
    struct oci_manifest_record rec = {0};
    struct oci_route mirror = {.kind = OCI_ROUTE_MANIFEST,
                               .namespace_ = "docker.io",
                               .name = "library/alpine",
                               .reference = "3.19"};
    char json[4096];

    blob(f, "other", "layer everyone has", OLD);
    image(f, "other", "v1", &config, &layer, 1, NULL, OLD);
    /* The mirror cached an image that has the same layer (its own config is plain content). */
    content(f, "mirrored config", OLD, &mconfig);
    image_json(json, sizeof(json), &mconfig, &mirrored, 1, NULL);
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, json, strlen(json), &rec.digest));
    rec.size = strlen(json);
    strcpy(rec.media_type, OCI_MANIFEST);
    assert_int_equal(oci_cache_manifest_store(f->st, &mirror, &rec, json, rec.size), STORAGE_OK);

    run(f);
    assert_false(linked(f, "app", &layer));
    assert_true(linked(f, "other", &layer) && has_content(f, &layer));
    assert_false(linked(f, "app", &mirrored));
    assert_true(has_content(f, &mirrored));
    assert_int_equal(f->s.links_removed, 2);
    assert_int_equal(f->s.blobs_removed, 0);
    assert_int_equal(f->s.blobs_spared, 2);
}

/* An index keeps its children and their blobs; untagged manifests stay unless asked. */
static void test_index_and_untagged(void **state)
{
    struct fixture *f = *state;
    struct oci_digest c1 = blob(f, "multi", "amd64 config", OLD);
    struct oci_digest l1 = blob(f, "multi", "amd64 layer", OLD);
    struct oci_digest c2 = blob(f, "multi", "untagged config", OLD);
    struct oci_digest c3 = blob(f, "multi", "young untagged config", OLD);
    struct oci_digest child = image(f, "multi", NULL, &c1, &l1, 1, NULL, OLD);
    struct oci_digest untagged = image(f, "multi", NULL, &c2, NULL, 0, NULL, OLD);
    struct oci_digest young = image(f, "multi", NULL, &c3, NULL, 0, NULL, 60);
    char json[1024], d[OCI_DIGEST_STRING_MAX];

    digest_string(&child, d);
    snprintf(json, sizeof(json),
             "{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":["
             "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":1}]}",
             d);
    manifest(f, "multi", "latest", json, OCI_INDEX, OLD);

    run(f); /* default: every recorded manifest is a root */
    assert_int_equal(f->s.manifests_marked, 4);
    assert_int_equal(f->s.links_removed + f->s.manifests_removed, 0);

    f->o.delete_untagged = true;
    run(f);
    assert_int_equal(f->s.manifests_marked, 3);
    assert_int_equal(f->s.manifests_removed, 1);
    assert_true(recorded(f, "multi", &child) && linked(f, "multi", &l1) && has_content(f, &l1));
    assert_true(recorded(f, "multi", &young) && linked(f, "multi", &c3));
    assert_false(recorded(f, "multi", &untagged) || has_content(f, &untagged));
    assert_false(linked(f, "multi", &c2) || has_content(f, &c2));
}

/* With delete_untagged, a referrer lives as long as its subject. */
static void test_referrers(void **state)
{
    struct fixture *f = *state;
    struct oci_digest c = blob(f, "signed", "image config", OLD);
    struct oci_digest sc = blob(f, "signed", "signature config", OLD);
    struct oci_digest dc = blob(f, "signed", "dangling signature config", OLD);
    struct oci_digest gone = blob(f, "signed", "config of a deleted image", OLD);
    struct oci_digest subject = image(f, "signed", "v1", &c, NULL, 0, NULL, OLD);
    struct oci_digest deleted = image(f, "signed", NULL, &gone, NULL, 0, NULL, OLD);
    struct oci_digest sig = image(f, "signed", NULL, &sc, NULL, 0, &subject, OLD);
    struct oci_digest dangling = image(f, "signed", NULL, &dc, NULL, 0, &deleted, OLD);
    struct oci_route r = route("signed");
    char leaf[2 * OCI_DIGEST_STRING_MAX], s1[OCI_DIGEST_STRING_MAX], s2[OCI_DIGEST_STRING_MAX];
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;

    /* The referrers API's entry of the dangling signature, as a push writes it. */
    digest_string(&deleted, s1);
    digest_string(&dangling, s2);
    snprintf(leaf, sizeof(leaf), "%s/%s", s1, s2);
    oci_repo_key(&r, "_referrers", leaf, key);
    assert_int_equal(f->st->ops->put_small(f->st, key, "{}", 2), STORAGE_OK);

    f->o.delete_untagged = true;
    run(f);
    assert_true(recorded(f, "signed", &sig) && linked(f, "signed", &sc));
    assert_false(recorded(f, "signed", &deleted) || recorded(f, "signed", &dangling));
    assert_false(linked(f, "signed", &dc) || has_content(f, &dc));
    assert_false(linked(f, "signed", &gone));
    assert_int_equal(f->st->ops->stat(f->st, key, &info), STORAGE_NOT_FOUND);
    assert_int_equal(f->s.manifests_removed, 2);
}

/* What a repository references is unknown when a manifest cannot be read: nothing is swept. */
static void test_unreadable_manifest(void **state)
{
    struct fixture *f = *state;
    struct oci_digest c = blob(f, "broken", "config", OLD);
    struct oci_digest orphan = blob(f, "broken", "orphan", OLD);
    struct oci_digest m = image(f, "broken", "v1", &c, NULL, 0, NULL, OLD);
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(&m, key);
    assert_int_equal(f->st->ops->remove(f->st, key), STORAGE_OK);
    run(f);
    assert_int_equal(f->s.unreadable, 1);
    assert_true(linked(f, "broken", &orphan) && has_content(f, &orphan));
}

/* ---- a push while gc runs ------------------------------------------------------ */

static struct fixture *wrapped; /* the fixture whose storage is wrapped (one test at a time) */

static enum storage_err wrap_remove_unless(struct storage *st, const char *key,
                                           storage_keep_fn keep, void *arg)
{
    void (*before)(struct fixture * f) = wrapped->before_remove;

    wrapped->before_remove = NULL;
    if (before != NULL)
        before(wrapped);
    return wrapped->fs_ops->remove_unless(st, key, keep, arg);
}

/* After the mark: an image that reuses the old, unreferenced blob is pushed. */
static void push_reusing_orphan(struct fixture *f)
{
    struct oci_digest c = blob(f, "race", "new config", 0);
    struct oci_route r = route("race");
    struct oci_digest orphan;
    char json[4096];

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, "old layer", 9, &orphan));
    assert_true(oci_repo_has_blob(f->st, &r, &orphan, &(struct storage_info){0}));
    image_json(json, sizeof(json), &c, &orphan, 1, NULL);
    manifest(f, "race", "v2", json, OCI_MANIFEST, 0);
}

static void test_push_during_gc(void **state)
{
    struct fixture *f = *state;
    struct oci_digest orphan = blob(f, "race", "old layer", OLD);

    f->fs_ops = f->st->ops;
    f->wrap_ops = *f->st->ops;
    f->wrap_ops.remove_unless = wrap_remove_unless;
    f->st->ops = &f->wrap_ops;
    f->before_remove = push_reusing_orphan;
    wrapped = f;
    run(f);
    f->st->ops = f->fs_ops;
    assert_null(f->before_remove); /* the push happened, between mark and sweep */
    assert_int_equal(f->s.links_removed, 0);
    assert_true(linked(f, "race", &orphan) && has_content(f, &orphan));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unreferenced_blobs_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_removes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_content_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_and_untagged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referrers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_during_gc, setup, teardown),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
