/*
 * s3.h - the S3 storage backend: objects in an S3-compatible bucket.
 *
 * Keys map to object names under an optional prefix ("cache/" + key).
 * Every request is signed with AWS Signature Version 4 (storage/sigv4.h),
 * over HTTPS unless the host names http://. Writers spool to an unlinked
 * local temporary file and upload at commit only, after the caller has
 * verified the content: one PUT up to the multipart threshold, else a
 * multipart upload that is aborted on any failure. So an object under its
 * final key is always whole, and a failed upload leaves no parts behind.
 * Concurrent writers of one key on one host share one download through a
 * spool directory (see storage/s3.c), and replicas on other hosts through
 * leases in the bucket where the server honours conditional writes
 * (storage/s3_lease.h). Hits are served by the front server from presigned
 * GET URLs (locate).
 */
#ifndef OCI_STORAGE_S3_H
#define OCI_STORAGE_S3_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

#define S3_DEFAULT_REGION    "us-east-1"
#define S3_DEFAULT_THRESHOLD (64ULL * 1024 * 1024) /* larger objects: multipart */

struct storage_s3_config {
    const char *host; /* host[:port], maybe with http:// or https://; NULL: AWS */
    const char *bucket;
    const char *region; /* NULL: us-east-1 */
    const char *access_key;
    const char *secret_key;
    const char *session_token;    /* temporary credentials' token, or NULL */
    bool path_style;              /* host/bucket/key instead of bucket.host/key */
    const char *ca_file;          /* PEM bundle to trust, or NULL for the system's */
    const char *prefix;           /* key prefix inside the bucket, or NULL */
    long connect_timeout;         /* seconds */
    long low_speed_timeout;       /* seconds without progress before a transfer fails */
    long presign_expires;         /* seconds a presigned URL is valid; 0: 300 */
    uint64_t multipart_threshold; /* 0: S3_DEFAULT_THRESHOLD */
    long lease_ttl;               /* seconds a lease lives unrenewed; 0: 30 */
};

/*
 * Opens the bucket and checks it with one signed request, so that a wrong
 * key or bucket is found at start. On failure returns NULL and writes one
 * line naming the problem (never a secret) into err.
 */
struct storage *storage_s3_open(const struct storage_s3_config *cfg, char *err, size_t errlen);

#endif
