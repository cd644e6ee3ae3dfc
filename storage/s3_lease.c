/*
 * s3_lease.c - leases in the bucket (see s3_lease.h).
 *
 * A lease's body names its ttl, its holder (host and process, for people
 * reading the bucket) and a random nonce: a holder knows its own lease by
 * the body, so a conditional write that S3 applied but whose answer was
 * lost (then retried and refused) is still recognised as ours.
 *
 * Expiry is judged by the server's clock only: Last-Modified (the time of
 * the last write or renewal) plus the ttl, against the Date of the same
 * answer. Both have a second's resolution; a lease expires a second late
 * at most. If-Match on PUT takes the ETag as S3 gave it, quoted, on AWS;
 * radosgw 16 refuses that and wants it bare (the probe finds out which).
 * Where the server honours If-None-Match but not If-Match on PUT,
 * an expired lease is taken over by removing it and creating it again: two
 * replicas taking over the same lease at once may then both believe they
 * hold it, which costs one duplicate fetch (both commits are atomic and of
 * the same verified bytes), never a wrong object.
 */
#include "autoconfig.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/observe.h"
#include "storage/s3_lease.h"
#include "storage/sigv4.h"

#define LEASE_BODY_MAX      512
#define LEASE_KEY_MAX       1024
#define PROBE_AGAIN_SECONDS 5
/* Conditional writes lost to others before giving up (each looks again). */
#define ACQUIRE_ROUNDS 4

