/*
 * auth.c - parsing of authentication challenges and token answers, the rule
 * of which realms get the credentials, and the process-wide token cache.
 *
 * The cache is a small array under one mutex. It is only consulted on the
 * way to the upstream (a cache miss of ours), never on a hit, so the lock
 * is not on the hot path.
 */
#include "autoconfig.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/upstream/auth.h"
#include "core/request/reference.h"

#define TOKEN_CACHE_SIZE       256
#define TOKEN_DEFAULT_LIFETIME 60
/* A token this close to expiry is not handed out: the request may outlive it. */
#define TOKEN_EXPIRY_MARGIN 10

struct cached_token {
    char *upstream;
    char *scope;
    char *token;
    time_t expires;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached_token cache[TOKEN_CACHE_SIZE];

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    return p;
}

/* Reads one parameter value (quoted or bare) into out; returns the rest. */
static const char *read_value(const char *p, char *out, size_t outlen)
{
    size_t n = 0;
    bool quoted = *p == '"';

    if (quoted)
        p++;
    while (*p != '\0' && (quoted ? *p != '"' : (*p != ',' && *p != ' '))) {
        if (quoted && *p == '\\' && p[1] != '\0')
            p++;
        if (n + 1 < outlen)
            out[n++] = *p;
        p++;
    }
    out[n] = '\0';
    return quoted && *p == '"' ? p + 1 : p;
}

void oci_auth_parse_challenge(const char *value, struct oci_auth_challenge *out)
{
    const char *p = skip_space(value);
    size_t scheme_len = strcspn(p, " ");

    memset(out, 0, sizeof(*out));
    if (scheme_len == 6 && strncasecmp(p, "bearer", 6) == 0)
        out->scheme = OCI_AUTH_BEARER;
    else if (scheme_len == 5 && strncasecmp(p, "basic", 5) == 0)
        out->scheme = OCI_AUTH_BASIC;
    else
        return;
    p = skip_space(p + scheme_len);
    while (*p != '\0') {
        size_t key_len = strcspn(p, "= ,");
        char scratch[OCI_AUTH_FIELD_MAX];
        char *dest = scratch;

        if (p[key_len] != '=') {
            p = skip_space(p + key_len + (p[key_len] != '\0'));
            continue;
        }
        if (key_len == 5 && strncasecmp(p, "realm", 5) == 0)
            dest = out->realm;
        else if (key_len == 7 && strncasecmp(p, "service", 7) == 0)
            dest = out->service;
        else if (key_len == 5 && strncasecmp(p, "scope", 5) == 0)
            dest = out->scope;
        p = skip_space(read_value(p + key_len + 1, dest, OCI_AUTH_FIELD_MAX));
    }
}

/*
 * The scheme and host of an absolute URL, and its port (the scheme's own when
 * none is given) unless port is NULL, for curl_free(); false when it has none.
 */
static bool url_origin(const char *url, char **scheme, char **host, char **port)
{
    CURLU *u = curl_url();
    bool ok =
        u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
        (port == NULL || curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK);

    curl_url_cleanup(u);
    return ok;
}

/* host (a URL's, IPv6 in brackets) is the host of host_port ("name[:port]"). */
static bool same_host(const char *host, const char *host_port)
{
    size_t len = oci_namespace_host_len(host_port, strlen(host_port));

    return strlen(host) == len && strncasecmp(host, host_port, len) == 0;
}

bool oci_auth_challenge_is_upstreams(const struct oci_upstream *up, const char *url)
{
    char *scheme = NULL, *host = NULL;
    bool ok = url_origin(url, &scheme, &host, NULL) && same_host(host, up->host);

    curl_free(scheme);
    curl_free(host);
    return ok;
}

/* The port is always given (the scheme's own when the URL has none). */
char *oci_auth_origin(const char *url)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *origin = NULL;

    if (url_origin(url, &scheme, &host, &port) &&
        asprintf(&origin, "%s://%s:%s", scheme, host, port) < 0)
        origin = NULL;
    for (char *c = origin; c != NULL && *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return origin;
}

bool oci_auth_same_origin(const char *a, const char *b)
{
    char *oa = oci_auth_origin(a), *ob = oci_auth_origin(b);
    bool same = oa != NULL && ob != NULL && strcmp(oa, ob) == 0;

    free(oa);
    free(ob);
    return same;
}

