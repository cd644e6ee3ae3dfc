/*
 * test_route.c - path layout, namespace resolution and the error each bad
 * request maps to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/request/route.h"

#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define DIGEST       "sha256:" SHA256_EMPTY

struct expect {
    const char *path;
    const char *query;
    const char *default_ns;
    enum oci_route_kind kind;
    const char *namespace_;
    const char *name;
    const char *reference;
};

struct bad {
    const char *path;
    const char *query;
};

static void check_route(const struct expect *e)
{
    struct oci_route r;
    const char *ns = e->default_ns ? e->default_ns : OCI_DOCKER_HUB_NAMESPACE;
    enum oci_error err = oci_route_parse(e->path, e->query, ns, &r);
    bool by_digest = strchr(e->reference, ':') != NULL;

    if (err != OCI_OK || r.kind != e->kind || strcmp(r.namespace_, e->namespace_) != 0 ||
        strcmp(r.name, e->name) != 0 || strcmp(r.reference, e->reference) != 0 ||
        r.by_digest != by_digest)
        fail_msg("%s?%s: got %s, kind %d, namespace \"%s\", name \"%s\", reference \"%s\"", e->path,
                 e->query ? e->query : "", oci_error_code(err), (int)r.kind, r.namespace_, r.name,
                 r.reference);
}

static void check_routes(const struct expect *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_route(&cases[i]);
}

#define CHECK_ROUTES(cases) check_routes(cases, sizeof(cases) / sizeof(cases[0]))

static void check_errors(const struct bad *cases, size_t n, enum oci_error want)
{
    for (size_t i = 0; i < n; i++) {
        struct oci_route r;
        enum oci_error got =
            oci_route_parse(cases[i].path, cases[i].query, OCI_DOCKER_HUB_NAMESPACE, &r);

        if (got != want)
            fail_msg("%s ? %s: got %s, want %s", cases[i].path,
                     cases[i].query ? cases[i].query : "", oci_error_code(got),
                     oci_error_code(want));
    }
}

#define CHECK_ERRORS(cases, want) check_errors(cases, sizeof(cases) / sizeof(cases[0]), want)

static void test_base(void **state)
{
    static const struct expect cases[] = {
        {"/v2/", NULL, NULL, OCI_ROUTE_BASE, "docker.io", "", ""},
        {"/v2", NULL, NULL, OCI_ROUTE_BASE, "docker.io", "", ""},
        {"/v2/", NULL, "ghcr.io", OCI_ROUTE_BASE, "ghcr.io", "", ""},
        {"/v2/", "ns=quay.io", NULL, OCI_ROUTE_BASE, "quay.io", "", ""},
        /* containerd override_path pings the mirror's per-registry API root. */
        {"/v2/ghcr.io/", NULL, NULL, OCI_ROUTE_BASE, "ghcr.io", "", ""},
        {"/v2/ghcr.io", NULL, NULL, OCI_ROUTE_BASE, "ghcr.io", "", ""},
        {"/v2/localhost:5000/", NULL, NULL, OCI_ROUTE_BASE, "localhost:5000", "", ""},
        {"/v2/docker.io/", "ns=docker.io", NULL, OCI_ROUTE_BASE, "docker.io", "", ""},
        /* Host names are case-insensitive: one namespace, one cache. */
        {"/v2/", "ns=Docker.IO", NULL, OCI_ROUTE_BASE, "docker.io", "", ""},
    };

    (void)state;
    CHECK_ROUTES(cases);
}

/* Docker's registry-mirrors: no namespace in the request, so the default; Hub adds library/. */
static void test_default_namespace(void **state)
{
    static const struct expect cases[] = {
        {"/v2/alpine/manifests/3.19", NULL, NULL, OCI_ROUTE_MANIFEST, "docker.io", "library/alpine",
         "3.19"},
        {"/v2/alpine/manifests/3.19", "ns=Docker.io", NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "library/alpine", "3.19"},
        {"/v2/library/alpine/manifests/latest", NULL, NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "library/alpine", "latest"},
        {"/v2/bitnami/redis/blobs/" DIGEST, NULL, NULL, OCI_ROUTE_BLOB, "docker.io",
         "bitnami/redis", DIGEST},
        {"/v2/alpine/manifests/" DIGEST, NULL, NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "library/alpine", DIGEST},
        {"/v2/alpine/manifests/3.19", NULL, "ghcr.io", OCI_ROUTE_MANIFEST, "ghcr.io", "alpine",
         "3.19"},
    };

    (void)state;
    CHECK_ROUTES(cases);
}