struct storage_lease {
    struct s3 *s3;
    char key[LEASE_KEY_MAX];
    char body[LEASE_BODY_MAX];
    long ttl;
    char etag[130];         /* of our last write: the keeper's while it runs */
    long long last_written; /* when (s3_http_monotonic) it was last written */
    bool lost;              /* another holder took it: not ours to remove */
    pthread_t keeper;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

/* What a look at a lease found. */
struct lease_look {
    char etag[130];
    bool expired; /* by the server's clock */
    bool ours;    /* our body: a write of ours that S3 applied */
};

bool s3_lease_expired(time_t last_modified, long ttl, time_t now)
{
    return now > last_modified + ttl;
}

long s3_lease_body_ttl(const char *body, long fallback)
{
    const char *line = body;

    while (line != NULL && *line != '\0') {
        long ttl;
        char end;

        if (sscanf(line, "ttl %ld%c", &ttl, &end) == 2 && end == '\n' && ttl > 0)
            return ttl;
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return fallback;
}

static bool lease_key(char *out, size_t len, const char *name)
{
    int n = snprintf(out, len, S3_LEASE_PREFIX "%s", name);

    return n > 0 && (size_t)n < len && storage_key_valid(out);
}

/* An ETag as the server's If-Match wants it (into out). */
static const char *if_match_value(const struct s3 *s, const char *etag, char *out, size_t len)
{
    size_t n = strlen(etag);

    if (atomic_load(&s->if_match) != S3_IF_MATCH_UNQUOTED || n < 2 || etag[0] != '"' ||
        etag[n - 1] != '"')
        return etag;
    snprintf(out, len, "%.*s", (int)(n - 2), etag + 1);
    return out;
}

/* A PUT of the lease's body, conditional on header: value (NULL: none). */
static enum storage_err lease_put(struct s3 *s, const char *key, const char *body,
                                  const char *header, const char *value, struct s3_resp *resp)
{
    struct s3_req req = s3_http_req("PUT", key);
    char hash[SIGV4_HEX_LEN + 1], bare[130];

    sigv4_sha256_hex(body, strlen(body), hash);
    if (header != NULL && strcmp(header, "if-match") == 0)
        value = if_match_value(s, value, bare, sizeof(bare));
    if (header != NULL)
        req.extra[req.extra_count++] = (struct sigv4_header){header, value};
    req.body = body;
    req.length = strlen(body);
    req.payload_hash = hash;
    req.max_body = S3_ERROR_BODY_MAX;
    return s3_http_perform(s, &req, resp);
}

static enum storage_err lease_delete(struct s3 *s, const char *key)
{
    struct s3_req req = s3_http_req("DELETE", key);
    struct s3_resp resp = {0};
    enum storage_err err = s3_http_call(s, &req, &resp);

    s3_http_resp_free(&resp);
    return err;
}

/* GETs the lease at key: STORAGE_NOT_FOUND when there is none. */
static enum storage_err lease_look(struct s3 *s, const char *key, const char *ours,
                                   struct lease_look *look)
{
    struct s3_req req = s3_http_req("GET", key);
    struct s3_resp resp = {0};
    enum storage_err err;

    req.max_body = LEASE_BODY_MAX;
    err = s3_http_call(s, &req, &resp);
    if (err == STORAGE_OK) {
        const char *body = resp.body != NULL ? resp.body : "";
        long ttl = s3_lease_body_ttl(body, s->lease_ttl);

        snprintf(look->etag, sizeof(look->etag), "%s", resp.etag);
        look->ours = ours != NULL && strcmp(body, ours) == 0;
        /* Without the server's times nothing can be judged: it stays live. */
        look->expired = resp.date > 0 && resp.last_modified > 0 &&
                        s3_lease_expired(resp.last_modified, ttl, resp.date);
    }
    s3_http_resp_free(&resp);
    return err;
}

enum storage_err s3_lease_held(struct s3 *s, const char *name)
{
    char key[LEASE_KEY_MAX];
    struct lease_look look;
    enum storage_err err;

    if (!lease_key(key, sizeof(key), name))
        return STORAGE_BAD_KEY;
    err = lease_look(s, key, NULL, &look);
    if (err == STORAGE_OK && look.expired)
        return STORAGE_NOT_FOUND;
    return err;
}

/* ---- the keeper: renewals ---------------------------------------------- */

/*
 * One renewal: a write on our ETag. Refused: ours still when the body is
 * (a renewal applied whose answer was lost), else lost.
 */
static void lease_renew(struct storage_lease *l)
{
    struct s3 *s = l->s3;
    struct s3_resp resp = {0};
    struct lease_look look;
    bool if_match = atomic_load(&s->if_match) != S3_IF_MATCH_NONE;
    enum storage_err err = STORAGE_OK;

    if (!if_match) { /* no If-Match: look first, then write */
        err = lease_look(s, l->key, l->body, &look);
        l->lost = err == STORAGE_NOT_FOUND || (err == STORAGE_OK && !look.ours);
    }
    if (err == STORAGE_OK && !l->lost)
        err = lease_put(s, l->key, l->body, if_match ? "if-match" : NULL, l->etag, &resp);
    if (err == STORAGE_OK && resp.status >= 200 && resp.status < 300) {
        snprintf(l->etag, sizeof(l->etag), "%s", resp.etag);
        l->last_written = s3_http_monotonic();
    } else if (err == STORAGE_OK && resp.status == 412) {
        err = lease_look(s, l->key, l->body, &look);
        if (err == STORAGE_OK && look.ours)
            snprintf(l->etag, sizeof(l->etag), "%s", look.etag);
        else
            l->lost = err == STORAGE_OK || err == STORAGE_NOT_FOUND;
    }
    if (l->lost)
        oci_log(OCI_LOG_WARN, "s3: lease %s was taken over: another replica may do the same work",
                l->key);
    else if (err != STORAGE_OK || resp.status < 200 || resp.status >= 300)
        oci_log(OCI_LOG_WARN, "s3: cannot renew lease %s now (HTTP %ld): trying again", l->key,
                resp.status);
    s3_http_resp_free(&resp);
}

static void *keeper_main(void *arg)
{
    struct storage_lease *l = arg;
    struct timespec until;

    pthread_mutex_lock(&l->lock);
    while (!l->stopping && !l->lost) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += l->ttl / 3 > 0 ? l->ttl / 3 : 1;
        while (!l->stopping && pthread_cond_timedwait(&l->wake, &l->lock, &until) == 0)
            ;
        if (l->stopping)
            break;
        pthread_mutex_unlock(&l->lock);
        lease_renew(l);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static bool keeper_start(struct storage_lease *l)
{
    pthread_condattr_t attr;
    bool ok;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&l->lock, NULL);
    ok = pthread_create(&l->keeper, NULL, keeper_main, l) == 0;
    if (!ok) {
        pthread_cond_destroy(&l->wake);
        pthread_mutex_destroy(&l->lock);
    }
    return ok;
}

/* ---- taking and giving back -------------------------------------------- */

static struct storage_lease *lease_new(struct s3 *s, const char *name, long ttl)
{
    struct storage_lease *l = calloc(1, sizeof(*l));
    unsigned char nonce[12];
    char host[128] = "", hex[2 * sizeof(nonce) + 1];
    size_t i;

    if (l == NULL)
        return NULL;
    if (!lease_key(l->key, sizeof(l->key), name) || RAND_bytes(nonce, sizeof(nonce)) != 1) {
        free(l);
        return NULL;
    }
    for (i = 0; i < sizeof(nonce); i++)
        snprintf(hex + 2 * i, 3, "%02x", nonce[i]);
    gethostname(host, sizeof(host) - 1);
    host[strcspn(host, " \r\n")] = '\0';
    l->s3 = s;
    l->ttl = ttl > 0 ? ttl : s->lease_ttl;
    snprintf(l->body, sizeof(l->body), "oci-registry lease\nttl %ld\nholder %s %ld\nnonce %s\n",
             l->ttl, host, (long)getpid(), hex);
    return l;
}

/* An expired lease (etag) becomes ours: 2xx taken, 412 another was quicker. */
static enum storage_err lease_take_over(struct storage_lease *l, const char *etag, long *status)
{
    struct s3 *s = l->s3;
    struct s3_resp resp = {0};
    enum storage_err err;

    oci_log(OCI_LOG_WARN, "s3: lease %s expired (its holder stopped renewing it): taking it over",
            l->key);
    if (atomic_load(&s->if_match) != S3_IF_MATCH_NONE) {
        err = lease_put(s, l->key, l->body, "if-match", etag, &resp);
    } else {
        err = lease_delete(s, l->key);
        err = err == STORAGE_OK || err == STORAGE_NOT_FOUND
                  ? lease_put(s, l->key, l->body, "if-none-match", "*", &resp)
                  : err;
    }
    *status = resp.status;
    if (err == STORAGE_OK && resp.status >= 200 && resp.status < 300)
        snprintf(l->etag, sizeof(l->etag), "%s", resp.etag);
    s3_http_resp_free(&resp);
    return err;
}

/* One round: create, or look and take over. STORAGE_NOT_FOUND: go round again. */
static enum storage_err acquire_round(struct storage_lease *l)
{
    struct s3 *s = l->s3;
    struct s3_resp resp = {0};
    struct lease_look look;
    long status;
    enum storage_err err = lease_put(s, l->key, l->body, "if-none-match", "*", &resp);

    status = resp.status;
    if (err == STORAGE_OK && status >= 200 && status < 300)
        snprintf(l->etag, sizeof(l->etag), "%s", resp.etag);
    s3_http_resp_free(&resp);
    if (err != STORAGE_OK || (status >= 200 && status < 300))
        return err;
    /* 409: a conditional write racing ours (AWS), as good as a 412. */
    if (status != 412 && status != 409) {
        oci_log(OCI_LOG_ERROR, "s3: PUT %s If-None-Match: HTTP %ld", l->key, status);
        return STORAGE_IO;
    }
    err = lease_look(s, l->key, l->body, &look);
    if (err != STORAGE_OK)
        return err; /* NOT_FOUND: given back meanwhile */
    if (look.ours) {
        snprintf(l->etag, sizeof(l->etag), "%s", look.etag);
        return STORAGE_OK;
    }
    if (!look.expired)
        return STORAGE_IN_PROGRESS;
    err = lease_take_over(l, look.etag, &status);
    /* Refused (412), or lost inside the server to a racing taker (radosgw:
     * 500 UnknownError): look again, the winner's lease is live. */
    if (err == STORAGE_OK && (status < 200 || status >= 300))
        return STORAGE_NOT_FOUND;
    return err;
}

enum storage_err s3_lease_acquire(struct s3 *s, const char *name, long ttl,
                                  struct storage_lease **out)
{
    struct storage_lease *l = lease_new(s, name, ttl);
    enum storage_err err = STORAGE_NOT_FOUND;
    int round;

    if (l == NULL)
        return storage_key_valid(name) ? STORAGE_NO_MEMORY : STORAGE_BAD_KEY;
    for (round = 0; round < ACQUIRE_ROUNDS && err == STORAGE_NOT_FOUND; round++)
        err = acquire_round(l);
    if (err == STORAGE_NOT_FOUND)
        err = STORAGE_IN_PROGRESS; /* others kept winning: one of them holds it */
    l->last_written = s3_http_monotonic();
    if (err == STORAGE_OK && !keeper_start(l)) {
        lease_delete(s, l->key);
        err = STORAGE_NO_MEMORY;
    }
    if (err != STORAGE_OK) {
        free(l);
        return err;
    }
    *out = l;
    return STORAGE_OK;
}

void s3_lease_release(struct storage_lease *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->keeper, NULL);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    /* Written less than a ttl ago: nobody can have taken it over since.
     * Else (renewals failed, S3 was away) it is removed only if still ours. */
    if (!l->lost && s3_http_monotonic() - l->last_written >= l->ttl - 1) {
        struct lease_look look;

        l->lost = lease_look(l->s3, l->key, l->body, &look) != STORAGE_OK || !look.ours;
    }
    if (!l->lost)
        lease_delete(l->s3, l->key);
    free(l);
}

/* ---- the probe --------------------------------------------------------- */

/* The status of a conditional PUT of a probe at key (0 when S3 did not
 * answer), and the ETag it was given into etag (when not NULL). */
static long probe_put(struct s3 *s, const char *key, const char *header, const char *value,
                      char etag[130])
{
    struct s3_resp resp = {0};
    long status = 0;

    /* 501 NotImplemented is an answer (Swift's s3api refuses conditional
     * PUTs so); other 5xx say the server is in trouble. */
    if (lease_put(s, key, "oci-registry probe\n", header, value, &resp) == STORAGE_OK &&
        (resp.status < 500 || resp.status == 501))
        status = resp.status;
    if (etag != NULL)
        snprintf(etag, 130, "%s", resp.etag);
    s3_http_resp_free(&resp);
    return status;
}

/* If-Match on PUT: a wrong ETag must be refused, the right one (quoted as
 * given, or bare) taken. */
static enum s3_if_match probe_if_match(struct s3 *s, const char *key, const char *etag)
{
    char bare[130];
    size_t n = strlen(etag);

