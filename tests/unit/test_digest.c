/*
 * test_digest.c - digest parsing, formatting and hashing, in the caller's
 * thread (oci_hasher) and on a thread of its own (oci_hashpipe).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/request/digest.h"
#include "core/request/hashpipe.h"

#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_EMPTY                                                                               \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"                             \
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                                                 \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                             \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

struct parse_case {
    const char *input;
    enum oci_error want;
};

/* Parses from a buffer of exactly the input's length, so an over-read trips ASan. */
static enum oci_error parse_exact(const char *s, struct oci_digest *out)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    enum oci_error err;

    assert_non_null(copy);
    memcpy(copy, s, len);
    err = oci_digest_parse(len > 0 ? copy : copy + 1, len, out);
    free(copy);
    return err;
}

static void test_parse_valid(void **state)
{
    struct oci_digest d;

    (void)state;
    assert_int_equal(parse_exact("sha256:" SHA256_EMPTY, &d), OCI_OK);
    assert_int_equal(d.alg, OCI_DIGEST_SHA256);
    assert_string_equal(d.hex, SHA256_EMPTY);
    assert_int_equal(parse_exact("sha512:" SHA512_ABC, &d), OCI_OK);
    assert_int_equal(d.alg, OCI_DIGEST_SHA512);
    assert_string_equal(d.hex, SHA512_ABC);
}

static void test_parse_errors(void **state)
{
    static const struct parse_case cases[] = {
        {"", OCI_E_DIGEST_INVALID},
        {":", OCI_E_DIGEST_INVALID},
        {"sha256", OCI_E_DIGEST_INVALID},
        {"sha256:", OCI_E_DIGEST_INVALID},
        {"sha384:", OCI_E_DIGEST_INVALID},
        {":" SHA256_EMPTY, OCI_E_DIGEST_INVALID},
        {"SHA256:" SHA256_EMPTY, OCI_E_DIGEST_INVALID},
        {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
         OCI_E_DIGEST_INVALID},
        {"sha256:e3b0", OCI_E_DIGEST_INVALID},
        {"sha256:" SHA256_EMPTY "0", OCI_E_DIGEST_INVALID},
        {"sha256:" SHA256_EMPTY ":x", OCI_E_DIGEST_INVALID},
        {"sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         OCI_E_DIGEST_INVALID},
        {"sha512:" SHA256_EMPTY, OCI_E_DIGEST_INVALID},
        {"sha256:ab/cd", OCI_E_DIGEST_INVALID},
        {"sha256:ab%2f", OCI_E_DIGEST_INVALID},
        {"sha-:abc", OCI_E_DIGEST_INVALID},
        {"+sha:abc", OCI_E_DIGEST_INVALID},
        {"sha..x:abc", OCI_E_DIGEST_INVALID},
        {"sha 256:abc", OCI_E_DIGEST_INVALID},
        {"latest", OCI_E_DIGEST_INVALID},
        {"sha384:abc", OCI_E_UNSUPPORTED},
        {"md5:abc", OCI_E_UNSUPPORTED},
        {"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", OCI_E_UNSUPPORTED},
        {"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", OCI_E_UNSUPPORTED},
        {"a.b_c-d:x=", OCI_E_UNSUPPORTED},
    };
    struct oci_digest d;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum oci_error got = parse_exact(cases[i].input, &d);

        if (got != cases[i].want)
            fail_msg("\"%s\": got %s, want %s", cases[i].input, oci_error_code(got),
                     oci_error_code(cases[i].want));
    }
}

/* len, not the NUL, ends the input. */
static void test_parse_len(void **state)
{
    struct oci_digest d;

    (void)state;
    assert_int_equal(oci_digest_parse("sha256:" SHA256_EMPTY "ff", 71, &d), OCI_OK);
    assert_string_equal(d.hex, SHA256_EMPTY);
    assert_int_equal(oci_digest_parse("sha256:" SHA256_EMPTY, 70, &d), OCI_E_DIGEST_INVALID);
}

static void test_format_round_trip(void **state)
{
    static const char *const inputs[] = {"sha256:" SHA256_ABC, "sha512:" SHA512_EMPTY};
    char buf[OCI_DIGEST_STRING_MAX];
    struct oci_digest d;

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(oci_digest_parse(inputs[i], strlen(inputs[i]), &d), OCI_OK);
        oci_digest_format(&d, buf);
        assert_string_equal(buf, inputs[i]);
    }
    assert_int_equal(strlen(buf), OCI_DIGEST_STRING_MAX - 1);
}

static void test_alg_name(void **state)
{
    (void)state;
    assert_string_equal(oci_digest_alg_name(OCI_DIGEST_SHA256), "sha256");
    assert_string_equal(oci_digest_alg_name(OCI_DIGEST_SHA512), "sha512");
}

