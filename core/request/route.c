/*
 * route.c - the layout of the pull API's paths and the resolution of the
 * upstream namespace a request is for.
 *
 * The grammar of names, tags, hosts and digests lives in reference.c and
 * digest.c; this file decides which part of the path is which, and checks
 * each part with them before anything is copied into the route.
 */
#include "core/request/route.h"

#include <ctype.h>
#include <string.h>

/* A digest or a tag that passed its check always fits the reference array. */
_Static_assert(sizeof(((struct oci_route *)0)->reference) >= OCI_DIGEST_STRING_MAX &&
                   sizeof(((struct oci_route *)0)->reference) > OCI_TAG_MAX,
               "route reference array too small");

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the %XX escapes of s[0..len) into dst, NUL-terminated in cap bytes.
 * False on a bad escape or when the result does not fit.
 */
static bool percent_decode(const char *s, size_t len, char *dst, size_t cap, size_t *dst_len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '%') {
            int hi = len - i > 2 ? hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;

            if (lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= cap)
            return false;
        dst[n++] = c;
    }
    dst[n] = '\0';
    *dst_len = n;
    return true;
}

/*
 * Checks the namespace ns[0..len) and makes it the route's, in lower case:
 * host names are case-insensitive, and "Docker.io" must share docker.io's
 * cache and rules.
 */
static enum oci_error set_namespace(struct oci_route *out, const char *ns, size_t len)
{
    size_t i;

    if (!oci_namespace_valid(ns, len) || len >= sizeof(out->namespace_))
        return OCI_E_NAME_INVALID;
    for (i = 0; i < len; i++)
        out->namespace_[i] = (char)tolower((unsigned char)ns[i]);
    out->namespace_[len] = '\0';
    return OCI_OK;
}

/*
 * Takes the namespace from the query's "ns" parameter, if any; *found says
 * whether there was one. A second "ns" is refused rather than one picked:
 * which registry is asked must not depend on who reads the query.
 */
static enum oci_error query_namespace(struct oci_route *out, const char *query, bool *found)
{
    const char *param = query;

    *found = false;
    while (param != NULL && *param != '\0') {
        const char *amp = strchr(param, '&');
        size_t len = amp ? (size_t)(amp - param) : strlen(param);

        if (len >= 3 && memcmp(param, "ns=", 3) == 0) {
            char ns[OCI_NAMESPACE_MAX + 1];
            size_t ns_len;

            if (*found || !percent_decode(param + 3, len - 3, ns, sizeof(ns), &ns_len) ||
                set_namespace(out, ns, ns_len) != OCI_OK)
                return OCI_E_NAME_INVALID;
            *found = true;
            out->ns_in_query = true;
        }
        param = amp ? amp + 1 : NULL;
    }
    return OCI_OK;
}

/*
 * Resolves the namespace of name[0..len), in the order route.h gives, and
 * leaves the part of the name that is left for the repository in *rest.
 */
static enum oci_error resolve_namespace(struct oci_route *out, const char *name, size_t len,
                                        const char *query, const char *default_ns,
                                        const char **rest)
{
    const char *slash = memchr(name, '/', len);
    bool found;
    enum oci_error err = query_namespace(out, query, &found);

    *rest = name;
    if (err != OCI_OK)
        return err;
    if (found) {
        size_t ns_len = strlen(out->namespace_);

        /* containerd's override_path keeps the registry in the path. */
        if (len > ns_len && name[ns_len] == '/' && memcmp(name, out->namespace_, ns_len) == 0)
            *rest = name + ns_len + 1;
        return OCI_OK;
    }
    if (slash != NULL && oci_looks_like_registry(name, (size_t)(slash - name))) {
        *rest = slash + 1;
        return set_namespace(out, name, (size_t)(slash - name));
    }
    return set_namespace(out, default_ns, strlen(default_ns));
}

/* Makes name[0..len) the route's repository name, with "library/" on Docker Hub. */
static enum oci_error set_name(struct oci_route *out, const char *name, size_t len)
{
    bool library =
        strcmp(out->namespace_, OCI_DOCKER_HUB_NAMESPACE) == 0 && memchr(name, '/', len) == NULL;
    size_t prefix_len = library ? strlen("library/") : 0;

