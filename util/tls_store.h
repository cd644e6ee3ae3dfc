/*
 * tls_store.h - the certificates that upstreams and S3 endpoints are checked
 * against, loaded once per process.
 *
 * libcurl loads the CA bundle into every easy handle that connects over
 * TLS and keeps it with the handle: with the system bundle that is about
 * 1.2 MiB for each pooled handle (16 fetches at once held 20 MiB more).
 * Here each bundle is read once, into one OpenSSL X509_STORE that every
 * handle's TLS context shares (OpenSSL counts its users and locks its
 * lookups); libcurl is told to load none itself. Where a store has both a
 * bundle and a hashed directory (libcurl's default), the directory is
 * searched first, a certificate at a time, and the bundle is read only for
 * an issuer the directory lacks.
 */
#ifndef OCI_TLS_STORE_H
#define OCI_TLS_STORE_H

#include <curl/curl.h>
#include <openssl/x509_vfy.h>

/*
 * Has easy check peers against the certificates of ca_file, or, when it is
 * NULL, of libcurl's own default bundle. Call it again after every
 * curl_easy_reset. A bundle that cannot be read fails the connection
 * (CURLE_SSL_CACERT_BADFILE), as it would in libcurl.
 */
CURLcode tls_store_use(CURL *easy, const char *ca_file);

/*
 * The shared store of a bundle file and a hashed directory (either may be
 * NULL), made on first use: what tls_store_use gives every TLS context.
 * Counted: the caller frees it with X509_STORE_free. NULL when it cannot
 * be read.
 */
X509_STORE *tls_store_get(const char *file, const char *dir);

/* Drops the stores (at exit; handles still using one keep it alive). */
void tls_store_release(void);

#endif
