/*
 * test_reference.c - the name, tag, namespace and media type grammars.
 *
 * Every input is copied into a buffer of exactly its length, without a NUL,
 * so that a scanner reading past len trips AddressSanitizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/request/reference.h"

typedef bool (*checker)(const char *s, size_t len);

struct check {
    const char *input;
    bool valid;
};

static bool run_exact(checker fn, const char *s, size_t len)
{
    /* malloc(0) may be NULL, so an empty input points just past a 1-byte buffer. */
    char *copy = malloc(len > 0 ? len : 1);
    bool result;

    assert_non_null(copy);
    memcpy(copy, s, len);
    result = fn(len > 0 ? copy : copy + 1, len);
    free(copy);
    return result;
}

static void run_table(checker fn, const char *what, const struct check *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (run_exact(fn, cases[i].input, strlen(cases[i].input)) != cases[i].valid)
            fail_msg("%s(\"%s\") should be %s", what, cases[i].input,
                     cases[i].valid ? "true" : "false");
    }
}

#define RUN_TABLE(fn, cases) run_table(fn, #fn, cases, sizeof(cases) / sizeof(cases[0]))

/* A string of n copies of c, with a NUL; the caller frees it. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_name_grammar(void **state)
{
    static const struct check cases[] = {
        {"alpine", true},  {"library/alpine", true},
        {"a/b/c/d", true}, {"my-app", true},
        {"a--b", true},    {"a---b", true},
        {"a_b", true},     {"a__b", true},
        {"a.b", true},     {"a.b_c-d__e", true},
        {"0", true},       {"", false},
        {"Alpine", false}, {"library/Alpine", false},
        {"-a", false},     {".a", false},
        {"_a", false},     {"a-", false},
        {"a.", false},     {"a..b", false},
        {"a._b", false},   {"a___b", false},
        {"__", false},     {"a/../b", false},
        {"..", false},     {"a//b", false},
        {"/a", false},     {"a/", false},
        {"a b", false},    {"a%2fb", false},
        {"a:b", false},    {"a@b", false},
    };

    (void)state;
    RUN_TABLE(oci_name_valid, cases);
}

static void test_name_length(void **state)
{
    char *name = repeat('a', OCI_NAME_MAX + 1);

    (void)state;
    assert_true(run_exact(oci_name_valid, name, OCI_NAME_MAX));
    assert_false(run_exact(oci_name_valid, name, OCI_NAME_MAX + 1));
    free(name);
}

/* len, not the NUL, ends the input: bytes after it are never looked at. */
static void test_len_bounds_input(void **state)
{
    (void)state;
    assert_true(oci_name_valid("alpine!!", 6));
    assert_false(oci_name_valid("alpine-", 7));
    assert_true(oci_tag_valid("v1 x", 2));
    assert_true(oci_namespace_valid("reg.test/evil", 8));
    assert_false(oci_looks_like_registry("alpine.x", 6));
}

static void test_tag_grammar(void **state)
{
    static const struct check cases[] = {
        {"latest", true}, {"3.19", true},  {"V1.0-rc_2", true}, {"_x", true},   {"x", true},
        {"", false},      {".x", false},   {"-x", false},       {"a:b", false}, {"a/b", false},
        {"a b", false},   {"a%20", false}, {"a+b", false},      {"a@b", false},
    };

    (void)state;
    RUN_TABLE(oci_tag_valid, cases);
}

static void test_tag_length(void **state)
{
    char *tag = repeat('t', OCI_TAG_MAX + 1);

    (void)state;
    assert_true(run_exact(oci_tag_valid, tag, OCI_TAG_MAX));
    assert_false(run_exact(oci_tag_valid, tag, OCI_TAG_MAX + 1));
    free(tag);
}

static void test_namespace_grammar(void **state)
{
    static const struct check cases[] = {
        {"docker.io", true},
        {"reg.test", true},
        {"localhost", true},
        {"localhost:5000", true},
        {"Registry.Example.COM", true},
        {"my-reg.example.com:443", true},
        {"10.0.0.1", true},
        {"10.0.0.1:5000", true},
        {"host:1", true},
        {"host:65535", true},
        {"", false},
        {"a_b.com", false},
        {"user@host", false},
        {"user:pw@host", false},
        {"host/path", false},
        {"host?x", false},
        {"host:0", false},
        {"host:65536", false},
        {"host:99999", false},
        {"host:123456", false},
        {"host:05000", false},
        {"host:+80", false},
        {"host:-80", false},
        {"host:", false},
        {":5000", false},
        {"host:80:80", false},
        {"host:8a", false},
        {"[::1]", true},
        {"[::1]:5000", true},
        {"[2001:db8::1]:443", true},
        {"[::ffff:127.0.0.1]", true},
        {"[::1", false},
        {"[]", false},
        {"[::1]x", false},
        {"[::1]:", false},
        {"[fe80::1%eth0]", false},
        {"[not:an:address]", false},
        {"-host.com", false},
        {"host-.com", false},
        {"a..b", false},
        {".host", false},
        {"host.", false},
        {"ho st", false},
    };

    (void)state;
    RUN_TABLE(oci_namespace_valid, cases);
}

