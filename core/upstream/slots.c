/*
 * slots.c - counts the requests at upstreams, in all and per upstream
 * namespace.
 *
 * One lock, taken twice per upstream request (never on a hit). The
 * per-upstream counts live in a table of `total` rows: no more than
 * `total` requests are counted, so no more namespaces either, and the
 * table never fills. A row is free when its count is 0.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/request/reference.h"
#include "core/upstream/slots.h"

struct slot_row {
    char ns[OCI_NAMESPACE_MAX + 1];
    int count;
};

static struct {
    pthread_mutex_t lock;
    int total, per_upstream; /* 0: not configured, no limit */
    int taken;
    struct slot_row *rows; /* total of them */
} slots = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool oci_slots_configure(int total, int per_upstream)
{
    slots.rows = calloc((size_t)total, sizeof(*slots.rows));
    if (slots.rows == NULL)
        return false;
    slots.total = total;
    slots.per_upstream = per_upstream;
    return true;
}

void oci_slots_cleanup(void)
{
    free(slots.rows);
    slots.rows = NULL;
    slots.total = slots.per_upstream = 0;
}

/* The row counting ns, else a free one (there is one while taken < total). */
static struct slot_row *row_of(const char *ns)
{
    struct slot_row *free_row = NULL;

    for (int i = 0; i < slots.total; i++) {
        struct slot_row *r = &slots.rows[i];

        if (r->count > 0 && strcmp(r->ns, ns) == 0)
            return r;
        if (r->count == 0 && free_row == NULL)
            free_row = r;
    }
    return free_row;
}

enum oci_slot oci_slots_take(const char *ns)
{
    enum oci_slot result = OCI_SLOT_TAKEN;
    struct slot_row *r;

    if (slots.total == 0)
        return OCI_SLOT_TAKEN;
    pthread_mutex_lock(&slots.lock);
    if (slots.taken >= slots.total)
        result = OCI_SLOT_ALL_BUSY;
    else if ((r = row_of(ns))->count >= slots.per_upstream)
        result = OCI_SLOT_UPSTREAM_BUSY;
    else {
        if (r->count++ == 0)
            snprintf(r->ns, sizeof(r->ns), "%s", ns);
        slots.taken++;
    }
    pthread_mutex_unlock(&slots.lock);
    return result;
}

void oci_slots_give_back(const char *ns)
{
    struct slot_row *r;

    if (slots.total == 0)
        return;
    pthread_mutex_lock(&slots.lock);
    r = row_of(ns);
    if (r != NULL && r->count > 0) {
        r->count--;
        slots.taken--;
    }
    pthread_mutex_unlock(&slots.lock);
}
