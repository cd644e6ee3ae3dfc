/*
 * test_evict.c - the size bound: sizes, the shared usage record (last use
 * and running totals, a damaged file), eviction of the least recently used
 * blobs on a real fs cache (the young and the just-used are spared), and a
 * tag whose manifest content was evicted being a miss, not an error.
 *
 * Every test gets a fresh fs cache in its own scratch directory (tests/unit/scratch.h).
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
#include <unistd.h>

#include "tests/unit/scratch.h"
#include "core/ops/admin.h"
#include "core/ops/cleanup.h"
#include "core/cache/evict.h"
#include "core/cache/inventory.h"
#include "core/registry.h"
#include "storage/fs.h"

#define HOUR (60 * 60)

struct fixture {
    char root[PATH_MAX];
    char usage_path[PATH_MAX + 16];
    struct oci_config config;
    struct oci_evictor evict;
    struct oci_registry reg;
    time_t now;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    if (f == NULL)
        return -1;
    if (!scratch_make("test_evict", f->root, sizeof(f->root)))
        return -1;
    snprintf(f->usage_path, sizeof(f->usage_path), "%s/.usage", f->root);
    f->reg.storage = storage_fs_open(f->root, err, sizeof(err));
    f->evict.usage = oci_usage_open(f->usage_path, err, sizeof(err));
    if (f->reg.storage == NULL || f->evict.usage == NULL) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    f->evict.max_bytes = 1000;
    f->evict.low_water = 900;
    f->evict.min_age = 600;
    f->reg.evict = &f->evict;
    f->reg.config = &f->config;
    f->reg.options.default_namespace = "reg.test";
    f->reg.options.dynamic_namespaces = true;
    f->now = time(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    oci_usage_close(f->evict.usage);
    f->reg.storage->ops->destroy(f->reg.storage);
    scratch_remove(f->root);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static struct oci_digest digest_of(const char *content)
{
    struct oci_digest d;

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, content, strlen(content), &d));
    return d;
}

/* Stores a blob of size bytes (named by n) committed at mtime; returns its digest. */
static struct oci_digest put_blob(struct fixture *f, int n, size_t size, time_t mtime)
{
    struct storage *st = f->reg.storage;
    char name[32], key[OCI_CACHE_KEY_MAX], path[PATH_MAX * 2];
    char *bytes = malloc(size);
    struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
    struct oci_digest d;

    assert_non_null(bytes);
    snprintf(name, sizeof(name), "blob %d", n);
    d = digest_of(name);
    memset(bytes, 'x', size);
    oci_cache_blob_key(&d, key);
    assert_int_equal(st->ops->put_small(st, key, bytes, size), STORAGE_OK);
    snprintf(path, sizeof(path), "%s/%s", f->root, key);
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    oci_usage_add(f->evict.usage, (int64_t)size, 1);
    free(bytes);
    return d;
}

static bool present(struct fixture *f, const struct oci_digest *d)
{
    struct storage *st = f->reg.storage;
    struct storage_info info;
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_blob_key(d, key);
    return st->ops->stat(st, key, &info) == STORAGE_OK;
}

static uint64_t total_bytes(struct fixture *f)
{
    struct oci_usage_totals t;

    oci_usage_totals(f->evict.usage, &t);
    return t.bytes;
}

/* ---- sizes ------------------------------------------------------------- */

