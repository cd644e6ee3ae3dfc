/*
 * s3_multipart.c - multipart uploads of the S3 backend (see s3_multipart.h).
 *
 * An object above the multipart threshold is uploaded from its spool file
 * in parts of at least S3_PART_SIZE: start, one PUT per part, complete.
 * Starting and completing are not retried (a retry could leave an upload
 * behind); on any failure the upload is aborted, so no parts stay.
 *
 * A replica killed or cut off from S3 in the middle of an upload cannot
 * abort it: cleanup passes reap such uploads (s3_multipart_reap). Where
 * leases work, an upload is begun by a holder of the object's lease (a
 * writer takes it for the upload if it had none, storage/s3.c), so one
 * older than a lease's ttl whose object has no live lease has no live
 * writer; without leases, only an upload older than a day is taken for dead
 * (no upload of ours takes that long; a bucket lifecycle rule
 * AbortIncompleteMultipartUpload does the same job). Ages are the server's:
 * Initiated against the listing's Date.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "storage/s3_http.h"
#include "storage/s3_lease.h"
#include "storage/s3_multipart.h"
#include "storage/sigv4.h"

#define MAX_PARTS 10000
/* Without leases, an upload older than this is a dead writer's. */
#define ORPHAN_AGE_ALONE (24 * 60 * 60)
/* ListMultipartUploads pages read in one pass, at most. */
#define REAP_PAGES_MAX 100
#define REAP_BODY_MAX  (4 * 1024 * 1024)

/* A multipart upload in progress. */
struct multipart {
    struct s3 *s3;
    const char *key;
    char *upload_id; /* as S3 gave it */
    char *id_query;  /* "uploadId=<encoded>" */
    char (*etags)[130];
    unsigned parts;
};

static enum storage_err multipart_start(struct multipart *m)
{
    struct s3_req req = s3_http_req("POST", m->key);
    struct s3_resp resp = {0};
    char mtime[32], *enc;
    enum storage_err err;
    size_t len;

    s3_http_now_header(mtime, sizeof(mtime));
    req.query = "uploads";
    req.attempts = 1; /* not idempotent: a retry could leave an upload behind */
    req.extra[req.extra_count++] = (struct sigv4_header){"x-amz-meta-mtime", mtime};
    req.max_body = S3_ERROR_BODY_MAX;
    err = s3_http_call(m->s3, &req, &resp);
    if (err == STORAGE_OK && (m->upload_id = s3_http_xml_text(resp.body, "UploadId")) == NULL) {
        oci_log(OCI_LOG_ERROR, "s3: POST %s?uploads: no UploadId in the answer", m->key);
        err = STORAGE_IO;
    }
    s3_http_resp_free(&resp);
    if (err != STORAGE_OK)
        return err;
    enc = sigv4_uri_encode(m->upload_id, false);
    len = enc ? strlen(enc) + 16 : 0;
    if (enc == NULL || (m->id_query = malloc(len)) == NULL) {
        free(enc);
        return STORAGE_NO_MEMORY;
    }
    snprintf(m->id_query, len, "uploadId=%s", enc);
    free(enc);
    return STORAGE_OK;
}

static enum storage_err multipart_put_part(struct multipart *m, int fd, unsigned number,
                                           uint64_t offset, uint64_t length)
{
    struct s3_req req = s3_http_req("PUT", m->key);
    struct s3_resp resp = {0};
    char hash[SIGV4_HEX_LEN + 1], query[1024];
    enum storage_err err;

    if (!s3_http_file_sha256(fd, offset, length, hash))
        return STORAGE_IO;
    snprintf(query, sizeof(query), "partNumber=%u&%s", number, m->id_query);
    req.query = query;
    req.fd = fd;
    req.offset = offset;
    req.length = length;
    req.payload_hash = hash;
    err = s3_http_call(m->s3, &req, &resp);
    if (err == STORAGE_OK && resp.etag[0] == '\0') {
        oci_log(OCI_LOG_ERROR, "s3: part %u of %s: no ETag in the answer", number, m->key);
        err = STORAGE_IO;
    }
    if (err == STORAGE_OK)
        memcpy(m->etags[number - 1], resp.etag, sizeof(resp.etag));
    s3_http_resp_free(&resp);
    return err;
}

