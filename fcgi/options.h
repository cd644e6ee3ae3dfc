/*
 * options.h - the command line and its environment variables.
 *
 *   oci-registry [--listen HOST:PORT | --listen unix:PATH]
 *                [--default-namespace NS] [--upstream-config-file FILE]
 *                [--check-cache-digest] [--workers N] [--no-dynamic-namespaces]
 *                [--front auto|nginx|lighttpd]
 *                [--connect-timeout SECONDS] [--low-speed-timeout SECONDS]
 *                [--low-speed-limit BYTES] [--upstream-timeout SECONDS]
 *                [--max-fetches N] [--max-fetches-per-upstream N]
 *                [--cleanup-interval SECONDS] [--upload-lifetime SECONDS]
 *                [--front-cache-time DURATION]
 *                [--max-cache-size SIZE] [--min-cache-age DURATION]
 *                [--cache-low-water PERCENT] [--usage-file PATH] [--admin]
 *                filesystem --root DIR
 *              | s3 --host HOST[:PORT] --bucket B [--region R] --access-key K
 *                   --secret-key S [--path-style] [--ca-file F] [--prefix P]
 *                   [--s3-redirect]
 *              [cache COMMAND [ARGS...] | gc [ARGS...]]
 *
 * A "cache" after the storage runs an operator's command on that storage
 * (fcgi/cachecmd.c) instead of serving; a "gc" runs the garbage collection
 * of hosted content (fcgi/gccmd.c) on it.
 *
 * Compatible with the reference oci-registry: every option can also come
 * from the environment (LISTEN, DEFAULT_NAMESPACE, UPSTREAM_CONFIG_FILE,
 * CHECK_CACHE_DIGEST, WORKERS, DYNAMIC_NAMESPACES, FRONT, CONNECT_TIMEOUT,
 * LOW_SPEED_TIMEOUT, LOW_SPEED_LIMIT, UPSTREAM_TIMEOUT, MAX_FETCHES,
 * MAX_FETCHES_PER_UPSTREAM, CLEANUP_INTERVAL, MAX_CACHE_SIZE, MIN_CACHE_AGE,
 * CACHE_LOW_WATER, USAGE_FILE, ADMIN, FILESYSTEM_ROOT, and S3_HOST, S3_BUCKET,
 * S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, S3_PATH_STYLE, S3_CA_FILE,
 * S3_PREFIX, S3_REDIRECT, S3_MULTIPART_THRESHOLD, S3_LEASE_TTL; UPLOAD_LIFETIME,
 * FRONT_CACHE_TIME); the
 * command line wins.
 */
#ifndef FCGI_OPTIONS_H
#define FCGI_OPTIONS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum fcgi_front {
    FCGI_FRONT_AUTO,     /* from SERVER_SOFTWARE, per request */
    FCGI_FRONT_NGINX,    /* X-Accel-Redirect */
    FCGI_FRONT_LIGHTTPD, /* X-Sendfile */
};

enum fcgi_storage {
    FCGI_STORAGE_FILESYSTEM,
    FCGI_STORAGE_S3,
};

struct fcgi_s3_options {
    const char *host; /* NULL: AWS for the region */
    const char *bucket;
    const char *region;
    const char *access_key;
    const char *secret_key; /* never printed */
    const char *ca_file;
    const char *prefix;
    bool path_style;
    bool redirect;            /* hits: 307 to the presigned URL instead of proxying it */
    long multipart_threshold; /* bytes; 0: the backend's default */
    long lease_ttl;           /* seconds; 0: the backend's default */
};

/* The size bound (core/cache/evict.h). */
struct fcgi_cache_options {
    uint64_t max_bytes;     /* 0: no bound */
    unsigned max_percent;   /* the bound as a percentage of the filesystem; 0: max_bytes */
    long min_age;           /* seconds */
    unsigned low_water;     /* percent of the bound */
    const char *usage_file; /* NULL: the storage's default */
    bool admin;             /* the /_admin/ API (core/ops/admin.h) */
};

enum fcgi_command {
    FCGI_COMMAND_SERVE,
    FCGI_COMMAND_CACHE, /* "cache COMMAND ARGS..." */
    FCGI_COMMAND_GC,    /* "gc ARGS..." */
};

struct fcgi_options {
    const char *listen; /* NULL: the socket inherited on fd 0 */
    const char *default_namespace;
    const char *upstream_config_file; /* NULL: none */
    bool check_cache_digest;
    bool dynamic_namespaces;
    int workers;
    enum fcgi_front front;
    long connect_timeout;
    long low_speed_timeout;
    long low_speed_limit;  /* bytes/s a blob download keeps up */
    long upstream_timeout; /* seconds for any other upstream answer */
    /* Requests sent to upstreams at once, in all (below workers, so that
     * some are always free for hits) and per upstream: see core/upstream/slots.h. */
    int max_fetches;
    int max_fetches_per_upstream;
    long cleanup_interval; /* seconds between cleanup passes; 0: none */
    long upload_lifetime;  /* seconds an upload session may sit idle */
    long front_cache_time; /* seconds nginx may keep a manifest answer at most */
    const char *root;      /* filesystem storage */
    enum fcgi_storage storage;
    struct fcgi_s3_options s3;
    struct fcgi_cache_options cache;
    /* What to run, and its words: those after "cache"; "gc" and those after it. */
    enum fcgi_command command;
    int command_argc;
    char **command_argv;
};

enum fcgi_options_result {
    FCGI_OPTIONS_RUN,   /* options are valid: serve, or run the command */
    FCGI_OPTIONS_EXIT,  /* --help or --version was printed */
    FCGI_OPTIONS_ERROR, /* one line was printed to stderr */
};

enum fcgi_options_result fcgi_options_parse(int argc, char **argv, struct fcgi_options *opts);

/* Prints "oci-registry: " and the message as one line on stderr. */
__attribute__((format(printf, 1, 0))) void fcgi_vfail(const char *fmt, va_list ap);

/* The exit status of a bad command line (the operators' commands: cache, gc). */
#define FCGI_EXIT_USAGE 2

/* A bad command line of a command: one line on stderr; returns FCGI_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) int fcgi_usage_error(const char *fmt, ...);

#endif
