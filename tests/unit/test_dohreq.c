/* Unit tests for dohreq: every status dohreq_head can give and the case that gives it
 * (path exact and case-sensitive, the dns parameter wherever it is, base64url strict but
 * padding tolerated, the POST content type in its spellings, the methods that are not GET
 * or POST, the order when several things are wrong); dohreq_check_query on what is and
 * is not a query; dohreq_max_age on positive, negative and unparsable answers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/base64.h"
#include "dnsward/dns.h"
#include "dnsward/dohreq.h"

#define PATH "/dns-query"

/* The query of RFC 8484 §4.1.1 (www.example.com A, ID 0, RD), which is
 * "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB" in base64url. */
static const uint8_t RFC_QUERY[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x03, 'w',  'w',  'w',  0x07, 'e',
                                    'x',  'a',  'm',  'p',  'l',  'e',  0x03, 'c',  'o',
                                    'm',  0x00, 0x00, 0x01, 0x00, 0x01};

/* dohreq_head on a NUL-terminated target and content type (NULL: none). */
static int head(enum dohreq_method m, const char *target, const char *ctype, uint8_t *out,
                size_t cap, size_t *outlen)
{
    return dohreq_head(PATH, m, target, strlen(target), ctype, ctype ? strlen(ctype) : 0, out, cap,
                       outlen);
}

static int get(const char *target, uint8_t *out, size_t cap, size_t *outlen)
{
    return head(DOHREQ_GET, target, NULL, out, cap, outlen);
}

static int post(const char *target, const char *ctype)
{
    uint8_t out[16];
    size_t outlen = 99;
    int rc = head(DOHREQ_POST, target, ctype, out, sizeof(out), &outlen);
    assert_int_equal(outlen, 0);
    return rc;
}

