/*
 * config.c - the upstream list: YAML file, credentials from the environment,
 * defaults for namespaces that are not listed.
 *
 * Owns every string in a struct oci_config: the parser and the credentials
 * merge strdup() what they store, and oci_config_free() releases it all.
 * The upstreams stay in file order, with a hash index by namespace beside
 * them, so loading and lookups take constant time per entry. What spans an
 * entry's keys (credentials given together, no control character in any
 * string) is checked once the entry is read.
 * Error messages are one line, "FILE:LINE: message". They name keys, not
 * values (the one exception is a namespace that passed validation), so a
 * password, or a host written with userinfo in it, cannot end up in a log.
 */
#include "core/upstream/config.h"
#include "util/grow.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/request/reference.h"

#define DOCKER_HUB            "docker.io"
#define DOCKER_HUB_HOST       "registry-1.docker.io"
#define DOCKER_HUB_REALM_HOST "auth.docker.io" /* https://auth.docker.io/token */

/* ---- messages ---------------------------------------------------------- */

/*
 * Formats a message into err and flattens it to one line: a quoted YAML key
 * or a JSON namespace may hold control characters, and callers log err as is.
 * Returns false, for "return set_error(...)".
 */
__attribute__((format(printf, 3, 4))) static bool set_error(char *err, size_t errlen,
                                                            const char *fmt, ...)
{
    va_list ap;

    if (errlen == 0)
        return false;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *c = err; *c != '\0'; c++) {
        if (iscntrl((unsigned char)*c))
            *c = ' ';
    }
    return false;
}

/* ---- the upstream list ------------------------------------------------- */

static void name_list_free(char **list)
{
    for (char **h = list; h != NULL && *h != NULL; h++)
        free(*h);
    free(list);
}

static void upstream_free(struct oci_upstream *up)
{
    free(up->namespace_);
    free(up->host);
    free(up->ca_file);
    free(up->user_agent);
    free(up->username);
    free(up->password);
    name_list_free(up->token_realm_hosts);
    name_list_free(up->push_users);
}

/* FNV-1a of the lower-cased name: host names are case-insensitive. */
static size_t name_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)tolower((unsigned char)*s)) * UINT64_C(1099511628211);
    return (size_t)h;
}

/* The slot that holds namespace_, or the empty one where it would go. */
static size_t *slot_of(const struct oci_config *cfg, const char *namespace_)
{
    size_t mask = cfg->slot_count - 1;

    for (size_t i = name_hash(namespace_) & mask;; i = (i + 1) & mask) {
        size_t *slot = &cfg->slots[i];
        if (*slot == 0 || strcasecmp(cfg->upstreams[*slot - 1].namespace_, namespace_) == 0)
            return slot;
    }
}

/* Doubles the index (a power of two, at most half full) and fills it again. */
static bool index_grow(struct oci_config *cfg)
{
    size_t count = cfg->slot_count == 0 ? 16 : cfg->slot_count * 2;
    size_t *old = cfg->slots;

    if (count > SIZE_MAX / sizeof(*old) / 2)
        return false;
    cfg->slots = calloc(count, sizeof(*old));
    if (cfg->slots == NULL) {
        cfg->slots = old;
        return false;
    }
    cfg->slot_count = count;
    for (size_t i = 0; i < cfg->count; i++)
        *slot_of(cfg, cfg->upstreams[i].namespace_) = i + 1;
    free(old);
    return true;
}

/* Takes over the strings of up, whose namespace is not in cfg yet. */
static bool config_add(struct oci_config *cfg, const struct oci_upstream *up)
{
    struct oci_upstream *grown;

    if ((cfg->count + 1) * 2 > cfg->slot_count && !index_grow(cfg))
        return false;
    grown = util_grow(cfg->upstreams, &cfg->capacity, cfg->count, sizeof(*grown), 8);
    if (grown == NULL)
        return false;
    cfg->upstreams = grown;
    cfg->upstreams[cfg->count] = *up;
    *slot_of(cfg, up->namespace_) = ++cfg->count;
    return true;
}

static struct oci_upstream *config_lookup(const struct oci_config *cfg, const char *namespace_)
{
    size_t slot = cfg->slot_count == 0 ? 0 : *slot_of(cfg, namespace_);

    return slot == 0 ? NULL : &cfg->upstreams[slot - 1];
}

