/*
 * test_errors.c - the error table and the JSON error body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "core/request/errors.h"

static void test_status(void **state)
{
    (void)state;
    assert_int_equal(oci_error_status(OCI_OK), 200);
    assert_int_equal(oci_error_status(OCI_E_BLOB_UNKNOWN), 404);
    assert_int_equal(oci_error_status(OCI_E_DIGEST_INVALID), 400);
    assert_int_equal(oci_error_status(OCI_E_MANIFEST_INVALID), 400);
    assert_int_equal(oci_error_status(OCI_E_MANIFEST_UNKNOWN), 404);
    assert_int_equal(oci_error_status(OCI_E_NAME_INVALID), 400);
    assert_int_equal(oci_error_status(OCI_E_NAME_UNKNOWN), 404);
    assert_int_equal(oci_error_status(OCI_E_TAG_INVALID), 400);
    assert_int_equal(oci_error_status(OCI_E_UNAUTHORIZED), 401);
    assert_int_equal(oci_error_status(OCI_E_DENIED), 403);
    assert_int_equal(oci_error_status(OCI_E_UNSUPPORTED), 405);
    assert_int_equal(oci_error_status(OCI_E_NOT_FOUND), 404);
    assert_int_equal(oci_error_status(OCI_E_TOOMANYREQUESTS), 429);
    assert_int_equal(oci_error_status(OCI_E_UPSTREAM_FAILED), 502);
    assert_int_equal(oci_error_status(OCI_E_UNAVAILABLE), 503);
    assert_int_equal(oci_error_status(OCI_E_INTERNAL), 500);
}

static void test_code(void **state)
{
    (void)state;
    assert_string_equal(oci_error_code(OCI_E_BLOB_UNKNOWN), "BLOB_UNKNOWN");
    assert_string_equal(oci_error_code(OCI_E_DIGEST_INVALID), "DIGEST_INVALID");
    assert_string_equal(oci_error_code(OCI_E_MANIFEST_INVALID), "MANIFEST_INVALID");
    assert_string_equal(oci_error_code(OCI_E_MANIFEST_UNKNOWN), "MANIFEST_UNKNOWN");
    assert_string_equal(oci_error_code(OCI_E_NAME_INVALID), "NAME_INVALID");
    assert_string_equal(oci_error_code(OCI_E_NAME_UNKNOWN), "NAME_UNKNOWN");
    assert_string_equal(oci_error_code(OCI_E_TAG_INVALID), "TAG_INVALID");
    assert_string_equal(oci_error_code(OCI_E_UNAUTHORIZED), "UNAUTHORIZED");
    assert_string_equal(oci_error_code(OCI_E_DENIED), "DENIED");
    assert_string_equal(oci_error_code(OCI_E_UNSUPPORTED), "UNSUPPORTED");
    assert_string_equal(oci_error_code(OCI_E_TOOMANYREQUESTS), "TOOMANYREQUESTS");
}

/* A value outside the enum answers as our own fault, not as a crash. */
static void test_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(oci_error_status((enum oci_error)1000), 500);
    assert_string_equal(oci_error_code((enum oci_error)1000), "INTERNAL");
}

static void test_body_exact(void **state)
{
    char *body = oci_error_body(OCI_E_NAME_INVALID, NULL, "a..b");

    (void)state;
    assert_non_null(body);
    assert_string_equal(body, "{\"errors\":[{\"code\":\"NAME_INVALID\","
                              "\"message\":\"invalid repository name\",\"detail\":\"a..b\"}]}");
    free(body);
}

static void test_body_without_detail(void **state)
{
    char *body = oci_error_body(OCI_E_MANIFEST_UNKNOWN, NULL, NULL);

    (void)state;
    assert_non_null(body);
    assert_string_equal(
        body, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}");
    free(body);
}

static void test_body_custom_message(void **state)
{
    char *body = oci_error_body(OCI_E_UNAVAILABLE, "upstream timed out", NULL);
    cJSON *root, *entry;

    (void)state;
    assert_non_null(body);
    root = cJSON_Parse(body);
    assert_non_null(root);
    entry = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "errors"), 0);
    assert_string_equal(cJSON_GetObjectItem(entry, "code")->valuestring, "UNAVAILABLE");
    assert_string_equal(cJSON_GetObjectItem(entry, "message")->valuestring, "upstream timed out");
    assert_null(cJSON_GetObjectItem(entry, "detail"));
    cJSON_Delete(root);
    free(body);
}

/* A detail taken from a request must not break out of its JSON string. */
static void test_body_escapes(void **state)
{
    const char *detail = "\"},{\"code\":\"x\\\n";
    char *body = oci_error_body(OCI_E_TAG_INVALID, NULL, detail);
    cJSON *root, *errors;

    (void)state;
    assert_non_null(body);
    root = cJSON_Parse(body);
    assert_non_null(root);
    errors = cJSON_GetObjectItem(root, "errors");
    assert_int_equal(cJSON_GetArraySize(errors), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(errors, 0), "detail")->valuestring,
                        detail);
    cJSON_Delete(root);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_code),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_body_exact),
        cmocka_unit_test(test_body_without_detail),
        cmocka_unit_test(test_body_custom_message),
        cmocka_unit_test(test_body_escapes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
