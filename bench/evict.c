/*
 * bench/evict.c - the size bound against a pull trace: how full the cache
 * gets, its hit ratio, and the hit ratio of an exact LRU over the same trace.
 *
 *   bench/evict [--images N] [--pulls P] [--zipf S] [--interval SECONDS]
 *               [--seed N] [--every K] [--dir DIR]
 *
 * A catalog of N generated images (a manifest, a config, one to four
 * layers; a tenth of the layers are shared base layers) is pulled P times,
 * image popularity Zipf-distributed with exponent S, one pull every
 * INTERVAL simulated seconds. The cache is the real one - the filesystem
 * backend in a temporary directory (or DIR), the usage record, eviction as
 * the cleanup thread runs it (core/cache/evict.h) - bounded at a quarter of the
 * catalog's bytes with the default low-water mark; only the clock is
 * simulated, and eviction runs as soon as a commit passes the bound, where
 * the responder's thread would be woken. Objects are written with their
 * sizes (zeros: content is not what is measured).
 *
 * Prints the cache's size every K pulls and, at the end, one line of
 * key=value results: max_bytes (the largest size seen, right after a
 * commit), bound, largest_object, hit_ratio and byte_hit_ratio, and the
 * same for an exact LRU holding at most the bound (lru_hit_ratio,
 * lru_byte_hit_ratio). The goal: max_bytes <= bound + largest_object, and
 * hit_ratio within 5 points of lru_hit_ratio.
 */
#define _GNU_SOURCE /* nftw */
#include "autoconfig.h"

#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cache/cache.h"
#include "core/cache/evict.h"
#include "storage/fs.h"

#define MAX_LAYERS 4
#define KIB        1024ULL

struct object {
    struct oci_digest digest;
    uint64_t size;
    uint64_t lru_used; /* the exact LRU's clock of its last use; 0: not held */
};

struct image {
    size_t objects[2 + MAX_LAYERS]; /* manifest, config, layers: indexes into objects */
    size_t count;
};

struct bench {
    long images, pulls, every, interval;
    double zipf;
    uint64_t seed;
    struct object *objects;
    size_t nobjects;
    struct image *catalog;
    double *cdf; /* of image popularity */
    uint64_t catalog_bytes, largest;
    /* the exact LRU */
    uint64_t lru_bytes, lru_clock;
    /* results */
    uint64_t max_bytes, hits, misses, hit_bytes, miss_bytes;
    uint64_t lru_hits, lru_misses, lru_hit_bytes, lru_miss_bytes;
};

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A size between lo and hi, log-uniform: many small objects, a few large ones. */
static uint64_t random_size(uint64_t *s, uint64_t lo, uint64_t hi)
{
    double u = (double)(next_random(s) % 1000000) / 1000000.0;

    return (uint64_t)(lo * pow((double)hi / (double)lo, u));
}

static size_t add_object(struct bench *b, uint64_t size)
{
    struct object *o = &b->objects[b->nobjects];
    char name[64];

    snprintf(name, sizeof(name), "object %zu", b->nobjects);
    oci_digest_buffer(OCI_DIGEST_SHA256, name, strlen(name), &o->digest);
    o->size = size;
    b->catalog_bytes += size;
    if (size > b->largest)
        b->largest = size;
    return b->nobjects++;
}

