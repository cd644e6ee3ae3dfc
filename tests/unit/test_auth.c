/*
 * test_auth.c - challenges, token answers and the token cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/auth.h"

static void test_bearer_challenge(void **state)
{
    struct oci_auth_challenge c;

    (void)state;
    oci_auth_parse_challenge("Bearer realm=\"https://auth.docker.io/token\","
                             "service=\"registry.docker.io\","
                             "scope=\"repository:library/alpine:pull,push\"",
                             &c);
    assert_int_equal(c.scheme, OCI_AUTH_BEARER);
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/alpine:pull,push");
}

static void test_challenge_forms(void **state)
{
    struct oci_auth_challenge c;

    (void)state;
    /* Bare values, any case for scheme and keys, spaces after commas, escapes. */
    oci_auth_parse_challenge("bearer Realm=https://r.example/t, service=svc, x=\"a\\\"b\"", &c);
    assert_int_equal(c.scheme, OCI_AUTH_BEARER);
    assert_string_equal(c.realm, "https://r.example/t");
    assert_string_equal(c.service, "svc");
    assert_string_equal(c.scope, "");

    oci_auth_parse_challenge("Basic realm=\"Registry Realm\"", &c);
    assert_int_equal(c.scheme, OCI_AUTH_BASIC);
    assert_string_equal(c.realm, "Registry Realm");

    oci_auth_parse_challenge("Negotiate abc", &c);
    assert_int_equal(c.scheme, OCI_AUTH_NONE);
    oci_auth_parse_challenge("", &c);
    assert_int_equal(c.scheme, OCI_AUTH_NONE);
    /* Unterminated quote: no overrun, value taken to the end. */
    oci_auth_parse_challenge("Bearer realm=\"https://x", &c);
    assert_string_equal(c.realm, "https://x");
}

static void test_token_answers(void **state)
{
    static const struct {
        const char *json;
        const char *token; /* NULL: refused */
        long lifetime;
    } cases[] = {
        {"{\"token\":\"abc\",\"expires_in\":300}", "abc", 300},
        {"{\"access_token\":\"xyz\"}", "xyz", 60},
        {"{\"token\":\"\",\"access_token\":\"xyz\",\"expires_in\":5}", "xyz", 60},
        {"{\"token\":\"t\",\"expires_in\":\"300\"}", "t", 60},
        {"{\"expires_in\":300}", NULL, 0},
        {"{\"token\":42}", NULL, 0},
        {"not json", NULL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *token = NULL;
        long lifetime = 0;
        bool ok = oci_auth_parse_token(cases[i].json, strlen(cases[i].json), &token, &lifetime);

        assert_int_equal(ok, cases[i].token != NULL);
        if (ok) {
            assert_string_equal(token, cases[i].token);
            assert_int_equal(lifetime, cases[i].lifetime);
        }
        free(token);
    }
}

static void test_token_cache(void **state)
{
    char buf[64];

    (void)state;
    oci_auth_token_clear();
    assert_false(oci_auth_token_get("docker.io", "repository:a:pull", buf, sizeof(buf)));
    oci_auth_token_put("docker.io", "repository:a:pull", "tok-a", 300);
    oci_auth_token_put("ghcr.io", "repository:a:pull", "tok-g", 300);
    assert_true(oci_auth_token_get("docker.io", "repository:a:pull", buf, sizeof(buf)));
    assert_string_equal(buf, "tok-a");
    assert_true(oci_auth_token_get("ghcr.io", "repository:a:pull", buf, sizeof(buf)));
    assert_string_equal(buf, "tok-g");
    assert_false(oci_auth_token_get("docker.io", "repository:b:pull", buf, sizeof(buf)));
    /* Replaced, not duplicated. */
    oci_auth_token_put("docker.io", "repository:a:pull", "tok-a2", 300);
    assert_true(oci_auth_token_get("docker.io", "repository:a:pull", buf, sizeof(buf)));
    assert_string_equal(buf, "tok-a2");
    /* About to expire: not handed out. */
    oci_auth_token_put("docker.io", "repository:c:pull", "short", 5);
    assert_false(oci_auth_token_get("docker.io", "repository:c:pull", buf, sizeof(buf)));
    /* Does not fit the caller's buffer: not handed out truncated. */
    assert_false(oci_auth_token_get("docker.io", "repository:a:pull", buf, 4));
    oci_auth_token_clear();
    assert_false(oci_auth_token_get("ghcr.io", "repository:a:pull", buf, sizeof(buf)));
}

static void test_token_cache_bounded(void **state)
{
    char scope[64], buf[64];
    int i;

    (void)state;
    /* Far more scopes than slots: the newest stay, nothing leaks (ASan checks). */
    for (i = 0; i < 1000; i++) {
        snprintf(scope, sizeof(scope), "repository:r%d:pull", i);
        oci_auth_token_put("docker.io", scope, "t", 300 + i);
    }
    assert_true(oci_auth_token_get("docker.io", "repository:r999:pull", buf, sizeof(buf)));
    assert_false(oci_auth_token_get("docker.io", "repository:r0:pull", buf, sizeof(buf)));
    oci_auth_token_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer_challenge),
        cmocka_unit_test(test_challenge_forms),
        cmocka_unit_test(test_token_answers),
        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_token_cache_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
