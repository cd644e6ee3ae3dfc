/*
 * test_storage_fs.c - the filesystem backend: atomic writes, key checks,
 * listing, the clean-up of leftovers at open, and oci_cache_verify.
 *
 * Every test gets a fresh cache in its own scratch directory (tests/unit/scratch.h).
 */

#define _GNU_SOURCE /* nftw, in scratch.h */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/scratch.h"
#include "core/cache/cache.h"
#include "core/request/digest.h"
#include "core/request/route.h"
#include "storage/fs.h"

struct fixture {
    char root[PATH_MAX];
    struct storage *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    if (f == NULL)
        return -1;
    if (!scratch_make("test_storage_fs", f->root, sizeof(f->root)))
        return -1;
    f->st = storage_fs_open(f->root, err, sizeof(err));
    if (f->st == NULL) {
        fprintf(stderr, "storage_fs_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    f->st->ops->destroy(f->st);
    /* Restore permissions a test may have taken away, so the tree can go. */
    chmod(f->root, 0700);
    scratch_remove(f->root);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static void put(struct storage *st, const char *key, const char *content)
{
    assert_int_equal(st->ops->put_small(st, key, content, strlen(content)), STORAGE_OK);
}

/* The object's whole content, read back through read_small (caller frees). */
static char *get(struct storage *st, const char *key)
{
    char *buf = NULL;
    size_t len;

    assert_int_equal(st->ops->read_small(st, key, 1 << 20, &buf, &len, NULL), STORAGE_OK);
    assert_int_equal(strlen(buf), len);
    return buf;
}

static void assert_content(struct storage *st, const char *key, const char *want)
{
    char *got = get(st, key);

    assert_string_equal(got, want);
    free(got);
}

static void assert_missing(struct storage *st, const char *key)
{
    struct storage_info info;

    assert_int_equal(st->ops->stat(st, key, &info), STORAGE_NOT_FOUND);
}

/* Number of entries (other than . and ..) in root/tmp: writers' files. */
static int tmp_entries(const struct fixture *f)
{
    char path[PATH_MAX + 8];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(path, sizeof(path), "%s/tmp", f->root);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void set_mtime(struct storage *st, const char *key, time_t when)
{
    struct storage_location loc;
    struct timespec times[2] = {{when, 0}, {when, 0}};

    assert_int_equal(st->ops->locate(st, key, &loc), STORAGE_OK);
    assert_int_equal(utimensat(AT_FDCWD, loc.path, times, 0), 0);
}

/* ---- small objects ----------------------------------------------------- */

static void test_put_read_small(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_info info = {0};
    time_t before = time(NULL);
    char *buf = NULL;
    size_t len = 0;

    put(st, "manifests/reg/x/tags/latest", "hello");
    assert_int_equal(st->ops->read_small(st, "manifests/reg/x/tags/latest", 5, &buf, &len, &info),
                     STORAGE_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 6); /* NUL-terminated for in-place parsing */
    assert_int_equal(info.size, 5);
    assert_true(info.mtime >= before - 1 && info.mtime <= time(NULL) + 1);
    free(buf);

    /* Writing a key again replaces the object whole. */
    put(st, "manifests/reg/x/tags/latest", "hi");
    assert_content(st, "manifests/reg/x/tags/latest", "hi");

    /* An empty object is an object. */
    put(st, "empty", "");
    assert_content(st, "empty", "");
}

static void test_read_small_too_large(void **state)
{
    struct fixture *f = *state;
    char *buf = NULL;
    size_t len;

    put(f->st, "obj", "hello");
    assert_int_equal(f->st->ops->read_small(f->st, "obj", 4, &buf, &len, NULL), STORAGE_TOO_LARGE);
    assert_null(buf); /* nothing to free on failure */
}

static void test_missing(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_reader *r;
    char *buf;
    size_t len;

    assert_missing(st, "nope");
    assert_missing(st, "no/such/dir/obj");
    assert_int_equal(st->ops->read_small(st, "nope", 10, &buf, &len, NULL), STORAGE_NOT_FOUND);
    assert_int_equal(st->ops->reader_open(st, "nope", &r), STORAGE_NOT_FOUND);
    assert_int_equal(st->ops->touch(st, "nope"), STORAGE_NOT_FOUND);
    assert_int_equal(st->ops->remove(st, "nope"), STORAGE_NOT_FOUND);

    /* A component that is a file is a missing object below it, not a failure. */
    put(st, "file", "x");
    assert_missing(st, "file/below");
}

/* A directory that holds objects is no object itself, for every way of reading. */
static void test_directory_is_not_an_object(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_reader *r;
    char *buf;
    size_t len;

    put(st, "dir/obj", "x");
    assert_missing(st, "dir");
    assert_int_equal(st->ops->read_small(st, "dir", 1 << 20, &buf, &len, NULL), STORAGE_NOT_FOUND);
    assert_int_equal(st->ops->reader_open(st, "dir", &r), STORAGE_NOT_FOUND);
}

/* ---- writers ----------------------------------------------------------- */

static void test_writer_commit(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_info info;
    const char *key = "blobs/sha256/ab/abcdef";

    assert_int_equal(st->ops->writer_open(st, &w), STORAGE_OK);
    assert_int_equal(st->ops->writer_write(w, "hello, ", 7), STORAGE_OK);
    assert_int_equal(st->ops->writer_write(w, "world", 5), STORAGE_OK);
    /* Readers never see an object being written. */
    assert_missing(st, key);
    assert_int_equal(tmp_entries(f), 1);

    /* blobs/sha256/ab/ does not exist yet: commit creates it. */
    assert_int_equal(st->ops->writer_commit(w, key), STORAGE_OK);
    assert_int_equal(st->ops->stat(st, key, &info), STORAGE_OK);
    assert_int_equal(info.size, 12);
    assert_content(st, key, "hello, world");
    assert_int_equal(tmp_entries(f), 0);
}

static void test_writer_abort(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;

    assert_int_equal(st->ops->writer_open(st, &w), STORAGE_OK);
    assert_int_equal(st->ops->writer_write(w, "partial", 7), STORAGE_OK);
    st->ops->writer_abort(w);
    assert_int_equal(tmp_entries(f), 0);
    assert_missing(st, "partial");
}

/* A resumed object grows in place, by one writer at a time; an abort cuts it back. */
static void test_writer_resume(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w, *other;
    uint64_t size = 99;
    const char *key = "uploads/s1/data";

    assert_int_equal(st->ops->writer_resume(st, key, &size, &w), STORAGE_OK);
    assert_int_equal(size, 0);
    assert_int_equal(st->ops->writer_write(w, "hello", 5), STORAGE_OK);
    assert_content(st, key, "hello"); /* in place: visible as written */
    /* Held: another writer (of any process: flock) is refused. */
    assert_int_equal(st->ops->writer_resume(st, key, &size, &other), STORAGE_IN_PROGRESS);
    assert_int_equal(st->ops->writer_commit(w, key), STORAGE_OK);
    assert_int_equal(tmp_entries(f), 0);

    assert_int_equal(st->ops->writer_resume(st, key, &size, &w), STORAGE_OK);
    assert_int_equal(size, 5);
    assert_int_equal(st->ops->writer_write(w, ", partial", 9), STORAGE_OK);
    st->ops->writer_abort(w);
    assert_content(st, key, "hello");

    assert_int_equal(st->ops->writer_resume(st, key, &size, &w), STORAGE_OK);
    assert_int_equal(st->ops->writer_write(w, ", world", 7), STORAGE_OK);
    /* Moved while held: the name is free, the writer only lets go. */
    assert_int_equal(st->ops->move(st, key, "blobs/sha256/cd/cdef"), STORAGE_OK);
    assert_missing(st, key);
    assert_content(st, "blobs/sha256/cd/cdef", "hello, world");
    assert_int_equal(st->ops->writer_commit(w, key), STORAGE_OK);
    assert_content(st, "blobs/sha256/cd/cdef", "hello, world");
    assert_int_equal(st->ops->move(st, key, "elsewhere"), STORAGE_NOT_FOUND);
}

/* ---- key checks -------------------------------------------------------- */

/* Every operation that takes a key, run on one key; returns its result. */
typedef enum storage_err (*key_op)(struct fixture *f, const char *key);

static enum storage_err op_stat(struct fixture *f, const char *key)
{
    struct storage_info info;
    return f->st->ops->stat(f->st, key, &info);
}

static enum storage_err op_read_small(struct fixture *f, const char *key)
{
    char *buf = NULL;
    size_t len;
    enum storage_err err = f->st->ops->read_small(f->st, key, 100, &buf, &len, NULL);

    free(buf);
    return err;
}

static enum storage_err op_reader_open(struct fixture *f, const char *key)
{
    struct storage_reader *r;
    enum storage_err err = f->st->ops->reader_open(f->st, key, &r);

    if (err == STORAGE_OK)
        f->st->ops->reader_close(r);
    return err;
}

static enum storage_err op_put_small(struct fixture *f, const char *key)
{
    return f->st->ops->put_small(f->st, key, "x", 1);
}

static enum storage_err op_commit(struct fixture *f, const char *key)
{
    struct storage_writer *w;

    assert_int_equal(f->st->ops->writer_open(f->st, &w), STORAGE_OK);
    assert_int_equal(f->st->ops->writer_write(w, "x", 1), STORAGE_OK);
    return f->st->ops->writer_commit(w, key);
}

static enum storage_err op_touch(struct fixture *f, const char *key)
{
    return f->st->ops->touch(f->st, key);
}

static enum storage_err op_remove(struct fixture *f, const char *key)
{
    return f->st->ops->remove(f->st, key);
}

static enum storage_err op_locate(struct fixture *f, const char *key)
{
    struct storage_location loc;
    return f->st->ops->locate(f->st, key, &loc);
}

static bool count_object(void *arg, const char *key, const struct storage_info *info)
{
    (void)key, (void)info;
    ++*(int *)arg;
    return true;
}

/* list takes a folder: the key with a trailing slash. */
static enum storage_err op_list(struct fixture *f, const char *key)
{
    char prefix[64];
    int n = 0;

    snprintf(prefix, sizeof(prefix), "%s/", key);
    return f->st->ops->list(f->st, prefix, count_object, &n);
}

static void test_bad_keys(void **state)
{
    static const char *const keys[] = {"", "/abs", "a/../b", "..", "a//b", ".", "a/.", "./a", "a/"};
    static const struct {
        const char *name;
        key_op op;
    } ops[] = {
        {"stat", op_stat},           {"read_small", op_read_small}, {"reader_open", op_reader_open},
        {"put_small", op_put_small}, {"writer_commit", op_commit},  {"touch", op_touch},
        {"remove", op_remove},       {"locate", op_locate},         {"list", op_list},
    };
    struct fixture *f = *state;

    /* Something a bad key might reach if it were let through. */
    put(f->st, "b", "x");
    put(f->st, "a/b", "x");
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
            enum storage_err got = ops[o].op(f, keys[k]);

            if (got != STORAGE_BAD_KEY)
                fail_msg("%s(\"%s\"): got %s, want %s", ops[o].name, keys[k], storage_strerror(got),
                         storage_strerror(STORAGE_BAD_KEY));
        }
    }
    /* A refused commit still frees the writer and its temporary file. */
    assert_int_equal(tmp_entries(f), 0);
    assert_content(f->st, "b", "x");
    assert_content(f->st, "a/b", "x");
}

/* ---- reading, touching, removing, listing ------------------------------ */

static void test_reader_streams(void **state)
{
    enum { SIZE = 300000, CHUNK = 4096 }; /* several reads, the last one short */
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_reader *r;
    unsigned char *want = malloc(SIZE), *got = malloc(SIZE + CHUNK);
    size_t total = 0, n;

    assert_non_null(want);
    assert_non_null(got);
    for (size_t i = 0; i < SIZE; i++)
        want[i] = (unsigned char)(i * 7 + i / 251);
    assert_int_equal(st->ops->writer_open(st, &w), STORAGE_OK);
    assert_int_equal(st->ops->writer_write(w, want, SIZE), STORAGE_OK);
    assert_int_equal(st->ops->writer_commit(w, "big"), STORAGE_OK);

    assert_int_equal(st->ops->reader_open(st, "big", &r), STORAGE_OK);
    do {
        assert_int_equal(st->ops->reader_read(r, got + total, CHUNK, &n), STORAGE_OK);
        total += n;
        assert_true(total <= SIZE);
    } while (n > 0);
    st->ops->reader_close(r);
    assert_int_equal(total, SIZE);
    assert_memory_equal(got, want, SIZE);
    free(want);
    free(got);
}

static void test_touch(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_info info;
    time_t long_ago = time(NULL) - 24 * 60 * 60;

    put(st, "manifests/reg/x/tags/1", "record");
    set_mtime(st, "manifests/reg/x/tags/1", long_ago);
    assert_int_equal(st->ops->stat(st, "manifests/reg/x/tags/1", &info), STORAGE_OK);
    assert_int_equal(info.mtime, long_ago);

    assert_int_equal(st->ops->touch(st, "manifests/reg/x/tags/1"), STORAGE_OK);
    assert_int_equal(st->ops->stat(st, "manifests/reg/x/tags/1", &info), STORAGE_OK);
    assert_true(info.mtime >= time(NULL) - 5);
    assert_content(st, "manifests/reg/x/tags/1", "record"); /* and the content is untouched */
}

static void test_remove(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;

    put(st, "a/b", "x");
    put(st, "a/c", "y");
    assert_int_equal(st->ops->remove(st, "a/b"), STORAGE_OK);
    assert_missing(st, "a/b");
    assert_content(st, "a/c", "y");
    assert_int_equal(st->ops->remove(st, "a/b"), STORAGE_NOT_FOUND);
}

#define LIST_MAX 8

struct listing {
    int count;
    int stop_after; /* 0: never stop */
    char keys[LIST_MAX][64];
    uint64_t sizes[LIST_MAX];
};

static bool collect(void *arg, const char *key, const struct storage_info *info)
{
    struct listing *l = arg;

    assert_true(l->count < LIST_MAX);
    snprintf(l->keys[l->count], sizeof(l->keys[0]), "%s", key);
    l->sizes[l->count] = info->size;
    l->count++;
    return l->stop_after == 0 || l->count < l->stop_after;
}

/* The size listed under key, or -1 when the walk did not report it. */
static long long listed_size(const struct listing *l, const char *key)
{
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->keys[i], key) == 0)
            return (long long)l->sizes[i];
    return -1;
}

