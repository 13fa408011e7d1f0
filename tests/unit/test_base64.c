/* Unit tests for base64url: the test vectors of RFC 4648 §10, the characters only
 * base64url has, every length from 0 to 64 there and back, each malformed input the
 * decoder must refuse, capacities one byte short in both directions, and the DNS query
 * of RFC 8484 §4.1.1 as a DoH GET carries it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/base64.h"

/* Encode s and compare with b64; decode b64 and compare with s. */
static void check_pair(const uint8_t *bin, size_t len, const char *b64)
{
    char text[256];
    uint8_t back[256];
    size_t tlen = strlen(b64);

    assert_int_equal(base64url_encoded_len(len), tlen);
    assert_int_equal(base64url_encode(bin, len, text, sizeof(text)), (int)tlen);
    assert_string_equal(text, b64);
    assert_int_equal(base64url_decode(b64, tlen, back, sizeof(back)), (int)len);
    assert_memory_equal(back, bin, len);
}

static void check_string(const char *s, const char *b64)
{
    check_pair((const uint8_t *)s, strlen(s), b64);
}

/* RFC 4648 §10. None of them has a character where base64 and base64url differ. */
static void test_rfc4648_vectors(void **state)
{
    (void)state;
    check_string("", "");
    check_string("f", "Zg");
    check_string("fo", "Zm8");
    check_string("foo", "Zm9v");
    check_string("foob", "Zm9vYg");
    check_string("fooba", "Zm9vYmE");
    check_string("foobar", "Zm9vYmFy");
}

/* Where base64 writes '+' and '/', base64url writes '-' and '_' (RFC 4648 §5). */
static void test_url_alphabet(void **state)
{
    (void)state;
    static const uint8_t fb_ff[] = {0xfb, 0xff};             /* base64 "+/8=" */
    static const uint8_t ff_ff_ff[] = {0xff, 0xff, 0xff};    /* base64 "////" */
    static const uint8_t f8[] = {0xf8};                      /* base64 "+A==" */
    static const uint8_t three[] = {0x00, 0x10, 0x83};       /* base64 "ABCD" */
    static const uint8_t mixed[] = {0x3e, 0xfb, 0xef, 0xbf}; /* base64 "Pvvvvw==" */
    check_pair(fb_ff, sizeof(fb_ff), "-_8");
    check_pair(ff_ff_ff, sizeof(ff_ff_ff), "____");
    check_pair(f8, sizeof(f8), "-A");
    check_pair(three, sizeof(three), "ABCD");
    check_pair(mixed, sizeof(mixed), "Pvvvvw");
}

/* A small deterministic generator, so that a failure reproduces. */
static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* Every length 0..64: encode, decode, and exact capacities in both directions. */
static void test_round_trip_lengths(void **state)
{
    (void)state;
    uint32_t seed = 0x8484u;
    for (size_t len = 0; len <= 64; len++) {
        for (int round = 0; round < 8; round++) {
            uint8_t in[64];
            uint8_t out[64 + 1];
            char text[base64url_encoded_len(64) + 1];
            for (size_t i = 0; i < len; i++)
                in[i] = (uint8_t)xorshift32(&seed);
            size_t tlen = base64url_encoded_len(len);

            /* Exactly the length and a NUL fit; one less does not, and is not written. */
            memset(text, '*', sizeof(text));
            assert_int_equal(base64url_encode(in, len, text, tlen + 1), (int)tlen);
            assert_int_equal(strlen(text), tlen);
            assert_int_equal(base64url_encode(in, len, text, tlen), -ENOSPC);
            for (size_t i = 0; i < tlen; i++) {
                char c = text[i];
                assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_');
            }

            /* Decoding gives the bytes back into exactly len bytes; one less does not fit,
             * and nothing is written past cap. */
            memset(out, 0xa5, sizeof(out));
            assert_int_equal(base64url_decode(text, tlen, out, len), (int)len);
            assert_memory_equal(out, in, len);
            assert_int_equal(out[len], 0xa5);
            if (len > 0)
                assert_int_equal(base64url_decode(text, tlen, out, len - 1), -ENOSPC);

            /* The same text with the padding some encoders add decodes the same. */
            if (tlen % 4 != 0) {
                char padded[sizeof(text) + 2];
                size_t plen = (tlen + 3) / 4 * 4;
                memcpy(padded, text, tlen);
                memset(padded + tlen, '=', plen - tlen);
                memset(out, 0, sizeof(out));
                assert_int_equal(base64url_decode(padded, plen, out, sizeof(out)), (int)len);
                assert_memory_equal(out, in, len);
            }
        }
    }
}

static void expect_invalid(const char *text)
{
    uint8_t out[64];
    memset(out, 0xa5, sizeof(out));
    assert_int_equal(base64url_decode(text, strlen(text), out, sizeof(out)), -EINVAL);
    /* Malformed input is refused before anything is written, whatever the capacity. */
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xa5);
    assert_int_equal(base64url_decode(text, strlen(text), out, 0), -EINVAL);
}

