/*
 * test_sigv4.c - the SigV4 signer against AWS's published test vectors:
 * the Signature Version 4 test suite (get-vanilla, query ordering,
 * post-x-www-form-urlencoded; secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
 * 20150830T123600Z, us-east-1, service "service") and the presigned URL
 * example of the S3 documentation (GET /test.txt on examplebucket).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/sigv4.h"

#define DATE "20150830T123600Z"

static const struct sigv4_credentials suite = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};

static const struct sigv4_header vanilla_headers[] = {
    {"Host", "example.amazonaws.com"},
    {"X-Amz-Date", DATE},
};

static void expect_authorization(const struct sigv4_request *req, const char *signed_headers,
                                 const char *signature)
{
    char *auth = sigv4_authorization(&suite, req), want[512];

    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             signed_headers, signature);
    assert_non_null(auth);
    assert_string_equal(auth, want);
    free(auth);
}

static void get_vanilla(void **state)
{
    struct sigv4_request req = {"GET", "/", NULL, vanilla_headers, 2, SIGV4_EMPTY_SHA256, DATE};
    char *creq = sigv4_canonical_request(&req), *sts;
    char sig[SIGV4_HEX_LEN + 1];

    (void)state;
    assert_string_equal(creq, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" DATE
                              "\n\nhost;x-amz-date\n" SIGV4_EMPTY_SHA256);
    sts = sigv4_string_to_sign(&suite, DATE, creq);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/service/aws4_request\n"
                             "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    assert_true(sigv4_signature(&suite, DATE, sts, sig));
    assert_string_equal(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    expect_authorization(&req, "host;x-amz-date",
                         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    free(creq);
    free(sts);
}

/* get-vanilla-query-order-key(-case): parameters are signed sorted by name. */
static void get_vanilla_query_order_key(void **state)
{
    struct sigv4_request req = {
        "GET", "/", "Param2=value2&Param1=value1", vanilla_headers, 2, SIGV4_EMPTY_SHA256, DATE};
    char *creq = sigv4_canonical_request(&req);

    (void)state;
    assert_non_null(strstr(creq, "\n/\nParam1=value1&Param2=value2\n"));
    expect_authorization(&req, "host;x-amz-date",
                         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    free(creq);
}

/* Parameters of the same name are sorted by value (canonical form only). */
static void query_same_name_sorted_by_value(void **state)
{
    struct sigv4_request req = {
        "GET", "/", "Param1=value2&Param1=Value1", vanilla_headers, 2, SIGV4_EMPTY_SHA256, DATE};
    char *creq = sigv4_canonical_request(&req);

    (void)state;
    assert_non_null(strstr(creq, "\n/\nParam1=Value1&Param1=value2\n"));
    free(creq);
}

static void post_x_www_form_urlencoded(void **state)
{
    static const struct sigv4_header headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded"},
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", DATE},
    };
    char hash[SIGV4_HEX_LEN + 1];
    struct sigv4_request req = {"POST", "/", NULL, headers, 3, hash, DATE};
    char *creq;

    (void)state;
    sigv4_sha256_hex("Param1=value1", 13, hash);
    assert_string_equal(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    creq = sigv4_canonical_request(&req);
    assert_string_equal(creq, "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
                              "host:example.amazonaws.com\nx-amz-date:" DATE "\n\n"
                              "content-type;host;x-amz-date\n"
                              "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    expect_authorization(&req, "content-type;host;x-amz-date",
                         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    free(creq);
}

/* Header names are signed lower-case and sorted, values trimmed. */
static void header_order_and_trimming(void **state)
{
    static const struct sigv4_header headers[] = {
        {"X-Amz-Date", DATE},
        {"My-Header1", "  a   b   c  "},
        {"Host", "example.amazonaws.com"},
    };
    struct sigv4_request req = {"GET", "/", NULL, headers, 3, SIGV4_EMPTY_SHA256, DATE};
    char *creq = sigv4_canonical_request(&req);

    (void)state;
    assert_string_equal(creq,
                        "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:a b c\n"
                        "x-amz-date:" DATE "\n\nhost;my-header1;x-amz-date\n" SIGV4_EMPTY_SHA256);
    free(creq);
}

/* The S3 documentation's presigned URL example. */
static void s3_presigned_url(void **state)
{
    static const struct sigv4_credentials s3 = {
        "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
    char *q = sigv4_presign_query(&s3, "GET", "examplebucket.s3.amazonaws.com", "/test.txt", NULL,
                                  "20130524T000000Z", 86400);

    (void)state;
    assert_string_equal(
        q, "X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(q);
}

static void uri_encoding(void **state)
{
    char *a = sigv4_uri_encode("blobs/sha256/ab/a b+c~d", true);
    char *b = sigv4_uri_encode("a/b=c", false);

    (void)state;
    assert_string_equal(a, "blobs/sha256/ab/a%20b%2Bc~d");
    assert_string_equal(b, "a%2Fb%3Dc");
    free(a);
    free(b);
}

static void date_format(void **state)
{
    char out[SIGV4_DATE_LEN + 1];

    (void)state;
    sigv4_format_date(1440938160, out);
    assert_string_equal(out, DATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_vanilla),
        cmocka_unit_test(get_vanilla_query_order_key),
        cmocka_unit_test(query_same_name_sorted_by_value),
        cmocka_unit_test(post_x_www_form_urlencoded),
        cmocka_unit_test(header_order_and_trimming),
        cmocka_unit_test(s3_presigned_url),
        cmocka_unit_test(uri_encoding),
        cmocka_unit_test(date_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
