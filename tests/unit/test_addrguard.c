/*
 * test_addrguard.c - which addresses a dynamic namespace may connect to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "core/upstream/addrguard.h"

struct addr_case {
    const char *addr;
    bool is_public;
};

/*
 * Every range of IANA's special-purpose registries, with the addresses just
 * inside and just outside each end.
 */
static const struct addr_case cases[] = {
    /* IPv4 */
    {"8.8.8.8", true},
    {"1.1.1.1", true},
    {"151.101.0.1", true},
    {"0.0.0.0", false}, /* 0/8 */
    {"0.255.255.255", false},
    {"1.0.0.0", true},
    {"9.255.255.255", true}, /* 10/8 */
    {"10.0.0.0", false},
    {"10.255.255.255", false},
    {"11.0.0.0", true},
    {"100.63.255.255", true}, /* 100.64/10 */
    {"100.64.0.0", false},
    {"100.127.255.255", false},
    {"100.128.0.0", true},
    {"126.255.255.255", true}, /* 127/8 */
    {"127.0.0.0", false},
    {"127.255.255.255", false},
    {"128.0.0.0", true},
    {"169.253.255.255", true}, /* 169.254/16 */
    {"169.254.0.0", false},
    {"169.254.169.254", false},
    {"169.254.255.255", false},
    {"169.255.0.0", true},
    {"172.15.255.255", true}, /* 172.16/12 */
    {"172.16.0.0", false},
    {"172.31.255.255", false},
    {"172.32.0.0", true},
    {"191.255.255.255", true}, /* 192.0.0/24 */
    {"192.0.0.0", false},
    {"192.0.0.7", false}, /* DS-Lite 192.0.0.0/29 */
    {"192.0.0.8", false}, /* dummy address */
    {"192.0.0.9", true},  /* PCP anycast */
    {"192.0.0.10", true}, /* TURN anycast */
    {"192.0.0.11", false},
    {"192.0.0.170", false}, /* NAT64/DNS64 discovery */
    {"192.0.0.171", false},
    {"192.0.0.255", false},
    {"192.0.1.0", true},
    {"192.0.1.255", true}, /* 192.0.2/24 */
    {"192.0.2.0", false},
    {"192.0.2.255", false},
    {"192.0.3.0", true},
    {"192.31.196.1", true},  /* AS112-v4: globally reachable */
    {"192.52.193.1", true},  /* AMT: globally reachable */
    {"192.88.98.255", true}, /* 192.88.99/24 */
    {"192.88.99.0", false},
    {"192.88.99.255", false},
    {"192.88.100.0", true},
    {"192.167.255.255", true}, /* 192.168/16 */
    {"192.168.0.0", false},
    {"192.168.255.255", false},
    {"192.169.0.0", true},
    {"192.175.48.1", true},   /* AS112 direct delegation: globally reachable */
    {"198.17.255.255", true}, /* 198.18/15 */
    {"198.18.0.0", false},
    {"198.19.255.255", false},
    {"198.20.0.0", true},
    {"198.51.99.255", true}, /* 198.51.100/24 */
    {"198.51.100.0", false},
    {"198.51.100.255", false},
    {"198.51.101.0", true},
    {"203.0.112.255", true}, /* 203.0.113/24 */
    {"203.0.113.0", false},
    {"203.0.113.255", false},
    {"203.0.114.0", true},
    {"223.255.255.255", true}, /* 224/4 */
    {"224.0.0.0", false},
    {"239.255.255.255", false},
    {"240.0.0.0", false}, /* 240/4 */
    {"255.255.255.254", false},
    {"255.255.255.255", false},
    /* IPv6: the global unicast space 2000::/3, nothing outside it */
    {"2606:4700::1111", true},
    {"2a00:1450:4001:82b::200e", true},
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2000::", true},
    {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
    {"4000::", false},
    {"::", false},
    {"::1", false},
    {"::2", false},
    {"::1:0:0:0", false},
    {"100::", false}, /* discard-only 100::/64 */
    {"100::ffff:ffff:ffff:ffff", false},
    {"100:0:0:1::", false}, /* dummy prefix 100:0:0:1::/64 */
    {"100:0:0:1:ffff:ffff:ffff:ffff", false},
    {"64:ff9b:1::", false}, /* local-use NAT64 64:ff9b:1::/48 */
    {"64:ff9b:1:ffff:ffff:ffff:808:808", false},
    {"5f00::1", false}, /* SRv6 SIDs 5f00::/16 */
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"fc00::", false}, /* unique local fc00::/7 */
    {"fd12:3456::1", false},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"fe80::", false}, /* link-local fe80::/10 */
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"fec0::1", false}, /* site-local */
    {"ff02::1", false}, /* multicast */
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    /* inside 2000::/3: 2001::/23 and its globally reachable parts */
    {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
    {"2001:1::", false},
    {"2001:1::1", true}, /* PCP anycast */
    {"2001:1::2", true}, /* TURN anycast */
    {"2001:1::3", true}, /* DNS-SD SRP anycast */
    {"2001:1::4", false},
    {"2001:2::", false}, /* benchmarking 2001:2::/48 */
    {"2001:2:0:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:2:1::", false},
    {"2001:2:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:3::", true}, /* AMT 2001:3::/32 */
    {"2001:3:ffff:ffff:ffff:ffff:ffff:ffff", true},
    {"2001:4::", false},
    {"2001:4:111:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:4:112::", true}, /* AS112-v6 2001:4:112::/48 */
    {"2001:4:112:ffff:ffff:ffff:ffff:ffff", true},
    {"2001:4:113::", false},
    {"2001:f:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:10::", false}, /* deprecated ORCHID 2001:10::/28 */
    {"2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:20::", true}, /* ORCHIDv2 2001:20::/28 */
    {"2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", true},
    {"2001:30::", true}, /* drone remote ID 2001:30::/28 */
    {"2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", true},
    {"2001:40::", false},
    {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:200::", true},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true}, /* documentation 2001:db8::/32 */
    {"2001:db8::", false},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:db9::", true},
    {"2620:4f:8000::1", true}, /* AS112 direct delegation: globally reachable */
    {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, /* documentation 3fff::/20 */
    {"3fff::", false},
    {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"3fff:1000::", true},
    /* IPv6 addresses that lead to an IPv4 address: judged by it */
    {"::ffff:127.0.0.1", false}, /* IPv4-mapped ::ffff:0:0/96 */
    {"::ffff:10.1.2.3", false},
    {"::ffff:169.254.169.254", false},
    {"::ffff:8.8.8.8", true},
    {"::fffe:808:808", false},
    {"::1:0:808:808", false},
    {"::127.0.0.1", false}, /* IPv4-compatible (deprecated): refused */
    {"::8.8.8.8", false},
    {"::ffff:0:10.0.0.1", false}, /* SIIT ::ffff:0:0:0/96: refused */
    {"::ffff:0:8.8.8.8", false},
    {"64:ff9b::a00:1", false}, /* NAT64 64:ff9b::/96 */
    {"64:ff9b::7f00:1", false},
    {"64:ff9b::a9fe:a9fe", false},
    {"64:ff9b::808:808", true},
    {"64:ff9a:ffff:ffff:ffff:ffff:808:808", false},
    {"64:ff9b:0:0:0:1:808:808", false},
    {"2002:7f00:1::", false}, /* 6to4 2002::/16 */
    {"2002:a00:1::1", false},
    {"2002:c0a8:101:1::1", false},
    {"2002:a9fe:a9fe::", false},
    {"2002:808:808::1", true},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false},
    {"2003::1", true},
    {"2001:0:808:808::f7f7:f7f7", true},  /* Teredo 2001::/32: server 8.8.8.8, client 8.8.8.8 */
    {"2001:0:808:808::80ff:fefe", false}, /* client 127.0.1.1 */
    {"2001:0:808:808::f5ff:fefe", false}, /* client 10.0.1.1 */
    {"2001:0:7f00:1::f7f7:f7f7", false},  /* server 127.0.0.1 */
    {"2001:0:a00:1::f7f7:f7f7", false},   /* server 10.0.0.1 */
    {"2001:0:ffff:ffff:ffff:ffff:f7f7:f7f7", false},
};

static bool check(const char *text)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

    if (inet_pton(AF_INET, text, &sin.sin_addr) == 1)
        return oci_addr_is_public((struct sockaddr *)&sin, sizeof(sin));
    assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
    return oci_addr_is_public((struct sockaddr *)&sin6, sizeof(sin6));
}

