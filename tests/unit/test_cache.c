/*
 * test_cache.c - the manifest records of core/cache/cache.c as read back from
 * storage: exactly what the cache writes parses, and every damaged form
 * (a tampered cache, a shared S3 bucket) is refused, never over-read.
 *
 * Each record is given in a heap buffer of its exact size with no NUL after
 * it, so ASan reports any read past its end. (test_storage_fs.c has a record
 * stored and looked up through the filesystem backend.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache/cache.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MEDIA "application/vnd.oci.image.manifest.v1+json"

/* Parses len bytes of text from an exact-size copy. */
static bool parse(const char *text, size_t len, struct oci_manifest_record *rec)
{
    char *buf = malloc(len ? len : 1);
    bool ok;

    assert_non_null(buf);
    memcpy(buf, text, len);
    memset(rec, 0, sizeof(*rec));
    ok = oci_cache_record_parse(buf, len, rec);
    free(buf);
    return ok;
}

static bool parse_str(const char *text, struct oci_manifest_record *rec)
{
    return parse(text, strlen(text), rec);
}

static void test_record_reads(void **state)
{
    struct oci_manifest_record rec;

    (void)state;
    assert_true(parse_str("sha256:" HEX64 " 1234 " MEDIA "\n", &rec));
    assert_string_equal(rec.digest.hex, HEX64);
    assert_int_equal(rec.size, 1234);
    assert_string_equal(rec.media_type, MEDIA);
    /* Without its final newline too, and up to the largest size. */
    assert_true(parse_str("sha256:" HEX64 " 18446744073709551615 " MEDIA, &rec));
    assert_true(rec.size == UINT64_MAX);
}

/*
 * Leading blanks before a digest-sized word without a colon: with
 * "%136s%n" the blanks counted in the length, and the digest parser's
 * memchr ran past the 137-byte buffer (a stack over-read under ASan).
 */
static void test_leading_blanks(void **state)
{
    struct oci_manifest_record rec;
    char text[512];

    (void)state;
    snprintf(text, sizeof(text), "%200s%s%s%s 5 " MEDIA "\n", "", HEX64, HEX64, "01234567");
    assert_false(parse_str(text, &rec));
}

static void test_damaged_records(void **state)
{
    static const char *const damaged[] = {
        "",
        "\n",
        "sha256:" HEX64,
        "sha256:" HEX64 " ",
        "sha256:" HEX64 "\n",
        "sha256:" HEX64 " 12",
        "sha256:" HEX64 " 12\n",
        "sha256:" HEX64 " 12 \n",
        " sha256:" HEX64 " 12 " MEDIA "\n",
        "sha256:" HEX64 "  12 " MEDIA "\n",
        "sha256:" HEX64 " -12 " MEDIA "\n",
        "sha256:" HEX64 " +12 " MEDIA "\n",
        "sha256:" HEX64 " 12x " MEDIA "\n",
        "sha256:" HEX64 " 18446744073709551616 " MEDIA "\n",
        "sha256:" HEX64 " 99999999999999999999 " MEDIA "\n",
        "sha256:" HEX64 " 12 " MEDIA " extra\n",
        "sha256:" HEX64 " 12 " MEDIA "\r\n",
        "sha256:" HEX64 " 12 " MEDIA "\n\n",
        "sha256:" HEX64 " 12 appl\x01ication/json\n",
        "sha256:" HEX64 " 12 appl\x7f"
        "ication/json\n",
        "sha256:" HEX64 "0 12 " MEDIA "\n",
        "sha256:" HEX64 "\t12\t" MEDIA "\n",
        "md5:0123 12 " MEDIA "\n",
    };
    struct oci_manifest_record rec;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++)
        if (parse_str(damaged[i], &rec))
            fail_msg("record %zu (\"%s\") was accepted", i, damaged[i]);
    /* A NUL inside the record is damage too, not its end. */
    assert_false(parse("sha256:" HEX64 " 12 " MEDIA "\0x\n", 71 + 4 + 42 + 3, &rec));
}

/* Media types are checked as Content-Types: the longest one fits, a longer one is refused. */
static void test_media_type(void **state)
{
    struct oci_manifest_record rec;
    char text[512];

    (void)state;
    snprintf(text, sizeof(text), "sha256:" HEX64 " 12 %0127d/%0127d\n", 0, 0);
    assert_true(parse_str(text, &rec));
    assert_int_equal(strlen(rec.media_type), OCI_MEDIA_TYPE_MAX);
    snprintf(text, sizeof(text), "sha256:" HEX64 " 12 %0128d/%0127d\n", 0, 0);
    assert_false(parse_str(text, &rec));
    assert_false(parse_str("sha256:" HEX64 " 12 application\n", &rec));
    assert_false(parse_str("sha256:" HEX64 " 12 application/json;charset=utf-8\n", &rec));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_reads),
        cmocka_unit_test(test_leading_blanks),
        cmocka_unit_test(test_damaged_records),
        cmocka_unit_test(test_media_type),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
