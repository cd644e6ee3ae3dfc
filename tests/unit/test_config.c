/*
 * test_config.c - the upstream YAML, credentials from the environment,
 * defaults and durations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/upstream/config.h"

#define SECRET "hunter2"

static const char reference_yaml[] = "# upstreams\n"
                                     "- namespace: example.com\n"
                                     "  host: registry.example.com:5000\n"
                                     "  tls: false\n"
                                     "  accept_invalid_certs: yes\n"
                                     "  ca_file: /etc/ssl/example.pem\n"
                                     "  user_agent: \"containerd/1.6.8\"\n"
                                     "  username: example\n"
                                     "  password: " SECRET "\n"
                                     "  manifest_invalidation_time: 0s\n"
                                     "  blob_invalidation_time: 30d\n"
                                     "- namespace: docker.io\n"
                                     "  host: mirror.gcr.io\n";

static bool parse(const char *yaml, struct oci_config *cfg, char *err, size_t errlen)
{
    return oci_config_parse(yaml, strlen(yaml), "x.yaml", cfg, err, errlen);
}

static void test_parse_all_keys(void **state)
{
    struct oci_config cfg;
    char err[256];
    const struct oci_upstream *up;

    (void)state;
    assert_true(parse(reference_yaml, &cfg, err, sizeof(err)));
    assert_int_equal(cfg.count, 2);
    up = &cfg.upstreams[0];
    assert_string_equal(up->namespace_, "example.com");
    assert_string_equal(up->host, "registry.example.com:5000");
    assert_false(up->tls);
    assert_true(up->accept_invalid_certs);
    assert_string_equal(up->ca_file, "/etc/ssl/example.pem");
    assert_string_equal(up->user_agent, "containerd/1.6.8");
    assert_string_equal(up->username, "example");
    assert_string_equal(up->password, SECRET);
    assert_int_equal(up->manifest_invalidation_time, 0);
    assert_int_equal(up->blob_invalidation_time, 30L * 24 * 60 * 60);
    assert_true(up->configured);
    assert_string_equal(cfg.upstreams[1].namespace_, "docker.io");
    assert_string_equal(cfg.upstreams[1].host, "mirror.gcr.io");
    oci_config_free(&cfg);
    assert_null(cfg.upstreams);
    assert_int_equal(cfg.count, 0);
}

static void test_parse_defaults(void **state)
{
    struct oci_config cfg;
    char err[256];
    const struct oci_upstream *up;

    (void)state;
    assert_true(parse("- {namespace: ghcr.io, host: ghcr.io}\n", &cfg, err, sizeof(err)));
    assert_int_equal(cfg.count, 1);
    up = &cfg.upstreams[0];
    assert_true(up->tls);
    assert_false(up->accept_invalid_certs);
    assert_null(up->ca_file);
    assert_null(up->user_agent);
    assert_null(up->username);
    assert_null(up->password);
    assert_int_equal(up->manifest_invalidation_time, OCI_DEFAULT_MANIFEST_INVALIDATION);
    assert_int_equal(up->blob_invalidation_time, OCI_DEFAULT_BLOB_INVALIDATION);
    assert_true(up->configured);
    oci_config_free(&cfg);
}

static void test_parse_booleans(void **state)
{
    static const char *const words[] = {"true", "True", "YES", "on", "false", "No", "OFF"};
    static const bool values[] = {true, true, true, true, false, false, false};

    (void)state;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        struct oci_config cfg;
        char yaml[128];
        char err[256];

        snprintf(yaml, sizeof(yaml), "- {namespace: a.io, host: a.io, tls: %s}\n", words[i]);
        assert_true(parse(yaml, &cfg, err, sizeof(err)));
        assert_int_equal(cfg.upstreams[0].tls, values[i]);
        oci_config_free(&cfg);
    }
}

static void test_parse_empty(void **state)
{
    static const char *const inputs[] = {"", "# nothing yet\n", "[]\n", "---\n[]\n"};

    (void)state;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct oci_config cfg;
        char err[256];

        if (!parse(inputs[i], &cfg, err, sizeof(err)))
            fail_msg("\"%s\": %s", inputs[i], err);
        assert_int_equal(cfg.count, 0);
        assert_null(cfg.upstreams);
        oci_config_free(&cfg);
    }
}

struct error_case {
    const char *yaml;
    const char *message;
};

static const struct error_case error_cases[] = {
    {"- namespace: a.io\n  password: " SECRET "\n  hots: a.io\n", "x.yaml:3: unknown key 'hots'"},
    {"- namespace: a.io\n  host: [a.io]\n", "x.yaml:2: 'host' needs a single value, not a list or "
                                            "mapping"},
    {"- namespace: a.io\n  host: a.io\n  tls: maybe\n", "x.yaml:3: 'tls' must be true or false"},
    {"- namespace: a.io\n  host: a.io\n  blob_invalidation_time: 1.5h\n",
     "x.yaml:3: 'blob_invalidation_time' must be a duration such as 90s, 30m, 12h, 14d or 2w"},
    {"- namespace: a.io\n  host: a.io\n- namespace: a.io\n  host: b.io\n",
     "x.yaml:3: namespace 'a.io' is listed twice"},
    {"- namespace: a.io\n  host: a.io\n- namespace: A.IO\n  host: b.io\n",
     "x.yaml:3: namespace 'A.IO' is listed twice"},
    {"- namespace: a.io\n  host: a.io\n  host: b.io\n", "x.yaml:3: duplicate key 'host'"},
    {"- namespace: a.io\n  host: a.io\n-   password: " SECRET "\n    host: a.io\n",
     "x.yaml:3: upstream without 'namespace'"},
    {"\n- namespace: a.io\n  password: " SECRET "\n", "x.yaml:2: upstream without 'host'"},
    {"- namespace: a/b\n  host: a.io\n", "x.yaml:1: 'namespace' is not a valid host[:port]"},
    {"- namespace: a.io\n  host: user:" SECRET "@a.io\n",
     "x.yaml:2: 'host' is not a valid host[:port]"},
    {"- namespace: a.io\n  host: a.io\n  password:\n", "x.yaml:3: 'password' needs a string value"},
    {"- namespace: a.io\n  host: a.io\n  username: ~\n",
     "x.yaml:3: 'username' needs a string value"},
    {"namespace: a.io\nhost: a.io\n", "x.yaml:1: expected a list of upstreams"},
    {"---\nupstreams: []\n", "x.yaml:2: expected a list of upstreams"},
    {"- namespace: a.io\n  host: a.io\n- a.io\n",
     "x.yaml:3: each upstream must be a mapping of keys"},
    {"- namespace: a.io\n  ? [host]\n  : a.io\n", "x.yaml:2: keys must be strings"},
    {"- namespace: a.io\n  host: &h a.io\n- namespace: b.io\n  host: *h\n",
     "x.yaml:4: 'host' needs a single value, not a list or mapping"},
    {"- []\n---\n- []\n", "x.yaml:1: each upstream must be a mapping of keys"},
    {"[]\n---\n[]\n", "x.yaml:2: expected a single YAML document"},
    {"- namespace: a.io\n  password: \"" SECRET "\n  host: a.io\n",
     "x.yaml:4: found unexpected end of stream while scanning a quoted scalar"},
    {"- namespace: a.io\n  host: a.io\n  user_agent: \xff\n",
     "x.yaml:3: invalid leading UTF-8 octet"},
    {"- namespace: a.io\n  host: a.io\n tls: true\n",
     "x.yaml:3: did not find expected '-' indicator while parsing a block collection"},
    /* One of username and password empty: a mistake, not anonymous. */
    {"- namespace: a.io\n  host: a.io\n  username: \"\"\n  password: " SECRET "\n",
     "x.yaml:1: upstream 'a.io': 'password' is set but 'username' is empty"},
    {"- namespace: a.io\n  host: a.io\n  username: me\n  password: ''\n",
     "x.yaml:1: upstream 'a.io': 'username' is set but 'password' is empty"},
    {"- namespace: a.io\n  host: a.io\n  username: me\n",
     "x.yaml:1: upstream 'a.io': 'username' is set but 'password' is empty"},
    {"- namespace: a.io\n  host: a.io\n  password: " SECRET "\n",
     "x.yaml:1: upstream 'a.io': 'password' is set but 'username' is empty"},
    /* Control characters would add headers to upstream requests. */
    {"- namespace: a.io\n  host: a.io\n  user_agent: \"ua\\r\\nX-Injected: 1\"\n",
     "x.yaml:1: upstream 'a.io': 'user_agent' holds a control character"},
    {"- namespace: a.io\n  host: a.io\n  user_agent: \"ua\\x7f\"\n",
     "x.yaml:1: upstream 'a.io': 'user_agent' holds a control character"},
    {"- namespace: a.io\n  host: a.io\n  ca_file: \"/a\\nb\"\n",
     "x.yaml:1: upstream 'a.io': 'ca_file' holds a control character"},
    {"- namespace: a.io\n  host: a.io\n  username: \"me\\r\\nX: 1\"\n  password: p\n",
     "x.yaml:1: upstream 'a.io': 'username' holds a control character"},
    {"- namespace: a.io\n  host: a.io\n  username: me\n  password: \"" SECRET "\\n\"\n",
     "x.yaml:1: upstream 'a.io': 'password' holds a control character"},
    {"- namespace: a.io\n  host: a.io\n  token_realm_hosts: auth.a.io\n",
     "x.yaml:3: 'token_realm_hosts' needs a list of host names"},
    {"- namespace: a.io\n  host: a.io\n  token_realm_hosts: [auth.a.io:443]\n",
     "x.yaml:3: 'token_realm_hosts' holds something that is not a host name"},
    {"- namespace: a.io\n  host: a.io\n  token_realm_hosts: [a.io, http://x/]\n",
     "x.yaml:3: 'token_realm_hosts' holds something that is not a host name"},
    {"- namespace: a.io\n  host: a.io\n  token_realm_hosts: [[a.io]]\n",
     "x.yaml:3: 'token_realm_hosts' needs a list of host names"},
    {"- namespace: a.io\n  host: a.io\n  token_realm_hosts: [~]\n",
     "x.yaml:3: 'token_realm_hosts' holds something that is not a host name"},
    {"- namespace: a.io\n  hosted: true\n  push_users: alice\n",
     "x.yaml:3: 'push_users' needs a list of user names"},
    {"- namespace: a.io\n  hosted: true\n  push_users: [alice, \"bob:x\"]\n",
     "x.yaml:3: 'push_users' holds something that is not a user name"},
    {"- namespace: a.io\n  hosted: true\n  push_users: [\"al ice\"]\n",
     "x.yaml:3: 'push_users' holds something that is not a user name"},
    {"- namespace: a.io\n  hosted: true\n  push_users: [\"\"]\n",
     "x.yaml:3: 'push_users' holds something that is not a user name"},
    {"- namespace: a.io\n  host: a.io\n  push_users: [alice]\n",
     "x.yaml:1: upstream 'a.io': 'push_users' is for hosted namespaces (hosted: true)"},
    {"- namespace: a.io\n  hosted: true\n  anonymous_push: true\n  push_users: [alice]\n",
     "x.yaml:1: upstream 'a.io': 'push_users' and 'anonymous_push: true' contradict each other"},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        struct oci_config cfg;
        char err[256] = "";

        if (parse(c->yaml, &cfg, err, sizeof(err)))
            fail_msg("case %zu parsed", i);
        if (strcmp(err, c->message) != 0)
            fail_msg("case %zu: got \"%s\", expected \"%s\"", i, err, c->message);
        assert_null(strstr(err, SECRET));
        assert_null(strchr(err, '\n'));
        assert_int_equal(cfg.count, 0);
        assert_null(cfg.upstreams);
    }
}

