/*
 * s3_multipart.h - multipart uploads of the S3 backend, internal to
 * storage/ (storage/s3_multipart.c).
 */
#ifndef OCI_STORAGE_S3_MULTIPART_H
#define OCI_STORAGE_S3_MULTIPART_H

#include <stdint.h>

#include "storage/s3_http.h"

#define S3_PART_SIZE (8ULL * 1024 * 1024) /* at least; grows for huge objects */

/*
 * Uploads size bytes of fd as the object key in parts; a failed upload is
 * aborted, so it leaves no parts behind.
 */
enum storage_err s3_multipart_upload(struct s3 *s, const char *key, int fd, uint64_t size);

/*
 * The storage operation reap: aborts the multipart uploads under the
 * prefix that no live writer holds (see s3_multipart.c); how many.
 */
unsigned long s3_multipart_reap(struct storage *st);

#endif
