/*
 * observe.h - events that a lower layer reports to whoever counts them.
 *
 * storage/ may not call core/, yet core/metrics counts storage's requests
 * to S3. So storage reports through this hook, and core plugs its counter
 * in at start (before the workers run; the hook is not changed after).
 * With nothing plugged in, a report does nothing.
 */
#ifndef OCI_OBSERVE_H
#define OCI_OBSERVE_H

#include <stdbool.h>

/* One S3 request ended: method, encoded query (or NULL), status (0: no answer). */
typedef void (*oci_observe_s3_fn)(const char *method, const char *query, long status);

void oci_observe_set_s3(oci_observe_s3_fn fn);
void oci_observe_s3(const char *method, const char *query, long status);

/*
 * Whether the S3 server honours conditional writes (storage/s3_lease.h):
 * reported when a probe found out. The last report is kept and given to a
 * hook plugged in after it (the storage opens before core counts).
 */
typedef void (*oci_observe_flag_fn)(bool yes);

void oci_observe_set_s3_conditional(oci_observe_flag_fn fn);
void oci_observe_s3_conditional(bool yes);

#endif
