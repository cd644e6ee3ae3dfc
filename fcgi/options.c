/*
 * options.c - parses the command line and the environment into options.
 *
 * Defaults come first, then the environment, then the command line, so a
 * flag always wins over a variable. The storage backend is a subcommand
 * with options of its own, as in the reference.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/upstream/config.h"
#include "core/cache/evict.h"
#include "fcgi/options.h"

#define DEFAULT_WORKERS 32
#define MAX_WORKERS     1024

static const char usage[] =
    "Usage: oci-registry [OPTIONS] filesystem --root DIR\n"
    "       oci-registry [OPTIONS] s3 --host HOST[:PORT] --bucket B [--access-key K\n"
    "                                 --secret-key S] [S3 OPTIONS]\n"
    "       oci-registry [OPTIONS] STORAGE... cache ls|du|verify|evict|rm [ARGS] [--json]\n"
    "       oci-registry [OPTIONS] STORAGE... gc [--dry-run] [--grace DURATION]\n"
    "                                            [--delete-untagged]\n"
    "\n"
    "A pull-through cache for OCI and Docker registries, served as a FastCGI\n"
    "responder behind nginx or lighttpd.\n"
    "\n"
    "Options (each also read from the environment variable in brackets):\n"
    "  --listen HOST:PORT|unix:PATH  FastCGI socket to listen on; without it, serve\n"
    "                                the socket passed on fd 0 (spawn-fcgi) [LISTEN]\n"
    "  --default-namespace NS        registry of requests that name none\n"
    "                                (default docker.io) [DEFAULT_NAMESPACE]\n"
    "  --upstream-config-file FILE   YAML list of upstreams [UPSTREAM_CONFIG_FILE]\n"
    "  --check-cache-digest          verify cached content before serving it\n"
    "                                [CHECK_CACHE_DIGEST]\n"
    "  --workers N                   concurrent requests (default 32) [WORKERS]\n"
    "  --no-dynamic-namespaces       serve only the namespaces in the config\n"
    "                                [DYNAMIC_NAMESPACES=false]\n"
    "  --front auto|nginx|lighttpd   how cached files are handed to the front server:\n"
    "                                X-Accel-Redirect (nginx) or X-Sendfile (lighttpd);\n"
    "                                auto tells them apart per request [FRONT]\n"
    "  --connect-timeout SECONDS     upstream connect limit (default 10) [CONNECT_TIMEOUT]\n"
    "  --low-speed-timeout SECONDS   abort an upstream transfer stalled this long\n"
    "                                (default 30) [LOW_SPEED_TIMEOUT]\n"
    "  --low-speed-limit BYTES       abort a blob download slower than this many\n"
    "                                bytes/s over the low-speed timeout (default\n"
    "                                16384) [LOW_SPEED_LIMIT]\n"
    "  --upstream-timeout SECONDS    limit for a whole upstream answer other than a\n"
    "                                blob download: manifests, HEADs, tokens\n"
    "                                (default 60) [UPSTREAM_TIMEOUT]\n"
    "  --max-fetches N               requests sent to upstreams at once; more get 503\n"
    "                                at once, and the other workers stay free for\n"
    "                                cache hits (default 22 of 32 workers) [MAX_FETCHES]\n"
    "  --max-fetches-per-upstream N  requests sent to one upstream at once (default\n"
    "                                3/4 of --max-fetches) [MAX_FETCHES_PER_UPSTREAM]\n"
    "  --cleanup-interval SECONDS    how often content unused for longer than its\n"
    "                                blob_invalidation_time is removed (default 3600;\n"
    "                                0: never) [CLEANUP_INTERVAL]\n"
    "  --upload-lifetime SECONDS     how long an upload to a hosted namespace may\n"
    "                                sit idle before cleanup removes it (default\n"
    "                                86400) [UPLOAD_LIFETIME]\n"
    "  --front-cache-time DURATION   the longest nginx may keep a manifest answer:\n"
    "                                a removal (cache rm, the admin API) reaches\n"
    "                                clients within it (default 1m; 0: never kept)\n"
    "                                [FRONT_CACHE_TIME]\n"
    "Size bound (eviction of the least recently used content):\n"
    "  --max-cache-size SIZE         bound of the cached bytes: 50GiB, 800MB, 12345\n"
    "                                (bytes), or 90% of the filesystem; at least\n"
    "                                64MiB; default none [MAX_CACHE_SIZE]\n"
    "  --min-cache-age DURATION      content younger than this is never evicted\n"
    "                                (default 10m) [MIN_CACHE_AGE]\n"
    "  --cache-low-water PERCENT     eviction goes down to this share of the bound\n"
    "                                (default 90) [CACHE_LOW_WATER]\n"
    "  --usage-file PATH             the host's record of last use and size (default\n"
    "                                ROOT/.usage; S3: $TMPDIR/oci-registry-BUCKET.usage)\n"
    "                                [USAGE_FILE]\n"
    "  --admin                       serve DELETE /_admin/... through the front server's\n"
    "                                protected location (see oci-registry(8)) [ADMIN]\n"
    "  -h, --help                    show this help\n"
    "  -V, --version                 show the version\n"
    "\n"
    "Storage:\n"
    "  filesystem --root DIR         cache under DIR [FILESYSTEM_ROOT]\n"
    "  s3                            cache in an S3 bucket (AWS Signature Version 4):\n"
    "    --host [http[s]://]HOST[:PORT]  endpoint; default AWS for the region, https\n"
    "                                unless http:// is given [S3_HOST]\n"
    "    --bucket B                  bucket [S3_BUCKET]\n"
    "    --region R                  region (default us-east-1) [S3_REGION]\n"
    "    --access-key K              access key id [S3_ACCESS_KEY]\n"
    "    --secret-key S              secret access key [S3_SECRET_KEY]; prefer the\n"
    "                                variable: arguments are visible to other users\n"
    "    --path-style                HOST/B/key URLs instead of B.HOST/key [S3_PATH_STYLE]\n"
    "    --ca-file F                 trust this PEM bundle for the endpoint [S3_CA_FILE]\n"
    "    --prefix P                  keep every key under P/ in the bucket [S3_PREFIX]\n"
    "    --s3-redirect               answer hits with a 307 to a presigned URL instead\n"
    "                                of having nginx proxy it [S3_REDIRECT]\n"
    "    --lease-ttl SECONDS         how long a replica's lease on a download or a\n"
    "                                cleanup pass outlives the replica (default 30)\n"
    "                                [S3_LEASE_TTL]\n"
    "\n"
    "Cache commands, on the storage given before them (see oci-registry(8)):\n"
    "  cache ls [NS[/REPO]]          cached manifests and blobs: size, last use\n"
    "  cache du                      totals per namespace\n"
    "  cache verify [--repair]       re-hash every blob; --repair quarantines the\n"
    "                                corrupt ones; exit 1 if any\n"
    "  cache evict --to SIZE         evict least recently used blobs down to SIZE\n"
    "  cache rm REF                  remove NS/REPO:TAG, NS/REPO@DIGEST, a blob\n"
    "                                DIGEST, NS/REPO or NS\n"
    "\n"
    "Garbage collection of hosted namespaces, on the storage given before it:\n"
    "  gc                            remove blobs no hosted manifest references any\n"
    "                                more (links, then content no other repository\n"
    "                                and no mirrored manifest uses); safe while\n"
    "                                responders serve the same storage\n"
    "    --dry-run                   list what would be removed, remove nothing\n"
    "    --grace DURATION            keep what was written or used this recently:\n"
    "                                pushes in progress (default 1h)\n"
    "    --delete-untagged           remove manifests no tag reaches too (default:\n"
    "                                keep them)\n"
    "\n"
    "Credentials for upstreams come from the config file or from\n"
    "UPSTREAM_CREDENTIALS (JSON); S3 keys without --access-key from\n"
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials (AWS_PROFILE);\n"
    "see oci-registry(8).\n";

enum {
    OPT_LISTEN = 256,
    OPT_DEFAULT_NAMESPACE,
    OPT_UPSTREAM_CONFIG_FILE,
    OPT_CHECK_CACHE_DIGEST,
    OPT_WORKERS,
    OPT_NO_DYNAMIC_NAMESPACES,
    OPT_FRONT,
    OPT_CONNECT_TIMEOUT,
    OPT_LOW_SPEED_TIMEOUT,
    OPT_LOW_SPEED_LIMIT,
    OPT_UPSTREAM_TIMEOUT,
    OPT_MAX_FETCHES,
    OPT_MAX_FETCHES_PER_UPSTREAM,
    OPT_CLEANUP_INTERVAL,
    OPT_UPLOAD_LIFETIME,
    OPT_FRONT_CACHE_TIME,
    /* the size bound */
    OPT_MAX_CACHE_SIZE,
    OPT_MIN_CACHE_AGE,
    OPT_CACHE_LOW_WATER,
    OPT_USAGE_FILE,
    OPT_ADMIN,
    OPT_ROOT,
    OPT_S3_HOST,
    OPT_S3_BUCKET,
    OPT_S3_REGION,
    OPT_S3_ACCESS_KEY,
    OPT_S3_SECRET_KEY,
    OPT_S3_PATH_STYLE,
    OPT_S3_CA_FILE,
    OPT_S3_PREFIX,
    OPT_S3_REDIRECT,
    OPT_S3_MULTIPART_THRESHOLD,
    OPT_S3_LEASE_TTL,
};

