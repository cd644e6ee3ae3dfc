/*
 * observe.c - the hooks of util/observe.h.
 */
#include "autoconfig.h"

#include <stddef.h>

#include "util/observe.h"

static oci_observe_s3_fn s3_hook;

void oci_observe_set_s3(oci_observe_s3_fn fn)
{
    s3_hook = fn;
}

void oci_observe_s3(const char *method, const char *query, long status)
{
    if (s3_hook != NULL)
        s3_hook(method, query, status);
}