/* cri-o's "mirror/<registry>": the first component names the registry. */
static void test_path_namespace(void **state)
{
    static const struct expect cases[] = {
        {"/v2/docker.io/library/alpine/blobs/" DIGEST, NULL, NULL, OCI_ROUTE_BLOB, "docker.io",
         "library/alpine", DIGEST},
        {"/v2/docker.io/alpine/manifests/latest", NULL, NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "library/alpine", "latest"},
        {"/v2/ghcr.io/foo/manifests/1", NULL, NULL, OCI_ROUTE_MANIFEST, "ghcr.io", "foo", "1"},
        {"/v2/ghcr.io/org/app/manifests/v1", NULL, "quay.io", OCI_ROUTE_MANIFEST, "ghcr.io",
         "org/app", "v1"},
        {"/v2/localhost:5000/app/manifests/v1", NULL, NULL, OCI_ROUTE_MANIFEST, "localhost:5000",
         "app", "v1"},
        {"/v2/localhost/app/manifests/v1", NULL, NULL, OCI_ROUTE_MANIFEST, "localhost", "app",
         "v1"},
        {"/v2/10.0.0.1:5000/app/manifests/v1", NULL, NULL, OCI_ROUTE_MANIFEST, "10.0.0.1:5000",
         "app", "v1"},
    };

    (void)state;
    CHECK_ROUTES(cases);
}

/* containerd hosts.toml mirrors: "?ns=<registry>", with or without override_path. */
static void test_query_namespace(void **state)
{
    static const struct expect cases[] = {
        {"/v2/library/alpine/manifests/3.19", "ns=docker.io", NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "library/alpine", "3.19"},
        {"/v2/app/manifests/v1", "ns=localhost%3A5000", NULL, OCI_ROUTE_MANIFEST, "localhost:5000",
         "app", "v1"},
        {"/v2/app/manifests/v1", "ns=localhost%3a5000", NULL, OCI_ROUTE_MANIFEST, "localhost:5000",
         "app", "v1"},
        {"/v2/app/manifests/v1", "x=1&&ns=quay.io&y", NULL, OCI_ROUTE_MANIFEST, "quay.io", "app",
         "v1"},
        {"/v2/app/manifests/v1", "nsx=quay.io&xns=ghcr.io", "ghcr.io", OCI_ROUTE_MANIFEST,
         "ghcr.io", "app", "v1"},
        {"/v2/app/manifests/v1", "", NULL, OCI_ROUTE_MANIFEST, "docker.io", "library/app", "v1"},
        /* override_path: the registry is in the path too, and is dropped. */
        {"/v2/docker.io/library/alpine/manifests/latest", "ns=docker.io", NULL, OCI_ROUTE_MANIFEST,
         "docker.io", "library/alpine", "latest"},
        {"/v2/docker.io/alpine/blobs/" DIGEST, "ns=docker.io", NULL, OCI_ROUTE_BLOB, "docker.io",
         "library/alpine", DIGEST},
        {"/v2/localhost:5000/app/manifests/v1", "ns=localhost%3A5000", NULL, OCI_ROUTE_MANIFEST,
         "localhost:5000", "app", "v1"},
        /* The query wins; another registry-like component is then part of the name. */
        {"/v2/ghcr.io/foo/manifests/1", "ns=quay.io", NULL, OCI_ROUTE_MANIFEST, "quay.io",
         "ghcr.io/foo", "1"},
        /* Only a whole component matches the namespace. */
        {"/v2/docker.iox/foo/manifests/1", "ns=docker.io", NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "docker.iox/foo", "1"},
    };

    (void)state;
    CHECK_ROUTES(cases);
}

