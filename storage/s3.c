/*
 * s3.c - the S3 backend (see s3.h): the storage operations on objects
 * under a key prefix, spooled writers, presigned URLs, and the
 * configuration. Requests go through storage/s3_http.c, large uploads
 * through storage/s3_multipart.c, listings through storage/s3_list.c.
 *
 * A streaming reader runs its own transfer in a curl multi handle, pulled
 * by reader_read, so no thread is needed and no more than a buffer is held
 * in memory.
 *
 * Single flight on one host: concurrent misses of one object, in any
 * process on the same endpoint, bucket and prefix, make one download and
 * one upload. The download grows in a spool directory shared through
 * storage/fs.c, whose writer_join the S3 writer joins: followers stream the
 * growing file and end when it is committed there (verified); the leader
 * then uploads the spool file and removes it. A request that comes between
 * that commit and the end of the upload reads the spool file, whole. The
 * upload runs on a thread of its own (up to UPLOADS_IN_BACKGROUND at once,
 * then in the committing thread), so the request that fetched the object
 * ends when its client has every byte: a client asking again on the same
 * connection (a puller's next layer) waits for no upload. The key's lease
 * is held until the upload ends, so other replicas wait for it as before;
 * destroy waits for the uploads still running.
 *
 * Single flight across hosts sharing the bucket: a host's leader takes the
 * bucket's lease on the key (storage/s3_lease.h) before it fetches. When
 * another replica holds it, the leader waits for that replica's commit
 * (HEADs of the object, with a backoff, for as long as the holder renews
 * its lease) and then reads the committed object from S3, relaying it into
 * its spool file so that this host's other requests follow it as they
 * would a download: one wait per host. S3 has no readable partial objects,
 * so nothing is streamed before the commit. When the lease expires or is
 * given back with no object (its holder died or failed), the wait fails
 * before any byte was read: the request joins again and takes the lease.
 *
 * Object times: every write sets x-amz-meta-mtime (the responder's clock,
 * as the filesystem's mtime); touch rewrites it with a copy onto itself;
 * objects without it fall back to Last-Modified.
 */
#include "autoconfig.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "storage/fs.h"
#include "storage/s3.h"
#include "storage/s3_http.h"
#include "storage/s3_lease.h"
#include "storage/s3_list.h"
#include "storage/s3_multipart.h"
#include "storage/sigv4.h"

#define READER_BUF     (256 * 1024)
#define TOUCH_COPY_MAX (64ULL * 1024 * 1024)
/* Uploads of fetched objects running at once after their requests ended. */
#define UPLOADS_IN_BACKGROUND 16
/* A spool object older than this is a crash's leftover: removed at open. */
#define SPOOL_LEFTOVER_AGE (60 * 60)
/* Waiting for another replica's commit: looks at the object this often, growing. */
#define WAIT_PAUSE_FIRST_MS 100
#define WAIT_PAUSE_MAX_MS   1000
/* What a request that stops reading an object reads at a time for its host's followers. */
#define FOLLOW_DRAIN (128 * 1024)

struct storage_reader {
    /* A follower of a download on this host reads the spool: its reader
     * (of storage/fs.c's type, never looked into here), or NULL. */
    struct storage *spool;
    void *spool_reader;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    struct s3_resp resp;
    char *buf;
    size_t start, end;
    bool paused, done;
    CURLcode result;
    /* Waiting for another replica's commit of key (owned), then reading
     * it: this host's leader, whose spool writer relay (NULL once ended)
     * the host's other requests follow. */
    struct s3 *s3;
    char *key;
    bool waiting;
    struct storage_writer *relay;
    uint64_t length, relayed;
};

struct storage_writer {
    struct s3 *s3;
    int fd; /* an unshared write's unnamed spool file, or -1 */
    /* A shared write: the spool's writer (of storage/fs.c's type, never
     * looked into here), or NULL. */
    void *spool_writer;
    struct storage_lease *lease; /* the bucket's lease on the key, or NULL */
    uint64_t size;
};

static struct s3 *s3_of(struct storage *st)
{
    return (struct s3 *)st;
}

static time_t resp_mtime(const struct s3_resp *resp)
{
    return resp->meta_mtime > 0 ? resp->meta_mtime : resp->last_modified;
}

/* ---- reading ------------------------------------------------------------ */

static enum storage_err s3_stat(struct storage *st, const char *key, struct storage_info *info)
{
    struct s3_req req = s3_http_req("HEAD", key);
    struct s3_resp resp = {0};
    enum storage_err err = s3_http_call(s3_of(st), &req, &resp);

    if (err == STORAGE_OK) {
        info->size = resp.length;
        info->mtime = resp_mtime(&resp);
    }
    s3_http_resp_free(&resp);
    return err;
}