/* Strings read before the error are freed (the sanitizer run checks that). */
static void test_error_after_password(void **state)
{
    static const char yaml[] = "- namespace: a.io\n"
                               "  host: a.io\n"
                               "  username: me\n"
                               "  password: " SECRET "\n"
                               "- namespace: b.io\n"
                               "  password: " SECRET "\n"
                               "  host: b.io\n"
                               "  manifest_invalidation_time: soon\n";
    struct oci_config cfg;
    char err[256];

    (void)state;
    assert_false(parse(yaml, &cfg, err, sizeof(err)));
    assert_string_equal(err, "x.yaml:8: 'manifest_invalidation_time' must be a duration such as "
                             "90s, 30m, 12h, 14d or 2w");
    assert_null(strstr(err, SECRET));
}

static void test_error_truncated(void **state)
{
    struct oci_config cfg;
    char err[8];

    (void)state;
    assert_false(parse("- {namespace: a.io}\n", &cfg, err, sizeof(err)));
    assert_string_equal(err, "x.yaml:");
    assert_false(parse("- {namespace: a.io}\n", &cfg, NULL, 0));
}

static void test_load_missing_file(void **state)
{
    struct oci_config cfg;
    char err[256];

    (void)state;
    assert_false(oci_config_load("/nonexistent/upstreams.yaml", &cfg, err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/upstreams.yaml: No such file or directory");
    assert_int_equal(cfg.count, 0);
}

static void test_load_directory(void **state)
{
    struct oci_config cfg;
    char err[256];

    (void)state;
    assert_false(oci_config_load("/", &cfg, err, sizeof(err)));
    assert_string_equal(err, "/: Is a directory");
    assert_int_equal(cfg.count, 0);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    struct oci_config cfg;
    char err[512];
    char expected[512];

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, reference_yaml, strlen(reference_yaml)), strlen(reference_yaml));
    assert_int_equal(write(fd, "  tlss: no\n", 11), 11);
    assert_int_equal(close(fd), 0);

    assert_false(oci_config_load(path, &cfg, err, sizeof(err)));
    snprintf(expected, sizeof(expected), "%s:14: unknown key 'tlss'", path);
    assert_string_equal(err, expected);

    assert_int_equal(truncate(path, (off_t)strlen(reference_yaml)), 0);
    assert_true(oci_config_load(path, &cfg, err, sizeof(err)));
    assert_int_equal(cfg.count, 2);
    assert_string_equal(cfg.upstreams[0].password, SECRET);
    oci_config_free(&cfg);
    assert_int_equal(unlink(path), 0);
}