/* The reference is the last component, so a repository may have a "manifests" component. */
static void test_endpoint_words_in_name(void **state)
{
    static const struct expect cases[] = {
        {"/v2/foo/manifests/bar/manifests/latest", NULL, "ghcr.io", OCI_ROUTE_MANIFEST, "ghcr.io",
         "foo/manifests/bar", "latest"},
        {"/v2/team/manifests/blobs/" DIGEST, NULL, NULL, OCI_ROUTE_BLOB, "docker.io",
         "team/manifests", DIGEST},
        {"/v2/blobs/manifests/manifests", NULL, NULL, OCI_ROUTE_MANIFEST, "docker.io",
         "library/blobs", "manifests"},
    };

    (void)state;
    CHECK_ROUTES(cases);
}

static void test_digest_fields(void **state)
{
    struct oci_route r;

    (void)state;
    assert_int_equal(oci_route_parse("/v2/alpine/blobs/" DIGEST, NULL, "docker.io", &r), OCI_OK);
    assert_true(r.by_digest);
    assert_int_equal(r.digest.alg, OCI_DIGEST_SHA256);
    assert_string_equal(r.digest.hex, SHA256_EMPTY);
    assert_int_equal(oci_route_parse("/v2/alpine/manifests/latest", NULL, "docker.io", &r), OCI_OK);
    assert_false(r.by_digest);
}

static void test_not_found(void **state)
{
    static const struct bad cases[] = {
        {"/", NULL},
        {"", NULL},
        {"/v1/alpine/manifests/latest", NULL},
        {"/v2x/alpine/manifests/latest", NULL},
        {"/v", NULL},
        {"/v2/alpine", NULL},
        {"/v2/alpine/", NULL},
        {"/v2//", NULL},
        {"/v2/alpine/manifests/", NULL},
        {"/v2/alpine/manifests/latest/", NULL},
        {"/v2/manifests/latest", NULL},
        {"/v2/blobs/" DIGEST, NULL},
        {"/v2/alpine/tags/lists", NULL},
        {"/v2/alpine/tags/", NULL},
        {"/v2/_catalog/", NULL},
    };

    (void)state;
    CHECK_ERRORS(cases, OCI_E_NOT_FOUND);
}

/* The push and discovery endpoints of hosted namespaces. */
static void test_hosted_endpoints(void **state)
{
    static const char id[] = "0123456789abcdef0123456789abcdef";
    char path[256];
    struct oci_route r;

    (void)state;
    assert_int_equal(oci_route_parse("/v2/myorg/app/blobs/uploads/", NULL, "hosted.test", &r),
                     OCI_OK);
    assert_int_equal(r.kind, OCI_ROUTE_UPLOAD_START);
    assert_string_equal(r.namespace_, "hosted.test");
    assert_string_equal(r.name, "myorg/app");
    assert_int_equal(r.name_path_len, strlen("/v2/myorg/app"));
    snprintf(path, sizeof(path), "/v2/reg.test/app/blobs/uploads/%s", id);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_OK);
    assert_int_equal(r.kind, OCI_ROUTE_UPLOAD);
    assert_string_equal(r.namespace_, "reg.test");
    assert_string_equal(r.reference, id);
    assert_int_equal(r.name_path_len, strlen("/v2/reg.test/app"));
    assert_false(r.ns_in_query);
    assert_int_equal(oci_route_parse("/v2/app/tags/list", "ns=reg.test&n=2", "docker.io", &r),
                     OCI_OK);
    assert_int_equal(r.kind, OCI_ROUTE_TAGS);
    assert_true(r.ns_in_query);
    assert_string_equal(r.name, "app");
    assert_int_equal(oci_route_parse("/v2/a/b/referrers/" DIGEST, NULL, "reg.test", &r), OCI_OK);
    assert_int_equal(r.kind, OCI_ROUTE_REFERRERS);
    assert_true(r.by_digest);
    assert_int_equal(oci_route_parse("/v2/_catalog", "n=1", "reg.test", &r), OCI_OK);
    assert_int_equal(r.kind, OCI_ROUTE_CATALOG);
    assert_string_equal(r.namespace_, "reg.test");
    /* An id is 32 lowercase hex digits, nothing else. */
    snprintf(path, sizeof(path), "/v2/app/blobs/uploads/%.31sG", id);
    assert_int_equal(oci_route_parse(path, NULL, "reg.test", &r), OCI_E_BLOB_UPLOAD_UNKNOWN);
    snprintf(path, sizeof(path), "/v2/app/blobs/uploads/%sa", id);
    assert_int_equal(oci_route_parse(path, NULL, "reg.test", &r), OCI_E_BLOB_UPLOAD_UNKNOWN);
}

