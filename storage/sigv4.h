/*
 * sigv4.h - AWS Signature Version 4: signed requests and presigned URLs.
 *
 * Pure functions over strings, no I/O and no clock: the caller passes the
 * time as an ISO 8601 basic timestamp ("20150830T123600Z"), so every step
 * can be tested against AWS's published vectors. The steps are those of
 * the AWS documentation:
 *   canonical request -> string to sign -> signing key -> signature
 * and, for requests, the Authorization header; for presigned URLs, the
 * query string with X-Amz-Signature (query-string signing).
 *
 * Paths and queries are passed already URI-encoded as they go on the
 * wire (sigv4_uri_encode does S3's encoding); the query is sorted here,
 * so callers may pass its parameters in any order.
 */
#ifndef OCI_SIGV4_H
#define OCI_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SIGV4_HEX_LEN      64 /* a SHA-256 in hex */
#define SIGV4_DATE_LEN     16 /* "20150830T123600Z" */
#define SIGV4_UNSIGNED     "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_credentials {
    const char *access_key;
    const char *secret_key;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
};

/* One header to sign; the name in any case, the value as sent. */
struct sigv4_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method;
    const char *path;                   /* canonical URI, encoded: "/bucket/key" */
    const char *query;                  /* encoded "k=v&k2=v2" in any order, or NULL */
    const struct sigv4_header *headers; /* must include host (and x-amz-date for requests) */
    size_t header_count;
    const char *payload_hash; /* hex SHA-256 of the body, or SIGV4_UNSIGNED */
    const char *amz_date;     /* "20150830T123600Z" */
};

/* Each returns a new string (caller frees), or NULL when out of memory. */
char *sigv4_canonical_request(const struct sigv4_request *req);
char *sigv4_string_to_sign(const struct sigv4_credentials *cred, const char *amz_date,
                           const char *canonical_request);
/* The hex signature of a string to sign. */
bool sigv4_signature(const struct sigv4_credentials *cred, const char *amz_date,
                     const char *string_to_sign, char out[SIGV4_HEX_LEN + 1]);
/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
char *sigv4_authorization(const struct sigv4_credentials *cred, const struct sigv4_request *req);

/*
 * The query string of a presigned URL for method host path, valid for
 * expires seconds from amz_date: extra_query (encoded, may be NULL) plus
 * the X-Amz-* parameters, sorted, ending with X-Amz-Signature. Only the
 * host header is signed, with an unsigned payload.
 */
char *sigv4_presign_query(const struct sigv4_credentials *cred, const char *method,
                          const char *host, const char *path, const char *extra_query,
                          const char *amz_date, long expires);

/* Hex SHA-256 of a buffer. */
void sigv4_sha256_hex(const void *buf, size_t len, char out[SIGV4_HEX_LEN + 1]);
/* S3's URI encoding: unreserved characters stay, '/' stays when keep_slash. */
char *sigv4_uri_encode(const char *s, bool keep_slash);
/* t as "YYYYMMDDTHHMMSSZ" (UTC). */
void sigv4_format_date(time_t t, char out[SIGV4_DATE_LEN + 1]);

#endif
