/*
 * s3_lease.h - leases in the bucket, internal to storage/ (storage/s3_lease.c).
 *
 * A lease is a small object under S3_LEASE_PREFIX that one holder at a time
 * has: replicas on other hosts, sharing only the bucket, agree through it on
 * who fetches an object or runs a cleanup pass. It is made with a
 * conditional write (PUT If-None-Match: *), renewed by its holder (PUT
 * If-Match: its ETag) every ttl/3 by a thread of its own, and removed on
 * release. A lease whose holder stopped renewing it expires: whether it has
 * is judged by the S3 server's clock alone (its Last-Modified plus the ttl
 * written in it, against the Date of the answer), so a replica whose clock
 * is off does not take a live lease; an expired one is taken over with a
 * conditional write on its ETag.
 *
 * Whether the server honours conditional writes is probed at open
 * (s3_lease_probe); without them there are no leases and every caller falls
 * back to working alone.
 */
#ifndef OCI_STORAGE_S3_LEASE_H
#define OCI_STORAGE_S3_LEASE_H

#include <stdbool.h>
#include <time.h>

#include "storage/s3_http.h"
#include "storage/storage.h"

#define S3_LEASE_PREFIX      "_leases/"
#define S3_LEASE_DEFAULT_TTL 30 /* seconds */

/* What the probe found (struct s3's conditional). */
enum s3_conditional {
    S3_CONDITIONAL_UNKNOWN = 0, /* not probed yet, or S3 did not answer */
    S3_CONDITIONAL_NONE,        /* the server ignores or refuses If-None-Match: no leases */
    S3_CONDITIONAL_YES,         /* If-None-Match: * on PUT is honoured */
};

/* How the server takes If-Match on PUT (struct s3's if_match). */
enum s3_if_match {
    S3_IF_MATCH_NONE = 0, /* ignored or refused: take over by DELETE, then If-None-Match */
    S3_IF_MATCH_QUOTED,   /* the ETag as the server gave it, quoted (RFC 9110; AWS) */
    S3_IF_MATCH_UNQUOTED, /* the ETag without its quotes (radosgw 16) */
};

struct storage_lease;

/*
 * Probes the server (a probe object under S3_LEASE_PREFIX written twice
 * with If-None-Match: *, the second must be refused; then If-Match with a
 * wrong ETag, which must be refused too, and with the right one, quoted or
 * not, which must be taken; then removed), sets s->conditional and s->if_match, logs the outcome
 * and reports it through util/observe.h. Left UNKNOWN when S3 cannot be reached: s3_lease_ready
 * probes again later.
 */
void s3_lease_probe(struct s3 *s);

/* True when leases can be used; probes again (at most every few seconds) while unknown. */
bool s3_lease_ready(struct s3 *s);

/*
 * Takes the lease name (a storage key) for ttl seconds (0: the backend's).
 *   STORAGE_OK           *out is held, renewed until s3_lease_release
 *   STORAGE_IN_PROGRESS  another holder has it and renews it
 *   other                S3 failed
 */
enum storage_err s3_lease_acquire(struct s3 *s, const char *name, long ttl,
                                  struct storage_lease **out);

/* Stops renewing, removes the lease (unless it was lost meanwhile) and frees it; NULL is fine. */
void s3_lease_release(struct storage_lease *l);

/*
 * Whether name is held now: STORAGE_OK while a holder renews it,
 * STORAGE_NOT_FOUND when there is none or it expired, else an error.
 */
enum storage_err s3_lease_held(struct s3 *s, const char *name);

/* Whether a lease last written at last_modified with ttl has expired at now (all the server's). */
bool s3_lease_expired(time_t last_modified, long ttl, time_t now);

/* The ttl written in a lease's body ("ttl N" on a line), or fallback when none is. */
long s3_lease_body_ttl(const char *body, long fallback);

#endif