static void test_query_param(void **state)
{
    char v[16];
    bool found;

    (void)state;
    assert_true(oci_query_param("a=1&digest=sha256%3Aab&b", "digest", v, sizeof(v), &found));
    assert_true(found);
    assert_string_equal(v, "sha256:ab");
    assert_true(oci_query_param("xdigest=1&digestx=2", "digest", v, sizeof(v), &found));
    assert_false(found);
    assert_true(oci_query_param(NULL, "digest", v, sizeof(v), &found));
    assert_false(found);
    assert_false(oci_query_param("n=1&n=2", "n", v, sizeof(v), &found));            /* twice */
    assert_false(oci_query_param("n=%zz", "n", v, sizeof(v), &found));              /* bad escape */
    assert_false(oci_query_param("n=%0a", "n", v, sizeof(v), &found));              /* control */
    assert_false(oci_query_param("n=0123456789abcdef", "n", v, sizeof(v), &found)); /* long */
}

static void test_name_invalid(void **state)
{
    static const struct bad cases[] = {
        {"/v2/Alpine/manifests/latest", NULL},
        {"/v2/%2e%2e/manifests/latest", NULL},
        {"/v2/a/%2e%2e/b/manifests/latest", NULL},
        {"/v2/a%2fb/manifests/latest", NULL},
        {"/v2/a/../b/manifests/latest", NULL},
        {"/v2/../manifests/latest", NULL},
        {"/v2/a//b/manifests/latest", NULL},
        {"/v2//a/manifests/latest", NULL},
        {"/v2//manifests/latest", NULL},
        {"/v2/a/./b/manifests/latest", NULL},
        {"/v2/docker.io//alpine/manifests/latest", NULL},
        {"/v2/a..b/manifests/latest", NULL},
        {"/v2/a___b/manifests/latest", NULL},
        {"/v2/-a/manifests/latest", NULL},
        /* A registry-like first component must be a valid namespace. */
        {"/v2/a_b.com/foo/manifests/latest", NULL},
        {"/v2/host:0/foo/manifests/latest", NULL},
        {"/v2/host:65536/foo/manifests/latest", NULL},
        {"/v2/user@host.com/foo/manifests/latest", NULL},
        {"/v2/a_b.com/", NULL},
        /* The "ns" parameter must decode to a valid namespace, once. */
        {"/v2/alpine/manifests/latest", "ns="},
        {"/v2/alpine/manifests/latest", "ns=a_b.com"},
        {"/v2/alpine/manifests/latest", "ns=%zz"},
        {"/v2/alpine/manifests/latest", "ns=reg.test%3"},
        {"/v2/alpine/manifests/latest", "ns=reg.test%"},
        {"/v2/alpine/manifests/latest", "ns=reg.test%2Fpath"},
        {"/v2/alpine/manifests/latest", "ns=user%40reg.test"},
        {"/v2/alpine/manifests/latest", "ns=reg.test%00.evil"},
        {"/v2/alpine/manifests/latest", "ns=localhost:0"},
        {"/v2/alpine/manifests/latest", "ns=%5B%3A%3A1"},
        {"/v2/alpine/manifests/latest", "ns=docker.io&ns=ghcr.io"},
        {"/v2/", "ns=a_b.com"},
    };

    (void)state;
    CHECK_ERRORS(cases, OCI_E_NAME_INVALID);
}

