/*
 * reference.c - hand-written scanners for repository names, tags,
 * registry hosts and media types.
 *
 * Every check takes (pointer, length) and reads no byte past length: the
 * input is often a slice of a request path, not a C string. No regex
 * library, so there is no pattern to compile and no backtracking to bound.
 */
#include "core/request/reference.h"

#include <arpa/inet.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True when every sep-separated part of s[0..len), empty ones included, passes valid. */
static bool each_part_valid(const char *s, size_t len, char sep,
                            bool (*valid)(const char *part, size_t part_len))
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == sep) {
            if (!valid(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* Length of the name separator at s: ".", "_", "__" or "-"+; 0 for anything else. */
static size_t separator_len(const char *s, size_t len)
{
    size_t n = 0;

    if (s[0] == '.')
        return 1;
    if (s[0] == '_')
        return len >= 2 && s[1] == '_' ? 2 : 1;
    while (n < len && s[n] == '-')
        n++;
    return n;
}

/*
 * One component of a name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, read as
 * alphanumeric runs joined by single separators. An empty run means an empty
 * component, a separator at either end, two separators in a row ("a..b",
 * "a___b") or a byte outside the grammar.
 */
static bool name_component_valid(const char *s, size_t len)
{
    size_t i = 0;

    for (;;) {
        size_t run_start = i;

        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == run_start)
            return false;
        if (i == len)
            return true;
        i += separator_len(s + i, len - i);
    }
}

bool oci_name_valid(const char *name, size_t len)
{
    return len <= OCI_NAME_MAX && each_part_valid(name, len, '/', name_component_valid);
}

bool oci_tag_valid(const char *tag, size_t len)
{
    if (len == 0 || len > OCI_TAG_MAX || !(is_alnum(tag[0]) || tag[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!is_alnum(tag[i]) && tag[i] != '.' && tag[i] != '_' && tag[i] != '-')
            return false;
    }
    return true;
}

/* A DNS label: 1 to 63 of [A-Za-z0-9-], not starting or ending with '-'. */
static bool label_valid(const char *s, size_t len)
{
    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    }
    return true;
}

/*
 * A port 1-65535 in plain decimal. A leading zero is refused so that each
 * port has one spelling: "host:05000" and "host:5000" would otherwise be two
 * namespaces, with two caches, for one registry.
 */
static bool port_valid(const char *s, size_t len)
{
    unsigned long port = 0;

    if (len == 0 || len > 5 || s[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        port = port * 10 + (unsigned long)(s[i] - '0');
    }
    return port <= 65535;
}

/*
 * An IPv4 literal needs no case of its own: its labels are all-digit DNS
 * labels, or a bracketed IPv6 address. '@', '/' and a second ':' all fail
 * the label or port scan, which keeps userinfo and paths out.
 */
size_t oci_namespace_host_len(const char *ns, size_t len)
{
    const char *end;

    if (len > 0 && ns[0] == '[') {
        end = memchr(ns, ']', len);
        return end ? (size_t)(end - ns) + 1 : len;
    }
    end = memchr(ns, ':', len);
    return end ? (size_t)(end - ns) : len;
}

/* "[v6 address]", as in URLs; the address itself is checked by inet_pton. */
static bool bracketed_ipv6_valid(const char *host, size_t len)
{
    char addr[INET6_ADDRSTRLEN];
    struct in6_addr parsed;

    if (len < 3 || len - 2 >= sizeof(addr) || host[len - 1] != ']')
        return false;
    memcpy(addr, host + 1, len - 2);
    addr[len - 2] = '\0';
    return inet_pton(AF_INET6, addr, &parsed) == 1;
}

bool oci_namespace_valid(const char *ns, size_t len)
{
    size_t host_len = oci_namespace_host_len(ns, len);

    if (len == 0 || len > OCI_NAMESPACE_MAX)
        return false;
    if (host_len < len &&
        (ns[host_len] != ':' || !port_valid(ns + host_len + 1, len - host_len - 1)))
        return false;
    if (ns[0] == '[')
        return bracketed_ipv6_valid(ns, host_len);
    return each_part_valid(ns, host_len, '.', label_valid);
}

bool oci_looks_like_registry(const char *component, size_t len)
{
    return memchr(component, '.', len) != NULL || memchr(component, ':', len) != NULL ||
           (len == 9 && memcmp(component, "localhost", 9) == 0);
}

/* A number as URL parsers read an IPv4 part: decimal, or hex after "0x". */
static bool ipv4_number_valid(const char *s, size_t len)
{
    size_t i = 0;
    bool hex = len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

    if (hex)
        i = 2;
    else if (len == 0)
        return false;
    for (; i < len; i++) {
        if (hex ? !is_hex(s[i]) : !is_digit(s[i]))
            return false;
    }
    return true;
}

/*
 * URL parsers (curl's, browsers') take a host whose last label is a number
 * as IPv4 in any of its spellings, not only the dotted quad: "127.1",
 * "0x7f.0.0.1" and "2130706433" all reach 127.0.0.1. No DNS name ends in an
 * all-numeric label, so testing that label catches every spelling.
 */
static bool ends_in_number(const char *host, size_t len)
{
    size_t start;

    if (len > 0 && host[len - 1] == '.') /* the fully qualified "10.0.0.1." */
        len--;
    start = len;
    while (start > 0 && host[start - 1] != '.')
        start--;
    return ipv4_number_valid(host + start, len - start);
}

bool oci_host_is_ip_literal(const char *host, size_t len)
{
    const char *colon = memchr(host, ':', len);

    if (colon == NULL)
        return ends_in_number(host, len);
    if (host[0] == '[' && host[len - 1] == ']')
        return true;
    /* Two colons can only be IPv6; one is a host with a port. */
    return memchr(colon + 1, ':', len - (size_t)(colon + 1 - host)) != NULL;
}

/* RFC 6838's restricted-name: a letter or digit, then up to 126 of them or "!#$&-^_.+". */
static bool restricted_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > 127 || !is_alnum(s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!is_alnum(s[i]) && memchr("!#$&-^_.+", s[i], 9) == NULL)
            return false;
    }
    return true;
}

bool oci_media_type_valid(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    size_t type_len = slash ? (size_t)(slash - s) : len;

    return slash != NULL && restricted_name_valid(s, type_len) &&
           restricted_name_valid(slash + 1, len - type_len - 1);
}
