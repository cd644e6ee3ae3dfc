/*
 * gc.c - mark and sweep of hosted repositories (see gc.h).
 *
 * Why it is safe while responders serve the same storage:
 *
 * - A push uploads blobs (content committed, then the repository's link,
 *   which touches the content) before the manifest that references them,
 *   and pushes an index's children before the index. Nothing written or
 *   touched within the grace period is swept (links and records by their
 *   mtime, content by its mtime and the usage record's last use), so a
 *   push in progress, and a mount, keeps what it needs as long as it takes
 *   less than the grace period between its blobs and its manifest.
 * - The mark is taken from one listing of hosted/ at the start. Every
 *   removal then goes through storage's remove_unless, whose keep function
 *   looks again once the object is out of sight of new requests (S3: just
 *   before the removal): a link or record stays when it was written since
 *   the cutoff, or when a manifest recorded in its repository since the
 *   run began names it (a push that reused an old blob after the mark); a
 *   record stays when a tag points at it now. Content stays when it was
 *   written, touched or used since the cutoff: linking a blob and storing a
 *   manifest both touch the content, so a re-push or a mount after the
 *   mark wins.
 * - What is left: a manifest PUT that checked its blobs before a link went
 *   out of sight and records the manifest after the keep function looked -
 *   the milliseconds of one request, for a blob linked longer ago than the
 *   grace period and unreferenced at the mark. The manifest is then stored
 *   without that blob (a pull gets BLOB_UNKNOWN; pushing the image again
 *   repairs it). distribution avoids this only by asking for a read-only
 *   registry during gc.
 * - Upload sessions (uploads/) are not looked at: their content is not
 *   committed under blobs/ until the upload ends, and cleanup expires them.
 * - A repository where a recorded manifest cannot be read or parsed has no
 *   links swept (what it references is unknown); any other storage failure
 *   stops the run before the next removal.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cache/listing.h"
#include "core/cache/repo.h"
#include "core/hosted/manifest_check.h"
#include "core/ops/gc.h"
#include "util/grow.h"
#include "util/log.h"

/* ---- sets of digests ----------------------------------------------------- */

struct gc_set {
    char (*v)[OCI_DIGEST_STRING_MAX];
    size_t n, cap;
    bool failed; /* out of memory: the set is incomplete */
};

static void set_add(struct gc_set *s, const struct oci_digest *d)
{
    void *grown = util_grow(s->v, &s->cap, s->n, sizeof(*s->v), 64);

    if (grown == NULL) {
        s->failed = true;
        return;
    }
    s->v = grown;
    oci_digest_format(d, s->v[s->n++]);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sorts the set and drops repeats, for set_has. */
static void set_seal(struct gc_set *s)
{
    size_t i, out = 0;

    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof(*s->v), by_string);
    for (i = 1; i < s->n; i++)
        if (strcmp(s->v[i], s->v[out]) != 0)
            memmove(s->v[++out], s->v[i], sizeof(*s->v));
    s->n = out + 1;
}

static bool set_has(const struct gc_set *s, const struct oci_digest *d)
{
    char key[OCI_DIGEST_STRING_MAX];

    oci_digest_format(d, key);
    return s->n > 0 && bsearch(key, s->v, s->n, sizeof(*s->v), by_string) != NULL;
}

static void set_free(struct gc_set *s)
{
    free(s->v);
    *s = (struct gc_set){0};
}

/* ---- keys under hosted/ -------------------------------------------------- */

enum gc_part { PART_OTHER, PART_LINK, PART_RECORD, PART_TAG, PART_REFERRER };

struct gc_key {
    size_t repo_len; /* "hosted/<ns>/<name>/" */
    enum gc_part part;
    const char *leaf; /* after "<part>/" */
};