static void test_credentials_override_and_add(void **state)
{
    static const char json[] =
        "{\"example.com\": {\"username\": \"robot\", \"password\": \"s3cret\"},"
        " \"quay.io\": {\"username\": \"q\", \"password\": \"qp\"},"
        " \"Docker.io\": {\"username\": \"d\", \"password\": \"dp\"},"
        " \"registry.local:5000\": {\"username\": \"l\", \"password\": \"lp\"}}";
    struct oci_config cfg;
    char err[256];
    const struct oci_upstream *up;

    (void)state;
    assert_true(parse(reference_yaml, &cfg, err, sizeof(err)));
    assert_true(oci_config_apply_credentials(&cfg, json, err, sizeof(err)));
    assert_int_equal(cfg.count, 4);

    up = oci_config_find(&cfg, "example.com");
    assert_string_equal(up->username, "robot");
    assert_string_equal(up->password, "s3cret");
    assert_string_equal(up->host, "registry.example.com:5000");

    up = oci_config_find(&cfg, "docker.io");
    assert_string_equal(up->host, "mirror.gcr.io");
    assert_string_equal(up->username, "d");

    up = oci_config_find(&cfg, "quay.io");
    assert_non_null(up);
    assert_string_equal(up->namespace_, "quay.io");
    assert_string_equal(up->host, "quay.io");
    assert_string_equal(up->username, "q");
    assert_string_equal(up->password, "qp");
    assert_true(up->tls);
    assert_null(up->ca_file);
    assert_int_equal(up->blob_invalidation_time, OCI_DEFAULT_BLOB_INVALIDATION);
    /* Named only here: not trusted to reach any address, unlike the file's. */
    assert_false(up->configured);
    assert_true(oci_config_find(&cfg, "example.com")->configured);

    assert_string_equal(oci_config_find(&cfg, "registry.local:5000")->password, "lp");
    assert_false(oci_config_find(&cfg, "registry.local:5000")->configured);
    oci_config_free(&cfg);
}

