/*
 * fs.c - the filesystem backend: objects are files under a root directory.
 *
 * Layout: root/<key> for committed objects, root/tmp/<random> for writers,
 * root/tmp/<key, flattened>.part for single-flight downloads (writer_join),
 * which other requests - of this process or another - follow as they grow.
 * A commit is fsync(2) then rename(2) within one filesystem, so a reader
 * sees either no file or the whole file, never a partial one. Temporary
 * files are flock(2)ed by their writer for their whole life; whatever in
 * tmp/ is unlocked is left over from a crash and is removed at open.
 * Upload sessions grow one file in place instead (fs_writer_resume), locked
 * the same way by the one request writing to it, and fs_move renames it
 * into place once its bytes were verified.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "storage/fs.h"

#define FS_TMP_DIR "tmp"
/* A followed download that does not grow for this long is given up. */
#define FOLLOW_STALL_SECONDS 60
/*
 * A follower woken by a write lets this long pass before it reads: the
 * writer writes each piece as the upstream's TLS hands it over (16 KiB or
 * so), and a wake-up (and a record to nginx) per piece and follower was a
 * large part of a burst's cost. 2 ms are a
 * few hundred KiB of a fast download, and nothing next to a client's wait.
 */
#define FOLLOW_GATHER_NS (2 * 1000 * 1000)

struct fs_storage {
    struct storage base;
    char root[PATH_MAX]; /* absolute, no trailing slash */
};

struct storage_reader {
    int fd;
    off_t pos; /* the next byte to read or hand over (reader_file) */
    /* Following a download in progress (writer_join): */
    bool following;
    int notify_fd; /* inotify on the file, or -1: then poll by time */
    time_t last_growth;
    /* The file was readable by all when we began following it: made by an
     * older version, whose writers did not mark a commit by the mode. */
    bool legacy_mode;
    char final_path[PATH_MAX];
};

/* The mode of a committed object; downloads in progress are 0600. */
#define FS_COMMITTED_MODE 0644

/* Written data is handed to the disk every this many bytes, see fs_writer_write. */
#define WRITEBACK_STEP (1024 * 1024)

struct storage_writer {
    struct fs_storage *fs;
    int fd;
    off_t written, handed; /* bytes written; bytes whose writeback was started */
    /* Resumed (fs_writer_resume): the file grows in place from start on. */
    bool resumed;
    off_t start;
    char tmp_path[PATH_MAX]; /* the file written: temporary unless resumed */
};

static struct fs_storage *fs_of(struct storage *st)
{
    return (struct fs_storage *)st;
}

/* Joins root and key into buf; refuses bad keys and paths that do not fit. */
static enum storage_err fs_path(const struct fs_storage *fs, const char *key, char *buf, size_t len)
{
    int n;

    if (!storage_key_valid(key))
        return STORAGE_BAD_KEY;
    n = snprintf(buf, len, "%s/%s", fs->root, key);
    if (n < 0 || (size_t)n >= len)
        return STORAGE_BAD_KEY;
    return STORAGE_OK;
}

static enum storage_err fs_errno(const char *what, const char *path)
{
    int e = errno;

    if (e == ENOENT || e == ENOTDIR)
        return STORAGE_NOT_FOUND;
    oci_log(OCI_LOG_ERROR, "storage: %s %s: %s", what, path, strerror(e));
    return e == ENOSPC || e == EDQUOT ? STORAGE_FULL : STORAGE_IO;
}

static enum storage_err fs_stat(struct storage *st, const char *key, struct storage_info *info)
{
    char path[PATH_MAX];
    struct stat sb;
    enum storage_err err = fs_path(fs_of(st), key, path, sizeof(path));

    if (err != STORAGE_OK)
        return err;
    if (stat(path, &sb) < 0)
        return fs_errno("stat", path);
    if (!S_ISREG(sb.st_mode))
        return STORAGE_NOT_FOUND;
    info->size = (uint64_t)sb.st_size;
    info->mtime = sb.st_mtime;
    return STORAGE_OK;
}

