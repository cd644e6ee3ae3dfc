/*
 * errors.c - the registry error table and the JSON error body.
 *
 * One row per enum oci_error: its HTTP status, the code string clients see
 * and the message used when the caller has nothing more specific. Codes
 * outside the distribution spec (NOT_FOUND, UPSTREAM_FAILED, UNAVAILABLE,
 * INTERNAL) keep the enum's name, which is what clients print.
 */
#include "core/request/errors.h"

#include <cjson/cJSON.h>

struct error_info {
    int status;
    const char *code;
    const char *message;
};

/* Designated initializers keep each row on its enum value whatever the order. */
static const struct error_info error_table[] = {
    [OCI_OK] = {200, "OK", "success"},
    [OCI_E_BLOB_UNKNOWN] = {404, "BLOB_UNKNOWN", "blob unknown to registry"},
    [OCI_E_DIGEST_INVALID] = {400, "DIGEST_INVALID", "provided digest is invalid"},
    [OCI_E_MANIFEST_INVALID] = {400, "MANIFEST_INVALID", "manifest invalid"},
    [OCI_E_MANIFEST_UNKNOWN] = {404, "MANIFEST_UNKNOWN", "manifest unknown"},
    [OCI_E_NAME_INVALID] = {400, "NAME_INVALID", "invalid repository name"},
    [OCI_E_NAME_UNKNOWN] = {404, "NAME_UNKNOWN", "repository name not known to registry"},
    [OCI_E_TAG_INVALID] = {400, "TAG_INVALID", "invalid tag"},
    [OCI_E_UNAUTHORIZED] = {401, "UNAUTHORIZED", "authentication required"},
    [OCI_E_DENIED] = {403, "DENIED", "requested access to the resource is denied"},
    [OCI_E_UNSUPPORTED] = {405, "UNSUPPORTED", "the operation is unsupported"},
    [OCI_E_NOT_FOUND] = {404, "NOT_FOUND", "no such endpoint"},
    [OCI_E_TOOMANYREQUESTS] = {429, "TOOMANYREQUESTS", "too many requests"},
    [OCI_E_UPSTREAM_FAILED] = {502, "UPSTREAM_FAILED", "the upstream registry failed"},
    [OCI_E_UNAVAILABLE] = {503, "UNAVAILABLE", "service unavailable"},
    [OCI_E_INTERNAL] = {500, "INTERNAL", "internal error"},
    [OCI_E_BLOB_UPLOAD_INVALID] = {400, "BLOB_UPLOAD_INVALID", "blob upload invalid"},
    [OCI_E_BLOB_UPLOAD_UNKNOWN] = {404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"},
    [OCI_E_MANIFEST_BLOB_UNKNOWN] = {400, "MANIFEST_BLOB_UNKNOWN",
                                     "manifest references a manifest or blob unknown to registry"},
    [OCI_E_SIZE_INVALID] = {400, "SIZE_INVALID", "provided length did not match content length"},
    [OCI_E_RANGE_INVALID] = {416, "BLOB_UPLOAD_INVALID", "requested range not satisfiable"},
    [OCI_E_MANIFEST_TOO_LARGE] = {413, "MANIFEST_INVALID", "manifest too large"},
    [OCI_E_PARAM_INVALID] = {400, "PARAM_INVALID", "a query parameter is invalid"},
};

/* A value outside the enum is a bug of ours, so it answers as one. */
static const struct error_info *error_info(enum oci_error err)
{
    if ((size_t)err >= sizeof(error_table) / sizeof(error_table[0]))
        err = OCI_E_INTERNAL;
    return &error_table[err];
}

int oci_error_status(enum oci_error err)
{
    return error_info(err)->status;
}

const char *oci_error_code(enum oci_error err)
{
    return error_info(err)->code;
}

/* One {"code","message","detail"} object; NULL when out of memory. */
static cJSON *error_entry(const struct error_info *info, const char *message, const char *detail)
{
    cJSON *entry = cJSON_CreateObject();

    if (entry == NULL || !cJSON_AddStringToObject(entry, "code", info->code) ||
        !cJSON_AddStringToObject(entry, "message", message ? message : info->message) ||
        (detail != NULL && !cJSON_AddStringToObject(entry, "detail", detail))) {
        cJSON_Delete(entry);
        return NULL;
    }
    return entry;
}

char *oci_error_body(enum oci_error err, const char *message, const char *detail)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "errors");
    cJSON *entry = error_entry(error_info(err), message, detail);
    char *body = NULL;

    if (list != NULL && entry != NULL && cJSON_AddItemToArray(list, entry)) {
        entry = NULL; /* root owns it now */
        body = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(entry);
    cJSON_Delete(root);
    return body;
}
