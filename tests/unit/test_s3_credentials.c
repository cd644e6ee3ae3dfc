/*
 * test_s3_credentials.c - S3 keys from the AWS environment variables and the
 * shared credentials file (storage/s3_credentials.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/s3_credentials.h"

static const char file_text[] = "# comment\n"
                                "[default]\n"
                                "aws_access_key_id = DEFAULTKEY\n"
                                "aws_secret_access_key=defaultsecret \n"
                                "\n"
                                "; another comment\n"
                                "[ ci ]\n"
                                "  aws_access_key_id =  CIKEY\n"
                                "aws_secret_access_key = ci/secret+with=signs\n"
                                "aws_session_token = TOKEN/abc==\n"
                                "region = eu-west-1\n"
                                "[other]\n"
                                "aws_access_key_id = OTHER\n";

static void unset_aws(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_PROFILE");
}

static void test_parse_profiles(void **state)
{
    struct s3_credentials c;
    char err[256];

    (void)state;
    assert_int_equal(s3_credentials_parse(file_text, "f", "default", &c, err, sizeof(err)),
                     S3_CREDENTIALS_FOUND);
    assert_string_equal(c.access_key, "DEFAULTKEY");
    assert_string_equal(c.secret_key, "defaultsecret");
    assert_null(c.session_token);
    s3_credentials_free(&c);

    assert_int_equal(s3_credentials_parse(file_text, "f", "ci", &c, err, sizeof(err)),
                     S3_CREDENTIALS_FOUND);
    assert_string_equal(c.access_key, "CIKEY");
    assert_string_equal(c.secret_key, "ci/secret+with=signs");
    assert_string_equal(c.session_token, "TOKEN/abc==");
    s3_credentials_free(&c);

    assert_int_equal(s3_credentials_parse(file_text, "f", "absent", &c, err, sizeof(err)),
                     S3_CREDENTIALS_NONE);
}

/* A profile with half a key pair, or a line that is not INI, is an error naming the file. */
static void test_parse_errors(void **state)
{
    struct s3_credentials c;
    char err[256];

    (void)state;
    assert_int_equal(s3_credentials_parse(file_text, "creds", "other", &c, err, sizeof(err)),
                     S3_CREDENTIALS_ERROR);
    assert_non_null(strstr(err, "creds: profile [other] needs both"));
    assert_int_equal(
        s3_credentials_parse("[default]\njunk line\n", "creds", "default", &c, err, sizeof(err)),
        S3_CREDENTIALS_ERROR);
    assert_string_equal(err, "creds:2: not a [profile] or key = value line");
    assert_int_equal(s3_credentials_parse("[default\n", "creds", "default", &c, err, sizeof(err)),
                     S3_CREDENTIALS_ERROR);
    /* A control byte in a value would end up in a signed header. */
    assert_int_equal(s3_credentials_parse("[default]\naws_access_key_id = A\x01"
                                          "B\naws_secret_access_key = s\n",
                                          "creds", "default", &c, err, sizeof(err)),
                     S3_CREDENTIALS_ERROR);
    assert_null(strstr(err, "A\x01"));
}

/* The environment wins over the file; the file's profile is AWS_PROFILE. */
static void test_find_order(void **state)
{
    char path[] = "/tmp/test_s3_credentials.XXXXXX", err[256];
    struct s3_credentials c;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file_text, strlen(file_text)), (ssize_t)strlen(file_text));
    close(fd);
    unset_aws();
    setenv("HOME", "/nonexistent", 1);
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_NONE);

    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_FOUND);
    assert_string_equal(c.access_key, "DEFAULTKEY");
    s3_credentials_free(&c);
    setenv("AWS_PROFILE", "ci", 1);
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_FOUND);
    assert_string_equal(c.access_key, "CIKEY");
    assert_string_equal(c.session_token, "TOKEN/abc==");
    s3_credentials_free(&c);

    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_FOUND);
    assert_string_equal(c.access_key, "ENVKEY");
    assert_null(c.session_token); /* the file's token is not mixed with the env's keys */
    s3_credentials_free(&c);
    setenv("AWS_SESSION_TOKEN", "ENVTOKEN", 1);
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_FOUND);
    assert_string_equal(c.session_token, "ENVTOKEN");
    s3_credentials_free(&c);

    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_ERROR);
    assert_string_equal(err, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together");

    unset_aws();
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    assert_int_equal(s3_credentials_find(&c, err, sizeof(err)), S3_CREDENTIALS_NONE);
    unset_aws();
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_profiles),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_find_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
