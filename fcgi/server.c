/*
 * server.c - the listening socket and the worker threads that serve it.
 *
 * Shutdown: fcgi_server_stop marks the server stopping and wakes the idle
 * workers - blocked in accept(), or waiting on a kept-alive connection for
 * its next request - with SIGUSR1, which interrupts that wait (libfcgi's
 * FCGI_FAIL_ACCEPT_ON_INTR). A busy worker keeps SIGUSR1 blocked, so no
 * write of an answer in progress is ever interrupted; it finishes, sees the
 * mark and leaves. The listening socket itself is left alone: under
 * spawn-fcgi -F N it is shared with the other responders, which go on.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcgiapp.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/metrics/metrics.h"
#include "util/log.h"
#include "fcgi/respond.h"
#include "core/ops/admin.h"
#include "fcgi/server.h"

#define LISTEN_BACKLOG   1024
#define REQUEST_PATH_MAX 8192

struct worker {
    struct fcgi_server *server;
    pthread_t thread;
    FCGX_Request req;
    atomic_bool idle; /* waiting for a request */
    atomic_bool done; /* has left its loop */
};

struct fcgi_server {
    enum fcgi_front front;
    const struct oci_registry *reg;
    /* Atomics, not a lock: every request passes here, and a lock would be a
     * global one on the hot path. */
    atomic_bool stopping;
    int started;
    struct worker *workers;
};

static int listen_fail(const char *spec, const char *why)
{
    fprintf(stderr, "oci-registry: cannot listen on %s: %s\n", spec, why);
    return -1;
}

/* Removes a unix socket left by a responder that is gone; keeps a live one. */
static bool clear_stale_socket(const struct sockaddr_un *sun)
{
    struct stat sb;
    int fd;
    bool live;

    if (lstat(sun->sun_path, &sb) < 0)
        return true;
    if (!S_ISSOCK(sb.st_mode))
        return false;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    live = fd >= 0 && connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    if (fd >= 0)
        close(fd);
    return !live && unlink(sun->sun_path) == 0;
}

static int listen_unix(const char *spec, const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path))
        return listen_fail(spec, "path too long");
    strcpy(sun.sun_path, path);
    if (!clear_stale_socket(&sun))
        return listen_fail(spec, "the path exists and is in use or not a socket");
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        return listen_fail(spec, strerror(saved));
    }
    /* The front server's workers run as another user; the socket is the only door. */
    chmod(path, 0666);
    return fd;
}

static int listen_tcp(const char *spec)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char host[256];
    const char *colon = strrchr(spec, ':');
    int fd = -1, one = 1, rc;

    if (colon == NULL || (size_t)(colon - spec) >= sizeof(host) || colon[1] == '\0')
        return listen_fail(spec, "expected HOST:PORT or unix:PATH");
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (rc != 0)
        return listen_fail(spec, gai_strerror(rc));
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return listen_fail(spec, strerror(saved));
    }
    freeaddrinfo(ai);
    return fd;
}

int fcgi_server_listen(const char *spec)
{
    int accepting = 0;
    socklen_t len = sizeof(accepting);

    if (spec == NULL) {
        if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0 || !accepting)
            return listen_fail("fd 0", "not a listening socket (use --listen or spawn-fcgi)");
        return STDIN_FILENO;
    }
    if (strncmp(spec, "unix:", 5) == 0)
        return listen_unix(spec, spec + 5);
    return listen_tcp(spec);
}

/* The request body: FastCGI's stdin, to its end (chunked bodies announce no length). */
static long body_read(void *ctx, void *buf, size_t len)
{
    FCGX_Request *req = ctx;
    int got = FCGX_GetStr(buf, len > INT_MAX ? INT_MAX : (int)len, req->in);

    /* libfcgi reports a broken connection as a short read with an error set. */
    if (got <= 0 && FCGX_GetError(req->in) != 0)
        return -1;
    return got;
}

/* CONTENT_LENGTH: -1 when empty or absent (chunked) or not a number. */
static int64_t content_length(char **env)
{
    const char *s = FCGX_GetParam("CONTENT_LENGTH", env);
    char *end;
    long long n;

    if (s == NULL || *s == '\0')
        return -1;
    n = strtoll(s, &end, 10);
    return *end == '\0' && n >= 0 ? (int64_t)n : -1;
}

/* The parameters of a write: who, how long, which range, what type, and the body. */
static void fill_write_params(FCGX_Request *fr, struct oci_request *req, struct oci_source *body)
{
    char **env = fr->envp;
    const char *verified = FCGX_GetParam("OCI_REMOTE_USER_VERIFIED", env);

    /* nginx passes any REMOTE_USER a client names (contrib/nginx/push-auth.conf):
     * only one the front server says it checked counts. */
    if (verified != NULL && strcmp(verified, "1") == 0)
        req->remote_user = FCGX_GetParam("REMOTE_USER", env);
    req->has_credentials = FCGX_GetParam("HTTP_AUTHORIZATION", env) != NULL;
    req->content_length = content_length(env);
    req->content_range = FCGX_GetParam("HTTP_CONTENT_RANGE", env);
    req->content_type = FCGX_GetParam("CONTENT_TYPE", env);
    body->ctx = fr;
    body->read = body_read;
    req->body = body;
}

