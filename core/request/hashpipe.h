/*
 * hashpipe.h - a streaming hash computed on a thread of its own.
 *
 * A blob miss streams to its client, to the cache and into its hash. Done in
 * turn on one thread, the hash sets the pace: SHA-256 runs at a few hundred
 * MB/s on a CPU without SHA extensions, slower than the rest together. Here
 * oci_hashpipe_write() copies the bytes into a ring buffer and returns; the
 * hash is computed meanwhile on another thread (another core). A full ring
 * makes write() wait, so memory stays bounded (OCI_HASHPIPE_RING) and the
 * stream never runs more than a ring ahead of its hash.
 *
 * One producer: write(), finish() and free() are called by one thread.
 */
#ifndef OCI_HASHPIPE_H
#define OCI_HASHPIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/request/digest.h"

#define OCI_HASHPIPE_RING (256 * 1024)

struct oci_hashpipe;

/* Starts the hashing thread. NULL when out of memory or threads. */
struct oci_hashpipe *oci_hashpipe_new(enum oci_digest_alg alg);

/* Queues len bytes for hashing; waits while the ring is full. False when
 * hashing failed (OpenSSL reported an error). */
bool oci_hashpipe_write(struct oci_hashpipe *p, const void *buf, size_t len);

/* Waits until every byte written is hashed and puts the digest in out. */
bool oci_hashpipe_finish(struct oci_hashpipe *p, struct oci_digest *out);

/* Stops the thread (without hashing what is left, if not finished) and frees. */
void oci_hashpipe_free(struct oci_hashpipe *p);

#endif