static void test_credentials_docker_hub_added(void **state)
{
    struct oci_config cfg = {0};
    char err[256];

    (void)state;
    assert_true(oci_config_apply_credentials(
        &cfg, "{\"docker.io\": {\"username\": \"d\", \"password\": \"dp\"}}", err, sizeof(err)));
    assert_int_equal(cfg.count, 1);
    assert_string_equal(cfg.upstreams[0].host, "registry-1.docker.io");
    /* Its redirects (to CDNs anywhere) stay behind the address guard. */
    assert_false(cfg.upstreams[0].configured);
    assert_true(oci_config_apply_credentials(&cfg, "{}", err, sizeof(err)));
    assert_int_equal(cfg.count, 1);
    oci_config_free(&cfg);
}

static const struct error_case credential_errors[] = {
    {"{\"a.io\": {\"username\": \"u\", \"password\": \"" SECRET "\"",
     "UPSTREAM_CREDENTIALS: malformed JSON"},
    {"", "UPSTREAM_CREDENTIALS: malformed JSON"},
    {"[\"" SECRET "\"]", "UPSTREAM_CREDENTIALS: expected a JSON object of namespaces"},
    {"{\"a.io\": {\"username\": \"u\"}}",
     "UPSTREAM_CREDENTIALS: 'a.io' needs a string username and password"},
    {"{\"a.io\": {\"username\": 7, \"password\": \"" SECRET "\"}}",
     "UPSTREAM_CREDENTIALS: 'a.io' needs a string username and password"},
    {"{\"a.io\": \"" SECRET "\"}",
     "UPSTREAM_CREDENTIALS: 'a.io' needs a string username and password"},
    {"{\"b.io\": {\"username\": \"u\", \"password\": \"p\"},"
     " \"a/b\": {\"username\": \"u\", \"password\": \"" SECRET "\"}}",
     "UPSTREAM_CREDENTIALS: 'a/b' is not a valid namespace"},
    {"{\"a.io\": {\"username\": \"\", \"password\": \"" SECRET "\"}}",
     "UPSTREAM_CREDENTIALS: 'a.io': 'password' is set but 'username' is empty"},
    {"{\"a.io\": {\"username\": \"u\", \"password\": \"\"}}",
     "UPSTREAM_CREDENTIALS: 'a.io': 'username' is set but 'password' is empty"},
    {"{\"a.io\": {\"username\": \"u\\r\\nX-Injected: 1\", \"password\": \"p\"}}",
     "UPSTREAM_CREDENTIALS: 'a.io': 'username' holds a control character"},
    {"{\"a.io\": {\"username\": \"u\", \"password\": \"" SECRET "\\t\"}}",
     "UPSTREAM_CREDENTIALS: 'a.io': 'password' holds a control character"},
};

