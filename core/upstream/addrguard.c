/*
 * addrguard.c - decides whether an address is public enough to connect to.
 *
 * Owns the lists of IPv4 and IPv6 prefixes that a dynamic namespace may not
 * reach (see addrguard.h). They are IANA's special-purpose address
 * registries for both families: every range there that is not globally
 * reachable is refused, and the ranges there that are (anycast services
 * inside refused blocks) are let through. IPv6 is judged against the
 * global unicast space 2000::/3, the only one allocated for the Internet;
 * forms that carry an IPv4 address the packets end up at are judged by
 * that address. Both families are matched byte by byte against one kind of
 * prefix table, so the lists read like the registries.
 */
#include "core/upstream/addrguard.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct prefix {
    uint8_t bytes[16];
    unsigned bits;
};

/* Globally reachable, inside a block below that is not. */
static const struct prefix v4_reachable[] = {
    {{192, 0, 0, 9}, 32},  /* Port Control Protocol anycast */
    {{192, 0, 0, 10}, 32}, /* TURN relay anycast */
};

static const struct prefix v4_refused[] = {
    {{0}, 8},             /* "this network" */
    {{10}, 8},            /* private */
    {{100, 64}, 10},      /* shared address space (carrier-grade NAT) */
    {{127}, 8},           /* loopback */
    {{169, 254}, 16},     /* link-local, home of cloud metadata services */
    {{172, 16}, 12},      /* private */
    {{192, 0, 0}, 24},    /* IETF protocol assignments (DS-Lite, NAT64 discovery...) */
    {{192, 0, 2}, 24},    /* documentation */
    {{192, 88, 99}, 24},  /* deprecated 6to4 relay anycast */
    {{192, 168}, 16},     /* private */
    {{198, 18}, 15},      /* benchmarking */
    {{198, 51, 100}, 24}, /* documentation */
    {{203, 0, 113}, 24},  /* documentation */
    {{224}, 4},           /* multicast: not one host */
    {{240}, 4},           /* reserved, and the limited broadcast address */
};

/* The global unicast space: all of the IPv6 Internet. */
static const struct prefix v6_global = {{0x20}, 3};

static const struct prefix v6_reachable[] = {
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 128}, /* PCP anycast */
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02}, 128}, /* TURN anycast */
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03}, 128}, /* DNS-SD SRP anycast */
    {{0x20, 0x01, 0x00, 0x03}, 32},                                         /* AMT */
    {{0x20, 0x01, 0x00, 0x04, 0x01, 0x12}, 48},                             /* AS112-v6 */
    {{0x20, 0x01, 0x00, 0x20}, 28},                                         /* ORCHIDv2 */
    {{0x20, 0x01, 0x00, 0x30}, 28}, /* drone remote ID tags */
};

/* Inside 2000::/3 and not globally reachable (outside it, nothing is). */
static const struct prefix v6_refused[] = {
    {{0x20, 0x01, 0x00}, 23},       /* IETF protocol assignments, benchmarking, ORCHID */
    {{0x20, 0x01, 0x0d, 0xb8}, 32}, /* documentation */
    {{0x3f, 0xff, 0x00}, 20},       /* documentation */
};

/*
 * Forms whose packets end at an IPv4 address they carry, and where. The
 * deprecated IPv4-compatible ::/96 and SIIT's ::ffff:0:0:0/96 are left
 * out: they lie outside 2000::/3 and are refused whatever they carry.
 */
struct embedding {
    struct prefix prefix;
    unsigned offset;
};

static const struct embedding v6_embedding_v4[] = {
    {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96}, 12}, /* IPv4-mapped */
    {{{0x00, 0x64, 0xff, 0x9b}, 96}, 12},                   /* well-known NAT64 */
    {{{0x20, 0x02}, 16}, 2},                                /* 6to4 */
};

/* 2001::/32: the Teredo server at bytes 4-7, the client (inverted) at 12-15. */
static const struct prefix v6_teredo = {{0x20, 0x01, 0x00, 0x00}, 32};

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

#define COUNT(list)        (sizeof(list) / sizeof(list[0]))
#define IN_ANY(addr, list) in_any(addr, list, COUNT(list))

static bool v4_is_public(const uint8_t *addr)
{
    return IN_ANY(addr, v4_reachable) || !IN_ANY(addr, v4_refused);
}

static bool teredo_is_public(const uint8_t *addr)
{
    uint8_t client[4];

    for (unsigned i = 0; i < 4; i++)
        client[i] = (uint8_t)~addr[12 + i];
    return v4_is_public(addr + 4) && v4_is_public(client);
}

static bool v6_is_public(const uint8_t *addr)
{
    for (size_t i = 0; i < COUNT(v6_embedding_v4); i++) {
        if (prefix_matches(addr, &v6_embedding_v4[i].prefix))
            return v4_is_public(addr + v6_embedding_v4[i].offset);
    }
    if (prefix_matches(addr, &v6_teredo))
        return teredo_is_public(addr);
    if (IN_ANY(addr, v6_reachable))
        return true;
    return prefix_matches(addr, &v6_global) && !IN_ANY(addr, v6_refused);
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