    /* The final name is what the grammar's length limit is about. */
    if (prefix_len + len > OCI_NAME_MAX)
        return OCI_E_NAME_INVALID;
    memcpy(out->name, "library/", prefix_len);
    memcpy(out->name + prefix_len, name, len);
    out->name[prefix_len + len] = '\0';
    return oci_name_valid(out->name, prefix_len + len) ? OCI_OK : OCI_E_NAME_INVALID;
}

/*
 * Checks the reference: a digest for blobs, a tag or digest for manifests.
 * A digest of an algorithm we do not hash is a bad digest to the client:
 * UNSUPPORTED would be a 405, which says the method is wrong.
 */
static enum oci_error set_reference(struct oci_route *out, const char *ref, size_t len)
{
    if (out->kind == OCI_ROUTE_UPLOAD) {
        if (!oci_upload_id_valid(ref, len))
            return OCI_E_BLOB_UPLOAD_UNKNOWN;
    } else if (out->kind == OCI_ROUTE_BLOB || out->kind == OCI_ROUTE_REFERRERS ||
               memchr(ref, ':', len) != NULL) {
        enum oci_error err = oci_digest_parse(ref, len, &out->digest);

        if (err == OCI_E_UNSUPPORTED)
            out->why = "unsupported digest algorithm: only sha256 and sha512 are";
        else if (err != OCI_OK)
            out->why = out->kind != OCI_ROUTE_MANIFEST
                           ? "not a digest: sha256 takes 64, sha512 128 lowercase hex digits"
                           : "neither a tag nor a digest";
        if (err != OCI_OK)
            return OCI_E_DIGEST_INVALID;
        out->by_digest = true;
    } else if (!oci_tag_valid(ref, len)) {
        out->why = "neither a tag nor a digest";
        return OCI_E_TAG_INVALID;
    }
    memcpy(out->reference, ref, len);
    out->reference[len] = '\0';
    return OCI_OK;
}

/*
 * The API base: "/v2/", and "/v2/<registry>/" too, which containerd pings
 * when override_path makes a URL such as "https://mirror/v2/docker.io" the
 * API root. rest is the path after "/v2/"; the host found, if any, is
 * rest[0..*host_len).
 */
static bool is_base(const char *rest, size_t *host_len)
{
    size_t len = strlen(rest);

    if (len > 1 && rest[len - 1] == '/')
        len--;
    *host_len = len;
    return len == 0 || (memchr(rest, '/', len) == NULL && oci_looks_like_registry(rest, len));
}

static enum oci_error route_base(struct oci_route *out, const char *host, size_t host_len,
                                 const char *query, const char *default_ns)
{
    bool found;
    enum oci_error err = query_namespace(out, query, &found);

    out->kind = OCI_ROUTE_BASE;
    if (err != OCI_OK || found)
        return err;
    if (host_len > 0)
        return set_namespace(out, host, host_len);
    return set_namespace(out, default_ns, strlen(default_ns));
}

/* True when s[0..len) ends with suffix; *prefix_len is then the length before it. */
static bool ends_with(const char *s, size_t len, const char *suffix, size_t *prefix_len)
{
    size_t suffix_len = strlen(suffix);

    if (len < suffix_len || memcmp(s + len - suffix_len, suffix, suffix_len) != 0)
        return false;
    *prefix_len = len - suffix_len;
    return true;
}

bool oci_query_param(const char *query, const char *name, char *out, size_t cap, bool *found)
{
    size_t name_len = strlen(name), len;

    *found = false;
    for (const char *param = query; param != NULL && *param != '\0'; param += len + 1) {
        const char *amp = strchr(param, '&');

        len = amp ? (size_t)(amp - param) : strlen(param);
        if (len > name_len && param[name_len] == '=' && memcmp(param, name, name_len) == 0) {
            size_t out_len;

            if (*found ||
                !percent_decode(param + name_len + 1, len - name_len - 1, out, cap, &out_len))
                return false;
            for (size_t i = 0; i < out_len; i++) {
                if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                    return false;
            }
            *found = true;
        }
        if (amp == NULL)
            break;
    }
    return true;
}

bool oci_upload_id_valid(const char *id, size_t len)
{
    if (len != OCI_UPLOAD_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (hex_value(id[i]) < 0 || (id[i] >= 'A' && id[i] <= 'F'))
            return false;
    }
    return true;
}