const struct oci_upstream *oci_config_find(const struct oci_config *cfg, const char *namespace_)
{
    return config_lookup(cfg, namespace_);
}

void oci_config_free(struct oci_config *cfg)
{
    for (size_t i = 0; i < cfg->count; i++)
        upstream_free(&cfg->upstreams[i]);
    free(cfg->upstreams);
    free(cfg->slots);
    *cfg = (struct oci_config){0};
}

const char *const *oci_upstream_realm_hosts(const struct oci_upstream *up)
{
    static const char *const docker_hub[] = {DOCKER_HUB_REALM_HOST, NULL};

    if (up->token_realm_hosts != NULL)
        return (const char *const *)up->token_realm_hosts;
    return strcasecmp(up->host, DOCKER_HUB_HOST) == 0 ? docker_hub : NULL;
}

bool oci_upstream_may_push(const struct oci_upstream *up, const char *user)
{
    if (up->push_users == NULL)
        return true;
    for (char **u = up->push_users; user != NULL && *u != NULL; u++)
        if (strcmp(*u, user) == 0) /* as the htpasswd file spells it */
            return true;
    return false;
}

bool oci_config_check_files(const struct oci_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->count; i++) {
        const struct oci_upstream *up = &cfg->upstreams[i];
        struct stat st;
        int fd;

        if (up->ca_file == NULL)
            continue;
        fd = open(up->ca_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int saved = fd < 0 ? errno : EISDIR;

            if (fd >= 0)
                close(fd);
            return set_error(err, errlen, "upstream '%s': ca_file '%s': %s", up->namespace_,
                             up->ca_file, strerror(saved));
        }
        close(fd);
    }
    return true;
}

/* ---- checks across keys ------------------------------------------------ */

static bool has_control(const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (iscntrl((unsigned char)*s))
            return true;
    }
    return false;
}

/*
 * Why a username and password cannot be used, or NULL. Both empty (or
 * absent) is anonymous; one without the other is a mistake that would
 * otherwise send Basic credentials with an empty name.
 */
static const char *credentials_problem(const char *username, const char *password)
{
    bool no_user = username == NULL || *username == '\0';
    bool no_password = password == NULL || *password == '\0';

    if (has_control(username))
        return "'username' holds a control character";
    if (has_control(password))
        return "'password' holds a control character";
    if (no_user && !no_password)
        return "'password' is set but 'username' is empty";
    if (!no_user && no_password)
        return "'username' is set but 'password' is empty";
    return NULL;
}

/* Empty credentials are anonymous: NULL, so nothing is sent. */
static void credentials_settle(struct oci_upstream *up)
{
    if (up->username == NULL || *up->username == '\0') {
        free(up->username);
        free(up->password);
        up->username = up->password = NULL;
    }
}

void oci_upstream_default(const char *namespace_, struct oci_upstream *up)
{
    const char *host = strcmp(namespace_, DOCKER_HUB) == 0 ? DOCKER_HUB_HOST : namespace_;

    /* Borrowed, not owned: the header promises there is nothing to free. */
    *up = (struct oci_upstream){
        .namespace_ = (char *)namespace_,
        .host = (char *)host,
        .tls = true,
        .manifest_invalidation_time = OCI_DEFAULT_MANIFEST_INVALIDATION,
        .blob_invalidation_time = OCI_DEFAULT_BLOB_INVALIDATION,
    };
}

/* ---- scalar values ----------------------------------------------------- */

bool oci_duration_parse(const char *s, long *seconds)
{
    static const char suffixes[] = "smhdw";
    static const long factors[] = {1, 60, 60 * 60, 24 * 60 * 60, 7 * 24 * 60 * 60};
    long n = 0;
    long factor = 1;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++) {
        int digit = *p - '0';
        if (n > (LONG_MAX - digit) / 10)
            return false;
        n = n * 10 + digit;
    }
    if (*p != '\0') {
        const char *unit = strchr(suffixes, *p);
        if (unit == NULL || p[1] != '\0')
            return false;
        factor = factors[unit - suffixes];
    }
    if (n > LONG_MAX / factor)
        return false;
    *seconds = n * factor;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const struct {
        const char *word;
        bool value;
    } words[] = {
        {"true", true},   {"yes", true}, {"on", true},
        {"false", false}, {"no", false}, {"off", false},
    };

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(s, words[i].word) == 0) {
            *out = words[i].value;
            return true;
        }
    }
    return false;
}