static enum storage_err s3_read_small(struct storage *st, const char *key, size_t max, char **buf,
                                      size_t *len, struct storage_info *info)
{
    struct s3_req req = s3_http_req("GET", key);
    struct s3_resp resp = {0};
    enum storage_err err;

    req.max_body = max;
    err = s3_http_call(s3_of(st), &req, &resp);
    if (err == STORAGE_OK && (resp.too_large || (resp.have_length && resp.length > max)))
        err = STORAGE_TOO_LARGE;
    if (err == STORAGE_OK && resp.body == NULL && (resp.body = strdup("")) == NULL)
        err = STORAGE_NO_MEMORY;
    if (err == STORAGE_OK) {
        if (info != NULL) {
            info->size = resp.len;
            info->mtime = resp_mtime(&resp);
        }
        *buf = resp.body;
        *len = resp.len;
        resp.body = NULL;
    }
    s3_http_resp_free(&resp);
    return err;
}

/* The streaming reader's write callback: buffer, or pause when full. */
static size_t reader_on_body(char *data, size_t size, size_t n, void *arg)
{
    struct storage_reader *r = arg;
    size_t len = size * n;

    if (r->start > 0 && r->end + len > READER_BUF) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end + len > READER_BUF) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    memcpy(r->buf + r->end, data, len);
    r->end += len;
    return len;
}

/* Moves the transfer along; waits up to a second when there is nothing to do. */
static void reader_pump(struct storage_reader *r)
{
    int running = 0, left;
    CURLMsg *msg;

    if (r->paused) {
        r->paused = false;
        curl_easy_pause(r->easy, CURLPAUSE_CONT);
    }
    curl_multi_perform(r->multi, &running);
    while ((msg = curl_multi_info_read(r->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            r->done = true;
            r->result = msg->data.result;
        }
    }
    if (!r->done && !r->paused && r->start == r->end)
        curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
}

static void bucket_close(struct storage_reader *r);

static void s3_reader_close(struct storage_reader *r)
{
    if (r->spool_reader != NULL) {
        r->spool->ops->reader_close(r->spool_reader);
        free(r);
        return;
    }
    if (r->s3 != NULL)
        bucket_close(r);
    if (r->multi != NULL && r->easy != NULL)
        curl_multi_remove_handle(r->multi, r->easy);
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    if (r->multi != NULL)
        curl_multi_cleanup(r->multi);
    curl_slist_free_all(r->headers);
    s3_http_resp_free(&r->resp);
    free(r->buf);
    free(r);
}

/* Starts the GET in a multi handle. */
static enum storage_err reader_start(struct s3 *s, struct storage_reader *r, const char *key)
{
    struct s3_req req = s3_http_req("GET", key);
    char *path = s3_http_object_path(s, key), *url = NULL;
    enum storage_err err = STORAGE_NO_MEMORY;

    if (path == NULL)
        return storage_key_valid(key) ? STORAGE_NO_MEMORY : STORAGE_BAD_KEY;
    r->buf = malloc(READER_BUF);
    r->multi = curl_multi_init();
    r->easy = curl_easy_init();
    url = s3_http_request_url(s, path, NULL);
    if (r->buf == NULL || r->multi == NULL || r->easy == NULL || url == NULL ||
        !s3_http_sign_headers(s, &req, path, &r->headers))
        goto done;
    s3_http_set_common(s, r->easy, url, r->headers, &r->resp);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, reader_on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    if (curl_multi_add_handle(r->multi, r->easy) == CURLM_OK)
        err = STORAGE_OK;
done:
    free(path);
    free(url);
    return err;
}

/* Starts the GET of key and waits for its headers: a 2xx, or the error. */
static enum storage_err reader_begin(struct s3 *s, struct storage_reader *r, const char *key)
{
    struct s3_req req = s3_http_req("GET", key);
    enum storage_err err = reader_start(s, r, key);

    while (err == STORAGE_OK && !r->resp.headers_done && !r->done)
        reader_pump(r);
    if (err == STORAGE_OK && r->done && r->result != CURLE_OK) {
        oci_log(OCI_LOG_ERROR, "s3: GET %s: %s", key, curl_easy_strerror(r->result));
        err = STORAGE_IO;
    }
    if (err == STORAGE_OK) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->resp.status);
        err = s3_http_status_err(&req, &r->resp);
    }
    return err;
}

static enum storage_err s3_reader_open(struct storage *st, const char *key,
                                       struct storage_reader **out)
{
    struct storage_reader *r = calloc(1, sizeof(*r));
    enum storage_err err;

    if (r == NULL)
        return STORAGE_NO_MEMORY;
    err = reader_begin(s3_of(st), r, key);
    if (err != STORAGE_OK) {
        s3_reader_close(r);
        return err;
    }
    *out = r;
    return STORAGE_OK;
}

/* The GET's next bytes. */
static enum storage_err stream_read(struct storage_reader *r, void *buf, size_t len, size_t *got)
{
    size_t n;

    while (r->start == r->end && !r->done)
        reader_pump(r);
    if (r->start == r->end) {
        if (r->result != CURLE_OK) {
            oci_log(OCI_LOG_ERROR, "s3: reading an object: %s", curl_easy_strerror(r->result));
            return STORAGE_IO;
        }
        *got = 0;
        return STORAGE_OK;
    }
    n = r->end - r->start < len ? r->end - r->start : len;
    memcpy(buf, r->buf + r->start, n);
    r->start += n;
    *got = n;
    return STORAGE_OK;
}

static enum storage_err bucket_read(struct storage_reader *r, void *buf, size_t len, size_t *got);

