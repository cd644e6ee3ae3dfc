/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h): canonical requests,
 * strings to sign, signing keys and presigned query strings.
 *
 * Strings are built in a small growable buffer; any allocation failure
 * makes the whole result NULL.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/sigv4.h"

#define ALGORITHM          "AWS4-HMAC-SHA256"
#define MAX_SIGNED_HEADERS 16
#define MAX_QUERY_PARAMS   64

/* A growable string; failed goes true at the first allocation failure. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void sb_grow(struct sbuf *b, size_t more)
{
    size_t cap;
    char *s;

    if (b->failed || b->len + more + 1 <= b->cap)
        return;
    cap = (b->len + more + 1) * 2;
    s = realloc(b->s, cap);
    if (s == NULL) {
        b->failed = true;
        return;
    }
    b->s = s;
    b->cap = cap;
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->failed)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

/* The string, or NULL (and freed) when any step failed. */
static char *sb_finish(struct sbuf *b)
{
    if (b->failed || b->s == NULL) {
        free(b->s);
        return b->failed ? NULL : strdup("");
    }
    return b->s;
}

static void hex(const unsigned char *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

void sigv4_sha256_hex(const void *buf, size_t len, char out[SIGV4_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned int outlen = 32;

    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &outlen);
}

char *sigv4_uri_encode(const char *s, bool keep_slash)
{
    struct sbuf b = {0};
    char esc[4];

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
            (c == '/' && keep_slash)) {
            sb_addn(&b, (const char *)&c, 1);
        } else {
            snprintf(esc, sizeof(esc), "%%%02X", c);
            sb_add(&b, esc);
        }
    }
    return sb_finish(&b);
}

void sigv4_format_date(time_t t, char out[SIGV4_DATE_LEN + 1])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static int cmp_param(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    size_t kx = strcspn(*x, "="), ky = strcspn(*y, "=");
    int c = strncmp(*x, *y, kx < ky ? kx : ky);

    if (c != 0)
        return c;
    if (kx != ky)
        return kx < ky ? -1 : 1;
    return strcmp(*x, *y);
}

/* The canonical query: parameters sorted by name, then value; "k" becomes "k=". */
static void add_canonical_query(struct sbuf *b, const char *query)
{
    char *copy, *params[MAX_QUERY_PARAMS], *save = NULL, *p;
    size_t n = 0, i;

    if (query == NULL || *query == '\0')
        return;
    copy = strdup(query);
    if (copy == NULL) {
        b->failed = true;
        return;
    }
    for (p = strtok_r(copy, "&", &save); p && n < MAX_QUERY_PARAMS; p = strtok_r(NULL, "&", &save))
        params[n++] = p;
    qsort(params, n, sizeof(params[0]), cmp_param);
    for (i = 0; i < n; i++) {
        if (i > 0)
            sb_add(b, "&");
        sb_add(b, params[i]);
        if (strchr(params[i], '=') == NULL)
            sb_add(b, "=");
    }
    free(copy);
}

static int cmp_header(const void *a, const void *b)
{
    const struct sigv4_header *const *x = a, *const *y = b;

    return strcasecmp((*x)->name, (*y)->name);
}

static void add_lower(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        char c = (char)tolower((unsigned char)*s);
        sb_addn(b, &c, 1);
    }
}

/* A header value trimmed of surrounding blanks, inner runs of blanks made one. */
static void add_trimmed(struct sbuf *b, const char *v)
{
    bool space = false;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = true;
            continue;
        }
        if (space)
            sb_add(b, " ");
        space = false;
        sb_addn(b, v, 1);
    }
}

/* Sorts the request's headers into sorted[]; false when there are too many. */
static bool sort_headers(const struct sigv4_request *req, const struct sigv4_header **sorted)
{
    size_t i;

    if (req->header_count > MAX_SIGNED_HEADERS)
        return false;
    for (i = 0; i < req->header_count; i++)
        sorted[i] = &req->headers[i];
    qsort(sorted, req->header_count, sizeof(sorted[0]), cmp_header);
    return true;
}

static void add_signed_headers(struct sbuf *b, const struct sigv4_header **sorted, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (i > 0)
            sb_add(b, ";");
        add_lower(b, sorted[i]->name);
    }
}

char *sigv4_canonical_request(const struct sigv4_request *req)
{
    const struct sigv4_header *sorted[MAX_SIGNED_HEADERS];
    struct sbuf b = {0};
    size_t i;

    if (!sort_headers(req, sorted))
        return NULL;
    sb_add(&b, req->method);
    sb_add(&b, "\n");
    sb_add(&b, req->path[0] ? req->path : "/");
    sb_add(&b, "\n");
    add_canonical_query(&b, req->query);
    sb_add(&b, "\n");
    for (i = 0; i < req->header_count; i++) {
        add_lower(&b, sorted[i]->name);
        sb_add(&b, ":");
        add_trimmed(&b, sorted[i]->value);
        sb_add(&b, "\n");
    }
    sb_add(&b, "\n");
    add_signed_headers(&b, sorted, req->header_count);
    sb_add(&b, "\n");
    sb_add(&b, req->payload_hash);
    return sb_finish(&b);
}

