/*
 * s3_list.c - listings of the S3 backend (see s3_list.h).
 *
 * The server's answer is outside input: a page is read with bounds (its
 * size, its keys checked as storage keys), and the walk over pages must make
 * progress, since a server that keeps saying IsTruncated, repeats its
 * continuation token or starts over would otherwise keep the clean-up
 * listing forever. S3 lists keys in ascending byte order, so every key must
 * come after the one before it.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/s3_list.h"
#include "storage/sigv4.h"
#include "util/log.h"

/* Replaces XML's five entities in place. */
static void xml_unescape(char *s)
{
    static const struct {
        const char *entity;
        char c;
    } map[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *in = s, *out = s;
    size_t i;

    while (*in) {
        for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (strncmp(in, map[i].entity, strlen(map[i].entity)) == 0)
                break;
        if (*in == '&' && i < sizeof(map) / sizeof(map[0])) {
            *out++ = map[i].c;
            in += strlen(map[i].entity);
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* An ISO 8601 time of a listing, "2015-08-30T12:36:00.000Z"; 0 when unreadable. */
static time_t iso8601_time(const char *s)
{
    struct tm tm = {0};

    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
        return 0;
    return timegm(&tm);
}

/* Takes key (owned) as the greatest so far; false when it is not after the last one. */
static bool key_advances(struct s3_listing *l, char *key)
{
    if (l->last_key != NULL && strcmp(key, l->last_key) <= 0) {
        oci_log(OCI_LOG_ERROR, "s3: listing: key '%.200s' out of order after '%.200s'", key,
                l->last_key);
        free(key);
        return false;
    }
    free(l->last_key);
    l->last_key = key;
    l->keys++;
    return true;
}

/* One <Contents> element (NUL-terminated at its end); false on a key out of order. */
static bool list_item(struct s3_listing *l, const char *item)
{
    size_t plen = strlen(l->prefix);
    char *key = s3_http_xml_text(item, "Key"), *modified, *size;
    struct storage_info info = {0};
    bool ok;

    if (key == NULL)
        return true;
    xml_unescape(key);
    if (!key_advances(l, key))
        return false;
    key = l->last_key;
    if (strncmp(key, l->prefix, plen) != 0 || !storage_key_valid(key + plen))
        return true;
    modified = s3_http_xml_text(item, "LastModified");
    size = s3_http_xml_text(item, "Size");
    info.size = size ? strtoull(size, NULL, 10) : 0;
    info.mtime = iso8601_time(modified);
    free(modified);
    free(size);
    ok = l->fn(l->arg, key + plen, &info);
    l->stopped = !ok;
    return true;
}

/* The page's continuation: a token that differs from the last one, or none. */
static enum storage_err next_token(struct s3_listing *l, const char *body, bool had_keys)
{
    char *truncated = s3_http_xml_text(body, "IsTruncated"), *token = NULL;
    bool more = truncated != NULL && strcmp(truncated, "true") == 0;

    free(truncated);
    if (more)
        token = s3_http_xml_text(body, "NextContinuationToken");
    if (more &&
        (token == NULL || *token == '\0' || (l->token != NULL && strcmp(token, l->token) == 0))) {
        oci_log(OCI_LOG_ERROR, "s3: listing: truncated page without a new continuation token");
        free(token);
        return STORAGE_IO;
    }
    l->empty_pages = more && !had_keys ? l->empty_pages + 1 : 0;
    if (l->empty_pages > S3_LIST_EMPTY_MAX) {
        oci_log(OCI_LOG_ERROR, "s3: listing: %d truncated pages in a row without a key",
                l->empty_pages);
        free(token);
        return STORAGE_IO;
    }
    free(l->token);
    l->token = token;
    return STORAGE_OK;
}

enum storage_err s3_list_page(struct s3_listing *l, char *body)
{
    char *item = body, *end;
    unsigned long keys = l->keys;

    while (!l->stopped && (item = strstr(item, "<Contents>")) != NULL &&
           (end = strstr(item, "</Contents>")) != NULL) {
        *end = '\0';
        if (!list_item(l, item))
            return STORAGE_IO;
        /* The rest of the page is read after the item: restore what was cut. */
        *end = '<';
        item = end + 1;
    }
    return next_token(l, body, l->keys > keys);
}

void s3_listing_free(struct s3_listing *l)
{
    free(l->last_key);
    free(l->token);
    l->last_key = l->token = NULL;
}

/* The query of one page, parameters sorted (as the canonical form wants them). */
static char *list_query(const struct s3 *s, const char *prefix, const char *token)
{
    size_t len = strlen(s->prefix) + strlen(prefix) + 1;
    char *full = malloc(len), *enc_prefix = NULL, *enc_token = NULL, *q = NULL;

    if (full == NULL)
        return NULL;
    snprintf(full, len, "%s%s", s->prefix, prefix);
    enc_prefix = sigv4_uri_encode(full, false);
    enc_token = token ? sigv4_uri_encode(token, false) : strdup("");
    if (enc_prefix == NULL || enc_token == NULL)
        goto done;
    len = strlen(enc_prefix) + strlen(enc_token) + 64;
    if ((q = malloc(len)) == NULL)
        goto done;
    snprintf(q, len, "%s%s%slist-type=2&prefix=%s", token ? "continuation-token=" : "", enc_token,
             token ? "&" : "", enc_prefix);
done:
    free(full);
    free(enc_prefix);
    free(enc_token);
    return q;
}

/* GETs the listing's next page into resp. */
static enum storage_err fetch_page(struct s3 *s, const struct s3_listing *l, const char *prefix,
                                   struct s3_resp *resp)
{
    struct s3_req req = s3_http_req("GET", NULL);
    char *query = list_query(s, prefix, l->token);
    enum storage_err err;

    if (query == NULL)
        return STORAGE_NO_MEMORY;
    req.query = query;
    req.max_body = S3_LIST_BODY_MAX;
    err = s3_http_call(s, &req, resp);
    if (err == STORAGE_OK && resp->too_large) {
        oci_log(OCI_LOG_ERROR, "s3: listing: a page of more than %d bytes", S3_LIST_BODY_MAX);
        err = STORAGE_IO;
    }
    free(query);
    return err;
}

enum storage_err s3_list(struct storage *st, const char *prefix, storage_list_fn fn, void *arg)
{
    struct s3 *s = (struct s3 *)st;
    struct s3_listing l = {.prefix = s->prefix, .fn = fn, .arg = arg};
    enum storage_err err = STORAGE_OK;

    if (*prefix == '\0' || prefix[strlen(prefix) - 1] != '/')
        return STORAGE_BAD_KEY;
    do {
        struct s3_resp resp = {0};

        err = fetch_page(s, &l, prefix, &resp);
        if (err == STORAGE_OK)
            err = s3_list_page(&l, resp.body != NULL ? resp.body : (char[]){""});
        s3_http_resp_free(&resp);
    } while (err == STORAGE_OK && !l.stopped && l.token != NULL);
    s3_listing_free(&l);
    return err;
}
