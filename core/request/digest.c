/*
 * digest.c - "algorithm:encoded" digests and the hashers that produce them.
 *
 * Parsing follows the OCI image spec's grammar, then holds sha256 and sha512
 * to their exact encoding so that one content has one digest string (and one
 * storage key). Hashing is OpenSSL's EVP interface.
 */
#include "core/request/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct alg_info {
    const char *name;
    size_t hex_len;
    const EVP_MD *(*md)(void);
};

static const struct alg_info alg_table[] = {
    [OCI_DIGEST_SHA256] = {"sha256", 64, EVP_sha256},
    [OCI_DIGEST_SHA512] = {"sha512", 128, EVP_sha512},
};

#define ALG_COUNT (sizeof(alg_table) / sizeof(alg_table[0]))

struct oci_hasher {
    EVP_MD_CTX *ctx;
    enum oci_digest_alg alg;
};

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_lower_hex(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

/* algorithm := component (separator component)*, component := [a-z0-9]+, separator := [+._-] */
static bool algorithm_valid(const char *s, size_t len)
{
    bool need_alnum = true; /* at the start and after each separator */

    for (size_t i = 0; i < len; i++) {
        if (is_lower_alnum(s[i]))
            need_alnum = false;
        else if (!need_alnum && memchr("+._-", s[i], 4) != NULL)
            need_alnum = true;
        else
            return false;
    }
    return !need_alnum;
}

/* encoded := [a-zA-Z0-9=_-]+ */
static bool encoded_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '=' && c != '_' && c != '-')
            return false;
    }
    return len > 0;
}

static bool lower_hex_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_lower_hex(s[i]))
            return false;
    }
    return true;
}

enum oci_error oci_digest_parse(const char *s, size_t len, struct oci_digest *out)
{
    const char *colon = memchr(s, ':', len);
    const char *hex;
    size_t alg_len, hex_len;

    if (colon == NULL)
        return OCI_E_DIGEST_INVALID;
    alg_len = (size_t)(colon - s);
    hex = colon + 1;
    hex_len = len - alg_len - 1;
    if (!algorithm_valid(s, alg_len) || !encoded_valid(hex, hex_len))
        return OCI_E_DIGEST_INVALID;
    for (size_t i = 0; i < ALG_COUNT; i++) {
        const struct alg_info *alg = &alg_table[i];

        if (strlen(alg->name) != alg_len || memcmp(alg->name, s, alg_len) != 0)
            continue;
        if (hex_len != alg->hex_len || !lower_hex_valid(hex, hex_len))
            return OCI_E_DIGEST_INVALID;
        out->alg = (enum oci_digest_alg)i;
        memcpy(out->hex, hex, hex_len);
        out->hex[hex_len] = '\0';
        return OCI_OK;
    }
    return OCI_E_UNSUPPORTED;
}

void oci_digest_format(const struct oci_digest *d, char *buf)
{
    snprintf(buf, OCI_DIGEST_STRING_MAX, "%s:%s", oci_digest_alg_name(d->alg), d->hex);
}

const char *oci_digest_alg_name(enum oci_digest_alg alg)
{
    return alg_table[alg].name;
}

bool oci_digest_equal(const struct oci_digest *a, const struct oci_digest *b)
{
    return a->alg == b->alg && strcmp(a->hex, b->hex) == 0;
}

struct oci_hasher *oci_hasher_new(enum oci_digest_alg alg)
{
    struct oci_hasher *h = malloc(sizeof(*h));

    if (h == NULL)
        return NULL;
    h->alg = alg;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, alg_table[alg].md(), NULL) != 1) {
        oci_hasher_free(h);
        return NULL;
    }
    return h;
}

bool oci_hasher_update(struct oci_hasher *h, const void *buf, size_t len)
{
    return EVP_DigestUpdate(h->ctx, buf, len) == 1;
}

bool oci_hasher_final(struct oci_hasher *h, struct oci_digest *out)
{
    static const char hex_digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_DigestFinal_ex(h->ctx, md, &md_len) != 1)
        return false;
    out->alg = h->alg;
    for (unsigned int i = 0; i < md_len; i++) {
        out->hex[2 * i] = hex_digits[md[i] >> 4];
        out->hex[2 * i + 1] = hex_digits[md[i] & 0x0f];
    }
    out->hex[2 * md_len] = '\0';
    return true;
}

void oci_hasher_free(struct oci_hasher *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

bool oci_digest_buffer(enum oci_digest_alg alg, const void *buf, size_t len, struct oci_digest *out)
{
    struct oci_hasher *h = oci_hasher_new(alg);
    bool ok = h != NULL && oci_hasher_update(h, buf, len) && oci_hasher_final(h, out);

    oci_hasher_free(h);
    return ok;
}