static enum storage_err s3_reader_read(struct storage_reader *r, void *buf, size_t len, size_t *got)
{
    if (r->spool_reader != NULL)
        return r->spool->ops->reader_read(r->spool_reader, buf, len, got);
    if (r->s3 != NULL)
        return bucket_read(r, buf, len, got);
    return stream_read(r, buf, len, got);
}

/* ---- writing ------------------------------------------------------------ */

static enum storage_err put_object(struct s3 *s, const char *key, const char *mem, int fd,
                                   uint64_t length, const char *hash)
{
    struct s3_req req = s3_http_req("PUT", key);
    struct s3_resp resp = {0};
    char mtime[32];
    enum storage_err err;

    s3_http_now_header(mtime, sizeof(mtime));
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-meta-mtime", mtime};
    req.body = mem;
    req.fd = fd;
    req.length = length;
    req.payload_hash = hash;
    err = s3_http_call(s, &req, &resp);
    s3_http_resp_free(&resp);
    return err;
}

static enum storage_err s3_put_small(struct storage *st, const char *key, const void *buf,
                                     size_t len)
{
    char hash[SIGV4_HEX_LEN + 1];

    sigv4_sha256_hex(buf, len, hash);
    return put_object(s3_of(st), key, len ? buf : "", -1, len, hash);
}

/* The spool directory: TMPDIR, else /tmp. */
static const char *spool_dir(void)
{
    const char *dir = getenv("TMPDIR");

    return dir != NULL && *dir != '\0' ? dir : "/tmp";
}

static enum storage_err s3_writer_open(struct storage *st, struct storage_writer **out)
{
    struct storage_writer *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return STORAGE_NO_MEMORY;
    w->s3 = s3_of(st);
    /* Unnamed: the spool disappears with the writer, even after a crash. */
    w->fd = open(spool_dir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        oci_log(OCI_LOG_ERROR, "s3: cannot create a spool file in %s: %s", spool_dir(),
                strerror(errno));
        free(w);
        return STORAGE_IO;
    }
    *out = w;
    return STORAGE_OK;
}

/* A reader of ours over a reader of the spool's; NULL when out of memory (closes it). */
static struct storage_reader *spool_follower(struct s3 *s, void *spool_reader)
{
    struct storage_reader *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        s->spool->ops->reader_close(spool_reader);
        return NULL;
    }
    r->spool = s->spool;
    r->spool_reader = spool_reader;
    return r;
}

static enum storage_err s3_writer_write(struct storage_writer *w, const void *buf, size_t len)
{
    const char *p = buf;

    if (w->spool_writer != NULL) {
        enum storage_err err = w->s3->spool->ops->writer_write(w->spool_writer, buf, len);

        w->size += err == STORAGE_OK ? len : 0;
        return err;
    }
    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            oci_log(OCI_LOG_ERROR, "s3: writing the spool file: %s", strerror(errno));
            return STORAGE_IO;
        }
        p += n;
        len -= (size_t)n;
        w->size += (uint64_t)n;
    }
    return STORAGE_OK;
}

/* Frees the writer; its lease, if any, is given back (after the commit, if one). */
static void writer_free(struct storage_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    s3_lease_release(w->lease);
    free(w);
}

/* Uploads size bytes of fd under key: one PUT, or a multipart upload above the threshold. */
static enum storage_err upload(struct s3 *s, const char *key, int fd, uint64_t size)
{
    char hash[SIGV4_HEX_LEN + 1];

    if (size > s->threshold)
        return s3_multipart_upload(s, key, fd, size);
    if (!s3_http_file_sha256(fd, 0, size, hash))
        return STORAGE_IO;
    return put_object(s, key, NULL, fd, size, hash);
}

/* Uploads the committed spool file of key and removes it. */
static enum storage_err upload_spooled(struct storage_writer *w, const char *key)
{
    struct storage *spool = w->s3->spool;
    struct storage_location loc;
    enum storage_err err = spool->ops->locate(spool, key, &loc);
    int fd = err == STORAGE_OK ? open(loc.path, O_RDONLY | O_CLOEXEC) : -1;

    if (fd < 0) {
        oci_log(OCI_LOG_ERROR, "s3: cannot reopen the spool file of %s: %s", key, strerror(errno));
        err = STORAGE_IO;
    } else {
        err = upload(w->s3, key, fd, w->size);
        close(fd);
    }
    /* Readers that opened it meanwhile keep their descriptors. */
    spool->ops->remove(spool, key);
    return err;
}

/* A shared write's upload after its commit: the writer and a copy of its key. */
struct upload_job {
    struct storage_writer *w;
    char *key;
};

static void upload_finished(struct s3 *s)
{
    pthread_mutex_lock(&s->uploads_lock);
    s->uploads_running--;
    if (s->uploads_running == 0)
        pthread_cond_broadcast(&s->uploads_done);
    pthread_mutex_unlock(&s->uploads_lock);
}

