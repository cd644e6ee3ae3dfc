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
    OCI_E_BLOB_UNKNOWN,      /* 404 */
    OCI_E_DIGEST_INVALID,    /* 400 */
    OCI_E_MANIFEST_INVALID,  /* 400 */
    OCI_E_MANIFEST_UNKNOWN,  /* 404 */
    OCI_E_NAME_INVALID,      /* 400 */
    OCI_E_NAME_UNKNOWN,      /* 404 */
    OCI_E_TAG_INVALID,       /* 400 */
    OCI_E_UNAUTHORIZED,      /* 401 */
    OCI_E_DENIED,            /* 403 */
    OCI_E_UNSUPPORTED,       /* 405: push and other methods a mirror does not take */
    OCI_E_NOT_FOUND,         /* 404: a path that is no registry endpoint */
    OCI_E_TOOMANYREQUESTS,   /* 429 */
    OCI_E_UPSTREAM_FAILED,   /* 502: the upstream answered something unusable */
    OCI_E_UNAVAILABLE,       /* 503: upstream or storage cannot be reached */
    OCI_E_INTERNAL,          /* 500: a fault of ours, never a client's mistake */
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