static void test_list(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct listing l = {0};

    put(st, "manifests/reg/x/tags/1", "a");
    put(st, "manifests/reg/x/digests/sha256:00", "bb");
    put(st, "manifests/reg/y/tags/2", "ccc");
    put(st, "manifests/other/z/tags/3", "dddd");
    put(st, "blobs/sha256/00/00", "eeeee");

    assert_int_equal(st->ops->list(st, "manifests/reg/", collect, &l), STORAGE_OK);
    assert_int_equal(l.count, 3);
    assert_int_equal(listed_size(&l, "manifests/reg/x/tags/1"), 1);
    assert_int_equal(listed_size(&l, "manifests/reg/x/digests/sha256:00"), 2);
    assert_int_equal(listed_size(&l, "manifests/reg/y/tags/2"), 3);

    /* A folder that does not exist is empty, not an error. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(st->ops->list(st, "manifests/none/", collect, &l), STORAGE_OK);
    assert_int_equal(l.count, 0);

    /* The callback ends the walk, also from deep inside it. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    assert_int_equal(st->ops->list(st, "manifests/", collect, &l), STORAGE_OK);
    assert_int_equal(l.count, 1);

    /* A prefix names a folder: without the slash it is refused. */
    assert_int_equal(st->ops->list(st, "manifests", collect, &l), STORAGE_BAD_KEY);
}

