/*
 * metrics.c - the shared counters file, the hooks that count into it, the
 * outcome log line of a request, and the Prometheus text.
 *
 * The file is a header (magic, layout number, size, the namespace label
 * table) and a block of 64-bit counters, mapped MAP_SHARED by every
 * responder; updates are relaxed atomic adds, which are exact across
 * processes on one host. Opening takes an flock on the file; a file of
 * another layout (an older or newer responder) is replaced by a new one
 * renamed over it, so a process still running on the old one keeps its
 * mapping and is not hurt, and the lock holders that waited notice the
 * rename and open again.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/metrics/metrics.h"
#include "core/request/reference.h"
#include "util/log.h"
#include "util/observe.h"

/* Bump when struct metrics_file changes: a file of another layout is replaced. */
#define METRICS_MAGIC  "OCIMETR"
#define METRICS_LAYOUT 2
#define NS_SLOTS       32 /* configured namespaces with a label of their own */
#define NS_OTHER       NS_SLOTS
#define NS_COUNT       (NS_SLOTS + 1)
#define OPEN_TRIES     5

typedef _Atomic uint64_t counter;

/* ---- label sets -------------------------------------------------------- */

enum { M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE, M_OTHER, M_COUNT };
static const char *const method_names[M_COUNT] = {"GET",   "HEAD",   "PUT",  "POST",
                                                  "PATCH", "DELETE", "other"};

enum { R_MANIFEST, R_BLOB, R_TAGS, R_REFERRERS, R_UPLOAD, R_OTHER, R_COUNT };
static const char *const route_names[R_COUNT] = {"manifest",  "blob",   "tags",
                                                 "referrers", "upload", "other"};

/* Statuses with a label of their own; the rest go to their class, then "0". */
static const short status_codes[] = {200, 201, 202, 204, 206, 301, 302, 304, 307,
                                     308, 400, 401, 403, 404, 405, 406, 409, 413,
                                     416, 429, 500, 501, 502, 503, 504};
#define N_CODES       (sizeof(status_codes) / sizeof(status_codes[0]))
#define S_CLASS_FIRST N_CODES       /* "1xx" .. "5xx" */
#define S_NONE        (N_CODES + 5) /* "0": no answer */
#define S_COUNT       (N_CODES + 6)

static const char *const kind_names[2] = {"manifest", "blob"}; /* enum oci_metrics_kind */
static const char *const result_names[2] = {"ok", "failed"};

/* Upstream latency buckets, milliseconds; the last is +Inf. */
static const long bucket_ms[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
#define N_BOUNDS (sizeof(bucket_ms) / sizeof(bucket_ms[0]))
#define B_COUNT  (N_BOUNDS + 1)

enum {
    S3_GET,
    S3_HEAD,
    S3_PUT,
    S3_DELETE,
    S3_LIST,
    S3_MP_CREATE,
    S3_MP_PART,
    S3_MP_COMPLETE,
    S3_MP_ABORT,
    S3_OTHER,
    S3_COUNT
};
static const char *const s3_op_names[S3_COUNT] = {"get",
                                                  "head",
                                                  "put",
                                                  "delete",
                                                  "list",
                                                  "multipart_create",
                                                  "multipart_part",
                                                  "multipart_complete",
                                                  "multipart_abort",
                                                  "other"};

/* ---- the file ---------------------------------------------------------- */

struct counters {
    counter requests[M_COUNT][R_COUNT][S_COUNT];
    counter hits[2], misses[2], served_bytes[2];
    counter upstream[NS_COUNT][2][S_COUNT]; /* [ns][GET, HEAD][status] */
    counter upstream_bytes[NS_COUNT];
    counter upstream_buckets[NS_COUNT][B_COUNT];
    counter upstream_ms[NS_COUNT];
    counter followers, stale, tokens[2]; /* [ok, failed] */
    counter cleanup_runs, cleanup_removed[2];
    counter cache_bytes, cache_objects, cache_bound; /* gauges */
    counter evicted_objects, evicted_bytes;
    counter s3[S3_COUNT][S_COUNT];
    counter cleanup_skipped;
    counter s3_conditional; /* gauge: 0 not known (yet), 1 no, 2 yes */
};

struct metrics_head {
    char magic[8];
    uint32_t layout;
    uint32_t ns_count; /* slots of ns in use; written under the flock */
    uint64_t size;     /* sizeof(struct metrics_file) */
};

struct metrics_file {
    struct metrics_head head;
    char ns[NS_SLOTS][OCI_NAMESPACE_MAX + 1];
    struct counters c;
};

/* Counting goes here until (and unless) the shared file is mapped. */
static struct metrics_file own;
static struct metrics_file *shared = &own;
static const char *storage_name = "filesystem";

/* This process's namespaces and their slots in the file, for the upstream hook. */
static struct {
    const char *name;
    int slot;
} local_ns[NS_SLOTS];
static int local_ns_count;

static void counter_add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t counter_get(const counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static bool file_header_ok(const struct metrics_head *h)
{
    return memcmp(h->magic, METRICS_MAGIC, sizeof(h->magic)) == 0 && h->layout == METRICS_LAYOUT &&
           h->size == sizeof(struct metrics_file) && h->ns_count <= NS_SLOTS;
}

static void file_header_init(struct metrics_head *h)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, METRICS_MAGIC, sizeof(h->magic));
    h->layout = METRICS_LAYOUT;
    h->size = sizeof(struct metrics_file);
}