/* Reads exactly len bytes, retrying short reads and EINTR. */
static bool read_full(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_full(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static enum storage_err fs_read_small(struct storage *st, const char *key, size_t max, char **out,
                                      size_t *out_len, struct storage_info *info)
{
    char path[PATH_MAX];
    struct stat sb;
    char *buf = NULL;
    int fd = -1;
    enum storage_err err = fs_path(fs_of(st), key, path, sizeof(path));

    if (err != STORAGE_OK)
        return err;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fs_errno("open", path);
    if (fstat(fd, &sb) < 0) {
        err = fs_errno("fstat", path);
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) { /* a directory of other keys, as fs_stat says */
        err = STORAGE_NOT_FOUND;
        goto done;
    }
    if ((uint64_t)sb.st_size > max) {
        err = STORAGE_TOO_LARGE;
        goto done;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        err = STORAGE_NO_MEMORY;
        goto done;
    }
    if (!read_full(fd, buf, (size_t)sb.st_size)) {
        err = fs_errno("read", path);
        goto done;
    }
    buf[sb.st_size] = '\0'; /* records are text: let callers parse in place */
    if (info != NULL) {
        info->size = (uint64_t)sb.st_size;
        info->mtime = sb.st_mtime;
    }
    *out = buf;
    *out_len = (size_t)sb.st_size;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return err;
}

static enum storage_err fs_reader_open(struct storage *st, const char *key,
                                       struct storage_reader **out)
{
    char path[PATH_MAX];
    struct storage_reader *r;
    struct stat sb;
    enum storage_err err = fs_path(fs_of(st), key, path, sizeof(path));

    if (err != STORAGE_OK)
        return err;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return STORAGE_NO_MEMORY;
    r->notify_fd = -1;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        free(r);
        return fs_errno("open", path);
    }
    if (fstat(r->fd, &sb) < 0)
        err = fs_errno("fstat", path);
    else if (!S_ISREG(sb.st_mode)) /* a directory of other keys, as fs_stat says */
        err = STORAGE_NOT_FOUND;
    if (err != STORAGE_OK) {
        close(r->fd);
        free(r);
        return err;
    }
    *out = r;
    return STORAGE_OK;
}

/*
 * A follower at the end of what its writer wrote so far: waits for more.
 * OK to read again; the reader stops following once the writer committed.
 */
static enum storage_err follow_wait(struct storage_reader *r)
{
    struct stat mine, final;
    char events[4096];

    if (flock(r->fd, LOCK_SH | LOCK_NB) == 0) {
        /*
         * The writer is gone: committed or not. A commit makes the file
         * readable by all, which a writer does only once its bytes were
         * verified (fs_writer_commit); an abort or a crash leaves it 0600.
         * The mode, not only the name, tells: a committed file may be gone
         * from its name already (S3's spool removes it once uploaded).
         */
        flock(r->fd, LOCK_UN);
        if (fstat(r->fd, &mine) != 0)
            return STORAGE_ABORTED;
        if ((!r->legacy_mode && (mine.st_mode & 0777) == FS_COMMITTED_MODE) ||
            (stat(r->final_path, &final) == 0 && mine.st_ino == final.st_ino &&
             mine.st_dev == final.st_dev)) {
            r->following = false;
            return STORAGE_OK;
        }
        return STORAGE_ABORTED;
    }
    if (time(NULL) - r->last_growth > FOLLOW_STALL_SECONDS) {
        oci_log(OCI_LOG_WARN, "storage: %s stalled, giving up following it", r->final_path);
        return STORAGE_ABORTED;
    }
    if (r->notify_fd >= 0) {
        /* A missed event costs at most the timeout, never a hang. */
        struct pollfd pfd = {.fd = r->notify_fd, .events = POLLIN};
        struct timespec gather = {0, FOLLOW_GATHER_NS};

        if (poll(&pfd, 1, 1000) > 0) {
            nanosleep(&gather, NULL);
            while (read(r->notify_fd, events, sizeof(events)) > 0)
                ;
        }
    } else {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return STORAGE_OK;
}

static enum storage_err fs_reader_read(struct storage_reader *r, void *buf, size_t len, size_t *got)
{
    for (;;) {
        ssize_t n = pread(r->fd, buf, len, r->pos);
        enum storage_err err;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fs_errno("read", "cached object");
        if (n > 0 || !r->following) {
            r->last_growth = time(NULL);
            r->pos += n;
            *got = (size_t)n;
            return STORAGE_OK;
        }
        err = follow_wait(r);
        if (err != STORAGE_OK)
            return err;
    }
}

/* Hands over what the file holds past pos; a follower waits for it like fs_reader_read. */
static enum storage_err fs_reader_file(struct storage_reader *r, size_t max, int *fd,
                                       int64_t *offset, size_t *len)
{
    for (;;) {
        struct stat sb;
        enum storage_err err;

        if (fstat(r->fd, &sb) < 0)
            return fs_errno("fstat", "cached object");
        if (sb.st_size > r->pos || !r->following) {
            off_t have = sb.st_size > r->pos ? sb.st_size - r->pos : 0;

            r->last_growth = time(NULL);
            *fd = r->fd;
            *offset = r->pos;
            *len = (uint64_t)have < max ? (size_t)have : max;
            r->pos += (off_t)*len;
            return STORAGE_OK;
        }
        err = follow_wait(r);
        if (err != STORAGE_OK)
            return err;
    }
}

static void fs_reader_close(struct storage_reader *r)
{
    if (r->notify_fd >= 0)
        close(r->notify_fd);
    close(r->fd);
    free(r);
}

static enum storage_err fs_writer_open(struct storage *st, struct storage_writer **out)
{
    struct fs_storage *fs = fs_of(st);
    struct storage_writer *w = calloc(1, sizeof(*w));
    int n;

    if (w == NULL)
        return STORAGE_NO_MEMORY;
    w->fs = fs;
    n = snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/" FS_TMP_DIR "/XXXXXX", fs->root);
    if (n < 0 || (size_t)n >= sizeof(w->tmp_path)) {
        free(w);
        return STORAGE_BAD_KEY;
    }
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        enum storage_err err = fs_errno("create", w->tmp_path);
        free(w);
        return err == STORAGE_NOT_FOUND ? STORAGE_IO : err;
    }
    /* Marks the file as alive; fs_clean_tmp leaves locked files alone. */
    flock(w->fd, LOCK_EX);
    *out = w;
    return STORAGE_OK;
}

/* The temporary name of key's single-flight download: the key, flattened. */
static bool join_path(const struct fs_storage *fs, const char *key, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/" FS_TMP_DIR "/", fs->root);
    char *c;

    if (n < 0 || (size_t)n + strlen(key) + 6 > len)
        return false;
    for (c = buf + n; *key; key++)
        *c++ = *key == '/' ? ',' : *key;
    strcpy(c, ".part");
    return true;
}

/* True when fd is still the file at path (not renamed or removed meanwhile). */
static bool still_at(int fd, const char *path)
{
    struct stat a, b;

    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
           a.st_dev == b.st_dev;
}

static struct storage_reader *follower_new(int fd, const char *tmp, const char *final)
{
    struct storage_reader *r = calloc(1, sizeof(*r));
    struct stat sb;

    if (r == NULL)
        return NULL;
    r->fd = fd;
    r->following = true;
    r->last_growth = time(NULL);
    r->legacy_mode = fstat(fd, &sb) == 0 && (sb.st_mode & 0777) == FS_COMMITTED_MODE;
    snprintf(r->final_path, sizeof(r->final_path), "%s", final);
    r->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->notify_fd >= 0 && inotify_add_watch(r->notify_fd, tmp,
                                               IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |
                                                   IN_MOVE_SELF | IN_DELETE_SELF) < 0) {
        close(r->notify_fd);
        r->notify_fd = -1;
    }
    return r;
}