static void *upload_in_background(void *arg)
{
    struct upload_job *job = arg;
    struct s3 *s = job->w->s3;
    enum storage_err err = upload_spooled(job->w, job->key);

    if (err != STORAGE_OK)
        oci_log(OCI_LOG_ERROR, "s3: cannot store %s: %s", job->key, storage_strerror(err));
    writer_free(job->w); /* gives the lease back */
    free(job->key);
    free(job);
    upload_finished(s);
    return NULL;
}

/* Counts an upload about to go to a thread; false when UPLOADS_IN_BACKGROUND run. */
static bool upload_slot(struct s3 *s)
{
    bool taken;

    pthread_mutex_lock(&s->uploads_lock);
    taken = s->uploads_running < UPLOADS_IN_BACKGROUND;
    if (taken)
        s->uploads_running++;
    pthread_mutex_unlock(&s->uploads_lock);
    return taken;
}

/* Hands w's upload of key to a thread of its own, which frees w; false when it cannot. */
static bool upload_later(struct storage_writer *w, const char *key)
{
    struct upload_job *job = calloc(1, sizeof(*job));
    pthread_attr_t attr;
    pthread_t thread;
    bool started = false;

    if (job == NULL || (job->key = strdup(key)) == NULL || !upload_slot(w->s3))
        goto done;
    job->w = w;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, upload_in_background, job) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started)
        upload_finished(w->s3);
done:
    if (!started && job != NULL) {
        free(job->key);
        free(job);
    }
    return started;
}

/*
 * A shared write: committed in the spool first, which ends the followers'
 * streams (the bytes are verified) and serves this host's readers, then
 * uploaded from there (later, when a thread takes it) and removed. True
 * when the upload went to a thread, which frees w.
 */
static bool commit_shared(struct storage_writer *w, const char *key, enum storage_err *err)
{
    struct storage *spool = w->s3->spool;

    *err = spool->ops->writer_commit(w->spool_writer, key);
    if (*err != STORAGE_OK)
        return false;
    if (upload_later(w, key))
        return true;
    *err = upload_spooled(w, key);
    return false;
}

/*
 * A multipart upload is covered by the lease of its key, so that no
 * replica's cleanup takes it for a dead writer's (s3_multipart_reap). A
 * writer that fetched holds it already; others (pushes, writers working
 * alone) take it now. Held by another writer of the same key: its lease
 * covers this upload too while it lasts.
 */
static void cover_upload(struct storage_writer *w, const char *key)
{
    if (w->lease == NULL && w->size > w->s3->threshold && s3_lease_ready(w->s3) &&
        s3_lease_acquire(w->s3, key, 0, &w->lease) != STORAGE_OK)
        w->lease = NULL;
}

static enum storage_err s3_writer_commit(struct storage_writer *w, const char *key)
{
    enum storage_err err;

    if (!storage_key_valid(key)) {
        err = STORAGE_BAD_KEY;
        if (w->spool_writer != NULL)
            w->s3->spool->ops->writer_abort(w->spool_writer);
    } else {
        cover_upload(w, key);
        if (w->spool_writer == NULL)
            err = upload(w->s3, key, w->fd, w->size);
        else if (commit_shared(w, key, &err))
            return STORAGE_OK; /* the upload's thread frees w */
    }
    writer_free(w);
    return err;
}

static void s3_writer_abort(struct storage_writer *w)
{
    if (w->spool_writer != NULL)
        w->s3->spool->ops->writer_abort(w->spool_writer);
    writer_free(w);
}

/* ---- single flight across hosts ---------------------------------------- */

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&t, NULL);
}

/*
 * Waits until another replica's commit of r->key is in S3, for as long as
 * that replica holds its lease, and starts reading it. STORAGE_ABORTED when
 * the lease ended with no object.
 */
static enum storage_err bucket_wait(struct storage_reader *r)
{
    struct storage *st = &r->s3->base;
    struct storage_info info;
    long pause = WAIT_PAUSE_FIRST_MS;
    enum storage_err err;

    while ((err = s3_stat(st, r->key, &info)) == STORAGE_NOT_FOUND) {
        err = s3_lease_held(r->s3, r->key);
        if (err == STORAGE_NOT_FOUND) {
            /* Given back or expired: after a commit, or without one? */
            err = s3_stat(st, r->key, &info);
            if (err != STORAGE_NOT_FOUND)
                break;
            oci_log(OCI_LOG_WARN,
                    "s3: the replica fetching %s stopped without storing it: fetching it here",
                    r->key);
            return STORAGE_ABORTED;
        }
        if (err != STORAGE_OK)
            return err;
        pause_ms(pause);
        pause = pause * 2 < WAIT_PAUSE_MAX_MS ? pause * 2 : WAIT_PAUSE_MAX_MS;
    }
    if (err != STORAGE_OK)
        return err;
    r->length = info.size;
    r->waiting = false;
    return reader_begin(r->s3, r, r->key);
}

/*
 * Ends the relay: its spool file committed (the bytes are those another
 * replica verified and stored; nothing to upload) and removed, so the
 * host's followers end whole; or aborted, and they fail or join again.
 */
static void relay_end(struct storage_reader *r, bool whole)
{
    struct storage_writer *w = r->relay;
    struct storage *spool = r->s3->spool;

    if (w == NULL)
        return;
    r->relay = NULL;
    if (whole && spool->ops->writer_commit(w->spool_writer, r->key) == STORAGE_OK)
        spool->ops->remove(spool, r->key);
    else if (!whole)
        spool->ops->writer_abort(w->spool_writer);
    writer_free(w);
}

