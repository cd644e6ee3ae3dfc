/*
 * slots.h - how many requests may be sent to upstreams at once.
 *
 * The FastCGI accept happens before a worker knows what it took, so the
 * accept itself cannot keep workers for hits. Instead every request sent
 * to an upstream takes a slot first: at most `total` in all, so that with
 * `total` below the number of workers the others are always free for what
 * needs no upstream (/v2/, hits, health checks) however slow upstreams
 * are; and at most `per_upstream` per upstream namespace, so that one slow
 * upstream cannot take every slot from the others. A request that finds
 * none is answered at once (503 with Retry-After, or a stale manifest),
 * never queued: waiting would hold the very worker the limit keeps free.
 *
 * Requests that follow a download another one leads send nothing and take
 * no slot; they end when their leader does, which the upstream's time
 * limits bound (core/upstream/upstream.h).
 *
 * Until oci_slots_configure is called there are no limits.
 */
#ifndef OCI_SLOTS_H
#define OCI_SLOTS_H

#include <stdbool.h>

/* Sets the limits, before serving (total >= per_upstream >= 1). False when out of memory. */
bool oci_slots_configure(int total, int per_upstream);

/* Frees what configure allocated, once no slot is taken. */
void oci_slots_cleanup(void);

enum oci_slot {
    OCI_SLOT_TAKEN,         /* go ahead, and give it back when done */
    OCI_SLOT_ALL_BUSY,      /* `total` requests are at upstreams */
    OCI_SLOT_UPSTREAM_BUSY, /* `per_upstream` requests are at this one */
};

/* Takes a slot for a request to the upstream of namespace ns. */
enum oci_slot oci_slots_take(const char *ns);

/* Gives back a slot taken for ns. */
void oci_slots_give_back(const char *ns);

#endif