/* ---- opening ----------------------------------------------------------- */

/* Creates root/tmp/name as a crashed writer would have left it. */
static void make_leftover(const struct fixture *f, const char *name)
{
    char path[PATH_MAX + 64];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/tmp/%s", f->root, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("half a blob", fp);
    fclose(fp);
}

static void test_open_cleans_leftovers(void **state)
{
    struct fixture *f = *state;
    struct storage_writer *live;
    struct storage *again;
    char err[256] = "";

    make_leftover(f, "crashed");
    assert_int_equal(f->st->ops->writer_open(f->st, &live), STORAGE_OK);
    assert_int_equal(f->st->ops->writer_write(live, "alive", 5), STORAGE_OK);
    assert_int_equal(tmp_entries(f), 2);

    /*
     * flock locks belong to open file descriptions: the cleaner's own open()
     * conflicts with the live writer's lock even in this process, as it
     * would with another worker's.
     */
    again = storage_fs_open(f->root, err, sizeof(err));
    assert_non_null(again);
    assert_int_equal(tmp_entries(f), 1);

    /* The live writer's file survived the clean-up and still commits. */
    assert_int_equal(f->st->ops->writer_commit(live, "obj"), STORAGE_OK);
    assert_content(again, "obj", "alive");
    assert_int_equal(tmp_entries(f), 0);
    again->ops->destroy(again);
}

