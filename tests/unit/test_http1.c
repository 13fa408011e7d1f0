/* Unit tests for http1: requests whole, pipelined, byte by byte and split at every point;
 * the fields kept (Content-Type, X-Forwarded-For joined, Expect: 100-continue); every
 * limit at its edge; the statuses for malformed requests, versions, transfer codings and
 * the request smuggling cases of RFC 9112 §6.3 and §5; keep-alive for HTTP/1.0 and 1.1;
 * responses byte for byte.
 *
 * The parser allocates with malloc (llhttp's state is embedded in it), so leaks are
 * caught by the sanitizer build (DNSWARD_SANITIZE), where LeakSanitizer runs at exit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/http1.h"

#define MAXH 8192

/* A request copied out of the parser (its pointers die at the next feed). */
struct req {
    char method[16];
    char target[MAXH];
    char ctype[MAXH];
    bool has_ctype;
    char xff[MAXH];
    bool has_xff;
    uint8_t body[HTTP1_BODY_MAX];
    size_t body_len;
    bool keep_alive;
};

static void copy_str(char *dst, size_t cap, const char *s, size_t n)
{
    assert_true(n < cap);
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
    /* No NUL inside: every field is text. */
    assert_int_equal(strlen(dst), n);
}

static void copy_req(struct req *r, const struct http1_request *h)
{
    memset(r, 0, sizeof(*r));
    copy_str(r->method, sizeof(r->method), h->method, h->method_len);
    copy_str(r->target, sizeof(r->target), h->target, h->target_len);
    r->has_ctype = h->content_type != NULL;
    if (h->content_type)
        copy_str(r->ctype, sizeof(r->ctype), h->content_type, h->content_type_len);
    r->has_xff = h->forwarded_for != NULL;
    if (h->forwarded_for)
        copy_str(r->xff, sizeof(r->xff), h->forwarded_for, h->forwarded_for_len);
    assert_true(h->body_len <= HTTP1_BODY_MAX);
    if (h->body_len)
        memcpy(r->body, h->body, h->body_len);
    r->body_len = h->body_len;
    r->keep_alive = h->keep_alive;
}

static struct req *req_new(void)
{
    struct req *r = test_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    return r;
}

/* Feed all of s (len bytes) at once to a fresh parser; return the result and copy the
 * request out. */
static int feed_once(size_t maxh, const char *s, size_t len, size_t *used, struct req *out)
{
    struct http1_parser *p = http1_parser_new(maxh);
    assert_non_null(p);
    struct http1_request h;
    int rc = http1_feed(p, (const uint8_t *)s, len, used, &h);
    if ((rc == HTTP1_REQUEST || rc == HTTP1_CONTINUE) && out)
        copy_req(out, &h);
    http1_parser_free(p);
    return rc;
}

/* The status a whole request string gets when fed at once. */
static int status_of(const char *s)
{
    size_t used;
    return feed_once(MAXH, s, strlen(s), &used, NULL);
}

#define STR(s) (s), (sizeof(s) - 1)

static void test_get(void **state)
{
    (void)state;
    static const char s[] = "GET /dns-query?dns=AAAB HTTP/1.1\r\nHost: doh.example\r\n"
                            "Accept: application/dns-message\r\n\r\n";
    struct req *r = req_new();
    size_t used = 0;
    assert_int_equal(feed_once(MAXH, STR(s), &used, r), HTTP1_REQUEST);
    assert_int_equal(used, sizeof(s) - 1);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->target, "/dns-query?dns=AAAB");
    assert_false(r->has_ctype);
    assert_false(r->has_xff);
    assert_int_equal(r->body_len, 0);
    assert_true(r->keep_alive);
    test_free(r);
}

static void test_post_with_body(void **state)
{
    (void)state;
    static const char s[] = "POST /dns-query HTTP/1.1\r\nHost: doh.example\r\n"
                            "Content-Type: application/dns-message\r\nContent-Length: 5\r\n\r\n"
                            "ab\0de";
    struct req *r = req_new();
    size_t used = 0;
    assert_int_equal(feed_once(MAXH, STR(s), &used, r), HTTP1_REQUEST);
    assert_int_equal(used, sizeof(s) - 1);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->target, "/dns-query");
    assert_true(r->has_ctype);
    assert_string_equal(r->ctype, "application/dns-message");
    assert_int_equal(r->body_len, 5);
    assert_memory_equal(r->body, "ab\0de", 5);
    test_free(r);
}