static void test_bad_characters(void **state)
{
    (void)state;
    /* The two characters of base64 that base64url replaces. */
    expect_invalid("+/8=");
    expect_invalid("-_+8");
    expect_invalid("Zm9v/w");
    expect_invalid("Zm9v+w");
    /* Neither alphabet. */
    expect_invalid("Zm@v");
    expect_invalid("Zm9v#g");
    expect_invalid("Zm9~");
    expect_invalid("Zm9v Yg");
    expect_invalid(" Zm9v");
    expect_invalid("Zm9v\n");
    expect_invalid("Zm9v.g");
    expect_invalid("Zm9v\x80g");
    expect_invalid("Zm9v\xffg");

    /* A NUL within len is a bad character too, not the end of the input. */
    uint8_t out[8];
    assert_int_equal(base64url_decode("Zm9v\0Yg", 7, out, sizeof(out)), -EINVAL);
}

static void test_bad_length(void **state)
{
    (void)state;
    /* A last group of one character holds 6 bits: no byte. */
    expect_invalid("Z");
    expect_invalid("Zm9vY");
    expect_invalid("Zm9vYmFyZ");
    expect_invalid("Z===");
    expect_invalid("Zm9vY===");
}

/* RFC 4648 §3.5: the bits of the last character that no byte uses must be zero, else two
 * texts would decode to the same bytes. */
static void test_non_canonical(void **state)
{
    (void)state;
    /* "Zg" is "f"; "Zh" to "Zv" carry the same byte with stray bits. */
    expect_invalid("Zh");
    expect_invalid("Zv");
    expect_invalid("Z_");
    expect_invalid("Zh==");
    /* "Zm8" is "fo"; "Zm9" has the last of its 2 unused bits set. */
    expect_invalid("Zm9");
    expect_invalid("Zm-");
    expect_invalid("Zm9=");
    expect_invalid("Zm9vYh");
    expect_invalid("Zm9vYm_");
}

static void test_bad_padding(void **state)
{
    (void)state;
    /* Padding that does not complete the last group. */
    expect_invalid("Zg=");
    expect_invalid("Zm8==");
    expect_invalid("Zg===");
    expect_invalid("=");
    expect_invalid("==");
    expect_invalid("====");
    /* Too much of it, or where no group needs it. */
    expect_invalid("Zm8==");
    expect_invalid("Zm9v=");
    expect_invalid("Zm9v==");
    expect_invalid("Zm9v====");
    expect_invalid("Zg====");
    /* In the middle. */
    expect_invalid("Zg==Zg==");
    expect_invalid("Zm=v");
    expect_invalid("Z=9vYg");
    expect_invalid("Zm9v=Yg");
    /* The right amount, at the right place, is accepted. */
    uint8_t out[8];
    assert_int_equal(base64url_decode("Zg==", 4, out, sizeof(out)), 1);
    assert_int_equal(out[0], 'f');
    assert_int_equal(base64url_decode("Zm8=", 4, out, sizeof(out)), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(base64url_decode("Zm9vYg==", 8, out, sizeof(out)), 4);
    assert_memory_equal(out, "foob", 4);
}

static void test_no_space(void **state)
{
    (void)state;
    char text[8];
    uint8_t out[8];

    /* "foobar" is 8 characters and a NUL. */
    memset(text, '*', sizeof(text));
    assert_int_equal(base64url_encode((const uint8_t *)"foobar", 6, text, 8), -ENOSPC);
    for (size_t i = 0; i < sizeof(text); i++)
        assert_int_equal(text[i], '*');
    assert_int_equal(base64url_encode((const uint8_t *)"foobar", 6, text, 0), -ENOSPC);
    /* Even the empty string needs its NUL. */
    assert_int_equal(base64url_encode((const uint8_t *)"", 0, text, 0), -ENOSPC);
    assert_int_equal(base64url_encode((const uint8_t *)"", 0, text, 1), 0);
    assert_string_equal(text, "");

    memset(out, 0xa5, sizeof(out));
    assert_int_equal(base64url_decode("Zm9vYmFy", 8, out, 5), -ENOSPC);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xa5);
    assert_int_equal(base64url_decode("Zm9vYg==", 8, out, 3), -ENOSPC);
    assert_int_equal(base64url_decode("", 0, out, 0), 0);
    assert_int_equal(base64url_decode("Zm9vYmFy", 8, out, 6), 6);
}

/* RFC 8484 §4.1.1: the query for www.example.com A, ID 0, RD, as the dns= parameter of a
 * GET request, is these 33 bytes. */
static void test_rfc8484_query(void **state)
{
    (void)state;
    static const char param[] = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
    static const uint8_t msg[33] = {
        0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70,
        0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    };
    uint8_t out[64];
    char text[64];

    assert_int_equal(base64url_decode(param, strlen(param), out, sizeof(out)), 33);
    assert_memory_equal(out, msg, sizeof(msg));
    assert_int_equal(base64url_decode(param, strlen(param), out, 33), 33);
    assert_int_equal(base64url_decode(param, strlen(param), out, 32), -ENOSPC);
    assert_int_equal(base64url_encode(msg, sizeof(msg), text, sizeof(text)), 44);
    assert_string_equal(text, param);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),    cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_round_trip_lengths), cmocka_unit_test(test_bad_characters),
        cmocka_unit_test(test_bad_length),         cmocka_unit_test(test_non_canonical),
        cmocka_unit_test(test_bad_padding),        cmocka_unit_test(test_no_space),
        cmocka_unit_test(test_rfc8484_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