static void test_credentials_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(credential_errors) / sizeof(credential_errors[0]); i++) {
        const struct error_case *c = &credential_errors[i];
        struct oci_config cfg;
        char err[256] = "";

        assert_true(parse(reference_yaml, &cfg, err, sizeof(err)));
        if (oci_config_apply_credentials(&cfg, c->yaml, err, sizeof(err)))
            fail_msg("case %zu applied", i);
        if (strcmp(err, c->message) != 0)
            fail_msg("case %zu: got \"%s\", expected \"%s\"", i, err, c->message);
        assert_null(strstr(err, SECRET));
        /* Nothing applied: the valid entry before the bad one is not added either. */
        assert_int_equal(cfg.count, 2);
        assert_string_equal(cfg.upstreams[0].username, "example");
        oci_config_free(&cfg);
    }
}

/* Empty username and password (Helm's rendering of an unset value) are anonymous. */
static void test_empty_credentials_anonymous(void **state)
{
    static const char yaml[] = "- namespace: a.io\n"
                               "  host: a.io\n"
                               "  username: \"\"\n"
                               "  password: \"\"\n"
                               "- namespace: b.io\n"
                               "  host: b.io\n"
                               "  username: me\n"
                               "  password: " SECRET "\n";
    struct oci_config cfg;
    char err[256];

    (void)state;
    assert_true(parse(yaml, &cfg, err, sizeof(err)));
    assert_null(oci_config_find(&cfg, "a.io")->username);
    assert_null(oci_config_find(&cfg, "a.io")->password);
    /* The environment wins: empty there makes the file's entry anonymous. */
    assert_true(oci_config_apply_credentials(
        &cfg, "{\"b.io\": {\"username\": \"\", \"password\": \"\"}}", err, sizeof(err)));
    assert_null(oci_config_find(&cfg, "b.io")->username);
    assert_null(oci_config_find(&cfg, "b.io")->password);
    /* ... and adds no entry for a namespace the file does not list. */
    assert_true(oci_config_apply_credentials(
        &cfg, "{\"c.io\": {\"username\": \"\", \"password\": \"\"}}", err, sizeof(err)));
    assert_null(oci_config_find(&cfg, "c.io"));
    assert_int_equal(cfg.count, 2);
    oci_config_free(&cfg);
}

