/*
 * storage.h - the storage interface: named objects, written atomically.
 *
 * The cache keeps everything as objects under keys: relative, '/'-separated
 * paths such as "blobs/sha256/ab/ab12...". A backend (the filesystem in
 * storage/fs.c, S3 in storage/s3.c) stores bytes under keys and knows
 * nothing of HTTP or of the registry: the layout of keys belongs to
 * core/cache/cache.c.
 *
 * Writes are never visible half-done: a writer collects the bytes under a
 * private name and commit makes them appear under the final key at once
 * (a rename, or the completion of a multipart upload). abort discards them.
 *
 * Keys are validated by the caller; backends refuse keys that are empty,
 * absolute, or have empty, "." or ".." components, as a second line of
 * defence.
 */
#ifndef OCI_STORAGE_H
#define OCI_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum storage_err {
    STORAGE_OK = 0,
    STORAGE_NOT_FOUND, /* no object under that key */
    STORAGE_TOO_LARGE, /* read_small: the object is bigger than asked for */
    STORAGE_BAD_KEY,   /* the key is not a clean relative path */
    STORAGE_NO_MEMORY,
    STORAGE_EXISTS,      /* writer_join: the object is already there */
    STORAGE_IN_PROGRESS, /* writer_join: another writer has it; follow it */
    STORAGE_ABORTED,     /* a followed writer gave up or died */
    STORAGE_IO,          /* the backend failed; details are logged by it */
    STORAGE_FULL,        /* the backend is out of space (a full disk or quota) */
};

struct storage_info {
    uint64_t size;
    time_t mtime; /* last write or touch */
};

/*
 * Where the front server can fetch an object itself, so its bytes never pass
 * through the responder.
 */
struct storage_location {
    /* Absolute filesystem path (X-Sendfile), or "" when the backend has none. */
    char path[4096];
    /* A URL that serves the object to anyone holding it for a short while
     * (an S3 presigned GET URL), or "" when the backend has none. */
    char url[4096];
};

struct storage;
struct storage_reader;
struct storage_writer;
struct storage_lease;

/* How a storage_list walk reports one object; return false to stop. */
typedef bool (*storage_list_fn)(void *arg, const char *key, const struct storage_info *info);

/* Whether an object that is about to be removed must stay (remove_unless). */
typedef bool (*storage_keep_fn)(void *arg, const char *key, const struct storage_info *info);

