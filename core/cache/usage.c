/*
 * usage.c - the shared usage record (see usage.h): a mapped file of
 * last-use minutes and running totals, updated with atomics by every
 * process that maps it.
 *
 * Layout: a header page, then USAGE_SETS sets of USAGE_WAYS 64-bit entries.
 * An entry is (tag << 32) | minute, where tag is the 32 bits of the digest
 * after the set index (never 0: 0 is an empty entry). Two processes
 * inserting into one set at once may lose one entry: the object then counts
 * as used when its file was last written or touched, never younger.
 *
 * Locks are open-file-description locks on the file's first bytes: byte 0
 * while a process checks or renews the file at open, byte 1 held by the
 * process that evicts. They go away with the process, even a killed one.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cache/usage.h"

#define USAGE_MAGIC     "OCIUSE1"
#define USAGE_VERSION   1u
#define USAGE_SETS      (1u << 16)
#define USAGE_WAYS      4u
#define USAGE_TABLE_AT  4096
#define USAGE_FILE_SIZE (USAGE_TABLE_AT + (size_t)USAGE_SETS * USAGE_WAYS * sizeof(uint64_t))
#define LOCK_OPEN       0
#define LOCK_EVICT      1

struct usage_header {
    char magic[8];
    uint32_t version;
    uint32_t sets;
    uint32_t ways;
    uint32_t reserved;
    /* Two's complement: a removal counted before its commit wraps below 0. */
    _Atomic uint64_t bytes;
    _Atomic uint64_t objects;
    _Atomic int64_t reconciled;
};

_Static_assert(sizeof(struct usage_header) <= USAGE_TABLE_AT, "usage header too large");

struct oci_usage {
    int fd;
    void *map;
    struct usage_header *head;
    _Atomic uint64_t *table;
};

/* Takes (wait) or tries (no wait) an OFD lock on one byte; false when not taken. */
static bool byte_lock(int fd, off_t at, short type, bool wait)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    int rc;

    while ((rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl)) < 0 && errno == EINTR)
        ;
    return rc == 0;
}

static bool header_valid(const struct usage_header *h)
{
    return memcmp(h->magic, USAGE_MAGIC, sizeof(h->magic)) == 0 && h->version == USAGE_VERSION &&
           h->sets == USAGE_SETS && h->ways == USAGE_WAYS;
}

/*
 * Makes the file a new, empty record (the caller holds the open lock). Only
 * a file that is no valid record is renewed, so no process of this version
 * has it mapped (truncating a mapped file would fault its readers).
 */
static bool renew(int fd)
{
    struct usage_header h = {.version = USAGE_VERSION, .sets = USAGE_SETS, .ways = USAGE_WAYS};

    memcpy(h.magic, USAGE_MAGIC, sizeof(h.magic));
    /* Emptied first, so no old entry survives in a file of the right size. */
    return ftruncate(fd, 0) == 0 && ftruncate(fd, (off_t)USAGE_FILE_SIZE) == 0 &&
           pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h);
}