/* The CompleteMultipartUpload document. */
static char *complete_body(const struct multipart *m)
{
    size_t cap = 128 + (size_t)m->parts * 200, len;
    char *xml = malloc(cap);
    unsigned i;

    if (xml == NULL)
        return NULL;
    len = (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (i = 0; i < m->parts; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                m->etags[i]);
    snprintf(xml + len, cap - len, "</CompleteMultipartUpload>");
    return xml;
}

static enum storage_err multipart_complete(struct multipart *m)
{
    struct s3_req req = s3_http_req("POST", m->key);
    struct s3_resp resp = {0};
    char hash[SIGV4_HEX_LEN + 1], code[64];
    char *xml = complete_body(m);
    enum storage_err err;

    if (xml == NULL)
        return STORAGE_NO_MEMORY;
    sigv4_sha256_hex(xml, strlen(xml), hash);
    req.query = m->id_query;
    req.body = xml;
    req.length = strlen(xml);
    req.payload_hash = hash;
    req.max_body = S3_ERROR_BODY_MAX;
    req.attempts = 1;
    err = s3_http_call(m->s3, &req, &resp);
    /* S3 may answer 200 and then report an error in the body. */
    if (err == STORAGE_OK && resp.body != NULL && strstr(resp.body, "<Error>") != NULL) {
        s3_http_error_code(&resp, code, sizeof(code));
        oci_log(OCI_LOG_ERROR, "s3: completing %s: %s", m->key, code);
        err = STORAGE_IO;
    }
    free(xml);
    s3_http_resp_free(&resp);
    return err;
}

/* Aborts the upload, insisting for a while: an upload left open keeps its parts. */
static enum storage_err multipart_abort(struct multipart *m)
{
    struct s3_req req = s3_http_req("DELETE", m->key);
    struct s3_resp resp = {0};
    enum storage_err err;

    req.query = m->id_query;
    req.attempts = 8; /* about 25 s of backoff: S3 may be restarting */
    req.through_outage = true;
    err = s3_http_call(m->s3, &req, &resp);
    if (err == STORAGE_OK || err == STORAGE_NOT_FOUND)
        oci_log(OCI_LOG_WARN, "s3: aborted the multipart upload of %s", m->key);
    else
        oci_log(OCI_LOG_ERROR,
                "s3: could not abort the multipart upload of %s: its parts stay "
                "until the bucket's lifecycle rule removes them",
                m->key);
    s3_http_resp_free(&resp);
    return err;
}

/* Part size: at least S3_PART_SIZE, larger when the parts would be too many. */
static uint64_t part_size(uint64_t size)
{
    uint64_t part = S3_PART_SIZE;

    while (size / part >= MAX_PARTS)
        part *= 2;
    return part;
}

enum storage_err s3_multipart_upload(struct s3 *s, const char *key, int fd, uint64_t size)
{
    struct multipart m = {.s3 = s, .key = key};
    uint64_t part = part_size(size), offset;
    enum storage_err err;

    m.parts = (unsigned)((size + part - 1) / part);
    m.etags = calloc(m.parts, sizeof(*m.etags));
    if (m.etags == NULL)
        return STORAGE_NO_MEMORY;
    err = multipart_start(&m);
    for (offset = 0; err == STORAGE_OK && offset < size; offset += part)
        err = multipart_put_part(&m, fd, (unsigned)(offset / part) + 1, offset,
                                 size - offset < part ? size - offset : part);
    if (err == STORAGE_OK)
        err = multipart_complete(&m);
    if (err != STORAGE_OK && m.upload_id != NULL)
        multipart_abort(&m);
    free(m.upload_id);
    free(m.id_query);
    free(m.etags);
    return err;
}

/* ---- reaping the uploads of dead writers -------------------------------- */

/* An ISO 8601 time of S3's (2026-12-07T15:53:26.000Z) in seconds, or 0. */
static time_t iso_time(const char *text)
{
    struct tm tm = {0};
    const char *end = text != NULL ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

    return end != NULL ? timegm(&tm) : 0;
}

/* Whether the upload of key begun at initiated has no live writer, as of now (the server's). */
static bool upload_dead(struct s3 *s, const char *key, time_t initiated, time_t now)
{
    bool leases = atomic_load(&s->conditional) == S3_CONDITIONAL_YES;

    if (initiated == 0 || now == 0)
        return false;
    if (!leases)
        return now - initiated > ORPHAN_AGE_ALONE;
    return now - initiated > s->lease_ttl && s3_lease_held(s, key) == STORAGE_NOT_FOUND;
}

/* Looks at one <Upload> of a listing (modified); true when it was aborted. */
static bool reap_upload(struct s3 *s, char *upload, time_t now)
{
    char *name = s3_http_xml_text(upload, "Key"), *init = s3_http_xml_text(upload, "Initiated");
    struct multipart m = {.s3 = s};
    bool reaped = false;
    size_t plen = strlen(s->prefix), len;

    m.upload_id = s3_http_xml_text(upload, "UploadId");
    if (name != NULL && m.upload_id != NULL && strncmp(name, s->prefix, plen) == 0 &&
        storage_key_valid(name + plen) && upload_dead(s, name + plen, iso_time(init), now)) {
        char *enc = sigv4_uri_encode(m.upload_id, false);

        len = enc != NULL ? strlen(enc) + 16 : 0;
        if (enc != NULL && (m.id_query = malloc(len)) != NULL) {
            snprintf(m.id_query, len, "uploadId=%s", enc);
            m.key = name + plen;
            oci_log(OCI_LOG_WARN, "s3: multipart upload of %s begun %s has no live writer", m.key,
                    init);
            reaped = multipart_abort(&m) == STORAGE_OK;
        }
        free(enc);
    }
    free(name);
    free(init);
    free(m.upload_id);
    free(m.id_query);
    return reaped;
}

/* The query of a ListMultipartUploads page, parameters sorted; NULL when out of memory. */
static char *reap_query(const struct s3 *s, const char *key_marker, const char *id_marker)
{
    char *prefix = sigv4_uri_encode(s->prefix, false), *key = NULL, *id = NULL, *q = NULL;

    if (key_marker != NULL) {
        key = sigv4_uri_encode(key_marker, false);
        id = sigv4_uri_encode(id_marker != NULL ? id_marker : "", false);
    }
    if (prefix != NULL && (key_marker == NULL || (key != NULL && id != NULL)) &&
        asprintf(&q, "%s%s%sprefix=%s%s%s&uploads", key ? "key-marker=" : "", key ? key : "",
                 key ? "&" : "", prefix, id ? "&upload-id-marker=" : "", id ? id : "") < 0)
        q = NULL;
    free(prefix);
    free(key);
    free(id);
    return q;
}

unsigned long s3_multipart_reap(struct storage *st)
{
    struct s3 *s = (struct s3 *)st;
    char *key_marker = NULL, *id_marker = NULL;
    unsigned long reaped = 0;
    int page;

    for (page = 0; page < REAP_PAGES_MAX; page++) {
        struct s3_req req = s3_http_req("GET", NULL);
        struct s3_resp resp = {0};
        char *query = reap_query(s, key_marker, id_marker), *at, *end;
        bool more;

        req.query = query;
        req.max_body = REAP_BODY_MAX;
        if (query == NULL || s3_http_call(s, &req, &resp) != STORAGE_OK || resp.body == NULL) {
            free(query);
            s3_http_resp_free(&resp);
            break;
        }
        more = strstr(resp.body, "<IsTruncated>true</IsTruncated>") != NULL;
        free(key_marker);
        free(id_marker);
        key_marker = more ? s3_http_xml_text(resp.body, "NextKeyMarker") : NULL;
        id_marker = more ? s3_http_xml_text(resp.body, "NextUploadIdMarker") : NULL;
        for (at = strstr(resp.body, "<Upload>"); at != NULL; at = strstr(end + 1, "<Upload>")) {
            if ((end = strstr(at, "</Upload>")) == NULL)
                break;
            *end = '\0';
            reaped += reap_upload(s, at, resp.date);
        }
        free(query);
        s3_http_resp_free(&resp);
        if (key_marker == NULL)
            break;
    }
    free(key_marker);
    free(id_marker);
    return reaped;
}
