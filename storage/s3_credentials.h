/*
 * s3_credentials.h - S3 keys from where every S3 tool looks for them.
 *
 * When the command line and the S3_* variables name no key pair, the
 * backend takes the first of:
 *   1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
 *   2. the shared credentials file, AWS_SHARED_CREDENTIALS_FILE or
 *      ~/.aws/credentials, profile AWS_PROFILE or "default"
 *      (aws_access_key_id, aws_secret_access_key, aws_session_token).
 * A session token is used only with the key pair of its own source.
 * Nothing here is ever logged; errors name the file and line, never a value.
 */
#ifndef OCI_STORAGE_S3_CREDENTIALS_H
#define OCI_STORAGE_S3_CREDENTIALS_H

#include <stddef.h>

struct s3_credentials {
    char *access_key;
    char *secret_key;
    char *session_token; /* NULL: none */
    char source[64];     /* where they came from, for messages: "AWS_ACCESS_KEY_ID", ... */
};

enum s3_credentials_result {
    S3_CREDENTIALS_FOUND,
    S3_CREDENTIALS_NONE,  /* no source names a key pair */
    S3_CREDENTIALS_ERROR, /* a source is broken: err says which and why */
};

/* Looks in the environment, then in the shared credentials file. */
enum s3_credentials_result s3_credentials_find(struct s3_credentials *out, char *err,
                                               size_t errlen);

/*
 * Reads profile out of the text of a credentials file (INI: "[profile]",
 * "key = value", '#' and ';' comments); path is only for messages.
 */
enum s3_credentials_result s3_credentials_parse(const char *text, const char *path,
                                                const char *profile, struct s3_credentials *out,
                                                char *err, size_t errlen);

void s3_credentials_free(struct s3_credentials *c);

#endif