static enum storage_err bucket_read(struct storage_reader *r, void *buf, size_t len, size_t *got)
{
    enum storage_err err = r->waiting ? bucket_wait(r) : STORAGE_OK;

    if (err == STORAGE_OK)
        err = stream_read(r, buf, len, got);
    if (err == STORAGE_OK && *got == 0 && r->relayed != r->length) {
        oci_log(OCI_LOG_ERROR, "s3: %s ended after %llu of %llu bytes", r->key,
                (unsigned long long)r->relayed, (unsigned long long)r->length);
        err = STORAGE_IO;
    }
    if (err != STORAGE_OK) {
        relay_end(r, false);
        return err;
    }
    r->relayed += *got;
    if (*got == 0)
        relay_end(r, true);
    else if (r->relay != NULL && s3_writer_write(r->relay, buf, *got) != STORAGE_OK)
        relay_end(r, false); /* the host's followers fail; this request goes on */
    return STORAGE_OK;
}

/* A request that stops reading: the host's followers still get the object. */
static void bucket_close(struct storage_reader *r)
{
    char *buf = r->relay != NULL && !r->waiting ? malloc(FOLLOW_DRAIN) : NULL;
    size_t got = 1;

    while (buf != NULL && r->relay != NULL && got > 0 &&
           bucket_read(r, buf, FOLLOW_DRAIN, &got) == STORAGE_OK)
        ;
    free(buf);
    relay_end(r, false);
    free(r->key);
}

/*
 * The host's leader w of key, which holds the host's spool writer, takes the
 * bucket's lease on key. Ours: STORAGE_OK, fetch (and then the lease is
 * given back by writer_free, after the commit). Another replica's: follow
 * it (*follow owns w). Committed meanwhile: STORAGE_IN_PROGRESS too, *follow
 * reading the stored object. Without leases, or S3 failing: STORAGE_OK, alone.
 */
static enum storage_err bucket_join(struct s3 *s, const char *key, struct storage_writer *w,
                                    struct storage_writer **out, struct storage_reader **follow)
{
    struct storage_info info;
    struct storage_reader *r;
    enum storage_err err = s3_lease_ready(s) ? s3_lease_acquire(s, key, 0, &w->lease) : STORAGE_IO;
    bool stored = err == STORAGE_OK && s3_stat(&s->base, key, &info) == STORAGE_OK;

    if (stored) {
        /* Committed by another replica meanwhile. Requests of this host may
         * follow our spool writer already: it relays the object to them as
         * a wait that is over at once would (an abort would fail them). */
        s3_lease_release(w->lease);
        w->lease = NULL;
    } else if (err != STORAGE_IN_PROGRESS) {
        *out = w;
        return STORAGE_OK;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->key = strdup(key)) == NULL) {
        free(r);
        s3_writer_abort(w);
        return STORAGE_NO_MEMORY;
    }
    oci_log(OCI_LOG_INFO,
            stored ? "s3: another replica stored %s meanwhile: relaying it"
                   : "s3: another replica is fetching %s: waiting for it",
            key);
    r->s3 = s;
    r->waiting = true;
    r->relay = w;
    *follow = r;
    return STORAGE_IN_PROGRESS;
}

/*
 * Joins the download of key on this host (see the top of this file), and
 * then, as the host's leader, across the hosts sharing the bucket. The
 * spool answers EXISTS between its commit and the end of the upload: the
 * committed spool file is then followed as it is, whole and verified.
 */
static enum storage_err s3_writer_join(struct storage *st, const char *key,
                                       struct storage_writer **out, struct storage_reader **follow)
{
    struct s3 *s = s3_of(st);
    struct storage_writer *shared = NULL, *w;
    struct storage_reader *spool_reader = NULL;
    enum storage_err err;

    if (s->spool == NULL)
        return s3_writer_open(st, out);
    err = s->spool->ops->writer_join(s->spool, key, &shared, &spool_reader);
    if (err == STORAGE_EXISTS) {
        err = s->spool->ops->reader_open(s->spool, key, &spool_reader);
        if (err == STORAGE_NOT_FOUND)
            return STORAGE_EXISTS; /* uploaded and removed meanwhile: in S3 now */
        err = err == STORAGE_OK ? STORAGE_IN_PROGRESS : err;
    }
    if (err == STORAGE_IN_PROGRESS) {
        *follow = spool_follower(s, spool_reader);
        return *follow != NULL ? STORAGE_IN_PROGRESS : STORAGE_NO_MEMORY;
    }
    if (err != STORAGE_OK)
        return s3_writer_open(st, out); /* the spool is in trouble: a copy of our own */
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        s->spool->ops->writer_abort(shared);
        return STORAGE_NO_MEMORY;
    }
    w->s3 = s;
    w->fd = -1;
    w->spool_writer = shared;
    return bucket_join(s, key, w, out, follow);
}