static void test_tag_invalid(void **state)
{
    static const struct bad cases[] = {
        {"/v2/alpine/manifests/-x", NULL},   {"/v2/alpine/manifests/.x", NULL},
        {"/v2/alpine/manifests/a%20", NULL}, {"/v2/alpine/manifests/a+b", NULL},
        {"/v2/alpine/manifests/..", NULL},
    };

    (void)state;
    CHECK_ERRORS(cases, OCI_E_TAG_INVALID);
}

static void test_digest_invalid(void **state)
{
    static const struct bad cases[] = {
        {"/v2/alpine/blobs/latest", NULL},
        {"/v2/alpine/blobs/sha256:abc", NULL},
        {"/v2/alpine/manifests/sha256:abc", NULL},
        {"/v2/alpine/manifests/"
         "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
         NULL},
        {"/v2/alpine/blobs/" DIGEST "00", NULL},
        {"/v2/alpine/manifests/SHA256:" SHA256_EMPTY, NULL},
    };

    (void)state;
    CHECK_ERRORS(cases, OCI_E_DIGEST_INVALID);
}

/* A well-formed digest of an algorithm we do not hash is a bad digest (400), not a 405. */
static void test_unsupported_algorithm(void **state)
{
    static const char *const paths[] = {
        "/v2/alpine/blobs/sha384:abcd",
        "/v2/alpine/blobs/md5:abc",
        "/v2/alpine/manifests/md5:d41d8cd98f00b204e9800998ecf8427e",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct oci_route r;

        assert_int_equal(oci_route_parse(paths[i], NULL, "docker.io", &r), OCI_E_DIGEST_INVALID);
        assert_non_null(r.why);
        assert_non_null(strstr(r.why, "unsupported digest algorithm"));
    }
}

/*
 * On a read, a manifest reference that is neither tag nor digest is unknown
 * (404, the conformance suite's ".INVALID_MANIFEST_NAME"), whatever the parse
 * said; a blob's bad digest and a bad name stay 400.
 */
static void test_read_errors(void **state)
{
    static const struct {
        const char *path;
        enum oci_error parsed, read;
    } cases[] = {
        {"/v2/alpine/manifests/.INVALID_MANIFEST_NAME", OCI_E_TAG_INVALID, OCI_E_MANIFEST_UNKNOWN},
        {"/v2/alpine/manifests/-x", OCI_E_TAG_INVALID, OCI_E_MANIFEST_UNKNOWN},
        {"/v2/alpine/manifests/sha256:totallywrong", OCI_E_DIGEST_INVALID, OCI_E_MANIFEST_UNKNOWN},
        {"/v2/alpine/manifests/md5:abc", OCI_E_DIGEST_INVALID, OCI_E_MANIFEST_UNKNOWN},
        {"/v2/alpine/blobs/sha256:totallywrong", OCI_E_DIGEST_INVALID, OCI_E_DIGEST_INVALID},
        {"/v2/alpine/blobs/md5:abc", OCI_E_DIGEST_INVALID, OCI_E_DIGEST_INVALID},
        {"/v2/Alpine/manifests/.INVALID", OCI_E_NAME_INVALID, OCI_E_NAME_INVALID},
        {"/v2/alpine/tags/lists", OCI_E_NOT_FOUND, OCI_E_NOT_FOUND},
        {"/v2/alpine/blobs/uploads/1234", OCI_E_BLOB_UPLOAD_UNKNOWN, OCI_E_BLOB_UPLOAD_UNKNOWN},
        {"/v2/alpine/referrers/sha256:x", OCI_E_DIGEST_INVALID, OCI_E_DIGEST_INVALID},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct oci_route r;
        enum oci_error parsed = oci_route_parse(cases[i].path, NULL, "docker.io", &r);
        enum oci_error read = oci_route_read_error(&r, parsed);

        if (parsed != cases[i].parsed || read != cases[i].read)
            fail_msg("%s: parsed %s, read %s; want %s, %s", cases[i].path, oci_error_code(parsed),
                     oci_error_code(read), oci_error_code(cases[i].parsed),
                     oci_error_code(cases[i].read));
    }
}

/* Path pieces for test_weird_paths: every combination is routed. */
static const char *const weird_prefixes[] = {"/v2/", "/v2",    "/v2//",    "/V2/",
                                             "v2/",  "/v2/./", "/healthz/"};