/* Checks the file (under the open lock) and renews it when it is not a record of ours. */
static bool check_or_renew(int fd, const char *path, char *err, size_t errlen)
{
    struct usage_header h;
    struct stat sb;
    bool ok;

    if (fstat(fd, &sb) < 0) {
        snprintf(err, errlen, "usage record %s: %s", path, strerror(errno));
        return false;
    }
    ok = (size_t)sb.st_size == USAGE_FILE_SIZE &&
         pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && header_valid(&h);
    if (!ok && !renew(fd)) {
        snprintf(err, errlen, "cannot write usage record %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/*
 * The record belongs to whoever owns its directory: root running the cache
 * command first must not leave a file the responder's user cannot open.
 */
static void give_to_directory_owner(int fd, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    struct stat file, parent;

    if (geteuid() != 0 || fstat(fd, &file) < 0)
        return;
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    if (stat(dir, &parent) == 0 && (file.st_uid != parent.st_uid || file.st_gid != parent.st_gid))
        (void)!fchown(fd, parent.st_uid, parent.st_gid);
}

struct oci_usage *oci_usage_open(const char *path, char *err, size_t errlen)
{
    struct oci_usage *u = calloc(1, sizeof(*u));

    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->map = MAP_FAILED;
    u->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (u->fd < 0) {
        snprintf(err, errlen, "cannot open usage record %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!byte_lock(u->fd, LOCK_OPEN, F_WRLCK, true)) {
        snprintf(err, errlen, "cannot lock usage record %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!check_or_renew(u->fd, path, err, errlen))
        goto fail;
    give_to_directory_owner(u->fd, path);
    u->map = mmap(NULL, USAGE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, u->fd, 0);
    byte_lock(u->fd, LOCK_OPEN, F_UNLCK, true);
    if (u->map == MAP_FAILED) {
        snprintf(err, errlen, "cannot map usage record %s: %s", path, strerror(errno));
        goto fail;
    }
    u->head = u->map;
    u->table = (_Atomic uint64_t *)((char *)u->map + USAGE_TABLE_AT);
    return u;
fail:
    oci_usage_close(u);
    return NULL;
}

void oci_usage_close(struct oci_usage *u)
{
    if (u == NULL)
        return;
    if (u->map != MAP_FAILED)
        munmap(u->map, USAGE_FILE_SIZE);
    if (u->fd >= 0)
        close(u->fd);
    free(u);
}

/* The first 16 hex digits of a digest as a number (digests are lowercase hex). */
static uint64_t digest_bits(const struct oci_digest *d)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 16 && d->hex[i]; i++)
        v = v << 4 | (uint64_t)(d->hex[i] <= '9' ? d->hex[i] - '0' : d->hex[i] - 'a' + 10);
    return v;
}

static _Atomic uint64_t *set_of(const struct oci_usage *u, uint64_t bits)
{
    return u->table + (size_t)(bits >> 48 & (USAGE_SETS - 1)) * USAGE_WAYS;
}

static uint32_t tag_of(uint64_t bits)
{
    uint32_t tag = (uint32_t)(bits >> 16);

    return tag != 0 ? tag : 1;
}

void oci_usage_note(struct oci_usage *u, const struct oci_digest *digest, time_t now)
{
    uint64_t bits = digest_bits(digest);
    _Atomic uint64_t *set = set_of(u, bits);
    uint32_t tag = tag_of(bits), minute = (uint32_t)(now / 60);
    unsigned i, oldest = 0;
    uint64_t e, oldest_minute = UINT64_MAX;

    for (i = 0; i < USAGE_WAYS; i++) {
        e = atomic_load_explicit(&set[i], memory_order_acquire);
        if ((uint32_t)(e >> 32) == tag) {
            if ((uint32_t)e != minute) /* once a minute: the hit path rarely writes */
                atomic_store_explicit(&set[i], (uint64_t)tag << 32 | minute, memory_order_release);
            return;
        }
        if ((uint32_t)e < oldest_minute) {
            oldest_minute = (uint32_t)e;
            oldest = i;
        }
    }
    atomic_store_explicit(&set[oldest], (uint64_t)tag << 32 | minute, memory_order_release);
}

time_t oci_usage_last(const struct oci_usage *u, const struct oci_digest *digest, time_t now)
{
    uint64_t bits = digest_bits(digest);
    const _Atomic uint64_t *set = set_of(u, bits);
    uint32_t tag = tag_of(bits);
    unsigned i;

    for (i = 0; i < USAGE_WAYS; i++) {
        uint64_t e = atomic_load_explicit(&set[i], memory_order_acquire);
        time_t when = (time_t)(uint32_t)e * 60;

        if ((uint32_t)(e >> 32) == tag)
            return when <= now + 60 ? when : 0; /* ahead of the clock: not trusted */
    }
    return 0;
}

void oci_usage_add(struct oci_usage *u, int64_t bytes, int64_t objects)
{
    atomic_fetch_add_explicit(&u->head->bytes, (uint64_t)bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&u->head->objects, (uint64_t)objects, memory_order_relaxed);
}

/* A total that wrapped below zero (a removal counted before its commit) is 0. */
static uint64_t clamp(uint64_t v)
{
    return (int64_t)v < 0 ? 0 : v;
}

void oci_usage_totals(const struct oci_usage *u, struct oci_usage_totals *out)
{
    out->bytes = clamp(atomic_load_explicit(&u->head->bytes, memory_order_relaxed));
    out->objects = clamp(atomic_load_explicit(&u->head->objects, memory_order_relaxed));
    out->reconciled = (time_t)atomic_load_explicit(&u->head->reconciled, memory_order_relaxed);
}

void oci_usage_reconcile_begin(const struct oci_usage *u, struct oci_usage_mark *mark)
{
    mark->bytes = atomic_load(&u->head->bytes);
    mark->objects = atomic_load(&u->head->objects);
}

/* Sets *total to walked plus what was added since mark, without losing a concurrent add. */
static void rebase(_Atomic uint64_t *total, uint64_t mark, uint64_t walked)
{
    uint64_t cur = atomic_load(total);

    while (!atomic_compare_exchange_weak(total, &cur, walked + (cur - mark)))
        ;
}

void oci_usage_reconcile_end(struct oci_usage *u, const struct oci_usage_mark *mark,
                             uint64_t walked_bytes, uint64_t walked_objects, time_t now)
{
    rebase(&u->head->bytes, mark->bytes, walked_bytes);
    rebase(&u->head->objects, mark->objects, walked_objects);
    atomic_store(&u->head->reconciled, (int64_t)now);
}

bool oci_usage_lock_evict(struct oci_usage *u)
{
    return byte_lock(u->fd, LOCK_EVICT, F_WRLCK, false);
}

void oci_usage_unlock_evict(struct oci_usage *u)
{
    byte_lock(u->fd, LOCK_EVICT, F_UNLCK, true);
}