static void test_chunked_post(void **state)
{
    (void)state;
    static const char s[] = "POST /dns-query HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                            "Content-Type: application/dns-message\r\n\r\n"
                            "3\r\nabc\r\n"
                            "A;name=value\r\n0123456789\r\n"
                            "1\r\nZ\r\n"
                            "0\r\nTrailer-Field: x\r\n\r\n";
    struct req *r = req_new();
    size_t used = 0;
    assert_int_equal(feed_once(MAXH, STR(s), &used, r), HTTP1_REQUEST);
    assert_int_equal(used, sizeof(s) - 1);
    assert_int_equal(r->body_len, 14);
    assert_memory_equal(r->body, "abc0123456789Z", 14);
    assert_true(r->keep_alive);
    test_free(r);
}

/* Requests pipelined in one buffer come one at a time, *used exactly at each end. */
static void check_pipelined(const char *const *parts, size_t nparts)
{
    char buf[4096];
    size_t len = 0;
    size_t ends[8];
    for (size_t i = 0; i < nparts; i++) {
        size_t n = strlen(parts[i]);
        memcpy(buf + len, parts[i], n);
        len += n;
        ends[i] = len;
    }
    struct http1_parser *p = http1_parser_new(MAXH);
    assert_non_null(p);
    struct req *r = req_new();
    size_t off = 0;
    for (size_t i = 0; i < nparts; i++) {
        struct http1_request h;
        size_t used = 0;
        assert_int_equal(http1_feed(p, (const uint8_t *)buf + off, len - off, &used, &h),
                         HTTP1_REQUEST);
        off += used;
        assert_int_equal(off, ends[i]);
        copy_req(r, &h);
        /* The target names the request's place in the pipeline. */
        char want[32];
        snprintf(want, sizeof(want), "/%zu", i + 1);
        assert_string_equal(r->target, want);
        assert_false(http1_in_request(p));
        http1_next(p);
    }
    struct http1_request h;
    size_t used = 99;
    assert_int_equal(http1_feed(p, (const uint8_t *)buf + off, 0, &used, &h), HTTP1_MORE);
    assert_int_equal(used, 0);
    test_free(r);
    http1_parser_free(p);
}

static void test_pipelined_two_and_three(void **state)
{
    (void)state;
    static const char *const two[] = {
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz",
    };
    check_pipelined(two, 2);
    static const char *const three[] = {
        "POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        "GET /2 HTTP/1.1\r\n\r\n",
        "POST /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nq",
    };
    check_pipelined(three, 3);
}

/* Feeding again before http1_next gives the same request and takes nothing. */
static void test_feed_again_before_next(void **state)
{
    (void)state;
    static const char s[] = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    struct http1_parser *p = http1_parser_new(MAXH);
    struct http1_request h;
    size_t used;
    assert_int_equal(http1_feed(p, (const uint8_t *)s, sizeof(s) - 1, &used, &h), HTTP1_REQUEST);
    assert_int_equal(used, 19);
    size_t used2 = 99;
    assert_int_equal(http1_feed(p, (const uint8_t *)s + used, sizeof(s) - 1 - used, &used2, &h),
                     HTTP1_REQUEST);
    assert_int_equal(used2, 0);
    assert_int_equal(h.target_len, 2);
    assert_memory_equal(h.target, "/1", 2);
    http1_next(p);
    assert_int_equal(http1_feed(p, (const uint8_t *)s + used, sizeof(s) - 1 - used, &used2, &h),
                     HTTP1_REQUEST);
    assert_int_equal(used2, 19);
    assert_memory_equal(h.target, "/2", 2);
    http1_parser_free(p);
}

/* Feed s in pieces: cut at each offset in cuts (ascending), then to the end. Every piece
 * but the last must be taken whole with HTTP1_MORE; the last gives the request. */
static void feed_pieces(const char *s, size_t len, const size_t *cuts, size_t ncuts,
                        struct req *out)
{
    struct http1_parser *p = http1_parser_new(MAXH);
    assert_non_null(p);
    size_t off = 0;
    struct http1_request h;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        size_t used = 99;
        int rc = http1_feed(p, (const uint8_t *)s + off, end - off, &used, &h);
        if (i < ncuts) {
            assert_int_equal(rc, HTTP1_MORE);
            assert_int_equal(used, end - off);
            /* Once a byte of the request line is in, a request has begun. */
            assert_int_equal(http1_in_request(p), end > 0);
        } else {
            assert_int_equal(rc, HTTP1_REQUEST);
            assert_int_equal(used, end - off);
            copy_req(out, &h);
        }
        off = end;
    }
    http1_parser_free(p);
}

static const char SPLIT_REQ[] = "POST /dns-query?x=1 HTTP/1.1\r\n"
                                "Host: doh.example\r\n"
                                "content-TYPE: application/dns-message; charset=x\r\n"
                                "X-Forwarded-For: 192.0.2.1, 198.51.100.7\r\n"
                                "User-Agent: test\r\n"
                                "x-forwarded-for:2001:db8::1   \r\n"
                                "Content-Length: 4\r\n"
                                "\r\n"
                                "\x01\x02\r\n";

