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
 * libcurl gives a kept connection (and a TLS session to resume) to another
 * request only when their CA file and CA directory options match; with no
 * CA file, a connection checked against one bundle would be reused for an
 * upstream that trusts another. So each bundle's name stays in the CA
 * directory option (CURLOPT_CAPATH): libcurl only adds it as a lazy lookup
 * to the store it builds before calling back, a store that the callback
 * then replaces, so it costs nothing and reads nothing.
 */
#include "autoconfig.h"

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

/* Reads the entry's bundle into its store. Under lock. */
static void load(struct tls_store *e)
{
    X509_STORE *store = X509_STORE_new();

    if (store == NULL || (e->file != NULL && !X509_STORE_load_file(store, e->file)) ||
        (e->dir != NULL && !X509_STORE_load_path(store, e->dir)) ||
        !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN)) {
        oci_log(OCI_LOG_ERROR, "TLS: cannot read the CA certificates of %s%s%s",
                e->file ? e->file : "", e->file && e->dir ? " and " : "", e->dir ? e->dir : "");
        X509_STORE_free(store);
        e->failed = true;
        return;
    }
    e->store = store;
}

/* libcurl's SSL context callback: the entry's store, read on first use. */
static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *entry)
{
    struct tls_store *e = entry;
    X509_STORE *store;

    (void)easy;
    pthread_mutex_lock(&lock);
    if (e->store == NULL && !e->failed)
        load(e);
    store = e->store;
    pthread_mutex_unlock(&lock);
    if (store == NULL)
        return CURLE_SSL_CACERT_BADFILE;
    SSL_CTX_set1_cert_store(ssl_ctx, store); /* counted: the context holds it too */
    return CURLE_OK;
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
