/* fuzz_http1: the HTTP/1.1 request parser, as a connection feeds it.
 *
 * The input is a byte stream from a client. It is fed three ways: whole, one byte at a
 * time, and in pieces whose size the first byte chooses, each time through the
 * http1_feed / http1_next loop a connection runs. What comes out (every request with its
 * fields, HTTP1_CONTINUE, the final status, and where in the stream each of them ended)
 * must be the same however the stream was cut: buffer boundaries are the one thing a
 * client does not control. Every request is also answered with http1_response into a
 * heap buffer of exactly the size needed, so that AddressSanitizer sees a write past it,
 * and once more with one byte less, which must be -ENOSPC. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/http1.h"

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { FZ_MAX_HEADER = 1024 };

/* What one way of feeding saw, folded into a digest (FNV-1a) and a count. */
struct fz_transcript {
    uint64_t digest;
    unsigned events;
    int last; /* the last result: HTTP1_MORE or a negative status */
};

static void fz_mix(struct fz_transcript *t, const void *data, size_t n)
{
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) {
        t->digest ^= b[i];
        t->digest *= 0x100000001b3ull;
    }
}

static void fz_mix_size(struct fz_transcript *t, size_t v)
{
    uint64_t x = v;
    fz_mix(t, &x, sizeof(x));
}

static void *fz_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    FZ_CHECK(p != NULL);
    return p;
}

/* Check a request's fields against the limits, and answer it. */
static void fz_request(struct fz_transcript *t, int rc, size_t at, const struct http1_request *r)
{
    FZ_CHECK(r->method != NULL && r->method_len > 0 && r->method_len < 32);
    FZ_CHECK(r->target != NULL && r->target_len <= FZ_MAX_HEADER);
    FZ_CHECK(r->content_type == NULL || r->content_type_len <= FZ_MAX_HEADER);
    FZ_CHECK(r->forwarded_for == NULL || r->forwarded_for_len <= FZ_MAX_HEADER);
    FZ_CHECK(r->body_len <= HTTP1_BODY_MAX);
    FZ_CHECK(r->body_len == 0 || r->body != NULL);
    if (rc == HTTP1_CONTINUE)
        FZ_CHECK(r->body_len == 0);
    /* Field values never hold CR, LF or NUL: they could not be written back. */
    if (r->content_type) {
        FZ_CHECK(memchr(r->content_type, '\r', r->content_type_len) == NULL);
        FZ_CHECK(memchr(r->content_type, '\n', r->content_type_len) == NULL);
        FZ_CHECK(memchr(r->content_type, '\0', r->content_type_len) == NULL);
    }
    if (r->forwarded_for) {
        FZ_CHECK(memchr(r->forwarded_for, '\r', r->forwarded_for_len) == NULL);
        FZ_CHECK(memchr(r->forwarded_for, '\n', r->forwarded_for_len) == NULL);
        FZ_CHECK(memchr(r->forwarded_for, '\0', r->forwarded_for_len) == NULL);
    }

    int ev = rc;
    fz_mix(t, &ev, sizeof(ev));
    fz_mix_size(t, at);
    fz_mix(t, r->method, r->method_len);
    fz_mix_size(t, r->target_len);
    fz_mix(t, r->target, r->target_len);
    fz_mix_size(t, r->content_type ? r->content_type_len + 1 : 0);
    if (r->content_type)
        fz_mix(t, r->content_type, r->content_type_len);
    fz_mix_size(t, r->forwarded_for ? r->forwarded_for_len + 1 : 0);
    if (r->forwarded_for)
        fz_mix(t, r->forwarded_for, r->forwarded_for_len);
    fz_mix_size(t, r->body_len);
    if (r->body_len)
        fz_mix(t, r->body, r->body_len);
    bool ka = r->keep_alive;
    fz_mix(t, &ka, sizeof(ka));
    t->events++;

    /* Answer it: the body echoed, the content type as a header when it is one. */
    char *ctype = NULL;
    if (r->content_type) {
        ctype = fz_alloc(r->content_type_len + 1);
        memcpy(ctype, r->content_type, r->content_type_len);
        ctype[r->content_type_len] = '\0';
    }
    int status = rc == HTTP1_CONTINUE ? 100 : 200 + (int)(r->body_len % 400);
    size_t need = 128 + (ctype ? strlen(ctype) : 0) + r->body_len + 32;
    uint8_t *big = fz_alloc(need);
    int n = http1_response(big, need, status, ctype, "x-test: 1\r\n", r->body, r->body_len,
                           r->keep_alive);
    FZ_CHECK(n > 0 && (size_t)n <= need);
    uint8_t *exact = fz_alloc((size_t)n);
    FZ_CHECK(http1_response(exact, (size_t)n, status, ctype, "x-test: 1\r\n", r->body, r->body_len,
                            r->keep_alive) == n);
    FZ_CHECK(memcmp(exact, big, (size_t)n) == 0);
    FZ_CHECK(memcmp(exact, "HTTP/1.1 ", 9) == 0);
    FZ_CHECK(http1_response(exact, (size_t)n - 1, status, ctype, "x-test: 1\r\n", r->body,
                            r->body_len, r->keep_alive) == -ENOSPC);
    free(exact);
    free(big);
    free(ctype);
}