static void check_split_req(const struct req *r)
{
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->target, "/dns-query?x=1");
    assert_true(r->has_ctype);
    assert_string_equal(r->ctype, "application/dns-message; charset=x");
    assert_true(r->has_xff);
    assert_string_equal(r->xff, "192.0.2.1, 198.51.100.7, 2001:db8::1");
    assert_int_equal(r->body_len, 4);
    assert_memory_equal(r->body, "\x01\x02\r\n", 4);
    assert_true(r->keep_alive);
}

static void test_one_byte_feeds(void **state)
{
    (void)state;
    size_t len = sizeof(SPLIT_REQ) - 1;
    size_t *cuts = test_malloc(len * sizeof(*cuts));
    for (size_t i = 0; i < len - 1; i++)
        cuts[i] = i + 1;
    struct req *r = req_new();
    feed_pieces(SPLIT_REQ, len, cuts, len - 1, r);
    check_split_req(r);
    test_free(r);
    test_free(cuts);
}

/* Every place a single cut can fall: inside names, values, the request line, the body. */
static void test_split_at_every_offset(void **state)
{
    (void)state;
    size_t len = sizeof(SPLIT_REQ) - 1;
    struct req *r = req_new();
    for (size_t cut = 1; cut < len; cut++) {
        feed_pieces(SPLIT_REQ, len, &cut, 1, r);
        check_split_req(r);
    }
    /* And two cuts, one in the head and one later. */
    for (size_t a = 1; a < len; a += 7) {
        for (size_t b = a + 1; b < len; b += 5) {
            size_t cuts[2] = {a, b};
            feed_pieces(SPLIT_REQ, len, cuts, 2, r);
            check_split_req(r);
        }
    }
    test_free(r);
}

static void test_fields_case_insensitive(void **state)
{
    (void)state;
    static const char s[] = "POST / HTTP/1.1\r\nCONTENT-TYPE:application/dns-message \t \r\n"
                            "x-FORWARDED-for: a\r\nX-Forwarded-For:\r\nX-FORWARDED-FOR: b\r\n"
                            "Content-Length: 0\r\n\r\n";
    struct req *r = req_new();
    size_t used;
    assert_int_equal(feed_once(MAXH, STR(s), &used, r), HTTP1_REQUEST);
    assert_string_equal(r->ctype, "application/dns-message");
    /* The empty field adds nothing, not even a separator. */
    assert_string_equal(r->xff, "a, b");
    /* Fields with similar names are not taken. */
    static const char s2[] = "GET / HTTP/1.1\r\nContent-Types: x\r\nX-Forwarded-Fo: y\r\n"
                             "X-Forwarded-For-Real: z\r\nContent-Type-X: q\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(s2), &used, r), HTTP1_REQUEST);
    assert_false(r->has_ctype);
    assert_false(r->has_xff);
    /* An empty Content-Type is present, and empty. */
    static const char s3[] = "GET / HTTP/1.1\r\nContent-Type:\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(s3), &used, r), HTTP1_REQUEST);
    assert_true(r->has_ctype);
    assert_string_equal(r->ctype, "");
    test_free(r);
}

/* Trailer fields are not the head's: a Content-Type there is not taken. */
static void test_trailers_not_taken(void **state)
{
    (void)state;
    static const char s[] =
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1\r\nx\r\n0\r\nContent-Type: text/plain\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
    struct req *r = req_new();
    size_t used;
    assert_int_equal(feed_once(MAXH, STR(s), &used, r), HTTP1_REQUEST);
    assert_int_equal(used, sizeof(s) - 1);
    assert_false(r->has_ctype);
    assert_false(r->has_xff);
    test_free(r);
}