/* Splits a hosted key; no name component starts with '_', so the first "/_" ends the repository. */
static struct gc_key key_split(const char *key)
{
    static const struct {
        const char *name;
        enum gc_part part;
    } parts[] = {{"_blobs/", PART_LINK},
                 {"_digests/", PART_RECORD},
                 {"_tags/", PART_TAG},
                 {"_referrers/", PART_REFERRER}};
    const char *p = strstr(key + strlen(OCI_REPO_PREFIX), "/_");
    struct gc_key k = {0, PART_OTHER, NULL};
    size_t i;

    if (p == NULL)
        return k;
    k.repo_len = (size_t)(p - key) + 1;
    for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strncmp(p + 1, parts[i].name, strlen(parts[i].name)) == 0) {
            k.part = parts[i].part;
            k.leaf = p + 1 + strlen(parts[i].name);
        }
    return k;
}

static bool leaf_digest(const char *leaf, struct oci_digest *d)
{
    return oci_digest_parse(leaf, strlen(leaf), d) == OCI_OK;
}

/* ---- reading manifests --------------------------------------------------- */

/*
 * Parses the stored content of digest (media_type: its record's). STORAGE_OK
 * with info filled (free it); STORAGE_NOT_FOUND when the content is gone or
 * is not a manifest this build parses.
 */
static enum storage_err manifest_read(struct storage *st, const struct oci_digest *digest,
                                      const char *media_type, struct oci_manifest_info *info)
{
    char key[OCI_CACHE_KEY_MAX], *buf = NULL;
    const char *why;
    size_t len;
    enum storage_err err;

    oci_cache_blob_key(digest, key);
    err = st->ops->read_small(st, key, OCI_MANIFEST_MAX, &buf, &len, NULL);
    if (err == STORAGE_TOO_LARGE)
        err = STORAGE_NOT_FOUND;
    if (err == STORAGE_OK &&
        oci_manifest_check(buf, len, media_type[0] ? media_type : NULL, info, &why) != OCI_OK)
        err = STORAGE_NOT_FOUND;
    free(buf);
    return err;
}

/* Whether info references digest. */
static bool info_names(const struct oci_manifest_info *info, const struct oci_digest *digest)
{
    size_t i;

    for (i = 0; i < info->ref_count; i++)
        if (oci_digest_equal(&info->refs[i], digest))
            return true;
    return false;
}

/* ---- the run ------------------------------------------------------------- */

struct gc {
    struct storage *st;
    struct oci_evictor *e;
    const struct oci_gc_options *o;
    oci_gc_report_fn report;
    void *arg;
    struct oci_gc_stats *stats;
    time_t cutoff;          /* written or used since then: stays */
    struct gc_set kept;     /* digests hosted keys still name after the sweep */
    struct gc_set linked;   /* of those, the blob links */
    struct gc_set unlinked; /* digests whose hosted keys this run removed */
    enum storage_err err;   /* the first storage failure: the run stops */
};

struct gc_manifest {
    struct oci_digest digest; /* first: by_digest compares manifests and digests alike */
    const struct oci_listing_item *record;
    struct oci_manifest_info info;
    bool parsed, tagged, marked;
};

/* One repository's slice of the listing, and what its marked manifests reference. */
struct gc_repo {
    const struct oci_listing_item **items;
    size_t n;
    char prefix[OCI_CACHE_KEY_MAX];
    struct gc_manifest *m;
    size_t nm;
    struct gc_set refs;
    bool unreadable;
};

static bool gc_ok(struct gc *g, enum storage_err err)
{
    if (err != STORAGE_OK && g->err == STORAGE_OK)
        g->err = err;
    return g->err == STORAGE_OK;
}

/* Orders a repository's manifests by digest (the first member of both structs). */
static int by_digest(const void *a, const void *b)
{
    const struct oci_digest *da = a, *db = b;

    return da->alg != db->alg ? (int)da->alg - (int)db->alg : strcmp(da->hex, db->hex);
}

static struct gc_manifest *repo_manifest(struct gc_repo *r, const struct oci_digest *d)
{
    return r->nm > 0 ? bsearch(d, r->m, r->nm, sizeof(*r->m), by_digest) : NULL;
}

/* Reads a record and its manifest into m; a manifest that cannot be read leaves the repository
 * unswept. */