/* ---- YAML -------------------------------------------------------------- */

struct parser {
    yaml_parser_t yaml;
    yaml_event_t event; /* the current event, valid when have_event */
    bool have_event;
    const char *input; /* for locating reader errors, which have only an offset */
    const char *name;
    char *err;
    size_t errlen;
};

/* How the value of a key is checked and stored. */
enum field_kind {
    FIELD_NAMESPACE, /* a host[:port] that no other entry has */
    FIELD_HOST,      /* a host[:port] */
    FIELD_STRING,
    FIELD_BOOL,
    FIELD_DURATION,
    FIELD_HOST_LIST, /* a list of host names, without ports */
    FIELD_USER_LIST, /* a list of user names */
};

struct field {
    const char *key;
    enum field_kind kind;
    size_t offset; /* into struct oci_upstream */
};

static const struct field fields[] = {
    {"namespace", FIELD_NAMESPACE, offsetof(struct oci_upstream, namespace_)},
    {"host", FIELD_HOST, offsetof(struct oci_upstream, host)},
    {"tls", FIELD_BOOL, offsetof(struct oci_upstream, tls)},
    {"accept_invalid_certs", FIELD_BOOL, offsetof(struct oci_upstream, accept_invalid_certs)},
    {"ca_file", FIELD_STRING, offsetof(struct oci_upstream, ca_file)},
    {"user_agent", FIELD_STRING, offsetof(struct oci_upstream, user_agent)},
    {"username", FIELD_STRING, offsetof(struct oci_upstream, username)},
    {"password", FIELD_STRING, offsetof(struct oci_upstream, password)},
    {"token_realm_hosts", FIELD_HOST_LIST, offsetof(struct oci_upstream, token_realm_hosts)},
    {"manifest_invalidation_time", FIELD_DURATION,
     offsetof(struct oci_upstream, manifest_invalidation_time)},
    {"blob_invalidation_time", FIELD_DURATION,
     offsetof(struct oci_upstream, blob_invalidation_time)},
    /* Hosted namespaces (pushes): */
    {"hosted", FIELD_BOOL, offsetof(struct oci_upstream, hosted)},
    {"delete", FIELD_BOOL, offsetof(struct oci_upstream, delete_)},
    {"anonymous_push", FIELD_BOOL, offsetof(struct oci_upstream, anonymous_push)},
    {"push_users", FIELD_USER_LIST, offsetof(struct oci_upstream, push_users)},
};

#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

static size_t event_line(const struct parser *p)
{
    return p->event.start_mark.line + 1;
}

__attribute__((format(printf, 3, 4))) static bool fail(struct parser *p, size_t line,
                                                       const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return set_error(p->err, p->errlen, "%s:%zu: %s", p->name, line, msg);
}

/* The 1-based line of a byte offset into the input. */
static size_t offset_line(const struct parser *p, size_t offset)
{
    size_t line = 1;

    for (size_t i = 0; i < offset; i++)
        line += p->input[i] == '\n';
    return line;
}

static bool fail_syntax(struct parser *p)
{
    const yaml_parser_t *y = &p->yaml;
    /* The reader decodes ahead of the scanner, so its errors have no mark. */
    size_t line = y->error == YAML_READER_ERROR ? offset_line(p, y->problem_offset)
                                                : y->problem_mark.line + 1;

    if (y->error == YAML_MEMORY_ERROR)
        return fail(p, line, "out of memory");
    if (y->context != NULL)
        return fail(p, line, "%s %s", y->problem, y->context);
    return fail(p, line, "%s", y->problem != NULL ? y->problem : "invalid YAML");
}

static bool next_event(struct parser *p)
{
    if (p->have_event)
        yaml_event_delete(&p->event);
    p->have_event = yaml_parser_parse(&p->yaml, &p->event) != 0;
    return p->have_event || fail_syntax(p);
}

static const char *scalar(const struct parser *p)
{
    return (const char *)p->event.data.scalar.value;
}

/* A plain empty, "~" or "null" value: YAML's way of writing nothing. */
static bool scalar_is_null(const struct parser *p)
{
    const char *v = scalar(p);

    return p->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (*v == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0);
}

