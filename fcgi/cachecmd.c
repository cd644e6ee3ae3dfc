/*
 * cachecmd.c - prints the `cache` command's work (see cachecmd.h).
 *
 * Text goes one line per item, tab-separated, so it cuts and sorts; --json
 * prints one JSON document. Progress of a long run goes to stderr, and only
 * when stderr is a terminal: a pipe or a log gets the result alone.
 */
#include "autoconfig.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cache/inventory.h"
#include "fcgi/cachecmd.h"
#include "fcgi/options.h"

#define EXIT_TROUBLE 1

struct cmd {
    struct storage *st;
    struct oci_evictor *e;
    bool json;
    bool repair;
    const char *to;  /* evict --to */
    const char *arg; /* the one positional argument */
    cJSON *out;      /* --json: the document being built */
    bool tty;        /* stderr is a terminal: progress is drawn there */
    time_t shown;    /* progress: when last drawn */
};

static int storage_trouble(const char *what, enum storage_err err)
{
    fprintf(stderr, "oci-registry: cache %s: %s\n", what, storage_strerror(err));
    return EXIT_TROUBLE;
}

/* "2026-12-07T12:00:00Z", or "-" for never. */
static const char *iso_time(time_t t, char buf[32])
{
    struct tm tm;

    if (t <= 0 || gmtime_r(&t, &tm) == NULL)
        return "-";
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void print_json(cJSON *doc)
{
    char *text = cJSON_Print(doc);

    if (text != NULL)
        puts(text);
    free(text);
    cJSON_Delete(doc);
}

/* Draws "what: done/total unit" on a terminal, at most once a second and at the end. */
static void show_progress(struct cmd *c, const char *what, unsigned long done, unsigned long total,
                          const char *unit)
{
    time_t now = time(NULL);

    if (!c->tty || (now == c->shown && done != total))
        return;
    fprintf(stderr, "\r%s: %lu/%lu %s", what, done, total, unit);
    if (done == total)
        fputc('\n', stderr);
    c->shown = now;
}

/* ---- ls ------------------------------------------------------------------ */

static void ls_entry(void *arg, const struct oci_inventory_entry *e)
{
    struct cmd *c = arg;
    char digest[OCI_DIGEST_STRING_MAX] = "-", when[32];
    cJSON *o;

    if (e->rec.size > 0 || e->cached)
        oci_digest_format(&e->rec.digest, digest);
    if (!c->json) {
        printf("%s/%s%c%s\t%s\t%" PRIu64 "\t%s\t%s\n", e->namespace_, e->name,
               e->by_digest ? '@' : ':', e->reference, digest, e->rec.size,
               e->cached ? "cached" : "evicted", iso_time(e->last_use, when));
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "namespace", e->namespace_);
    cJSON_AddStringToObject(o, "repository", e->name);
    cJSON_AddStringToObject(o, e->by_digest ? "digest_reference" : "tag", e->reference);
    cJSON_AddStringToObject(o, "digest", digest);
    cJSON_AddNumberToObject(o, "size", (double)e->rec.size);
    cJSON_AddStringToObject(o, "media_type", e->rec.media_type);
    cJSON_AddBoolToObject(o, "cached", e->cached);
    cJSON_AddStringToObject(o, "last_use", iso_time(e->last_use, when));
    cJSON_AddItemToArray(c->out, o);
}

static int cmd_ls(struct cmd *c)
{
    struct oci_inventory_target filter;
    enum storage_err err;

    if (c->arg != NULL &&
        (!oci_inventory_parse(c->arg, &filter) ||
         (filter.kind != OCI_INVENTORY_NAMESPACE && filter.kind != OCI_INVENTORY_REPOSITORY)))
        return fcgi_usage_error("cache: ls takes NS or NS/REPO, not '%s'", c->arg);
    if (c->json)
        c->out = cJSON_CreateArray();
    err = oci_inventory_list(c->st, c->e->usage, c->arg ? &filter : NULL, ls_entry, c);
    if (c->json)
        print_json(c->out);
    return err == STORAGE_OK ? EXIT_SUCCESS : storage_trouble("ls", err);
}

/* ---- du ------------------------------------------------------------------ */

static void du_progress(void *arg, unsigned long done, unsigned long total, const char *bad)
{
    (void)bad;
    show_progress(arg, "du", done, total, "manifest records");
}

static void du_namespace(void *arg, const struct oci_inventory_usage *u)
{
    struct cmd *c = arg;
    cJSON *o;

    if (!c->json) {
        printf("%s\t%" PRIu64 "\t%lu blobs\t%lu records\n", u->namespace_, u->bytes, u->blobs,
               u->records);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "namespace", u->namespace_);
    cJSON_AddNumberToObject(o, "bytes", (double)u->bytes);
    cJSON_AddNumberToObject(o, "blobs", (double)u->blobs);
    cJSON_AddNumberToObject(o, "records", (double)u->records);
    cJSON_AddItemToArray(cJSON_GetObjectItem(c->out, "namespaces"), o);
}

static int cmd_du(struct cmd *c)
{
    struct oci_inventory_du t;
    enum storage_err err;

    if (c->arg != NULL)
        return fcgi_usage_error("cache: du takes no argument, not '%s'", c->arg);
    if (c->json) {
        c->out = cJSON_CreateObject();
        cJSON_AddItemToObject(c->out, "namespaces", cJSON_CreateArray());
    }
    err = oci_inventory_du(c->st, du_namespace, c, du_progress, &t);
    if (!c->json && err == STORAGE_OK) {
        printf("(unreferenced)\t%" PRIu64 "\t%lu blobs\n", t.unreferenced_bytes,
               t.unreferenced_blobs);
        printf("(total)\t%" PRIu64 "\t%lu blobs\n", t.bytes, t.blobs);
    } else if (c->json) {
        cJSON_AddNumberToObject(c->out, "bytes", (double)t.bytes);
        cJSON_AddNumberToObject(c->out, "blobs", (double)t.blobs);
        cJSON_AddNumberToObject(c->out, "unreferenced_bytes", (double)t.unreferenced_bytes);
        cJSON_AddNumberToObject(c->out, "unreferenced_blobs", (double)t.unreferenced_blobs);
        print_json(c->out);
    }
    return err == STORAGE_OK ? EXIT_SUCCESS : storage_trouble("du", err);
}

/* ---- verify -------------------------------------------------------------- */

static void verify_progress(void *arg, unsigned long done, unsigned long total, const char *bad)
{
    struct cmd *c = arg;

    if (bad != NULL) {
        if (c->tty)
            fputs("\r\033[K", stderr);
        if (c->json)
            cJSON_AddItemToArray(cJSON_GetObjectItem(c->out, "corrupt"), cJSON_CreateString(bad));
        else
            printf("corrupt\t%s\n", bad);
        fflush(stdout);
    }
    show_progress(c, "verify", done, total, "blobs");
}

static int cmd_verify(struct cmd *c)
{
    struct oci_inventory_verified v;
    enum storage_err err;

    if (c->arg != NULL)
        return fcgi_usage_error("cache: verify takes no argument but --repair, not '%s'", c->arg);
    if (c->json) {
        c->out = cJSON_CreateObject();
        cJSON_AddItemToObject(c->out, "corrupt", cJSON_CreateArray());
    }
    err = oci_inventory_verify(c->st, c->e, c->repair, verify_progress, c, &v);
    if (c->json) {
        cJSON_AddNumberToObject(c->out, "checked", (double)v.checked);
        cJSON_AddNumberToObject(c->out, "bytes", (double)v.bytes);
        cJSON_AddNumberToObject(c->out, "quarantined", (double)v.quarantined);
        print_json(c->out);
    } else {
        printf("checked %lu blobs (%" PRIu64 " bytes): %lu corrupt, %lu quarantined\n", v.checked,
               v.bytes, v.corrupt, v.quarantined);
    }
    if (err != STORAGE_OK)
        return storage_trouble("verify", err);
    return v.corrupt > 0 ? EXIT_TROUBLE : EXIT_SUCCESS;
}

/* ---- evict --------------------------------------------------------------- */

static void evict_progress(void *arg, unsigned long done, unsigned long total)
{
    show_progress(arg, "evict", done, total, "candidates");
}

static int cmd_evict(struct cmd *c)
{
    struct oci_evict_stats s;
    uint64_t target;
    enum storage_err err;

    if (c->to == NULL || c->arg != NULL)
        return fcgi_usage_error("cache: evict needs --to SIZE");
    if (!oci_size_parse(c->to, &target, NULL))
        return fcgi_usage_error(
            "cache: evict --to must be a size such as 40GiB, 800MB or 0, not '%s'", c->to);
    c->e->progress = evict_progress;
    c->e->progress_arg = c;
    err = oci_evict_run(c->st, c->e, target, time(NULL), &s);
    if (err != STORAGE_OK)
        return storage_trouble("evict", err);
    if (s.skipped) {
        fputs("oci-registry: cache evict: another process is evicting; try again\n", stderr);
        return EXIT_TROUBLE;
    }
    if (c->json) {
        c->out = cJSON_CreateObject();
        cJSON_AddNumberToObject(c->out, "evicted_blobs", (double)s.evicted_objects);
        cJSON_AddNumberToObject(c->out, "evicted_bytes", (double)s.evicted_bytes);
        cJSON_AddNumberToObject(c->out, "spared", (double)s.spared);
        cJSON_AddNumberToObject(c->out, "bytes", (double)(s.walked_bytes - s.evicted_bytes));
        print_json(c->out);
    } else {
        printf("evicted %" PRIu64 " blobs (%" PRIu64 " bytes), spared %lu; %" PRIu64
               " bytes left\n",
               s.evicted_objects, s.evicted_bytes, s.spared, s.walked_bytes - s.evicted_bytes);
    }
    return EXIT_SUCCESS;
}

/* ---- rm ------------------------------------------------------------------ */

static int cmd_rm(struct cmd *c)
{
    struct oci_inventory_target t;
    struct oci_inventory_removed r;
    enum storage_err err;

    if (c->arg == NULL)
        return fcgi_usage_error(
            "cache: rm needs a reference: NS, NS/REPO, NS/REPO:TAG, NS/REPO@DIGEST or "
            "DIGEST");
    if (!oci_inventory_parse(c->arg, &t))
        return fcgi_usage_error(
            "cache: '%s' is not NS, NS/REPO, NS/REPO:TAG, NS/REPO@DIGEST or DIGEST", c->arg);
    err = oci_inventory_remove(c->st, c->e, &t, &r);
    if (err == STORAGE_NOT_FOUND) {
        fprintf(stderr, "oci-registry: cache rm: nothing cached under %s\n", c->arg);
        return EXIT_TROUBLE;
    }
    if (err != STORAGE_OK)
        return storage_trouble("rm", err);
    if (c->json) {
        c->out = cJSON_CreateObject();
        cJSON_AddNumberToObject(c->out, "records", (double)r.records);
        cJSON_AddNumberToObject(c->out, "blobs", (double)r.blobs);
        cJSON_AddNumberToObject(c->out, "bytes", (double)r.bytes);
        print_json(c->out);
    } else {
        printf("removed %lu records and %lu blobs (%" PRIu64 " bytes)\n", r.records, r.blobs,
               r.bytes);
    }
    return EXIT_SUCCESS;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct {
    const char *name;
    int (*run)(struct cmd *c);
} commands[] = {
    {"ls", cmd_ls}, {"du", cmd_du}, {"verify", cmd_verify}, {"evict", cmd_evict}, {"rm", cmd_rm},
};

/* Reads the command's flags and its one positional argument. */
static int parse(int argc, char **argv, struct cmd *c)
{
    static const struct option flags[] = {
        {"json", no_argument, NULL, 'j'},
        {"repair", no_argument, NULL, 'r'},
        {"to", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    optind = 0; /* 0: GNU getopt starts afresh, permuting (the options' parse did not) */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", flags, NULL)) != -1) {
        if (opt == 'j')
            c->json = true;
        else if (opt == 'r' && strcmp(argv[0], "verify") == 0)
            c->repair = true;
        else if (opt == 't' && strcmp(argv[0], "evict") == 0)
            c->to = optarg;
        else
            return fcgi_usage_error("cache: %s: unknown option or missing value (see --help)",
                                    argv[0]);
    }
    if (argc - optind > 1)
        return fcgi_usage_error("cache: unexpected argument '%s'", argv[optind + 1]);
    c->arg = optind < argc ? argv[optind] : NULL;
    return EXIT_SUCCESS;
}

int fcgi_cache_command(int argc, char **argv, struct storage *st, struct oci_evictor *e)
{
    struct cmd c = {.st = st, .e = e, .tty = isatty(STDERR_FILENO)};
    size_t i;
    int status;

    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[0], commands[i].name) != 0)
            continue;
        status = parse(argc, argv, &c);
        return status != EXIT_SUCCESS ? status : commands[i].run(&c);
    }
    return fcgi_usage_error("cache: unknown command '%s': ls, du, verify, evict or rm", argv[0]);
}