static void test_namespace_lengths(void **state)
{
    char *label = repeat('a', 64);
    /* "a.a.a...": every label valid, so only the total length can fail it. */
    char *host = repeat('.', OCI_NAMESPACE_MAX + 2);

    (void)state;
    assert_true(run_exact(oci_namespace_valid, label, 63));
    assert_false(run_exact(oci_namespace_valid, label, 64));
    for (size_t i = 0; i < OCI_NAMESPACE_MAX + 2; i += 2)
        host[i] = 'a';
    assert_true(run_exact(oci_namespace_valid, host, OCI_NAMESPACE_MAX));
    assert_false(run_exact(oci_namespace_valid, host, OCI_NAMESPACE_MAX + 2));
    free(label);
    free(host);
}

static void test_looks_like_registry(void **state)
{
    static const struct check cases[] = {
        {"docker.io", true}, {"localhost", true}, {"localhost:5000", true}, {"host:80", true},
        {"library", false},  {"alpine", false},   {"localhostx", false},    {"", false},
    };

    (void)state;
    RUN_TABLE(oci_looks_like_registry, cases);
}

static void test_ip_literal(void **state)
{
    static const struct check cases[] = {
        {"192.168.0.1", true},
        {"10.0.0.1.", true},
        {"127.1", true},
        {"0x7f.0.0.1", true},
        {"2130706433", true},
        {"0x7f000001", true},
        {"example.123", true},
        {"[::1]", true},
        {"[fe80::1%25eth0]", true},
        {"::1", true},
        {"2001:db8::1", true},
        {"docker.io", false},
        {"localhost", false},
        {"1.2.3.example", false},
        {"123.com", false},
        {"host:5000", false},
        {"", false},
    };

    (void)state;
    RUN_TABLE(oci_host_is_ip_literal, cases);
}

/* RFC 6838 names: what an upstream may make a Content-Type or a cache record say. */
static void test_media_type_grammar(void **state)
{
    static const struct check cases[] = {
        {"application/vnd.oci.image.manifest.v1+json", true},
        {"application/vnd.docker.distribution.manifest.v1+prettyjws", true},
        {"application/json", true},
        {"Application/JSON", true},
        {"a/b", true},
        {"0/9", true},
        {"x-a!#$&^_.+-/y-b!#$&^_.+-", true},
        {"", false},
        {"application", false},
        {"application/", false},
        {"/json", false},
        {"a/b/c", false},
        {"+a/b", false},
        {"a/.b", false},
        {"application/json; charset=utf-8", false},
        {"application/json ", false},
        {" application/json", false},
        {"application/j son", false},
        {"application/json\r", false},
        {"application/json\rX-Injected: 1", false},
        {"application/json\nX-Injected: 1", false},
        {"application/js\x01on", false},
        {"application/js\x7fon", false},
        {"application/js\xc3\xa9on", false},
        {"application/\"json\"", false},
        {"application/js,on", false},
        {"application/js*on", false},
    };

    (void)state;
    RUN_TABLE(oci_media_type_valid, cases);
}

/* Type and subtype are at most 127 bytes each, so a valid one fits OCI_MEDIA_TYPE_MAX. */
static void test_media_type_length(void **state)
{
    char *s = repeat('a', OCI_MEDIA_TYPE_MAX + 1);

    (void)state;
    s[127] = '/';
    assert_true(run_exact(oci_media_type_valid, s, OCI_MEDIA_TYPE_MAX));
    assert_false(run_exact(oci_media_type_valid, s, OCI_MEDIA_TYPE_MAX + 1));
    s[127] = 'a';
    s[128] = '/';
    assert_false(run_exact(oci_media_type_valid, s, OCI_MEDIA_TYPE_MAX));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_grammar),      cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_len_bounds_input),  cmocka_unit_test(test_tag_grammar),
        cmocka_unit_test(test_tag_length),        cmocka_unit_test(test_namespace_grammar),
        cmocka_unit_test(test_namespace_lengths), cmocka_unit_test(test_looks_like_registry),
        cmocka_unit_test(test_ip_literal),        cmocka_unit_test(test_media_type_grammar),
        cmocka_unit_test(test_media_type_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