/*
 * The writer of a download holds an exclusive flock on tmp/<key>.part for
 * its whole life; whoever finds it locked follows it. A lock won on a file
 * with content means its writer died: that file is never reused (its old
 * followers must see the death), a fresh one is made.
 */
static enum storage_err fs_writer_join(struct storage *st, const char *key,
                                       struct storage_writer **out, struct storage_reader **follow)
{
    struct fs_storage *fs = fs_of(st);
    char final[PATH_MAX], tmp[PATH_MAX];
    struct stat sb;
    int attempt;
    enum storage_err err = fs_path(fs, key, final, sizeof(final));

    if (err != STORAGE_OK)
        return err;
    if (!join_path(fs, key, tmp, sizeof(tmp)))
        return STORAGE_BAD_KEY;
    for (attempt = 0; attempt < 4; attempt++) {
        int fd;

        if (stat(final, &sb) == 0)
            return STORAGE_EXISTS;
        /* 0600 until the commit makes it FS_COMMITTED_MODE: see follow_wait. */
        fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return fs_errno("create", tmp);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            *follow = follower_new(fd, tmp, final);
            if (*follow == NULL) {
                close(fd);
                return STORAGE_NO_MEMORY;
            }
            return STORAGE_IN_PROGRESS;
        }
        if (!still_at(fd, tmp) || fstat(fd, &sb) < 0 || sb.st_size > 0 || stat(final, &sb) == 0) {
            /* Renamed away, left by a dead writer, or committed meanwhile: look again. */
            if (still_at(fd, tmp))
                unlink(tmp);
            close(fd);
            continue;
        }
        *out = calloc(1, sizeof(**out));
        if (*out == NULL) {
            unlink(tmp);
            close(fd);
            return STORAGE_NO_MEMORY;
        }
        (*out)->fs = fs;
        (*out)->fd = fd;
        snprintf((*out)->tmp_path, sizeof((*out)->tmp_path), "%s", tmp);
        return STORAGE_OK;
    }
    return stat(final, &sb) == 0 ? STORAGE_EXISTS : STORAGE_IO;
}