static const struct option global_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"default-namespace", required_argument, NULL, OPT_DEFAULT_NAMESPACE},
    {"upstream-config-file", required_argument, NULL, OPT_UPSTREAM_CONFIG_FILE},
    {"check-cache-digest", no_argument, NULL, OPT_CHECK_CACHE_DIGEST},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"no-dynamic-namespaces", no_argument, NULL, OPT_NO_DYNAMIC_NAMESPACES},
    {"front", required_argument, NULL, OPT_FRONT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"low-speed-timeout", required_argument, NULL, OPT_LOW_SPEED_TIMEOUT},
    {"low-speed-limit", required_argument, NULL, OPT_LOW_SPEED_LIMIT},
    {"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
    {"max-fetches", required_argument, NULL, OPT_MAX_FETCHES},
    {"max-fetches-per-upstream", required_argument, NULL, OPT_MAX_FETCHES_PER_UPSTREAM},
    {"cleanup-interval", required_argument, NULL, OPT_CLEANUP_INTERVAL},
    {"upload-lifetime", required_argument, NULL, OPT_UPLOAD_LIFETIME},
    {"front-cache-time", required_argument, NULL, OPT_FRONT_CACHE_TIME},
    /* the size bound */
    {"max-cache-size", required_argument, NULL, OPT_MAX_CACHE_SIZE},
    {"min-cache-age", required_argument, NULL, OPT_MIN_CACHE_AGE},
    {"cache-low-water", required_argument, NULL, OPT_CACHE_LOW_WATER},
    {"usage-file", required_argument, NULL, OPT_USAGE_FILE},
    {"admin", no_argument, NULL, OPT_ADMIN},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const struct option filesystem_options[] = {
    {"root", required_argument, NULL, OPT_ROOT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option s3_options[] = {
    {"host", required_argument, NULL, OPT_S3_HOST},
    {"bucket", required_argument, NULL, OPT_S3_BUCKET},
    {"region", required_argument, NULL, OPT_S3_REGION},
    {"access-key", required_argument, NULL, OPT_S3_ACCESS_KEY},
    {"secret-key", required_argument, NULL, OPT_S3_SECRET_KEY},
    {"path-style", no_argument, NULL, OPT_S3_PATH_STYLE},
    {"ca-file", required_argument, NULL, OPT_S3_CA_FILE},
    {"prefix", required_argument, NULL, OPT_S3_PREFIX},
    {"s3-redirect", no_argument, NULL, OPT_S3_REDIRECT},
    {"lease-ttl", required_argument, NULL, OPT_S3_LEASE_TTL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void fcgi_vfail(const char *fmt, va_list ap)
{
    fputs("oci-registry: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int fcgi_usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fcgi_vfail(fmt, ap);
    va_end(ap);
    return FCGI_EXIT_USAGE;
}

/* Prints one line naming the problem; always false, for "return fail(...)". */
__attribute__((format(printf, 1, 2))) static bool fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fcgi_vfail(fmt, ap);
    va_end(ap);
    return false;
}

static bool parse_bool(const char *name, const char *value, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcasecmp(value, yes[i]) == 0)
            return *out = true, true;
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcasecmp(value, no[i]) == 0)
            return *out = false, true;
    return fail("%s must be true or false", name);
}

static bool parse_long(const char *name, const char *value, long min, long max, long *out)
{
    char *end;
    long n = 0;

    n = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || n < min || n > max)
        return fail("%s must be a whole number in range", name);
    *out = n;
    return true;
}

static bool parse_front(const char *value, enum fcgi_front *out)
{
    if (strcmp(value, "auto") == 0)
        *out = FCGI_FRONT_AUTO;
    else if (strcmp(value, "nginx") == 0)
        *out = FCGI_FRONT_NGINX;
    else if (strcmp(value, "lighttpd") == 0)
        *out = FCGI_FRONT_LIGHTTPD;
    else
        return fail("--front must be auto, nginx or lighttpd, not '%s'", value);
    return true;
}

/* Applies one S3 option; values are never echoed (one is a secret). */
static bool apply_s3(int opt, const char *name, const char *value, struct fcgi_s3_options *s3)
{
    const char **field = NULL;

    switch (opt) {
    case OPT_S3_PATH_STYLE:
        return parse_bool(name, value, &s3->path_style);
    case OPT_S3_REDIRECT:
        return parse_bool(name, value, &s3->redirect);
    case OPT_S3_MULTIPART_THRESHOLD:
        return parse_long(name, value, 5L * 1024 * 1024, 5L * 1024 * 1024 * 1024,
                          &s3->multipart_threshold);
    case OPT_S3_LEASE_TTL:
        return parse_long(name, value, 3, 3600, &s3->lease_ttl);
    case OPT_S3_HOST:
        field = &s3->host;
        break;
    case OPT_S3_BUCKET:
        field = &s3->bucket;
        break;
    case OPT_S3_REGION:
        field = &s3->region;
        break;
    case OPT_S3_ACCESS_KEY:
        field = &s3->access_key;
        break;
    case OPT_S3_SECRET_KEY:
        field = &s3->secret_key;
        break;
    case OPT_S3_CA_FILE:
        field = &s3->ca_file;
        break;
    case OPT_S3_PREFIX:
        field = &s3->prefix;
        break;
    }
    if (field == NULL)
        return false;
    *field = *value ? value : NULL;
    return true;
}

/* Applies one option of the size bound. */
static bool apply_cache(int opt, const char *name, const char *value, struct fcgi_cache_options *c)
{
    long n = 0;

    switch (opt) {
    case OPT_MAX_CACHE_SIZE:
        c->max_bytes = 0;
        c->max_percent = 0;
        if (*value == '\0') /* MAX_CACHE_SIZE= (a chart's empty value): no bound */
            return true;
        if (!oci_size_parse(value, &c->max_bytes, &c->max_percent))
            return fail("%s must be a size such as 50GiB, 800MB, 12345 (bytes) or 90%%, not '%s'",
                        name, value);
        if (c->max_percent == 0 && c->max_bytes < OCI_EVICT_MIN_BOUND)
            return fail("%s %s is below the smallest bound, 64MiB", name, value);
        return true;
    case OPT_MIN_CACHE_AGE:
        if (!oci_duration_parse(value, &c->min_age))
            return fail("%s must be a duration such as 600, 10m or 1h, not '%s'", name, value);
        return true;
    case OPT_CACHE_LOW_WATER:
        if (!parse_long(name, value, 10, 99, &n))
            return false;
        c->low_water = (unsigned)n;
        return true;
    case OPT_USAGE_FILE:
        c->usage_file = *value ? value : NULL;
        return true;
    case OPT_ADMIN:
        return parse_bool(name, value, &c->admin);
    }
    return false;
}

/* Applies one option, whether from a flag or from its environment variable. */
static bool apply(int opt, const char *name, const char *value, struct fcgi_options *o)
{
    long n = 0;

    switch (opt) {
    case OPT_LISTEN:
        o->listen = value;
        return *value != '\0' || fail("%s must not be empty", name);
    case OPT_DEFAULT_NAMESPACE:
        o->default_namespace = value;
        return *value != '\0' || fail("%s must not be empty", name);
    case OPT_UPSTREAM_CONFIG_FILE:
        o->upstream_config_file = *value ? value : NULL;
        return true;
    case OPT_CHECK_CACHE_DIGEST:
        return parse_bool(name, value, &o->check_cache_digest);
    case OPT_NO_DYNAMIC_NAMESPACES:
        return parse_bool(name, value, &o->dynamic_namespaces);
    case OPT_WORKERS:
        if (!parse_long(name, value, 1, MAX_WORKERS, &n))
            return false;
        o->workers = (int)n;
        return true;
    case OPT_MAX_FETCHES:
    case OPT_MAX_FETCHES_PER_UPSTREAM:
        if (!parse_long(name, value, 1, MAX_WORKERS, &n))
            return false;
        *(opt == OPT_MAX_FETCHES ? &o->max_fetches : &o->max_fetches_per_upstream) = (int)n;
        return true;
    case OPT_FRONT:
        return parse_front(value, &o->front);
    case OPT_CONNECT_TIMEOUT:
        return parse_long(name, value, 1, 3600, &o->connect_timeout);
    case OPT_LOW_SPEED_TIMEOUT:
        return parse_long(name, value, 1, 3600, &o->low_speed_timeout);
    case OPT_LOW_SPEED_LIMIT:
        return parse_long(name, value, 1, 1L << 30, &o->low_speed_limit);
    case OPT_UPSTREAM_TIMEOUT:
        return parse_long(name, value, 1, 3600, &o->upstream_timeout);
    case OPT_CLEANUP_INTERVAL:
        return parse_long(name, value, 0, 7L * 24 * 3600, &o->cleanup_interval);
    case OPT_UPLOAD_LIFETIME:
        return parse_long(name, value, 1, 365L * 24 * 3600, &o->upload_lifetime);
    case OPT_FRONT_CACHE_TIME:
        if (!oci_duration_parse(value, &o->front_cache_time) ||
            o->front_cache_time > 365L * 24 * 3600)
            return fail("%s must be a duration such as 0, 60, 1m or 1h, not '%s'", name, value);
        return true;
    case OPT_ROOT:
        o->root = value;
        return *value != '\0' || fail("%s must not be empty", name);
    case OPT_MAX_CACHE_SIZE:
    case OPT_MIN_CACHE_AGE:
    case OPT_CACHE_LOW_WATER:
    case OPT_USAGE_FILE:
    case OPT_ADMIN:
        return apply_cache(opt, name, value, &o->cache);
    }
    return apply_s3(opt, name, value, &o->s3);
}

static bool apply_environment(struct fcgi_options *o)
{
    static const struct {
        const char *name;
        int opt;
    } vars[] = {
        {"LISTEN", OPT_LISTEN},
        {"DEFAULT_NAMESPACE", OPT_DEFAULT_NAMESPACE},
        {"UPSTREAM_CONFIG_FILE", OPT_UPSTREAM_CONFIG_FILE},
        {"CHECK_CACHE_DIGEST", OPT_CHECK_CACHE_DIGEST},
        {"WORKERS", OPT_WORKERS},
        {"DYNAMIC_NAMESPACES", OPT_NO_DYNAMIC_NAMESPACES},
        {"FRONT", OPT_FRONT},
        {"CONNECT_TIMEOUT", OPT_CONNECT_TIMEOUT},
        {"LOW_SPEED_TIMEOUT", OPT_LOW_SPEED_TIMEOUT},
        {"LOW_SPEED_LIMIT", OPT_LOW_SPEED_LIMIT},
        {"UPSTREAM_TIMEOUT", OPT_UPSTREAM_TIMEOUT},
        {"MAX_FETCHES", OPT_MAX_FETCHES},
        {"MAX_FETCHES_PER_UPSTREAM", OPT_MAX_FETCHES_PER_UPSTREAM},
        {"CLEANUP_INTERVAL", OPT_CLEANUP_INTERVAL},
        {"UPLOAD_LIFETIME", OPT_UPLOAD_LIFETIME},
        {"FRONT_CACHE_TIME", OPT_FRONT_CACHE_TIME},
        {"MAX_CACHE_SIZE", OPT_MAX_CACHE_SIZE},
        {"MIN_CACHE_AGE", OPT_MIN_CACHE_AGE},
        {"CACHE_LOW_WATER", OPT_CACHE_LOW_WATER},
        {"USAGE_FILE", OPT_USAGE_FILE},
        {"ADMIN", OPT_ADMIN},
        {"FILESYSTEM_ROOT", OPT_ROOT},
        {"S3_HOST", OPT_S3_HOST},
        {"S3_BUCKET", OPT_S3_BUCKET},
        {"S3_REGION", OPT_S3_REGION},
        {"S3_ACCESS_KEY", OPT_S3_ACCESS_KEY},
        {"S3_SECRET_KEY", OPT_S3_SECRET_KEY},
        {"S3_PATH_STYLE", OPT_S3_PATH_STYLE},
        {"S3_CA_FILE", OPT_S3_CA_FILE},
        {"S3_PREFIX", OPT_S3_PREFIX},
        {"S3_REDIRECT", OPT_S3_REDIRECT},
        {"S3_MULTIPART_THRESHOLD", OPT_S3_MULTIPART_THRESHOLD},
        {"S3_LEASE_TTL", OPT_S3_LEASE_TTL},
    };
    size_t i;

    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *value = getenv(vars[i].name);

        if (value != NULL && !apply(vars[i].opt, vars[i].name, value, o))
            return false;
    }
    return true;
}

/* Reads a flag's value: "true" for switches, which have none. */
static const char *flag_value(int opt)
{
    if (opt == OPT_CHECK_CACHE_DIGEST)
        return "true";
    if (opt == OPT_NO_DYNAMIC_NAMESPACES)
        return "false";
    if (opt == OPT_S3_PATH_STYLE || opt == OPT_S3_REDIRECT || opt == OPT_ADMIN)
        return "true";
    return optarg;
}

/* getopt_long over argv with the given table; returns the first non-option index or -1. */
static int parse_flags(int argc, char **argv, const struct option *table, struct fcgi_options *o,
                       enum fcgi_options_result *result)
{
    int opt, index;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:hV", table, &index)) != -1) {
        if (opt == 'h') {
            fputs(usage, stdout);
            *result = FCGI_OPTIONS_EXIT;
            return -1;
        }
        if (opt == 'V') {
            printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
            *result = FCGI_OPTIONS_EXIT;
            return -1;
        }
        if (opt == '?' || opt == ':') {
            fail("%s '%s' (see --help)", opt == '?' ? "unknown option" : "missing value for",
                 argv[optind - 1]);
            *result = FCGI_OPTIONS_ERROR;
            return -1;
        }
        if (!apply(opt, table[index].name, flag_value(opt), o)) {
            *result = FCGI_OPTIONS_ERROR;
            return -1;
        }
    }
    return optind;
}

