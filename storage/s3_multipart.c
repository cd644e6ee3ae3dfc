/*
 * s3_multipart.c - multipart uploads of the S3 backend (see s3_multipart.h).
 *
 * An object above the multipart threshold is uploaded from its spool file
 * in parts of at least S3_PART_SIZE: start, one PUT per part, complete.
 * Starting and completing are not retried (a retry could leave an upload
 * behind); on any failure the upload is aborted, so no parts stay.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "storage/s3.h"
#include "storage/s3_http.h"
#include "storage/s3_multipart.h"
#include "storage/sigv4.h"

#define MAX_PARTS 10000

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
static void multipart_abort(struct multipart *m)
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
