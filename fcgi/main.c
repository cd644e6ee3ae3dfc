/*
 * main.c - oci-registry's entry point: options, config, storage, serving.
 *
 * Everything that can be wrong with the command line, the config or the
 * cache directory is reported in one line, exit status 2, before the first
 * request is served. Then the workers run until SIGTERM or SIGINT, which
 * drain the requests in progress and exit with status 0.
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ops/cleanup.h"
#include "core/upstream/config.h"
#include "core/cache/evict.h"
#include "core/metrics/metrics.h"
#include "util/log.h"
#include "util/tls_store.h"
#include "core/request/reference.h"
#include "core/registry.h"
#include "core/upstream/slots.h"
#include "core/upstream/upstream.h"
#include "fcgi/cachecmd.h"
#include "fcgi/gccmd.h"
#include "fcgi/options.h"
#include "fcgi/respond.h"
#include "fcgi/server.h"
#include "storage/fs.h"
#include "storage/s3.h"
#include "storage/s3_credentials.h"

#define EXIT_USAGE 2

/*
 * libcurl links librtmp, which links GnuTLS, and GnuTLS initialises itself
 * in its library constructor (its random generator, the system priorities,
 * PKCS #11 through p11-kit): 0.85 MiB of every responder, though libcurl
 * only ever speaks http and https here (CURLOPT_PROTOCOLS_STR), with
 * OpenSSL. GNUTLS_NO_IMPLICIT_INIT=1 skips that, but only when it is in the
 * environment the process starts with (libc takes its environment from the
 * stack before the constructors run and after any code of ours could): so
 * without it, the responder starts itself again with it, once, by its own
 * path (so that its name stays oci-registry for ps, pgrep and the logs).
 * (A gnutls_global_init(), which librtmp would call for an rtmp URL, still
 * works.) When that fails (no /proc, the file replaced), it goes on as is.
 */
static void restart_without_gnutls_init(char **argv)
{
    char self[PATH_MAX];
    ssize_t len;

    if (getenv("GNUTLS_NO_IMPLICIT_INIT") != NULL)
        return;
    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0 || setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0) != 0)
        return;
    self[len] = '\0';
    execv(self, argv);
}

static bool load_config(const struct fcgi_options *o, struct oci_config *cfg)
{
    const char *credentials = getenv("UPSTREAM_CREDENTIALS");
    char err[512];

    if (o->upstream_config_file != NULL &&
        !oci_config_load(o->upstream_config_file, cfg, err, sizeof(err))) {
        fprintf(stderr, "oci-registry: %s\n", err);
        return false;
    }
    if (credentials != NULL && *credentials != '\0' &&
        !oci_config_apply_credentials(cfg, credentials, err, sizeof(err))) {
        fprintf(stderr, "oci-registry: %s\n", err);
        return false;
    }
    if (!oci_config_check_files(cfg, err, sizeof(err))) {
        fprintf(stderr, "oci-registry: %s: %s\n", o->upstream_config_file, err);
        return false;
    }
    if (!oci_namespace_valid(o->default_namespace, strlen(o->default_namespace))) {
        fprintf(stderr, "oci-registry: --default-namespace '%s' is not a registry host\n",
                o->default_namespace);
        return false;
    }
    return true;
}

/*
 * Fills what the S3 options leave open from the standard AWS sources: the key
 * pair (storage/s3_credentials.h) and the region (AWS_REGION,
 * AWS_DEFAULT_REGION). False after one line on stderr.
 */
static bool s3_defaults(struct storage_s3_config *s3, struct s3_credentials *found)
{
    const char *region = getenv("AWS_REGION");
    char err[512];

    if (s3->region == NULL || *s3->region == '\0')
        s3->region = region && *region ? region : getenv("AWS_DEFAULT_REGION");
    if (s3->access_key != NULL && *s3->access_key != '\0' && s3->secret_key != NULL &&
        *s3->secret_key != '\0')
        return true;
    switch (s3_credentials_find(found, err, sizeof(err))) {
    case S3_CREDENTIALS_FOUND:
        s3->access_key = found->access_key;
        s3->secret_key = found->secret_key;
        s3->session_token = found->session_token;
        return true;
    case S3_CREDENTIALS_NONE:
        return true; /* the backend says what is missing */
    case S3_CREDENTIALS_ERROR:
        break;
    }
    fprintf(stderr, "oci-registry: S3 credentials: %s\n", err);
    return false;
}

/* The storage of the subcommand; NULL after one line on stderr. */
static struct storage *open_storage(const struct fcgi_options *o)
{
    struct storage_s3_config s3 = {
        .host = o->s3.host,
        .bucket = o->s3.bucket,
        .region = o->s3.region,
        .access_key = o->s3.access_key,
        .secret_key = o->s3.secret_key,
        .path_style = o->s3.path_style,
        .ca_file = o->s3.ca_file,
        .prefix = o->s3.prefix,
        .connect_timeout = o->connect_timeout,
        .low_speed_timeout = o->low_speed_timeout,
        .multipart_threshold = (uint64_t)o->s3.multipart_threshold,
        .lease_ttl = o->s3.lease_ttl,
    };
    struct s3_credentials found = {0};
    struct storage *st = NULL;
    char err[512];