/*
 * The fetch limits not given follow --workers: a third of the workers (at
 * least one) is kept for what needs no upstream - more than the 8 idle
 * connections one nginx worker of the shipped config keeps open, each of
 * which holds a worker - and one upstream may take three quarters of the
 * rest: enough for a client's parallel layer downloads (containerd and
 * Docker fetch 3 at a time, skopeo 6) while leaving room for the others.
 * With one worker nothing can be kept.
 */
static bool resolve_fetch_limits(struct fcgi_options *o)
{
    int keep = o->workers / 3 > 1 ? o->workers / 3 : 1;

    if (o->max_fetches == 0)
        o->max_fetches = o->workers > keep ? o->workers - keep : 1;
    if (o->max_fetches_per_upstream == 0)
        o->max_fetches_per_upstream = o->max_fetches > 1 ? o->max_fetches * 3 / 4 : 1;
    if (o->max_fetches > o->workers)
        return fail("--max-fetches (%d) must not exceed --workers (%d)", o->max_fetches,
                    o->workers);
    if (o->max_fetches_per_upstream > o->max_fetches)
        return fail("--max-fetches-per-upstream (%d) must not exceed --max-fetches (%d)",
                    o->max_fetches_per_upstream, o->max_fetches);
    return true;
}

/* The S3 options that have no default must be there, and keys come in pairs. */
static bool s3_complete(const struct fcgi_s3_options *s3)
{
    if (s3->bucket == NULL)
        return fail("s3 storage needs --bucket (or S3_BUCKET)");
    /* Neither: the standard AWS sources are looked at (storage/s3_credentials.h). */
    if ((s3->access_key == NULL) != (s3->secret_key == NULL))
        return fail("s3 storage: --access-key and --secret-key (or S3_ACCESS_KEY and "
                    "S3_SECRET_KEY) go together");
    return true;
}

