/*
 * auth.h - upstream authentication: challenges and the token cache.
 *
 * Registries answer an unauthenticated request with 401 and a challenge:
 *   WWW-Authenticate: Bearer realm="https://auth.example/token",
 *                     service="registry.example",scope="repository:x:pull"
 * The client then gets a token from the realm (anonymously, or with the
 * upstream's username and password as Basic) and retries with it. Tokens
 * are kept per upstream and scope until they expire, shared by all workers,
 * so a token is fetched once per scope and lifetime, not once per request.
 * The realm request itself is made by core/upstream.c.
 */
#ifndef OCI_AUTH_H
#define OCI_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define OCI_AUTH_FIELD_MAX 1024

enum oci_auth_scheme {
    OCI_AUTH_NONE,
    OCI_AUTH_BASIC,
    OCI_AUTH_BEARER,
};

struct oci_auth_challenge {
    enum oci_auth_scheme scheme;
    char realm[OCI_AUTH_FIELD_MAX];
    char service[OCI_AUTH_FIELD_MAX];
    char scope[OCI_AUTH_FIELD_MAX];
};

/*
 * Parses a WWW-Authenticate value. Unknown schemes give OCI_AUTH_NONE;
 * parameters may be quoted (with backslash escapes) or bare tokens, and a
 * quoted scope may hold commas.
 */
void oci_auth_parse_challenge(const char *value, struct oci_auth_challenge *out);

/*
 * Reads a token answer: {"token": ..., "access_token": ..., "expires_in": N,
 * "issued_at": ...}. Writes the token (the "token" field, else
 * "access_token") and its lifetime in seconds (expires_in, 60 when absent
 * or smaller). False when the JSON has no usable token.
 */
bool oci_auth_parse_token(const char *json, size_t len, char **token, long *lifetime);

/*
 * The cached token for an upstream and scope, copied into buf; false when
 * there is none that is valid for at least a few more seconds.
 */
bool oci_auth_token_get(const char *upstream, const char *scope, char *buf, size_t len);

/* Caches a token for lifetime seconds (bounded cache; the oldest go first). */
void oci_auth_token_put(const char *upstream, const char *scope, const char *token,
                        long lifetime);

/* Forgets every cached token (tests, shutdown). */
void oci_auth_token_clear(void);

#endif