static void load_manifest(struct gc *g, struct gc_repo *r, const struct oci_listing_item *it,
                          struct gc_manifest *m)
{
    struct oci_manifest_record rec;
    enum storage_err err = oci_cache_record_read(g->st, it->key, &rec);

    m->record = it;
    if (err == STORAGE_OK)
        err = manifest_read(g->st, &m->digest, rec.media_type, &m->info);
    m->parsed = err == STORAGE_OK;
    if (err == STORAGE_NOT_FOUND) {
        oci_log(OCI_LOG_WARN, "gc: %s: no readable manifest: its repository is not swept", it->key);
        r->unreadable = true;
    } else {
        gc_ok(g, err);
    }
}

/* The repository's manifests (records) and which of them tags point at. */
static bool load_repo(struct gc *g, struct gc_repo *r)
{
    struct oci_manifest_record rec;
    struct gc_manifest *m;
    size_t i;

    r->m = calloc(r->n, sizeof(*r->m));
    if (r->m == NULL)
        return gc_ok(g, STORAGE_NO_MEMORY);
    for (i = 0; i < r->n && g->err == STORAGE_OK; i++) {
        struct gc_key k = key_split(r->items[i]->key);

        if (k.part == PART_RECORD && leaf_digest(k.leaf, &r->m[r->nm].digest))
            load_manifest(g, r, r->items[i], &r->m[r->nm++]);
    }
    if (r->nm > 1)
        qsort(r->m, r->nm, sizeof(*r->m), by_digest);
    for (i = 0; i < r->n && g->err == STORAGE_OK; i++) {
        struct gc_key k = key_split(r->items[i]->key);

        if (k.part == PART_TAG &&
            oci_cache_record_read(g->st, r->items[i]->key, &rec) == STORAGE_OK &&
            (m = repo_manifest(r, &rec.digest)) != NULL)
            m->tagged = true;
    }
    return g->err == STORAGE_OK;
}

/* Marks m and what it reaches; true when something new was marked. */
static bool mark(struct gc_repo *r, struct gc_manifest *m)
{
    struct gc_manifest *child;
    size_t i;

    if (m->marked)
        return false;
    m->marked = true;
    for (i = 0; m->parsed && i < m->info.ref_count; i++) {
        if (!m->info.is_index)
            set_add(&r->refs, &m->info.refs[i]);
        else if ((child = repo_manifest(r, &m->info.refs[i])) != NULL)
            mark(r, child);
    }
    return true;
}

/*
 * Roots: every manifest, or (delete_untagged) the tagged and the young; then,
 * until nothing changes, the referrers of marked manifests.
 */
static void mark_repo(struct gc *g, struct gc_repo *r)
{
    struct gc_manifest *subject;
    bool changed = true;
    size_t i;

    for (i = 0; i < r->nm; i++)
        if (!g->o->delete_untagged || r->m[i].tagged || r->m[i].record->info.mtime >= g->cutoff)
            mark(r, &r->m[i]);
    while (changed) {
        changed = false;
        for (i = 0; i < r->nm; i++) {
            subject = r->m[i].info.has_subject ? repo_manifest(r, &r->m[i].info.subject) : NULL;
            if (subject != NULL && subject->marked)
                changed |= mark(r, &r->m[i]);
        }
    }
    for (i = 0; i < r->nm; i++)
        g->stats->manifests_marked += r->m[i].marked;
    set_seal(&r->refs);
}

/* ---- what keep functions look at again ------------------------------------ */

struct gc_keep {
    struct gc *g;
    const char *prefix; /* the repository's */
    struct oci_digest digest;
    bool record;   /* a manifest record: a tag pointing at it keeps it too */
    uint64_t size; /* of what was removed */
};

struct since_scan {
    struct gc_keep *k;
    enum gc_part part;
    bool found;
};