static void test_token_realm_hosts(void **state)
{
    static const char yaml[] = "- namespace: a.io\n"
                               "  host: registry.a.io:5000\n"
                               "  token_realm_hosts: [auth.a.io, \"[::1]\", 10.0.0.1]\n"
                               "- namespace: b.io\n"
                               "  host: b.io\n"
                               "  token_realm_hosts: []\n"
                               "- namespace: docker.io\n"
                               "  host: Registry-1.Docker.io\n"
                               "- namespace: hub.io\n"
                               "  host: registry-1.docker.io\n"
                               "  token_realm_hosts: []\n";
    struct oci_config cfg;
    const char *const *hosts;
    struct oci_upstream up;
    char err[256];

    (void)state;
    if (!parse(yaml, &cfg, err, sizeof(err)))
        fail_msg("%s", err);
    hosts = oci_upstream_realm_hosts(oci_config_find(&cfg, "a.io"));
    assert_string_equal(hosts[0], "auth.a.io");
    assert_string_equal(hosts[1], "[::1]");
    assert_string_equal(hosts[2], "10.0.0.1");
    assert_null(hosts[3]);
    assert_null(oci_upstream_realm_hosts(oci_config_find(&cfg, "b.io"))[0]);
    /* Docker Hub's realm is on auth.docker.io, unless the file says otherwise. */
    hosts = oci_upstream_realm_hosts(oci_config_find(&cfg, "docker.io"));
    assert_string_equal(hosts[0], "auth.docker.io");
    assert_null(hosts[1]);
    assert_null(oci_upstream_realm_hosts(oci_config_find(&cfg, "hub.io"))[0]);
    oci_upstream_default("docker.io", &up);
    assert_string_equal(oci_upstream_realm_hosts(&up)[0], "auth.docker.io");
    oci_upstream_default("ghcr.io", &up);
    assert_null(oci_upstream_realm_hosts(&up));
    oci_config_free(&cfg);
}