/* Says why in err; returns -1, the failed descriptor. */
static int fail(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "metrics file %s: %s: %s", path, what, strerror(errno));
    return -1;
}

/*
 * A new file of this layout, renamed over path, on which fd is then open
 * (the caller holds the old one's lock, so no one else replaces it meanwhile).
 */
static int replace_file(const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    struct metrics_file *m;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return fail(err, errlen, path, "name");
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, path, "create");
    if (ftruncate(fd, sizeof(*m)) < 0 ||
        (m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        fail(err, errlen, path, "size");
        goto fail;
    }
    file_header_init(&m->head);
    munmap(m, sizeof(*m));
    if (fchmod(fd, 0600) < 0 || rename(tmp, path) < 0) {
        fail(err, errlen, path, "rename");
        goto fail;
    }
    return fd;
fail:
    unlink(tmp);
    close(fd);
    return -1;
}

/* Opens path locked, as this layout; -1 with err. */
static int open_locked(const char *path, char *err, size_t errlen)
{
    struct metrics_head head;
    struct stat fst, pst;
    int fd, i;

    for (i = 0; i < OPEN_TRIES; i++) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return fail(err, errlen, path, "open");
        if (flock(fd, LOCK_EX) < 0 || fstat(fd, &fst) < 0) {
            fail(err, errlen, path, "lock");
            close(fd);
            return -1;
        }
        /* Replaced while we waited for the lock: open the new one. */
        if (stat(path, &pst) < 0 || pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev) {
            close(fd);
            continue;
        }
        if (!S_ISREG(fst.st_mode) || fst.st_uid != geteuid()) {
            errno = EPERM;
            fail(err, errlen, path, "not a regular file of this user");
            close(fd);
            return -1;
        }
        if (fst.st_size == sizeof(struct metrics_file) &&
            pread(fd, &head, sizeof(head), 0) == sizeof(head) && file_header_ok(&head))
            return fd;
        if (fst.st_size == 0) { /* new: made here, under the lock; the rest is zeros */
            file_header_init(&head);
            if (ftruncate(fd, sizeof(struct metrics_file)) == 0 &&
                pwrite(fd, &head, sizeof(head), 0) == sizeof(head))
                return fd;
            fail(err, errlen, path, "initialise");
            close(fd);
            return -1;
        }
        oci_log(OCI_LOG_WARN, "metrics file %s has another layout: replaced", path);
        int fresh = replace_file(path, err, errlen);
        close(fd); /* releases the old file's lock: its waiters see the rename */
        if (fresh < 0)
            return -1;
        if (flock(fresh, LOCK_EX) == 0)
            return fresh;
        close(fresh);
    }
    errno = EAGAIN;
    return fail(err, errlen, path, "replaced again and again");
}