/* A GET of target that must give the RFC 8484 query. */
static void check_get_ok(const char *target)
{
    uint8_t out[512];
    size_t outlen = 0;
    assert_int_equal(get(target, out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, sizeof(RFC_QUERY));
    assert_memory_equal(out, RFC_QUERY, sizeof(RFC_QUERY));
}

static int get_status(const char *target)
{
    uint8_t out[512];
    size_t outlen = 99;
    int rc = get(target, out, sizeof(out), &outlen);
    if (rc != 0)
        assert_int_equal(outlen, 0);
    return rc;
}

static void test_method_names(void **state)
{
    (void)state;
    assert_int_equal(dohreq_method("GET", 3), DOHREQ_GET);
    assert_int_equal(dohreq_method("POST", 4), DOHREQ_POST);
    /* RFC 9110 §9.1: method names are case-sensitive. */
    assert_int_equal(dohreq_method("get", 3), DOHREQ_OTHER);
    assert_int_equal(dohreq_method("Post", 4), DOHREQ_OTHER);
    assert_int_equal(dohreq_method("GETS", 4), DOHREQ_OTHER);
    assert_int_equal(dohreq_method("GE", 2), DOHREQ_OTHER);
    assert_int_equal(dohreq_method("HEAD", 4), DOHREQ_OTHER);
    assert_int_equal(dohreq_method("PUT", 3), DOHREQ_OTHER);
    assert_int_equal(dohreq_method("", 0), DOHREQ_OTHER);
    /* Only len bytes count: "GETX" cut to 3 is GET. */
    assert_int_equal(dohreq_method("GETX", 3), DOHREQ_GET);
}

static void test_get_ok_dns_first_middle_last(void **state)
{
    (void)state;
    check_get_ok(PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
    check_get_ok(PATH
                 "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB&ct=application/dns-message");
    check_get_ok(PATH "?ct=x&dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB&z=1");
    check_get_ok(PATH "?a=1&b=2&dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
    /* Empty pairs and parameters whose name only begins with "dns" are skipped. */
    check_get_ok(PATH "?&&dnsx=1&xdns=2&dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB&");
    /* The first dns parameter counts. */
    check_get_ok(PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB&dns=@@@");
}

/* An absolute-form target (RFC 9112 §3.2.2) is judged by its path. */
static void test_get_absolute_form(void **state)
{
    (void)state;
    check_get_ok("https://doh.example" PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
    check_get_ok("HTTP://doh.example:8080" PATH
                 "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
    assert_int_equal(get_status("https://doh.example/other?dns=AA"), 404);
    assert_int_equal(get_status("https://doh.example"), 404);
    assert_int_equal(get_status("https://doh.example?dns=AA"), 404);
    /* Not a scheme we know: the whole target is the path. */
    assert_int_equal(get_status("ftp://doh.example" PATH "?dns=AA"), 404);
}

static void test_wrong_path_404(void **state)
{
    (void)state;
    assert_int_equal(get_status("/"), 404);
    assert_int_equal(get_status("/other?dns=AAAA"), 404);
    /* Case-sensitive (RFC 3986 §6.2.2.1: the path is). */
    assert_int_equal(get_status("/DNS-QUERY?dns=AAAA"), 404);
    assert_int_equal(get_status("/Dns-query"), 404);
    /* Neither a prefix nor a longer path matches. */
    assert_int_equal(get_status("/dns-query2?dns=AAAA"), 404);
    assert_int_equal(get_status("/dns?dns=AAAA"), 404);
    assert_int_equal(get_status("/dns-query/?dns=AAAA"), 404);
    assert_int_equal(get_status("/dns-query/x"), 404);
    assert_int_equal(get_status("/dns-query#x?dns=AAAA"), 404);
    assert_int_equal(get_status("*"), 404);
    /* Percent-encoding is not decoded: a different spelling is a different path. */
    assert_int_equal(get_status("/dns%2Dquery?dns=AAAA"), 404);
    assert_int_equal(post("/dns-query2", "application/dns-message"), 404);
    uint8_t out[8];
    size_t outlen;
    assert_int_equal(dohreq_head(PATH, DOHREQ_GET, "", 0, NULL, 0, out, sizeof(out), &outlen), 404);
}

static void test_missing_or_empty_dns_400(void **state)
{
    (void)state;
    assert_int_equal(get_status(PATH), 400);
    assert_int_equal(get_status(PATH "?"), 400);
    assert_int_equal(get_status(PATH "?ct=application/dns-message"), 400);
    assert_int_equal(get_status(PATH "?dns="), 400);
    assert_int_equal(get_status(PATH "?dns"), 400);
    assert_int_equal(get_status(PATH "?dns&x=1"), 400);
    assert_int_equal(get_status(PATH "?dns=&dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"),
                     400);
    /* Names are case-sensitive. */
    assert_int_equal(get_status(PATH "?DNS=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"), 400);
}

static void test_bad_base64_400(void **state)
{
    (void)state;
    assert_int_equal(get_status(PATH "?dns=_-~~~"), 400);
    assert_int_equal(get_status(PATH "?dns=@#$%"), 400);
    /* base64, not base64url. */
    assert_int_equal(get_status(PATH "?dns=+/8="), 400);
    /* Percent-encoded characters are not base64url. */
    assert_int_equal(get_status(PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB%3D"), 400);
    assert_int_equal(get_status(PATH "?dns=%41%41"), 400);
    /* One character left over; non-zero unused bits (a non-canonical encoding). */
    assert_int_equal(get_status(PATH "?dns=AAAAA"), 400);
    assert_int_equal(get_status(PATH "?dns=AB"), 400);
    /* Padding in the middle, or too much of it. */
    assert_int_equal(get_status(PATH "?dns=AA==AAAA"), 400);
    assert_int_equal(get_status(PATH "?dns=A==="), 400);
    assert_int_equal(get_status(PATH "?dns=AAAA===="), 400);
}

/* RFC 8484 §6 says without padding; padding where it completes the last group is taken
 * all the same (the documented leniency). */
static void test_padded_base64_accepted(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t outlen = 0;
    assert_int_equal(get(PATH "?dns=AAE=", out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 2);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0x01);
    assert_int_equal(get(PATH "?dns=AA==", out, sizeof(out), &outlen), 0);
    assert_int_equal(outlen, 1);
    assert_int_equal(out[0], 0x00);
    /* The RFC query padded to a multiple of 4 (44 characters already are: unchanged). */
    check_get_ok(PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB&x=y");
}

static void test_decoded_longer_than_cap_400(void **state)
{
    (void)state;
    uint8_t out[sizeof(RFC_QUERY)];
    size_t outlen = 99;
    /* Exactly the size fits, one byte less does not. */
    assert_int_equal(dohreq_head(PATH, DOHREQ_GET,
                                 PATH "?dns="
                                      "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
                                 strlen(PATH "?dns="
                                             "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"),
                                 NULL, 0, out, sizeof(out), &outlen),
                     0);
    assert_int_equal(outlen, sizeof(RFC_QUERY));
    outlen = 99;
    assert_int_equal(dohreq_head(PATH, DOHREQ_GET,
                                 PATH "?dns="
                                      "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
                                 strlen(PATH "?dns="
                                             "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"),
                                 NULL, 0, out, sizeof(out) - 1, &outlen),
                     400);
    assert_int_equal(outlen, 0);
}

/* Only target_len bytes of the target are looked at. */
static void test_target_len_bounds_the_target(void **state)
{
    (void)state;
    static const char t[] = PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
    uint8_t out[64];
    size_t outlen;
    /* Cut inside the path: another path. */
    assert_int_equal(dohreq_head(PATH, DOHREQ_GET, t, 5, NULL, 0, out, sizeof(out), &outlen), 404);
    /* Cut after the path: no query. */
    assert_int_equal(
        dohreq_head(PATH, DOHREQ_GET, t, strlen(PATH), NULL, 0, out, sizeof(out), &outlen), 400);
    /* Cut one character into the base64: one character left over is malformed. */
    assert_int_equal(
        dohreq_head(PATH, DOHREQ_GET, t, strlen(PATH "?dns=A"), NULL, 0, out, sizeof(out), &outlen),
        400);
    /* Cut after four characters: three bytes. */
    assert_int_equal(dohreq_head(PATH, DOHREQ_GET, t, strlen(PATH "?dns=AAAB"), NULL, 0, out,
                                 sizeof(out), &outlen),
                     0);
    assert_int_equal(outlen, 3);
}

static void test_post_content_types(void **state)
{
    (void)state;
    assert_int_equal(post(PATH, "application/dns-message"), 0);
    assert_int_equal(post(PATH, "APPLICATION/DNS-MESSAGE"), 0);
    assert_int_equal(post(PATH, "Application/Dns-Message"), 0);
    assert_int_equal(post(PATH, "application/dns-message; charset=utf-8"), 0);
    assert_int_equal(post(PATH, "application/dns-message;charset=utf-8"), 0);
    assert_int_equal(post(PATH, "application/dns-message ;x=y"), 0);
    assert_int_equal(post(PATH, "  application/dns-message\t"), 0);
    assert_int_equal(post(PATH, "application/dns-message;"), 0);
    /* The query string does not matter to a POST. */
    assert_int_equal(post(PATH "?dns=@@@", "application/dns-message"), 0);

    assert_int_equal(post(PATH, NULL), 415);
    assert_int_equal(post(PATH, ""), 415);
    assert_int_equal(post(PATH, "text/plain"), 415);
    assert_int_equal(post(PATH, "application/dns-message2"), 415);
    assert_int_equal(post(PATH, "application/dns"), 415);
    assert_int_equal(post(PATH, "application/dns-messag"), 415);
    assert_int_equal(post(PATH, "application/dns-json"), 415);
    assert_int_equal(post(PATH, "application/dns-udpwireformat"), 415);
    assert_int_equal(post(PATH, "application / dns-message"), 415);
    assert_int_equal(post(PATH, "application/x-www-form-urlencoded"), 415);
    assert_int_equal(post(PATH, ";application/dns-message"), 415);
    /* Only ctype_len bytes count. */
    uint8_t out[4];
    size_t outlen;
    assert_int_equal(dohreq_head(PATH, DOHREQ_POST, PATH, strlen(PATH), "application/dns-message",
                                 11, out, sizeof(out), &outlen),
                     415);
}

static void test_other_methods_405(void **state)
{
    (void)state;
    static const char *const methods[] = {"PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        enum dohreq_method m = dohreq_method(methods[i], strlen(methods[i]));
        assert_int_equal(m, DOHREQ_OTHER);
        uint8_t out[64];
        size_t outlen = 99;
        assert_int_equal(head(m, PATH "?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB",
                              "application/dns-message", out, sizeof(out), &outlen),
                         405);
        assert_int_equal(outlen, 0);
    }
}

/* 404 before 405 before 415/400. */
static void test_order_of_checks(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t outlen;
    /* Wrong path and wrong method: 404. */
    assert_int_equal(head(DOHREQ_OTHER, "/x", NULL, out, sizeof(out), &outlen), 404);
    /* Wrong path, POST without content type: 404. */
    assert_int_equal(head(DOHREQ_POST, "/x", NULL, out, sizeof(out), &outlen), 404);
    /* Wrong path, GET without dns: 404. */
    assert_int_equal(head(DOHREQ_GET, "/x?y=1", NULL, out, sizeof(out), &outlen), 404);
    /* Right path, wrong method, no dns and no content type: 405. */
    assert_int_equal(head(DOHREQ_OTHER, PATH, NULL, out, sizeof(out), &outlen), 405);
    assert_int_equal(head(DOHREQ_OTHER, PATH "?dns=@", "text/plain", out, sizeof(out), &outlen),
                     405);
    /* GET ignores the content type; POST ignores the query. */
    assert_int_equal(
        head(DOHREQ_GET, PATH "?dns=@", "application/dns-message", out, sizeof(out), &outlen), 400);
    assert_int_equal(head(DOHREQ_POST, PATH "?dns=@", "text/plain", out, sizeof(out), &outlen),
                     415);
}

/* The configured path is what is compared: another one works the same. */
static void test_other_configured_path(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t outlen;
    static const char t[] = "/resolve?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
    assert_int_equal(
        dohreq_head("/resolve", DOHREQ_GET, t, strlen(t), NULL, 0, out, sizeof(out), &outlen), 0);
    assert_int_equal(
        dohreq_head("/dns-query", DOHREQ_GET, t, strlen(t), NULL, 0, out, sizeof(out), &outlen),
        404);
    assert_int_equal(dohreq_head("/", DOHREQ_GET, t, strlen(t), NULL, 0, out, sizeof(out), &outlen),
                     404);
}

/* ---- dohreq_check_query ---- */

static size_t build_query(uint8_t *buf, size_t cap)
{
    int n = dns_build_query("www.example.com", DNS_TYPE_A, 0, 1232, buf, cap);
    assert_true(n > 0);
    return (size_t)n;
}

static void test_check_query_empty_and_short(void **state)
{
    (void)state;
    uint8_t b[16] = {0};
    assert_int_equal(dohreq_check_query(b, 0), 400);
    assert_int_equal(dohreq_check_query(b, 1), 400);
    assert_int_equal(dohreq_check_query(b, 11), 400);
}

static void test_check_query_zeros_1k(void **state)
{
    (void)state;
    static uint8_t zeros[1024];
    /* QDCOUNT 0 and trailing bytes: FORMERR. */
    assert_int_equal(dohreq_check_query(zeros, sizeof(zeros)), 400);
    /* A bare header with QDCOUNT 0 is malformed as well. */
    assert_int_equal(dohreq_check_query(zeros, DNS_HEADER_LEN), 400);
}

static void test_check_query_valid_and_truncated(void **state)
{
    (void)state;
    uint8_t q[512];
    size_t n = build_query(q, sizeof(q));
    assert_int_equal(dohreq_check_query(q, n), 0);
    assert_int_equal(dohreq_check_query(RFC_QUERY, sizeof(RFC_QUERY)), 0);
    /* Cut anywhere past the header: malformed. */
    for (size_t len = DNS_HEADER_LEN; len < n; len++)
        assert_int_equal(dohreq_check_query(q, len), 400);
    for (size_t len = DNS_HEADER_LEN; len < sizeof(RFC_QUERY); len++)
        assert_int_equal(dohreq_check_query(RFC_QUERY, len), 400);
    /* A trailing byte too many. */
    q[n] = 0;
    assert_int_equal(dohreq_check_query(q, n + 1), 400);
}

static void test_check_query_response_400(void **state)
{
    (void)state;
    uint8_t q[512];
    size_t n = build_query(q, sizeof(q));
    dns_put16(q + 2, (uint16_t)(dns_get16(q + 2) | DNS_FLAG_QR));
    assert_int_equal(dohreq_check_query(q, n), 400);
}

/* NOTIMP (an opcode other than QUERY) and BADVERS (EDNS version 1) are queries; the DNS
 * answer says what is wrong with them. */
static void test_check_query_notimp_badvers_pass(void **state)
{
    (void)state;
    uint8_t q[512];
    size_t n = build_query(q, sizeof(q));
    uint16_t flags = dns_get16(q + 2);
    dns_put16(q + 2, (uint16_t)(flags | (2u << 11))); /* opcode STATUS */
    struct dns_query pq;
    assert_int_equal(dns_query_parse(q, n, &pq), DNS_RCODE_NOTIMP);
    assert_int_equal(dohreq_check_query(q, n), 0);
    dns_put16(q + 2, (uint16_t)(flags | (5u << 11))); /* opcode UPDATE */
    assert_int_equal(dohreq_check_query(q, n), 0);

    n = build_query(q, sizeof(q));
    /* The OPT record is last: its TTL field holds ext-rcode, version, flags. */
    q[n - 11 + 6] = 1; /* version 1 */
    assert_int_equal(dns_query_parse(q, n, &pq), DNS_RCODE_BADVERS);
    assert_int_equal(dohreq_check_query(q, n), 0);
}

/* ---- dohreq_max_age ---- */

struct msg {
    uint8_t b[1024];
    size_t n;
};

static void put8(struct msg *m, uint8_t v)
{
    m->b[m->n++] = v;
}

static void put16(struct msg *m, uint16_t v)
{
    dns_put16(m->b + m->n, v);
    m->n += 2;
}

static void put32(struct msg *m, uint32_t v)
{
    dns_put32(m->b + m->n, v);
    m->n += 4;
}

/* Header and the question www.example.com (at offset 12) of qtype. */
static void answer_start(struct msg *m, uint16_t qtype, int rcode, uint16_t an, uint16_t ns,
                         uint16_t ar)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, (uint16_t)(DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | rcode));
    put16(m, 1);
    put16(m, an);
    put16(m, ns);
    put16(m, ar);
    static const uint8_t qname[] = {3,   'w', 'w', 'w', 7,   'e', 'x', 'a', 'm',
                                    'p', 'l', 'e', 3,   'c', 'o', 'm', 0};
    memcpy(m->b + m->n, qname, sizeof(qname));
    m->n += sizeof(qname);
    put16(m, qtype);
    put16(m, 1);
}

/* An A record for the QNAME. */
static void rr_a(struct msg *m, uint32_t ttl)
{
    put16(m, 0xc000 | DNS_HEADER_LEN);
    put16(m, DNS_TYPE_A);
    put16(m, 1);
    put32(m, ttl);
    put16(m, 4);
    put32(m, 0xc0000201);
}

/* A CNAME for the QNAME to x.example.com. */
static void rr_cname(struct msg *m, uint32_t ttl)
{
    put16(m, 0xc000 | DNS_HEADER_LEN);
    put16(m, DNS_TYPE_CNAME);
    put16(m, 1);
    put32(m, ttl);
    put16(m, 4);
    put8(m, 1);
    put8(m, 'x');
    put16(m, 0xc000 | (DNS_HEADER_LEN + 4)); /* example.com */
}

/* The SOA of example.com with names compressed. */
static void rr_soa(struct msg *m, uint32_t ttl, uint32_t minimum)
{
    put16(m, 0xc000 | (DNS_HEADER_LEN + 4));
    put16(m, DNS_TYPE_SOA);
    put16(m, 1);
    put32(m, ttl);
    put16(m, 2 + 2 + 20);
    put16(m, 0xc000 | (DNS_HEADER_LEN + 4)); /* MNAME */
    put16(m, 0xc000 | (DNS_HEADER_LEN + 4)); /* RNAME */
    put32(m, 1);
    put32(m, 7200);
    put32(m, 3600);
    put32(m, 1209600);
    put32(m, minimum);
}

/* An OPT record whose TTL field (DO set) would be a huge TTL were it counted. */
static void rr_opt(struct msg *m)
{
    put8(m, 0);
    put16(m, DNS_TYPE_OPT);
    put16(m, 1232);
    put32(m, 0x00008000);
    put16(m, 0);
}

static void test_max_age_positive_min_of_ttls(void **state)
{
    (void)state;
    struct msg m;
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NOERROR, 3, 0, 1);
    rr_a(&m, 300);
    rr_a(&m, 120);
    rr_a(&m, 3600);
    rr_opt(&m);
    assert_int_equal(dohreq_max_age(m.b, m.n), 120);

    /* A CNAME chain to the answer: the CNAME's TTL counts too. */
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NOERROR, 2, 0, 0);
    rr_cname(&m, 30);
    rr_a(&m, 600);
    assert_int_equal(dohreq_max_age(m.b, m.n), 30);

    /* RFC 2181 §8: a TTL with the top bit set is 0. */
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NOERROR, 2, 0, 0);
    rr_a(&m, 0x80000000u);
    rr_a(&m, 600);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);

    /* A TTL of 0 gives 0. */
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NOERROR, 1, 0, 0);
    rr_a(&m, 0);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);
}

static void test_max_age_nxdomain_soa(void **state)
{
    (void)state;
    struct msg m;
    /* MINIMUM below the TTL. */
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 1, 0);
    rr_soa(&m, 900, 300);
    assert_int_equal(dohreq_max_age(m.b, m.n), 300);
    /* The TTL below MINIMUM. */
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 1, 1);
    rr_soa(&m, 60, 300);
    rr_opt(&m);
    assert_int_equal(dohreq_max_age(m.b, m.n), 60);
    /* A CNAME to a name that does not exist: no longer than the CNAME either. */
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 1, 1, 0);
    rr_cname(&m, 20);
    rr_soa(&m, 900, 300);
    assert_int_equal(dohreq_max_age(m.b, m.n), 20);
}