    if (o->storage == FCGI_STORAGE_S3) {
        if (!s3_defaults(&s3, &found))
            goto done;
        st = storage_s3_open(&s3, err, sizeof(err));
    } else {
        st = storage_fs_open(o->root, err, sizeof(err));
    }
    if (st == NULL)
        fprintf(stderr, "oci-registry: %s\n", err);
    fcgi_respond_set_s3_redirect(o->s3.redirect);
done:
    s3_credentials_free(&found); /* the backend keeps copies */
    return st;
}

/* Where the usage record lives: --usage-file, else beside the cache or in TMPDIR for S3. */
static void usage_path(const struct fcgi_options *o, char *path, size_t len)
{
    const char *tmp = getenv("TMPDIR");

    if (o->cache.usage_file != NULL)
        snprintf(path, len, "%s", o->cache.usage_file);
    else if (o->storage == FCGI_STORAGE_S3)
        snprintf(path, len, "%s/oci-registry-%s.usage", tmp && *tmp ? tmp : "/tmp", o->s3.bucket);
    else
        snprintf(path, len, "%s/.usage", o->root);
}

/*
 * The size bound (none: max UINT64_MAX, for the cache commands) and its
 * usage record, owned by e. False after one line on stderr.
 */
static bool open_evictor(const struct fcgi_options *o, struct oci_evictor *e)
{
    char path[PATH_MAX], err[512];
    uint64_t max = o->cache.max_bytes;

    if (o->cache.max_percent > 0 &&
        !oci_size_of_filesystem(o->root, o->cache.max_percent, &max, err, sizeof(err))) {
        fprintf(stderr, "oci-registry: %s\n", err);
        return false;
    }
    if (o->cache.max_percent > 0 && max < OCI_EVICT_MIN_BOUND) {
        fprintf(stderr,
                "oci-registry: --max-cache-size %u%% of the filesystem of %s is %" PRIu64
                " bytes, below the smallest bound, 64MiB\n",
                o->cache.max_percent, o->root, max);
        return false;
    }
    usage_path(o, path, sizeof(path));
    e->usage = oci_usage_open(path, err, sizeof(err));
    if (e->usage == NULL) {
        fprintf(stderr, "oci-registry: %s\n", err);
        return false;
    }
    e->max_bytes = max > 0 ? max : UINT64_MAX;
    e->low_water = max > 0 ? max / 100 * o->cache.low_water : UINT64_MAX;
    e->min_age = o->cache.min_age;
    return true;
}

/*
 * Where the host's responders keep their shared counters (core/metrics/metrics.h):
 * beside the cache they share, or for S3, in the service's runtime directory
 * (systemd's RuntimeDirectory=), named after the bucket and prefix.
 */
static void open_metrics(const struct fcgi_options *o, const struct oci_config *cfg)
{
    const char *dir = getenv("RUNTIME_DIRECTORY"), *p;
    const char **names = calloc(cfg->count + 1, sizeof(*names));
    char path[4096], err[600];
    unsigned long hash = 5381;
    size_t count = 0, i;

    /* The namespaces that get a label of their own: the configured ones and the default. */
    for (i = 0; names != NULL && i < cfg->count; i++)
        names[count++] = cfg->upstreams[i].namespace_;
    if (names != NULL && o->default_namespace != NULL)
        names[count++] = o->default_namespace;

    if (o->storage == FCGI_STORAGE_FILESYSTEM) {
        snprintf(path, sizeof(path), "%s/_metrics", o->root);
    } else {
        if (dir == NULL || *dir == '\0')
            dir = getenv("TMPDIR");
        if (dir == NULL || *dir == '\0')
            dir = "/tmp";
        for (p = o->s3.bucket; *p != '\0'; p++)
            hash = hash * 33 + (unsigned char)*p;
        for (p = o->s3.prefix ? o->s3.prefix : ""; *p != '\0'; p++)
            hash = hash * 33 + (unsigned char)*p;
        /* RUNTIME_DIRECTORY may list several: the first. */
        snprintf(path, sizeof(path), "%.*s/oci-registry-metrics-%08lx", (int)strcspn(dir, ":"), dir,
                 hash & 0xffffffffUL);
    }
    if (!oci_metrics_open(path, o->storage == FCGI_STORAGE_S3 ? "s3" : "filesystem", names, count,
                          err, sizeof(err)))
        oci_log(OCI_LOG_WARN, "%s: /metrics shows this process only", err);
    free(names);
}

/* Blocks the stop signals in every thread; main takes them with sigwait. */
static void block_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGTERM);
    sigaddset(stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    /* A client that goes away mid-answer is an error on the write, not a death. */
    signal(SIGPIPE, SIG_IGN);
}