/* The slot of namespace ns in the file, claimed if new; NS_OTHER when full. */
static int claim_slot(struct metrics_file *m, const char *ns)
{
    uint32_t i;

    for (i = 0; i < m->head.ns_count; i++)
        if (strncmp(m->ns[i], ns, OCI_NAMESPACE_MAX) == 0)
            return (int)i;
    if (m->head.ns_count >= NS_SLOTS || strlen(ns) > OCI_NAMESPACE_MAX)
        return NS_OTHER;
    snprintf(m->ns[m->head.ns_count], sizeof(m->ns[0]), "%s", ns);
    /* Scrapes read the table without the lock: the name first, then its count. */
    __atomic_store_n(&m->head.ns_count, m->head.ns_count + 1, __ATOMIC_RELEASE);
    return (int)m->head.ns_count - 1;
}

static void register_namespace(struct metrics_file *m, const char *ns)
{
    int slot = claim_slot(m, ns), i;

    for (i = 0; i < local_ns_count; i++)
        if (strcmp(local_ns[i].name, ns) == 0)
            return;
    if (slot == NS_OTHER || local_ns_count >= NS_SLOTS) {
        oci_log(OCI_LOG_WARN, "metrics: more than %d namespaces: %s counts as \"other\"", NS_SLOTS,
                ns);
        return;
    }
    local_ns[local_ns_count].name = ns;
    local_ns[local_ns_count++].slot = slot;
}

static void register_namespaces(struct metrics_file *m, const char *const *namespaces, size_t count)
{
    size_t i;

    local_ns_count = 0;
    for (i = 0; i < count; i++)
        register_namespace(m, namespaces[i]);
}

static void count_s3(const char *method, const char *query, long status);
static void note_s3_conditional(bool yes);

bool oci_metrics_open(const char *path, const char *storage, const char *const *namespaces,
                      size_t count, char *err, size_t errlen)
{
    struct metrics_file *m;
    int fd;

    storage_name = storage;
    oci_observe_set_s3(count_s3);
    oci_observe_set_s3_conditional(note_s3_conditional);
    fd = open_locked(path, err, errlen);
    if (fd < 0) {
        register_namespaces(shared, namespaces, count);
        return false;
    }
    m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        fail(err, errlen, path, "map");
        close(fd);
        register_namespaces(shared, namespaces, count);
        return false;
    }
    register_namespaces(m, namespaces, count);
    /* Explicitly: the mapping holds the file open, and with it the lock. */
    flock(fd, LOCK_UN);
    close(fd);
    oci_metrics_close();
    shared = m;
    /* Replays the probe's outcome into the file, which the storage had before it. */
    oci_observe_set_s3_conditional(note_s3_conditional);
    return true;
}

void oci_metrics_close(void)
{
    if (shared != &own)
        munmap(shared, sizeof(*shared));
    shared = &own;
}

/* ---- label lookups ----------------------------------------------------- */

static int status_index(long status)
{
    size_t i;

    for (i = 0; i < N_CODES; i++)
        if (status_codes[i] == status)
            return (int)i;
    if (status >= 100 && status < 600)
        return (int)(S_CLASS_FIRST + (size_t)(status / 100 - 1));
    return S_NONE;
}

static void status_label(int index, char out[8])
{
    if ((size_t)index < N_CODES)
        snprintf(out, 8, "%d", status_codes[index]);
    else if ((size_t)index < S_NONE)
        snprintf(out, 8, "%dxx", index - (int)S_CLASS_FIRST + 1);
    else
        snprintf(out, 8, "0");
}

