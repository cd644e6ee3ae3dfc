/*
 * test_s3_lease.c - what a lease's holder and its waiters decide without
 * the network (storage/s3_lease.c): expiry by the S3 server's times alone,
 * the ttl a holder wrote; and the probe's outcome on its way to /metrics
 * and /readyz (util/observe.h, core/metrics, core/ops/health.c), replayed
 * to a counter plugged in after the storage reported it.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/metrics/metrics.h"
#include "core/ops/health.h"
#include "storage/s3_lease.h"
#include "util/observe.h"
#include "tests/unit/scratch.h"

/* Expiry compares the server's Last-Modified plus the ttl with the server's
 * Date: the local clock is not an argument, so its skew cannot matter. */
static void test_expiry_by_server_times(void **state)
{
    (void)state;
    assert_false(s3_lease_expired(1000, 30, 1000));
    assert_false(s3_lease_expired(1000, 30, 1030)); /* the last second is still live */
    assert_true(s3_lease_expired(1000, 30, 1031));
    assert_false(s3_lease_expired(1000, 30, 990)); /* a Date before the write: live */
}

static void test_body_ttl(void **state)
{
    (void)state;
    assert_int_equal(s3_lease_body_ttl("oci-registry lease\nttl 45\nholder h 1\n", 30), 45);
    assert_int_equal(s3_lease_body_ttl("ttl 7\n", 30), 7);
    assert_int_equal(s3_lease_body_ttl("oci-registry lease\nholder h 1\n", 30), 30);
    assert_int_equal(s3_lease_body_ttl("ttl x\n", 30), 30);
    assert_int_equal(s3_lease_body_ttl("ttl 0\n", 30), 30);
    assert_int_equal(s3_lease_body_ttl("ttl -5\n", 30), 30);
    assert_int_equal(s3_lease_body_ttl("ttl 12", 30), 30); /* cut short: not trusted */
    assert_int_equal(s3_lease_body_ttl("xttl 12\n", 30), 30);
    assert_int_equal(s3_lease_body_ttl("", 30), 30);
}

static int seen = -1;

static void remember(bool yes)
{
    seen = yes;
}

/* The storage opens (and probes) before core plugs in its counter. */
static void test_report_replayed(void **state)
{
    (void)state;
    oci_observe_s3_conditional(false);
    seen = -1;
    oci_observe_set_s3_conditional(remember);
    assert_int_equal(seen, 0);
    oci_observe_s3_conditional(true);
    assert_int_equal(seen, 1);
    oci_observe_set_s3_conditional(NULL);
}

/* What /metrics and /readyz say of each outcome. */
static void test_metric_and_readiness(void **state)
{
    const char *const names[] = {"docker.io"};
    char dir[64], path[128], err[256], details[256];
    size_t len;
    char *text;

    (void)state;
    assert_true(scratch_make("oci-lease", dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/_metrics", dir);
    oci_observe_s3_conditional(false);
    assert_true(oci_metrics_open(path, "s3", names, 1, err, sizeof(err)));
    assert_int_equal(oci_metrics_s3_conditional(), 0);
    text = oci_metrics_render(&len);
    assert_non_null(strstr(text, "\noci_registry_s3_conditional_writes 0\n"));
    free(text);
    oci_health_details(details, sizeof(details));
    assert_non_null(strstr(details, "alone"));

    oci_observe_s3_conditional(true);
    assert_int_equal(oci_metrics_s3_conditional(), 1);
    text = oci_metrics_render(&len);
    assert_non_null(strstr(text, "\noci_registry_s3_conditional_writes 1\n"));
    free(text);
    oci_health_details(details, sizeof(details));
    assert_non_null(strstr(details, "cooperating"));

    oci_metrics_cleanup_skipped();
    text = oci_metrics_render(&len);
    assert_non_null(strstr(text, "\noci_registry_cleanup_skipped_total 1\n"));
    free(text);
    oci_metrics_close();
    scratch_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expiry_by_server_times),
        cmocka_unit_test(test_body_ttl),
        cmocka_unit_test(test_report_replayed),
        cmocka_unit_test(test_metric_and_readiness),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
