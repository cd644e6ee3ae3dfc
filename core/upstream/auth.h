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
 * The realm request itself is made by core/upstream/upstream.c.
 *
 * Where the credentials may go: a realm is named by whoever answers 401, and
 * that may be a host a redirect led to, or a realm on someone else's host.
 * Only a challenge from the upstream's own host is followed at all, and the
 * credentials go only to a realm on that host or on one of the entry's
 * token_realm_hosts (Docker Hub: auth.docker.io), over https unless the
 * entry has tls: false. Any other realm gets an anonymous request, which
 * holds no secret (and, for dynamic namespaces, passes the address guard).
 */
#ifndef OCI_AUTH_H
#define OCI_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/upstream/config.h"

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
 * True when url, where a request ended after its redirects, is on the host
 * of up (host name, any port): only then is a 401 there up's challenge.
 */
bool oci_auth_challenge_is_upstreams(const struct oci_upstream *up, const char *url);

/*
 * True when the URLs a and b share scheme, host (any case) and port (the
 * scheme's own when none is given). A registry that an upstream redirects
 * to may challenge with a realm of its own origin (ghcr.io behind lscr.io):
 * only such a realm is asked, and then without credentials.
 */
bool oci_auth_same_origin(const char *a, const char *b);

/* A URL's origin, "scheme://host:port" in lower case (malloc'd), or NULL. */
char *oci_auth_origin(const char *url);

/* What may be sent to a token realm. */
enum oci_realm_access {
    OCI_REALM_REFUSED,     /* nothing: not an http or https URL */
    OCI_REALM_ANONYMOUS,   /* a request without credentials */
    OCI_REALM_CREDENTIALS, /* a request with up's credentials as Basic */
};

/* The rule of this header's top for up (with or without credentials) and realm. */
enum oci_realm_access oci_auth_realm_access(const struct oci_upstream *up, const char *realm);

/*
 * Reads a token answer: {"token": ..., "access_token": ..., "expires_in": N,
 * "issued_at": ...}. Writes the token (the "token" field, else
 * "access_token") and its lifetime in seconds (expires_in, 60 when absent
 * or smaller). False when the JSON has no usable token, or when the token
 * holds anything but visible ASCII: it goes into a header, where a CR or LF
 * would add headers of the token server's choosing.
 */
bool oci_auth_parse_token(const char *json, size_t len, char **token, long *lifetime);

/*
 * The cached token for an upstream and scope, copied into buf; false when
 * there is none that is valid for at least a few more seconds.
 */
bool oci_auth_token_get(const char *upstream, const char *scope, char *buf, size_t len);

/* Caches a token for lifetime seconds (bounded cache; the oldest go first). */
void oci_auth_token_put(const char *upstream, const char *scope, const char *token, long lifetime);

/* Forgets every cached token (tests, shutdown). */
void oci_auth_token_clear(void);

#endif
