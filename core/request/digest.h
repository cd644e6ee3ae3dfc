/*
 * digest.h - content digests: parsing, formatting and streaming hashes.
 *
 * A digest is "algorithm:encoded" as the OCI image spec defines it. sha256
 * and sha512 are verified (lowercase hex of 64 and 128 characters); any other
 * well-formed algorithm is reported as unsupported rather than invalid.
 * Hashing goes through OpenSSL's EVP interface.
 */
#ifndef OCI_DIGEST_H
#define OCI_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/request/errors.h"

enum oci_digest_alg {
    OCI_DIGEST_SHA256,
    OCI_DIGEST_SHA512,
};

#define OCI_DIGEST_HEX_MAX 128
/* "sha512:" + 128 hex + NUL */
#define OCI_DIGEST_STRING_MAX (7 + OCI_DIGEST_HEX_MAX + 1)

struct oci_digest {
    enum oci_digest_alg alg;
    char hex[OCI_DIGEST_HEX_MAX + 1]; /* lowercase, NUL-terminated */
};

/*
 * Parses s[0..len). Returns OCI_OK, OCI_E_DIGEST_INVALID when it does not
 * match the grammar or the algorithm's encoding, or OCI_E_UNSUPPORTED for a
 * well-formed digest of an algorithm this build does not hash.
 */
enum oci_error oci_digest_parse(const char *s, size_t len, struct oci_digest *out);

/* Writes "alg:hex" into buf (at least OCI_DIGEST_STRING_MAX bytes). */
void oci_digest_format(const struct oci_digest *d, char *buf);

/* The algorithm's name as it appears in digests and storage keys: "sha256". */
const char *oci_digest_alg_name(enum oci_digest_alg alg);

bool oci_digest_equal(const struct oci_digest *a, const struct oci_digest *b);

/* A streaming hash. Opaque; one per transfer, not shared between threads. */
struct oci_hasher;

/* Returns NULL when out of memory or the algorithm is unavailable. */
struct oci_hasher *oci_hasher_new(enum oci_digest_alg alg);
/* Returns false when OpenSSL reports a failure. */
bool oci_hasher_update(struct oci_hasher *h, const void *buf, size_t len);
/* Finishes the hash into out; the hasher can not be updated afterwards. */
bool oci_hasher_final(struct oci_hasher *h, struct oci_digest *out);
void oci_hasher_free(struct oci_hasher *h);

/* One-shot digest of a buffer. */
bool oci_digest_buffer(enum oci_digest_alg alg, const void *buf, size_t len,
                       struct oci_digest *out);

#endif