/* push_users: only the listed users write; an empty list lets nobody; no list lets anyone. */
static void test_push_users(void **state)
{
    static const char yaml[] = "- namespace: a.io\n"
                               "  hosted: true\n"
                               "  push_users: [alice, Bob]\n"
                               "- namespace: b.io\n"
                               "  hosted: true\n"
                               "  push_users: []\n"
                               "- namespace: c.io\n"
                               "  hosted: true\n";
    struct oci_config cfg;
    const struct oci_upstream *a, *b, *c;
    char err[256];

    (void)state;
    if (!parse(yaml, &cfg, err, sizeof(err)))
        fail_msg("%s", err);
    a = oci_config_find(&cfg, "a.io");
    b = oci_config_find(&cfg, "b.io");
    c = oci_config_find(&cfg, "c.io");
    assert_true(oci_upstream_may_push(a, "alice"));
    assert_true(oci_upstream_may_push(a, "Bob"));
    assert_false(oci_upstream_may_push(a, "bob"));
    assert_false(oci_upstream_may_push(a, "carol"));
    assert_false(oci_upstream_may_push(a, NULL));
    assert_false(oci_upstream_may_push(b, "alice"));
    assert_true(oci_upstream_may_push(c, "anyone"));
    oci_config_free(&cfg);
}

static void test_check_files(void **state)
{
    char path[] = "/tmp/test_config_ca_XXXXXX";
    int fd = mkstemp(path);
    struct oci_config cfg;
    char yaml[512], err[512], expected[512];

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);
    snprintf(yaml, sizeof(yaml),
             "- {namespace: a.io, host: a.io, ca_file: %s}\n- {namespace: b.io, host: b.io}\n",
             path);
    assert_true(parse(yaml, &cfg, err, sizeof(err)));
    assert_true(oci_config_check_files(&cfg, err, sizeof(err)));
    oci_config_free(&cfg);

    assert_true(parse("- {namespace: a.io, host: a.io}\n"
                      "- {namespace: b.io, host: b.io, ca_file: /nonexistent/ca.pem}\n",
                      &cfg, err, sizeof(err)));
    assert_false(oci_config_check_files(&cfg, err, sizeof(err)));
    assert_string_equal(
        err, "upstream 'b.io': ca_file '/nonexistent/ca.pem': No such file or directory");
    oci_config_free(&cfg);

    assert_true(parse("- {namespace: a.io, host: a.io, ca_file: /tmp}\n", &cfg, err, sizeof(err)));
    assert_false(oci_config_check_files(&cfg, err, sizeof(err)));
    snprintf(expected, sizeof(expected), "upstream 'a.io': ca_file '/tmp': %s", strerror(EISDIR));
    assert_string_equal(err, expected);
    oci_config_free(&cfg);
    assert_int_equal(unlink(path), 0);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Loading is linear: 200,000 upstreams (quadratic, it took minutes) load in seconds. */
static void test_many_upstreams(void **state)
{
    enum { N = 200000 };
    size_t cap = (size_t)N * 64, len = 0;
    char *yaml = malloc(cap);
    struct oci_config cfg;
    struct timespec start;
    char err[256], ns[32];
    double took;

    (void)state;
    assert_non_null(yaml);
    for (int i = 0; i < N; i++)
        len +=
            (size_t)snprintf(yaml + len, cap - len, "- {namespace: r%d.io, host: h%d.io}\n", i, i);
    /* Linear loading takes about a second here under ASan; quadratic loading
     * took minutes. Not a speed test: a bound that only the latter passes,
     * generous enough for a loaded CI machine (SIGALRM ends the test). */
    alarm(120);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_true(oci_config_parse(yaml, len, "x.yaml", &cfg, err, sizeof(err)));
    assert_true(oci_config_apply_credentials(
        &cfg, "{\"R7.io\": {\"username\": \"u\", \"password\": \"p\"}}", err, sizeof(err)));
    took = seconds_since(&start);
    alarm(0);
    print_message("# %d upstreams loaded in %.2f s\n", N, took);
    assert_int_equal(cfg.count, N);
    for (int i = 0; i < N; i += 997) {
        snprintf(ns, sizeof(ns), "R%d.IO", i);
        assert_ptr_equal(oci_config_find(&cfg, ns), &cfg.upstreams[i]);
    }
    assert_string_equal(oci_config_find(&cfg, "r7.io")->username, "u");
    assert_null(oci_config_find(&cfg, "r200000.io"));
    oci_config_free(&cfg);

    /* A duplicate is still found, with the line of its second listing. */
    len += (size_t)snprintf(yaml + len, cap - len, "- {namespace: R123.io, host: x.io}\n");
    assert_false(oci_config_parse(yaml, len, "x.yaml", &cfg, err, sizeof(err)));
    assert_string_equal(err, "x.yaml:200001: namespace 'R123.io' is listed twice");
    free(yaml);
}