struct storage_ops {
    enum storage_err (*stat)(struct storage *st, const char *key, struct storage_info *info);
    /*
     * Reads an object of at most max bytes into a new NUL-terminated buffer
     * (caller frees); info, when not NULL, receives its size and time.
     */
    enum storage_err (*read_small)(struct storage *st, const char *key, size_t max, char **buf,
                                   size_t *len, struct storage_info *info);
    enum storage_err (*reader_open)(struct storage *st, const char *key,
                                    struct storage_reader **out);
    /* Reads up to len bytes into buf; *got is 0 at the end of the object. */
    enum storage_err (*reader_read)(struct storage_reader *r, void *buf, size_t len, size_t *got);
    /*
     * For a backend whose objects are files (NULL otherwise): like
     * reader_read, waiting alike, but reads nothing: the next *len bytes
     * (at most max; 0 at the end) are in the file *fd from *offset, for the
     * caller to send from there (sendfile(2)); the reader moves past them.
     * The descriptor stays the reader's, open until reader_close.
     */
    enum storage_err (*reader_file)(struct storage_reader *r, size_t max, int *fd, int64_t *offset,
                                    size_t *len);
    void (*reader_close)(struct storage_reader *r);
    /* Writes a small object whole and atomically (write + commit). */
    enum storage_err (*put_small)(struct storage *st, const char *key, const void *buf, size_t len);
    enum storage_err (*writer_open)(struct storage *st, struct storage_writer **out);
    /*
     * Single flight: opens the one writer of key, or joins the write of key
     * in progress, in this process or another sharing the storage.
     *   STORAGE_OK           *out is ours; commit it under key (or abort)
     *   STORAGE_IN_PROGRESS  *follow reads the object as its writer writes
     *                        it, blocking for more; it ends (got = 0) when
     *                        the writer commits, and fails with
     *                        STORAGE_ABORTED when the writer aborts or dies
     *   STORAGE_EXISTS       the object is already committed
     * A backend that cannot share writes answers STORAGE_OK every time.
     */
    enum storage_err (*writer_join)(struct storage *st, const char *key,
                                    struct storage_writer **out, struct storage_reader **follow);
    enum storage_err (*writer_write)(struct storage_writer *w, const void *buf, size_t len);
    /*
     * Makes the bytes visible under key and frees the writer, whatever the
     * result. A writer from writer_join may finish after it returns (S3: the
     * bytes are this host's at once and the bucket's when their upload ends;
     * destroy waits for it); other writers' bytes are durable when it does.
     */
    enum storage_err (*writer_commit)(struct storage_writer *w, const char *key);
    /* Discards the bytes and frees the writer. */
    void (*writer_abort)(struct storage_writer *w);
    /*
     * For a backend that can grow an object in place (NULL otherwise), for
     * objects that are no content yet (upload sessions): opens key to write
     * at its end, creating it empty when missing; *size says how long it
     * is. The writer holds the object alone, in any process sharing the
     * storage: STORAGE_IN_PROGRESS when another writer has it. Its bytes are
     * visible under key as they are written. writer_commit(w, key) keeps
     * them (durable only once moved), writer_abort cuts the object back to
     * *size; both free the writer.
     */
    enum storage_err (*writer_resume)(struct storage *st, const char *key, uint64_t *size,
                                      struct storage_writer **out);
    /*
     * For a backend with writer_resume: makes the bytes of from durable,
     * then makes them appear under to at once (a rename), replacing what
     * was there; from is gone. A writer holding from is then freed with
     * writer_commit (an abort would cut back what was moved).
     */
    enum storage_err (*move)(struct storage *st, const char *from, const char *to);
    /* Marks an object as used now (for invalidation by last use). */
    enum storage_err (*touch)(struct storage *st, const char *key);
    enum storage_err (*remove)(struct storage *st, const char *key);
    /*
     * Removes key if it was last written or touched before cutoff. A touch
     * racing with the removal wins: the object stays. STORAGE_NOT_FOUND
     * when nothing was removed.
     */
    enum storage_err (*remove_stale)(struct storage *st, const char *key, time_t cutoff);
    /*
     * Removes key unless keep says it must stay. keep is asked once the
     * object is out of sight of new requests, so a request that marked the
     * object used before that moment is seen by keep, and one after finds
     * nothing (and fetches it again): never a hit decided on an object that
     * then disappears. A backend without an atomic move (S3) asks keep just
     * before the removal; a use in between loses, and costs a download.
     * STORAGE_NOT_FOUND when nothing was removed.
     */
    enum storage_err (*remove_unless)(struct storage *st, const char *key, storage_keep_fn keep,
                                      void *arg);
    /* Calls fn for every object whose key starts with prefix (a folder, "manifests/"). */
    enum storage_err (*list)(struct storage *st, const char *prefix, storage_list_fn fn, void *arg);
    /*
     * Forgets the folder prefix ("uploads/<id>/") when nothing is left in
     * it: a backend with directories removes the empty one, so folders of
     * short-lived objects do not pile up. NULL for a backend whose folders
     * are only key prefixes (S3).
     */
    void (*prune)(struct storage *st, const char *prefix);
    enum storage_err (*locate)(struct storage *st, const char *key, struct storage_location *loc);
    /*
     * Takes the lease name (a key outside the cache's folders: "cleanup")
     * for ttl seconds (0: the backend's), so that of the hosts sharing the
     * storage one at a time does a piece of work. The holder keeps it
     * (renewed) until lease_release, or loses it when it dies.
     *   STORAGE_OK           ours (*out may be NULL: nothing to give back)
     *   STORAGE_IN_PROGRESS  another host holds it
     * NULL for a backend that no other host shares (the filesystem: its
     * processes coordinate through files), or that cannot hold leases (an
     * S3 server without conditional writes answers STORAGE_OK): always ours.
     */
    enum storage_err (*lease_take)(struct storage *st, const char *name, long ttl,
                                   struct storage_lease **out);
    void (*lease_release)(struct storage_lease *lease);
    /*
     * Removes what writers that died left behind out of sight (S3:
     * multipart uploads that no live writer holds) and returns how many.
     * NULL when there is nothing of the kind (the filesystem clears its
     * temporary files at open).
     */
    unsigned long (*reap)(struct storage *st);
    void (*destroy)(struct storage *st);
};

/* Every backend's state begins with this. */
struct storage {
    const struct storage_ops *ops;
};

const char *storage_strerror(enum storage_err err);

/* A keep function for remove_unless: keeps what was written or touched at or
 * after *(const time_t *)cutoff. remove_stale is remove_unless with it. */
bool storage_keep_if_touched_since(void *cutoff, const char *key, const struct storage_info *info);

/* True when key is a clean relative path: no empty, "." or ".." components. */
bool storage_key_valid(const char *key);

#endif