static void test_size_parse(void **state)
{
    uint64_t b;
    unsigned pct;

    (void)state;
    assert_true(oci_size_parse("12345", &b, &pct));
    assert_int_equal(b, 12345);
    assert_int_equal(pct, 0);
    assert_true(oci_size_parse("800MB", &b, &pct));
    assert_int_equal(b, 800ULL * 1000 * 1000);
    assert_true(oci_size_parse("50GiB", &b, &pct));
    assert_int_equal(b, 50ULL << 30);
    assert_true(oci_size_parse("64mib", &b, NULL));
    assert_int_equal(b, 64ULL << 20);
    assert_true(oci_size_parse("2T", &b, NULL));
    assert_int_equal(b, 2000000000000ULL);
    assert_true(oci_size_parse("90%", &b, &pct));
    assert_int_equal(pct, 90);
    assert_int_equal(b, 0);

    assert_false(oci_size_parse("12XB", &b, &pct));
    assert_false(oci_size_parse("", &b, &pct));
    assert_false(oci_size_parse("GiB", &b, &pct));
    assert_false(oci_size_parse("-5MB", &b, &pct));
    assert_false(oci_size_parse("1.5GB", &b, &pct));
    assert_false(oci_size_parse("5 GB", &b, &pct));
    assert_false(oci_size_parse("0%", &b, &pct));
    assert_false(oci_size_parse("101%", &b, &pct));
    assert_false(oci_size_parse("90%", &b, NULL)); /* where no percentage is allowed */
    assert_false(oci_size_parse("99999999999999999999", &b, &pct));
    assert_false(oci_size_parse("20000000TiB", &b, &pct)); /* overflows 64 bits */
}

/* ---- the references of the cache command and the admin API ------------- */

static void test_inventory_references(void **state)
{
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    struct oci_inventory_target t;
    char ref[256];

    (void)state;
    assert_true(oci_inventory_parse("Docker.IO", &t));
    assert_int_equal(t.kind, OCI_INVENTORY_NAMESPACE);
    assert_string_equal(t.namespace_, "docker.io");
    assert_true(oci_inventory_parse("localhost:5000/team/app", &t));
    assert_int_equal(t.kind, OCI_INVENTORY_REPOSITORY);
    assert_string_equal(t.namespace_, "localhost:5000");
    assert_string_equal(t.name, "team/app");
    assert_true(oci_inventory_parse("localhost:5000/team/app:v1.2", &t));
    assert_int_equal(t.kind, OCI_INVENTORY_TAG);
    assert_string_equal(t.name, "team/app");
    assert_string_equal(t.tag, "v1.2");
    snprintf(ref, sizeof(ref), "ghcr.io/org/app@%s", d);
    assert_true(oci_inventory_parse(ref, &t));
    assert_int_equal(t.kind, OCI_INVENTORY_MANIFEST);
    assert_string_equal(t.digest.hex, d + 7);
    assert_true(oci_inventory_parse(d, &t));
    assert_int_equal(t.kind, OCI_INVENTORY_BLOB);

    assert_false(oci_inventory_parse("", &t));
    assert_false(oci_inventory_parse("docker.io/", &t));
    assert_false(oci_inventory_parse("docker.io/App", &t));
    assert_false(oci_inventory_parse("docker.io/a/../b", &t));
    assert_false(oci_inventory_parse("docker.io/app:", &t));
    assert_false(oci_inventory_parse("docker.io/app:-bad", &t));
    assert_false(oci_inventory_parse("docker.io/app@sha256:abc", &t));
    assert_false(oci_inventory_parse("sha256:abc", &t));
    assert_false(oci_inventory_parse("-bad-", &t));
    assert_false(oci_inventory_parse("a b", &t));
}

/* ---- the usage record -------------------------------------------------- */

static void test_usage_last_use(void **state)
{
    struct fixture *f = *state;
    struct oci_digest a = digest_of("a"), b = digest_of("b");

    assert_int_equal(oci_usage_last(f->evict.usage, &a, f->now), 0);
    oci_usage_note(f->evict.usage, &a, f->now - HOUR);
    assert_int_equal(oci_usage_last(f->evict.usage, &a, f->now), (f->now - HOUR) / 60 * 60);
    oci_usage_note(f->evict.usage, &a, f->now);
    assert_int_equal(oci_usage_last(f->evict.usage, &a, f->now), f->now / 60 * 60);
    assert_int_equal(oci_usage_last(f->evict.usage, &b, f->now), 0);
    /* A time ahead of the clock (it went back, or the file is damaged) is not trusted. */
    oci_usage_note(f->evict.usage, &b, f->now + 2 * HOUR);
    assert_int_equal(oci_usage_last(f->evict.usage, &b, f->now), 0);
}