static bool make_catalog(struct bench *b)
{
    size_t bases = (size_t)(b->images / 10 + 1), i, j;
    size_t *base = calloc(bases, sizeof(*base));
    double sum = 0;

    b->objects = calloc(bases + (size_t)b->images * (2 + MAX_LAYERS), sizeof(*b->objects));
    b->catalog = calloc((size_t)b->images, sizeof(*b->catalog));
    b->cdf = calloc((size_t)b->images, sizeof(*b->cdf));
    if (base == NULL || b->objects == NULL || b->catalog == NULL || b->cdf == NULL)
        return false;
    for (i = 0; i < bases; i++)
        base[i] = add_object(b, random_size(&b->seed, 512 * KIB, 4096 * KIB));
    for (i = 0; i < (size_t)b->images; i++) {
        struct image *im = &b->catalog[i];
        size_t layers = 1 + next_random(&b->seed) % MAX_LAYERS;

        im->objects[im->count++] = add_object(b, random_size(&b->seed, 1 * KIB, 4 * KIB));
        im->objects[im->count++] = add_object(b, random_size(&b->seed, 1 * KIB, 8 * KIB));
        for (j = 0; j < layers; j++)
            im->objects[im->count++] =
                j == 0 ? base[next_random(&b->seed) % bases]
                       : add_object(b, random_size(&b->seed, 16 * KIB, 2048 * KIB));
        sum += 1.0 / pow((double)(i + 1), b->zipf);
        b->cdf[i] = sum;
    }
    for (i = 0; i < (size_t)b->images; i++)
        b->cdf[i] /= sum;
    free(base);
    return true;
}

