/*
 * addrguard.c - decides whether an address is public enough to connect to.
 *
 * Owns the lists of IPv4 and IPv6 prefixes that a dynamic namespace may not
 * reach (see addrguard.h). Both families are matched byte by byte against
 * one kind of prefix table, so the lists read like the RFCs that define them.
 */
#include "core/addrguard.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct prefix {
    uint8_t bytes[16];
    unsigned bits;
};

static const struct prefix v4_refused[] = {
    {{0}, 8},             /* "this network" */
    {{10}, 8},            /* private */
    {{100, 64}, 10},      /* carrier-grade NAT */
    {{127}, 8},           /* loopback */
    {{169, 254}, 16},     /* link-local, home of cloud metadata services */
    {{172, 16}, 12},      /* private */
    {{192, 0, 0}, 24},    /* IETF protocol assignments */
    {{192, 0, 2}, 24},    /* documentation */
    {{192, 88, 99}, 24},  /* 6to4 relay anycast */
    {{192, 168}, 16},     /* private */
    {{198, 18}, 15},      /* benchmarking */
    {{198, 51, 100}, 24}, /* documentation */
    {{203, 0, 113}, 24},  /* documentation */
    {{224}, 4},           /* multicast */
    {{240}, 4},           /* reserved, and the broadcast address */
};

static const struct prefix v6_refused[] = {
    {{0xfc}, 7},                                /* unique local */
    {{0xfe, 0x80}, 10},                         /* link-local */
    {{0xfe, 0xc0}, 10},                         /* site-local */
    {{0xff}, 8},                                /* multicast */
    {{0x20, 0x01, 0x0d, 0xb8}, 32},             /* documentation */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48}, /* local-use NAT64 */
    {{0x01}, 64},                               /* discard-only */
};

/*
 * Prefixes whose last 32 bits are an IPv4 address the packets end up at.
 * The IPv4-compatible ::/96 also covers :: and ::1, which are refused
 * because their IPv4 parts lie in 0/8.
 */
static const struct prefix v6_embedding_v4[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96}, /* IPv4-mapped */
    {{0}, 96},                                        /* IPv4-compatible */
    {{0x00, 0x64, 0xff, 0x9b}, 96},                   /* well-known NAT64 */
};

static bool prefix_matches(const uint8_t *addr, const struct prefix *p)
{
    unsigned whole = p->bits / 8;
    unsigned rest = p->bits % 8;

    for (unsigned i = 0; i < whole; i++) {
        if (addr[i] != p->bytes[i])
            return false;
    }
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (addr[whole] & mask) == (p->bytes[whole] & mask);
}

static bool in_any(const uint8_t *addr, const struct prefix *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (prefix_matches(addr, &list[i]))
            return true;
    }
    return false;
}

#define IN_ANY(addr, list) in_any(addr, list, sizeof(list) / sizeof(list[0]))

static bool v4_is_public(const uint8_t *addr)
{
    return !IN_ANY(addr, v4_refused);
}

static bool v6_is_public(const uint8_t *addr)
{
    if (IN_ANY(addr, v6_embedding_v4))
        return v4_is_public(addr + 12);
    return !IN_ANY(addr, v6_refused);
}

bool oci_addr_is_public(const struct sockaddr *sa, socklen_t len)
{
    if (sa == NULL || len < offsetof(struct sockaddr, sa_family) + sizeof(sa->sa_family))
        return false;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return v4_is_public((const uint8_t *)&sin->sin_addr);
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        return v6_is_public(sin6->sin6_addr.s6_addr);
    }
    return false;
}