static void test_usage_shared_and_persistent(void **state)
{
    struct fixture *f = *state;
    struct oci_digest a = digest_of("a");
    struct oci_usage_totals t;
    char err[256];
    struct oci_usage *other = oci_usage_open(f->usage_path, err, sizeof(err));

    assert_non_null(other);
    oci_usage_note(f->evict.usage, &a, f->now);
    oci_usage_add(f->evict.usage, 500, 2);
    oci_usage_add(other, 100, 1);
    assert_int_equal(oci_usage_last(other, &a, f->now), f->now / 60 * 60);
    oci_usage_totals(other, &t);
    assert_int_equal(t.bytes, 600);
    assert_int_equal(t.objects, 3);
    assert_int_equal(t.reconciled, 0); /* never walked: not to be trusted */
    oci_usage_close(other);

    /* Removals counted before their commits never show as a negative total. */
    oci_usage_add(f->evict.usage, -1000, -5);
    oci_usage_totals(f->evict.usage, &t);
    assert_int_equal(t.bytes, 0);
    assert_int_equal(t.objects, 0);
}

static void test_usage_damaged_renewed(void **state)
{
    struct fixture *f = *state;
    struct oci_digest a = digest_of("a");
    struct oci_usage_totals t;
    char err[256];
    int fd;

    oci_usage_note(f->evict.usage, &a, f->now);
    oci_usage_add(f->evict.usage, 500, 2);
    oci_usage_close(f->evict.usage);
    fd = open(f->usage_path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
    close(fd);
    f->evict.usage = oci_usage_open(f->usage_path, err, sizeof(err));
    assert_non_null(f->evict.usage);
    assert_int_equal(oci_usage_last(f->evict.usage, &a, f->now), 0);
    oci_usage_totals(f->evict.usage, &t);
    assert_int_equal(t.bytes, 0);

    /* A truncated file too. */
    oci_usage_close(f->evict.usage);
    assert_int_equal(truncate(f->usage_path, 100), 0);
    f->evict.usage = oci_usage_open(f->usage_path, err, sizeof(err));
    assert_non_null(f->evict.usage);
    oci_usage_note(f->evict.usage, &a, f->now);
    assert_int_equal(oci_usage_last(f->evict.usage, &a, f->now), f->now / 60 * 60);
}

static void test_usage_reconcile_keeps_concurrent_adds(void **state)
{
    struct fixture *f = *state;
    struct oci_usage_mark mark;
    struct oci_usage_totals t;

    oci_usage_add(f->evict.usage, 12345, 7); /* drifted */
    oci_usage_reconcile_begin(f->evict.usage, &mark);
    oci_usage_add(f->evict.usage, 10, 1); /* a commit during the walk */
    oci_usage_reconcile_end(f->evict.usage, &mark, 300, 3, f->now);
    oci_usage_totals(f->evict.usage, &t);
    assert_int_equal(t.bytes, 310);
    assert_int_equal(t.objects, 4);
    assert_int_equal(t.reconciled, f->now);
}

/* ---- eviction ---------------------------------------------------------- */

static void test_evict_least_recently_used_first(void **state)
{
    struct fixture *f = *state;
    struct oci_evict_stats stats;
    struct oci_digest d[6];
    int i;

    /* Six blobs of 200 bytes committed two hours ago: 1200 > 1000. */
    for (i = 0; i < 6; i++)
        d[i] = put_blob(f, i, 200, f->now - 2 * HOUR);
    /* Used in the order 3, 0, 5, 1, 4, 2 (2 most recently), a minute apart. */
    oci_usage_note(f->evict.usage, &d[3], f->now - 50 * 60);
    oci_usage_note(f->evict.usage, &d[0], f->now - 40 * 60);
    oci_usage_note(f->evict.usage, &d[5], f->now - 30 * 60);
    oci_usage_note(f->evict.usage, &d[1], f->now - 20 * 60);
    oci_usage_note(f->evict.usage, &d[4], f->now - 10 * 60);
    oci_usage_note(f->evict.usage, &d[2], f->now - 5 * 60);
    assert_true(oci_evict_due(&f->evict));

    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, OCI_EVICT_BY_POLICY, f->now, &stats),
                     STORAGE_OK);
    /* Down to the low-water mark (900): two go, the least recently used. */
    assert_int_equal(stats.walked_bytes, 1200);
    assert_int_equal(stats.walked_objects, 6);
    assert_int_equal(stats.evicted_objects, 2);
    assert_int_equal(stats.evicted_bytes, 400);
    assert_false(present(f, &d[3]));
    assert_false(present(f, &d[0]));
    for (i = 1; i < 6; i++)
        if (i != 3)
            assert_true(present(f, &d[i]));
    assert_int_equal(total_bytes(f), 800);
    assert_false(oci_evict_due(&f->evict));
}