/* The endpoints that end in a fixed word or another component, by what precedes it. */
static const struct {
    const char *suffix; /* of the path before the last component */
    enum oci_route_kind kind;
} endpoints[] = {
    {"/manifests", OCI_ROUTE_MANIFEST},   {"/blobs", OCI_ROUTE_BLOB},
    {"/blobs/uploads", OCI_ROUTE_UPLOAD}, {"/tags", OCI_ROUTE_TAGS},
    {"/referrers", OCI_ROUTE_REFERRERS},
};

/* The endpoint of rest[0..head_len) "/" last, with the length of the name before it. */
static bool endpoint_kind(const char *rest, size_t head_len, const char *last,
                          struct oci_route *out, size_t *name_len)
{
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        if (ends_with(rest, head_len, endpoints[i].suffix, name_len)) {
            out->kind = endpoints[i].kind;
            /* "tags/list" is the one fixed last component. */
            return out->kind != OCI_ROUTE_TAGS || strcmp(last, "list") == 0;
        }
    }
    return false;
}

/* The name, then the reference (manifests, blobs, uploads, referrers) or nothing. */
static enum oci_error route_name(struct oci_route *out, const char *rest, size_t name_len,
                                 const char *ref, const char *query, const char *default_ns)
{
    const char *name;
    enum oci_error err = resolve_namespace(out, rest, name_len, query, default_ns, &name);

    out->name_path_len = strlen("/v2/") + name_len;
    if (err == OCI_OK)
        err = set_name(out, name, name_len - (size_t)(name - rest));
    if (err == OCI_OK && ref != NULL)
        err = set_reference(out, ref, strlen(ref));
    return err;
}

enum oci_error oci_route_repository(const char *name, const char *query, const char *default_ns,
                                    struct oci_route *out)
{
    size_t len = strlen(name);
    const char *rest;
    enum oci_error err = resolve_namespace(out, name, len, query, default_ns, &rest);

    return err != OCI_OK ? err : set_name(out, rest, len - (size_t)(rest - name));
}

enum oci_error oci_route_parse(const char *path, const char *query, const char *default_ns,
                               struct oci_route *out)
{
    const char *rest, *slash;
    size_t host_len, head_len, name_len;

    memset(out, 0, sizeof(*out));
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
        out->kind = path[1] == 'h' ? OCI_ROUTE_HEALTHZ : OCI_ROUTE_READYZ;
        return OCI_OK;
    }
    if (strcmp(path, "/metrics") == 0) {
        out->kind = OCI_ROUTE_METRICS;
        return OCI_OK;
    }
    if (strcmp(path, "/v2") == 0)
        return route_base(out, NULL, 0, query, default_ns);
    if (strncmp(path, "/v2/", 4) != 0)
        return OCI_E_NOT_FOUND;
    rest = path + 4;
    if (is_base(rest, &host_len))
        return route_base(out, rest, host_len, query, default_ns);
    if (strcmp(rest, "_catalog") == 0) {
        enum oci_error err = route_base(out, NULL, 0, query, default_ns);
        out->kind = OCI_ROUTE_CATALOG;
        return err;
    }
    if (ends_with(rest, strlen(rest), "/blobs/uploads/", &name_len)) {
        out->kind = OCI_ROUTE_UPLOAD_START;
        return route_name(out, rest, name_len, NULL, query, default_ns);
    }

    /* The reference is the last component, so a name may hold a "manifests" component. */
    slash = strrchr(rest, '/');
    if (slash == NULL || slash[1] == '\0')
        return OCI_E_NOT_FOUND;
    head_len = (size_t)(slash - rest);
    if (!endpoint_kind(rest, head_len, slash + 1, out, &name_len))
        return OCI_E_NOT_FOUND;
    return route_name(out, rest, name_len, out->kind == OCI_ROUTE_TAGS ? NULL : slash + 1, query,
                      default_ns);
}

enum oci_error oci_route_read_error(const struct oci_route *route, enum oci_error err)
{
    if (route->kind == OCI_ROUTE_MANIFEST &&
        (err == OCI_E_TAG_INVALID || err == OCI_E_DIGEST_INVALID))
        return OCI_E_MANIFEST_UNKNOWN;
    return err;
}