    if (n == 0 || probe_put(s, key, "if-match", "\"0123456789abcdef\"", NULL) != 412)
        return S3_IF_MATCH_NONE;
    if (probe_put(s, key, "if-match", etag, NULL) / 100 == 2)
        return S3_IF_MATCH_QUOTED;
    snprintf(bare, sizeof(bare), "%s", etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
        snprintf(bare, sizeof(bare), "%.*s", (int)(n - 2), etag + 1);
    if (probe_put(s, key, "if-match", bare, NULL) / 100 == 2)
        return S3_IF_MATCH_UNQUOTED;
    return S3_IF_MATCH_NONE;
}

static void probe_report(struct s3 *s, enum s3_conditional found, long first, long second)
{
    atomic_store(&s->conditional, found);
    if (found == S3_CONDITIONAL_YES)
        oci_log(OCI_LOG_INFO,
                "s3: the server honours conditional writes (If-Match: %s): replicas on this "
                "bucket share their downloads and cleanup passes through leases",
                atomic_load(&s->if_match) == S3_IF_MATCH_QUOTED     ? "yes"
                : atomic_load(&s->if_match) == S3_IF_MATCH_UNQUOTED ? "yes, bare ETags"
                                                                    : "no");
    else
        oci_log(OCI_LOG_WARN,
                "s3: the server does not honour conditional writes (PUT If-None-Match: * "
                "answered %ld, then %ld): every replica on this bucket fetches its own misses "
                "and runs its own cleanup",
                first, second);
    oci_observe_s3_conditional(found == S3_CONDITIONAL_YES);
}

void s3_lease_probe(struct s3 *s)
{
    char key[LEASE_KEY_MAX], name[160], host[64] = "", etag[130] = "";
    unsigned char nonce[8];
    long first, second = 0;

    gethostname(host, sizeof(host) - 1);
    host[strcspn(host, "/ \r\n")] = '\0';
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return;
    snprintf(name, sizeof(name), "_probe/%s-%ld-%02x%02x%02x%02x", host[0] ? host : "host",
             (long)getpid(), nonce[0], nonce[1], nonce[2], nonce[3]);
    if (!lease_key(key, sizeof(key), name))
        return;
    first = probe_put(s, key, "if-none-match", "*", etag);
    if (first >= 200 && first < 300)
        second = probe_put(s, key, "if-none-match", "*", NULL);
    if (first == 0 || ((first >= 200 && first < 300) && second == 0)) {
        /* S3 did not answer: unknown until a later look. */
        atomic_store(&s->next_probe, s3_http_monotonic() + PROBE_AGAIN_SECONDS);
        lease_delete(s, key);
        return;
    }
    if (second == 412)
        atomic_store(&s->if_match, probe_if_match(s, key, etag));
    lease_delete(s, key);
    probe_report(s, second == 412 ? S3_CONDITIONAL_YES : S3_CONDITIONAL_NONE, first, second);
}

bool s3_lease_ready(struct s3 *s)
{
    long long next = atomic_load(&s->next_probe), now;

    if (atomic_load(&s->conditional) != S3_CONDITIONAL_UNKNOWN)
        return atomic_load(&s->conditional) == S3_CONDITIONAL_YES;
    now = s3_http_monotonic();
    /* One thread probes again; the others go on alone meanwhile. */
    if (now >= next &&
        atomic_compare_exchange_strong(&s->next_probe, &next, now + PROBE_AGAIN_SECONDS))
        s3_lease_probe(s);
    return atomic_load(&s->conditional) == S3_CONDITIONAL_YES;
}