static void test_expect_100_continue(void **state)
{
    (void)state;
    static const char head[] = "POST /dns-query HTTP/1.1\r\nExpect: 100-Continue\r\n"
                               "Content-Type: application/dns-message\r\nContent-Length: 3\r\n\r\n";
    struct http1_parser *p = http1_parser_new(MAXH);
    struct http1_request h;
    size_t used = 0;
    assert_int_equal(http1_feed(p, (const uint8_t *)head, sizeof(head) - 1, &used, &h),
                     HTTP1_CONTINUE);
    assert_int_equal(used, sizeof(head) - 1);
    assert_int_equal(h.method_len, 4);
    assert_int_equal(h.content_type_len, strlen("application/dns-message"));
    assert_int_equal(h.body_len, 0);
    assert_true(h.keep_alive);
    assert_true(http1_in_request(p));
    /* http1_next does nothing here: the body is still to come. */
    http1_next(p);
    assert_int_equal(http1_feed(p, (const uint8_t *)"ab", 2, &used, &h), HTTP1_MORE);
    assert_int_equal(used, 2);
    assert_int_equal(http1_feed(p, (const uint8_t *)"cGET", 4, &used, &h), HTTP1_REQUEST);
    assert_int_equal(used, 1);
    assert_int_equal(h.body_len, 3);
    assert_memory_equal(h.body, "abc", 3);
    http1_next(p);

    /* The second request with the expectation gets its own HTTP1_CONTINUE, and a body
     * sent without waiting is read after it. */
    static const char both[] =
        "POST / HTTP/1.1\r\nexpect:  100-continue \r\nContent-Length: 2\r\n\r\nhi";
    size_t hlen = sizeof(both) - 1 - 2;
    assert_int_equal(http1_feed(p, (const uint8_t *)both, sizeof(both) - 1, &used, &h),
                     HTTP1_CONTINUE);
    assert_int_equal(used, hlen);
    assert_int_equal(http1_feed(p, (const uint8_t *)both + hlen, 2, &used, &h), HTTP1_REQUEST);
    assert_int_equal(used, 2);
    assert_memory_equal(h.body, "hi", 2);
    http1_next(p);

    /* Chunked. */
    static const char ch[] =
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(http1_feed(p, (const uint8_t *)ch, sizeof(ch) - 1, &used, &h), HTTP1_CONTINUE);
    assert_int_equal(used, sizeof(ch) - 1);
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("1\r\nx\r\n0\r\n\r\n"), &used, &h),
                     HTTP1_REQUEST);
    assert_int_equal(h.body_len, 1);
    http1_parser_free(p);
}

static void test_expect_without_continue(void **state)
{
    (void)state;
    struct req *r = req_new();
    size_t used;
    /* No body announced: nothing to wait for. */
    static const char nobody[] = "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(nobody), &used, r), HTTP1_REQUEST);
    static const char zero[] =
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(zero), &used, r), HTTP1_REQUEST);
    /* RFC 9110 §10.1.1: ignored in HTTP/1.0. */
    static const char v10[] =
        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx";
    assert_int_equal(feed_once(MAXH, STR(v10), &used, r), HTTP1_REQUEST);
    /* Another expectation is ignored (no 417). */
    static const char other[] = "POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx";
    assert_int_equal(feed_once(MAXH, STR(other), &used, r), HTTP1_REQUEST);
    static const char longer[] =
        "POST / HTTP/1.1\r\nExpect: 100-continuex\r\nContent-Length: 1\r\n\r\nx";
    assert_int_equal(feed_once(MAXH, STR(longer), &used, r), HTTP1_REQUEST);
    /* A body too large gets 413 rather than 100. */
    static const char big[] =
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 65536\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(big), &used, r), -413);
    test_free(r);
}

/* A head of n fields "Xnnn: v". */
static size_t fields_req(char *buf, size_t cap, unsigned n)
{
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "X%u: v\r\n", i);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    assert_true(len < cap);
    return len;
}

static void test_limit_fields(void **state)
{
    (void)state;
    char *buf = test_malloc(16384);
    size_t used;
    size_t len = fields_req(buf, 16384, HTTP1_MAX_FIELDS);
    assert_int_equal(feed_once(16384, buf, len, &used, NULL), HTTP1_REQUEST);
    len = fields_req(buf, 16384, HTTP1_MAX_FIELDS + 1);
    assert_int_equal(feed_once(16384, buf, len, &used, NULL), -431);
    len = fields_req(buf, 16384, 257);
    assert_int_equal(feed_once(16384, buf, len, &used, NULL), -431);
    test_free(buf);
}

/* The head may be exactly max_header_bytes long, not one byte more; whitespace counts. */
static void test_limit_header_bytes(void **state)
{
    (void)state;
    static const char s[] = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    size_t len = sizeof(s) - 1;
    size_t used;
    assert_int_equal(feed_once(len, s, len, &used, NULL), HTTP1_REQUEST);
    assert_int_equal(used, len);
    assert_int_equal(feed_once(len - 1, s, len, &used, NULL), -431);

    /* The same byte by byte. */
    for (size_t maxh = len - 1; maxh <= len; maxh++) {
        struct http1_parser *p = http1_parser_new(maxh);
        struct http1_request h;
        int rc = HTTP1_MORE;
        for (size_t i = 0; i < len && rc == HTTP1_MORE; i++)
            rc = http1_feed(p, (const uint8_t *)s + i, 1, &used, &h);
        assert_int_equal(rc, maxh == len ? HTTP1_REQUEST : -431);
        http1_parser_free(p);
    }

    /* Whitespace llhttp skips without a callback counts all the same. */
    char *buf = test_malloc(MAXH + 64);
    size_t n = (size_t)snprintf(buf, 64, "GET / HTTP/1.1\r\nA:");
    memset(buf + n, ' ', MAXH);
    n += MAXH;
    memcpy(buf + n, "b\r\n\r\n", 5);
    n += 5;
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -431);
    /* A long target. */
    n = (size_t)snprintf(buf, 64, "GET /");
    memset(buf + n, 'a', MAXH);
    n += MAXH;
    memcpy(buf + n, " HTTP/1.1\r\n\r\n", 13);
    n += 13;
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -431);
    /* A long value. */
    n = (size_t)snprintf(buf, 64, "GET / HTTP/1.1\r\nX-Forwarded-For: ");
    memset(buf + n, '1', MAXH);
    n += MAXH;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -431);
    /* Empty lines before a request count too. */
    for (size_t i = 0; i < MAXH; i += 2)
        memcpy(buf + i, "\r\n", 2);
    memcpy(buf + MAXH, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(feed_once(MAXH, buf, MAXH + 18, &used, NULL), -431);
    test_free(buf);
}