static int method_index(const char *method)
{
    int i;

    for (i = 0; method != NULL && i < M_OTHER; i++)
        if (strcmp(method, method_names[i]) == 0)
            return i;
    return M_OTHER;
}

/* The route of a raw path, by the API's own path grammar (names cannot hold these words). */
static int route_index(const char *path)
{
    if (strncmp(path, "/v2/", 4) != 0)
        return R_OTHER;
    if (strstr(path, "/manifests/") != NULL)
        return R_MANIFEST;
    if (strstr(path, "/blobs/uploads") != NULL)
        return R_UPLOAD;
    if (strstr(path, "/blobs/") != NULL)
        return R_BLOB;
    if (strstr(path, "/tags/list") != NULL)
        return R_TAGS;
    if (strstr(path, "/referrers/") != NULL)
        return R_REFERRERS;
    return R_OTHER;
}

static int namespace_slot(const char *ns)
{
    int i;

    for (i = 0; ns != NULL && i < local_ns_count; i++)
        if (strcmp(local_ns[i].name, ns) == 0)
            return local_ns[i].slot;
    return NS_OTHER;
}

static bool has_param(const char *query, const char *name)
{
    size_t len = strlen(name);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, len) == 0 && (p[len] == '\0' || p[len] == '=' || p[len] == '&'))
            return true;
        p = strchr(p, '&');
        p = p != NULL ? p + 1 : NULL;
    }
    return false;
}

/* The S3 operation of a request, from its method and query. */
static int s3_op_index(const char *method, const char *query)
{
    bool upload = has_param(query, "uploadId");

    if (strcmp(method, "GET") == 0)
        return has_param(query, "list-type") ? S3_LIST : S3_GET;
    if (strcmp(method, "HEAD") == 0)
        return S3_HEAD;
    if (strcmp(method, "PUT") == 0)
        return has_param(query, "partNumber") ? S3_MP_PART : S3_PUT;
    if (strcmp(method, "POST") == 0)
        return upload ? S3_MP_COMPLETE : has_param(query, "uploads") ? S3_MP_CREATE : S3_OTHER;
    if (strcmp(method, "DELETE") == 0)
        return upload ? S3_MP_ABORT : S3_DELETE;
    return S3_OTHER;
}

static void count_s3(const char *method, const char *query, long status)
{
    counter_add(&shared->c.s3[s3_op_index(method ? method : "", query)][status_index(status)], 1);
}

/* ---- the request of this thread ---------------------------------------- */

enum cache_outcome { CACHE_NONE, CACHE_HIT, CACHE_MISS };

struct request_state {
    char id[OCI_REQUEST_ID_MAX + 1];
    struct timespec start;
    enum cache_outcome cache;
    bool stale;
    unsigned upstream_requests;
    uint64_t upstream_bytes;
};

static _Thread_local struct request_state cur;

/* An id goes into log lines and a header: bounded, and only these characters. */
static bool request_id_valid(const char *id, size_t len)
{
    return len > 0 && len <= OCI_REQUEST_ID_MAX &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* Ids of our own, for requests the front server gave none (lighttpd has no
 * request id) or a bad one: 32 hex digits as nginx's $request_id, a random
 * half drawn once per process and a count, so no two processes repeat one
 * and none costs a system call. */
static pthread_once_t own_id_once = PTHREAD_ONCE_INIT;
static uint64_t own_id_process;
static atomic_uint_fast64_t own_id_count;

static void own_id_init(void)
{
    if (getrandom(&own_id_process, sizeof(own_id_process), 0) != (ssize_t)sizeof(own_id_process))
        own_id_process = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
}

static void own_id(char *out, size_t size)
{
    pthread_once(&own_id_once, own_id_init);
    snprintf(out, size, "%016llx%016llx", (unsigned long long)own_id_process,
             (unsigned long long)atomic_fetch_add(&own_id_count, 1));
}

void oci_metrics_request_start(const char *raw_id)
{
    size_t len = raw_id != NULL ? strnlen(raw_id, OCI_REQUEST_ID_MAX + 1) : 0;

    memset(&cur, 0, sizeof(cur));
    if (request_id_valid(raw_id, len))
        memcpy(cur.id, raw_id, len);
    else
        own_id(cur.id, sizeof(cur.id));
    clock_gettime(CLOCK_MONOTONIC_COARSE, &cur.start);
}

const char *oci_metrics_request_id(void)
{
    return cur.id;
}

static long request_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (now.tv_sec - cur.start.tv_sec) * 1000 + (now.tv_nsec - cur.start.tv_nsec) / 1000000;
}