/* A record written since the run began that names the digest, or a tag on it now. */
static bool scan_one(void *arg, const char *key, const struct storage_info *info)
{
    struct since_scan *s = arg;
    struct oci_manifest_record rec;
    struct oci_manifest_info mi;

    if (oci_cache_record_read(s->k->g->st, key, &rec) != STORAGE_OK)
        return true;
    if (s->part == PART_TAG) {
        s->found = oci_digest_equal(&rec.digest, &s->k->digest);
        return !s->found;
    }
    if (info->mtime < s->k->g->o->now)
        return true;
    if (manifest_read(s->k->g->st, &rec.digest, rec.media_type, &mi) != STORAGE_OK) {
        s->found = true; /* unknown: keep */
        return false;
    }
    s->found = info_names(&mi, &s->k->digest) ||
               (mi.has_subject && oci_digest_equal(&mi.subject, &s->k->digest));
    oci_manifest_info_free(&mi);
    return !s->found;
}

static bool scan_repo(struct gc_keep *k, const char *part, enum gc_part kind)
{
    char key[OCI_CACHE_KEY_MAX];
    struct since_scan s = {k, kind, false};

    snprintf(key, sizeof(key), "%s%s/", k->prefix, part);
    if (k->g->st->ops->list(k->g->st, key, scan_one, &s) != STORAGE_OK)
        return true; /* cannot tell: keep */
    return s.found;
}

/* remove_unless's keep for links and records. */
static bool keep_hosted(void *arg, const char *key, const struct storage_info *info)
{
    struct gc_keep *k = arg;

    (void)key;
    k->size = info->size;
    return info->mtime >= k->g->cutoff || (k->record && scan_repo(k, "_tags", PART_TAG)) ||
           scan_repo(k, "_digests", PART_RECORD);
}

/* remove_unless's keep for content: written, touched or used since the cutoff. */
static bool keep_content(void *arg, const char *key, const struct storage_info *info)
{
    struct gc_keep *k = arg;
    struct oci_evictor *e = k->g->e;

    (void)key;
    k->size = info->size;
    return info->mtime >= k->g->cutoff ||
           (e != NULL && e->usage != NULL &&
            oci_usage_last(e->usage, &k->digest, k->g->o->now) >= k->g->cutoff);
}

/* ---- sweep ---------------------------------------------------------------- */

/* Removes (or, dry run, reports) key; true when it is gone. */
static bool sweep_key(struct gc *g, const char *key, storage_keep_fn keep, struct gc_keep *k,
                      enum oci_gc_kind kind)
{
    struct storage_info info = {0};
    enum storage_err err;

    if (g->o->dry_run) {
        err = g->st->ops->stat(g->st, key, &info);
        if (err == STORAGE_OK && keep == keep_content && keep_content(k, key, &info))
            err = STORAGE_NOT_FOUND;
    } else {
        err = g->st->ops->remove_unless(g->st, key, keep, k);
    }
    if (err == STORAGE_NOT_FOUND || !gc_ok(g, err))
        return false;
    g->report(g->arg, kind, key, g->o->dry_run ? info.size : k->size);
    return true;
}

/* Removes the referrer entries of a removed manifest (an index, not a hold on anything). */
static void drop_referrer_entries(struct gc *g, struct gc_repo *r, const struct oci_digest *d)
{
    char digest[OCI_DIGEST_STRING_MAX];
    size_t i, len;

    oci_digest_format(d, digest);
    len = strlen(digest);
    for (i = 0; i < r->n && !g->o->dry_run; i++) {
        const char *key = r->items[i]->key;
        struct gc_key k = key_split(key);
        size_t klen = strlen(key);

        if (k.part == PART_REFERRER && klen > len + 1 && key[klen - len - 1] == '/' &&
            strcmp(key + klen - len, digest) == 0)
            g->st->ops->remove(g->st, key);
    }
}

