/*
 * test_metrics.c - the shared counters: one file, counted into by several
 * processes at once with nothing lost; a file of another layout replaced;
 * label values only from fixed sets; Range lengths; request ids; S3
 * operations from the storage hook; the Prometheus text of it all.
 *
 * Every test opens a fresh counters file in its own mkdtemp directory.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics/metrics.h"
#include "core/plan/plan.h"
#include "util/observe.h"

struct fixture {
    char dir[256];
    char path[300];
};

/* The namespaces with a label of their own: one configured, and the default. */
static const char *const namespaces[] = {"reg.test", "docker.io"};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "%s/oci-metrics-XXXXXX", getenv("TMPDIR") ?: "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/_metrics", f->dir);
    assert_true(oci_metrics_open(f->path, "filesystem", namespaces, 2, err, sizeof(err)));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    oci_metrics_close();
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The value of the sample whose line starts with series (name and labels), or -1. */
static long long sample(const char *series)
{
    size_t len, n = strlen(series);
    char *text = oci_metrics_render(&len), *line;
    long long v = -1;

    assert_non_null(text);
    for (line = text; line != NULL && *line; line = strchr(line, '\n'), line = line ? line + 1 : 0)
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            v = atoll(line + n + 1);
            break;
        }
    free(text);
    return v;
}

/* An id of ours: 32 hex digits, none seen before in this test. */
static void assert_own_id(char seen[][OCI_REQUEST_ID_MAX + 1], size_t *n)
{
    const char *id = oci_metrics_request_id();

    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    for (size_t i = 0; i < *n; i++)
        assert_string_not_equal(seen[i], id);
    strcpy(seen[(*n)++], id);
}

static void test_request_id(void **state)
{
    char id[80];
    char seen[4][OCI_REQUEST_ID_MAX + 1];
    size_t n = 0;

    (void)state;
    oci_metrics_request_start("0123abcdef.A-Z_9");
    assert_string_equal(oci_metrics_request_id(), "0123abcdef.A-Z_9");
    oci_metrics_request_start("bad id");
    assert_own_id(seen, &n);
    oci_metrics_request_start("x\r\nX-Forged: 1");
    assert_own_id(seen, &n);
    oci_metrics_request_start(NULL);
    assert_own_id(seen, &n);
    memset(id, 'a', 64);
    id[64] = '\0';
    oci_metrics_request_start(id);
    assert_string_equal(oci_metrics_request_id(), id);
    id[64] = 'a', id[65] = '\0';
    oci_metrics_request_start(id);
    assert_own_id(seen, &n);
}

static void test_namespaces_bounded(void **state)
{
    (void)state;
    oci_metrics_upstream("reg.test", false, 200, 3, 10);
    oci_metrics_upstream("docker.io", true, 404, 70, 0);
    oci_metrics_upstream("evil.example", false, 200, 40000, 5);
    oci_metrics_upstream("other.evil", false, 0, 1, 0);
    assert_int_equal(sample("oci_registry_upstream_requests_total{namespace=\"reg.test\",method="
                            "\"GET\",status=\"200\"}"),
                     1);
    assert_int_equal(sample("oci_registry_upstream_requests_total{namespace=\"docker.io\",method="
                            "\"HEAD\",status=\"404\"}"),
                     1);
    assert_int_equal(sample("oci_registry_upstream_requests_total{namespace=\"other\",method="
                            "\"GET\",status=\"200\"}"),
                     1);
    assert_int_equal(sample("oci_registry_upstream_requests_total{namespace=\"other\",method="
                            "\"GET\",status=\"0\"}"),
                     1);
    assert_int_equal(sample("oci_registry_upstream_received_bytes_total{namespace=\"other\"}"), 5);
    /* 3 ms in the first bucket; 40 s only in +Inf. */
    assert_int_equal(sample("oci_registry_upstream_request_duration_seconds_bucket{namespace=\"reg."
                            "test\",le=\"0.005\"}"),
                     1);
    assert_int_equal(
        sample(
            "oci_registry_upstream_request_duration_seconds_bucket{namespace=\"other\",le=\"30\"}"),
        1);
    assert_int_equal(sample("oci_registry_upstream_request_duration_seconds_bucket{namespace="
                            "\"other\",le=\"+Inf\"}"),
                     2);
    assert_int_equal(
        sample("oci_registry_upstream_request_duration_seconds_count{namespace=\"other\"}"), 2);
    {
        size_t len;
        char *text = oci_metrics_render(&len);
        assert_null(strstr(text, "evil"));
        free(text);
    }
}

static void test_statuses_bounded(void **state)
{
    struct oci_request req = {.method = "BREW", .path = "/v2/a/blobs/uploads/x"};
    struct oci_plan plan = {.kind = OCI_PLAN_RESPOND};

    (void)state;
    oci_metrics_request_start(NULL);
    plan.head.status = 418;
    oci_plan_count(&req, &plan);
    plan.head.status = 404;
    req.method = "GET";
    req.path = "/v2/a/tags/list";
    oci_plan_count(&req, &plan);
    assert_int_equal(
        sample("oci_registry_requests_total{method=\"other\",route=\"upload\",status=\"4xx\"}"), 1);
    assert_int_equal(
        sample("oci_registry_requests_total{method=\"GET\",route=\"tags\",status=\"404\"}"), 1);
}

/* Bytes from the cache after one stored_sent of a 1000-byte blob. */
static long long sent(const char *method, const char *range)
{
    long long before = sample("oci_registry_cache_served_bytes_total{kind=\"blob\"}");

    oci_metrics_request_start(NULL);
    oci_metrics_stored_sent(1000, method, range);
    return sample("oci_registry_cache_served_bytes_total{kind=\"blob\"}") - before;
}