static void test_max_age_nodata(void **state)
{
    (void)state;
    struct msg m;
    answer_start(&m, DNS_TYPE_AAAA, DNS_RCODE_NOERROR, 0, 1, 0);
    rr_soa(&m, 3600, 1800);
    assert_int_equal(dohreq_max_age(m.b, m.n), 1800);
    /* An A record answering an AAAA question does not make it positive. */
    answer_start(&m, DNS_TYPE_AAAA, DNS_RCODE_NOERROR, 1, 1, 0);
    rr_a(&m, 5000);
    rr_soa(&m, 3600, 1800);
    assert_int_equal(dohreq_max_age(m.b, m.n), 1800);
    /* NODATA without an SOA: not to be cached. */
    answer_start(&m, DNS_TYPE_AAAA, DNS_RCODE_NOERROR, 1, 0, 0);
    rr_cname(&m, 300);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);
}

static void test_max_age_no_records(void **state)
{
    (void)state;
    struct msg m;
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NOERROR, 0, 0, 0);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NXDOMAIN, 0, 0, 1);
    rr_opt(&m);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_SERVFAIL, 0, 0, 0);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_REFUSED, 0, 0, 1);
    rr_opt(&m);
    assert_int_equal(dohreq_max_age(m.b, m.n), 0);
}

