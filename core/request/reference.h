/*
 * reference.h - the grammar of repository names, tags, registry hosts and
 * media types.
 *
 * These checks run before a name, tag or namespace reaches storage or the
 * network, and before an upstream's media type reaches a record or a client.
 * The grammar is the OCI distribution spec's:
 *   name  [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   tag   [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 * and RFC 6838's for media types (which OCI's descriptors follow).
 * A valid name or tag can never contain "..", a leading "/" or "%", so it is
 * safe to use as a path component once it passes.
 */
#ifndef OCI_REFERENCE_H
#define OCI_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#define OCI_NAME_MAX       255 /* bytes, without the terminating NUL */
#define OCI_TAG_MAX        128
#define OCI_NAMESPACE_MAX  255
#define OCI_MEDIA_TYPE_MAX 255 /* RFC 6838: 127 + "/" + 127 */

/* True when name matches the spec's repository name grammar and is at most OCI_NAME_MAX long. */
bool oci_name_valid(const char *name, size_t len);

/* True when tag matches the tag grammar (1 to 128 characters). */
bool oci_tag_valid(const char *tag, size_t len);

/*
 * True when ns is a registry host as used for namespaces: a DNS name
 * (labels of [A-Za-z0-9-], not starting or ending with '-', separated by
 * '.'), "localhost", an IPv4 literal or a bracketed IPv6 literal
 * ("[::1]"), optionally followed by ":PORT" (1-65535). No userinfo, path or
 * query.
 */
bool oci_namespace_valid(const char *ns, size_t len);

/* The length of a namespace's host part: without ":PORT", with IPv6 brackets. */
size_t oci_namespace_host_len(const char *ns, size_t len);

/*
 * True when a first path component looks like a registry host rather than
 * part of a repository name: it contains '.' or ':', or is "localhost".
 */
bool oci_looks_like_registry(const char *component, size_t len);

/* True when host (without port) is an IPv4 or IPv6 literal. */
bool oci_host_is_ip_literal(const char *host, size_t len);

/*
 * True when s[0..len) is a media type without parameters as RFC 6838
 * (section 4.2) names them: type "/" subtype, each 1 to 127 of
 * [A-Za-z0-9!#$&^_.+-] starting with a letter or digit. So at most
 * OCI_MEDIA_TYPE_MAX bytes, with no space, control byte or ';': fit for a
 * header value and a one-line cache record.
 */
bool oci_media_type_valid(const char *s, size_t len);

#endif