static bool set_string(struct parser *p, const struct oci_config *cfg, const struct field *f,
                       char **slot)
{
    const char *v = scalar(p);
    size_t len = p->event.data.scalar.length;

    if (scalar_is_null(p) || strlen(v) != len)
        return fail(p, event_line(p), "'%s' needs a string value", f->key);
    /* The value is not quoted in the message: a host may hold userinfo. */
    if (f->kind != FIELD_STRING && !oci_namespace_valid(v, len))
        return fail(p, event_line(p), "'%s' is not a valid host[:port]", f->key);
    if (f->kind == FIELD_NAMESPACE && config_lookup(cfg, v) != NULL)
        return fail(p, event_line(p), "namespace '%s' is listed twice", v);
    *slot = strdup(v);
    return *slot != NULL || fail(p, event_line(p), "out of memory");
}

/* Appends a copy of name to *list, which holds n names and a NULL. */
static bool name_list_add(char ***list, size_t n, const char *name)
{
    char *copy = strdup(name);
    char **grown = copy == NULL ? NULL : realloc(*list, (n + 2) * sizeof(*grown));

    if (grown == NULL) {
        free(copy);
        return false;
    }
    grown[n] = copy;
    grown[n + 1] = NULL;
    *list = grown;
    return true;
}

/* A user name as htpasswd files hold them: no colon, no control character or blank. */
static bool user_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/* The current scalar is an item the list of kind f->kind may hold. */
static bool list_item_valid(const struct parser *p, const struct field *f)
{
    const char *v = scalar(p);
    size_t len = p->event.data.scalar.length;

    if (scalar_is_null(p) || strlen(v) != len)
        return false;
    if (f->kind == FIELD_USER_LIST)
        return user_name_valid(v, len);
    return oci_namespace_valid(v, len) && oci_namespace_host_len(v, len) == len;
}

/* A sequence of host or user names; an empty one is a list too (none). */
static bool set_name_list(struct parser *p, const struct field *f, char ***list)
{
    const char *what = f->kind == FIELD_USER_LIST ? "user" : "host";
    size_t n = 0;

    if (p->event.type != YAML_SEQUENCE_START_EVENT)
        return fail(p, event_line(p), "'%s' needs a list of %s names", f->key, what);
    *list = calloc(1, sizeof(**list));
    if (*list == NULL)
        return fail(p, event_line(p), "out of memory");
    for (;;) {
        if (!next_event(p))
            return false;
        if (p->event.type == YAML_SEQUENCE_END_EVENT)
            return true;
        if (p->event.type != YAML_SCALAR_EVENT)
            return fail(p, event_line(p), "'%s' needs a list of %s names", f->key, what);
        if (!list_item_valid(p, f))
            return fail(p, event_line(p), "'%s' holds something that is not a %s name", f->key,
                        what);
        if (!name_list_add(list, n++, scalar(p)))
            return fail(p, event_line(p), "out of memory");
    }
}

static bool set_field(struct parser *p, const struct oci_config *cfg, const struct field *f,
                      struct oci_upstream *up)
{
    void *slot = (char *)up + f->offset;

    if (f->kind == FIELD_HOST_LIST || f->kind == FIELD_USER_LIST)
        return set_name_list(p, f, slot);
    if (p->event.type != YAML_SCALAR_EVENT)
        return fail(p, event_line(p), "'%s' needs a single value, not a list or mapping", f->key);
    switch (f->kind) {
    case FIELD_BOOL:
        return parse_bool(scalar(p), slot) ||
               fail(p, event_line(p), "'%s' must be true or false", f->key);
    case FIELD_DURATION:
        return oci_duration_parse(scalar(p), slot) ||
               fail(p, event_line(p), "'%s' must be a duration such as 90s, 30m, 12h, 14d or 2w",
                    f->key);
    default:
        return set_string(p, cfg, f, slot);
    }
}

static const struct field *find_field(const char *key)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    }
    return NULL;
}

/* Reads one key and its value into up; seen has a bit per key already read. */
static bool parse_key_value(struct parser *p, const struct oci_config *cfg, struct oci_upstream *up,
                            uint32_t *seen)
{
    const struct field *f;
    uint32_t bit;

    if (p->event.type != YAML_SCALAR_EVENT)
        return fail(p, event_line(p), "keys must be strings");
    f = find_field(scalar(p));
    if (f == NULL)
        return fail(p, event_line(p), "unknown key '%s'", scalar(p));
    bit = UINT32_C(1) << (f - fields);
    if (*seen & bit)
        return fail(p, event_line(p), "duplicate key '%s'", f->key);
    *seen |= bit;
    return next_event(p) && set_field(p, cfg, f, up);
}

