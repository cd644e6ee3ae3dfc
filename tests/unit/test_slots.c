/*
 * test_slots.c - how many requests may be sent to upstreams, in all and per upstream.
 *
 * Each case is a script of takes and give-backs run against limits of 3 in
 * all and 2 per upstream, with the answer every take must get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/upstream/slots.h"

#define GIVE_BACK (-1) /* a step that gives a slot back instead of taking one */

struct step {
    const char *ns;
    int want; /* enum oci_slot of a take, or GIVE_BACK */
};

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

/* Runs the steps, then gives back what they left taken (so cases are independent). */
static void run(const struct step *steps, size_t count)
{
    size_t i, taken = 0;

    for (i = 0; i < count; i++) {
        if (steps[i].want == GIVE_BACK) {
            oci_slots_give_back(steps[i].ns);
            taken -= taken > 0;
            continue;
        }
        assert_int_equal(oci_slots_take(steps[i].ns), steps[i].want);
        taken += steps[i].want == OCI_SLOT_TAKEN;
    }
    assert_int_equal(taken, 0);
}

#define RUN(steps) run(steps, sizeof(steps) / sizeof(steps[0]))

static void test_per_upstream(void **state)
{
    static const struct step steps[] = {
        {"slow.example", OCI_SLOT_TAKEN},
        {"slow.example", OCI_SLOT_TAKEN},
        {"slow.example", OCI_SLOT_UPSTREAM_BUSY},
        {"docker.io", OCI_SLOT_TAKEN}, /* not held up by the slow one */
        {"slow.example", GIVE_BACK},
        {"slow.example", OCI_SLOT_TAKEN},
        {"slow.example", GIVE_BACK},
        {"slow.example", GIVE_BACK},
        {"docker.io", GIVE_BACK},
    };
    (void)state;
    RUN(steps);
}

static void test_total(void **state)
{
    static const struct step steps[] = {
        {"a.example", OCI_SLOT_TAKEN},    {"b.example", OCI_SLOT_TAKEN},
        {"c.example", OCI_SLOT_TAKEN},    {"d.example", OCI_SLOT_ALL_BUSY},
        {"a.example", OCI_SLOT_ALL_BUSY}, {"b.example", GIVE_BACK},
        {"d.example", OCI_SLOT_TAKEN}, /* the freed row serves a new namespace */
        {"a.example", GIVE_BACK},         {"c.example", GIVE_BACK},
        {"d.example", GIVE_BACK},
    };
    (void)state;
    RUN(steps);
}

static void test_give_back_without_slot(void **state)
{
    static const struct step steps[] = {
        {"e.example", GIVE_BACK}, /* holds none: changes nothing */
        {"e.example", OCI_SLOT_TAKEN},
        {"e.example", OCI_SLOT_TAKEN},
        {"e.example", OCI_SLOT_UPSTREAM_BUSY},
        {"e.example", GIVE_BACK},
        {"e.example", GIVE_BACK},
    };
    (void)state;
    RUN(steps);
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
        cmocka_unit_test(test_give_back_without_slot),
        cmocka_unit_test(test_unconfigured_has_no_limit),
    };
    return cmocka_run_group_tests(tests, configure, cleanup);
}