static void test_range_lengths(void **state)
{
    (void)state;
    assert_int_equal(sent("GET", NULL), 1000);
    assert_int_equal(sent("HEAD", NULL), 0);
    assert_int_equal(sent("HEAD", "bytes=0-9"), 0);
    assert_int_equal(sent("GET", "bytes=100-199"), 100);
    assert_int_equal(sent("GET", "bytes=900-"), 100);
    assert_int_equal(sent("GET", "bytes=-50"), 50);
    assert_int_equal(sent("GET", "bytes=-5000"), 1000);
    assert_int_equal(sent("GET", "bytes=0-99999"), 1000);
    assert_int_equal(sent("GET", "bytes=1000-"), 0); /* 416: nothing sent */
    assert_int_equal(sent("GET", "bytes=0-1,5-6"), 1000);
    assert_int_equal(sent("GET", "items=0-1"), 1000); /* ignored by the front server */
    assert_int_equal(sent("GET", "bytes=5-2"), 1000);
    assert_int_equal(sample("oci_registry_cache_hits_total{kind=\"blob\"}"), 12);
}

static void test_s3_operations(void **state)
{
    (void)state;
    oci_observe_s3("GET", "delimiter=%2F&list-type=2&prefix=x", 200);
    oci_observe_s3("GET", NULL, 404);
    oci_observe_s3("PUT", "partNumber=2&uploadId=abc", 200);
    oci_observe_s3("POST", "uploads", 200);
    oci_observe_s3("POST", "uploadId=abc", 200);
    oci_observe_s3("DELETE", "uploadId=abc", 204);
    oci_observe_s3("PUT", NULL, 0);
    assert_int_equal(sample("oci_registry_s3_requests_total{operation=\"list\",status=\"200\"}"),
                     1);
    assert_int_equal(sample("oci_registry_s3_requests_total{operation=\"get\",status=\"404\"}"), 1);
    assert_int_equal(
        sample("oci_registry_s3_requests_total{operation=\"multipart_part\",status=\"200\"}"), 1);
    assert_int_equal(
        sample("oci_registry_s3_requests_total{operation=\"multipart_create\",status=\"200\"}"), 1);
    assert_int_equal(
        sample("oci_registry_s3_requests_total{operation=\"multipart_complete\",status=\"200\"}"),
        1);
    assert_int_equal(
        sample("oci_registry_s3_requests_total{operation=\"multipart_abort\",status=\"204\"}"), 1);
    assert_int_equal(sample("oci_registry_s3_requests_total{operation=\"put\",status=\"0\"}"), 1);
}

#define ADDS 200000

/* Counts ADDS tokens in a child process that maps the file on its own. */
static pid_t count_in_child(const struct fixture *f)
{
    pid_t pid = fork();
    char err[256];
    int i;

    if (pid != 0)
        return pid;
    oci_metrics_close();
    if (!oci_metrics_open(f->path, "filesystem", namespaces, 2, err, sizeof(err)))
        _exit(2);
    for (i = 0; i < ADDS; i++)
        oci_metrics_token_fetch(true);
    _exit(0);
}

static void test_processes_share(void **state)
{
    struct fixture *f = *state;
    pid_t a = count_in_child(f), b = count_in_child(f);
    int status, i;

    assert_true(a > 0 && b > 0);
    for (i = 0; i < ADDS; i++)
        oci_metrics_token_fetch(true);
    assert_int_equal(waitpid(a, &status, 0), a);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(waitpid(b, &status, 0), b);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(sample("oci_registry_token_fetches_total{result=\"ok\"}"), 3 * ADDS);
}

static void test_other_layout_replaced(void **state)
{
    struct fixture *f = *state;
    struct stat before, after;
    char err[256];
    FILE *fp;
    int i;

    oci_metrics_evicted(3, 4096);
    oci_metrics_close();
    /* An older layout: same magic, another size; then garbage of any size. */
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("OCIMETR", fp);
    for (i = 0; i < 5000; i++)
        fputc(0xff, fp);
    fclose(fp);
    assert_int_equal(stat(f->path, &before), 0);
    assert_true(oci_metrics_open(f->path, "filesystem", namespaces, 2, err, sizeof(err)));
    assert_int_equal(stat(f->path, &after), 0);
    assert_true(before.st_ino != after.st_ino);
    assert_int_equal(sample("oci_registry_evicted_bytes_total"), 0);
    assert_int_equal(sample("oci_registry_evicted_objects_total"), 0);
    /* And the new one is kept by the next process. */
    oci_metrics_evicted(1, 10);
    oci_metrics_close();
    assert_true(oci_metrics_open(f->path, "filesystem", namespaces, 2, err, sizeof(err)));
    assert_int_equal(stat(f->path, &before), 0);
    assert_true(before.st_ino == after.st_ino);
    assert_int_equal(sample("oci_registry_evicted_bytes_total"), 10);
}

static void test_unusable_path_counts_alone(void **state)
{
    struct fixture *f = *state;
    char path[320], err[256];

    oci_metrics_close();
    snprintf(path, sizeof(path), "%s/missing/_metrics", f->dir);
    assert_false(oci_metrics_open(path, "s3", namespaces, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "missing/_metrics"));
    oci_metrics_cache_size(123, 4);
    oci_metrics_cache_bound(1000);
    assert_int_equal(sample("oci_registry_cache_size_bytes"), 123);
    assert_int_equal(sample("oci_registry_cache_objects"), 4);
    assert_int_equal(sample("oci_registry_cache_bound_bytes"), 1000);
    assert_int_equal(
        sample("oci_registry_build_info{version=\"" PACKAGE_VERSION "\",storage=\"s3\"}"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statuses_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_layout_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_path_counts_alone, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