static void sweep_records(struct gc *g, struct gc_repo *r)
{
    struct gc_keep k = {g, r->prefix, {0}, true, 0};
    size_t i;

    for (i = 0; i < r->nm && g->err == STORAGE_OK; i++) {
        struct gc_manifest *m = &r->m[i];

        k.digest = m->digest;
        if (!m->marked && !r->unreadable &&
            sweep_key(g, m->record->key, keep_hosted, &k, OCI_GC_MANIFEST)) {
            g->stats->manifests_removed++;
            set_add(&g->unlinked, &m->digest);
            drop_referrer_entries(g, r, &m->digest);
        } else {
            set_add(&g->kept, &m->digest);
        }
    }
}

static void sweep_links(struct gc *g, struct gc_repo *r)
{
    struct gc_keep k = {g, r->prefix, {0}, false, 0};
    size_t i;

    for (i = 0; i < r->n && g->err == STORAGE_OK; i++) {
        const struct oci_listing_item *it = r->items[i];
        struct gc_key key = key_split(it->key);

        if (key.part != PART_LINK || !leaf_digest(key.leaf, &k.digest))
            continue;
        if (!r->unreadable && !set_has(&r->refs, &k.digest) && it->info.mtime < g->cutoff &&
            sweep_key(g, it->key, keep_hosted, &k, OCI_GC_LINK)) {
            g->stats->links_removed++;
            set_add(&g->unlinked, &k.digest);
        } else {
            set_add(&g->kept, &k.digest);
            set_add(&g->linked, &k.digest);
        }
    }
}

static void collect_repo(struct gc *g, struct gc_repo *r)
{
    g->stats->repositories++;
    if (load_repo(g, r)) {
        mark_repo(g, r);
        sweep_records(g, r);
        sweep_links(g, r);
    }
    g->stats->unreadable += r->unreadable;
    if (r->refs.failed)
        gc_ok(g, STORAGE_NO_MEMORY);
    for (size_t i = 0; i < r->nm; i++)
        oci_manifest_info_free(&r->m[i].info);
    free(r->m);
    set_free(&r->refs);
}

/* Orders hosted keys by repository, then by key: a repository's keys become one run. */
static int by_repo(const void *a, const void *b)
{
    const char *ka = (*(const struct oci_listing_item *const *)a)->key;
    const char *kb = (*(const struct oci_listing_item *const *)b)->key;
    size_t la = key_split(ka).repo_len, lb = key_split(kb).repo_len;
    int c = strncmp(ka, kb, la < lb ? la : lb);

    if (c != 0 || la == lb)
        return c != 0 ? c : strcmp(ka, kb);
    return la < lb ? -1 : 1;
}

static void collect_repos(struct gc *g, const struct oci_listing *l)
{
    const struct oci_listing_item **items = malloc((l->n ? l->n : 1) * sizeof(*items));
    size_t i, n = 0, start;

    if (items == NULL) {
        gc_ok(g, STORAGE_NO_MEMORY);
        return;
    }
    for (i = 0; i < l->n; i++)
        if (key_split(l->v[i].key).part != PART_OTHER)
            items[n++] = &l->v[i];
    qsort(items, n, sizeof(*items), by_repo);
    for (start = 0; start < n && g->err == STORAGE_OK; start = i) {
        size_t len = key_split(items[start]->key).repo_len;
        struct gc_repo r = {.items = items + start};

        for (i = start; i < n && key_split(items[i]->key).repo_len == len &&
                        strncmp(items[i]->key, items[start]->key, len) == 0;
             i++)
            ;
        r.n = i - start;
        snprintf(r.prefix, sizeof(r.prefix), "%.*s", (int)len, items[start]->key);
        collect_repo(g, &r);
    }
    free(items);
}

/* ---- content ---------------------------------------------------------------- */

/* Adds a mirrored manifest and what it references (an index's children, one level deep). */
static void mirror_mark(struct gc *g, struct gc_set *used, const struct oci_digest *d,
                        const char *media_type, int depth)
{
    struct oci_manifest_info mi;
    enum storage_err err;
    size_t i;

    set_add(used, d);
    err = manifest_read(g->st, d, media_type, &mi);
    if (err != STORAGE_OK) {
        gc_ok(g, err == STORAGE_NOT_FOUND ? STORAGE_OK : err);
        return;
    }
    for (i = 0; i < mi.ref_count; i++)
        if (mi.is_index && depth > 0)
            mirror_mark(g, used, &mi.refs[i], "", depth - 1);
        else
            set_add(used, &mi.refs[i]);
    oci_manifest_info_free(&mi);
}