static void assert_open_fails(const char *root)
{
    char err[512] = "";
    struct storage *st = storage_fs_open(root, err, sizeof(err));

    if (st != NULL)
        fail_msg("storage_fs_open(%s) succeeded", root);
    /* One line, naming the problem. */
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, root));
}

static void test_open_invalid_root(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX + 64];

    /* A parent that does not exist. */
    snprintf(path, sizeof(path), "%s/no/such/dir", f->root);
    assert_open_fails(path);

    /* A regular file where the root should be. */
    put(f->st, "plain", "x");
    snprintf(path, sizeof(path), "%s/plain", f->root);
    assert_open_fails(path);

    /* Only an unprivileged user is kept out of a read-only directory. */
    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/ro", f->root);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(chmod(path, 0555), 0);
        assert_open_fails(path);
        chmod(path, 0755);
    }
}

/* ---- oci_cache_verify -------------------------------------------------- */

static void test_cache_verify(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct oci_digest hello, other;
    char key[OCI_CACHE_KEY_MAX];

    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, "hello", 5, &hello));
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, "hellO", 5, &other));
    oci_cache_blob_key(&hello, key);
    assert_int_equal(strncmp(key, "blobs/sha256/", 13), 0);

    assert_int_equal(oci_cache_verify(st, key, &hello), STORAGE_NOT_FOUND); /* missing */
    put(st, key, "hello");
    assert_int_equal(oci_cache_verify(st, key, &hello), STORAGE_OK);
    assert_int_equal(oci_cache_verify(st, key, &other), STORAGE_NOT_FOUND); /* mismatch */
}