static void test_find(void **state)
{
    struct oci_config cfg = {0};
    char err[256];

    (void)state;
    assert_null(oci_config_find(&cfg, "docker.io"));
    assert_true(parse(reference_yaml, &cfg, err, sizeof(err)));
    assert_ptr_equal(oci_config_find(&cfg, "example.com"), &cfg.upstreams[0]);
    assert_ptr_equal(oci_config_find(&cfg, "docker.io"), &cfg.upstreams[1]);
    assert_ptr_equal(oci_config_find(&cfg, "DOCKER.IO"), &cfg.upstreams[1]);
    assert_null(oci_config_find(&cfg, "ghcr.io"));
    assert_null(oci_config_find(&cfg, "example.co"));
    oci_config_free(&cfg);
}

static void test_upstream_default(void **state)
{
    struct oci_upstream up;

    (void)state;
    oci_upstream_default("docker.io", &up);
    assert_string_equal(up.namespace_, "docker.io");
    assert_string_equal(up.host, "registry-1.docker.io");
    assert_true(up.tls);
    assert_false(up.accept_invalid_certs);
    assert_false(up.configured);

    oci_upstream_default("ghcr.io", &up);
    assert_string_equal(up.host, "ghcr.io");
    assert_null(up.ca_file);
    assert_null(up.user_agent);
    assert_null(up.username);
    assert_null(up.password);
    assert_int_equal(up.manifest_invalidation_time, OCI_DEFAULT_MANIFEST_INVALIDATION);
    assert_int_equal(up.blob_invalidation_time, OCI_DEFAULT_BLOB_INVALIDATION);
    assert_false(up.configured);
}

struct duration_case {
    const char *text;
    bool valid;
    long seconds;
};

static const struct duration_case durations[] = {
    {"0s", true, 0},
    {"0", true, 0},
    {"90", true, 90},
    {"90s", true, 90},
    {"30m", true, 30 * 60},
    {"12h", true, 12 * 60 * 60},
    {"14d", true, 14 * 24 * 60 * 60},
    {"2w", true, 2 * 7 * 24 * 60 * 60},
    {"007m", true, 7 * 60},
    {"9223372036854775807", true, 9223372036854775807L},
    {"9223372036854775807s", true, 9223372036854775807L},
    {"9223372036854775808", false, 0},
    {"99999999999999999999", false, 0},
    {"15250284452471w", true, 15250284452471L * 604800},
    {"15250284452472w", false, 0},
    {"", false, 0},
    {"s", false, 0},
    {"-1s", false, 0},
    {"+1s", false, 0},
    {"1.5h", false, 0},
    {"10x", false, 0},
    {"10ss", false, 0},
    {"10S", false, 0},
    {"1h30m", false, 0},
    {" 1s", false, 0},
    {"1s ", false, 0},
    {"1 s", false, 0},
};

static void test_durations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        const struct duration_case *c = &durations[i];
        long seconds = -1;

        if (oci_duration_parse(c->text, &seconds) != c->valid)
            fail_msg("\"%s\": expected %s", c->text, c->valid ? "valid" : "invalid");
        if (c->valid && seconds != c->seconds)
            fail_msg("\"%s\": got %ld, expected %ld", c->text, seconds, c->seconds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_all_keys),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_booleans),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_error_after_password),
        cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_directory),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_credentials_override_and_add),
        cmocka_unit_test(test_credentials_docker_hub_added),
        cmocka_unit_test(test_credentials_errors),
        cmocka_unit_test(test_empty_credentials_anonymous),
        cmocka_unit_test(test_token_realm_hosts),
        cmocka_unit_test(test_push_users),
        cmocka_unit_test(test_check_files),
        cmocka_unit_test(test_many_upstreams),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_upstream_default),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