/* The realm's host is up's own or one the operator listed for its realm. */
static bool realm_host_trusted(const struct oci_upstream *up, const char *host)
{
    const char *const *listed = oci_upstream_realm_hosts(up);

    if (same_host(host, up->host))
        return true;
    for (; listed != NULL && *listed != NULL; listed++) {
        if (same_host(host, *listed))
            return true;
    }
    return false;
}

enum oci_realm_access oci_auth_realm_access(const struct oci_upstream *up, const char *realm)
{
    char *scheme = NULL, *host = NULL;
    enum oci_realm_access access = OCI_REALM_REFUSED;

    if (url_origin(realm, &scheme, &host, NULL) &&
        (strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0)) {
        bool scheme_ok = strcmp(scheme, "https") == 0 || !up->tls;

        access = up->username != NULL && scheme_ok && realm_host_trusted(up, host)
                     ? OCI_REALM_CREDENTIALS
                     : OCI_REALM_ANONYMOUS;
    }
    curl_free(scheme);
    curl_free(host);
    return access;
}

/* Visible ASCII only: what a header value may hold without being read as more. */
static bool token_printable(const char *token)
{
    for (const unsigned char *c = (const unsigned char *)token; *c != '\0'; c++) {
        if (*c < 0x21 || *c > 0x7e)
            return false;
    }
    return true;
}

bool oci_auth_parse_token(const char *json, size_t len, char **token, long *lifetime)
{
    cJSON *doc = cJSON_ParseWithLength(json, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "token");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(doc, "expires_in");
    bool ok = false;

    if (!cJSON_IsString(t) || t->valuestring[0] == '\0')
        t = cJSON_GetObjectItemCaseSensitive(doc, "access_token");
    if (cJSON_IsString(t) && t->valuestring[0] != '\0' && token_printable(t->valuestring)) {
        *token = strdup(t->valuestring);
        *lifetime = TOKEN_DEFAULT_LIFETIME;
        if (cJSON_IsNumber(expires) && expires->valuedouble > TOKEN_DEFAULT_LIFETIME &&
            expires->valuedouble < 366.0 * 24 * 3600)
            *lifetime = (long)expires->valuedouble;
        ok = *token != NULL;
    }
    cJSON_Delete(doc);
    return ok;
}

static void entry_free(struct cached_token *e)
{
    free(e->upstream);
    free(e->scope);
    free(e->token);
    memset(e, 0, sizeof(*e));
}

static struct cached_token *find(const char *upstream, const char *scope)
{
    size_t i;

    for (i = 0; i < TOKEN_CACHE_SIZE; i++)
        if (cache[i].token != NULL && strcmp(cache[i].upstream, upstream) == 0 &&
            strcmp(cache[i].scope, scope) == 0)
            return &cache[i];
    return NULL;
}

bool oci_auth_token_get(const char *upstream, const char *scope, char *buf, size_t len)
{
    struct cached_token *e;
    bool found = false;

    pthread_mutex_lock(&cache_lock);
    e = find(upstream, scope);
    if (e != NULL && e->expires - TOKEN_EXPIRY_MARGIN > time(NULL) && strlen(e->token) < len) {
        strcpy(buf, e->token);
        found = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

/* The slot for a new entry: a free or expired one, else the one expiring first. */
static struct cached_token *free_slot(time_t now)
{
    struct cached_token *victim = &cache[0];
    size_t i;

    for (i = 0; i < TOKEN_CACHE_SIZE; i++) {
        if (cache[i].token == NULL || cache[i].expires <= now)
            return &cache[i];
        if (cache[i].expires < victim->expires)
            victim = &cache[i];
    }
    return victim;
}

void oci_auth_token_put(const char *upstream, const char *scope, const char *token, long lifetime)
{
    time_t now = time(NULL);
    struct cached_token *e;

    pthread_mutex_lock(&cache_lock);
    e = find(upstream, scope);
    if (e == NULL)
        e = free_slot(now);
    entry_free(e);
    e->upstream = strdup(upstream);
    e->scope = strdup(scope);
    e->token = strdup(token);
    e->expires = now + lifetime;
    if (e->upstream == NULL || e->scope == NULL || e->token == NULL)
        entry_free(e); /* out of memory: simply not cached */
    pthread_mutex_unlock(&cache_lock);
}

void oci_auth_token_clear(void)
{
    size_t i;

    pthread_mutex_lock(&cache_lock);
    for (i = 0; i < TOKEN_CACHE_SIZE; i++)
        entry_free(&cache[i]);
    pthread_mutex_unlock(&cache_lock);
}