static enum storage_err s3_lease_take(struct storage *st, const char *name, long ttl,
                                      struct storage_lease **out)
{
    struct s3 *s = s3_of(st);

    *out = NULL;
    if (!s3_lease_ready(s))
        return STORAGE_OK; /* no leases: every replica works alone, as ever */
    return s3_lease_acquire(s, name, ttl, out);
}

/* ---- metadata, removal, listing ---------------------------------------- */

/*
 * A copy onto itself with a new x-amz-meta-mtime. Objects above
 * TOUCH_COPY_MAX are not copied (a server-side copy of gigabytes per hit
 * costs too much): their time stays that of their upload.
 */
static enum storage_err s3_touch(struct storage *st, const char *key)
{
    struct s3 *s = s3_of(st);
    struct storage_info info;
    struct s3_req req = s3_http_req("PUT", key);
    struct s3_resp resp = {0};
    char mtime[32], *source = NULL, *enc = NULL;
    enum storage_err err = s3_stat(st, key, &info);
    size_t len;

    if (err != STORAGE_OK || info.size > TOUCH_COPY_MAX)
        return err;
    len = strlen(s->bucket) + strlen(s->prefix) + strlen(key) + 3;
    if ((source = malloc(len)) == NULL)
        return STORAGE_NO_MEMORY;
    snprintf(source, len, "/%s/%s%s", s->bucket, s->prefix, key);
    if ((enc = sigv4_uri_encode(source, true)) == NULL) {
        err = STORAGE_NO_MEMORY;
        goto done;
    }
    s3_http_now_header(mtime, sizeof(mtime));
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-copy-source", enc};
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-metadata-directive", "REPLACE"};
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-meta-mtime", mtime};
    req.body = "";
    err = s3_http_call(s, &req, &resp);
done:
    free(source);
    free(enc);
    s3_http_resp_free(&resp);
    return err;
}

static enum storage_err s3_remove(struct storage *st, const char *key)
{
    struct s3_req req = s3_http_req("DELETE", key);
    struct s3_resp resp = {0};
    enum storage_err err = s3_http_call(s3_of(st), &req, &resp);

    s3_http_resp_free(&resp);
    return err;
}

/*
 * HEAD, ask, DELETE. S3 has no conditional delete, so a use between the
 * HEAD and the DELETE loses: the object is fetched again on its next
 * request, which costs a download and breaks nothing.
 */
static enum storage_err s3_remove_unless(struct storage *st, const char *key, storage_keep_fn keep,
                                         void *arg)
{
    struct storage_info info;
    enum storage_err err = s3_stat(st, key, &info);

    if (err != STORAGE_OK)
        return err;
    if (keep(arg, key, &info))
        return STORAGE_NOT_FOUND;
    return s3_remove(st, key);
}

static enum storage_err s3_remove_stale(struct storage *st, const char *key, time_t cutoff)
{
    return s3_remove_unless(st, key, storage_keep_if_touched_since, &cutoff);
}

/* A presigned GET URL: the front server or the client fetches it, not us. */
static enum storage_err s3_locate(struct storage *st, const char *key, struct storage_location *loc)
{
    struct s3 *s = s3_of(st);
    struct sigv4_credentials cred = s3_http_credentials(s);
    char date[SIGV4_DATE_LEN + 1], *path = s3_http_object_path(s, key), *query = NULL;
    char *token = NULL, *extra = NULL;
    enum storage_err err = STORAGE_NO_MEMORY;
    int n;

    loc->path[0] = '\0';
    loc->url[0] = '\0';
    if (path == NULL)
        return storage_key_valid(key) ? STORAGE_NO_MEMORY : STORAGE_BAD_KEY;
    /* Temporary credentials: the token is a signed part of the URL's query. */
    if (s->session_token != NULL && ((token = sigv4_uri_encode(s->session_token, false)) == NULL ||
                                     asprintf(&extra, "X-Amz-Security-Token=%s", token) < 0)) {
        extra = NULL;
        goto done;
    }
    sigv4_format_date(time(NULL), date);
    query = sigv4_presign_query(&cred, "GET", s->authority, path, extra, date, s->presign_expires);
    if (query == NULL)
        goto done;
    n = snprintf(loc->url, sizeof(loc->url), "%s://%s%s?%s", s->scheme, s->authority, path, query);
    err = n > 0 && (size_t)n < sizeof(loc->url) ? STORAGE_OK : STORAGE_BAD_KEY;
    if (err != STORAGE_OK)
        loc->url[0] = '\0';
done:
    free(path);
    free(query);
    free(token);
    free(extra);
    return err;
}

static void s3_destroy(struct storage *st)
{
    struct s3 *s = s3_of(st);

    pthread_mutex_lock(&s->uploads_lock);
    while (s->uploads_running > 0)
        pthread_cond_wait(&s->uploads_done, &s->uploads_lock);
    pthread_mutex_unlock(&s->uploads_lock);
    pthread_mutex_destroy(&s->uploads_lock);
    pthread_cond_destroy(&s->uploads_done);
    s3_http_pool_destroy(s);
    if (s->spool != NULL)
        s->spool->ops->destroy(s->spool);
    if (s->curl_ready)
        curl_global_cleanup();
    if (s->secret_key != NULL)
        OPENSSL_cleanse(s->secret_key, strlen(s->secret_key));
    if (s->session_token != NULL)
        OPENSSL_cleanse(s->session_token, strlen(s->session_token));
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    free(s->ca_file);
    free(s);
}

