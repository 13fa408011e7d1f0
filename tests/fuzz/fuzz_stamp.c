/* fuzz_stamp: DNS stamps and the base64url under them.
 *
 * The input is used three ways: as stamp text (what follows "sdns://"), so that the
 * base64url decoder sees anything; as the bytes of a stamp, encoded first, so that the
 * stamp parser sees anything past a valid encoding; and as bytes and text for base64url
 * alone, which must round-trip and be canonical. The seed corpus holds stamp texts, and
 * some raw stamps, so both layers start from real stamps.
 *
 * Outputs go into heap buffers of exactly the capacity passed, so that AddressSanitizer
 * sees any write past cap. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/base64.h"
#include "dnsward/upstream.h"

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FZ_URL_MARK "sdns://fuzz"

static void *fz_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    FZ_CHECK(p != NULL);
    return p;
}

/* A terminated string within cap. */
static bool fz_terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* Parse text as a stamp and check what came out, or that nothing did. */
static void fz_stamp(const char *text)
{
    static const size_t errcaps[] = {0, 1, 16, 512};
    struct upstream_spec *s = fz_alloc(sizeof(*s));
    struct upstream_spec *before = fz_alloc(sizeof(*s));
    int first = 1;

    for (size_t k = 0; k < sizeof(errcaps) / sizeof(errcaps[0]); k++) {
        char *err = errcaps[k] ? fz_alloc(errcaps[k]) : NULL;
        if (err != NULL)
            memset(err, 'x', errcaps[k]);
        memset(s, 0x5a, sizeof(*s));
        memcpy(s->url, FZ_URL_MARK, sizeof(FZ_URL_MARK));
        memcpy(before, s, sizeof(*s));

        int rc = upstream_parse_stamp(text, s, err, errcaps[k]);
        FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOTSUP);
        /* The same answer whatever the error buffer. */
        if (first != 1)
            FZ_CHECK(rc == first);
        first = rc;

        if (rc != 0) {
            /* A refused stamp leaves the spec alone, and says why in one line. */
            FZ_CHECK(memcmp(s, before, sizeof(*s)) == 0);
            if (err != NULL) {
                FZ_CHECK(fz_terminated(err, errcaps[k]));
                FZ_CHECK(strchr(err, '\n') == NULL);
                FZ_CHECK(errcaps[k] == 1 || err[0] != '\0');
            }
        } else {
            FZ_CHECK(s->proto == UPSTREAM_DOH || s->proto == UPSTREAM_DOT);
            FZ_CHECK(strcmp(s->url, FZ_URL_MARK) == 0);
            FZ_CHECK(fz_terminated(s->host, sizeof(s->host)) && s->host[0] != '\0');
            FZ_CHECK(fz_terminated(s->tls_name, sizeof(s->tls_name)));
            FZ_CHECK(strcmp(s->host, s->tls_name) == 0);
            FZ_CHECK(s->npins <= UPSTREAM_MAX_PINS);
            FZ_CHECK(s->pins_tbs == (UINT32_C(1) << s->npins) - 1);
            FZ_CHECK(s->port != 0);
            if (s->addrlen != 0) {
                if (s->addr.ss_family == AF_INET) {
                    FZ_CHECK(s->addrlen == sizeof(struct sockaddr_in));
                    FZ_CHECK(ntohs(((struct sockaddr_in *)&s->addr)->sin_port) == s->port);
                } else {
                    FZ_CHECK(s->addr.ss_family == AF_INET6);
                    FZ_CHECK(s->addrlen == sizeof(struct sockaddr_in6));
                    FZ_CHECK(ntohs(((struct sockaddr_in6 *)&s->addr)->sin6_port) == s->port);
                }
            } else {
                /* Only a host name left to resolve. */
                FZ_CHECK(!s->name_is_ip);
            }
            FZ_CHECK(fz_terminated(s->authority, sizeof(s->authority)));
            FZ_CHECK(fz_terminated(s->path, sizeof(s->path)));
            if (s->proto == UPSTREAM_DOH) {
                FZ_CHECK(s->path[0] == '/');
                FZ_CHECK(strncmp(s->authority, s->host, strlen(s->host)) == 0 ||
                         (s->authority[0] == '[' &&
                          strncmp(s->authority + 1, s->host, strlen(s->host)) == 0));
            } else {
                FZ_CHECK(s->path[0] == '\0' && s->authority[0] == '\0');
            }
        }
        free(err);
    }
    free(before);
    free(s);
}

/* Bytes to text and back. */
static void fz_encode_round_trip(const uint8_t *data, size_t size)
{
    size_t tlen = base64url_encoded_len(size);
    char *text = fz_alloc(tlen + 1);
    FZ_CHECK(base64url_encode(data, size, text, tlen + 1) == (int)tlen);
    FZ_CHECK(strlen(text) == tlen);
    FZ_CHECK(base64url_encode(data, size, text, tlen) == -ENOSPC);

    uint8_t *back = fz_alloc(size);
    FZ_CHECK(base64url_decode(text, tlen, back, size) == (int)size);
    FZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
    if (size > 0)
        FZ_CHECK(base64url_decode(text, tlen, back, size - 1) == -ENOSPC);
    free(back);

    /* The encoded bytes as a stamp. */
    fz_stamp(text);
    free(text);
}

/* Text to bytes and back: whatever decodes is the one canonical encoding of its bytes,
 * perhaps with the padding that completes its last group. */
static void fz_decode_canonical(const char *text, size_t len)
{
    size_t cap = len / 4 * 3 + 3;
    uint8_t *out = fz_alloc(cap);
    int n = base64url_decode(text, len, out, cap);
    FZ_CHECK(n == -EINVAL || (n >= 0 && (size_t)n <= cap));
    if (n >= 0) {
        size_t tlen = base64url_encoded_len((size_t)n);
        char *again = fz_alloc(tlen + 1);
        FZ_CHECK(base64url_encode(out, (size_t)n, again, tlen + 1) == (int)tlen);
        FZ_CHECK(tlen <= len && memcmp(again, text, tlen) == 0);
        if (len > tlen)
            FZ_CHECK(len % 4 == 0 && tlen % 4 != 0 && len - tlen <= 2);
        for (size_t i = tlen; i < len; i++)
            FZ_CHECK(text[i] == '=');
        free(again);

        /* Exactly n bytes fit, one less does not. */
        uint8_t *exact = fz_alloc((size_t)n);
        FZ_CHECK(base64url_decode(text, len, exact, (size_t)n) == n);
        if (n > 0)
            FZ_CHECK(base64url_decode(text, len, exact, (size_t)n - 1) == -ENOSPC);
        free(exact);
    } else {
        /* Malformed whatever the capacity. */
        FZ_CHECK(base64url_decode(text, len, out, 0) == -EINVAL);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As text: a heap copy with its NUL (a NUL inside ends the stamp text early). */
    char *text = fz_alloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    fz_stamp(text);
    fz_decode_canonical(text, size);
    free(text);

    /* As the bytes of a stamp. */
    fz_encode_round_trip(data, size);
    return 0;
}
