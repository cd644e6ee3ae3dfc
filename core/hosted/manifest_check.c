/*
 * manifest_check.c - parsing a pushed manifest with cJSON: its media type,
 * its descriptors, its subject.
 */
#include "core/hosted/manifest_check.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define OCI_IMAGE_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define OCI_IMAGE_INDEX       "application/vnd.oci.image.index.v1+json"
#define DOCKER_IMAGE_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MANIFEST_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"

struct check {
    struct oci_manifest_info *out;
    const char **why;
};

static enum oci_error invalid(struct check *c, const char *why)
{
    *c->why = why;
    return OCI_E_MANIFEST_INVALID;
}

/* Copies a media type (without parameters) into dst; false when it is not one. */
static bool copy_media_type(const char *s, char dst[OCI_MEDIA_TYPE_MAX + 1])
{
    size_t len = strcspn(s, "; \t");

    if (!oci_media_type_valid(s, len))
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

static enum oci_error set_media_type(struct check *c, const cJSON *root, const char *content_type)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "mediaType");
    char header[OCI_MEDIA_TYPE_MAX + 1] = "";
    char *type = c->out->media_type;

    if (content_type != NULL && !copy_media_type(content_type, header))
        return invalid(c, "the Content-Type is not a media type");
    if (mt != NULL && (!cJSON_IsString(mt) || !copy_media_type(mt->valuestring, type)))
        return invalid(c, "mediaType is not a media type");
    if (mt == NULL)
        strcpy(type, header);
    else if (header[0] != '\0' && strcmp(header, type) != 0)
        return invalid(c, "the Content-Type is not the manifest's mediaType");
    if (strcmp(type, OCI_IMAGE_INDEX) == 0 || strcmp(type, DOCKER_MANIFEST_LIST) == 0)
        c->out->is_index = true;
    else if (strcmp(type, OCI_IMAGE_MANIFEST) != 0 && strcmp(type, DOCKER_IMAGE_MANIFEST) != 0)
        return invalid(c, "not an image manifest or index media type (OCI or Docker v2)");
    return OCI_OK;
}

/* The digest of a descriptor object; false when it has none this build verifies. */
static bool descriptor_digest(const cJSON *desc, struct oci_digest *out)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(desc, "digest");

    return cJSON_IsObject(desc) && cJSON_IsString(d) &&
           oci_digest_parse(d->valuestring, strlen(d->valuestring), out) == OCI_OK;
}

static enum oci_error add_ref(struct check *c, const cJSON *desc)
{
    struct oci_manifest_info *out = c->out;
    struct oci_digest *grown;

    grown = realloc(out->refs, (out->ref_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return OCI_E_INTERNAL;
    out->refs = grown;
    if (!descriptor_digest(desc, &out->refs[out->ref_count]))
        return invalid(c, "a descriptor without a sha256 or sha512 digest");
    out->ref_count++;
    return OCI_OK;
}

/* The descriptors of an array ("layers", "manifests"); absent is an empty list. */
static enum oci_error add_refs(struct check *c, const cJSON *root, const char *key)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, key);
    const cJSON *desc;
    enum oci_error err = OCI_OK;

    if (list == NULL)
        return OCI_OK;
    if (!cJSON_IsArray(list))
        return invalid(c, c->out->is_index ? "manifests is not a list" : "layers is not a list");
    cJSON_ArrayForEach(desc, list)
    {
        if ((err = add_ref(c, desc)) != OCI_OK)
            break;
    }
    return err;
}

/* artifactType, else an image's config media type; the subject; the annotations. */
static enum oci_error set_referrer_fields(struct check *c, const cJSON *root)
{
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "artifactType");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *subject = cJSON_GetObjectItemCaseSensitive(root, "subject");
    const cJSON *annotations = cJSON_GetObjectItemCaseSensitive(root, "annotations");

    if (at == NULL && !c->out->is_index)
        at = cJSON_GetObjectItemCaseSensitive(config, "mediaType");
    if (at != NULL &&
        (!cJSON_IsString(at) || !copy_media_type(at->valuestring, c->out->artifact_type)))
        return invalid(c, "artifactType is not a media type");
    if (subject != NULL) {
        if (!descriptor_digest(subject, &c->out->subject))
            return invalid(c, "subject is not a descriptor with a sha256 or sha512 digest");
        c->out->has_subject = true;
    }
    if (annotations != NULL) {
        if (!cJSON_IsObject(annotations))
            return invalid(c, "annotations is not an object");
        c->out->annotations = cJSON_PrintUnformatted(annotations);
        if (c->out->annotations == NULL)
            return OCI_E_INTERNAL;
    }
    return OCI_OK;
}

enum oci_error oci_manifest_check(const char *body, size_t len, const char *content_type,
                                  struct oci_manifest_info *out, const char **why)
{
    struct check c = {out, why};
    cJSON *root = cJSON_ParseWithLength(body, len);
    enum oci_error err;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return invalid(&c, "not a JSON object");
    }
    err = set_media_type(&c, root, content_type);
    if (err == OCI_OK && !out->is_index) {
        const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");

        err =
            config == NULL ? invalid(&c, "an image manifest without config") : add_ref(&c, config);
    }
    if (err == OCI_OK)
        err = add_refs(&c, root, out->is_index ? "manifests" : "layers");
    if (err == OCI_OK)
        err = set_referrer_fields(&c, root);
    cJSON_Delete(root);
    if (err != OCI_OK)
        oci_manifest_info_free(out);
    return err;
}

void oci_manifest_info_free(struct oci_manifest_info *info)
{
    free(info->refs);
    free(info->annotations);
    info->refs = NULL;
    info->annotations = NULL;
    info->ref_count = 0;
}
