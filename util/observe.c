/*
 * observe.c - the hooks of util/observe.h.
 */
#include "autoconfig.h"

#include <stdatomic.h>
#include <stddef.h>

#include "util/observe.h"

static oci_observe_s3_fn s3_hook;
static oci_observe_flag_fn conditional_hook;
/* The last conditional-writes report: -1 none yet, else 0 or 1. */
static atomic_int conditional_last = -1;

void oci_observe_set_s3(oci_observe_s3_fn fn)
{
    s3_hook = fn;
}

void oci_observe_s3(const char *method, const char *query, long status)
{
    if (s3_hook != NULL)
        s3_hook(method, query, status);
}

void oci_observe_set_s3_conditional(oci_observe_flag_fn fn)
{
    int last = atomic_load(&conditional_last);

    conditional_hook = fn;
    if (fn != NULL && last >= 0)
        fn(last == 1);
}

void oci_observe_s3_conditional(bool yes)
{
    atomic_store(&conditional_last, yes ? 1 : 0);
    if (conditional_hook != NULL)
        conditional_hook(yes);
}