static const struct storage_ops s3_ops = {
    .stat = s3_stat,
    .read_small = s3_read_small,
    .reader_open = s3_reader_open,
    .reader_read = s3_reader_read,
    .reader_close = s3_reader_close,
    .put_small = s3_put_small,
    .writer_open = s3_writer_open,
    .writer_join = s3_writer_join,
    .writer_write = s3_writer_write,
    .writer_commit = s3_writer_commit,
    .writer_abort = s3_writer_abort,
    .touch = s3_touch,
    .remove = s3_remove,
    .remove_stale = s3_remove_stale,
    .remove_unless = s3_remove_unless,
    .list = s3_list,
    .locate = s3_locate,
    .lease_take = s3_lease_take,
    .lease_release = s3_lease_release,
    .reap = s3_multipart_reap,
    .destroy = s3_destroy,
};

/*
 * Splits host into scheme and authority; a default port is dropped, since
 * neither curl nor nginx send it in the Host header that is signed.
 */
static bool parse_host(struct s3 *s, const struct storage_s3_config *cfg, char *err, size_t errlen)
{
    char host[512];
    const char *h = cfg->host;
    size_t len;

    snprintf(s->scheme, sizeof(s->scheme), "https");
    if (h == NULL || *h == '\0') {
        snprintf(host, sizeof(host), "s3.%s.amazonaws.com", s->region);
    } else {
        if (strncasecmp(h, "http://", 7) == 0) {
            snprintf(s->scheme, sizeof(s->scheme), "http");
            h += 7;
        } else if (strncasecmp(h, "https://", 8) == 0) {
            h += 8;
        }
        snprintf(host, sizeof(host), "%s", h);
        host[strcspn(host, "/")] = '\0';
    }
    len = strlen(host);
    if (len == 0 || strpbrk(host, " \t\r\n?#@") != NULL) {
        snprintf(err, errlen, "S3 host '%s' is not host[:port]", cfg->host);
        return false;
    }
    if (len > 4 && strcmp(host + len - 4, ":443") == 0 && strcmp(s->scheme, "https") == 0)
        host[len - 4] = '\0';
    else if (len > 3 && strcmp(host + len - 3, ":80") == 0 && strcmp(s->scheme, "http") == 0)
        host[len - 3] = '\0';
    if (cfg->path_style)
        snprintf(s->authority, sizeof(s->authority), "%s", host);
    else
        snprintf(s->authority, sizeof(s->authority), "%.250s.%.250s", s->bucket, host);
    return true;
}

static bool set_prefix(struct s3 *s, const char *prefix, char *err, size_t errlen)
{
    size_t len;

    while (prefix != NULL && *prefix == '/')
        prefix++;
    if (prefix == NULL || *prefix == '\0')
        return true;
    snprintf(s->prefix, sizeof(s->prefix) - 1, "%s", prefix);
    len = strlen(s->prefix);
    while (len > 0 && s->prefix[len - 1] == '/')
        s->prefix[--len] = '\0';
    if (!storage_key_valid(s->prefix)) {
        snprintf(err, errlen, "S3 prefix '%s' is not a clean relative path", prefix);
        return false;
    }
    strcat(s->prefix, "/");
    return true;
}

/* A TLS failure that is the configuration's, not an outage's. */
static bool tls_refused(int rc)
{
    return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
           rc == CURLE_SSL_CERTPROBLEM;
}

/*
 * One signed ListObjectsV2 of at most one key: are the bucket and the keys
 * right? A wrong key, bucket or endpoint is a configuration error that stops
 * the start. An endpoint that cannot be reached or fails (5xx) is not: the
 * responder starts anyway, /readyz says it is not ready, and it serves from
 * the upstreams until S3 answers (a replica must come up with its store).
 */
static bool check_bucket(struct s3 *s, char *err, size_t errlen)
{
    struct s3_req req = s3_http_req("GET", NULL);
    struct s3_resp resp = {0};
    char code[64];
    enum storage_err e;
    bool usable = false;

    req.query = "list-type=2&max-keys=1";
    req.attempts = 2;
    req.max_body = S3_ERROR_BODY_MAX;
    e = s3_http_perform(s, &req, &resp);
    s3_http_error_code(&resp, code, sizeof(code));
    if (e != STORAGE_OK && tls_refused(atomic_load(&s->last_transport_error))) {
        snprintf(err, errlen,
                 "S3 endpoint %s://%s: its TLS certificate is not trusted or not for this "
                 "host (%s): check --ca-file",
                 s->scheme, s->authority,
                 curl_easy_strerror((CURLcode)atomic_load(&s->last_transport_error)));
    } else if (e != STORAGE_OK || resp.status >= 500) {
        oci_log(OCI_LOG_WARN,
                "S3 bucket %s at %s://%s is not available at start (%s): starting anyway, "
                "/readyz says not ready until it answers",
                s->bucket, s->scheme, s->authority,
                e != STORAGE_OK ? "cannot be reached" : "server error");
        usable = true;
    } else if (resp.status == 403 && (strcmp(code, "SignatureDoesNotMatch") == 0 ||
                                      strcmp(code, "InvalidAccessKeyId") == 0)) {
        snprintf(err, errlen, "S3 bucket %s: %s: check the access key and the secret key",
                 s->bucket, code);
    } else if (resp.status < 200 || resp.status >= 300) {
        snprintf(err, errlen, "S3 bucket %s at %s://%s: HTTP %ld %s", s->bucket, s->scheme,
                 s->authority, resp.status, code);
    } else {
        usable = true;
    }
    s3_http_resp_free(&resp);
    return usable;
}

