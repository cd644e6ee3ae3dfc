/*
 * tls_store.c - one X509_STORE per CA bundle, shared by every TLS context.
 *
 * A handle is given the bundle's entry (kept until exit, so the pointer
 * libcurl holds stays valid); the store itself is read when a connection
 * first needs it, in libcurl's SSL context callback, so a process that
 * never speaks TLS never reads a bundle. libcurl's default bundle is the
 * one it reports (CURLINFO_CAINFO, CURLINFO_CAPATH), and the store gets
 * the flag libcurl sets on the stores it builds: a certificate of the
 * bundle is a trust anchor even when it is an intermediate.
 *
 * libcurl's default names both a bundle and a hashed directory of the same
 * certificates (Debian: /etc/ssl/certs/ca-certificates.crt, /etc/ssl/certs).
 * Reading the bundle parses every certificate in it - 144 on Debian 12,
 * 16-29 ms with OpenSSL 3.0 and 1.3 MiB more resident memory - for the one
 * or two a connection needs. So the directory is searched first, a certificate at a
 * time as a peer's chain asks for its issuer, and the bundle is read only
 * when the directory lacks one (bundle_lookup): the trust is still both.
 *
 * libcurl gives a kept connection (and a TLS session to resume) to another
 * request only when their CA file and CA directory options match; with no
 * CA file, a connection checked against one bundle would be reused for an
 * upstream that trusts another. So each bundle's name stays in the CA
 * directory option (CURLOPT_CAPATH): libcurl only adds it as a lazy lookup
 * to the store it builds before calling back, a store that the callback
 * then replaces, so it costs nothing and reads nothing.
 */
#include "autoconfig.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/tls_store.h"

struct tls_store {
    struct tls_store *next;
    char *file; /* NULL: none */
    char *dir;  /* NULL: none */
    X509_STORE *store;
    bool failed; /* read once and unreadable: not tried again */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_store *stores;

static bool same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The entry of file and dir, made when new; NULL when out of memory. Under lock. */
static struct tls_store *entry_of(const char *file, const char *dir)
{
    struct tls_store *e;

    for (e = stores; e != NULL; e = e->next)
        if (same(e->file, file) && same(e->dir, dir))
            return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->file = file != NULL ? strdup(file) : NULL;
    e->dir = dir != NULL ? strdup(dir) : NULL;
    if ((file != NULL && e->file == NULL) || (dir != NULL && e->dir == NULL)) {
        free(e->file);
        free(e->dir);
        free(e);
        return NULL;
    }
    e->next = stores;
    stores = e;
    return e;
}

/* The bundle read on demand: its file, read into the store at most once. */
struct bundle_lookup {
    pthread_mutex_t lock;
    char *file;
    bool read;
};

static X509_LOOKUP_METHOD *bundle_method; /* made once, under lock; kept until exit */

static void bundle_lookup_free(X509_LOOKUP *lookup)
{
    struct bundle_lookup *b = X509_LOOKUP_get_method_data(lookup);

    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->file);
    free(b);
}

/*
 * Adds every certificate and CRL of file to store; false when it cannot be
 * read or holds none (as X509_STORE_load_file says).
 */
static bool add_bundle(X509_STORE *store, const char *file)
{
    BIO *in = BIO_new_file(file, "r");
    STACK_OF(X509_INFO) *infos = in != NULL ? PEM_X509_INFO_read_bio(in, NULL, NULL, NULL) : NULL;
    int i, added = 0;

    BIO_free(in);
    if (infos == NULL)
        return false;
    /* X509_STORE_add_cert takes the store's lock: verifications may be running. */
    for (i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);

        added += info->x509 != NULL && X509_STORE_add_cert(store, info->x509);
        added += info->crl != NULL && X509_STORE_add_crl(store, info->crl);
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return added > 0;
}

/*
 * OpenSSL asks the lookups in turn for an issuer the store does not hold
 * yet: this one comes after the directory's, so it is asked only for what
 * the directory lacks. It reads the whole bundle once and looks again.
 */
static int bundle_by_subject(X509_LOOKUP *lookup, X509_LOOKUP_TYPE type, const X509_NAME *name,
                             X509_OBJECT *ret)
{
    struct bundle_lookup *b = X509_LOOKUP_get_method_data(lookup);
    X509_STORE *store = X509_LOOKUP_get_store(lookup);
    X509_OBJECT *found;
    int ok = 0;

    pthread_mutex_lock(&b->lock);
    if (!b->read && !add_bundle(store, b->file))
        oci_log(OCI_LOG_ERROR, "TLS: cannot read the CA certificates of %s", b->file);
    b->read = true;
    pthread_mutex_unlock(&b->lock);
    if (!X509_STORE_lock(store))
        return 0;
    found = X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(store), type, name);
    /* A lookup lends what it finds (OpenSSL takes its own reference, as
     * from the directory's lookup): the store keeps the one set1 adds. */
    if (found != NULL && type == X509_LU_X509 &&
        (ok = X509_OBJECT_set1_X509(ret, X509_OBJECT_get0_X509(found))))
        X509_free(X509_OBJECT_get0_X509(found));
    else if (found != NULL && type == X509_LU_CRL &&
             (ok = X509_OBJECT_set1_X509_CRL(ret, X509_OBJECT_get0_X509_CRL(found))))
        X509_CRL_free(X509_OBJECT_get0_X509_CRL(found));
    X509_STORE_unlock(store);
    return ok;
}

