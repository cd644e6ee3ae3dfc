/*
 * s3_credentials.c - the AWS environment variables and the shared
 * credentials file, read as the AWS CLI reads them.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_credentials.h"

#define CREDENTIALS_FILE_MAX (1024 * 1024)

void s3_credentials_free(struct s3_credentials *c)
{
    free(c->access_key);
    free(c->secret_key);
    free(c->session_token);
    c->access_key = c->secret_key = c->session_token = NULL;
}

static bool set_value(char **slot, const char *value, size_t len)
{
    char *copy = strndup(value, len);

    if (copy == NULL)
        return false;
    free(*slot);
    *slot = copy;
    return true;
}

/* A value may not hold control bytes: it goes into a signed header. */
static bool clean_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (iscntrl((unsigned char)s[i]))
            return false;
    return true;
}

/* s[0..*len) without white space at either end. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)*s))
        s++, (*len)--;
    while (*len > 0 && isspace((unsigned char)s[*len - 1]))
        (*len)--;
    return s;
}

/* Takes "key = value" of the profile's section into out; false on a bad line. */
static bool parse_pair(const char *line, size_t len, struct s3_credentials *out, bool *nomem)
{
    const char *eq = memchr(line, '=', len), *key, *value;
    size_t key_len, value_len;
    char **slot = NULL;

    if (eq == NULL)
        return false;
    key_len = (size_t)(eq - line);
    key = trim(line, &key_len);
    value_len = len - (size_t)(eq + 1 - line);
    value = trim(eq + 1, &value_len);
    if (!clean_value(value, value_len))
        return false;
    if (key_len == 17 && strncmp(key, "aws_access_key_id", key_len) == 0)
        slot = &out->access_key;
    else if (key_len == 21 && strncmp(key, "aws_secret_access_key", key_len) == 0)
        slot = &out->secret_key;
    else if (key_len == 17 && strncmp(key, "aws_session_token", key_len) == 0)
        slot = &out->session_token;
    if (slot != NULL && !set_value(slot, value, value_len))
        *nomem = true;
    return true;
}

enum s3_credentials_result s3_credentials_parse(const char *text, const char *path,
                                                const char *profile, struct s3_credentials *out,
                                                char *err, size_t errlen)
{
    const char *line = text;
    bool in_profile = false, nomem = false;
    unsigned lineno = 0;

    memset(out, 0, sizeof(*out));
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *s = trim(line, &len);

        lineno++;
        if (len == 0 || *s == '#' || *s == ';') {
            /* blank or a comment */
        } else if (*s == '[') {
            size_t name_len = len - 2;
            const char *name = s + 1;

            if (len < 2 || s[len - 1] != ']')
                goto bad_line;
            name = trim(name, &name_len);
            in_profile = name_len == strlen(profile) && strncmp(name, profile, name_len) == 0;
        } else if (in_profile && !parse_pair(s, len, out, &nomem)) {
            goto bad_line;
        }
        if (nomem) {
            snprintf(err, errlen, "out of memory");
            s3_credentials_free(out);
            return S3_CREDENTIALS_ERROR;
        }
        line = end ? end + 1 : line + len;
    }
    if (out->access_key == NULL && out->secret_key == NULL) {
        s3_credentials_free(out);
        return S3_CREDENTIALS_NONE;
    }
    if (out->access_key == NULL || out->secret_key == NULL || *out->access_key == '\0' ||
        *out->secret_key == '\0') {
        snprintf(err, errlen,
                 "%s: profile [%s] needs both aws_access_key_id and "
                 "aws_secret_access_key",
                 path, profile);
        s3_credentials_free(out);
        return S3_CREDENTIALS_ERROR;
    }
    snprintf(out->source, sizeof(out->source), "profile %s", profile);
    return S3_CREDENTIALS_FOUND;

bad_line:
    snprintf(err, errlen, "%s:%u: not a [profile] or key = value line", path, lineno);
    s3_credentials_free(out);
    return S3_CREDENTIALS_ERROR;
}

static enum s3_credentials_result from_environment(struct s3_credentials *out, char *err,
                                                   size_t errlen)
{
    const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");

    memset(out, 0, sizeof(*out));
    if ((key == NULL || *key == '\0') && (secret == NULL || *secret == '\0'))
        return S3_CREDENTIALS_NONE;
    if (key == NULL || *key == '\0' || secret == NULL || *secret == '\0') {
        snprintf(err, errlen, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together");
        return S3_CREDENTIALS_ERROR;
    }
    if (!clean_value(key, strlen(key)) || !clean_value(secret, strlen(secret)) ||
        (token != NULL && !clean_value(token, strlen(token)))) {
        snprintf(err, errlen, "the AWS_* credentials hold control characters");
        return S3_CREDENTIALS_ERROR;
    }
    out->access_key = strdup(key);
    out->secret_key = strdup(secret);
    out->session_token = token && *token ? strdup(token) : NULL;
    if (out->access_key == NULL || out->secret_key == NULL ||
        (token && *token && out->session_token == NULL)) {
        s3_credentials_free(out);
        snprintf(err, errlen, "out of memory");
        return S3_CREDENTIALS_ERROR;
    }
    snprintf(out->source, sizeof(out->source), "AWS_ACCESS_KEY_ID");
    return S3_CREDENTIALS_FOUND;
}

/* The whole file in a new string; NULL with errno ENOENT when there is none. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text;
    size_t len;

    if (f == NULL) {
        if (errno != ENOENT)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    text = malloc(CREDENTIALS_FILE_MAX + 1);
    len = text ? fread(text, 1, CREDENTIALS_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (text == NULL || len > CREDENTIALS_FILE_MAX || memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "%s: %s", path, text ? "too large, or not text" : "out of memory");
        free(text);
        errno = EINVAL;
        return NULL;
    }
    text[len] = '\0';
    return text;
}

enum s3_credentials_result s3_credentials_find(struct s3_credentials *out, char *err, size_t errlen)
{
    enum s3_credentials_result r = from_environment(out, err, errlen);
    const char *path = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
    const char *profile = getenv("AWS_PROFILE");
    char home_path[4096], *text;

    if (r != S3_CREDENTIALS_NONE)
        return r;
    if (path == NULL || *path == '\0') {
        if (home == NULL || *home == '\0')
            return S3_CREDENTIALS_NONE;
        snprintf(home_path, sizeof(home_path), "%s/.aws/credentials", home);
        path = home_path;
    }
    if (profile == NULL || *profile == '\0')
        profile = "default";
    err[0] = '\0';
    text = read_file(path, err, errlen);
    if (text == NULL)
        return err[0] != '\0' ? S3_CREDENTIALS_ERROR : S3_CREDENTIALS_NONE;
    r = s3_credentials_parse(text, path, profile, out, err, errlen);
    free(text);
    return r;
}
