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
 *                [--cleanup-interval SECONDS]
 *                filesystem --root DIR
 *              | s3 --host HOST[:PORT] --bucket B [--region R] --access-key K
 *                   --secret-key S [--path-style] [--ca-file F] [--prefix P]
 *                   [--s3-redirect]
 *
 * Compatible with the reference oci-registry: every option can also come
 * from the environment (LISTEN, DEFAULT_NAMESPACE, UPSTREAM_CONFIG_FILE,
 * CHECK_CACHE_DIGEST, WORKERS, DYNAMIC_NAMESPACES, FRONT, CONNECT_TIMEOUT,
 * LOW_SPEED_TIMEOUT, LOW_SPEED_LIMIT, UPSTREAM_TIMEOUT, MAX_FETCHES,
 * MAX_FETCHES_PER_UPSTREAM, CLEANUP_INTERVAL, FILESYSTEM_ROOT, and S3_HOST, S3_BUCKET,
 * S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, S3_PATH_STYLE, S3_CA_FILE,
 * S3_PREFIX, S3_REDIRECT, S3_MULTIPART_THRESHOLD); the command line wins.
 */
#ifndef FCGI_OPTIONS_H
#define FCGI_OPTIONS_H

#include <stdbool.h>

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
     * some are always free for hits) and per upstream: see core/slots.h. */
    int max_fetches;
    int max_fetches_per_upstream;
    long cleanup_interval; /* seconds between cleanup passes; 0: none */
    const char *root;      /* filesystem storage */
    enum fcgi_storage storage;
    struct fcgi_s3_options s3;
};

enum fcgi_options_result {
    FCGI_OPTIONS_RUN,   /* options are valid: serve */
    FCGI_OPTIONS_EXIT,  /* --help or --version was printed */
    FCGI_OPTIONS_ERROR, /* one line was printed to stderr */
};

enum fcgi_options_result fcgi_options_parse(int argc, char **argv, struct fcgi_options *opts);

#endif