/* Each request has its own allowance. */
static void test_limit_header_bytes_per_request(void **state)
{
    (void)state;
    static const char s[] = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    size_t len = sizeof(s) - 1;
    struct http1_parser *p = http1_parser_new(len);
    struct http1_request h;
    size_t used;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(http1_feed(p, (const uint8_t *)s, len, &used, &h), HTTP1_REQUEST);
        assert_int_equal(used, len);
        http1_next(p);
    }
    http1_parser_free(p);
}

/* A chunked request whose trailer section ("T: xxx\r\n\r\n") is tlen bytes long. */
static size_t trailer_req(char *buf, size_t tlen)
{
    size_t n =
        (size_t)snprintf(buf, 128, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ");
    size_t xs = tlen - strlen("T: \r\n\r\n");
    memset(buf + n, 'x', xs);
    n += xs;
    memcpy(buf + n, "\r\n\r\n", 4);
    return n + 4;
}

/* The trailer section has an allowance of its own, as large as the head's. */
static void test_limit_trailers(void **state)
{
    (void)state;
    char *buf = test_malloc(MAXH * 2);
    size_t used;
    size_t n = trailer_req(buf, MAXH);
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), HTTP1_REQUEST);
    assert_int_equal(used, n);
    n = trailer_req(buf, MAXH + 1);
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -431);
    /* Byte by byte, the same. */
    for (size_t tlen = MAXH; tlen <= MAXH + 1; tlen++) {
        n = trailer_req(buf, tlen);
        struct http1_parser *p = http1_parser_new(MAXH);
        struct http1_request h;
        int rc = HTTP1_MORE;
        for (size_t i = 0; i < n && rc == HTTP1_MORE; i++)
            rc = http1_feed(p, (const uint8_t *)buf + i, 1, &used, &h);
        assert_int_equal(rc, tlen == MAXH ? HTTP1_REQUEST : -431);
        http1_parser_free(p);
    }
    test_free(buf);
}

/* Trailer fields count against the field limit too, and a long one against the allowance. */
static void test_limit_trailer_fields(void **state)
{
    (void)state;
    char *buf = test_malloc(MAXH * 2);
    size_t n =
        (size_t)snprintf(buf, 128, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ");
    memset(buf + n, 'x', MAXH);
    n += MAXH;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    size_t used;
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -431);
    n = (size_t)snprintf(buf, MAXH * 2,
                         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    for (unsigned i = 0; i < HTTP1_MAX_FIELDS; i++)
        n += (size_t)snprintf(buf + n, MAXH * 2 - n, "T%u: v\r\n", i);
    n += (size_t)snprintf(buf + n, MAXH * 2 - n, "\r\n");
    /* One field in the head: 101 in all. */
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -431);
    test_free(buf);
}

static void test_limit_content_length(void **state)
{
    (void)state;
    size_t used;
    /* Refused from the head alone: no body byte is needed to decide. */
    static const char over[] = "POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(over), &used, NULL), -413);
    static const char huge[] = "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(huge), &used, NULL), -413);

    /* Exactly HTTP1_BODY_MAX is taken. */
    char *buf = test_malloc(HTTP1_BODY_MAX + 128);
    size_t n =
        (size_t)snprintf(buf, 128, "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n", HTTP1_BODY_MAX);
    for (size_t i = 0; i < HTTP1_BODY_MAX; i++)
        buf[n + i] = (char)(i * 7);
    n += HTTP1_BODY_MAX;
    struct req *r = req_new();
    assert_int_equal(feed_once(MAXH, buf, n, &used, r), HTTP1_REQUEST);
    assert_int_equal(used, n);
    assert_int_equal(r->body_len, HTTP1_BODY_MAX);
    assert_int_equal((uint8_t)r->body[HTTP1_BODY_MAX - 1], (uint8_t)((HTTP1_BODY_MAX - 1) * 7));
    test_free(r);
    test_free(buf);
}