/* Feed data to a fresh parser in pieces of step bytes (0: all at once). */
static void fz_feed(const uint8_t *data, size_t size, size_t step, struct fz_transcript *t)
{
    memset(t, 0, sizeof(*t));
    t->digest = 0xcbf29ce484222325ull;
    struct http1_parser *p = http1_parser_new(FZ_MAX_HEADER);
    FZ_CHECK(p != NULL);
    FZ_CHECK(!http1_in_request(p));

    size_t off = 0;
    size_t end = step == 0 || step > size ? size : step;
    int rc = HTTP1_MORE;
    /* Each turn takes a byte, returns a request or ends: a bound that cannot be hit. */
    for (size_t turns = 0; turns <= 3 * size + 3; turns++) {
        struct http1_request r;
        size_t used = (size_t)-1;
        rc = http1_feed(p, data + off, end - off, &used, &r);
        FZ_CHECK(used <= end - off);
        off += used;
        if (rc == HTTP1_REQUEST || rc == HTTP1_CONTINUE) {
            FZ_CHECK(used > 0);
            fz_request(t, rc, off, &r);
            if (rc == HTTP1_REQUEST) {
                FZ_CHECK(!http1_in_request(p));
                http1_next(p);
            } else {
                FZ_CHECK(http1_in_request(p));
            }
            continue;
        }
        if (rc < 0) {
            FZ_CHECK(rc == -400 || rc == -413 || rc == -431 || rc == -501 || rc == -505);
            /* Final: nothing more is taken. */
            struct http1_request r2;
            size_t used2 = (size_t)-1;
            FZ_CHECK(http1_feed(p, data, size, &used2, &r2) == rc && used2 == 0);
            break;
        }
        FZ_CHECK(rc == HTTP1_MORE);
        /* HTTP1_MORE takes everything it was given. */
        FZ_CHECK(off == end);
        if (end == size)
            break;
        end = end + step > size ? size : end + step;
    }
    FZ_CHECK(rc != HTTP1_REQUEST && rc != HTTP1_CONTINUE);
    /* Where a status is found is not compared: llhttp reports an error in a span
     * callback at the end of the span or of the buffer, whichever comes first. */
    t->last = rc;
    http1_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_transcript whole, bytes, pieces;
    fz_feed(data, size, 0, &whole);
    fz_feed(data, size, 1, &bytes);
    fz_feed(data, size, size > 0 ? 1 + data[0] % 97 : 0, &pieces);
    FZ_CHECK(whole.events == bytes.events && whole.events == pieces.events);
    FZ_CHECK(whole.last == bytes.last && whole.last == pieces.last);
    FZ_CHECK(whole.digest == bytes.digest && whole.digest == pieces.digest);
    return 0;
}