/* Why a whole entry cannot be used, or NULL: checks that span its keys. */
static const char *upstream_problem(const struct oci_upstream *up)
{
    if (has_control(up->user_agent))
        return "'user_agent' holds a control character";
    if (has_control(up->ca_file))
        return "'ca_file' holds a control character";
    if (up->push_users != NULL && !up->hosted)
        return "'push_users' is for hosted namespaces (hosted: true)";
    if (up->push_users != NULL && up->anonymous_push)
        return "'push_users' and 'anonymous_push: true' contradict each other";
    return credentials_problem(up->username, up->password);
}

/* Called at the start of a mapping; consumes it up to its end. */
static bool parse_upstream(struct parser *p, struct oci_config *cfg)
{
    struct oci_upstream up = {
        .tls = true,
        .manifest_invalidation_time = OCI_DEFAULT_MANIFEST_INVALIDATION,
        .blob_invalidation_time = OCI_DEFAULT_BLOB_INVALIDATION,
        .configured = true,
    };
    size_t line = event_line(p);
    uint32_t seen = 0;
    const char *missing, *problem;
    bool ok = false;

    for (;;) {
        if (!next_event(p))
            goto out;
        if (p->event.type == YAML_MAPPING_END_EVENT)
            break;
        if (!parse_key_value(p, cfg, &up, &seen))
            goto out;
    }
    missing = up.namespace_ == NULL ? "namespace" : up.host == NULL && !up.hosted ? "host" : NULL;
    if (missing != NULL) {
        fail(p, line, "upstream without '%s'", missing);
        goto out;
    }
    if (up.hosted && up.host != NULL) {
        fail(p, line, "a hosted namespace has no 'host': nothing is fetched for it");
        goto out;
    }
    if ((problem = upstream_problem(&up)) != NULL) {
        fail(p, line, "upstream '%s': %s", up.namespace_, problem);
        goto out;
    }
    credentials_settle(&up);
    if (!config_add(cfg, &up)) {
        fail(p, line, "out of memory");
        goto out;
    }
    ok = true;
out:
    if (!ok)
        upstream_free(&up);
    return ok;
}

static bool parse_list(struct parser *p, struct oci_config *cfg)
{
    if (p->event.type != YAML_SEQUENCE_START_EVENT)
        return fail(p, event_line(p), "expected a list of upstreams");
    for (;;) {
        if (!next_event(p))
            return false;
        if (p->event.type == YAML_SEQUENCE_END_EVENT)
            return true;
        if (p->event.type != YAML_MAPPING_START_EVENT)
            return fail(p, event_line(p), "each upstream must be a mapping of keys");
        if (!parse_upstream(p, cfg))
            return false;
    }
}

/* Stream start, then either nothing or one document holding the list. */
static bool parse_stream(struct parser *p, struct oci_config *cfg)
{
    if (!next_event(p) || !next_event(p))
        return false;
    if (p->event.type == YAML_STREAM_END_EVENT)
        return true;
    if (!next_event(p) || !parse_list(p, cfg))
        return false;
    if (!next_event(p) || !next_event(p)) /* document end, then stream end */
        return false;
    if (p->event.type != YAML_STREAM_END_EVENT)
        return fail(p, event_line(p), "expected a single YAML document");
    return true;
}

bool oci_config_parse(const char *yaml, size_t len, const char *name, struct oci_config *out,
                      char *err, size_t errlen)
{
    struct parser p = {.input = yaml, .name = name, .err = err, .errlen = errlen};
    struct oci_config cfg = {0};
    bool ok;

    *out = cfg;
    if (!yaml_parser_initialize(&p.yaml))
        return set_error(err, errlen, "%s: out of memory", name);
    yaml_parser_set_input_string(&p.yaml, (const unsigned char *)yaml, len);
    ok = parse_stream(&p, &cfg);
    if (p.have_event)
        yaml_event_delete(&p.event);
    yaml_parser_delete(&p.yaml);
    if (!ok)
        oci_config_free(&cfg);
    *out = cfg;
    return ok;
}

