/*
 * main.c - oci-registry's entry point: options, config, storage, serving.
 *
 * Everything that can be wrong with the command line, the config or the
 * cache directory is reported in one line, exit status 2, before the first
 * request is served. Then the workers run until SIGTERM or SIGINT, which
 * drain the requests in progress and exit with status 0.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/config.h"
#include "util/log.h"
#include "core/reference.h"
#include "core/registry.h"
#include "core/upstream.h"
#include "fcgi/options.h"
#include "fcgi/respond.h"
#include "fcgi/server.h"
#include "storage/fs.h"
#include "storage/s3.h"

#define EXIT_USAGE 2

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
        fprintf(stderr, "oci-registry: UPSTREAM_CREDENTIALS: %s\n", err);
        return false;
    }
    if (!oci_namespace_valid(o->default_namespace, strlen(o->default_namespace))) {
        fprintf(stderr, "oci-registry: --default-namespace '%s' is not a registry host\n",
                o->default_namespace);
        return false;
    }
    return true;
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
    };
    struct storage *st;
    char err[512];

    if (o->storage == FCGI_STORAGE_S3)
        st = storage_s3_open(&s3, err, sizeof(err));
    else
        st = storage_fs_open(o->root, err, sizeof(err));
    if (st == NULL)
        fprintf(stderr, "oci-registry: %s\n", err);
    fcgi_respond_set_s3_redirect(o->s3.redirect);
    return st;
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

    server = fcgi_server_start(listen_fd, o->workers, o->front, reg);
    if (server == NULL)
        return EXIT_FAILURE;
    if (o->cleanup_interval > 0 && (cleaner = oci_cleaner_start(reg, o->cleanup_interval)) == NULL)
        oci_log(OCI_LOG_ERROR, "cannot start the cleanup thread: the cache will only grow");
    oci_log(OCI_LOG_INFO, "%s %s serving %s with %d workers, cache in %s%s", PACKAGE_NAME,
            PACKAGE_VERSION, o->listen ? o->listen : "fd 0", o->workers,
            o->storage == FCGI_STORAGE_S3 ? "S3 bucket " : "",
            o->storage == FCGI_STORAGE_S3 ? o->s3.bucket : o->root);
    sigwait(stop, &sig);
    oci_log(OCI_LOG_INFO, "signal %d: finishing requests in progress", sig);
    oci_cleaner_stop(cleaner);
    fcgi_server_stop(server);
    oci_log(OCI_LOG_INFO, "stopped");
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    struct fcgi_options opts;
    struct oci_config cfg = {0};
    struct storage *storage = NULL;
    struct oci_registry reg;
    struct oci_upstream_timeouts timeouts;
    sigset_t stop;
    int listen_fd, status = EXIT_USAGE;

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
    block_signals(&stop);
    listen_fd = fcgi_server_listen(opts.listen);
    if (listen_fd < 0)
        goto done;
    timeouts.connect = opts.connect_timeout;
    timeouts.low_speed = opts.low_speed_timeout;
    oci_upstream_set_timeouts(&timeouts);
    reg.options.default_namespace = opts.default_namespace;
    reg.options.check_cache_digest = opts.check_cache_digest;
    reg.options.dynamic_namespaces = opts.dynamic_namespaces;
    reg.config = &cfg;
    reg.storage = storage;
    status = serve(&opts, &reg, listen_fd, &stop);
done:
    if (storage != NULL)
        storage->ops->destroy(storage);
    oci_upstream_global_cleanup(); /* a no-op when libcurl was not initialised */
    oci_config_free(&cfg);
    return status;
}