/* Turns the FastCGI parameters into a request and answers it. */
static void handle(struct worker *w)
{
    char **env = w->req.envp;
    struct oci_source body;
    const char *uri = FCGX_GetParam("REQUEST_URI", env);
    const char *method = FCGX_GetParam("REQUEST_METHOD", env);
    char path[REQUEST_PATH_MAX];
    struct oci_request req = {0};
    struct oci_plan plan;
    size_t path_len;

    oci_metrics_request_start(FCGX_GetParam("REQUEST_ID", env));
    uri = uri ? uri : "";
    path_len = strcspn(uri, "?");
    req.method = method ? method : "GET";
    req.path = path;
    req.query = uri[path_len] == '?' ? uri + path_len + 1 : NULL;
    req.accept = FCGX_GetParam("HTTP_ACCEPT", env);
    fill_write_params(&w->req, &req, &body);
    req.admin_marker = FCGX_GetParam(OCI_ADMIN_MARKER, env) != NULL;
    if (path_len >= sizeof(path))
        path_len = 0; /* no route is this long: answered as not found */
    memcpy(path, uri, path_len);
    path[path_len] = '\0';
    oci_registry_plan(w->server->reg, &req, &plan);
    fcgi_respond(&w->req, w->server->front, w->server->reg, &plan);
    oci_plan_count(&req, &plan);
    oci_plan_release(&plan);
}

/* Marks the worker idle or busy; returns whether the server is stopping. */
static bool set_idle(struct worker *w, bool idle)
{
    bool stopping = atomic_load(&w->server->stopping);

    atomic_store(&w->idle, idle && !stopping);
    return stopping;
}

/* Waits for a request with SIGUSR1 open: the one wait that stopping may interrupt. */
static int accept_interruptibly(struct worker *w)
{
    sigset_t wake;
    int rc;

    sigemptyset(&wake);
    sigaddset(&wake, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
    rc = FCGX_Accept_r(&w->req);
    pthread_sigmask(SIG_BLOCK, &wake, NULL);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    while (!set_idle(w, true)) {
        int rc = accept_interruptibly(w);

        if (set_idle(w, false))
            break;
        if (rc < 0) {
            /* Out of descriptors, say: don't spin, try again shortly. */
            struct timespec pause = {0, 100 * 1000 * 1000};
            oci_log(OCI_LOG_ERROR, "accept: %s", strerror(-rc));
            nanosleep(&pause, NULL);
            continue;
        }
        handle(w);
    }
    FCGX_Finish_r(&w->req);
    atomic_store(&w->done, true);
    return NULL;
}

/* SIGUSR1 only interrupts a worker's wait; the handler has nothing to do. */
static void on_wake(int sig)
{
    (void)sig;
}

/* Blocks SIGUSR1 (threads inherit it) and installs its handler, without SA_RESTART. */
static void prepare_wake_signal(void)
{
    struct sigaction sa = {.sa_handler = on_wake};
    sigset_t wake;

    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&wake);
    sigaddset(&wake, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &wake, NULL);
}

struct fcgi_server *fcgi_server_start(int listen_fd, int workers, enum fcgi_front front,
                                      const struct oci_registry *reg)
{
    struct fcgi_server *s = calloc(1, sizeof(*s));
    int i;

    if (s == NULL || FCGX_Init() != 0)
        goto fail;
    s->workers = calloc((size_t)workers, sizeof(*s->workers));
    if (s->workers == NULL)
        goto fail;
    s->front = front;
    s->reg = reg;
    prepare_wake_signal();
    for (i = 0; i < workers; i++) {
        struct worker *w = &s->workers[i];

        w->server = s;
        FCGX_InitRequest(&w->req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            oci_log(OCI_LOG_ERROR, "cannot start worker %d: %s", i, strerror(errno));
            fcgi_server_stop(s);
            return NULL;
        }
        s->started++;
    }
    return s;
fail:
    oci_log(OCI_LOG_ERROR, "cannot start the FastCGI server");
    if (s != NULL)
        free(s->workers);
    free(s);
    return NULL;
}

/* Signals the idle workers; returns how many have not left yet. */
static int wake_idle_workers(struct fcgi_server *s)
{
    int i, remaining = 0;

    atomic_store(&s->stopping, true);
    for (i = 0; i < s->started; i++) {
        struct worker *w = &s->workers[i];

        remaining += !atomic_load(&w->done);
        if (atomic_load(&w->idle) && !atomic_load(&w->done))
            pthread_kill(w->thread, SIGUSR1);
    }
    return remaining;
}

void fcgi_server_stop(struct fcgi_server *s)
{
    /* Again and again: a worker may be between its check and its wait when signalled. */
    struct timespec pause = {0, 50 * 1000 * 1000};
    int i;

    while (wake_idle_workers(s) > 0)
        nanosleep(&pause, NULL);
    for (i = 0; i < s->started; i++)
        pthread_join(s->workers[i].thread, NULL);
    free(s->workers);
    free(s);
}