/* "20150830/us-east-1/service/aws4_request" */
static void add_scope(struct sbuf *b, const struct sigv4_credentials *cred, const char *amz_date)
{
    sb_addn(b, amz_date, 8);
    sb_add(b, "/");
    sb_add(b, cred->region);
    sb_add(b, "/");
    sb_add(b, cred->service);
    sb_add(b, "/aws4_request");
}

char *sigv4_string_to_sign(const struct sigv4_credentials *cred, const char *amz_date,
                           const char *canonical_request)
{
    struct sbuf b = {0};
    char hash[SIGV4_HEX_LEN + 1];

    if (strlen(amz_date) != SIGV4_DATE_LEN)
        return NULL;
    sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
    sb_add(&b, ALGORITHM "\n");
    sb_add(&b, amz_date);
    sb_add(&b, "\n");
    add_scope(&b, cred, amz_date);
    sb_add(&b, "\n");
    sb_add(&b, hash);
    return sb_finish(&b);
}

bool sigv4_signature(const struct sigv4_credentials *cred, const char *amz_date,
                     const char *string_to_sign, char out[SIGV4_HEX_LEN + 1])
{
    unsigned char k[32];
    char date[9], *secret;
    size_t len = strlen(cred->secret_key) + 5;

    if (strlen(amz_date) != SIGV4_DATE_LEN || (secret = malloc(len)) == NULL)
        return false;
    snprintf(secret, len, "AWS4%s", cred->secret_key);
    snprintf(date, sizeof(date), "%.8s", amz_date);
    hmac(secret, strlen(secret), date, k);
    OPENSSL_cleanse(secret, len);
    free(secret);
    hmac(k, sizeof(k), cred->region, k);
    hmac(k, sizeof(k), cred->service, k);
    hmac(k, sizeof(k), "aws4_request", k);
    hmac(k, sizeof(k), string_to_sign, k);
    hex(k, sizeof(k), out);
    return true;
}

/* The signature of a request: canonical request -> string to sign -> HMAC. */
static bool sign_request(const struct sigv4_credentials *cred, const struct sigv4_request *req,
                         char out[SIGV4_HEX_LEN + 1])
{
    char *creq = sigv4_canonical_request(req), *sts = NULL;
    bool ok = false;

    if (creq == NULL)
        goto done;
    sts = sigv4_string_to_sign(cred, req->amz_date, creq);
    if (sts == NULL)
        goto done;
    ok = sigv4_signature(cred, req->amz_date, sts, out);
done:
    free(creq);
    free(sts);
    return ok;
}

char *sigv4_authorization(const struct sigv4_credentials *cred, const struct sigv4_request *req)
{
    const struct sigv4_header *sorted[MAX_SIGNED_HEADERS];
    char sig[SIGV4_HEX_LEN + 1];
    struct sbuf b = {0};

    if (!sort_headers(req, sorted) || !sign_request(cred, req, sig))
        return NULL;
    sb_add(&b, ALGORITHM " Credential=");
    sb_add(&b, cred->access_key);
    sb_add(&b, "/");
    add_scope(&b, cred, req->amz_date);
    sb_add(&b, ", SignedHeaders=");
    add_signed_headers(&b, sorted, req->header_count);
    sb_add(&b, ", Signature=");
    sb_add(&b, sig);
    return sb_finish(&b);
}

/* The X-Amz-* parameters of a presigned URL, before the signature. */
static char *presign_params(const struct sigv4_credentials *cred, const char *extra_query,
                            const char *amz_date, long expires)
{
    struct sbuf b = {0}, scope = {0};
    char *credential, num[32];

    sb_add(&scope, cred->access_key);
    sb_add(&scope, "/");
    add_scope(&scope, cred, amz_date);
    if (scope.failed) {
        free(scope.s);
        return NULL;
    }
    credential = sigv4_uri_encode(scope.s, false);
    free(scope.s);
    if (credential == NULL)
        return NULL;
    if (extra_query != NULL && *extra_query != '\0') {
        sb_add(&b, extra_query);
        sb_add(&b, "&");
    }
    snprintf(num, sizeof(num), "%ld", expires);
    sb_add(&b, "X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=");
    sb_add(&b, credential);
    sb_add(&b, "&X-Amz-Date=");
    sb_add(&b, amz_date);
    sb_add(&b, "&X-Amz-Expires=");
    sb_add(&b, num);
    sb_add(&b, "&X-Amz-SignedHeaders=host");
    free(credential);
    return sb_finish(&b);
}

char *sigv4_presign_query(const struct sigv4_credentials *cred, const char *method,
                          const char *host, const char *path, const char *extra_query,
                          const char *amz_date, long expires)
{
    struct sigv4_header h = {"host", host};
    struct sigv4_request req = {method, path, NULL, &h, 1, SIGV4_UNSIGNED, amz_date};
    char sig[SIGV4_HEX_LEN + 1], *params, *sorted = NULL;
    struct sbuf b = {0};

    params = presign_params(cred, extra_query, amz_date, expires);
    if (params == NULL)
        return NULL;
    req.query = params;
    if (!sign_request(cred, &req, sig))
        goto done;
    add_canonical_query(&b, params);
    sb_add(&b, "&X-Amz-Signature=");
    sb_add(&b, sig);
    sorted = sb_finish(&b);
done:
    free(params);
    return sorted;
}