/*
 * A manifest record stored reads back through oci_cache_manifest_lookup; a
 * damaged one in its place is a miss (tests/unit/test_cache.c has the forms).
 */
static void test_cache_manifest_record(void **state)
{
    struct fixture *f = *state;
    struct oci_route route;
    struct oci_manifest_record rec = {.size = 2}, got;
    char key[OCI_CACHE_KEY_MAX], damaged[512];

    assert_int_equal(oci_route_parse("/v2/library/a/manifests/1", NULL, "docker.io", &route),
                     OCI_OK);
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, "{}", 2, &rec.digest));
    snprintf(rec.media_type, sizeof(rec.media_type), "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(oci_cache_manifest_store(f->st, &route, &rec, "{}", 2), STORAGE_OK);
    assert_int_equal(oci_cache_manifest_lookup(f->st, &route, &got), STORAGE_OK);
    assert_true(oci_digest_equal(&got.digest, &rec.digest));
    assert_int_equal(got.size, 2);
    assert_string_equal(got.media_type, rec.media_type);
    oci_cache_manifest_key(&route, key);
    /* Blanks, then a word of 136 bytes without a colon: an over-read once. */
    snprintf(damaged, sizeof(damaged), "%200s%0136d 2 application/json\n", "", 0);
    put(f->st, key, damaged);
    assert_int_equal(oci_cache_manifest_lookup(f->st, &route, &got), STORAGE_NOT_FOUND);
}

