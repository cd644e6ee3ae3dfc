/*
 * options.h - the command line and its environment variables.
 *
 *   oci-registry [--listen HOST:PORT | --listen unix:PATH]
 *                [--default-namespace NS] [--upstream-config-file FILE]
 *                [--check-cache-digest] [--workers N] [--no-dynamic-namespaces]
 *                [--front auto|nginx|lighttpd]
 *                [--connect-timeout SECONDS] [--low-speed-timeout SECONDS]
 *                [--cleanup-interval SECONDS]
 *                filesystem --root DIR
 *
 * Compatible with the reference oci-registry: every option can also come
 * from the environment (LISTEN, DEFAULT_NAMESPACE, UPSTREAM_CONFIG_FILE,
 * CHECK_CACHE_DIGEST, WORKERS, DYNAMIC_NAMESPACES, FRONT, CONNECT_TIMEOUT,
 * LOW_SPEED_TIMEOUT, CLEANUP_INTERVAL, FILESYSTEM_ROOT); the command line wins.
 */
#ifndef FCGI_OPTIONS_H
#define FCGI_OPTIONS_H

#include <stdbool.h>

enum fcgi_front {
    FCGI_FRONT_AUTO,     /* from SERVER_SOFTWARE, per request */
    FCGI_FRONT_NGINX,    /* X-Accel-Redirect */
    FCGI_FRONT_LIGHTTPD, /* X-Sendfile */
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
    long cleanup_interval; /* seconds between cleanup passes; 0: none */
    const char *root; /* filesystem storage */
};

enum fcgi_options_result {
    FCGI_OPTIONS_RUN,   /* options are valid: serve */
    FCGI_OPTIONS_EXIT,  /* --help or --version was printed */
    FCGI_OPTIONS_ERROR, /* one line was printed to stderr */
};

enum fcgi_options_result fcgi_options_parse(int argc, char **argv, struct fcgi_options *opts);

#endif