/* What the mirror's manifest records name: never removed, though a hosted link to it went. */
static void mirror_collect(struct gc *g, struct gc_set *used)
{
    struct oci_listing l = {0};
    struct oci_manifest_record rec;
    size_t i;

    if (!gc_ok(g, oci_listing_collect(g->st, "manifests/", &l))) {
        oci_listing_free(&l);
        return;
    }
    for (i = 0; i < l.n && g->err == STORAGE_OK; i++)
        if (oci_cache_record_read(g->st, l.v[i].key, &rec) == STORAGE_OK)
            mirror_mark(g, used, &rec.digest, rec.media_type, 1);
    oci_listing_free(&l);
    if (used->failed)
        gc_ok(g, STORAGE_NO_MEMORY);
    set_seal(used);
}

static void sweep_content(struct gc *g)
{
    struct gc_set used = {0};
    struct gc_keep k = {g, "", {0}, false, 0};
    char key[OCI_CACHE_KEY_MAX];
    size_t i;

    set_seal(&g->unlinked);
    set_seal(&g->kept);
    if (g->unlinked.n > 0)
        mirror_collect(g, &used);
    for (i = 0; i < g->unlinked.n && g->err == STORAGE_OK; i++) {
        if (oci_digest_parse(g->unlinked.v[i], strlen(g->unlinked.v[i]), &k.digest) != OCI_OK)
            continue;
        if (set_has(&g->kept, &k.digest) || set_has(&used, &k.digest)) {
            g->stats->blobs_spared++;
            continue;
        }
        oci_cache_blob_key(&k.digest, key);
        if (!sweep_key(g, key, keep_content, &k, OCI_GC_BLOB)) {
            g->stats->blobs_spared += g->err == STORAGE_OK;
            continue;
        }
        g->stats->blobs_removed++;
        g->stats->bytes_freed += k.size;
        if (!g->o->dry_run)
            oci_evict_removed(g->e, k.size);
    }
    set_free(&used);
}

/* One collection, the gc lease held (or not needed). */
static enum storage_err gc_run(struct storage *st, struct oci_evictor *e,
                               const struct oci_gc_options *o, oci_gc_report_fn report, void *arg,
                               struct oci_gc_stats *stats)
{
    struct gc g = {st, e, o, report, arg, stats, o->now - o->grace, {0}, {0}, {0}, STORAGE_OK};
    struct oci_listing l = {0};

    if (gc_ok(&g, oci_listing_collect(st, OCI_REPO_PREFIX, &l)))
        collect_repos(&g, &l);
    if (g.kept.failed || g.linked.failed || g.unlinked.failed)
        gc_ok(&g, STORAGE_NO_MEMORY);
    if (g.err == STORAGE_OK)
        sweep_content(&g);
    set_seal(&g.linked);
    stats->blobs_kept = g.linked.n;
    oci_listing_free(&l);
    set_free(&g.kept);
    set_free(&g.linked);
    set_free(&g.unlinked);
    return g.err;
}

enum storage_err oci_gc_run(struct storage *st, struct oci_evictor *e,
                            const struct oci_gc_options *o, oci_gc_report_fn report, void *arg,
                            struct oci_gc_stats *stats)
{
    struct storage_lease *lease = NULL;
    enum storage_err err;

    memset(stats, 0, sizeof(*stats));
    /* Two collections at once would each count the other's removals as
     * failures; hosts sharing a bucket run one at a time. */
    if (st->ops->lease_take != NULL && !o->dry_run) {
        err = st->ops->lease_take(st, OCI_GC_LEASE, 0, &lease);
        if (err != STORAGE_OK)
            return err;
    }
    err = gc_run(st, e, o, report, arg, stats);
    if (lease != NULL)
        st->ops->lease_release(lease);
    return err;
}