static void test_table(void **state)
{
    size_t wrong = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (check(cases[i].addr) != cases[i].is_public) {
            print_error("%s: expected %s\n", cases[i].addr,
                        cases[i].is_public ? "public" : "refused");
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

static void test_short_length_refused(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

    (void)state;
    assert_int_equal(inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr), 1);
    assert_int_equal(inet_pton(AF_INET6, "2606:4700::1111", &sin6.sin6_addr), 1);
    assert_true(oci_addr_is_public((struct sockaddr *)&sin, sizeof(sin)));
    assert_false(oci_addr_is_public((struct sockaddr *)&sin, sizeof(sin) - 1));
    assert_false(oci_addr_is_public((struct sockaddr *)&sin6, sizeof(sin6) - 1));
    /* A sockaddr_in6 that claims the length of a sockaddr_in. */
    assert_false(oci_addr_is_public((struct sockaddr *)&sin6, sizeof(sin)));
    assert_false(oci_addr_is_public((struct sockaddr *)&sin, 1));
    assert_false(oci_addr_is_public(NULL, 0));
}

static void test_other_families_refused(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sockaddr_in sin = {.sin_family = AF_UNSPEC};

    (void)state;
    strcpy(sun.sun_path, "/run/oci.sock");
    assert_false(oci_addr_is_public((struct sockaddr *)&sun, sizeof(sun)));
    assert_int_equal(inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr), 1);
    assert_false(oci_addr_is_public((struct sockaddr *)&sin, sizeof(sin)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_short_length_refused),
        cmocka_unit_test(test_other_families_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