/* ---- single flight and stale removal ----------------------------------- */

#define JOIN_KEY "blobs/sha256/ab/abcd"

/* Reads what the follower has now; the writer in these tests always wrote first. */
static void assert_follow_reads(struct storage *st, struct storage_reader *r, const char *want)
{
    char buf[64];
    size_t got;

    assert_int_equal(st->ops->reader_read(r, buf, sizeof(buf), &got), STORAGE_OK);
    assert_int_equal(got, strlen(want));
    assert_memory_equal(buf, want, got);
}

/* A leader and a follower of JOIN_KEY, the leader having written "abc". */
static void join_pair(struct storage *st, struct storage_writer **leader,
                      struct storage_reader **follower)
{
    struct storage_writer *unused_writer;
    struct storage_reader *unused_reader;

    assert_int_equal(st->ops->writer_join(st, JOIN_KEY, leader, &unused_reader), STORAGE_OK);
    assert_int_equal(st->ops->writer_join(st, JOIN_KEY, &unused_writer, follower),
                     STORAGE_IN_PROGRESS);
    assert_int_equal(st->ops->writer_write(*leader, "abc", 3), STORAGE_OK);
    assert_follow_reads(st, *follower, "abc");
}

/* The follower's next read once its writer is gone; closes the follower. */
static enum storage_err follow_to_end(struct storage *st, struct storage_reader *r)
{
    char buf[8];
    size_t got = 1;
    enum storage_err err = st->ops->reader_read(r, buf, sizeof(buf), &got);

    st->ops->reader_close(r);
    return err == STORAGE_OK && got != 0 ? STORAGE_IO : err;
}

static void test_join_leader_and_follower(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_reader *r;

    join_pair(st, &w, &r);
    assert_int_equal(st->ops->writer_write(w, "de", 2), STORAGE_OK);
    assert_follow_reads(st, r, "de");
    assert_int_equal(st->ops->writer_commit(w, JOIN_KEY), STORAGE_OK);
    /* After the commit the follower reaches the end instead of waiting. */
    assert_int_equal(follow_to_end(st, r), STORAGE_OK);
    assert_content(st, JOIN_KEY, "abcde");
    assert_int_equal(st->ops->writer_join(st, JOIN_KEY, &w, &r), STORAGE_EXISTS);
    assert_int_equal(tmp_entries(f), 0);
}

/* The follower's next piece by file: where it is, and its bytes. */
static void assert_follow_file(struct storage *st, struct storage_reader *r, size_t max, int64_t at,
                               const char *want)
{
    char buf[8] = {0};
    int64_t offset = -1;
    size_t len = 0;
    int fd = -1;

    assert_int_equal(st->ops->reader_file(r, max, &fd, &offset, &len), STORAGE_OK);
    assert_int_equal(offset, at);
    assert_int_equal(len, strlen(want));
    assert_int_equal(pread(fd, buf, len, offset), (ssize_t)len);
    assert_string_equal(buf, want);
}