/* A client's path in a log value: printable, no spaces, bounded. */
static void path_value(const char *path, char *out, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len && path[i] != '\0'; i++)
        out[i] = path[i] > ' ' && path[i] < 0x7f ? path[i] : '?';
    out[i] = '\0';
}

static const char *cache_word(enum cache_outcome c)
{
    return c == CACHE_HIT ? "hit" : c == CACHE_MISS ? "miss" : "none";
}

static void log_outcome(const struct oci_metrics_answer *a, int route)
{
    char path[256];

    path_value(a->path ? a->path : "", path, sizeof(path));
    oci_log(a->status >= 500 ? OCI_LOG_WARN : OCI_LOG_INFO,
            "request id=%s method=%s route=%s path=%s ns=%s status=%d cache=%s stale=%d "
            "upstream_requests=%u upstream_bytes=%llu ms=%ld",
            cur.id[0] ? cur.id : "-", method_names[method_index(a->method)], route_names[route],
            path, a->namespace_ && a->namespace_[0] ? a->namespace_ : "-", a->status,
            cache_word(cur.cache), cur.stale ? 1 : 0, cur.upstream_requests,
            (unsigned long long)cur.upstream_bytes, request_ms());
}

void oci_metrics_request_end(const struct oci_metrics_answer *a)
{
    int route = route_index(a->path ? a->path : "");
    int status = a->status;

    /* A manifest answered whole without asking the upstream came from the cache. */
    if (route == R_MANIFEST && cur.cache == CACHE_NONE && status == 200 && a->answered_whole)
        oci_metrics_cache_hit(OCI_METRICS_MANIFEST, a->body_bytes);
    counter_add(&shared->c.requests[method_index(a->method)][route][status_index(status)], 1);
    if (cur.cache == CACHE_MISS || status >= 400 || status == 0 || cur.stale)
        log_outcome(a, route);
    cur.id[0] = '\0';
}

/* ---- events ------------------------------------------------------------ */

void oci_metrics_cache_hit(enum oci_metrics_kind kind, uint64_t bytes)
{
    cur.cache = CACHE_HIT;
    counter_add(&shared->c.hits[kind], 1);
    counter_add(&shared->c.served_bytes[kind], bytes);
}

void oci_metrics_cache_miss(enum oci_metrics_kind kind)
{
    cur.cache = CACHE_MISS;
    counter_add(&shared->c.misses[kind], 1);
}

/*
 * What the front server sends of size bytes for range: the length of one
 * "bytes=a-b", "bytes=a-" or "bytes=-n" range, 0 when it cannot be satisfied
 * (a 416), or -1 when it is not one valid range (the whole object is sent,
 * or a multipart answer of about its size).
 */
static int64_t range_length(const char *range, int64_t size)
{
    long long first = -1, last = -1;
    int used = 0, more = 0;

    if (strncmp(range, "bytes=", 6) != 0 || strchr(range, ',') != NULL)
        return -1;
    range += 6;
    if (sscanf(range, "-%lld%n", &last, &used) == 1 && range[used] == '\0')
        return last < 0 ? -1 : last < size ? last : size;
    if (sscanf(range, "%lld-%n", &first, &used) != 1 || first < 0)
        return -1;
    if (first >= size)
        return 0;
    if (range[used] == '\0')
        return size - first;
    if (sscanf(range + used, "%lld%n", &last, &more) != 1 || range[used + more] != '\0' ||
        last < first)
        return -1;
    return (last < size ? last + 1 : size) - first;
}