/*
 * Starts the writeback of each full step as the object grows (without
 * waiting for it), so that the fdatasync of the commit finds little left to
 * write: the commit, which holds up the ext4 journal for everyone, is then
 * short, and the dirty pages of a large download never pile up.
 */
static enum storage_err fs_writer_write(struct storage_writer *w, const void *buf, size_t len)
{
    if (!write_full(w->fd, buf, len))
        return fs_errno("write", w->tmp_path);
    w->written += (off_t)len;
    if (w->written - w->handed >= WRITEBACK_STEP) {
        /* Advice only: an error shows at the commit's fdatasync. */
        sync_file_range(w->fd, w->handed, w->written - w->handed, SYNC_FILE_RANGE_WRITE);
        w->handed = w->written;
    }
    return STORAGE_OK;
}

static void writer_free(struct storage_writer *w, bool remove_tmp)
{
    if (remove_tmp)
        unlink(w->tmp_path);
    close(w->fd);
    free(w);
}

/* Creates the directories leading to path (whose root exists). */
static bool make_parents(const struct fs_storage *fs, const char *path)
{
    char dir[PATH_MAX];
    size_t root_len = strlen(fs->root);
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    for (slash = strchr(dir + root_len + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return false;
        *slash = '/';
    }
    return true;
}

static enum storage_err fs_writer_commit(struct storage_writer *w, const char *key)
{
    char path[PATH_MAX];
    enum storage_err err = fs_path(w->fs, key, path, sizeof(path));

    if (w->resumed) { /* in place already; fs_move makes it durable */
        writer_free(w, false);
        return err;
    }
    if (err != STORAGE_OK)
        goto fail;
    /* Data first, name second: after a crash the name never points at a hole. */
    if (fdatasync(w->fd) < 0) {
        err = fs_errno("fsync", w->tmp_path);
        goto fail;
    }
    /* Readable by all (nginx sends it), and the mark of a verified,
     * committed download for its followers (follow_wait). */
    if (fchmod(w->fd, FS_COMMITTED_MODE) < 0) {
        err = fs_errno("chmod", w->tmp_path);
        goto fail;
    }
    if (rename(w->tmp_path, path) < 0) {
        if (errno != ENOENT || !make_parents(w->fs, path) || rename(w->tmp_path, path) < 0) {
            err = fs_errno("rename", path);
            err = err == STORAGE_NOT_FOUND ? STORAGE_IO : err;
            goto fail;
        }
    }
    writer_free(w, false);
    return STORAGE_OK;
fail:
    writer_free(w, true);
    return err;
}

static void fs_writer_abort(struct storage_writer *w)
{
    if (w->resumed && ftruncate(w->fd, w->start) < 0)
        oci_log(OCI_LOG_ERROR, "storage: cut %s back: %s", w->tmp_path, strerror(errno));
    writer_free(w, !w->resumed);
}

/*
 * The flock of a resumed file is its writer's for its whole life; the file
 * is locked, then checked to be still at its name, since a move may have
 * taken the file away between the open and the lock.
 */
static enum storage_err fs_writer_resume(struct storage *st, const char *key, uint64_t *size,
                                         struct storage_writer **out)
{
    const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
    struct storage_writer *w = calloc(1, sizeof(*w));
    struct stat sb;
    enum storage_err err =
        w == NULL ? STORAGE_NO_MEMORY : fs_path(fs_of(st), key, w->tmp_path, sizeof(w->tmp_path));

    if (err != STORAGE_OK) {
        free(w);
        return err;
    }
    w->fs = fs_of(st);
    w->resumed = true;
    w->fd = open(w->tmp_path, flags, FS_COMMITTED_MODE);
    if (w->fd < 0 && errno == ENOENT && make_parents(w->fs, w->tmp_path))
        w->fd = open(w->tmp_path, flags, FS_COMMITTED_MODE);
    if (w->fd < 0) {
        err = fs_errno("create", w->tmp_path);
        free(w);
        return err == STORAGE_NOT_FOUND ? STORAGE_IO : err;
    }
    if (flock(w->fd, LOCK_EX | LOCK_NB) < 0 || !still_at(w->fd, w->tmp_path) ||
        fstat(w->fd, &sb) < 0) {
        close(w->fd);
        free(w);
        return STORAGE_IN_PROGRESS;
    }
    w->start = w->written = w->handed = sb.st_size;
    *size = (uint64_t)sb.st_size;
    *out = w;
    return STORAGE_OK;
}

static enum storage_err fs_move(struct storage *st, const char *from, const char *to)
{
    char src[PATH_MAX], dst[PATH_MAX];
    enum storage_err err = fs_path(fs_of(st), from, src, sizeof(src));
    int fd;

    if (err == STORAGE_OK)
        err = fs_path(fs_of(st), to, dst, sizeof(dst));
    if (err != STORAGE_OK)
        return err;
    /* Data first, name second, as in fs_writer_commit. */
    fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fs_errno("open", src);
    if (fdatasync(fd) < 0) {
        err = fs_errno("fsync", src);
        close(fd);
        return err;
    }
    close(fd);
    if (rename(src, dst) < 0 &&
        (errno != ENOENT || !make_parents(fs_of(st), dst) || rename(src, dst) < 0))
        return fs_errno("rename", dst);
    return STORAGE_OK;
}

static enum storage_err fs_put_small(struct storage *st, const char *key, const void *buf,
                                     size_t len)
{
    struct storage_writer *w;
    enum storage_err err = fs_writer_open(st, &w);

    if (err != STORAGE_OK)
        return err;
    err = fs_writer_write(w, buf, len);
    if (err != STORAGE_OK) {
        fs_writer_abort(w);
        return err;
    }
    return fs_writer_commit(w, key);
}

static enum storage_err fs_touch(struct storage *st, const char *key)
{
    char path[PATH_MAX];
    enum storage_err err = fs_path(fs_of(st), key, path, sizeof(path));

    if (err != STORAGE_OK)
        return err;
    if (utimensat(AT_FDCWD, path, NULL, 0) < 0)
        return fs_errno("touch", path);
    return STORAGE_OK;
}

static enum storage_err fs_remove(struct storage *st, const char *key)
{
    char path[PATH_MAX];
    enum storage_err err = fs_path(fs_of(st), key, path, sizeof(path));

    if (err != STORAGE_OK)
        return err;
    if (unlink(path) < 0)
        return fs_errno("remove", path);
    return STORAGE_OK;
}

/*
 * Moves the file aside before deciding, so that a request using it in the
 * meantime either marked it before the move (keep sees it and it is put
 * back) or finds it gone (and fetches it again): never a served object
 * that disappears after its hit was decided on a fresh mark.
 *
 * The removal is an unlink: a file that nginx (or a follower) has open
 * keeps its inode and blocks until the last descriptor closes, so a hit
 * being sent while its object is evicted is still sent whole; the space
 * comes back when that send ends.
 */
static enum storage_err fs_remove_unless(struct storage *st, const char *key, storage_keep_fn keep,
                                         void *arg)
{
    struct fs_storage *fs = fs_of(st);
    char path[PATH_MAX], aside[PATH_MAX];
    struct stat sb;
    enum storage_err err = fs_path(fs, key, path, sizeof(path));

    if (err != STORAGE_OK)
        return err;
    /* The process and thread name the aside file: removers never share one. */
    if (snprintf(aside, sizeof(aside), "%s/" FS_TMP_DIR "/stale.%ld.%lu", fs->root, (long)getpid(),
                 (unsigned long)pthread_self()) >= (int)sizeof(aside))
        return STORAGE_BAD_KEY;
    if (rename(path, aside) < 0)
        return fs_errno("move aside", path);
    if (stat(aside, &sb) == 0) {
        struct storage_info info = {(uint64_t)sb.st_size, sb.st_mtime};

        if (keep(arg, key, &info)) {
            rename(aside, path); /* used meanwhile: it stays */
            return STORAGE_NOT_FOUND;
        }
    }
    unlink(aside);
    return STORAGE_OK;
}

static enum storage_err fs_remove_stale(struct storage *st, const char *key, time_t cutoff)
{
    return fs_remove_unless(st, key, storage_keep_if_touched_since, &cutoff);
}

/* Walks dir (the path of key prefix rel) depth first, reporting regular files. */
static enum storage_err list_dir(const char *dir, const char *rel, storage_list_fn fn, void *arg,
                                 bool *stop)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    enum storage_err err = STORAGE_OK;

    if (d == NULL)
        return errno == ENOENT ? STORAGE_OK : fs_errno("opendir", dir);
    while (!*stop && err == STORAGE_OK && (de = readdir(d)) != NULL) {
        char path[PATH_MAX], key[PATH_MAX];
        struct stat sb;

        if (de->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
            snprintf(key, sizeof(key), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
                (int)sizeof(key))
            continue;
        if (lstat(path, &sb) < 0)
            continue; /* removed meanwhile */
        if (S_ISDIR(sb.st_mode)) {
            err = list_dir(path, key, fn, arg, stop);
        } else if (S_ISREG(sb.st_mode)) {
            struct storage_info info = {(uint64_t)sb.st_size, sb.st_mtime};
            *stop = !fn(arg, key, &info);
        }
    }
    closedir(d);
    return err;
}

static enum storage_err fs_list(struct storage *st, const char *prefix, storage_list_fn fn,
                                void *arg)
{
    char dir[PATH_MAX], rel[PATH_MAX];
    bool stop = false;
    size_t len = strlen(prefix);
    enum storage_err err;

    /* The prefix names a folder: "manifests/" lists everything below it. */
    if (len == 0 || len >= sizeof(rel) || prefix[len - 1] != '/')
        return STORAGE_BAD_KEY;
    memcpy(rel, prefix, len - 1);
    rel[len - 1] = '\0';
    err = fs_path(fs_of(st), rel, dir, sizeof(dir));
    if (err != STORAGE_OK)
        return err;
    return list_dir(dir, rel, fn, arg, &stop);
}

static enum storage_err fs_locate(struct storage *st, const char *key, struct storage_location *loc)
{
    loc->url[0] = '\0';
    return fs_path(fs_of(st), key, loc->path, sizeof(loc->path));
}

static void fs_destroy(struct storage *st)
{
    free(fs_of(st));
}

static void fs_prune(struct storage *st, const char *prefix)
{
    char rel[PATH_MAX], dir[PATH_MAX];
    size_t len = strlen(prefix);

    if (len == 0 || len >= sizeof(rel) || prefix[len - 1] != '/')
        return;
    memcpy(rel, prefix, len - 1);
    rel[len - 1] = '\0';
    if (fs_path(fs_of(st), rel, dir, sizeof(dir)) == STORAGE_OK)
        rmdir(dir); /* not empty (written meanwhile) or gone: it stays as it is */
}

static const struct storage_ops fs_ops = {
    .stat = fs_stat,
    .read_small = fs_read_small,
    .reader_open = fs_reader_open,
    .reader_read = fs_reader_read,
    .reader_file = fs_reader_file,
    .reader_close = fs_reader_close,
    .put_small = fs_put_small,
    .writer_open = fs_writer_open,
    .writer_join = fs_writer_join,
    .writer_write = fs_writer_write,
    .writer_commit = fs_writer_commit,
    .writer_abort = fs_writer_abort,
    .writer_resume = fs_writer_resume,
    .move = fs_move,
    .touch = fs_touch,
    .remove = fs_remove,
    .remove_stale = fs_remove_stale,
    .remove_unless = fs_remove_unless,
    .list = fs_list,
    .prune = fs_prune,
    .locate = fs_locate,
    .destroy = fs_destroy,
};

/* Removes temporary files that no live writer holds (left by a crash). */
static void fs_clean_tmp(const char *tmp_dir)
{
    DIR *d = opendir(tmp_dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        int fd;

        if (de->d_name[0] == '.')
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            oci_log(OCI_LOG_WARN, "storage: removing leftover %s/%s", tmp_dir, de->d_name);
            unlinkat(dirfd(d), de->d_name, 0);
        }
        close(fd);
    }
    closedir(d);
}

struct storage *storage_fs_open(const char *root, char *err, size_t errlen)
{
    struct fs_storage *fs;
    char tmp_dir[PATH_MAX];

    if (mkdir(root, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create cache root %s: %s", root, strerror(errno));
        return NULL;
    }
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fs->base.ops = &fs_ops;
    if (realpath(root, fs->root) == NULL) {
        snprintf(err, errlen, "cache root %s: %s", root, strerror(errno));
        goto fail;
    }
    if (snprintf(tmp_dir, sizeof(tmp_dir), "%s/" FS_TMP_DIR, fs->root) >= (int)sizeof(tmp_dir)) {
        snprintf(err, errlen, "cache root %s: path too long", root);
        goto fail;
    }
    if (mkdir(tmp_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", tmp_dir, strerror(errno));
        goto fail;
    }
    if (access(tmp_dir, W_OK) < 0) {
        snprintf(err, errlen, "cache directory %s is not writable: %s", tmp_dir, strerror(errno));
        goto fail;
    }
    fs_clean_tmp(tmp_dir);
    return &fs->base;
fail:
    free(fs);
    return NULL;
}