static int serve(const struct fcgi_options *o, const struct oci_registry *reg, int listen_fd,
                 const sigset_t *stop)
{
    struct fcgi_server *server;
    struct oci_cleaner *cleaner = NULL;
    int sig = 0;

    /* The cleaner first and last: commits of the workers may wake it. */
    if ((o->cleanup_interval > 0 || reg->evict != NULL) &&
        (cleaner = oci_cleaner_start(reg, o->cleanup_interval)) == NULL)
        oci_log(OCI_LOG_ERROR, "cannot start the cleanup thread: the cache will only grow");
    fcgi_respond_set_front_cache_time(o->front_cache_time);
    server = fcgi_server_start(listen_fd, o->workers, o->front, reg);
    if (server == NULL) {
        oci_cleaner_stop(cleaner);
        return EXIT_FAILURE;
    }
    oci_log(OCI_LOG_INFO,
            "%s %s serving %s with %d workers (%d of them, %d per upstream, may ask "
            "upstreams), cache in %s%s",
            PACKAGE_NAME, PACKAGE_VERSION, o->listen ? o->listen : "fd 0", o->workers,
            o->max_fetches, o->max_fetches_per_upstream,
            o->storage == FCGI_STORAGE_S3 ? "S3 bucket " : "",
            o->storage == FCGI_STORAGE_S3 ? o->s3.bucket : o->root);
    if (reg->evict != NULL)
        oci_log(OCI_LOG_INFO,
                "size bound %" PRIu64 " bytes: least recently used content evicted down to %" PRIu64
                ", none younger than %lds",
                reg->evict->max_bytes, reg->evict->low_water, reg->evict->min_age);
    sigwait(stop, &sig);
    oci_log(OCI_LOG_INFO, "signal %d: finishing requests in progress", sig);
    fcgi_server_stop(server);
    oci_cleaner_stop(cleaner);
    oci_log(OCI_LOG_INFO, "stopped");
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    struct fcgi_options opts;
    struct oci_config cfg = {0};
    struct storage *storage = NULL;
    struct oci_registry reg = {0};
    struct oci_evictor evictor = {0};
    struct oci_upstream_timeouts timeouts;
    sigset_t stop;
    int listen_fd, status = EXIT_USAGE;

    restart_without_gnutls_init(argv);
    switch (fcgi_options_parse(argc, argv, &opts)) {
    case FCGI_OPTIONS_EXIT:
        return EXIT_SUCCESS;
    case FCGI_OPTIONS_ERROR:
        return EXIT_USAGE;
    case FCGI_OPTIONS_RUN:
        break;
    }
    if (!load_config(&opts, &cfg))
        goto done;
    storage = open_storage(&opts);
    if (storage == NULL)
        goto done;
    if (opts.command != FCGI_COMMAND_SERVE) { /* a command: its accounting and last uses too */
        if (!open_evictor(&opts, &evictor))
            status = EXIT_USAGE;
        else if (opts.command == FCGI_COMMAND_GC)
            status = fcgi_gc_command(opts.command_argc, opts.command_argv, storage, &evictor);
        else
            status = fcgi_cache_command(opts.command_argc, opts.command_argv, storage, &evictor);
        goto done;
    }
    open_metrics(&opts, &cfg);
    if (opts.cache.max_bytes > 0 || opts.cache.max_percent > 0) {
        if (!open_evictor(&opts, &evictor))
            goto done;
        reg.evict = &evictor;
        oci_metrics_cache_bound(evictor.max_bytes);
    }
    block_signals(&stop);
    listen_fd = fcgi_server_listen(opts.listen);
    if (listen_fd < 0)
        goto done;
    timeouts.connect = opts.connect_timeout;
    timeouts.low_speed = opts.low_speed_timeout;
    timeouts.deadline = opts.upstream_timeout;
    timeouts.min_speed = opts.low_speed_limit;
    oci_upstream_set_timeouts(&timeouts);
    if (!oci_slots_configure(opts.max_fetches, opts.max_fetches_per_upstream)) {
        fprintf(stderr, "oci-registry: out of memory\n");
        goto done;
    }
    reg.options.default_namespace = opts.default_namespace;
    reg.options.check_cache_digest = opts.check_cache_digest;
    reg.options.dynamic_namespaces = opts.dynamic_namespaces;
    reg.options.upload_lifetime = opts.upload_lifetime;
    reg.options.admin = opts.cache.admin;
    reg.config = &cfg;
    reg.storage = storage;
    status = serve(&opts, &reg, listen_fd, &stop);
done:
    oci_usage_close(evictor.usage);
    if (storage != NULL)
        storage->ops->destroy(storage);
    oci_upstream_global_cleanup(); /* a no-op when libcurl was not initialised */
    tls_store_release();
    oci_metrics_close();
    oci_slots_cleanup();
    oci_config_free(&cfg);
    return status;
}