static bool copy_config(struct s3 *s, const struct storage_s3_config *cfg, char *err, size_t errlen)
{
    if (cfg->bucket == NULL || *cfg->bucket == '\0' || strlen(cfg->bucket) >= sizeof(s->bucket) ||
        strpbrk(cfg->bucket, "/?#%& ") != NULL) {
        snprintf(err, errlen, "S3 needs a valid --bucket");
        return false;
    }
    if (cfg->access_key == NULL || *cfg->access_key == '\0' || cfg->secret_key == NULL ||
        *cfg->secret_key == '\0') {
        snprintf(err, errlen,
                 "S3 needs credentials: --access-key and --secret-key (S3_ACCESS_KEY, "
                 "S3_SECRET_KEY), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a "
                 "profile in ~/.aws/credentials");
        return false;
    }
    snprintf(s->bucket, sizeof(s->bucket), "%s", cfg->bucket);
    snprintf(s->region, sizeof(s->region), "%s",
             cfg->region && *cfg->region ? cfg->region : S3_DEFAULT_REGION);
    s->path_style = cfg->path_style;
    s->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : 10;
    s->low_speed_timeout = cfg->low_speed_timeout > 0 ? cfg->low_speed_timeout : 30;
    s->presign_expires = cfg->presign_expires > 0 ? cfg->presign_expires : 300;
    s->threshold = cfg->multipart_threshold > 0 ? cfg->multipart_threshold : S3_DEFAULT_THRESHOLD;
    s->lease_ttl = cfg->lease_ttl > 0 ? cfg->lease_ttl : S3_LEASE_DEFAULT_TTL;
    s->access_key = strdup(cfg->access_key);
    s->secret_key = strdup(cfg->secret_key);
    if (cfg->session_token != NULL && *cfg->session_token != '\0' &&
        (s->session_token = strdup(cfg->session_token)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    s->ca_file = cfg->ca_file && *cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (s->access_key == NULL || s->secret_key == NULL ||
        (cfg->ca_file && *cfg->ca_file && s->ca_file == NULL)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return set_prefix(s, cfg->prefix, err, errlen) && parse_host(s, cfg, err, errlen);
}

/* Removes what a crash left committed in the spool but not uploaded. */
static bool remove_leftover(void *arg, const char *key, const struct storage_info *info)
{
    struct storage *spool = arg;

    (void)info;
    spool->ops->remove_stale(spool, key, time(NULL) - SPOOL_LEFTOVER_AGE);
    return true;
}

/*
 * The spool of this endpoint, bucket and prefix, in TMPDIR: the same
 * directory for every process that serves them, so they share downloads.
 * Without one, writers spool alone (logged).
 */
static void open_spool(struct s3 *s)
{
    char id[sizeof(s->scheme) + sizeof(s->authority) + sizeof(s->bucket) + sizeof(s->prefix) + 8];
    char hash[SIGV4_HEX_LEN + 1], dir[4096], err[512];

    snprintf(id, sizeof(id), "%s://%s/%s/%s", s->scheme, s->authority, s->bucket, s->prefix);
    sigv4_sha256_hex(id, strlen(id), hash);
    snprintf(dir, sizeof(dir), "%s/oci-registry-s3-%.16s", spool_dir(), hash);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        oci_log(OCI_LOG_WARN, "s3: no shared spool %s (%s): concurrent misses each download", dir,
                strerror(errno));
        return;
    }
    s->spool = storage_fs_open(dir, err, sizeof(err));
    if (s->spool == NULL) {
        oci_log(OCI_LOG_WARN, "s3: no shared spool: %s: concurrent misses each download", err);
        return;
    }
    s->spool->ops->list(s->spool, "blobs/", remove_leftover, s->spool);
}

struct storage *storage_s3_open(const struct storage_s3_config *cfg, char *err, size_t errlen)
{
    struct s3 *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &s3_ops;
    s3_http_pool_init(s);
    pthread_mutex_init(&s->uploads_lock, NULL);
    pthread_cond_init(&s->uploads_done, NULL);
    /* Its own reference to libcurl's global state, which counts them. */
    s->curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!s->curl_ready)
        snprintf(err, errlen, "cannot initialise libcurl");
    if (!s->curl_ready || !copy_config(s, cfg, err, errlen) || !check_bucket(s, err, errlen)) {
        s3_destroy(&s->base);
        return NULL;
    }
    open_spool(s);
    s3_lease_probe(s);
    return &s->base;
}
