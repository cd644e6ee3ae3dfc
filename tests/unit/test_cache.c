/*
 * test_cache.c - the manifest records of core/cache.c: a record written by
 * the cache reads back, and a damaged record (a tampered cache, a shared S3
 * bucket) is a miss, never a crash or an over-read.
 *
 * Records go through the real filesystem backend in a mkdtemp directory.
 */
#define _GNU_SOURCE /* nftw */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache.h"
#include "core/route.h"
#include "storage/fs.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MEDIA "application/vnd.oci.image.manifest.v1+json"

struct fixture {
    char root[PATH_MAX];
    struct storage *st;
    struct oci_route route;
};

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof(f->root), "/tmp/test_cache.XXXXXX");
    if (mkdtemp(f->root) == NULL || (f->st = storage_fs_open(f->root, err, sizeof(err))) == NULL ||
        oci_route_parse("/v2/library/alpine/manifests/3.19", NULL, "docker.io", &f->route) !=
            OCI_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    f->st->ops->destroy(f->st);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Writes text as the tag's record, as a tampered cache would hold it. */
static void put_record(struct fixture *f, const char *text)
{
    char key[OCI_CACHE_KEY_MAX];

    oci_cache_manifest_key(&f->route, key);
    assert_int_equal(f->st->ops->put_small(f->st, key, text, strlen(text)), STORAGE_OK);
}

static enum storage_err lookup(struct fixture *f, struct oci_manifest_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    return oci_cache_manifest_lookup(f->st, &f->route, rec);
}

static void test_stored_record_reads_back(void **state)
{
    struct fixture *f = *state;
    struct oci_manifest_record rec = {.size = 1234}, got;
    static const char content[] = "{}";

    assert_int_equal(oci_digest_parse("sha256:" HEX64, 71, &rec.digest), OCI_OK);
    snprintf(rec.media_type, sizeof(rec.media_type), "%s", MEDIA);
    assert_int_equal(oci_cache_manifest_store(f->st, &f->route, &rec, content, 2), STORAGE_OK);
    assert_int_equal(lookup(f, &got), STORAGE_OK);
    assert_true(oci_digest_equal(&got.digest, &rec.digest));
    assert_int_equal(got.size, 1234);
    assert_string_equal(got.media_type, MEDIA);
}

/*
 * Leading blanks before a digest-sized word: with "%136s%n" the blanks
 * counted in the length, and the digest parser read past the 137-byte
 * buffer (found by the cache_record fuzz target).
 */
static void test_leading_blanks_are_a_miss(void **state)
{
    struct fixture *f = *state;
    struct oci_manifest_record rec;
    char text[512];

    /* No colon: the parser's memchr for one ran on past the buffer. */
    snprintf(text, sizeof(text), "%200s%s%s%s 5 " MEDIA "\n", "", HEX64, HEX64, "01234567");
    put_record(f, text);
    assert_int_equal(lookup(f, &rec), STORAGE_NOT_FOUND);
}

/* Every damaged form is a miss. */
static void test_damaged_records_are_misses(void **state)
{
    static const char *const damaged[] = {
        "",
        "\n",
        "sha256:" HEX64 "\n",
        "sha256:" HEX64 " 12\n",
        "sha256:" HEX64 " 12 \n",
        " sha256:" HEX64 " 12 " MEDIA "\n",
        "sha256:" HEX64 "  12 " MEDIA "\n",
        "sha256:" HEX64 " -12 " MEDIA "\n",
        "sha256:" HEX64 " +12 " MEDIA "\n",
        "sha256:" HEX64 " 12x " MEDIA "\n",
        "sha256:" HEX64 " 99999999999999999999 " MEDIA "\n",
        "sha256:" HEX64 " 12 " MEDIA " extra\n",
        "sha256:" HEX64 " 12 " MEDIA "\r\n",
        "sha256:" HEX64 " 12 " MEDIA "\n\n",
        "sha256:" HEX64 " 12 appl\x01ication/json\n",
        "sha256:" HEX64 "0 12 " MEDIA "\n",
        "sha256:" HEX64 "\t12\t" MEDIA "\n",
        "md5:0123 12 " MEDIA "\n",
    };
    struct fixture *f = *state;
    struct oci_manifest_record rec;
    size_t i;

    for (i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
        put_record(f, damaged[i]);
        if (lookup(f, &rec) != STORAGE_NOT_FOUND)
            fail_msg("record %zu (\"%s\") was accepted", i, damaged[i]);
    }
}

/* A media type longer than the record's field is a miss, not a truncation. */
static void test_long_media_type_is_a_miss(void **state)
{
    struct fixture *f = *state;
    struct oci_manifest_record rec;
    char text[512];

    snprintf(text, sizeof(text), "sha256:" HEX64 " 12 %0*d\n", OCI_MEDIA_TYPE_MAX + 1, 0);
    put_record(f, text);
    assert_int_equal(lookup(f, &rec), STORAGE_NOT_FOUND);
    snprintf(text, sizeof(text), "sha256:" HEX64 " 12 %0*d\n", OCI_MEDIA_TYPE_MAX, 0);
    put_record(f, text);
    assert_int_equal(lookup(f, &rec), STORAGE_OK);
    assert_int_equal(strlen(rec.media_type), OCI_MEDIA_TYPE_MAX);
}

/* A record without its final newline still reads: the newline is not the point. */
static void test_record_without_newline_reads(void **state)
{
    struct fixture *f = *state;
    struct oci_manifest_record rec;

    put_record(f, "sha256:" HEX64 " 18446744073709551615 " MEDIA);
    assert_int_equal(lookup(f, &rec), STORAGE_OK);
    assert_true(rec.size == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_record_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leading_blanks_are_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records_are_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_media_type_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_without_newline_reads, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