static size_t pick_image(struct bench *b)
{
    double u = (double)(next_random(&b->seed) % 1000000000) / 1000000000.0;
    size_t lo = 0, hi = (size_t)b->images - 1;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (b->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The exact LRU: a use of object i, evicting the least recently used to fit. */
static void lru_use(struct bench *b, size_t i, uint64_t bound)
{
    struct object *o = &b->objects[i];

    if (o->lru_used != 0) {
        b->lru_hits++;
        b->lru_hit_bytes += o->size;
        o->lru_used = ++b->lru_clock;
        return;
    }
    b->lru_misses++;
    b->lru_miss_bytes += o->size;
    o->lru_used = ++b->lru_clock;
    b->lru_bytes += o->size;
    while (b->lru_bytes > bound) {
        struct object *oldest = NULL;
        size_t j;

        for (j = 0; j < b->nobjects; j++)
            if (b->objects[j].lru_used != 0 &&
                (oldest == NULL || b->objects[j].lru_used < oldest->lru_used))
                oldest = &b->objects[j];
        b->lru_bytes -= oldest->size;
        oldest->lru_used = 0;
    }
}

/* The cache under test: a use of object i at now (a hit, or a miss committed). */
static bool cache_use(struct bench *b, struct storage *st, struct oci_evictor *e, size_t i,
                      time_t now, const char *zeros)
{
    const struct object *o = &b->objects[i];
    char key[OCI_CACHE_KEY_MAX];
    struct storage_info info;
    struct oci_usage_totals t;
    struct oci_evict_stats stats;

    oci_cache_blob_key(&o->digest, key);
    oci_usage_note(e->usage, &o->digest, now); /* before the stat, as a hit does */
    if (st->ops->stat(st, key, &info) == STORAGE_OK) {
        b->hits++;
        b->hit_bytes += o->size;
        return true;
    }
    b->misses++;
    b->miss_bytes += o->size;
    if (st->ops->put_small(st, key, zeros, o->size) != STORAGE_OK)
        return false;
    oci_usage_add(e->usage, (int64_t)o->size, 1);
    oci_usage_totals(e->usage, &t);
    if (t.bytes > b->max_bytes)
        b->max_bytes = t.bytes;
    if (oci_evict_due(e) && oci_evict_run(st, e, OCI_EVICT_BY_POLICY, now, &stats) != STORAGE_OK)
        return false;
    return true;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

static double ratio(uint64_t part, uint64_t whole)
{
    return whole ? (double)part / (double)whole : 0;
}

static int run(struct bench *b, const char *root)
{
    char err[256], usage_path[4096];
    struct oci_evictor e = {.min_age = 0};
    struct storage *st = storage_fs_open(root, err, sizeof(err));
    struct oci_usage_totals t;
    uint64_t bound = b->catalog_bytes / 4;
    char *zeros = calloc(1, (size_t)b->largest);
    time_t now = time(NULL);
    long p;
    size_t j;

    snprintf(usage_path, sizeof(usage_path), "%s/.usage", root);
    if (st == NULL || zeros == NULL ||
        (e.usage = oci_usage_open(usage_path, err, sizeof(err))) == NULL) {
        fprintf(stderr, "bench/evict: %s\n", err);
        return 1;
    }
    e.max_bytes = bound;
    e.low_water = bound / 100 * OCI_EVICT_DEFAULT_LOW_WATER;
    printf("# %ld images, %zu objects, %" PRIu64 " bytes; bound %" PRIu64 "\n", b->images,
           b->nobjects, b->catalog_bytes, bound);
    printf("# pull bytes\n");
    for (p = 1; p <= b->pulls; p++) {
        const struct image *im = &b->catalog[pick_image(b)];

        now += b->interval;
        for (j = 0; j < im->count; j++) {
            lru_use(b, im->objects[j], bound);
            if (!cache_use(b, st, &e, im->objects[j], now, zeros)) {
                fprintf(stderr, "bench/evict: storage failed\n");
                return 1;
            }
        }
        oci_usage_totals(e.usage, &t);
        if (p % b->every == 0)
            printf("%ld %" PRIu64 "\n", p, t.bytes);
    }
    printf("max_bytes=%" PRIu64 " bound=%" PRIu64 " largest_object=%" PRIu64
           " hit_ratio=%.4f byte_hit_ratio=%.4f lru_hit_ratio=%.4f lru_byte_hit_ratio=%.4f\n",
           b->max_bytes, bound, b->largest, ratio(b->hits, b->hits + b->misses),
           ratio(b->hit_bytes, b->hit_bytes + b->miss_bytes),
           ratio(b->lru_hits, b->lru_hits + b->lru_misses),
           ratio(b->lru_hit_bytes, b->lru_hit_bytes + b->lru_miss_bytes));
    oci_usage_close(e.usage);
    st->ops->destroy(st);
    free(zeros);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option flags[] = {
        {"images", required_argument, NULL, 'i'}, {"pulls", required_argument, NULL, 'p'},
        {"zipf", required_argument, NULL, 'z'},   {"interval", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},   {"every", required_argument, NULL, 'e'},
        {"dir", required_argument, NULL, 'd'},    {NULL, 0, NULL, 0},
    };
    struct bench b = {
        .images = 400, .pulls = 20000, .zipf = 1.0, .interval = 20, .seed = 42, .every = 100};
    char dir[] = "/tmp/bench-evict.XXXXXX";
    const char *root = NULL;
    int opt, status;

    while ((opt = getopt_long(argc, argv, "", flags, NULL)) != -1) {
        switch (opt) {
        case 'i':
            b.images = atol(optarg);
            break;
        case 'p':
            b.pulls = atol(optarg);
            break;
        case 'z':
            b.zipf = atof(optarg);
            break;
        case 't':
            b.interval = atol(optarg);
            break;
        case 's':
            b.seed = strtoull(optarg, NULL, 10);
            break;
        case 'e':
            b.every = atol(optarg);
            break;
        case 'd':
            root = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench/evict [--images N] [--pulls P] [--zipf S] "
                            "[--interval SECONDS] [--seed N] [--every K] [--dir DIR]\n");
            return 2;
        }
    }
    if (b.images < 1 || b.pulls < 1 || b.every < 1 || b.interval < 1 || b.seed == 0) {
        fprintf(stderr, "bench/evict: images, pulls, every, interval and seed must be positive\n");
        return 2;
    }
    if (!make_catalog(&b)) {
        fprintf(stderr, "bench/evict: out of memory\n");
        return 1;
    }
    if (root == NULL && (root = mkdtemp(dir)) == NULL) {
        perror("bench/evict: mkdtemp");
        return 1;
    }
    status = run(&b, root);
    if (root == dir)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(b.objects);
    free(b.catalog);
    free(b.cdf);
    return status;
}
