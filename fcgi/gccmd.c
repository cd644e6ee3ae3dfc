/*
 * gccmd.c - the `gc` command's command line and output (see gccmd.h).
 */
#include "autoconfig.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ops/gc.h"
#include "core/upstream/config.h"
#include "fcgi/gccmd.h"
#include "fcgi/options.h"

static int parse(int argc, char **argv, struct oci_gc_options *o)
{
    static const struct option flags[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"grace", required_argument, NULL, 'g'},
        {"delete-untagged", no_argument, NULL, 'u'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    optind = 0; /* 0: GNU getopt starts afresh; argv[0] is "gc" itself */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", flags, NULL)) != -1) {
        if (opt == 'n')
            o->dry_run = true;
        else if (opt == 'u')
            o->delete_untagged = true;
        else if (opt == 'g' && !oci_duration_parse(optarg, &o->grace))
            return fcgi_usage_error("gc: --grace must be a duration such as 600, 10m or 1h, not "
                                    "'%s'",
                                    optarg);
        else if (opt != 'g')
            return fcgi_usage_error("gc: unknown option or missing value (see --help)");
    }
    if (optind < argc)
        return fcgi_usage_error("gc: unexpected argument '%s'", argv[optind]);
    return EXIT_SUCCESS;
}

static void report(void *arg, enum oci_gc_kind kind, const char *key, uint64_t size)
{
    static const char *const kinds[] = {"manifest", "link", "blob"};
    const struct oci_gc_options *o = arg;

    printf("%s\t%s\t%s\t%" PRIu64 "\n", o->dry_run ? "would remove" : "removed", kinds[kind], key,
           size);
}

static void summary(const struct oci_gc_options *o, const struct oci_gc_stats *s)
{
    printf("gc%s: %lu repositories, %lu manifests marked, %lu manifests %s, %lu links %s, "
           "%lu blobs kept, %lu blobs %s (%" PRIu64 " bytes %s), %lu spared\n",
           o->dry_run ? " (dry run)" : "", s->repositories, s->manifests_marked,
           s->manifests_removed, o->dry_run ? "to remove" : "removed", s->links_removed,
           o->dry_run ? "to remove" : "removed", s->blobs_kept, s->blobs_removed,
           o->dry_run ? "to remove" : "removed", s->bytes_freed, o->dry_run ? "to free" : "freed",
           s->blobs_spared);
    if (s->unreadable > 0)
        printf("gc: %lu repositories not swept: a manifest could not be read (see the log)\n",
               s->unreadable);
}

int fcgi_gc_command(int argc, char **argv, struct storage *st, struct oci_evictor *e)
{
    struct oci_gc_options o = {.now = time(NULL), .grace = OCI_GC_DEFAULT_GRACE};
    struct oci_gc_stats s;
    enum storage_err err;
    int status = parse(argc, argv, &o);

    if (status != EXIT_SUCCESS)
        return status;
    err = oci_gc_run(st, e, &o, report, &o, &s);
    if (err != STORAGE_IN_PROGRESS)
        summary(&o, &s);
    if (err == STORAGE_IN_PROGRESS) {
        fprintf(stderr, "oci-registry: gc: another host's gc holds the lease: not run\n");
        return EXIT_FAILURE;
    }
    if (err != STORAGE_OK) {
        fprintf(stderr, "oci-registry: gc: %s: stopped\n", storage_strerror(err));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