/* SERVFAIL or REFUSED with records: the smallest TTL. */
static void test_max_age_error_rcode_with_records(void **state)
{
    (void)state;
    struct msg m;
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_SERVFAIL, 0, 1, 0);
    rr_soa(&m, 90, 30000);
    assert_int_equal(dohreq_max_age(m.b, m.n), 90);
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_REFUSED, 2, 0, 0);
    rr_a(&m, 500);
    rr_a(&m, 400);
    assert_int_equal(dohreq_max_age(m.b, m.n), 400);
}

static void test_max_age_garbage(void **state)
{
    (void)state;
    static uint8_t zeros[64];
    assert_int_equal(dohreq_max_age(zeros, 0), 0);
    assert_int_equal(dohreq_max_age(zeros, 5), 0);
    assert_int_equal(dohreq_max_age(zeros, sizeof(zeros)), 0);
    /* A query is not an answer. */
    assert_int_equal(dohreq_max_age(RFC_QUERY, sizeof(RFC_QUERY)), 0);
    /* A good answer cut short, or with a byte too many. */
    struct msg m;
    answer_start(&m, DNS_TYPE_A, DNS_RCODE_NOERROR, 1, 0, 0);
    rr_a(&m, 300);
    assert_int_equal(dohreq_max_age(m.b, m.n), 300);
    for (size_t len = 0; len < m.n; len++)
        assert_int_equal(dohreq_max_age(m.b, len), 0);
    m.b[m.n] = 0;
    assert_int_equal(dohreq_max_age(m.b, m.n + 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_get_ok_dns_first_middle_last),
        cmocka_unit_test(test_get_absolute_form),
        cmocka_unit_test(test_wrong_path_404),
        cmocka_unit_test(test_missing_or_empty_dns_400),
        cmocka_unit_test(test_bad_base64_400),
        cmocka_unit_test(test_padded_base64_accepted),
        cmocka_unit_test(test_decoded_longer_than_cap_400),
        cmocka_unit_test(test_target_len_bounds_the_target),
        cmocka_unit_test(test_post_content_types),
        cmocka_unit_test(test_other_methods_405),
        cmocka_unit_test(test_order_of_checks),
        cmocka_unit_test(test_other_configured_path),
        cmocka_unit_test(test_check_query_empty_and_short),
        cmocka_unit_test(test_check_query_zeros_1k),
        cmocka_unit_test(test_check_query_valid_and_truncated),
        cmocka_unit_test(test_check_query_response_400),
        cmocka_unit_test(test_check_query_notimp_badvers_pass),
        cmocka_unit_test(test_max_age_positive_min_of_ttls),
        cmocka_unit_test(test_max_age_nxdomain_soa),
        cmocka_unit_test(test_max_age_nodata),
        cmocka_unit_test(test_max_age_no_records),
        cmocka_unit_test(test_max_age_error_rcode_with_records),
        cmocka_unit_test(test_max_age_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