static void test_evict_spares_young(void **state)
{
    struct fixture *f = *state;
    struct oci_evict_stats stats;
    struct oci_digest old = put_blob(f, 1, 600, f->now - 2 * HOUR);
    struct oci_digest young = put_blob(f, 2, 600, f->now - 60); /* committed a minute ago */

    /* The young one was never used since; the old one just now: still, the young stays. */
    oci_usage_note(f->evict.usage, &old, f->now);
    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, OCI_EVICT_BY_POLICY, f->now, &stats),
                     STORAGE_OK);
    assert_true(present(f, &young));
    assert_false(present(f, &old));
    assert_int_equal(stats.spared, 1);
    assert_int_equal(total_bytes(f), 600);
}

static void test_evict_without_table_uses_object_times(void **state)
{
    struct fixture *f = *state;
    struct oci_evict_stats stats;
    struct oci_digest older = put_blob(f, 1, 400, f->now - 3 * HOUR);
    struct oci_digest newer = put_blob(f, 2, 400, f->now - 2 * HOUR);
    struct oci_digest newest = put_blob(f, 3, 400, f->now - 1 * HOUR);

    /* No table entries (a lost record): the objects' own times decide. */
    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, OCI_EVICT_BY_POLICY, f->now, &stats),
                     STORAGE_OK);
    assert_false(present(f, &older));
    assert_true(present(f, &newer));
    assert_true(present(f, &newest));
}

static void test_evict_reconciles_drifted_total(void **state)
{
    struct fixture *f = *state;
    struct oci_evict_stats stats;
    struct oci_usage_totals t;

    put_blob(f, 1, 300, f->now - HOUR);
    oci_usage_add(f->evict.usage, 5000, 3); /* commits counted that never landed (a crash) */
    assert_true(oci_evict_due(&f->evict));
    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, OCI_EVICT_BY_POLICY, f->now, &stats),
                     STORAGE_OK);
    assert_int_equal(stats.evicted_objects, 0); /* the walk found the cache under its bound */
    oci_usage_totals(f->evict.usage, &t);
    assert_int_equal(t.bytes, 300);
    assert_int_equal(t.objects, 1);
    assert_int_equal(t.reconciled, f->now);
}

static void test_evict_pressure_frees_under_bound(void **state)
{
    struct fixture *f = *state;
    struct oci_evict_stats stats;
    int i;

    for (i = 0; i < 4; i++)
        put_blob(f, i, 100, f->now - HOUR - i * 60);
    assert_false(oci_evict_due(&f->evict));
    oci_evict_pressure(&f->evict); /* a full disk */
    assert_true(oci_evict_due(&f->evict));
    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, OCI_EVICT_BY_POLICY, f->now, &stats),
                     STORAGE_OK);
    assert_int_equal(stats.evicted_objects, 1); /* 400 -> at most 360 */
    assert_false(oci_evict_due(&f->evict));
}