void oci_metrics_stored_sent(int64_t size, const char *method, const char *range)
{
    int64_t sent = size;

    if (cur.cache == CACHE_NONE)
        oci_metrics_cache_hit(OCI_METRICS_BLOB, 0);
    if (method != NULL && strcmp(method, "HEAD") == 0)
        return;
    if (range != NULL && size > 0) {
        int64_t part = range_length(range, size);
        sent = part >= 0 ? part : size;
    }
    if (sent > 0)
        counter_add(&shared->c.served_bytes[OCI_METRICS_BLOB], (uint64_t)sent);
}

void oci_metrics_stale_served(void)
{
    cur.stale = true;
    counter_add(&shared->c.stale, 1);
}

void oci_metrics_singleflight_follower(void)
{
    counter_add(&shared->c.followers, 1);
}

void oci_metrics_upstream(const char *namespace_, bool head, long status, long ms, uint64_t bytes)
{
    int ns = namespace_slot(namespace_);
    size_t b = 0;

    while (b < N_BOUNDS && ms > bucket_ms[b])
        b++;
    counter_add(&shared->c.upstream[ns][head ? 1 : 0][status_index(status)], 1);
    counter_add(&shared->c.upstream_bytes[ns], bytes);
    counter_add(&shared->c.upstream_buckets[ns][b], 1);
    counter_add(&shared->c.upstream_ms[ns], ms > 0 ? (uint64_t)ms : 0);
    cur.upstream_requests++;
    cur.upstream_bytes += bytes;
}

void oci_metrics_token_fetch(bool ok)
{
    counter_add(&shared->c.tokens[ok ? 0 : 1], 1);
}

void oci_metrics_cleanup_run(unsigned long blobs, unsigned long manifests)
{
    counter_add(&shared->c.cleanup_runs, 1);
    counter_add(&shared->c.cleanup_removed[OCI_METRICS_BLOB], blobs);
    counter_add(&shared->c.cleanup_removed[OCI_METRICS_MANIFEST], manifests);
}

void oci_metrics_cache_size(uint64_t bytes, uint64_t objects)
{
    atomic_store_explicit(&shared->c.cache_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&shared->c.cache_objects, objects, memory_order_relaxed);
}

void oci_metrics_cleanup_skipped(void)
{
    counter_add(&shared->c.cleanup_skipped, 1);
}

static void note_s3_conditional(bool yes)
{
    atomic_store_explicit(&shared->c.s3_conditional, yes ? 2 : 1, memory_order_relaxed);
}

int oci_metrics_s3_conditional(void)
{
    return (int)counter_get(&shared->c.s3_conditional) - 1;
}

void oci_metrics_cache_bound(uint64_t bytes)
{
    atomic_store_explicit(&shared->c.cache_bound, bytes, memory_order_relaxed);
}

void oci_metrics_evicted(uint64_t objects, uint64_t bytes)
{
    counter_add(&shared->c.evicted_objects, objects);
    counter_add(&shared->c.evicted_bytes, bytes);
    oci_log(OCI_LOG_INFO, "eviction objects=%llu bytes=%llu", (unsigned long long)objects,
            (unsigned long long)bytes);
}

/* ---- the Prometheus text ----------------------------------------------- */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void single(FILE *f, const char *name, const char *type, const char *help, const counter *c)
{
    family(f, name, type, help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)counter_get(c));
}

