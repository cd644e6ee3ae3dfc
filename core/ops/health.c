/*
 * health.c - the storage probe behind /readyz.
 *
 * Each probe writes an object of its own (the process id and a counter name
 * it), so concurrent probes of this process, of other processes on the same
 * cache and of other replicas on the same bucket never read each other's.
 */
#include "autoconfig.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/metrics/metrics.h"
#include "core/ops/health.h"

static atomic_ulong probe_count;

static bool probe_failed(char *reason, size_t cap, const char *what, enum storage_err err)
{
    snprintf(reason, cap, "storage %s failed: %s", what, storage_strerror(err));
    return false;
}

/*
 * Misses go through a writer, which may spool elsewhere than small objects
 * go (S3 spools in TMPDIR): one is opened, written to and discarded.
 */
static bool probe_writer(struct storage *st, char *reason, size_t cap)
{
    struct storage_writer *w;
    enum storage_err err = st->ops->writer_open(st, &w);

    if (err != STORAGE_OK)
        return probe_failed(reason, cap, "spool", err);
    err = st->ops->writer_write(w, "probe", 5);
    st->ops->writer_abort(w);
    return err == STORAGE_OK || probe_failed(reason, cap, "spool write", err);
}

bool oci_health_probe_storage(struct storage *st, char *reason, size_t cap)
{
    char key[128], body[128], host[64] = "";
    char *back = NULL;
    size_t len = 0, body_len;
    enum storage_err err;
    bool ok;

    gethostname(host, sizeof(host) - 1);
    snprintf(key, sizeof(key), OCI_HEALTH_PREFIX "%ld-%lu", (long)getpid(),
             (unsigned long)atomic_fetch_add(&probe_count, 1));
    body_len = (size_t)snprintf(body, sizeof(body), "readyz probe %s %s\n", key, host);
    err = st->ops->put_small(st, key, body, body_len);
    if (err != STORAGE_OK)
        return probe_failed(reason, cap, "write", err);
    err = st->ops->read_small(st, key, sizeof(body), &back, &len, NULL);
    if (err != STORAGE_OK) {
        ok = probe_failed(reason, cap, "read", err);
    } else if (len != body_len || memcmp(back, body, len) != 0) {
        snprintf(reason, cap, "storage read back other bytes than were written");
        ok = false;
    } else {
        ok = true;
    }
    free(back);
    err = st->ops->remove(st, key);
    if (ok && err != STORAGE_OK)
        return probe_failed(reason, cap, "remove", err);
    return ok && probe_writer(st, reason, cap);
}

void oci_health_details(char *out, size_t cap)
{
    switch (oci_metrics_s3_conditional()) {
    case 1:
        snprintf(out, cap,
                 "replicas: cooperating (S3 conditional writes): one upstream fetch "
                 "per object and one cleanup pass at a time across the bucket\n");
        break;
    case 0:
        snprintf(out, cap,
                 "replicas: alone (the S3 server does not honour conditional writes): "
                 "each replica fetches its own misses and runs its own cleanup\n");
        break;
    default:
        snprintf(out, cap, "%s", "");
    }
}
