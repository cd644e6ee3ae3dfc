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

#include "core/addrguard.h"

struct addr_case {
    const char *addr;
    bool is_public;
};

static const struct addr_case cases[] = {
    /* IPv4 */
    {"8.8.8.8", true},
    {"1.1.1.1", true},
    {"151.101.0.1", true},
    {"0.0.0.0", false},
    {"0.1.2.3", false},
    {"10.0.0.1", false},
    {"10.255.255.255", false},
    {"11.0.0.1", true},
    {"100.63.255.255", true},
    {"100.64.0.1", false},
    {"100.127.255.255", false},
    {"100.128.0.1", true},
    {"127.0.0.1", false},
    {"127.255.255.254", false},
    {"169.254.169.254", false},
    {"172.15.255.255", true},
    {"172.16.0.1", false},
    {"172.31.255.255", false},
    {"172.32.0.1", true},
    {"192.0.0.8", false},
    {"192.0.1.1", true},
    {"192.0.2.1", false},
    {"192.88.99.1", false},
    {"192.168.1.1", false},
    {"198.17.255.255", true},
    {"198.18.0.1", false},
    {"198.19.255.255", false},
    {"198.20.0.1", true},
    {"198.51.100.7", false},
    {"203.0.113.9", false},
    {"223.255.255.255", true},
    {"224.0.0.1", false},
    {"239.255.255.250", false},
    {"240.0.0.1", false},
    {"255.255.255.255", false},
    /* IPv6 */
    {"2606:4700::1111", true},
    {"2a00:1450:4001:82b::200e", true},
    {"::", false},
    {"::1", false},
    {"fc00::1", false},
    {"fd12:3456::1", false},
    {"fe80::1", false},
    {"febf::1", false},
    {"fec0::1", false},
    {"ff02::1", false},
    {"2001:db8::1", false},
    {"2001:db9::1", true},
    {"64:ff9b:1::1", false},
    {"100::1", false},
    {"100:0:0:1::1", true},
    /* IPv6 addresses that lead to an IPv4 address */
    {"::ffff:127.0.0.1", false},
    {"::ffff:10.1.2.3", false},
    {"::ffff:169.254.169.254", false},
    {"::ffff:8.8.8.8", true},
    {"::127.0.0.1", false},
    {"::8.8.8.8", true},
    {"64:ff9b::a00:1", false},
    {"64:ff9b::7f00:1", false},
    {"64:ff9b::808:808", true},
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
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (check(cases[i].addr) != cases[i].is_public)
            fail_msg("%s: expected %s", cases[i].addr, cases[i].is_public ? "public" : "refused");
    }
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