static void test_equal(void **state)
{
    struct oci_digest a, b, c, e;

    (void)state;
    assert_int_equal(oci_digest_parse("sha256:" SHA256_ABC, 71, &a), OCI_OK);
    assert_int_equal(oci_digest_parse("sha256:" SHA256_ABC, 71, &b), OCI_OK);
    assert_int_equal(oci_digest_parse("sha256:" SHA256_EMPTY, 71, &c), OCI_OK);
    assert_true(oci_digest_equal(&a, &b));
    assert_false(oci_digest_equal(&a, &c));
    /* Same hex, other algorithm: not the same digest. */
    e = a;
    e.alg = OCI_DIGEST_SHA512;
    assert_false(oci_digest_equal(&a, &e));
}

static void test_known_hashes(void **state)
{
    struct oci_digest d;

    (void)state;
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, "", 0, &d));
    assert_int_equal(d.alg, OCI_DIGEST_SHA256);
    assert_string_equal(d.hex, SHA256_EMPTY);
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA256, "abc", 3, &d));
    assert_string_equal(d.hex, SHA256_ABC);
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA512, "", 0, &d));
    assert_int_equal(d.alg, OCI_DIGEST_SHA512);
    assert_string_equal(d.hex, SHA512_EMPTY);
    assert_true(oci_digest_buffer(OCI_DIGEST_SHA512, "abc", 3, &d));
    assert_string_equal(d.hex, SHA512_ABC);
}

/* Feeding the data in uneven pieces gives the one-shot digest. */
static void test_streaming(void **state)
{
    static const enum oci_digest_alg algs[] = {OCI_DIGEST_SHA256, OCI_DIGEST_SHA512};
    unsigned char data[10000];
    struct oci_digest whole, streamed;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + i / 251);
    for (size_t a = 0; a < 2; a++) {
        struct oci_hasher *h = oci_hasher_new(algs[a]);
        size_t off = 0, piece = 1;

        assert_non_null(h);
        while (off < sizeof(data)) {
            size_t n = piece < sizeof(data) - off ? piece : sizeof(data) - off;

            assert_true(oci_hasher_update(h, data + off, n));
            off += n;
            piece = piece * 3 + 1;
        }
        assert_true(oci_hasher_update(h, data, 0));
        assert_true(oci_hasher_final(h, &streamed));
        oci_hasher_free(h);
        assert_true(oci_digest_buffer(algs[a], data, sizeof(data), &whole));
        assert_true(oci_digest_equal(&whole, &streamed));
    }
}

/* Pieces of every size, wrapping the ring many times: the one-shot digest. */
static void test_hashpipe(void **state)
{
    static const enum oci_digest_alg algs[] = {OCI_DIGEST_SHA256, OCI_DIGEST_SHA512};
    size_t size = 5 * OCI_HASHPIPE_RING + 12345;
    unsigned char *data = malloc(size);
    struct oci_digest whole, piped;

    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 13 + i / 509);
    for (size_t a = 0; a < 2; a++) {
        struct oci_hashpipe *p = oci_hashpipe_new(algs[a]);
        size_t off = 0, piece = 1;

        assert_non_null(p);
        while (off < size) {
            size_t n = piece < size - off ? piece : size - off;

            assert_true(oci_hashpipe_write(p, data + off, n));
            off += n;
            piece = piece < 2 * OCI_HASHPIPE_RING ? piece * 5 + 3 : 1;
        }
        assert_true(oci_hashpipe_write(p, data, 0));
        assert_true(oci_hashpipe_finish(p, &piped));
        oci_hashpipe_free(p);
        assert_true(oci_digest_buffer(algs[a], data, size, &whole));
        assert_true(oci_digest_equal(&whole, &piped));
    }
    free(data);
}

/* Nothing written: the empty digest. Freed unfinished, with the ring full:
 * the thread stops without hashing the rest (no hang, nothing leaked). */
static void test_hashpipe_empty_and_abandoned(void **state)
{
    static unsigned char block[64 * 1024];
    struct oci_hashpipe *p = oci_hashpipe_new(OCI_DIGEST_SHA256);
    struct oci_digest d;

    (void)state;
    assert_non_null(p);
    assert_true(oci_hashpipe_finish(p, &d));
    assert_string_equal(d.hex, SHA256_EMPTY);
    oci_hashpipe_free(p);

    p = oci_hashpipe_new(OCI_DIGEST_SHA256);
    assert_non_null(p);
    for (size_t i = 0; i < 2 * OCI_HASHPIPE_RING / sizeof(block); i++)
        assert_true(oci_hashpipe_write(p, block, sizeof(block)));
    oci_hashpipe_free(p);
    oci_hashpipe_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),  cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_len),    cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_alg_name),     cmocka_unit_test(test_equal),
        cmocka_unit_test(test_known_hashes), cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_hashpipe),     cmocka_unit_test(test_hashpipe_empty_and_abandoned),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