static const char *const weird_names[] = {
    "alpine",
    "library/alpine",
    "docker.io/alpine",
    "Docker.IO/x",
    "a..b",
    "%2e%2e",
    "a/../b",
    "",
    "x%00y",
    "localhost:5000/x",
    "[::1]:5000/x",
    "a_b.com/x",
    "a/manifests/b",
    "a\x01"
    "b",
    "\xff\xfe",
    "a b",
    "a\r\nb",
    "blobs",
    "manifests",
    "a:/b",
};
static const char *const weird_endpoints[] = {
    "manifests", "blobs", "tags", "blobs/uploads", "referrers", "manifests/x/manifests", "",
};
static const char *const weird_refs[] = {
    "latest",
    ".INVALID_MANIFEST_NAME",
    "sha256:totallywrong",
    "md5:abc",
    "sha384:" SHA256_EMPTY,
    DIGEST,
    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "sha512:" SHA256_EMPTY SHA256_EMPTY,
    "",
    "a:b:c",
    ":",
    "sha256:",
    "\x01",
    "\xff",
    "a\rb",
    "%41",
    "a%00",
    "x/",
    "..",
};
static const char *const weird_queries[] = {
    NULL, "", "ns=", "ns=docker.io", "ns=%00", "ns=a.io&ns=b.io", "ns=%zz", "&&&", "ns=[::1]",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A route that parsed holds only what passed its grammar, each part terminated. */
static void check_parsed(const char *path, const struct oci_route *r)
{
    size_t ref_len = strnlen(r->reference, sizeof(r->reference));

    if (r->kind == OCI_ROUTE_MANIFEST || r->kind == OCI_ROUTE_BLOB) {
        if (!oci_namespace_valid(r->namespace_, strnlen(r->namespace_, sizeof(r->namespace_))) ||
            !oci_name_valid(r->name, strnlen(r->name, sizeof(r->name))) ||
            ref_len == sizeof(r->reference) ||
            (!r->by_digest && !oci_tag_valid(r->reference, ref_len)) ||
            (r->kind == OCI_ROUTE_BLOB && !r->by_digest))
            fail_msg("%s: routed to namespace \"%s\", name \"%s\", reference \"%s\"", path,
                     r->namespace_, r->name, r->reference);
    }
}

/*
 * A fuzz-like table: every combination of odd prefixes, names, endpoint
 * words, references and queries answers a read with 200 or a client error
 * of 400 or 404, never a 405 or a 5xx, and what parses is clean.
 */
static void test_weird_paths(void **state)
{
    char path[1024];
    size_t routed = 0, refused = 0;

    (void)state;
    for (size_t p = 0; p < COUNT(weird_prefixes); p++)
        for (size_t n = 0; n < COUNT(weird_names); n++)
            for (size_t e = 0; e < COUNT(weird_endpoints); e++)
                for (size_t f = 0; f < COUNT(weird_refs); f++)
                    for (size_t q = 0; q < COUNT(weird_queries); q++) {
                        struct oci_route r;
                        enum oci_error err;
                        int status;

                        snprintf(path, sizeof(path), "%s%s/%s/%s", weird_prefixes[p],
                                 weird_names[n], weird_endpoints[e], weird_refs[f]);
                        err = oci_route_parse(path, weird_queries[q], "docker.io", &r);
                        status = oci_error_status(oci_route_read_error(&r, err));
                        if (status != 200 && status != 400 && status != 404)
                            fail_msg("%s ? %s: %s, status %d", path,
                                     weird_queries[q] ? weird_queries[q] : "(none)",
                                     oci_error_code(err), status);
                        if (err == OCI_OK)
                            check_parsed(path, &r), routed++;
                        else
                            refused++;
                    }
    /* The table reaches both sides: not all of it is refused at the first check. */
    assert_true(routed > 100);
    assert_true(refused > 10000);
}

/* Builds "/v2/<name>/manifests/v1" where name is n copies of 'a'; the caller frees it. */
static char *long_name_path(size_t n)
{
    size_t len = strlen("/v2/") + n + strlen("/manifests/v1");
    char *path = malloc(len + 1);

    assert_non_null(path);
    strcpy(path, "/v2/");
    memset(path + 4, 'a', n);
    strcpy(path + 4 + n, "/manifests/v1");
    return path;
}

/* The length limit applies to the final name, "library/" included. */
static void test_name_length(void **state)
{
    size_t hub_max = OCI_NAME_MAX - strlen("library/");
    char *path;
    struct oci_route r;

    (void)state;
    path = long_name_path(OCI_NAME_MAX);
    assert_int_equal(oci_route_parse(path, NULL, "ghcr.io", &r), OCI_OK);
    assert_int_equal(strlen(r.name), OCI_NAME_MAX);
    free(path);
    path = long_name_path(OCI_NAME_MAX + 1);
    assert_int_equal(oci_route_parse(path, NULL, "ghcr.io", &r), OCI_E_NAME_INVALID);
    free(path);
    path = long_name_path(hub_max);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_OK);
    assert_int_equal(strlen(r.name), OCI_NAME_MAX);
    free(path);
    path = long_name_path(hub_max + 1);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_E_NAME_INVALID);
    free(path);
    path = long_name_path(10000);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_E_NAME_INVALID);
    free(path);
}

