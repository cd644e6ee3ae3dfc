/*
 * health.h - is this responder fit to serve: the answers of /healthz and
 * /readyz.
 *
 * /healthz says the process is alive and answering (a request reached a
 * worker): nothing is checked, so an orchestrator restarts only a responder
 * that cannot answer at all. /readyz says it can do its work: the storage
 * takes a write, gives the same bytes back and lets them be removed. A
 * request that reaches either also shows that the front server reaches the
 * responder, and the configuration was loaded, or the process would not
 * have started. The probe also opens, writes and discards a writer, the way
 * misses are stored (S3 spools them in TMPDIR). Its answer also says how
 * replicas on one S3 bucket work together.
 */
#ifndef OCI_HEALTH_H
#define OCI_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "storage/storage.h"

/* Where probe objects go: outside the cache's blobs/ and manifests/. */
#define OCI_HEALTH_PREFIX "_health/"

/*
 * Writes a small probe object, reads it back, compares and removes it, then
 * writes to a discarded writer.
 * True when all of it worked; else false with why in reason (cap bytes).
 */
bool oci_health_probe_storage(struct storage *st, char *reason, size_t cap);

/*
 * The lines the readiness answer adds after its first: how this replica
 * works with the others on its storage (S3: whether the server's
 * conditional writes let them share downloads and cleanup passes, or each
 * works alone). "" when there is nothing to say (the filesystem).
 */
void oci_health_details(char *out, size_t cap);

#endif