/* A chunked body of total bytes in chunks of at most chunk bytes. */
static size_t chunked_req(char *buf, size_t cap, size_t total, size_t chunk)
{
    size_t n = (size_t)snprintf(buf, cap, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    while (total > 0) {
        size_t c = total < chunk ? total : chunk;
        n += (size_t)snprintf(buf + n, cap - n, "%zx\r\n", c);
        memset(buf + n, 'd', c);
        n += c;
        memcpy(buf + n, "\r\n", 2);
        n += 2;
        total -= c;
    }
    n += (size_t)snprintf(buf + n, cap - n, "0\r\n\r\n");
    assert_true(n < cap);
    return n;
}

static void test_limit_chunked(void **state)
{
    (void)state;
    size_t cap = 2 * HTTP1_BODY_MAX + 4096;
    char *buf = test_malloc(cap);
    size_t used;
    struct req *r = req_new();
    size_t n = chunked_req(buf, cap, HTTP1_BODY_MAX, 1000);
    assert_int_equal(feed_once(MAXH, buf, n, &used, r), HTTP1_REQUEST);
    assert_int_equal(r->body_len, HTTP1_BODY_MAX);
    n = chunked_req(buf, cap, HTTP1_BODY_MAX + 1, 1000);
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -413);
    /* One chunk over the limit, refused before it is all read. */
    n = (size_t)snprintf(buf, cap,
                         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n");
    memset(buf + n, 'd', HTTP1_BODY_MAX + 1);
    n += HTTP1_BODY_MAX + 1;
    assert_int_equal(feed_once(MAXH, buf, n, &used, NULL), -413);
    test_free(r);
    test_free(buf);
}

static void test_malformed_400(void **state)
{
    (void)state;
    assert_int_equal(status_of("GARBAGE\r\n\r\n"), -400);
    assert_int_equal(status_of("get / HTTP/1.1\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1 extra\r\n\r\n"), -400);
    assert_int_equal(status_of("GET /a b HTTP/1.1\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / FTP/1.1\r\n\r\n"), -400);
    assert_int_equal(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\nHost: a\n\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nNo colon\r\n\r\n"), -400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), -400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), -400);
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), -400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
                     -400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"),
                     -400);
}

/* NUL, CR and LF inside a field value; other field syntax RFC 9112 §5 refuses. */
static void test_bad_fields_400(void **state)
{
    (void)state;
    size_t used;
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(nul), &used, NULL), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\nb: c\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n"), -400);
    /* Whitespace between the name and the colon (RFC 9112 §5.1). */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), -400);
    /* A folded value (obs-fold, RFC 9112 §5.2), also when the fold is the start of a feed. */
    static const char fold[] = "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n";
    assert_int_equal(status_of(fold), -400);
    for (size_t cut = 1; cut < sizeof(fold) - 1; cut++) {
        struct http1_parser *p = http1_parser_new(MAXH);
        struct http1_request h;
        int rc = http1_feed(p, (const uint8_t *)fold, cut, &used, &h);
        if (rc == HTTP1_MORE)
            rc = http1_feed(p, (const uint8_t *)fold + cut, sizeof(fold) - 1 - cut, &used, &h);
        assert_int_equal(rc, -400);
        http1_parser_free(p);
    }
    assert_int_equal(status_of("GET / HTTP/1.1\r\nX:\r\n\tb\r\n\r\n"), -400);
    /* An empty name. */
    assert_int_equal(status_of("GET / HTTP/1.1\r\n: a\r\n\r\n"), -400);
    /* Two Content-Type fields. */
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Type: a/b\r\ncontent-type: a/b\r\n"
                               "Content-Length: 0\r\n\r\n"),
                     -400);
}

/* RFC 9112 §6.3: the framing must be unambiguous. */
static void test_smuggling_400(void **state)
{
    (void)state;
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
                  "\r\n0\r\n\r\n"),
        -400);
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
                  "\r\n0\r\n\r\n"),
        -400);
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"), -400);
    /* llhttp refuses a repeated Content-Length even when equal (RFC 9112 §6.3 allows either). */
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), -400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc"), -400);
    /* chunked applied twice, or not last. */
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), -400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                     -400);
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"), -400);
    /* Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1). */
    assert_int_equal(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                     -400);
}

static void test_transfer_coding_501(void **state)
{
    (void)state;
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), -501);
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), -501);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"), -501);
    /* The coding name is case-insensitive (RFC 9112 §7). */
    struct req *r = req_new();
    size_t used;
    static const char up[] =
        "POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\nq\r\n0\r\n\r\n";
    assert_int_equal(feed_once(MAXH, STR(up), &used, r), HTTP1_REQUEST);
    assert_int_equal(r->body_len, 1);
    test_free(r);
}

