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

#include "core/upstream/auth.h"

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
        /* Would be headers of the token server's choosing in the retried request. */
        {"{\"token\":\"abc\\r\\nX-Injected: 1\"}", NULL, 0},
        {"{\"token\":\"abc\\nX-Injected: 1\"}", NULL, 0},
        {"{\"access_token\":\"abc\\r\\n\"}", NULL, 0},
        {"{\"token\":\"a b\"}", NULL, 0},
        {"{\"token\":\"a\\tb\"}", NULL, 0},
        {"{\"token\":\"a\\u007f\"}", NULL, 0},
        {"{\"token\":\"caf\\u00e9\"}", NULL, 0},
        {"{\"token\":\"eyJh.eyJz-_~+/=.c2ln\"}", "eyJh.eyJz-_~+/=.c2ln", 60},
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

/* An upstream entry as the config makes it. */
static struct oci_upstream upstream(const char *host, bool tls, bool with_credentials,
                                    char **realm_hosts)
{
    return (struct oci_upstream){
        .namespace_ = "example.com",
        .host = (char *)host,
        .tls = tls,
        .username = with_credentials ? "robot" : NULL,
        .password = with_credentials ? "secret" : NULL,
        .token_realm_hosts = realm_hosts,
        .configured = true,
    };
}

static void test_challenge_source(void **state)
{
    struct oci_upstream up = upstream("registry.example.com:5000", true, true, NULL);
    struct oci_upstream v6 = upstream("[::1]:5000", true, true, NULL);

    (void)state;
    assert_true(oci_auth_challenge_is_upstreams(&up, "https://registry.example.com:5000/v2/x"));
    assert_true(oci_auth_challenge_is_upstreams(&up, "https://Registry.Example.com/v2/x"));
    /* Where a redirect led: not the upstream's 401. */
    assert_false(oci_auth_challenge_is_upstreams(&up, "http://elsewhere:5000/v2/x"));
    assert_false(oci_auth_challenge_is_upstreams(&up, "https://registry.example.com.evil/v2/x"));
    assert_false(oci_auth_challenge_is_upstreams(&up, "https://example.com/v2/x"));
    assert_false(oci_auth_challenge_is_upstreams(&up, "not a url"));
    assert_true(oci_auth_challenge_is_upstreams(&v6, "https://[::1]:5000/v2/x"));
    assert_false(oci_auth_challenge_is_upstreams(&v6, "https://[::2]:5000/v2/x"));
}

/* The realm a redirect's target may name: only one of its own origin. */
static void test_same_origin(void **state)
{
    (void)state;
    assert_true(
        oci_auth_same_origin("https://ghcr.io/v2/a/b/manifests/1", "https://ghcr.io/token"));
    assert_true(oci_auth_same_origin("https://GHCR.io:443/v2/x", "https://ghcr.io/token?x=1"));
    assert_true(oci_auth_same_origin("http://h:8080/v2/x", "http://H:8080/token"));
    assert_true(oci_auth_same_origin("https://[::1]:5000/v2/x", "https://[::1]:5000/token"));
    assert_false(oci_auth_same_origin("https://ghcr.io/v2/x", "http://ghcr.io/token"));
    assert_false(oci_auth_same_origin("http://h:8080/v2/x", "http://h:8081/token"));
    assert_false(oci_auth_same_origin("https://ghcr.io/v2/x", "https://ghcr.io.evil/token"));
    assert_false(oci_auth_same_origin("https://ghcr.io/v2/x", "https://auth.ghcr.io/token"));
    assert_false(oci_auth_same_origin("https://ghcr.io/v2/x", "not a url"));
    assert_false(oci_auth_same_origin("", "https://ghcr.io/token"));
}

/* The key a redirect target's tokens are kept under: never a namespace (it has "://"). */
static void test_origin(void **state)
{
    static const struct {
        const char *url, *origin;
    } cases[] = {
        {"https://GHCR.io/v2/a/b/blobs/sha256:0?x=1", "https://ghcr.io:443"},
        {"http://h:8080/v2/x", "http://h:8080"},
        {"https://[::1]/v2/x", "https://[::1]:443"},
    };
    char *origin;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        origin = oci_auth_origin(cases[i].url);
        assert_non_null(origin);
        assert_string_equal(origin, cases[i].origin);
        free(origin);
    }
    assert_null(oci_auth_origin("not a url"));
}