/* The storage's options that have no default are there, and fit the other options. */
static bool storage_complete(const struct fcgi_options *o)
{
    if (o->storage == FCGI_STORAGE_S3) {
        if (o->cache.max_percent > 0)
            return fail("--max-cache-size %u%% needs filesystem storage: give S3 a size",
                        o->cache.max_percent);
        return s3_complete(&o->s3);
    }
    if (o->root == NULL)
        return fail("filesystem storage needs --root DIR");
    return true;
}

enum fcgi_options_result fcgi_options_parse(int argc, char **argv, struct fcgi_options *o)
{
    enum fcgi_options_result result = FCGI_OPTIONS_RUN;
    int first;

    *o = (struct fcgi_options){
        .default_namespace = "docker.io",
        .dynamic_namespaces = true,
        .workers = DEFAULT_WORKERS,
        .connect_timeout = 10,
        .low_speed_timeout = 30,
        .low_speed_limit = 16 * 1024,
        .upstream_timeout = 60,
        .cleanup_interval = 3600,
        .upload_lifetime = 24L * 3600,
        .front_cache_time = 60,
        .cache = {.min_age = OCI_EVICT_DEFAULT_MIN_AGE, .low_water = OCI_EVICT_DEFAULT_LOW_WATER},
    };
    if (!apply_environment(o))
        return FCGI_OPTIONS_ERROR;
    first = parse_flags(argc, argv, global_options, o, &result);
    if (first < 0)
        return result;
    if (!resolve_fetch_limits(o))
        return FCGI_OPTIONS_ERROR;
    if (first >= argc) {
        fail("missing storage: filesystem --root DIR (see --help)");
        return FCGI_OPTIONS_ERROR;
    }
    if (strcmp(argv[first], "s3") == 0)
        o->storage = FCGI_STORAGE_S3;
    else if (strcmp(argv[first], "filesystem") != 0) {
        fail("unknown storage '%s' (see --help)", argv[first]);
        return FCGI_OPTIONS_ERROR;
    }
    optind = 1;
    if (parse_flags(argc - first, argv + first,
                    o->storage == FCGI_STORAGE_S3 ? s3_options : filesystem_options, o,
                    &result) < 0)
        return result;
    if (optind < argc - first &&
        (strcmp(argv[first + optind], "cache") == 0 || strcmp(argv[first + optind], "gc") == 0)) {
        o->command = argv[first + optind][0] == 'c' ? FCGI_COMMAND_CACHE : FCGI_COMMAND_GC;
        o->command_argc = argc - first - optind - (o->command == FCGI_COMMAND_CACHE);
        o->command_argv = argv + first + optind + (o->command == FCGI_COMMAND_CACHE);
        if (o->command == FCGI_COMMAND_CACHE && o->command_argc == 0) {
            fail("cache needs a command: ls, du, verify, evict or rm (see --help)");
            return FCGI_OPTIONS_ERROR;
        }
    } else if (optind < argc - first) {
        fail("unexpected argument '%s'", argv[first + optind]);
        return FCGI_OPTIONS_ERROR;
    }
    return storage_complete(o) ? FCGI_OPTIONS_RUN : FCGI_OPTIONS_ERROR;
}
