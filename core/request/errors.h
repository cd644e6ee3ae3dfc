/*
 * errors.h - the OCI distribution error codes and their JSON bodies.
 *
 * Every answer that is not a success carries the spec's error body
 *   {"errors":[{"code":"NAME_INVALID","message":"...","detail":"..."}]}
 * and the HTTP status that goes with its code. This module owns that table,
 * so no other file hard-codes a status for a registry error.
 */
#ifndef OCI_ERRORS_H
#define OCI_ERRORS_H

#include <stddef.h>

enum oci_error {
    OCI_OK = 0,
    OCI_E_BLOB_UNKNOWN,     /* 404 */
    OCI_E_DIGEST_INVALID,   /* 400 */
    OCI_E_MANIFEST_INVALID, /* 400 */
    OCI_E_MANIFEST_UNKNOWN, /* 404 */
    OCI_E_NAME_INVALID,     /* 400 */
    OCI_E_NAME_UNKNOWN,     /* 404 */
    OCI_E_TAG_INVALID,      /* 400 */
    OCI_E_UNAUTHORIZED,     /* 401 */
    OCI_E_DENIED,           /* 403 */
    OCI_E_UNSUPPORTED,      /* 405: push and other methods a mirror does not take */
    OCI_E_NOT_FOUND,        /* 404: a path that is no registry endpoint */
    OCI_E_TOOMANYREQUESTS,  /* 429 */
    OCI_E_UPSTREAM_FAILED,  /* 502: the upstream answered something unusable */
    OCI_E_UNAVAILABLE,      /* 503: upstream or storage cannot be reached */
    OCI_E_INTERNAL,         /* 500: a fault of ours, never a client's mistake */
    /* Pushes to hosted namespaces. */
    OCI_E_BLOB_UPLOAD_INVALID,   /* 400 */
    OCI_E_BLOB_UPLOAD_UNKNOWN,   /* 404 */
    OCI_E_MANIFEST_BLOB_UNKNOWN, /* 400: a manifest names a blob or manifest not pushed */
    OCI_E_SIZE_INVALID,          /* 400: the body's length is not the one announced */
    OCI_E_RANGE_INVALID,         /* 416 BLOB_UPLOAD_INVALID: a chunk out of order */
    OCI_E_MANIFEST_TOO_LARGE,    /* 413 MANIFEST_INVALID: over the size a manifest may have */
    OCI_E_PARAM_INVALID,         /* 400: a query parameter (n, last, artifactType) is not one */
};

/* The HTTP status of an error code (200 for OCI_OK). */
int oci_error_status(enum oci_error err);

/* The spec's upper-case code string, e.g. "NAME_INVALID". */
const char *oci_error_code(enum oci_error err);

/*
 * Renders the JSON error body into a newly allocated string (caller frees
 * with free()). message may be NULL for the code's default message; detail
 * may be NULL. Returns NULL only when out of memory.
 */
char *oci_error_body(enum oci_error err, const char *message, const char *detail);

#endif