/* Has store read file when its other lookups lack an issuer. Under lock. */
static bool add_bundle_lookup(X509_STORE *store, const char *file)
{
    struct bundle_lookup *b;
    X509_LOOKUP *lookup;

    if (bundle_method == NULL) {
        bundle_method = X509_LOOKUP_meth_new("oci-registry bundle on demand");
        if (bundle_method == NULL ||
            !X509_LOOKUP_meth_set_get_by_subject(bundle_method, bundle_by_subject) ||
            !X509_LOOKUP_meth_set_free(bundle_method, bundle_lookup_free)) {
            X509_LOOKUP_meth_free(bundle_method);
            bundle_method = NULL;
            return false;
        }
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL || (b->file = strdup(file)) == NULL) {
        free(b);
        return false;
    }
    pthread_mutex_init(&b->lock, NULL);
    lookup = X509_STORE_add_lookup(store, bundle_method);
    if (lookup == NULL || !X509_LOOKUP_set_method_data(lookup, b)) {
        pthread_mutex_destroy(&b->lock);
        free(b->file);
        free(b);
        return false;
    }
    return true;
}

/* The entry's certificates: a directory first and its bundle on demand, or either. Under lock. */
static bool add_certificates(X509_STORE *store, const struct tls_store *e)
{
    if (e->dir != NULL && !X509_STORE_load_path(store, e->dir))
        return false;
    if (e->file == NULL)
        return true;
    return e->dir != NULL ? add_bundle_lookup(store, e->file) : add_bundle(store, e->file);
}

/* Makes the entry's store. Under lock. */
static void load(struct tls_store *e)
{
    X509_STORE *store = X509_STORE_new();

    if (store == NULL || !add_certificates(store, e) ||
        !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN)) {
        oci_log(OCI_LOG_ERROR, "TLS: cannot read the CA certificates of %s%s%s",
                e->file ? e->file : "", e->file && e->dir ? " and " : "", e->dir ? e->dir : "");
        X509_STORE_free(store);
        e->failed = true;
        return;
    }
    e->store = store;
}

/* The entry's store, made on first use; NULL when unreadable. Under lock. */
static X509_STORE *store_of(struct tls_store *e)
{
    if (e->store == NULL && !e->failed)
        load(e);
    return e->store;
}

/* libcurl's SSL context callback: the entry's store, read on first use. */
static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *entry)
{
    X509_STORE *store;

    (void)easy;
    pthread_mutex_lock(&lock);
    store = store_of(entry);
    pthread_mutex_unlock(&lock);
    if (store == NULL)
        return CURLE_SSL_CACERT_BADFILE;
    SSL_CTX_set1_cert_store(ssl_ctx, store); /* counted: the context holds it too */
    return CURLE_OK;
}

X509_STORE *tls_store_get(const char *file, const char *dir)
{
    struct tls_store *e;
    X509_STORE *store = NULL;

    pthread_mutex_lock(&lock);
    e = entry_of(file, dir);
    if (e != NULL && (store = store_of(e)) != NULL && !X509_STORE_up_ref(store))
        store = NULL;
    pthread_mutex_unlock(&lock);
    return store;
}

CURLcode tls_store_use(CURL *easy, const char *ca_file)
{
    char *file = (char *)ca_file, *dir = NULL;
    struct tls_store *e;
    CURLcode rc;

    if (ca_file == NULL) {
        curl_easy_getinfo(easy, CURLINFO_CAINFO, &file);
        curl_easy_getinfo(easy, CURLINFO_CAPATH, &dir);
    }
    pthread_mutex_lock(&lock);
    e = entry_of(file, dir);
    pthread_mutex_unlock(&lock);
    if (e == NULL)
        return CURLE_OUT_OF_MEMORY;
    rc = curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    if (rc != CURLE_OK) /* a TLS library without the callback: libcurl reads the bundle */
        return ca_file != NULL ? curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file) : CURLE_OK;
    curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, e);
    curl_easy_setopt(easy, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(easy, CURLOPT_CAPATH, e->dir != NULL ? e->dir : e->file);
    return CURLE_OK;
}

void tls_store_release(void)
{
    pthread_mutex_lock(&lock);
    while (stores != NULL) {
        struct tls_store *e = stores;

        stores = e->next;
        X509_STORE_free(e->store);
        free(e->file);
        free(e->dir);
        free(e);
    }
    pthread_mutex_unlock(&lock);
}