static void test_evict_to_explicit_target(void **state)
{
    struct fixture *f = *state;
    struct oci_evict_stats stats;
    int i;

    for (i = 0; i < 4; i++)
        put_blob(f, i, 100, f->now - HOUR);
    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, 0, f->now, &stats), STORAGE_OK);
    assert_int_equal(stats.evicted_objects, 4);
    assert_int_equal(total_bytes(f), 0);
}

/* A use between the choice and the removal: remove_unless puts it back. */
static bool keep_always(void *arg, const char *key, const struct storage_info *info)
{
    (void)key, (void)info;
    ++*(int *)arg;
    return true;
}

static void test_remove_unless_puts_back(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->reg.storage;
    struct oci_digest d = put_blob(f, 1, 10, f->now - HOUR);
    char key[OCI_CACHE_KEY_MAX];
    int asked = 0;

    oci_cache_blob_key(&d, key);
    assert_int_equal(st->ops->remove_unless(st, key, keep_always, &asked), STORAGE_NOT_FOUND);
    assert_int_equal(asked, 1);
    assert_true(present(f, &d));
}

/* ---- manifests whose content was evicted ------------------------------- */

static void test_tag_of_evicted_manifest_is_a_miss(void **state)
{
    struct fixture *f = *state;
    const char manifest[] = "{\"schemaVersion\":2}";
    struct oci_manifest_record rec = {.size = sizeof(manifest) - 1, .media_type = "x/y"};
    struct oci_request tag = {.method = "GET", .path = "/v2/reg.test/app/manifests/latest"};
    struct oci_request head = {.method = "HEAD", .path = "/v2/reg.test/app/manifests/latest"};
    struct oci_plan plan;
    struct oci_evict_stats stats;
    char path[256], ref[OCI_DIGEST_STRING_MAX];

    rec.digest = digest_of(manifest);
    memset(&plan, 0, sizeof(plan));
    assert_int_equal(oci_route_parse(tag.path, NULL, "reg.test", &plan.route), OCI_OK);
    assert_int_equal(
        oci_cache_manifest_store(f->reg.storage, &plan.route, &rec, manifest, rec.size),
        STORAGE_OK);
    oci_registry_plan(&f->reg, &tag, &plan);
    assert_int_equal(plan.kind, OCI_PLAN_RESPOND); /* a hit */
    oci_plan_release(&plan);

    f->evict.min_age = 0;
    assert_int_equal(oci_evict_run(f->reg.storage, &f->evict, 0, f->now + 5, &stats), STORAGE_OK);
    assert_int_equal(stats.evicted_objects, 1);
    oci_registry_plan(&f->reg, &tag, &plan);
    assert_int_equal(plan.kind, OCI_PLAN_FETCH); /* a miss: fetched again */
    oci_plan_release(&plan);
    oci_registry_plan(&f->reg, &head, &plan);
    assert_int_equal(plan.kind, OCI_PLAN_FETCH);
    oci_plan_release(&plan);
    oci_digest_format(&rec.digest, ref);
    snprintf(path, sizeof(path), "/v2/reg.test/app/manifests/%s", ref);
    tag.path = path;
    oci_registry_plan(&f->reg, &tag, &plan);
    assert_int_equal(plan.kind, OCI_PLAN_FETCH);
    oci_plan_release(&plan);
}

/* A hit marks its blob used in the table: the hit path is what eviction sees. */
static void test_hit_marks_used(void **state)
{
    struct fixture *f = *state;
    struct oci_digest d = put_blob(f, 1, 10, f->now - HOUR);
    struct storage_info info;

    assert_int_equal(oci_usage_last(f->evict.usage, &d, f->now), 0);
    assert_true(oci_plan_cached(&f->reg, &d, &info));
    assert_true(oci_usage_last(f->evict.usage, &d, time(NULL)) >= f->now / 60 * 60);
}

