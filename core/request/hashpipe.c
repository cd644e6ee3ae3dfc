/*
 * hashpipe.c - a streaming hash computed on a thread of its own.
 *
 * The ring holds `used` bytes from `tail` on (wrapping). The producer copies
 * into the free part after them, outside the lock: the consumer only reads
 * the used part, and only the producer makes it grow, so the place where
 * new bytes go does not move under it. Each side sleeps on its condition
 * variable only when it has nothing to do, and is signalled only then: a
 * write is a copy and two short critical sections, never a system call
 * while the hashing thread keeps up.
 */
#include "autoconfig.h"

#include "core/request/hashpipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct oci_hashpipe {
    struct oci_hasher *hasher;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t data;  /* the consumer waits for bytes */
    pthread_cond_t space; /* the producer waits for room */
    unsigned char *ring;
    size_t tail, used;
    bool consumer_waits, producer_waits;
    bool closing;   /* no more bytes will come */
    bool abandoned; /* stop without hashing the rest */
    bool failed;    /* the hasher reported an error */
};

/* The consumer: hashes what the ring holds, in contiguous spans. */
static void *hash_thread(void *arg)
{
    struct oci_hashpipe *p = arg;
    size_t n;
    bool ok;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->used == 0 && !p->closing && !p->abandoned) {
            p->consumer_waits = true;
            pthread_cond_wait(&p->data, &p->lock);
        }
        if (p->abandoned || p->used == 0)
            break;
        n = p->used < OCI_HASHPIPE_RING - p->tail ? p->used : OCI_HASHPIPE_RING - p->tail;
        pthread_mutex_unlock(&p->lock);
        ok = oci_hasher_update(p->hasher, p->ring + p->tail, n);
        pthread_mutex_lock(&p->lock);
        p->tail = (p->tail + n) % OCI_HASHPIPE_RING;
        p->used -= n;
        p->failed = p->failed || !ok;
        if (p->producer_waits) {
            p->producer_waits = false;
            pthread_cond_signal(&p->space);
        }
        if (p->failed)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct oci_hashpipe *oci_hashpipe_new(enum oci_digest_alg alg)
{
    struct oci_hashpipe *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->hasher = oci_hasher_new(alg);
    p->ring = malloc(OCI_HASHPIPE_RING);
    if (p->hasher == NULL || p->ring == NULL)
        goto fail;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->data, NULL);
    pthread_cond_init(&p->space, NULL);
    if (pthread_create(&p->thread, NULL, hash_thread, p) != 0) {
        pthread_cond_destroy(&p->space);
        pthread_cond_destroy(&p->data);
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    return p;
fail:
    oci_hasher_free(p->hasher);
    free(p->ring);
    free(p);
    return NULL;
}

bool oci_hashpipe_write(struct oci_hashpipe *p, const void *buf, size_t len)
{
    const unsigned char *bytes = buf;
    size_t head, n;

    while (len > 0) {
        pthread_mutex_lock(&p->lock);
        while (p->used == OCI_HASHPIPE_RING && !p->failed) {
            p->producer_waits = true;
            pthread_cond_wait(&p->space, &p->lock);
        }
        if (p->failed) {
            pthread_mutex_unlock(&p->lock);
            return false;
        }
        head = (p->tail + p->used) % OCI_HASHPIPE_RING;
        n = OCI_HASHPIPE_RING - p->used;
        if (n > OCI_HASHPIPE_RING - head)
            n = OCI_HASHPIPE_RING - head;
        if (n > len)
            n = len;
        pthread_mutex_unlock(&p->lock);

        memcpy(p->ring + head, bytes, n);

        pthread_mutex_lock(&p->lock);
        p->used += n;
        if (p->consumer_waits) {
            p->consumer_waits = false;
            pthread_cond_signal(&p->data);
        }
        pthread_mutex_unlock(&p->lock);
        bytes += n;
        len -= n;
    }
    return true;
}

/* Ends the thread: after the last byte (finish) or at once (free). */
static void stop(struct oci_hashpipe *p, bool abandon)
{
    pthread_mutex_lock(&p->lock);
    p->closing = true;
    p->abandoned = abandon;
    pthread_cond_signal(&p->data);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
}

bool oci_hashpipe_finish(struct oci_hashpipe *p, struct oci_digest *out)
{
    stop(p, false);
    /* Joined: the hasher is ours again. */
    return !p->failed && oci_hasher_final(p->hasher, out);
}

void oci_hashpipe_free(struct oci_hashpipe *p)
{
    if (p == NULL)
        return;
    if (!p->closing)
        stop(p, true);
    pthread_cond_destroy(&p->space);
    pthread_cond_destroy(&p->data);
    pthread_mutex_destroy(&p->lock);
    oci_hasher_free(p->hasher);
    free(p->ring);
    free(p);
}