/* Reads a whole file into memory; NULL with errno set on failure. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    bool ok = false;
    int saved;

    *len = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (*len == cap) {
            cap = cap == 0 ? 4096 : cap * 2;
            char *grown = realloc(buf, cap);
            if (grown == NULL)
                goto out;
            buf = grown;
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    ok = !ferror(f);
out:
    saved = errno;
    fclose(f);
    if (!ok) {
        free(buf);
        buf = NULL;
    }
    errno = saved;
    return buf;
}

bool oci_config_load(const char *path, struct oci_config *out, char *err, size_t errlen)
{
    size_t len;
    char *yaml = read_file(path, &len);
    bool ok;

    if (yaml == NULL) {
        *out = (struct oci_config){0};
        return set_error(err, errlen, "%s: %s", path, strerror(errno));
    }
    ok = oci_config_parse(yaml, len, path, out, err, errlen);
    free(yaml);
    return ok;
}

/* ---- UPSTREAM_CREDENTIALS ---------------------------------------------- */

#define CREDENTIALS "UPSTREAM_CREDENTIALS"

static const char *credential(const cJSON *entry, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, name));
}

/* Checks every entry before anything is applied, so a bad one changes nothing. */
static bool credentials_valid(const cJSON *root, char *err, size_t errlen)
{
    const cJSON *entry;

    if (!cJSON_IsObject(root))
        return set_error(err, errlen, "%s: expected a JSON object of namespaces", CREDENTIALS);
    cJSON_ArrayForEach(entry, root)
    {
        const char *ns = entry->string;
        const char *problem;

        if (!oci_namespace_valid(ns, strlen(ns)))
            return set_error(err, errlen, "%s: '%s' is not a valid namespace", CREDENTIALS, ns);
        if (credential(entry, "username") == NULL || credential(entry, "password") == NULL)
            return set_error(err, errlen, "%s: '%s' needs a string username and password",
                             CREDENTIALS, ns);
        problem = credentials_problem(credential(entry, "username"), credential(entry, "password"));
        if (problem != NULL)
            return set_error(err, errlen, "%s: '%s': %s", CREDENTIALS, ns, problem);
    }
    return true;
}

static bool replace(char **slot, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return false;
    free(*slot);
    *slot = copy;
    return true;
}

/*
 * The entry of ns, added with the defaults when the file does not list it:
 * then not configured, so behind the address guard like any namespace
 * named by its host alone. Only the file may point a namespace anywhere.
 */
static struct oci_upstream *credentials_target(struct oci_config *cfg, const char *ns)
{
    struct oci_upstream *up = config_lookup(cfg, ns);
    struct oci_upstream fresh;

    if (up != NULL)
        return up;
    oci_upstream_default(ns, &fresh);
    fresh.namespace_ = strdup(ns);
    fresh.host = strdup(fresh.host);
    if (fresh.namespace_ == NULL || fresh.host == NULL || !config_add(cfg, &fresh)) {
        upstream_free(&fresh);
        return NULL;
    }
    return &cfg->upstreams[cfg->count - 1];
}

static bool credentials_apply(struct oci_config *cfg, const cJSON *root, char *err, size_t errlen)
{
    const cJSON *entry;

    cJSON_ArrayForEach(entry, root)
    {
        const char *username = credential(entry, "username");
        struct oci_upstream *up;

        /* Empty: anonymous, which a namespace the file does not list is anyway. */
        if (*username == '\0' && config_lookup(cfg, entry->string) == NULL)
            continue;
        up = credentials_target(cfg, entry->string);
        if (up == NULL || !replace(&up->username, username) ||
            !replace(&up->password, credential(entry, "password")))
            return set_error(err, errlen, "%s: out of memory", CREDENTIALS);
        credentials_settle(up);
    }
    return true;
}

bool oci_config_apply_credentials(struct oci_config *cfg, const char *json, char *err,
                                  size_t errlen)
{
    cJSON *root = cJSON_Parse(json);
    bool ok;

    /* cJSON_GetErrorPtr() points into the input, which holds the secrets. */
    if (root == NULL)
        return set_error(err, errlen, "%s: malformed JSON", CREDENTIALS);
    ok = credentials_valid(root, err, errlen) && credentials_apply(cfg, root, err, errlen);
    cJSON_Delete(root);
    return ok;
}