static void test_realm_access(void **state)
{
    static char auth_host[] = "auth.example.com";
    static char *listed[] = {auth_host, NULL};
    static char *none[] = {NULL};
    static const struct {
        const char *host;
        bool tls, with_credentials;
        char **realm_hosts;
        const char *realm;
        enum oci_realm_access access;
    } cases[] = {
        /* The upstream's own host, any port, over https. */
        {"registry.example.com", true, true, NULL, "https://registry.example.com/token",
         OCI_REALM_CREDENTIALS},
        {"registry.example.com:5000", true, true, NULL, "https://REGISTRY.example.com:5001/t",
         OCI_REALM_CREDENTIALS},
        /* Plain http: not with tls: true, but with tls: false. */
        {"registry.example.com", true, true, NULL, "http://registry.example.com/token",
         OCI_REALM_ANONYMOUS},
        {"registry.example.com", false, true, NULL, "http://registry.example.com/token",
         OCI_REALM_CREDENTIALS},
        /* Someone else's realm: anonymous. */
        {"registry.example.com", true, true, NULL, "https://elsewhere/steal", OCI_REALM_ANONYMOUS},
        {"registry.example.com", false, true, NULL, "http://elsewhere/steal", OCI_REALM_ANONYMOUS},
        {"registry.example.com", true, true, NULL, "https://auth.example.com/token",
         OCI_REALM_ANONYMOUS},
        {"registry.example.com", true, true, NULL, "https://registry.example.com.evil/token",
         OCI_REALM_ANONYMOUS},
        {"registry.example.com", true, true, NULL, "https://registry.example.com@evil/token",
         OCI_REALM_ANONYMOUS},
        /* ... unless the operator lists its host. */
        {"registry.example.com", true, true, listed, "https://auth.example.com/token",
         OCI_REALM_CREDENTIALS},
        {"registry.example.com", true, true, listed, "http://auth.example.com/token",
         OCI_REALM_ANONYMOUS},
        {"registry.example.com", true, true, listed, "https://other.example.com/token",
         OCI_REALM_ANONYMOUS},
        /* Docker Hub: auth.docker.io by default, not when the list says otherwise. */
        {"registry-1.docker.io", true, true, NULL, "https://auth.docker.io/token",
         OCI_REALM_CREDENTIALS},
        {"registry-1.docker.io", true, true, none, "https://auth.docker.io/token",
         OCI_REALM_ANONYMOUS},
        {"registry-1.docker.io", true, true, NULL, "https://auth.docker.io.evil/token",
         OCI_REALM_ANONYMOUS},
        /* No credentials: anonymous wherever it is. */
        {"registry.example.com", true, false, NULL, "https://registry.example.com/token",
         OCI_REALM_ANONYMOUS},
        /* Not an http(s) URL: nothing at all. */
        {"registry.example.com", true, true, NULL, "ftp://registry.example.com/token",
         OCI_REALM_REFUSED},
        {"registry.example.com", true, true, NULL, "file:///etc/passwd", OCI_REALM_REFUSED},
        {"registry.example.com", true, true, NULL, "/token", OCI_REALM_REFUSED},
        {"registry.example.com", true, true, NULL, "", OCI_REALM_REFUSED},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct oci_upstream up =
            upstream(cases[i].host, cases[i].tls, cases[i].with_credentials, cases[i].realm_hosts);
        enum oci_realm_access got = oci_auth_realm_access(&up, cases[i].realm);

        if (got != cases[i].access)
            fail_msg("case %zu (%s for %s): got %d, expected %d", i, cases[i].realm, cases[i].host,
                     (int)got, (int)cases[i].access);
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
        cmocka_unit_test(test_bearer_challenge),    cmocka_unit_test(test_challenge_forms),
        cmocka_unit_test(test_token_answers),       cmocka_unit_test(test_challenge_source),
        cmocka_unit_test(test_same_origin),         cmocka_unit_test(test_origin),
        cmocka_unit_test(test_realm_access),        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_token_cache_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