/* A commit past the bound wakes the cleanup thread, which evicts in the background. */
static void test_commit_wakes_the_cleaner(void **state)
{
    struct fixture *f = *state;
    struct oci_cleaner *cleaner;
    struct oci_digest d;
    struct timespec pause = {0, 20 * 1000 * 1000};
    int i, polls;

    for (i = 0; i < 4; i++)
        put_blob(f, i, 200, f->now - HOUR - i * 60);
    struct oci_usage_totals t = {0};

    cleaner = oci_cleaner_start(&f->reg, 0);
    assert_non_null(cleaner);
    /* Its first walk (the totals were never reconciled) ends before the commit. */
    for (polls = 0; polls < 250 && t.reconciled == 0; polls++) {
        nanosleep(&pause, NULL);
        oci_usage_totals(f->evict.usage, &t);
    }
    assert_int_not_equal(t.reconciled, 0);
    d = put_blob(f, 9, 300, f->now - HOUR);
    oci_usage_add(f->evict.usage, -300, -1); /* counted by the commit below */
    oci_evict_committed(&f->evict, &d, 300); /* 1100 > 1000 */
    for (polls = 0; polls < 250 && total_bytes(f) > f->evict.low_water; polls++)
        nanosleep(&pause, NULL); /* a bounded wait (5 s) for the thread's work */
    oci_cleaner_stop(cleaner);
    assert_true(total_bytes(f) <= f->evict.low_water);
    assert_true(present(f, &d)); /* the one just committed is the most recently used */
}

/* The admin API: off is a 404 like any unknown path; without the front's marker a 403. */
static void test_admin_gate(void **state)
{
    struct fixture *f = *state;
    struct oci_digest d = put_blob(f, 1, 10, f->now - HOUR);
    char path[256], ref[OCI_DIGEST_STRING_MAX];
    struct oci_request req = {.method = "DELETE", .path = path};
    struct oci_plan plan;

    oci_digest_format(&d, ref);
    snprintf(path, sizeof(path), "/_admin/blobs/%s", ref);
    oci_registry_plan(&f->reg, &req, &plan);
    assert_int_equal(plan.head.status, 404);
    oci_plan_release(&plan);
    f->reg.options.admin = true;
    oci_registry_plan(&f->reg, &req, &plan);
    assert_int_equal(plan.head.status, 403);
    oci_plan_release(&plan);
    assert_true(present(f, &d));
    req.admin_marker = true;
    req.method = "GET";
    oci_registry_plan(&f->reg, &req, &plan);
    assert_int_equal(plan.head.status, 405);
    oci_plan_release(&plan);
    req.method = "DELETE";
    oci_registry_plan(&f->reg, &req, &plan);
    assert_int_equal(plan.head.status, 200);
    oci_plan_release(&plan);
    assert_false(present(f, &d));
    assert_int_equal(total_bytes(f), 0);
    oci_registry_plan(&f->reg, &req, &plan);
    assert_int_equal(plan.head.status, 404);
    oci_plan_release(&plan);
    req.path = "/_admin/blobs/../../etc/passwd";
    oci_registry_plan(&f->reg, &req, &plan);
    assert_int_equal(plan.head.status, 404);
    oci_plan_release(&plan);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_parse),
        cmocka_unit_test(test_inventory_references),
        T(test_usage_last_use),
        T(test_usage_shared_and_persistent),
        T(test_usage_damaged_renewed),
        T(test_usage_reconcile_keeps_concurrent_adds),
        T(test_evict_least_recently_used_first),
        T(test_evict_spares_young),
        T(test_evict_without_table_uses_object_times),
        T(test_evict_reconciles_drifted_total),
        T(test_evict_pressure_frees_under_bound),
        T(test_evict_to_explicit_target),
        T(test_remove_unless_puts_back),
        T(test_tag_of_evicted_manifest_is_a_miss),
        T(test_hit_marks_used),
        T(test_commit_wakes_the_cleaner),
        T(test_admin_gate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