static void test_join_follower_by_file(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_reader *r;

    join_pair(st, &w, &r); /* the follower read "abc" */
    assert_int_equal(st->ops->writer_write(w, "def", 3), STORAGE_OK);
    assert_follow_file(st, r, 2, 3, "de"); /* no more than asked for */
    assert_follow_file(st, r, 8, 5, "f");
    assert_int_equal(st->ops->writer_commit(w, JOIN_KEY), STORAGE_OK);
    assert_follow_file(st, r, 8, 6, ""); /* committed: the end, not a wait */
    st->ops->reader_close(r);
    assert_content(st, JOIN_KEY, "abcdef");
}

/*
 * A follower that is still reading when the committed object is removed
 * (S3's spool removes it once uploaded) ends as committed: the commit, not
 * the name, says the bytes were verified.
 */
static void test_join_commit_then_removed(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_reader *r;

    join_pair(st, &w, &r); /* the follower read "abc" */
    assert_int_equal(st->ops->writer_write(w, "de", 2), STORAGE_OK);
    assert_int_equal(st->ops->writer_commit(w, JOIN_KEY), STORAGE_OK);
    assert_int_equal(st->ops->remove(st, JOIN_KEY), STORAGE_OK);
    assert_follow_reads(st, r, "de");
    assert_int_equal(follow_to_end(st, r), STORAGE_OK);
}

static void test_join_abort_fails_followers(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_reader *r;

    join_pair(st, &w, &r);
    st->ops->writer_abort(w);
    assert_int_equal(follow_to_end(st, r), STORAGE_ABORTED);
    assert_missing(st, JOIN_KEY);
    /* The next request leads a fresh download. */
    assert_int_equal(st->ops->writer_join(st, JOIN_KEY, &w, &r), STORAGE_OK);
    st->ops->writer_abort(w);
    assert_int_equal(tmp_entries(f), 0);
}

static void test_join_replaces_dead_writers_file(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    struct storage_writer *w;
    struct storage_reader *r;

    /* What a writer killed halfway leaves: content, and no lock. */
    make_leftover(f, "blobs,sha256,ab,abcd.part");
    assert_int_equal(st->ops->writer_join(st, JOIN_KEY, &w, &r), STORAGE_OK);
    assert_int_equal(st->ops->writer_write(w, "new", 3), STORAGE_OK);
    assert_int_equal(st->ops->writer_commit(w, JOIN_KEY), STORAGE_OK);
    assert_content(st, JOIN_KEY, "new");
}

static void test_remove_stale(void **state)
{
    struct fixture *f = *state;
    struct storage *st = f->st;
    time_t now = time(NULL);

    put(f->st, "blobs/old", "x");
    set_mtime(st, "blobs/old", now - 100);
    put(f->st, "blobs/new", "y");
    assert_int_equal(st->ops->remove_stale(st, "blobs/old", now - 50), STORAGE_OK);
    assert_missing(st, "blobs/old");
    assert_int_equal(st->ops->remove_stale(st, "blobs/new", now - 50), STORAGE_NOT_FOUND);
    assert_content(st, "blobs/new", "y");
    assert_int_equal(st->ops->remove_stale(st, "blobs/gone", now), STORAGE_NOT_FOUND);
    assert_int_equal(tmp_entries(f), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_read_small),
        T(test_join_leader_and_follower),
        T(test_join_follower_by_file),
        T(test_join_commit_then_removed),
        T(test_join_abort_fails_followers),
        T(test_join_replaces_dead_writers_file),
        T(test_remove_stale),
        T(test_read_small_too_large),
        T(test_missing),
        T(test_directory_is_not_an_object),
        T(test_writer_commit),
        T(test_writer_abort),
        T(test_writer_resume),
        T(test_bad_keys),
        T(test_reader_streams),
        T(test_touch),
        T(test_remove),
        T(test_list),
        T(test_open_cleans_leftovers),
        T(test_open_invalid_root),
        T(test_cache_verify),
        T(test_cache_manifest_record),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