/* A namespace label value from the file: only the grammar's characters, else "invalid". */
static const char *ns_label(const struct metrics_file *m, int slot)
{
    const char *ns = m->ns[slot];
    size_t len = strnlen(ns, sizeof(m->ns[0]));

    if (slot == NS_OTHER)
        return "other";
    if (len == 0 || len == sizeof(m->ns[0]) ||
        strspn(ns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_") != len)
        return "invalid";
    return ns;
}

static int ns_slots_used(const struct metrics_file *m)
{
    uint32_t used = __atomic_load_n(&m->head.ns_count, __ATOMIC_ACQUIRE);

    return used <= NS_SLOTS ? (int)used : 0;
}

static void render_requests(FILE *f, const struct counters *c)
{
    char st[8];

    family(f, "oci_registry_requests_total", "counter",
           "Requests answered, by method, route and status.");
    for (int m = 0; m < M_COUNT; m++)
        for (int r = 0; r < R_COUNT; r++)
            for (int s = 0; s < (int)S_COUNT; s++) {
                uint64_t v = counter_get(&c->requests[m][r][s]);
                if (v == 0)
                    continue;
                status_label(s, st);
                fprintf(f,
                        "oci_registry_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} "
                        "%llu\n",
                        method_names[m], route_names[r], st, (unsigned long long)v);
            }
}

/* A counter family with one label of two values. */
static void render_pair(FILE *f, const char *name, const char *help, const char *label,
                        const char *const names[2], const counter v[2])
{
    family(f, name, "counter", help);
    for (int k = 0; k < 2; k++)
        fprintf(f, "%s{%s=\"%s\"} %llu\n", name, label, names[k],
                (unsigned long long)counter_get(&v[k]));
}

static void render_upstream_requests(FILE *f, const struct metrics_file *m)
{
    char st[8];

    family(f, "oci_registry_upstream_requests_total", "counter",
           "Requests to upstream registries, by namespace, method and status (0: no answer).");
    for (int n = 0; n < NS_COUNT; n++) {
        if (n != NS_OTHER && n >= ns_slots_used(m))
            continue;
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < (int)S_COUNT; s++) {
                uint64_t v = counter_get(&m->c.upstream[n][h][s]);
                if (v == 0)
                    continue;
                status_label(s, st);
                fprintf(f,
                        "oci_registry_upstream_requests_total{namespace=\"%s\",method=\"%s\","
                        "status=\"%s\"} %llu\n",
                        ns_label(m, n), h ? "HEAD" : "GET", st, (unsigned long long)v);
            }
    }
}

static void render_upstream_latency(FILE *f, const struct metrics_file *m)
{
    family(f, "oci_registry_upstream_request_duration_seconds", "histogram",
           "Time upstream requests took, by namespace.");
    for (int n = 0; n < NS_COUNT; n++) {
        uint64_t total = 0;
        const char *ns = ns_label(m, n);

        if (n != NS_OTHER && n >= ns_slots_used(m))
            continue;
        for (size_t b = 0; b < B_COUNT; b++) {
            total += counter_get(&m->c.upstream_buckets[n][b]);
            if (b < N_BOUNDS)
                fprintf(f,
                        "oci_registry_upstream_request_duration_seconds_bucket{namespace=\"%s\","
                        "le=\"%g\"} %llu\n",
                        ns, (double)bucket_ms[b] / 1000, (unsigned long long)total);
        }
        fprintf(f,
                "oci_registry_upstream_request_duration_seconds_bucket{namespace=\"%s\","
                "le=\"+Inf\"} %llu\n"
                "oci_registry_upstream_request_duration_seconds_sum{namespace=\"%s\"} %.3f\n"
                "oci_registry_upstream_request_duration_seconds_count{namespace=\"%s\"} %llu\n",
                ns, (unsigned long long)total, ns, (double)counter_get(&m->c.upstream_ms[n]) / 1000,
                ns, (unsigned long long)total);
    }
}

static void render_upstream_bytes(FILE *f, const struct metrics_file *m)
{
    family(f, "oci_registry_upstream_received_bytes_total", "counter",
           "Body bytes received from upstream registries, by namespace.");
    for (int n = 0; n < NS_COUNT; n++)
        if (n == NS_OTHER || n < ns_slots_used(m))
            fprintf(f, "oci_registry_upstream_received_bytes_total{namespace=\"%s\"} %llu\n",
                    ns_label(m, n), (unsigned long long)counter_get(&m->c.upstream_bytes[n]));
}

static void render_s3(FILE *f, const struct counters *c)
{
    uint64_t conditional = counter_get(&c->s3_conditional);
    char st[8];

    if (conditional > 0) {
        family(f, "oci_registry_s3_conditional_writes", "gauge",
               "1 when the S3 server honours conditional writes, so replicas on the bucket share "
               "downloads and cleanup through leases; 0 when each works alone.");
        fprintf(f, "oci_registry_s3_conditional_writes %d\n", conditional == 2 ? 1 : 0);
    }

    family(f, "oci_registry_s3_requests_total", "counter",
           "Requests to S3 storage, by operation and status (0: no answer).");
    for (int o = 0; o < S3_COUNT; o++)
        for (int s = 0; s < (int)S_COUNT; s++) {
            uint64_t v = counter_get(&c->s3[o][s]);
            if (v == 0)
                continue;
            status_label(s, st);
            fprintf(f, "oci_registry_s3_requests_total{operation=\"%s\",status=\"%s\"} %llu\n",
                    s3_op_names[o], st, (unsigned long long)v);
        }
}

static void render_cache(FILE *f, const struct counters *c)
{
    render_pair(f, "oci_registry_cache_hits_total", "Requests answered from the cache.", "kind",
                kind_names, c->hits);
    render_pair(f, "oci_registry_cache_misses_total",
                "Requests for which the upstream was asked (not cached, or a tag to revalidate).",
                "kind", kind_names, c->misses);
    render_pair(f, "oci_registry_cache_served_bytes_total",
                "Bytes answered from the cache (blobs: sent by the front server).", "kind",
                kind_names, c->served_bytes);
    single(f, "oci_registry_cache_size_bytes", "gauge", "Bytes the cache holds.", &c->cache_bytes);
    single(f, "oci_registry_cache_objects", "gauge", "Objects the cache holds.", &c->cache_objects);
    single(f, "oci_registry_cache_bound_bytes", "gauge",
           "The size the cache is kept under (0: no bound).", &c->cache_bound);
    single(f, "oci_registry_evicted_objects_total", "counter",
           "Objects evicted to keep the cache under its bound.", &c->evicted_objects);
    single(f, "oci_registry_evicted_bytes_total", "counter",
           "Bytes evicted to keep the cache under its bound.", &c->evicted_bytes);
    single(f, "oci_registry_cleanup_runs_total", "counter", "Cleanup passes run.",
           &c->cleanup_runs);
    single(f, "oci_registry_cleanup_skipped_total", "counter",
           "Cleanup passes and evictions skipped because another replica held the cleanup lease.",
           &c->cleanup_skipped);
    render_pair(f, "oci_registry_cleanup_removed_total",
                "Objects removed by cleanup (unused for longer than their invalidation time).",
                "kind", kind_names, c->cleanup_removed);
}

static void render_misc(FILE *f, const struct counters *c)
{
    single(f, "oci_registry_singleflight_followers_total", "counter",
           "Requests that followed a download another request leads.", &c->followers);
    single(f, "oci_registry_stale_answers_total", "counter",
           "Stale manifests answered because the upstream failed.", &c->stale);
    render_pair(f, "oci_registry_token_fetches_total",
                "Tokens asked of upstream token services, by result.", "result", result_names,
                c->tokens);
}

char *oci_metrics_render(size_t *len)
{
    const struct metrics_file *m = shared;
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (f == NULL)
        return NULL;
    family(f, "oci_registry_build_info", "gauge", "The responder's version and storage.");
    fprintf(f, "oci_registry_build_info{version=\"%s\",storage=\"%s\"} 1\n", PACKAGE_VERSION,
            storage_name);
    render_requests(f, &m->c);
    render_cache(f, &m->c);
    render_upstream_requests(f, m);
    render_upstream_bytes(f, m);
    render_upstream_latency(f, m);
    render_misc(f, &m->c);
    render_s3(f, &m->c);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