/* Overlong tags, digests and "ns" values are refused, not truncated into the route. */
static void test_long_parts(void **state)
{
    char path[1200], query[1200];
    struct oci_route r;

    (void)state;
    snprintf(path, sizeof(path), "/v2/alpine/manifests/%0128d", 0);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_OK);
    assert_int_equal(strlen(r.reference), OCI_TAG_MAX);
    snprintf(path, sizeof(path), "/v2/alpine/manifests/%0129d", 0);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_E_TAG_INVALID);
    snprintf(path, sizeof(path), "/v2/alpine/blobs/sha256:%01000d", 0);
    assert_int_equal(oci_route_parse(path, NULL, "docker.io", &r), OCI_E_DIGEST_INVALID);
    snprintf(query, sizeof(query), "ns=%0300d.com", 0);
    assert_int_equal(oci_route_parse("/v2/alpine/manifests/latest", query, "docker.io", &r),
                     OCI_E_NAME_INVALID);
}

/* A repository named alone (a mount's "from") resolves as a path's name does. */
static void test_repository(void **state)
{
    struct oci_route r;

    (void)state;
    assert_int_equal(oci_route_repository("myorg/app", NULL, "hosted.test", &r), OCI_OK);
    assert_string_equal(r.namespace_, "hosted.test");
    assert_string_equal(r.name, "myorg/app");
    assert_int_equal(oci_route_repository("Hosted.Test/myorg/app", NULL, "docker.io", &r), OCI_OK);
    assert_string_equal(r.namespace_, "hosted.test");
    assert_string_equal(r.name, "myorg/app");
    assert_int_equal(oci_route_repository("alpine", NULL, "docker.io", &r), OCI_OK);
    assert_string_equal(r.name, "library/alpine");
    assert_int_equal(oci_route_repository("ghcr.io/x/y", "ns=ghcr.io", "docker.io", &r), OCI_OK);
    assert_string_equal(r.namespace_, "ghcr.io");
    assert_string_equal(r.name, "x/y");
    assert_int_equal(oci_route_repository("Bad/Name", NULL, "docker.io", &r), OCI_E_NAME_INVALID);
    assert_int_equal(oci_route_repository("", NULL, "docker.io", &r), OCI_E_NAME_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base),
        cmocka_unit_test(test_default_namespace),
        cmocka_unit_test(test_path_namespace),
        cmocka_unit_test(test_query_namespace),
        cmocka_unit_test(test_endpoint_words_in_name),
        cmocka_unit_test(test_digest_fields),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_hosted_endpoints),
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_name_invalid),
        cmocka_unit_test(test_tag_invalid),
        cmocka_unit_test(test_digest_invalid),
        cmocka_unit_test(test_unsupported_algorithm),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_weird_paths),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_long_parts),
        cmocka_unit_test(test_repository),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
