/*
 * test_slots.c - how many requests may be sent to upstreams, in all and per upstream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/slots.h"

static int configure(void **state)
{
    (void)state;
    return oci_slots_configure(3, 2) ? 0 : -1;
}

static int cleanup(void **state)
{
    (void)state;
    oci_slots_cleanup();
    return 0;
}

static void test_per_upstream(void **state)
{
    (void)state;
    assert_int_equal(oci_slots_take("slow.example"), OCI_SLOT_TAKEN);
    assert_int_equal(oci_slots_take("slow.example"), OCI_SLOT_TAKEN);
    assert_int_equal(oci_slots_take("slow.example"), OCI_SLOT_UPSTREAM_BUSY);
    /* Another upstream is not held up by the slow one. */
    assert_int_equal(oci_slots_take("docker.io"), OCI_SLOT_TAKEN);
    oci_slots_give_back("slow.example");
    assert_int_equal(oci_slots_take("slow.example"), OCI_SLOT_TAKEN);
    oci_slots_give_back("slow.example");
    oci_slots_give_back("slow.example");
    oci_slots_give_back("docker.io");
}

static void test_total(void **state)
{
    (void)state;
    assert_int_equal(oci_slots_take("a.example"), OCI_SLOT_TAKEN);
    assert_int_equal(oci_slots_take("b.example"), OCI_SLOT_TAKEN);
    assert_int_equal(oci_slots_take("c.example"), OCI_SLOT_TAKEN);
    assert_int_equal(oci_slots_take("d.example"), OCI_SLOT_ALL_BUSY);
    assert_int_equal(oci_slots_take("a.example"), OCI_SLOT_ALL_BUSY);
    oci_slots_give_back("b.example");
    /* The freed row serves a new namespace. */
    assert_int_equal(oci_slots_take("d.example"), OCI_SLOT_TAKEN);
    oci_slots_give_back("a.example");
    oci_slots_give_back("c.example");
    oci_slots_give_back("d.example");
    /* A namespace holding no slot gives nothing back. */
    oci_slots_give_back("e.example");
    for (int i = 0; i < 3; i++)
        assert_int_equal(oci_slots_take("e.example"),
                         i < 2 ? OCI_SLOT_TAKEN : OCI_SLOT_UPSTREAM_BUSY);
    oci_slots_give_back("e.example");
    oci_slots_give_back("e.example");
}

static void test_unconfigured_has_no_limit(void **state)
{
    (void)state;
    oci_slots_cleanup();
    for (int i = 0; i < 100; i++)
        assert_int_equal(oci_slots_take("docker.io"), OCI_SLOT_TAKEN);
    assert_true(oci_slots_configure(3, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_upstream),
        cmocka_unit_test(test_total),
        cmocka_unit_test(test_unconfigured_has_no_limit),
    };
    return cmocka_run_group_tests(tests, configure, cleanup);
}
