/*
 * config.h - the upstream configuration: the reference's YAML list.
 *
 *   - namespace: example.com          # required
 *     host: registry.example.com      # required
 *     tls: true
 *     accept_invalid_certs: false
 *     ca_file: /etc/ssl/example.pem   # PEM bundle trusted for this upstream
 *     user_agent: "containerd/1.6.8"
 *     username: example
 *     password: hunter2
 *     token_realm_hosts: [auth.example.com]  # may get the credentials too
 *     manifest_invalidation_time: 0s  # durations: N{s,m,h,d,w}
 *     blob_invalidation_time: 30d
 *
 *   - namespace: registry.example     # hosted: pushed to, never fetched
 *     hosted: true                    # no 'host' then
 *     delete: false                   # DELETE allowed (default false)
 *     anonymous_push: false           # writes without an authenticated user
 *     push_users: [alice, bob]        # only these users write (default: any)
 *
 * Parsed with libyaml. A namespace that is not listed gets the defaults of
 * oci_upstream_default(): HTTPS to the host of that name, docker.io to
 * registry-1.docker.io.
 *
 * Every string is checked at load: no control characters (they would
 * become headers of their own in an upstream request); a username and a
 * password are both given or both empty (empty is anonymous, what Helm
 * renders for an unset value). An upstream for registry-1.docker.io without
 * token_realm_hosts gets Docker Hub's realm host, auth.docker.io.
 */
#ifndef OCI_CONFIG_H
#define OCI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define OCI_DEFAULT_MANIFEST_INVALIDATION (60L * 60)           /* 1 hour */
#define OCI_DEFAULT_BLOB_INVALIDATION     (30L * 24 * 60 * 60) /* 30 days */

struct oci_upstream {
    char *namespace_; /* what clients name: "docker.io", "ghcr.io", "example.com" */
    char *host;       /* host[:port] connected to */
    bool tls;         /* https (default) or http */
    bool accept_invalid_certs;
    char *ca_file;    /* NULL: the system trust store */
    char *user_agent; /* NULL: "oci-registry/VERSION" */
    char *username;   /* NULL when anonymous, and then so is password */
    char *password;
    /* Hosts (names, any port) besides host itself whose token realm may get
     * the credentials; NULL-terminated, NULL when none. */
    char **token_realm_hosts;
    long manifest_invalidation_time; /* seconds */
    long blob_invalidation_time;     /* seconds */
    /* Listed in the file with its host: trusted to reach any address. False
     * for a dynamic namespace and for one named only in UPSTREAM_CREDENTIALS:
     * those stay behind the address guard (core/upstream/addrguard.h). */
    bool configured;
    bool hosted;         /* pushed to and served from storage; host is NULL */
    bool delete_;        /* hosted: DELETE of manifests, tags and blobs allowed */
    bool anonymous_push; /* hosted: writes need no authenticated user */
    /* hosted: the users (as the front server checked them) who may write;
     * NULL-terminated, NULL when any checked user may. */
    char **push_users;
};

/* upstreams in file order; the rest is a hash index by namespace. */
struct oci_config {
    struct oci_upstream *upstreams;
    size_t count;
    size_t capacity;
    size_t *slots; /* 1 + index into upstreams; 0: empty */
    size_t slot_count;
};

/*
 * Loads the YAML file at path. On failure returns false and writes one line
 * into err, naming the file and, for YAML and schema errors, the line:
 *   "x.yaml:4: unknown key 'hots'". The config is empty (not NULL) when the
 * file is an empty list.
 */
bool oci_config_load(const char *path, struct oci_config *out, char *err, size_t errlen);

/* Same, from a string already in memory; name is used in messages. */
bool oci_config_parse(const char *yaml, size_t len, const char *name, struct oci_config *out,
                      char *err, size_t errlen);

/*
 * Applies UPSTREAM_CREDENTIALS: a JSON object {"namespace": {"username": ...,
 * "password": ...}} parsed with cJSON. Its entries win over the file's (both
 * empty: anonymous); a namespace not in the file is added with the defaults
 * and these credentials, not configured (guarded). Returns false with a
 * one-line message starting "UPSTREAM_CREDENTIALS: " (never containing a
 * secret) when the JSON is malformed or an entry invalid.
 */
bool oci_config_apply_credentials(struct oci_config *cfg, const char *json, char *err,
                                  size_t errlen);

/*
 * Checks what the config names on this machine: every ca_file can be read.
 * False with "namespace 'x': ca_file '/path': No such file or directory".
 */
bool oci_config_check_files(const struct oci_config *cfg, char *err, size_t errlen);

void oci_config_free(struct oci_config *cfg);

/* The upstream of a namespace (case-insensitive, in constant time), or NULL. */
const struct oci_upstream *oci_config_find(const struct oci_config *cfg, const char *namespace_);

/*
 * Fills up with the defaults for a namespace that is not configured: host =
 * namespace ("registry-1.docker.io" for docker.io, with auth.docker.io as
 * token realm host), tls on, default times.
 * The strings point into static storage or into namespace_; nothing to free.
 */
void oci_upstream_default(const char *namespace_, struct oci_upstream *up);

/*
 * The hosts besides up->host whose token realm may get up's credentials:
 * token_realm_hosts as listed, else for registry-1.docker.io Docker Hub's
 * auth.docker.io; NULL-terminated, or NULL when none. Static or up's.
 */
const char *const *oci_upstream_realm_hosts(const struct oci_upstream *up);

/*
 * Parses a duration such as "0s", "90s", "30m", "12h", "14d", "2w" (a bare
 * number is seconds) into seconds. Returns false on anything else, negative
 * values or overflow.
 */
bool oci_duration_parse(const char *s, long *seconds);

/* True when user (checked by the front server) may write to the hosted namespace up. */
bool oci_upstream_may_push(const struct oci_upstream *up, const char *user);

#endif