static void test_versions_505(void **state)
{
    (void)state;
    assert_int_equal(status_of("GET / HTTP/2.0\r\n\r\n"), -505);
    assert_int_equal(status_of("GET / HTTP/3.0\r\n\r\n"), -505);
    assert_int_equal(status_of("GET / HTTP/4.0\r\n\r\n"), -505);
    assert_int_equal(status_of("GET / HTTP/9.9\r\n\r\n"), -505);
    assert_int_equal(status_of("GET / HTTP/0.9\r\n\r\n"), -505);
    /* A version llhttp does not know within major version 1, or no version at all, is
     * malformed rather than unsupported. */
    assert_int_equal(status_of("GET / HTTP/1.2\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/1.x\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/x\r\n\r\n"), -400);
    assert_int_equal(status_of("GET / HTTP/11.1\r\n\r\n"), -400);
    /* The HTTP/2 connection preface sent to an HTTP/1.1 server. */
    assert_int_equal(status_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), -505);
    /* No version at all (an HTTP/0.9 request line), which llhttp lets through. */
    assert_int_equal(status_of("GET /\r\n\r\n"), -505);
    assert_int_equal(status_of("GET / HTTP/1.0\r\n\r\n"), HTTP1_REQUEST);
    assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), HTTP1_REQUEST);
}

/* After an error the parser takes nothing more and says the same. */
static void test_error_is_final(void **state)
{
    (void)state;
    struct http1_parser *p = http1_parser_new(MAXH);
    struct http1_request h;
    size_t used = 99;
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("GET / HTTP/2.0\r\n"), &used, &h), -505);
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("GET / HTTP/1.1\r\n\r\n"), &used, &h),
                     -505);
    assert_int_equal(used, 0);
    http1_next(p);
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("GET / HTTP/1.1\r\n\r\n"), &used, &h),
                     -505);
    http1_parser_free(p);
}

static bool keep_alive_of(const char *s)
{
    struct req *r = req_new();
    size_t used;
    assert_int_equal(feed_once(MAXH, s, strlen(s), &used, r), HTTP1_REQUEST);
    bool ka = r->keep_alive;
    test_free(r);
    return ka;
}

static void test_keep_alive(void **state)
{
    (void)state;
    assert_true(keep_alive_of("GET / HTTP/1.1\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"));
    assert_false(keep_alive_of("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert_false(keep_alive_of("GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n"));
    assert_false(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    /* A CONNECT makes a tunnel: never kept. */
    assert_false(keep_alive_of("CONNECT doh.example:443 HTTP/1.1\r\nHost: doh.example\r\n\r\n"));
}

/* RFC 9112 §9.6: nothing after a request that closes the connection is processed. */
static void test_nothing_after_close(void **state)
{
    (void)state;
    static const char s[] = "GET /1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    size_t first = strlen("GET /1 HTTP/1.1\r\nConnection: close\r\n\r\n");
    struct http1_parser *p = http1_parser_new(MAXH);
    struct http1_request h;
    size_t used;
    assert_int_equal(http1_feed(p, (const uint8_t *)s, sizeof(s) - 1, &used, &h), HTTP1_REQUEST);
    assert_int_equal(used, first);
    assert_false(h.keep_alive);
    http1_next(p);
    assert_int_equal(http1_feed(p, (const uint8_t *)s + first, sizeof(s) - 1 - first, &used, &h),
                     HTTP1_MORE);
    assert_int_equal(used, sizeof(s) - 1 - first);
    assert_false(http1_in_request(p));
    /* Not even bytes that could never be HTTP give an error. */
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("\x00\x01 HTTP/9\r\n"), &used, &h),
                     HTTP1_MORE);
    assert_int_equal(used, 11);
    assert_false(http1_in_request(p));
    http1_parser_free(p);
}

/* An Upgrade (h2c, as curl sends on plain http) is ignored: the next request is HTTP/1.1. */
static void test_upgrade_ignored(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "GET /1 HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        "GET /2 HTTP/1.1\r\n\r\n",
    };
    check_pipelined(reqs, 2);
}

static void test_in_request(void **state)
{
    (void)state;
    struct http1_parser *p = http1_parser_new(MAXH);
    struct http1_request h;
    size_t used;
    assert_false(http1_in_request(p));
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("\r\n"), &used, &h), HTTP1_MORE);
    assert_false(http1_in_request(p));
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("GE"), &used, &h), HTTP1_MORE);
    assert_true(http1_in_request(p));
    assert_int_equal(http1_feed(p, (const uint8_t *)STR("T / HTTP/1.1\r\n\r\n"), &used, &h),
                     HTTP1_REQUEST);
    assert_false(http1_in_request(p));
    http1_next(p);
    assert_false(http1_in_request(p));
    http1_parser_free(p);
    http1_parser_free(NULL);
}

