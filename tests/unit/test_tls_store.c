/*
 * test_tls_store.c - which certificates a shared store reads, and when.
 *
 * Runs against the system's trust (Debian's ca-certificates: a bundle and
 * the hashed directory made from the same certificates). A root of the
 * bundle checks out against a store of both while the store reads only
 * what the directory gives for it; with a directory that lacks it the
 * bundle is read whole, once; a certificate of neither is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/tls_store.h"

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define SYSTEM_DIR    "/etc/ssl/certs"

/* The first certificate of the system bundle: a root, issued by itself. */
static X509 *first_root(void)
{
    FILE *f = fopen(SYSTEM_BUNDLE, "r");
    X509 *cert;

    assert_non_null(f);
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(cert);
    return cert;
}

/* How many certificates and CRLs the store holds now. */
static int held(X509_STORE *store)
{
    int n;

    assert_true(X509_STORE_lock(store));
    n = sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
    X509_STORE_unlock(store);
    return n;
}

/* How many certificates the system bundle has. */
static int bundle_count(void)
{
    X509_STORE *store = X509_STORE_new();
    int n;

    assert_true(X509_STORE_load_file(store, SYSTEM_BUNDLE));
    n = held(store);
    X509_STORE_free(store);
    return n;
}

/* Whether cert checks out against store. */
static bool verifies(X509_STORE *store, X509 *cert)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok;

    assert_non_null(ctx);
    assert_true(X509_STORE_CTX_init(ctx, store, cert, NULL));
    ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    return ok;
}

/* A self-signed certificate that no store trusts. */
static X509 *stranger(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(key);
    assert_non_null(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"stranger", -1, -1,
                               0);
    X509_set_version(cert, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return cert;
}

static void test_directory_first_bundle_unread(void **state)
{
    X509_STORE *store = tls_store_get(SYSTEM_BUNDLE, SYSTEM_DIR);
    X509 *root = first_root();

    (void)state;
    assert_non_null(store);
    assert_int_equal(held(store), 0);
    assert_true(verifies(store, root));
    /* the root (and any of the same name) from the directory; not the ~140 of the bundle */
    assert_in_range(held(store), 1, 4);
    X509_free(root);
    X509_STORE_free(store);
}

static void test_same_store_for_same_names(void **state)
{
    X509_STORE *a = tls_store_get(SYSTEM_BUNDLE, SYSTEM_DIR);
    X509_STORE *b = tls_store_get(SYSTEM_BUNDLE, SYSTEM_DIR);

    (void)state;
    assert_non_null(a);
    assert_ptr_equal(a, b);
    X509_STORE_free(a);
    X509_STORE_free(b);
}

static void test_bundle_read_for_what_the_directory_lacks(void **state)
{
    char dir[] = "/tmp/test_tls_store.XXXXXX";
    X509_STORE *store;
    X509 *root = first_root(), *other = stranger();

    (void)state;
    assert_non_null(mkdtemp(dir));
    store = tls_store_get(SYSTEM_BUNDLE, dir);
    assert_non_null(store);
    assert_int_equal(held(store), 0);
    assert_true(verifies(store, root));
    assert_int_equal(held(store), bundle_count());
    /* read once: a certificate of neither is refused, and nothing more is read */
    assert_false(verifies(store, other));
    assert_int_equal(held(store), bundle_count());
    X509_free(root);
    X509_free(other);
    X509_STORE_free(store);
    rmdir(dir);
}

static void test_bundle_alone_read_at_once(void **state)
{
    X509_STORE *store = tls_store_get(SYSTEM_BUNDLE, NULL);
    X509 *root = first_root(), *other = stranger();

    (void)state;
    assert_non_null(store);
    assert_int_equal(held(store), bundle_count());
    assert_true(verifies(store, root));
    assert_false(verifies(store, other));
    X509_free(root);
    X509_free(other);
    X509_STORE_free(store);
}

static void test_unreadable_bundle_is_no_store(void **state)
{
    (void)state;
    assert_null(tls_store_get("/nonexistent/bundle.pem", NULL));
}

static int release(void **state)
{
    (void)state;
    tls_store_release();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_first_bundle_unread),
        cmocka_unit_test(test_same_store_for_same_names),
        cmocka_unit_test(test_bundle_read_for_what_the_directory_lacks),
        cmocka_unit_test(test_bundle_alone_read_at_once),
        cmocka_unit_test(test_unreadable_bundle_is_no_store),
    };
    return cmocka_run_group_tests(tests, NULL, release);
}