/* ---- http1_response ---- */

static void check_response(int status, const char *ctype, const char *extra, const char *body,
                           bool keep_alive, const char *want)
{
    size_t blen = body ? strlen(body) : 0;
    size_t wlen = strlen(want);
    uint8_t *out = test_malloc(wlen + 1);
    memset(out, 0xa5, wlen + 1);
    assert_int_equal(http1_response(out, wlen + 1, status, ctype, extra, (const uint8_t *)body,
                                    blen, keep_alive),
                     (int)wlen);
    assert_memory_equal(out, want, wlen);
    assert_int_equal(out[wlen], 0xa5);
    /* Exactly enough room is enough, and any less is -ENOSPC. */
    assert_int_equal(
        http1_response(out, wlen, status, ctype, extra, (const uint8_t *)body, blen, keep_alive),
        (int)wlen);
    for (size_t cap = 0; cap < wlen; cap++) {
        memset(out, 0xa5, wlen + 1);
        assert_int_equal(
            http1_response(out, cap, status, ctype, extra, (const uint8_t *)body, blen, keep_alive),
            -ENOSPC);
        /* Nothing written past cap. */
        for (size_t i = cap; i <= wlen; i++)
            assert_int_equal(out[i], 0xa5);
    }
    test_free(out);
}

static void test_response_200_with_body(void **state)
{
    (void)state;
    check_response(200, "application/dns-message", "cache-control: max-age=300\r\n", "\x12\x34xyz",
                   true,
                   "HTTP/1.1 200 OK\r\n"
                   "content-length: 5\r\n"
                   "content-type: application/dns-message\r\n"
                   "cache-control: max-age=300\r\n"
                   "\r\n"
                   "\x12\x34xyz");
}

static void test_response_405_allow(void **state)
{
    (void)state;
    check_response(405, NULL, "allow: GET, POST\r\n", NULL, false,
                   "HTTP/1.1 405 Method Not Allowed\r\n"
                   "content-length: 0\r\n"
                   "allow: GET, POST\r\n"
                   "connection: close\r\n"
                   "\r\n");
}

static void test_response_statuses(void **state)
{
    (void)state;
    check_response(100, NULL, NULL, NULL, true, "HTTP/1.1 100 Continue\r\n\r\n");
    check_response(400, NULL, NULL, NULL, false,
                   "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    check_response(413, "text/plain", NULL, "big\n", true,
                   "HTTP/1.1 413 Content Too Large\r\ncontent-length: 4\r\n"
                   "content-type: text/plain\r\n\r\nbig\n");
    check_response(204, NULL, NULL, NULL, true, "HTTP/1.1 204 No Content\r\n\r\n");
    check_response(599, NULL, NULL, NULL, true, "HTTP/1.1 599 \r\ncontent-length: 0\r\n\r\n");
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {200, "OK"},
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "HTTP/1.1 %d %s\r\ncontent-length: 0\r\n\r\n",
                 reasons[i].status, reasons[i].reason);
        check_response(reasons[i].status, NULL, NULL, NULL, true, want);
    }
    uint8_t out[64];
    assert_int_equal(http1_response(out, sizeof(out), 99, NULL, NULL, NULL, 0, true), -EINVAL);
    assert_int_equal(http1_response(out, sizeof(out), 600, NULL, NULL, NULL, 0, true), -EINVAL);
    assert_int_equal(http1_response(out, sizeof(out), -400, NULL, NULL, NULL, 0, true), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_post_with_body),
        cmocka_unit_test(test_chunked_post),
        cmocka_unit_test(test_pipelined_two_and_three),
        cmocka_unit_test(test_feed_again_before_next),
        cmocka_unit_test(test_one_byte_feeds),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_fields_case_insensitive),
        cmocka_unit_test(test_trailers_not_taken),
        cmocka_unit_test(test_expect_100_continue),
        cmocka_unit_test(test_expect_without_continue),
        cmocka_unit_test(test_limit_fields),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_limit_header_bytes_per_request),
        cmocka_unit_test(test_limit_trailers),
        cmocka_unit_test(test_limit_trailer_fields),
        cmocka_unit_test(test_limit_content_length),
        cmocka_unit_test(test_limit_chunked),
        cmocka_unit_test(test_malformed_400),
        cmocka_unit_test(test_bad_fields_400),
        cmocka_unit_test(test_smuggling_400),
        cmocka_unit_test(test_transfer_coding_501),
        cmocka_unit_test(test_versions_505),
        cmocka_unit_test(test_error_is_final),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_nothing_after_close),
        cmocka_unit_test(test_upgrade_ignored),
        cmocka_unit_test(test_in_request),
        cmocka_unit_test(test_response_200_with_body),
        cmocka_unit_test(test_response_405_allow),
        cmocka_unit_test(test_response_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
