/* Unit tests for the packet cache and for the scan it relies on (dns_answer_ttls): TTL
 * offsets and the negative/SOA judgement of answers, then the cache against its header:
 * aging, expiry and serve-stale, TTL clamps, negative lifetimes (RFC 2308), what is never
 * cached, case, ID and RD of the client, the key variants (EDNS, DO, CD, AD), the memory
 * budget and LRU order, truncation, prefetch, the recheck timer and the counters.
 *
 * Every answer is built the way the proxy builds it: a client query written by hand and
 * parsed with dns_query_parse, an upstream answer written by hand with compression
 * pointers like a real server's (and its own OPT record), parsed with dns_answer_parse,
 * and turned into the client form with dns_answer_for_client. That client form is what
 * cache_insert takes. Time is the `now` argument, in seconds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/cache.h"
#include "dnsward/dns.h"

/* ---- a message writer ---- */

/* A message under construction; large enough for the largest DNS message. */
struct msg {
    uint8_t b[DNS_MAX_MSG + 1];
    size_t n;
};

/* Sections, for the header count a record adds to. */
enum { AN = 0, NS = 1, AR = 2 };

static void put8(struct msg *m, uint8_t v)
{
    assert_true(m->n < sizeof(m->b));
    m->b[m->n++] = v;
}

static void put16(struct msg *m, uint16_t v)
{
    put8(m, (uint8_t)(v >> 8));
    put8(m, (uint8_t)v);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, (uint16_t)(v >> 16));
    put16(m, (uint16_t)v);
}

static void put_bytes(struct msg *m, const void *d, size_t n)
{
    assert_true(n <= sizeof(m->b) - m->n);
    memcpy(m->b + m->n, d, n);
    m->n += n;
}

static void put_hdr(struct msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
                    uint16_t ns, uint16_t ar)
{
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, ns);
    put16(m, ar);
}

/* Labels of a dotted name, without the terminating zero: "www.example.com". */
static void put_labels(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (uint8_t)n);
        put_bytes(m, name, n);
        name += n;
        if (*name == '.')
            name++;
    }
}

/* A whole uncompressed name; "" is the root. */
static void put_name(struct msg *m, const char *name)
{
    put_labels(m, name);
    put8(m, 0);
}

static void put_ptr(struct msg *m, size_t off)
{
    put16(m, (uint16_t)(0xc000 | off));
}

static void put_question(struct msg *m, const char *name, uint16_t type, uint16_t cls)
{
    put_name(m, name);
    put16(m, type);
    put16(m, cls);
}

/* One more record in section sec of the header's counts. */
static void count_rr(struct msg *m, int sec)
{
    size_t at = 6 + 2 * (size_t)sec;
    dns_put16(m->b + at, (uint16_t)(dns_get16(m->b + at) + 1));
}

/* TYPE, CLASS IN, TTL and RDLENGTH of a record whose owner was just written; returns the
 * offset of its TTL field. */
static size_t put_fixed(struct msg *m, int sec, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    count_rr(m, sec);
    put16(m, type);
    put16(m, 1);
    size_t ttl_off = m->n;
    put32(m, ttl);
    put16(m, rdlen);
    return ttl_off;
}

/* The offset of the name that remains of the name at off after skipping `skip` labels
 * (the name at off must be uncompressed there). */
static size_t skip_labels(const struct msg *m, size_t off, unsigned skip)
{
    while (skip--) {
        assert_true(m->b[off] != 0 && m->b[off] < 64);
        off += 1 + (size_t)m->b[off];
    }
    return off;
}

/* The zone of a query's QNAME for the SOA and NS records: its last two labels. */
static size_t zone_of_qname(const struct msg *m)
{
    unsigned labels = 0;
    for (size_t off = DNS_HEADER_LEN; m->b[off] != 0; off += 1 + (size_t)m->b[off])
        labels++;
    return skip_labels(m, DNS_HEADER_LEN, labels > 2 ? labels - 2 : 0);
}

/* An A record (192.0.2.last) whose owner is a pointer; returns its TTL offset. */
static size_t rr_a(struct msg *m, int sec, size_t owner, uint32_t ttl, uint8_t last)
{
    put_ptr(m, owner);
    size_t t = put_fixed(m, sec, DNS_TYPE_A, ttl, 4);
    static const uint8_t net[3] = {192, 0, 2};
    put_bytes(m, net, 3);
    put8(m, last);
    return t;
}

/* A record of type (CNAME, NS) whose RDATA is label + a pointer to zone. *target gets the
 * offset of the RDATA name, for later owners to point at. Returns the TTL offset. */
static size_t rr_name(struct msg *m, int sec, size_t owner, uint16_t type, uint32_t ttl,
                      const char *label, size_t zone, size_t *target)
{
    put_ptr(m, owner);
    size_t t = put_fixed(m, sec, type, ttl, (uint16_t)(1 + strlen(label) + 2));
    if (target)
        *target = m->n;
    put_labels(m, label);
    put_ptr(m, zone);
    return t;
}

/* An SOA of the zone at `zone`: "ns1.<zone> hostmaster.<zone> serial 7200 3600 1209600
 * minimum", names compressed. Returns the TTL offset. */
static size_t rr_soa(struct msg *m, int sec, size_t zone, uint32_t ttl, uint32_t minimum)
{
    put_ptr(m, zone);
    size_t t = put_fixed(m, sec, DNS_TYPE_SOA, ttl, 4 + 2 + 11 + 2 + 20);
    put_labels(m, "ns1");
    put_ptr(m, zone);
    put_labels(m, "hostmaster");
    put_ptr(m, zone);
    put32(m, 2024010101);
    put32(m, 7200);
    put32(m, 3600);
    put32(m, 1209600);
    put32(m, minimum);
    return t;
}

/* A TXT record of one string of len bytes (at most 255). Returns the TTL offset. */
static size_t rr_txt(struct msg *m, int sec, size_t owner, uint32_t ttl, size_t len)
{
    put_ptr(m, owner);
    size_t t = put_fixed(m, sec, DNS_TYPE_TXT, ttl, (uint16_t)(1 + len));
    put8(m, (uint8_t)len);
    for (size_t i = 0; i < len; i++)
        put8(m, 'x');
    return t;
}

/* An upstream's OPT record, as a real server sends it: our size, the DO bit, padding.
 * Its TTL field (extended RCODE, version, flags) is 0 without DO, so that a scan that took
 * it for a TTL would find a minimum of 0. Returns the record's offset. */
static size_t rr_opt(struct msg *m, bool do_bit)
{
    size_t at = m->n;
    count_rr(m, AR);
    put8(m, 0);
    put16(m, DNS_TYPE_OPT);
    put16(m, 1232);
    put32(m, do_bit ? 0x8000u : 0);
    put16(m, 4 + 6);
    put16(m, DNS_OPT_PADDING);
    put16(m, 6);
    for (int i = 0; i < 6; i++)
        put8(m, 0);
    return at;
}

/* ---- clients, upstreams and the client form ---- */

enum { PLAIN, EDNS, EDNS_DO };

/* A client's query, as bytes and parsed. */
struct client {
    struct msg m;
    struct dns_query q;
};

static void client_query_size(struct client *c, uint16_t id, uint16_t flags, const char *name,
                              uint16_t type, int edns, uint16_t udp)
{
    put_hdr(&c->m, id, flags, 1, 0, 0, edns != PLAIN ? 1 : 0);
    put_question(&c->m, name, type, 1);
    if (edns != PLAIN) {
        put8(&c->m, 0);
        put16(&c->m, DNS_TYPE_OPT);
        put16(&c->m, udp);
        put32(&c->m, edns == EDNS_DO ? 0x8000u : 0);
        put16(&c->m, 0);
    }
    assert_int_equal(dns_query_parse(c->m.b, c->m.n, &c->q), 0);
}

static void client_query(struct client *c, uint16_t id, uint16_t flags, const char *name,
                         uint16_t type, int edns)
{
    client_query_size(c, id, flags, name, type, edns, 1232);
}

/* The beginning of an upstream's answer to the client's query: header (QR, RD, RA and
 * `flags`, which may carry AA, AD, TC and the RCODE), the question as the client spelled
 * it (which is what we send upstream), no records yet. */
static void up_begin(struct msg *u, const struct client *c, uint16_t flags)
{
    put_hdr(u, 0x5a5a, (uint16_t)(DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | flags), 1, 0, 0, 0);
    put_bytes(u, c->m.b + DNS_HEADER_LEN, c->q.question_end - DNS_HEADER_LEN);
}

/* Finish an upstream answer: an OPT record, since we always ask upstream with EDNS. */
static void up_end(struct msg *u, const struct client *c)
{
    rr_opt(u, c->q.do_bit);
}

/* The answer the client receives (dns_answer_for_client, untruncated): what the proxy
 * stores in the cache. */
static void client_form(struct msg *out, const struct msg *u, const struct client *c)
{
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(u->b, u->n, &a), 0);
    int n =
        dns_answer_for_client(u->b, &a, c->m.b, &c->q, 1232, DNS_MAX_MSG, out->b, sizeof(out->b));
    assert_true(n > 0);
    out->n = (size_t)n;
}

/* Client form of a positive answer of two A records, 192.0.2.last and .last+1, with TTLs
 * ttl1 and ttl2, owners compressed to the question. */
static void answer_a(struct msg *out, const struct client *c, uint32_t ttl1, uint32_t ttl2,
                     uint8_t last)
{
    struct msg u;
    up_begin(&u, c, 0);
    rr_a(&u, AN, DNS_HEADER_LEN, ttl1, last);
    rr_a(&u, AN, DNS_HEADER_LEN, ttl2, (uint8_t)(last + 1));
    up_end(&u, c);
    client_form(out, &u, c);
}

/* Client form of a negative answer (rcode NXDOMAIN or NOERROR for NODATA) with the SOA of
 * the QNAME's zone in the authority section. */
static void answer_negative(struct msg *out, const struct client *c, uint16_t rcode,
                            uint32_t soa_ttl, uint32_t minimum)
{
    struct msg u;
    up_begin(&u, c, rcode);
    rr_soa(&u, NS, zone_of_qname(&c->m), soa_ttl, minimum);
    up_end(&u, c);
    client_form(out, &u, c);
}

/* Client form of an answer with only a header and the question, and flags/RCODE. */
static void answer_empty(struct msg *out, const struct client *c, uint16_t flags)
{
    struct msg u;
    up_begin(&u, c, flags);
    up_end(&u, c);
    client_form(out, &u, c);
}

/* Offsets of the two A records' TTLs in an answer to a query for `name`. */
static size_t ttl1_off(const struct client *c)
{
    return c->q.question_end + 2 + 4;
}

static size_t ttl2_off(const struct client *c)
{
    return c->q.question_end + 16 + 2 + 4;
}

static uint32_t ttl_at(const struct msg *m, size_t off)
{
    assert_true(off + 4 <= m->n);
    return dns_get32(m->b + off);
}

/* ---- cache helpers ---- */

static struct cache *cache_make(uint64_t size, uint32_t min_ttl, uint32_t max_ttl,
                                uint32_t max_negative_ttl, uint32_t stale_max_age)
{
    struct cache_params p = {
        .size = size,
        .min_ttl = min_ttl,
        .max_ttl = max_ttl,
        .max_negative_ttl = max_negative_ttl,
        .stale_max_age = stale_max_age,
    };
    struct cache *c = cache_new(&p);
    assert_non_null(c);
    return c;
}

/* A 1 MiB cache: no clamps that matter, 3600 s of negative caching, stale for 600 s. */
static struct cache *cache_default(void)
{
    return cache_make(1 << 20, 0, 86400, 3600, 600);
}

static struct cache_params params_of(uint64_t size, uint32_t min_ttl, uint32_t max_ttl,
                                     uint32_t max_negative_ttl, uint32_t stale_max_age)
{
    struct cache_params p = {
        .size = size,
        .min_ttl = min_ttl,
        .max_ttl = max_ttl,
        .max_negative_ttl = max_negative_ttl,
        .stale_max_age = stale_max_age,
    };
    return p;
}

static int insert(struct cache *c, const struct client *cl, const struct msg *ans, uint32_t now)
{
    struct cache_key k;
    cache_key_init(c, &k, cl->m.b, &cl->q);
    return cache_insert(c, &k, ans->b, ans->n, now);
}

static struct cache_entry *lookup(struct cache *c, const struct client *cl, uint32_t now)
{
    struct cache_key k;
    cache_key_init(c, &k, cl->m.b, &cl->q);
    return cache_lookup(c, &k, now);
}

/* Look the client's query up at now and write the answer it gets (no size limit) to out.
 * Returns false on a miss. */
static bool hit(struct cache *c, const struct client *cl, uint32_t now, struct msg *out)
{
    struct cache_entry *e = lookup(c, cl, now);
    if (!e)
        return false;
    int n = cache_answer(c, e, cl->m.b, &cl->q, now, DNS_MAX_MSG, out->b, sizeof(out->b));
    assert_true(n > 0);
    out->n = (size_t)n;
    return true;
}

/* The name of the i-th of many entries: all of the same length. */
static void flood_name(char *buf, size_t cap, unsigned i)
{
    int n = snprintf(buf, cap, "h%05u.example.com", i);
    assert_true(n > 0 && (size_t)n < cap);
}

static int insert_name(struct cache *c, unsigned i, uint32_t now)
{
    char name[32];
    struct client cl;
    struct msg ans;
    flood_name(name, sizeof(name), i);
    client_query(&cl, 1, DNS_FLAG_RD, name, DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 300, 300, 1);
    return insert(c, &cl, &ans, now);
}

/* Is name i cached? Looked up with cache_peek: nothing counted, the LRU order untouched. */
static bool has_name(const struct cache *c, unsigned i)
{
    char name[32];
    struct client cl;
    struct cache_key k;
    flood_name(name, sizeof(name), i);
    client_query(&cl, 1, DNS_FLAG_RD, name, DNS_TYPE_A, PLAIN);
    cache_key_init(c, &k, cl.m.b, &cl.q);
    return cache_peek(c, &k) != NULL;
}

/* Look name i up (cache_lookup: a use, which moves it to the front of the LRU order). */
static bool use_name(struct cache *c, unsigned i, uint32_t now)
{
    char name[32];
    struct client cl;
    flood_name(name, sizeof(name), i);
    client_query(&cl, 1, DNS_FLAG_RD, name, DNS_TYPE_A, PLAIN);
    return lookup(c, &cl, now) != NULL;
}

/* ======================= dns_answer_ttls ======================= */

static void test_ttls_a_compressed(void **state)
{
    (void)state;
    struct msg m;
    /* example.com A: question 12..28, two A records whose owners point at it. */
    put_hdr(&m, 1, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    rr_a(&m, AN, 12, 300, 1);
    rr_a(&m, AN, 12, 200, 2);
    uint16_t off[8];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 8, &s), 0);
    assert_int_equal(s.nttl, 2);
    assert_int_equal(off[0], 35);
    assert_int_equal(off[1], 51);
    assert_int_equal(s.min_ttl, 200);
    assert_false(s.negative);
    assert_false(s.has_soa);
    assert_int_equal(s.opt_off, 0);
}

/* Records in all three sections, owners fully compressed, partly compressed and not
 * compressed at all, RDATA names compressed, and an OPT record whose TTL field is 0. */
static void test_ttls_all_sections_skip_opt(void **state)
{
    (void)state;
    struct msg m;
    size_t want[5], web, ns1;
    put_hdr(&m, 1, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 0, 0, 0);
    put_question(&m, "www.example.com", DNS_TYPE_A, 1);
    /* www CNAME web.example.com; web A. */
    want[0] = rr_name(&m, AN, 12, DNS_TYPE_CNAME, 600, "web", 16, &web);
    want[1] = rr_a(&m, AN, web, 120, 1);
    /* example.com NS ns1.example.com */
    want[2] = rr_name(&m, NS, 16, DNS_TYPE_NS, 86400, "ns1", 16, &ns1);
    /* ns1.example.com A (owner a pointer) */
    want[3] = rr_a(&m, AR, ns1, 3600, 53);
    /* mail.example.com A: owner "mail" + pointer. */
    put_labels(&m, "mail");
    put_ptr(&m, 16);
    want[4] = put_fixed(&m, AR, DNS_TYPE_A, 7200, 4);
    put32(&m, 0xc0000219);
    size_t opt = rr_opt(&m, false);
    assert_int_equal(dns_get32(m.b + opt + 5), 0); /* the OPT's TTL field */

    struct dns_answer a;
    assert_int_equal(dns_answer_parse(m.b, m.n, &a), 0);
    uint16_t off[8];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 8, &s), 0);
    assert_int_equal(s.nttl, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(off[i], want[i]);
    assert_int_equal(want[0], 39); /* the first one by hand: 33 + pointer + type + class */
    assert_int_equal(s.min_ttl, 120);
    assert_int_equal(s.opt_off, opt);
    assert_false(s.negative);
    assert_false(s.has_soa);
}

/* An uncompressed owner name (a server that does not compress). */
static void test_ttls_uncompressed_owner(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_AAAA, 1);
    put_name(&m, "example.com");
    size_t t = put_fixed(&m, AN, DNS_TYPE_AAAA, 77, 16);
    for (int i = 0; i < 16; i++)
        put8(&m, (uint8_t)i);
    uint16_t off[2];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 2, &s), 0);
    assert_int_equal(t, 29 + 13 + 4);
    assert_int_equal(s.nttl, 1);
    assert_int_equal(off[0], t);
    assert_int_equal(s.min_ttl, 77);
    assert_false(s.negative);
}

/* The form dns_answer_for_client writes: our OPT record at the end. */
static void test_ttls_client_form(void **state)
{
    (void)state;
    struct client c;
    struct msg ans;
    client_query(&c, 7, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS_DO);
    answer_a(&ans, &c, 300, 250, 1);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(ans.b, ans.n, off, 4, &s), 0);
    assert_int_equal(s.nttl, 2);
    assert_int_equal(off[0], 39);
    assert_int_equal(off[1], 55);
    assert_int_equal(s.min_ttl, 250);
    assert_int_equal(s.opt_off, ans.n - 11);
    assert_false(s.negative);
}

static void test_ttls_nxdomain_soa(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
    put_question(&m, "nope.example.com", DNS_TYPE_A, 1);
    size_t t = rr_soa(&m, NS, 17, 900, 300);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_int_equal(s.nttl, 1);
    assert_int_equal(off[0], t);
    assert_int_equal(t, 34 + 2 + 4);
    assert_int_equal(s.min_ttl, 900);
    assert_true(s.negative);
    assert_true(s.has_soa);
    assert_int_equal(s.soa_ttl, 300); /* MINIMUM below the TTL */
}

static void test_ttls_soa_ttl_below_minimum(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
    put_question(&m, "nope.example.com", DNS_TYPE_A, 1);
    rr_soa(&m, NS, 17, 60, 300);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.has_soa);
    assert_int_equal(s.soa_ttl, 60); /* the TTL below MINIMUM */
}

/* NOERROR, no answer record, SOA in the authority: NODATA. */
static void test_ttls_nodata(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_FLAG_RA, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_AAAA, 1);
    rr_soa(&m, NS, 12, 3600, 1800);
    rr_opt(&m, false);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.negative);
    assert_true(s.has_soa);
    assert_int_equal(s.soa_ttl, 1800);
    assert_int_equal(s.nttl, 1);
    assert_int_equal(s.min_ttl, 3600);
}

/* A referral: NOERROR with NS in authority and glue A records in additional, one of them
 * even for the QNAME itself. No record of the type asked in the answer section: NODATA,
 * and without an SOA. */
static void test_ttls_qtype_outside_answer_is_nodata(void **state)
{
    (void)state;
    struct msg m;
    size_t ns1;
    put_hdr(&m, 2, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "www.example.com", DNS_TYPE_A, 1);
    rr_name(&m, NS, 16, DNS_TYPE_NS, 172800, "ns1", 16, &ns1);
    rr_a(&m, AR, ns1, 172800, 53);
    rr_a(&m, AR, 12, 60, 1);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.negative);
    assert_false(s.has_soa);
    assert_int_equal(s.nttl, 3);
    assert_int_equal(s.min_ttl, 60);
}

/* www CNAME web, web CNAME edge: the chain ends without an A record: NODATA. */
static void test_ttls_cname_chain_without_type_is_nodata(void **state)
{
    (void)state;
    struct msg m;
    size_t web, edge;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_FLAG_RA, 1, 0, 0, 0);
    put_question(&m, "www.example.com", DNS_TYPE_A, 1);
    rr_name(&m, AN, 12, DNS_TYPE_CNAME, 600, "web", 16, &web);
    rr_name(&m, AN, web, DNS_TYPE_CNAME, 500, "edge", 16, &edge);
    rr_soa(&m, NS, 16, 900, 120);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.negative);
    assert_true(s.has_soa);
    assert_int_equal(s.soa_ttl, 120);
    assert_int_equal(s.nttl, 3);
    assert_int_equal(s.min_ttl, 500);
}

static void test_ttls_cname_chain_with_type_positive(void **state)
{
    (void)state;
    struct msg m;
    size_t web, edge;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_FLAG_RA, 1, 0, 0, 0);
    put_question(&m, "www.example.com", DNS_TYPE_A, 1);
    rr_name(&m, AN, 12, DNS_TYPE_CNAME, 600, "web", 16, &web);
    rr_name(&m, AN, web, DNS_TYPE_CNAME, 500, "edge", 16, &edge);
    rr_a(&m, AN, edge, 20, 9);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_false(s.negative);
    assert_int_equal(s.nttl, 3);
    assert_int_equal(s.min_ttl, 20);
}

/* Asking for the CNAME itself: the CNAME is the type asked. */
static void test_ttls_cname_query_positive(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "www.example.com", DNS_TYPE_CNAME, 1);
    rr_name(&m, AN, 12, DNS_TYPE_CNAME, 600, "web", 16, NULL);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_false(s.negative);
    assert_int_equal(s.nttl, 1);
}

static void test_ttls_any(void **state)
{
    (void)state;
    struct msg m;
    uint16_t off[4];
    struct dns_ttl_scan s;
    /* ANY answered with a TXT and an A: positive. */
    put_hdr(&m, 2, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_ANY, 1);
    rr_txt(&m, AN, 12, 40, 5);
    rr_a(&m, AN, 12, 50, 1);
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_false(s.negative);
    assert_int_equal(s.nttl, 2);
    assert_int_equal(s.min_ttl, 40);
    /* ANY with nothing in the answer section: NODATA. */
    put_hdr(&m, 2, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_ANY, 1);
    rr_soa(&m, NS, 12, 100, 100);
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.negative);
    assert_true(s.has_soa);
}

/* NXDOMAIN at the end of a CNAME: negative even with a record in the answer section. */
static void test_ttls_nxdomain_after_cname_negative(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
    put_question(&m, "www.example.com", DNS_TYPE_CNAME, 1);
    rr_name(&m, AN, 12, DNS_TYPE_CNAME, 600, "gone", 16, NULL);
    rr_soa(&m, NS, 16, 900, 300);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.negative);
    assert_true(s.has_soa);
    assert_int_equal(s.soa_ttl, 300);
    assert_int_equal(s.nttl, 2);
}

/* An SOA asked for and answered is positive, and is no authority SOA. */
static void test_ttls_soa_in_answer_section(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_FLAG_AA, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_SOA, 1);
    rr_soa(&m, AN, 12, 3600, 300);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_false(s.negative);
    assert_false(s.has_soa);
    assert_int_equal(s.nttl, 1);
    assert_int_equal(s.min_ttl, 3600);
}

/* Two SOAs in the authority section: the first gives the negative lifetime. */
static void test_ttls_first_soa_counts(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
    put_question(&m, "nope.example.com", DNS_TYPE_A, 1);
    rr_soa(&m, NS, 17, 600, 60);
    rr_soa(&m, NS, 17, 30, 30);
    uint16_t off[4];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 4, &s), 0);
    assert_true(s.has_soa);
    assert_int_equal(s.soa_ttl, 60);
    assert_int_equal(s.nttl, 2);
    assert_int_equal(s.min_ttl, 30);
}

/* No records: nttl 0, min_ttl UINT32_MAX; NXDOMAIN without SOA is negative, has_soa not. */
static void test_ttls_no_records(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_RCODE_NXDOMAIN, 1, 0, 0, 0);
    put_question(&m, "nope.example.com", DNS_TYPE_A, 1);
    uint16_t off[1] = {0xffff};
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 1, &s), 0);
    assert_int_equal(s.nttl, 0);
    assert_int_equal(s.min_ttl, UINT32_MAX);
    assert_true(s.negative);
    assert_false(s.has_soa);
    assert_int_equal(s.opt_off, 0);
    assert_int_equal(off[0], 0xffff);
}

/* Neither NOERROR nor NXDOMAIN: not negative, whatever is missing. */
static void test_ttls_servfail_not_negative(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_RCODE_SERVFAIL, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    uint16_t off[1];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 1, &s), 0);
    assert_false(s.negative);
    put_hdr(&m, 2, DNS_FLAG_QR | DNS_RCODE_REFUSED, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 1, &s), 0);
    assert_false(s.negative);
}

/* More TTLs than room: the first cap written, the rest untouched, nttl counts them all. */
static void test_ttls_more_than_cap(void **state)
{
    (void)state;
    struct msg m;
    size_t want[5];
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    for (int i = 0; i < 5; i++)
        want[i] = rr_a(&m, AN, 12, (uint32_t)(500 - i * 100), (uint8_t)i);
    uint16_t off[5];
    struct dns_ttl_scan s;
    for (int i = 0; i < 5; i++)
        off[i] = 0xffff;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 2, &s), 0);
    assert_int_equal(s.nttl, 5);
    assert_int_equal(off[0], want[0]);
    assert_int_equal(off[1], want[1]);
    assert_int_equal(off[2], 0xffff);
    assert_int_equal(off[3], 0xffff);
    assert_int_equal(off[4], 0xffff);
    /* min_ttl is over all of them, not just those written. */
    assert_int_equal(s.min_ttl, 100);
    /* cap 0: nothing written, all counted. */
    off[0] = 0xffff;
    assert_int_equal(dns_answer_ttls(m.b, m.n, off, 0, &s), 0);
    assert_int_equal(s.nttl, 5);
    assert_int_equal(off[0], 0xffff);
}

static void check_ebadmsg(const struct msg *m)
{
    uint16_t off[8];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(m->b, m->n, off, 8, &s), -EBADMSG);
}

static void test_ttls_garbage_ebadmsg(void **state)
{
    (void)state;
    struct msg m, good;
    size_t web;
    /* A valid answer; every strict prefix of it is not one. */
    put_hdr(&good, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&good, "www.example.com", DNS_TYPE_A, 1);
    rr_name(&good, AN, 12, DNS_TYPE_CNAME, 600, "web", 16, &web);
    rr_a(&good, AN, web, 60, 1);
    rr_soa(&good, NS, 16, 60, 60);
    rr_opt(&good, false);
    uint16_t off[8];
    struct dns_ttl_scan s;
    assert_int_equal(dns_answer_ttls(good.b, good.n, off, 8, &s), 0);
    for (size_t len = 0; len < good.n; len++) {
        m = good;
        m.n = len;
        check_ebadmsg(&m);
    }
    /* RDLENGTH past the end. */
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    rr_a(&m, AN, 12, 60, 1);
    dns_put16(m.b + m.n - 6, 5);
    check_ebadmsg(&m);
    /* An owner pointing forwards. */
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    rr_a(&m, AN, 12, 60, 1);
    dns_put16(m.b + 29, 0xc000 | 40);
    check_ebadmsg(&m);
    /* An owner pointing at itself. */
    dns_put16(m.b + 29, 0xc000 | 29);
    check_ebadmsg(&m);
    /* A label running past the end. */
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    put8(&m, 40);
    put_bytes(&m, "abc", 3);
    check_ebadmsg(&m);
    /* No question. */
    put_hdr(&m, 1, DNS_FLAG_QR, 0, 0, 0, 0);
    check_ebadmsg(&m);
    /* A header alone, shorter than a header. */
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    m.n = 11;
    check_ebadmsg(&m);
}

static void test_ttls_trailing_bytes_ebadmsg(void **state)
{
    (void)state;
    struct msg m;
    put_hdr(&m, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&m, "example.com", DNS_TYPE_A, 1);
    rr_a(&m, AN, 12, 60, 1);
    put8(&m, 0);
    check_ebadmsg(&m);
}

/* Every byte of a valid answer changed to a few values: the scan returns 0 or -EBADMSG,
 * 0 whenever the parser accepts the message, and offsets that lie inside it. */
static void test_ttls_mutations_safe(void **state)
{
    (void)state;
    struct msg good, m;
    size_t web;
    put_hdr(&good, 1, DNS_FLAG_QR, 1, 0, 0, 0);
    put_question(&good, "www.example.com", DNS_TYPE_A, 1);
    rr_name(&good, AN, 12, DNS_TYPE_CNAME, 600, "web", 16, &web);
    rr_a(&good, AN, web, 60, 1);
    rr_soa(&good, NS, 16, 60, 60);
    rr_opt(&good, false);
    static const uint8_t vals[] = {0x00, 0x01, 0x3f, 0x40, 0xc0, 0xff};
    for (size_t i = 0; i < good.n; i++) {
        for (size_t v = 0; v <= sizeof(vals); v++) {
            m = good;
            m.b[i] = v < sizeof(vals) ? vals[v] : (uint8_t)(good.b[i] ^ 0x20);
            uint16_t off[16];
            struct dns_ttl_scan s;
            int rc = dns_answer_ttls(m.b, m.n, off, 16, &s);
            assert_true(rc == 0 || rc == -EBADMSG);
            struct dns_answer a;
            if (dns_answer_parse(m.b, m.n, &a) == 0)
                assert_int_equal(rc, 0);
            if (rc == 0) {
                for (size_t j = 0; j < s.nttl && j < 16; j++) {
                    assert_true(off[j] >= DNS_HEADER_LEN + 5);
                    assert_true((size_t)off[j] + 6 <= m.n);
                }
            }
        }
    }
}

/* ======================= cache ======================= */

static void test_cache_key(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client lower, mixed, aaaa, edns, edns4096;
    client_query(&lower, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    client_query(&mixed, 2, 0, "WwW.ExAmPlE.CoM", DNS_TYPE_A, PLAIN);
    client_query(&aaaa, 3, DNS_FLAG_RD, "www.example.com", DNS_TYPE_AAAA, PLAIN);
    client_query(&edns, 4, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    client_query_size(&edns4096, 5, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS, 4096);
    struct cache_key kl, km, ka, ke, ke2;
    cache_key_init(c, &kl, lower.m.b, &lower.q);
    cache_key_init(c, &km, mixed.m.b, &mixed.q);
    cache_key_init(c, &ka, aaaa.m.b, &aaaa.q);
    cache_key_init(c, &ke, edns.m.b, &edns.q);
    cache_key_init(c, &ke2, edns4096.m.b, &edns4096.q);
    assert_int_equal(km.len, 17 + 4);
    assert_memory_equal(km.question, lower.m.b + 12, 21); /* in lower case */
    assert_int_equal(km.bits, 0);
    assert_int_equal(ke.bits, DNS_KEY_EDNS);
    assert_true(cache_key_equal(&kl, &km));
    assert_int_equal(kl.hash, km.hash);
    assert_false(cache_key_equal(&kl, &ka));
    assert_false(cache_key_equal(&kl, &ke));
    /* The client's payload size is no part of the key. */
    assert_true(cache_key_equal(&ke, &ke2));
    cache_free(c);
}

/* A hit is the stored answer with the client's ID: byte for byte. */
static void test_cache_hit_exact_bytes(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client first, second;
    struct msg ans, out;
    client_query(&first, 0x1111, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    client_query(&second, 0x2222, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    answer_a(&ans, &first, 300, 300, 1);
    assert_int_equal(insert(c, &first, &ans, 1000), 0);
    assert_true(hit(c, &second, 1000, &out));
    assert_int_equal(out.n, ans.n);
    assert_int_equal(dns_get16(out.b), 0x2222);
    assert_memory_equal(out.b + 2, ans.b + 2, ans.n - 2);
    cache_free(c);
}

static void test_cache_miss_unknown(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client a, b;
    struct msg ans, out;
    client_query(&a, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    client_query(&b, 1, DNS_FLAG_RD, "www.example.net", DNS_TYPE_A, PLAIN);
    assert_false(hit(c, &a, 1000, &out));
    answer_a(&ans, &a, 300, 300, 1);
    assert_int_equal(insert(c, &a, &ans, 1000), 0);
    assert_false(hit(c, &b, 1000, &out));
    cache_free(c);
}

/* Every TTL lowered by the entry's age, at each hit; the lifetime is the smallest TTL. */
static void test_cache_ttl_aging(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client cl;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS_DO);
    answer_a(&ans, &cl, 300, 600, 1);
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 600);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 300);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);

    assert_true(hit(c, &cl, 1000, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 300);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 600);
    assert_true(hit(c, &cl, 1100, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 200);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 500);
    assert_true(hit(c, &cl, 1299, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 1);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 301);
    /* Everything but the TTLs is the stored answer, the OPT record (DO in its TTL field)
     * included. */
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0};
    assert_memory_equal(out.b + out.n - 11, opt, sizeof(opt));
    assert_memory_equal(out.b, ans.b, ttl1_off(&cl));

    struct cache_entry *e = lookup(c, &cl, 1100);
    assert_non_null(e);
    assert_int_equal(cache_entry_ttl(e, 1100), 200);
    assert_int_equal(cache_entry_ttl(e, 1299), 1);
    assert_int_equal(cache_entry_ttl(e, 1300), 0);
    assert_int_equal(cache_entry_ttl(e, 5000), 0);
    cache_free(c);
}

/* Past its lifetime an entry is stale: found, counted as a miss, answered with TTL 30 (the
 * OPT record untouched); past stale_max_age more it is gone. */
static void test_cache_expiry_stale(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 100);
    struct client cl;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS_DO);
    answer_a(&ans, &cl, 300, 600, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);

    uint64_t hits = cache_stats(c)->hits, misses = cache_stats(c)->misses;
    struct cache_entry *e = lookup(c, &cl, 1301);
    assert_non_null(e);
    assert_int_equal(cache_stats(c)->hits, hits);
    assert_int_equal(cache_stats(c)->misses, misses + 1);
    assert_int_equal(cache_entry_ttl(e, 1301), 0);
    int n = cache_answer(c, e, cl.m.b, &cl.q, 1301, DNS_MAX_MSG, out.b, sizeof(out.b));
    assert_int_equal(n, ans.n);
    out.n = (size_t)n;
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), CACHE_STALE_TTL);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), CACHE_STALE_TTL);
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0};
    assert_memory_equal(out.b + out.n - 11, opt, sizeof(opt));
    assert_int_equal(cache_stats(c)->stale, 1);

    /* Still there just before the end of the stale window. */
    assert_non_null(lookup(c, &cl, 1399));
    assert_int_equal(cache_stats(c)->entries, 1);
    /* Gone after it. */
    assert_null(lookup(c, &cl, 1401));
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->expired, 1);
    assert_null(lookup(c, &cl, 1401));
    cache_free(c);
}

/* stale_max_age 0: an expired entry is gone at once. */
static void test_cache_no_stale(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 0);
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 60, 60, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    assert_non_null(lookup(c, &cl, 1059));
    assert_null(lookup(c, &cl, 1061));
    assert_int_equal(cache_stats(c)->entries, 0);
    cache_free(c);
}

/* min_ttl and max_ttl: the lifetime and the TTLs a client sees. */
static void test_cache_ttl_clamps(void **state)
{
    (void)state;
    struct cache_params p = params_of(1 << 20, 60, 1000, 3600, 0);
    struct cache *c = cache_new(&p);
    assert_non_null(c);
    struct client cl;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "low.example.com", DNS_TYPE_A, PLAIN);
    /* 10 is raised to 60, 3600 capped at 1000. */
    answer_a(&ans, &cl, 10, 3600, 1);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 60);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    assert_true(hit(c, &cl, 1000, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 60);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 1000);
    assert_true(hit(c, &cl, 1030, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 30);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 970);
    struct cache_entry *e = lookup(c, &cl, 1030);
    assert_non_null(e);
    assert_int_equal(cache_entry_ttl(e, 1030), 30);

    /* Both over max_ttl. */
    client_query(&cl, 1, DNS_FLAG_RD, "high.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 5000, 7200, 1);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 1000);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    assert_true(hit(c, &cl, 1000, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 1000);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 1000);
    assert_true(hit(c, &cl, 1999, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 1);
    assert_null(lookup(c, &cl, 2001));

    /* Within the bounds: unchanged. */
    client_query(&cl, 1, DNS_FLAG_RD, "mid.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 300, 500, 1);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 300);
    cache_free(c);
}

/* A TTL of 0 with min_ttl 0: a lifetime of 0, not cached; with min_ttl 10: 10 s. */
static void test_cache_ttl_zero(void **state)
{
    (void)state;
    struct client cl;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 0, 300, 1);
    struct cache_params p0 = params_of(1 << 20, 0, 86400, 3600, 0);
    assert_int_equal(cache_lifetime(&p0, ans.b, ans.n), -EINVAL);
    struct cache *c = cache_new(&p0);
    assert_non_null(c);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->inserts, 0);
    cache_free(c);

    struct cache_params p10 = params_of(1 << 20, 10, 86400, 3600, 0);
    assert_int_equal(cache_lifetime(&p10, ans.b, ans.n), 10);
    c = cache_new(&p10);
    assert_non_null(c);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    assert_true(hit(c, &cl, 1000, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 10);
    assert_int_equal(ttl_at(&out, ttl2_off(&cl)), 300);
    cache_free(c);
}

/* RFC 2308 §5: the smaller of the SOA's TTL and MINIMUM, capped by max_negative_ttl and
 * max_ttl. */
static void test_cache_negative_lifetime(void **state)
{
    (void)state;
    struct client nx, nodata;
    struct msg ans;
    client_query(&nx, 1, DNS_FLAG_RD, "nope.example.com", DNS_TYPE_A, PLAIN);
    client_query(&nodata, 1, DNS_FLAG_RD, "example.com", DNS_TYPE_AAAA, EDNS);
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 0);

    answer_negative(&ans, &nx, DNS_RCODE_NXDOMAIN, 900, 300);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 300);
    answer_negative(&ans, &nx, DNS_RCODE_NXDOMAIN, 120, 300);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 120);
    answer_negative(&ans, &nodata, DNS_RCODE_NOERROR, 900, 300);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 300);
    answer_negative(&ans, &nodata, DNS_RCODE_NOERROR, 7200, 86400);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 3600); /* max_negative_ttl */

    struct cache_params neg60 = params_of(1 << 20, 0, 86400, 60, 0);
    answer_negative(&ans, &nx, DNS_RCODE_NXDOMAIN, 900, 300);
    assert_int_equal(cache_lifetime(&neg60, ans.b, ans.n), 60);
    struct cache_params max100 = params_of(1 << 20, 0, 100, 3600, 0);
    assert_int_equal(cache_lifetime(&max100, ans.b, ans.n), 100);

    /* MINIMUM 0: a lifetime of 0, not cached. */
    answer_negative(&ans, &nx, DNS_RCODE_NXDOMAIN, 900, 0);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
}

/* A negative entry: its lifetime from the SOA, the SOA's TTL as the client sees it capped
 * at that lifetime, aged, and gone after it. */
static void test_cache_negative_entry(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 0);
    struct client nx;
    struct msg ans, out;
    client_query(&nx, 1, DNS_FLAG_RD, "nope.example.com", DNS_TYPE_A, PLAIN);
    answer_negative(&ans, &nx, DNS_RCODE_NXDOMAIN, 900, 300);
    assert_int_equal(insert(c, &nx, &ans, 1000), 0);
    size_t soa_ttl = nx.q.question_end + 2 + 4;
    assert_int_equal(ttl_at(&ans, soa_ttl), 900);
    assert_true(hit(c, &nx, 1000, &out));
    assert_int_equal(DNS_RCODE(dns_get16(out.b + 2)), DNS_RCODE_NXDOMAIN);
    assert_int_equal(ttl_at(&out, soa_ttl), 300);
    assert_true(hit(c, &nx, 1100, &out));
    assert_int_equal(ttl_at(&out, soa_ttl), 200);
    /* The SOA's MINIMUM field is data, not a TTL. */
    assert_int_equal(dns_get32(out.b + out.n - 4), 300);
    struct cache_entry *e = lookup(c, &nx, 1100);
    assert_non_null(e);
    assert_int_equal(cache_entry_ttl(e, 1100), 200);
    assert_null(lookup(c, &nx, 1301));
    cache_free(c);
}

/* A NODATA at the end of a CNAME: a negative entry, and every TTL in it (the CNAME's
 * too) capped at the negative lifetime. */
static void test_cache_cname_nodata_entry(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 0);
    struct client cl;
    struct msg u, ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_AAAA, EDNS);
    up_begin(&u, &cl, 0);
    size_t cname_ttl = rr_name(&u, AN, 12, DNS_TYPE_CNAME, 3600, "web", 16, NULL);
    size_t soa_ttl = rr_soa(&u, NS, 16, 900, 120);
    up_end(&u, &cl);
    client_form(&ans, &u, &cl);
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 0);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), 120);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    assert_true(hit(c, &cl, 1020, &out));
    assert_int_equal(ttl_at(&out, cname_ttl), 100);
    assert_int_equal(ttl_at(&out, soa_ttl), 100);
    cache_free(c);
}

/* Without an SOA there is no negative lifetime (RFC 2308 §5): not cached. */
static void test_cache_negative_without_soa_not_cached(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client cl;
    struct msg ans;
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 600);
    client_query(&cl, 1, DNS_FLAG_RD, "nope.example.com", DNS_TYPE_A, PLAIN);
    answer_empty(&ans, &cl, DNS_RCODE_NXDOMAIN);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    /* NODATA without SOA. */
    client_query(&cl, 1, DNS_FLAG_RD, "example.com", DNS_TYPE_AAAA, PLAIN);
    answer_empty(&ans, &cl, DNS_RCODE_NOERROR);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->inserts, 0);
    assert_null(lookup(c, &cl, 1000));
    cache_free(c);
}

/* A NODATA for example.com AAAA, an NXDOMAIN for nope.example.com A and a positive answer
 * for example.com A: three questions, each answered with its own answer. */
static void test_cache_nodata_nxdomain_apart(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client nodata, nx, pos, nx_aaaa;
    struct msg a_nodata, a_nx, a_pos, out;
    client_query(&nodata, 1, DNS_FLAG_RD, "example.com", DNS_TYPE_AAAA, PLAIN);
    client_query(&nx, 2, DNS_FLAG_RD, "nope.example.com", DNS_TYPE_A, PLAIN);
    client_query(&pos, 3, DNS_FLAG_RD, "example.com", DNS_TYPE_A, PLAIN);
    client_query(&nx_aaaa, 4, DNS_FLAG_RD, "nope.example.com", DNS_TYPE_AAAA, PLAIN);
    answer_negative(&a_nodata, &nodata, DNS_RCODE_NOERROR, 900, 300);
    answer_negative(&a_nx, &nx, DNS_RCODE_NXDOMAIN, 900, 300);
    answer_a(&a_pos, &pos, 300, 300, 1);
    assert_int_equal(insert(c, &nodata, &a_nodata, 1000), 0);
    assert_int_equal(insert(c, &nx, &a_nx, 1000), 0);
    assert_int_equal(insert(c, &pos, &a_pos, 1000), 0);
    assert_int_equal(cache_stats(c)->entries, 3);

    assert_true(hit(c, &nodata, 1000, &out));
    assert_int_equal(DNS_RCODE(dns_get16(out.b + 2)), DNS_RCODE_NOERROR);
    assert_int_equal(dns_get16(out.b + 6), 0);
    assert_int_equal(dns_get16(out.b + 8), 1);
    assert_int_equal(dns_get16(out.b + 12 + 13), DNS_TYPE_AAAA);

    assert_true(hit(c, &nx, 1000, &out));
    assert_int_equal(DNS_RCODE(dns_get16(out.b + 2)), DNS_RCODE_NXDOMAIN);
    assert_int_equal(dns_get16(out.b + 6), 0);
    assert_int_equal(dns_get16(out.b + 8), 1);

    assert_true(hit(c, &pos, 1000, &out));
    assert_int_equal(DNS_RCODE(dns_get16(out.b + 2)), DNS_RCODE_NOERROR);
    assert_int_equal(dns_get16(out.b + 6), 2);
    assert_int_equal(out.n, a_pos.n);

    /* The NXDOMAIN was for A; AAAA for that name is another question. */
    assert_false(hit(c, &nx_aaaa, 1000, &out));
    cache_free(c);
}

/* The entry keeps the name in lower case; every hit carries the asker's spelling. */
static void test_cache_case_preserved(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client lower, mixed, upper;
    struct msg ans, out;
    client_query(&lower, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    client_query(&mixed, 2, DNS_FLAG_RD, "WwW.ExAmPlE.CoM", DNS_TYPE_A, PLAIN);
    client_query(&upper, 3, DNS_FLAG_RD, "WWW.EXAMPLE.COM", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &lower, 300, 300, 1);
    assert_int_equal(insert(c, &lower, &ans, 1000), 0);
    assert_true(hit(c, &mixed, 1000, &out));
    assert_int_equal(out.n, ans.n);
    assert_int_equal(dns_get16(out.b), 2);
    assert_memory_equal(out.b + 12, "\3WwW\7ExAmPlE\3CoM", 17);
    assert_memory_equal(out.b + 2, ans.b + 2, 10);
    assert_memory_equal(out.b + 29, ans.b + 29, ans.n - 29);
    cache_free(c);

    /* Inserted from an upper-case query, read back in lower case. */
    c = cache_default();
    answer_a(&ans, &upper, 300, 300, 1);
    assert_memory_equal(ans.b + 12, "\3WWW\7EXAMPLE\3COM", 17);
    assert_int_equal(insert(c, &upper, &ans, 1000), 0);
    assert_true(hit(c, &lower, 1000, &out));
    assert_memory_equal(out.b + 12, "\3www\7example\3com", 17);
    assert_true(hit(c, &mixed, 1000, &out));
    assert_memory_equal(out.b + 12, "\3WwW\7ExAmPlE\3CoM", 17);
    cache_free(c);
}

/* The client's ID and RD bit; every other flag as stored. */
static void test_cache_id_and_rd_from_client(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client rd1, rd0;
    struct msg ans, out;
    client_query(&rd1, 0x0101, DNS_FLAG_RD, "example.com", DNS_TYPE_A, PLAIN);
    client_query(&rd0, 0xbeef, 0, "example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &rd1, 300, 300, 1);
    assert_int_equal(dns_get16(ans.b + 2), DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
    assert_int_equal(insert(c, &rd1, &ans, 1000), 0);
    assert_true(hit(c, &rd0, 1000, &out));
    assert_int_equal(dns_get16(out.b), 0xbeef);
    assert_int_equal(dns_get16(out.b + 2), DNS_FLAG_QR | DNS_FLAG_RA);
    assert_memory_equal(out.b + 4, ans.b + 4, ans.n - 4);
    cache_free(c);

    /* Stored from an RD=0 client, answered to an RD=1 client. */
    c = cache_default();
    answer_a(&ans, &rd0, 300, 300, 1);
    assert_int_equal(dns_get16(ans.b + 2), DNS_FLAG_QR | DNS_FLAG_RA);
    assert_int_equal(insert(c, &rd0, &ans, 1000), 0);
    assert_true(hit(c, &rd1, 1000, &out));
    assert_int_equal(dns_get16(out.b), 0x0101);
    assert_int_equal(dns_get16(out.b + 2), DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
    cache_free(c);
}

struct variant {
    uint16_t flags;
    int edns;
};

static const struct variant VARIANTS[] = {
    {DNS_FLAG_RD, PLAIN},
    {DNS_FLAG_RD, EDNS},
    {DNS_FLAG_RD, EDNS_DO},
    {DNS_FLAG_RD | DNS_FLAG_CD, PLAIN},
    {DNS_FLAG_RD | DNS_FLAG_CD, EDNS},
    {DNS_FLAG_RD | DNS_FLAG_CD, EDNS_DO},
    {DNS_FLAG_RD | DNS_FLAG_AD, PLAIN},
    {DNS_FLAG_RD | DNS_FLAG_AD, EDNS},
    {DNS_FLAG_RD | DNS_FLAG_AD | DNS_FLAG_CD, PLAIN},
};
#define NVARIANTS (sizeof(VARIANTS) / sizeof(VARIANTS[0]))

static void variant_query(struct client *cl, size_t i)
{
    client_query(cl, (uint16_t)(0x100 + i), VARIANTS[i].flags, "www.example.com", DNS_TYPE_A,
                 VARIANTS[i].edns);
}

/* An entry stored for one variant of the question never answers another. */
static void test_cache_variants_separate(void **state)
{
    (void)state;
    struct client cl;
    struct msg ans, out;
    /* The table holds distinct keys. */
    for (size_t i = 0; i < NVARIANTS; i++) {
        struct client a, b;
        variant_query(&a, i);
        for (size_t j = 0; j < i; j++) {
            variant_query(&b, j);
            assert_int_not_equal(dns_query_key_bits(&a.q), dns_query_key_bits(&b.q));
        }
    }
    for (size_t i = 0; i < NVARIANTS; i++) {
        struct cache *c = cache_default();
        variant_query(&cl, i);
        answer_a(&ans, &cl, 300, 300, 1);
        assert_int_equal(insert(c, &cl, &ans, 1000), 0);
        for (size_t j = 0; j < NVARIANTS; j++) {
            struct client other;
            variant_query(&other, j);
            if (hit(c, &other, 1000, &out) != (i == j))
                fail_msg("stored for variant %zu, looked up as %zu", i, j);
        }
        cache_free(c);
    }
    /* All of them side by side, each with its own address. */
    struct cache *c = cache_default();
    for (size_t i = 0; i < NVARIANTS; i++) {
        variant_query(&cl, i);
        answer_a(&ans, &cl, 300, 300, (uint8_t)(10 * i + 1));
        assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    }
    assert_int_equal(cache_stats(c)->entries, NVARIANTS);
    for (size_t i = 0; i < NVARIANTS; i++) {
        variant_query(&cl, i);
        assert_true(hit(c, &cl, 1000, &out));
        assert_int_equal(out.b[ttl1_off(&cl) + 4 + 2 + 3], 10 * i + 1);
        assert_int_equal((dns_get16(out.b + 10) != 0), VARIANTS[i].edns != PLAIN);
    }
    cache_free(c);
}

/* DO implies that the AD bit is wanted: DO with or without AD is the same key. */
static void test_cache_do_implies_ad(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client with_ad, without_ad;
    struct msg ans, out;
    client_query(&without_ad, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS_DO);
    client_query(&with_ad, 2, DNS_FLAG_RD | DNS_FLAG_AD, "www.example.com", DNS_TYPE_A, EDNS_DO);
    answer_a(&ans, &without_ad, 300, 300, 1);
    assert_int_equal(insert(c, &without_ad, &ans, 1000), 0);
    assert_true(hit(c, &with_ad, 1000, &out));
    cache_free(c);
}

/* A client without EDNS never gets an OPT record, whichever came first. */
static void test_cache_no_opt_without_edns(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client plain, edns;
    struct msg ans_plain, ans_edns, out;
    struct dns_answer a;
    client_query(&plain, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    client_query(&edns, 2, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    answer_a(&ans_edns, &edns, 300, 300, 1);
    assert_int_equal(insert(c, &edns, &ans_edns, 1000), 0);
    assert_false(hit(c, &plain, 1000, &out));

    answer_a(&ans_plain, &plain, 300, 300, 1);
    assert_int_equal(insert(c, &plain, &ans_plain, 1000), 0);
    assert_true(hit(c, &plain, 1000, &out));
    assert_int_equal(dns_get16(out.b + 10), 0);
    assert_int_equal(out.n, ans_plain.n);
    assert_int_equal(dns_answer_parse(out.b, out.n, &a), 0);
    assert_false(a.has_edns);

    assert_true(hit(c, &edns, 1000, &out));
    assert_int_equal(dns_answer_parse(out.b, out.n, &a), 0);
    assert_true(a.has_edns);
    cache_free(c);
}

/* TC=1 is not an answer to keep: the client will ask again over TCP. */
static void test_cache_truncated_not_cached(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 600);
    struct client cl;
    struct msg u, ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    /* An upstream's TC answer with records (some servers send what fitted). */
    up_begin(&u, &cl, DNS_FLAG_TC);
    rr_a(&u, AN, 12, 300, 1);
    up_end(&u, &cl);
    client_form(&ans, &u, &cl);
    assert_true(dns_get16(ans.b + 2) & DNS_FLAG_TC);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    /* One truncated by dns_answer_for_client for a small UDP limit. */
    client_query(&cl, 1, DNS_FLAG_RD, "big.example.com", DNS_TYPE_TXT, EDNS);
    up_begin(&u, &cl, 0);
    for (int i = 0; i < 4; i++)
        rr_txt(&u, AN, 12, 300, 255);
    up_end(&u, &cl);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    int n = dns_answer_for_client(u.b, &a, cl.m.b, &cl.q, 1232, 512, ans.b, sizeof(ans.b));
    assert_int_equal(n, 12 + 21 + 11);
    ans.n = (size_t)n;
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->inserts, 0);
    assert_null(lookup(c, &cl, 1000));
    cache_free(c);
}

/* SERVFAIL, REFUSED, FORMERR, NOTIMP: never cached, and an entry already there stays. */
static void test_cache_error_rcodes_not_cached(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 600);
    struct client cl;
    struct msg ans, good, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    static const uint16_t rcodes[] = {DNS_RCODE_SERVFAIL, DNS_RCODE_REFUSED, DNS_RCODE_FORMERR,
                                      DNS_RCODE_NOTIMP};
    for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
        answer_empty(&ans, &cl, rcodes[i]);
        assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
        assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
        /* Even with an SOA, which gives a lifetime to negative answers. */
        answer_negative(&ans, &cl, rcodes[i], 900, 300);
        assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
        assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    }
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->inserts, 0);

    answer_a(&good, &cl, 300, 300, 1);
    assert_int_equal(insert(c, &cl, &good, 1000), 0);
    answer_empty(&ans, &cl, DNS_RCODE_SERVFAIL);
    assert_int_equal(insert(c, &cl, &ans, 1010), -EINVAL);
    assert_true(hit(c, &cl, 1010, &out));
    assert_int_equal(DNS_RCODE(dns_get16(out.b + 2)), DNS_RCODE_NOERROR);
    assert_int_equal(dns_get16(out.b + 6), 2);
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 290);
    cache_free(c);
}

/* An answer whose question is not the key's is not stored. */
static void test_cache_question_mismatch_not_cached(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client www, other, aaaa, edns;
    struct msg ans;
    client_query(&www, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    client_query(&other, 1, DNS_FLAG_RD, "www.example.net", DNS_TYPE_A, PLAIN);
    client_query(&aaaa, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_AAAA, PLAIN);
    client_query(&edns, 1, DNS_FLAG_RD, "mail.example.com", DNS_TYPE_A, EDNS);
    struct cache_key k;
    cache_key_init(c, &k, www.m.b, &www.q);
    answer_a(&ans, &other, 300, 300, 1); /* same length, other name */
    assert_int_equal(cache_insert(c, &k, ans.b, ans.n, 1000), -EINVAL);
    answer_negative(&ans, &aaaa, DNS_RCODE_NOERROR, 900, 300); /* other type */
    assert_int_equal(cache_insert(c, &k, ans.b, ans.n, 1000), -EINVAL);
    answer_a(&ans, &edns, 300, 300, 1); /* other length */
    assert_int_equal(cache_insert(c, &k, ans.b, ans.n, 1000), -EINVAL);
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->inserts, 0);
    assert_null(lookup(c, &www, 1000));
    assert_null(lookup(c, &other, 1000));
    assert_null(lookup(c, &aaaa, 1000));
    cache_free(c);
}

/* Not an answer at all: -EBADMSG. */
static void test_cache_insert_garbage(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 600);
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 300, 300, 1);
    struct cache_key k;
    cache_key_init(c, &k, cl.m.b, &cl.q);
    /* The right question, the last record cut short. */
    assert_int_equal(cache_insert(c, &k, ans.b, ans.n - 1, 1000), -EBADMSG);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n - 1), -EBADMSG);
    /* A header alone. */
    assert_int_equal(cache_insert(c, &k, ans.b, 5, 1000), -EBADMSG);
    assert_int_equal(cache_lifetime(&p, ans.b, 5), -EBADMSG);
    assert_int_equal(cache_stats(c)->entries, 0);
    cache_free(c);
}

/* The longest name there is (255 bytes of wire, four labels): key, insert, hit in
 * another spelling. */
static void test_cache_longest_name(void **state)
{
    (void)state;
    char name[256], mixed[256];
    /* 63.63.63.61: 1+63 + 1+63 + 1+63 + 1+61 + 1 = 255 bytes of wire. */
    size_t n = 0;
    static const size_t labels[] = {63, 63, 63, 61};
    for (size_t i = 0; i < 4; i++) {
        if (i)
            name[n++] = '.';
        for (size_t j = 0; j < labels[i]; j++)
            name[n++] = (char)('a' + (j % 26));
    }
    name[n] = '\0';
    for (size_t i = 0; i < n; i++)
        mixed[i] = (i % 2 && name[i] != '.') ? (char)(name[i] - 'a' + 'A') : name[i];
    mixed[n] = '\0';
    struct cache *c = cache_default();
    struct client cl, other;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, name, DNS_TYPE_A, EDNS_DO);
    client_query(&other, 2, DNS_FLAG_RD, mixed, DNS_TYPE_A, EDNS_DO);
    assert_int_equal(cl.q.qname_len, 255);
    struct cache_key k, k2;
    cache_key_init(c, &k, cl.m.b, &cl.q);
    cache_key_init(c, &k2, other.m.b, &other.q);
    assert_int_equal(k.len, 259);
    assert_int_equal(k.bits, DNS_KEY_EDNS | DNS_KEY_DO | DNS_KEY_AD);
    assert_true(cache_key_equal(&k, &k2));
    answer_a(&ans, &cl, 300, 300, 1);
    assert_int_equal(cache_insert(c, &k, ans.b, ans.n, 1000), 0);
    assert_true(hit(c, &other, 1010, &out));
    assert_int_equal(out.n, ans.n);
    assert_memory_equal(out.b + 12, other.m.b + 12, 259);
    assert_int_equal(ttl_at(&out, ttl1_off(&other)), 290);
    cache_free(c);
}

/* An extended RCODE (BADVERS, 16: RCODE 0 in the header, 1 in the OPT record) is neither
 * NOERROR nor NXDOMAIN: not cached. */
static void test_cache_extended_rcode_not_cached(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct cache_params p = params_of(1 << 20, 0, 86400, 3600, 600);
    struct client cl;
    struct msg u, ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    up_begin(&u, &cl, 0);
    rr_a(&u, AN, 12, 300, 1);
    size_t opt = rr_opt(&u, false);
    u.b[opt + 5] = 1; /* the upper 8 bits of the RCODE */
    client_form(&ans, &u, &cl);
    assert_int_equal(DNS_RCODE(dns_get16(ans.b + 2)), 0);
    assert_int_equal(ans.b[ans.n - 11 + 5], 1);
    assert_int_equal(cache_lifetime(&p, ans.b, ans.n), -EINVAL);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL);
    assert_int_equal(cache_stats(c)->entries, 0);
    cache_free(c);
}

/* A new answer for a key replaces the entry. */
static void test_cache_replace(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 0);
    struct client cl;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 300, 300, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    answer_a(&ans, &cl, 60, 60, 50);
    assert_int_equal(insert(c, &cl, &ans, 1100), 0);
    assert_int_equal(cache_stats(c)->entries, 1);
    assert_int_equal(cache_stats(c)->inserts, 2);
    assert_true(hit(c, &cl, 1110, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), 50);
    assert_int_equal(out.b[ttl1_off(&cl) + 9], 50);
    assert_null(lookup(c, &cl, 1161));
    cache_free(c);
}

/* An answer of n A records for www.example.com (EDNS), inserted at 1000 and hit at 1100:
 * every one of its TTLs must read 200. */
static void check_records_aged(size_t n)
{
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 0);
    struct client cl;
    static struct msg u, ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, EDNS);
    up_begin(&u, &cl, 0);
    for (size_t i = 0; i < n; i++)
        rr_a(&u, AN, 12, 300, (uint8_t)i);
    up_end(&u, &cl);
    client_form(&ans, &u, &cl);
    assert_true(ans.n <= DNS_MAX_MSG);
    int rc = insert(c, &cl, &ans, 1000);
    if (rc != 0) {
        cache_free(c);
        fail_msg("%zu records (%zu bytes) in a 1 MiB cache: insert %d", n, ans.n, rc);
    }
    assert_true(hit(c, &cl, 1100, &out));
    assert_int_equal(out.n, ans.n);
    for (size_t i = 0; i < n; i++) {
        size_t off = ttl1_off(&cl) + 16 * i;
        if (ttl_at(&out, off) != 200)
            fail_msg("record %zu: TTL %u", i, ttl_at(&out, off));
    }
    cache_free(c);
}

/* A thousand records: every TTL is found and aged. */
static void test_cache_many_records_all_aged(void **state)
{
    (void)state;
    check_records_aged(1000);
}

/* As many records as a 64 KiB message holds (4,000 A records, 64,044 bytes): within a
 * 1 MiB budget, so it is cached (-E2BIG is only for the budget), and every TTL aged. */
static void test_cache_largest_message_cached(void **state)
{
    (void)state;
    check_records_aged(4000);
}

/* 10,000 unique names through a 64 KiB cache: never over budget, LRU victims counted. */
static void test_cache_budget_flood(void **state)
{
    (void)state;
    enum { BUDGET = 64 * 1024, N = 10000 };
    struct cache *c = cache_make(BUDGET, 0, 86400, 3600, 600);
    assert_true(cache_stats(c)->bytes <= BUDGET);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(insert_name(c, i, 1000), 0);
        if (cache_stats(c)->bytes > BUDGET)
            fail_msg("after insert %u: %llu bytes", i, (unsigned long long)cache_stats(c)->bytes);
    }
    const struct cache_stats *st = cache_stats(c);
    assert_int_equal(st->inserts, N);
    assert_true(st->entries > 0);
    assert_true(st->entries < N);
    assert_int_equal(st->entries + st->evictions, N);
    assert_int_equal(st->expired, 0);
    assert_true(has_name(c, N - 1));
    assert_false(has_name(c, 0));
    cache_free(c);
}

/* Budgets from 16 KiB to 264 KiB in steps of 4 KiB, each flooded past full: the index
 * grows with the entries at some of them, and bytes stay within every one. */
static void test_cache_budget_sweep(void **state)
{
    (void)state;
    for (uint64_t budget = 16 * 1024; budget <= 264 * 1024; budget += 4 * 1024) {
        struct cache *c = cache_make(budget, 0, 86400, 3600, 600);
        unsigned n = (unsigned)(budget / 40);
        for (unsigned i = 0; i < n; i++) {
            int rc = insert_name(c, i, 1000);
            uint64_t bytes = cache_stats(c)->bytes;
            if (rc != 0 || bytes > budget) {
                cache_free(c);
                fail_msg("budget %llu, insert %u: rc %d, %llu bytes", (unsigned long long)budget, i,
                         rc, (unsigned long long)bytes);
            }
        }
        assert_true(cache_stats(c)->evictions > 0);
        assert_true(has_name(c, n - 1));
        cache_free(c);
    }
}

/* How many flood entries a cache of budget holds before its first eviction. */
static unsigned capacity_before_eviction(uint64_t budget)
{
    struct cache *c = cache_make(budget, 0, 86400, 3600, 600);
    unsigned i = 0;
    while (cache_stats(c)->evictions == 0) {
        assert_int_equal(insert_name(c, i, 1000), 0);
        i++;
        assert_true(i < 100000);
    }
    cache_free(c);
    return i - 1;
}

/* Entries looked up recently survive; the least recently used go first. */
static void test_cache_lru_order(void **state)
{
    (void)state;
    enum { BUDGET = 16 * 1024 };
    unsigned cap = capacity_before_eviction(BUDGET);
    assert_true(cap >= 8);
    struct cache *c = cache_make(BUDGET, 0, 86400, 3600, 600);
    for (unsigned i = 0; i < cap; i++)
        assert_int_equal(insert_name(c, i, 1000), 0);
    assert_int_equal(cache_stats(c)->evictions, 0);
    assert_int_equal(cache_stats(c)->entries, cap);
    /* Use the first quarter, then add a quarter of new names. */
    unsigned quarter = cap / 4;
    for (unsigned i = 0; i < quarter; i++)
        assert_true(use_name(c, i, 1001));
    for (unsigned i = 0; i < quarter; i++)
        assert_int_equal(insert_name(c, cap + i, 1002), 0);
    uint64_t evicted = cache_stats(c)->evictions;
    assert_true(evicted >= quarter);
    assert_true(evicted < cap - quarter);
    assert_int_equal(cache_stats(c)->entries, cap + quarter - evicted);
    /* The victims are exactly the oldest of those not used: quarter .. quarter+evicted-1. */
    for (unsigned i = 0; i < cap + quarter; i++) {
        bool victim = i >= quarter && i < quarter + evicted;
        if (has_name(c, i) == victim)
            fail_msg("name %u: %s (quarter %u, evicted %llu)", i,
                     victim ? "kept, should be evicted" : "evicted, should be kept", quarter,
                     (unsigned long long)evicted);
    }
    cache_free(c);
}

/* An answer larger than the whole budget is not kept, and evicts nothing. */
static void test_cache_entry_over_budget(void **state)
{
    (void)state;
    enum { BUDGET = 4096 };
    struct cache *c = cache_make(BUDGET, 0, 86400, 3600, 600);
    struct client small, big;
    struct msg ans, u;
    client_query(&small, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &small, 300, 300, 1);
    assert_int_equal(insert(c, &small, &ans, 1000), 0);
    client_query(&big, 1, DNS_FLAG_RD, "big.example.com", DNS_TYPE_TXT, PLAIN);
    up_begin(&u, &big, 0);
    for (int i = 0; i < 20; i++)
        rr_txt(&u, AN, 12, 300, 255);
    up_end(&u, &big);
    client_form(&ans, &u, &big);
    assert_true(ans.n > BUDGET);
    assert_int_equal(insert(c, &big, &ans, 1000), -E2BIG);
    assert_true(cache_stats(c)->bytes <= BUDGET);
    assert_int_equal(cache_stats(c)->entries, 1);
    assert_int_equal(cache_stats(c)->inserts, 1);
    assert_null(lookup(c, &big, 1000));
    assert_non_null(lookup(c, &small, 1000));
    cache_free(c);
}

/* Budgets too small for anything, or for the index itself, are still never exceeded. */
static void test_cache_tiny_budgets(void **state)
{
    (void)state;
    static const uint64_t budgets[] = {1, 64, 256, 1024};
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 300, 300, 1);
    for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
        struct cache *c = cache_make(budgets[i], 0, 86400, 3600, 600);
        assert_true(cache_stats(c)->bytes <= budgets[i]);
        int rc = insert(c, &cl, &ans, 1000);
        assert_true(rc == 0 || rc == -E2BIG);
        if (cache_stats(c)->bytes > budgets[i])
            fail_msg("budget %llu: %llu bytes", (unsigned long long)budgets[i],
                     (unsigned long long)cache_stats(c)->bytes);
        assert_int_equal(cache_stats(c)->entries, rc == 0 ? 1 : 0);
        cache_free(c);
    }
}

/* Size 0: nothing is cached. */
static void test_cache_size_zero(void **state)
{
    (void)state;
    struct cache *c = cache_make(0, 0, 86400, 3600, 600);
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 300, 300, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), -E2BIG);
    assert_null(lookup(c, &cl, 1000));
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->inserts, 0);
    assert_int_equal(cache_stats(c)->bytes, 0);
    cache_free(c);
}

/* cache_set_params: a smaller budget evicts at once, least recently used first; size 0
 * empties the cache; entries keep their lifetimes. */
static void test_cache_set_params_shrink(void **state)
{
    (void)state;
    enum { BIG = 64 * 1024, SMALL = 16 * 1024, N = 2000 };
    struct cache *c = cache_make(BIG, 0, 86400, 3600, 600);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(insert_name(c, i, 1000), 0);
    uint64_t entries = cache_stats(c)->entries;
    uint64_t evictions = cache_stats(c)->evictions;
    assert_true(evictions > 0); /* the cache is full */
    assert_true(cache_stats(c)->bytes > SMALL);

    struct cache_params p = params_of(SMALL, 0, 60, 3600, 600);
    cache_set_params(c, &p);
    const struct cache_stats *st = cache_stats(c);
    assert_true(st->bytes <= SMALL);
    assert_true(st->entries > 0);
    assert_true(st->entries < entries);
    assert_int_equal(st->evictions, evictions + (entries - st->entries));
    /* The survivors are the most recent names. */
    uint64_t kept = st->entries;
    for (unsigned i = N - 200; i < N; i++) {
        bool want = i >= N - kept;
        assert_int_equal(has_name(c, i), want);
    }
    /* max_ttl is now 60, but the entries keep their 300 s. */
    char name[32];
    struct client cl;
    flood_name(name, sizeof(name), N - 1);
    client_query(&cl, 1, DNS_FLAG_RD, name, DNS_TYPE_A, PLAIN);
    struct cache_entry *e = lookup(c, &cl, 1100);
    assert_non_null(e);
    assert_int_equal(cache_entry_ttl(e, 1100), 200);

    p.size = 0;
    cache_set_params(c, &p);
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->bytes, 0);
    assert_null(lookup(c, &cl, 1100));
    assert_int_equal(insert_name(c, 1, 1100), -E2BIG);
    cache_free(c);
}

/* The entry is longer than the limit: header, question and OPT, TC=1. */
static void test_cache_answer_truncated(void **state)
{
    (void)state;
    struct cache *c = cache_default();
    struct client edns, plain;
    struct msg u, ans, out;
    client_query(&edns, 0x0606, DNS_FLAG_RD, "big.example.com", DNS_TYPE_TXT, EDNS);
    client_query(&plain, 0x0607, DNS_FLAG_RD, "big.example.com", DNS_TYPE_TXT, PLAIN);
    up_begin(&u, &edns, 0);
    for (int i = 0; i < 12; i++)
        rr_txt(&u, AN, 12, 60, 255);
    up_end(&u, &edns);
    client_form(&ans, &u, &edns);
    assert_true(ans.n > 3000);
    assert_int_equal(insert(c, &edns, &ans, 1000), 0);
    client_form(&ans, &u, &plain);
    assert_int_equal(insert(c, &plain, &ans, 1000), 0);
    size_t whole_edns = ans.n + 11;

    struct cache_entry *e = lookup(c, &edns, 1010);
    assert_non_null(e);
    int n = cache_answer(c, e, edns.m.b, &edns.q, 1010, dns_udp_limit(&edns.q, 1232), out.b,
                         sizeof(out.b));
    assert_true(whole_edns > 1232);
    assert_int_equal(n, 12 + 21 + 11);
    static const uint8_t hdr[] = {0x06, 0x06, 0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(out.b, hdr, sizeof(hdr));
    assert_memory_equal(out.b + 12, edns.m.b + 12, 21);
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out.b + 33, opt, sizeof(opt));

    /* Exactly the limit: whole; one byte less: truncated. */
    n = cache_answer(c, e, edns.m.b, &edns.q, 1010, whole_edns, out.b, sizeof(out.b));
    assert_int_equal(n, whole_edns);
    assert_false(dns_get16(out.b + 2) & DNS_FLAG_TC);
    assert_int_equal(dns_get16(out.b + 6), 12);
    assert_int_equal(ttl_at(&out, 33 + 6), 50);
    n = cache_answer(c, e, edns.m.b, &edns.q, 1010, whole_edns - 1, out.b, sizeof(out.b));
    assert_int_equal(n, 44);
    assert_true(dns_get16(out.b + 2) & DNS_FLAG_TC);
    /* A buffer too small for the whole answer but not for the truncated one. */
    n = cache_answer(c, e, edns.m.b, &edns.q, 1010, DNS_MAX_MSG, out.b, 100);
    assert_int_equal(n, 44);
    assert_true(dns_get16(out.b + 2) & DNS_FLAG_TC);
    assert_int_equal(dns_get16(out.b + 6), 0);
    /* Too small for even that. */
    n = cache_answer(c, e, edns.m.b, &edns.q, 1010, 512, out.b, 43);
    assert_int_equal(n, -ENOSPC);

    /* Without EDNS: 512 bytes, no OPT. */
    e = lookup(c, &plain, 1010);
    assert_non_null(e);
    n = cache_answer(c, e, plain.m.b, &plain.q, 1010, dns_udp_limit(&plain.q, 1232), out.b,
                     sizeof(out.b));
    assert_int_equal(n, 33);
    static const uint8_t hdr_plain[] = {0x06, 0x07, 0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out.b, hdr_plain, sizeof(hdr_plain));
    assert_memory_equal(out.b + 12, plain.m.b + 12, 21);
    cache_free(c);
}

/* Which ages of an entry of lifetime `lifetime` grant a prefetch, probed in order. */
static void check_prefetch(uint32_t lifetime, const uint32_t *ages, const bool *want, size_t n)
{
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 600);
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, lifetime, lifetime, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    uint64_t granted = 0;
    for (size_t i = 0; i < n; i++) {
        struct cache_entry *e = lookup(c, &cl, 1000 + ages[i]);
        assert_non_null(e);
        bool got = cache_entry_prefetch(c, e, 1000 + ages[i]);
        if (got != want[i])
            fail_msg("lifetime %u, age %u: prefetch %d, want %d", lifetime, ages[i], got, want[i]);
        granted += got;
    }
    assert_int_equal(cache_stats(c)->prefetches, granted);
    cache_free(c);
}

static void test_cache_prefetch(void **state)
{
    (void)state;
    /* 100 s: not before the last 10 s, then once. */
    static const uint32_t ages100[] = {0, 50, 85, 89, 91, 92, 95, 99, 100, 150};
    static const bool want100[] = {false, false, false, false, true,
                                   false, false, false, false, false};
    check_prefetch(100, ages100, want100, 10);
    /* Late first hit: granted then. */
    static const uint32_t ages100b[] = {99, 99};
    static const bool want100b[] = {true, false};
    check_prefetch(100, ages100b, want100b, 2);
    /* 10 s: the last second. */
    static const uint32_t ages10[] = {0, 5, 8, 9, 9, 10};
    static const bool want10[] = {false, false, false, true, false, false};
    check_prefetch(10, ages10, want10, 6);
    /* First asked for when already stale: never. */
    static const uint32_t ages_stale[] = {100, 101, 300};
    static const bool want_stale[3] = {false};
    check_prefetch(100, ages_stale, want_stale, 3);
    check_prefetch(10, ages_stale, want_stale, 3);
    /* 9 s: never. */
    static const uint32_t ages9[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    static const bool want9[11] = {false};
    check_prefetch(9, ages9, want9, 11);
}

/* A fresh entry (a refresh) may be prefetched again; the clamped lifetime counts. */
static void test_cache_prefetch_after_refresh_and_clamp(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 20, 86400, 3600, 600);
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 5, 5, 1); /* raised to 20 s */
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    struct cache_entry *e = lookup(c, &cl, 1019);
    assert_non_null(e);
    assert_true(cache_entry_prefetch(c, e, 1019));
    assert_false(cache_entry_prefetch(c, e, 1019));
    /* The refreshed answer: a new entry. */
    assert_int_equal(insert(c, &cl, &ans, 1019), 0);
    e = lookup(c, &cl, 1030);
    assert_non_null(e);
    assert_false(cache_entry_prefetch(c, e, 1030));
    e = lookup(c, &cl, 1038);
    assert_non_null(e);
    assert_true(cache_entry_prefetch(c, e, 1038));
    /* A stale entry is not prefetched. */
    e = lookup(c, &cl, 1045);
    assert_non_null(e);
    assert_false(cache_entry_prefetch(c, e, 1045));
    assert_int_equal(cache_stats(c)->prefetches, 2);
    cache_free(c);
}

/* The failure recheck timer (RFC 8767 §4): set on a stale entry, running until `until`. */
static void test_cache_recheck_timer(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 600);
    struct client cl;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 60, 60, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    struct cache_entry *e = lookup(c, &cl, 1070);
    assert_non_null(e);
    assert_false(cache_entry_recheck(e, 1070));
    cache_entry_set_recheck(e, 1100);
    assert_true(cache_entry_recheck(e, 1070));
    e = lookup(c, &cl, 1099);
    assert_non_null(e);
    assert_true(cache_entry_recheck(e, 1099));
    assert_false(cache_entry_recheck(e, 1100));
    assert_false(cache_entry_recheck(e, 1200));
    /* Still answered stale meanwhile. */
    assert_true(hit(c, &cl, 1099, &out));
    assert_int_equal(ttl_at(&out, ttl1_off(&cl)), CACHE_STALE_TTL);
    /* A new answer is a new entry, without the timer. */
    assert_int_equal(insert(c, &cl, &ans, 1099), 0);
    e = lookup(c, &cl, 1099);
    assert_non_null(e);
    assert_false(cache_entry_recheck(e, 1099));
    cache_free(c);
}

/* cache_peek: finds an entry without counting it, moving it or dropping it. */
static void test_cache_peek(void **state)
{
    (void)state;
    enum { BUDGET = 16 * 1024 };
    unsigned cap = capacity_before_eviction(BUDGET);
    struct cache *c = cache_make(BUDGET, 0, 86400, 3600, 600);
    for (unsigned i = 0; i < cap; i++)
        assert_int_equal(insert_name(c, i, 1000), 0);
    /* Peeking at the oldest does not save it from eviction. */
    assert_true(has_name(c, 0));
    assert_int_equal(cache_stats(c)->hits, 0);
    assert_int_equal(cache_stats(c)->misses, 0);
    assert_int_equal(insert_name(c, cap, 1000), 0);
    assert_true(cache_stats(c)->evictions >= 1);
    assert_false(has_name(c, 0));
    assert_true(has_name(c, cap));
    assert_int_equal(cache_stats(c)->hits, 0);
    assert_int_equal(cache_stats(c)->misses, 0);
    cache_free(c);

    /* Past the stale window, a peek drops nothing; the next lookup does. */
    c = cache_make(1 << 20, 0, 86400, 3600, 10);
    struct client cl;
    struct msg ans;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    answer_a(&ans, &cl, 60, 60, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    struct cache_key k;
    cache_key_init(c, &k, cl.m.b, &cl.q);
    struct cache_entry *e = cache_peek(c, &k);
    assert_non_null(e);
    assert_int_equal(cache_entry_ttl(e, 1010), 50);
    (void)cache_peek(c, &k);
    assert_int_equal(cache_stats(c)->entries, 1);
    assert_int_equal(cache_stats(c)->expired, 0);
    assert_null(cache_lookup(c, &k, 2000));
    assert_int_equal(cache_stats(c)->entries, 0);
    assert_int_equal(cache_stats(c)->expired, 1);
    assert_null(cache_peek(c, &k));
    assert_int_equal(cache_stats(c)->hits, 0);
    assert_int_equal(cache_stats(c)->misses, 1);
    cache_free(c);
}

/* The counters, step by step. */
static void test_cache_stats_counters(void **state)
{
    (void)state;
    struct cache *c = cache_make(1 << 20, 0, 86400, 3600, 100);
    const struct cache_stats *st = cache_stats(c);
    struct client cl, nx;
    struct msg ans, out;
    client_query(&cl, 1, DNS_FLAG_RD, "www.example.com", DNS_TYPE_A, PLAIN);
    client_query(&nx, 1, DNS_FLAG_RD, "nope.example.com", DNS_TYPE_A, PLAIN);
    assert_int_equal(st->hits, 0);
    assert_int_equal(st->entries, 0);

    assert_null(lookup(c, &cl, 1000)); /* miss */
    answer_a(&ans, &cl, 60, 60, 1);
    assert_int_equal(insert(c, &cl, &ans, 1000), 0);
    uint64_t bytes1 = cache_stats(c)->bytes;
    assert_true(bytes1 >= ans.n);
    answer_negative(&ans, &nx, DNS_RCODE_NXDOMAIN, 30, 30);
    assert_int_equal(insert(c, &nx, &ans, 1000), 0);
    assert_true(cache_stats(c)->bytes > bytes1);
    answer_empty(&ans, &cl, DNS_RCODE_SERVFAIL);
    assert_int_equal(insert(c, &cl, &ans, 1000), -EINVAL); /* not counted */
    assert_true(hit(c, &cl, 1010, &out));                  /* hit */
    assert_true(hit(c, &nx, 1010, &out));                  /* hit */
    assert_true(hit(c, &nx, 1040, &out));                  /* stale: miss, stale answer */
    assert_null(lookup(c, &nx, 1131));                     /* expired: miss */
    st = cache_stats(c);
    assert_int_equal(st->hits, 2);
    assert_int_equal(st->misses, 3);
    assert_int_equal(st->stale, 1);
    assert_int_equal(st->inserts, 2);
    assert_int_equal(st->entries, 1);
    assert_int_equal(st->expired, 1);
    assert_int_equal(st->evictions, 0);
    assert_int_equal(st->prefetches, 0);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttls_a_compressed),
        cmocka_unit_test(test_ttls_all_sections_skip_opt),
        cmocka_unit_test(test_ttls_uncompressed_owner),
        cmocka_unit_test(test_ttls_client_form),
        cmocka_unit_test(test_ttls_nxdomain_soa),
        cmocka_unit_test(test_ttls_soa_ttl_below_minimum),
        cmocka_unit_test(test_ttls_nodata),
        cmocka_unit_test(test_ttls_qtype_outside_answer_is_nodata),
        cmocka_unit_test(test_ttls_cname_chain_without_type_is_nodata),
        cmocka_unit_test(test_ttls_cname_chain_with_type_positive),
        cmocka_unit_test(test_ttls_cname_query_positive),
        cmocka_unit_test(test_ttls_any),
        cmocka_unit_test(test_ttls_nxdomain_after_cname_negative),
        cmocka_unit_test(test_ttls_soa_in_answer_section),
        cmocka_unit_test(test_ttls_first_soa_counts),
        cmocka_unit_test(test_ttls_no_records),
        cmocka_unit_test(test_ttls_servfail_not_negative),
        cmocka_unit_test(test_ttls_more_than_cap),
        cmocka_unit_test(test_ttls_garbage_ebadmsg),
        cmocka_unit_test(test_ttls_trailing_bytes_ebadmsg),
        cmocka_unit_test(test_ttls_mutations_safe),
        cmocka_unit_test(test_cache_key),
        cmocka_unit_test(test_cache_hit_exact_bytes),
        cmocka_unit_test(test_cache_miss_unknown),
        cmocka_unit_test(test_cache_ttl_aging),
        cmocka_unit_test(test_cache_expiry_stale),
        cmocka_unit_test(test_cache_no_stale),
        cmocka_unit_test(test_cache_ttl_clamps),
        cmocka_unit_test(test_cache_ttl_zero),
        cmocka_unit_test(test_cache_negative_lifetime),
        cmocka_unit_test(test_cache_negative_entry),
        cmocka_unit_test(test_cache_cname_nodata_entry),
        cmocka_unit_test(test_cache_negative_without_soa_not_cached),
        cmocka_unit_test(test_cache_nodata_nxdomain_apart),
        cmocka_unit_test(test_cache_case_preserved),
        cmocka_unit_test(test_cache_id_and_rd_from_client),
        cmocka_unit_test(test_cache_variants_separate),
        cmocka_unit_test(test_cache_do_implies_ad),
        cmocka_unit_test(test_cache_no_opt_without_edns),
        cmocka_unit_test(test_cache_truncated_not_cached),
        cmocka_unit_test(test_cache_error_rcodes_not_cached),
        cmocka_unit_test(test_cache_question_mismatch_not_cached),
        cmocka_unit_test(test_cache_insert_garbage),
        cmocka_unit_test(test_cache_longest_name),
        cmocka_unit_test(test_cache_extended_rcode_not_cached),
        cmocka_unit_test(test_cache_replace),
        cmocka_unit_test(test_cache_many_records_all_aged),
        cmocka_unit_test(test_cache_largest_message_cached),
        cmocka_unit_test(test_cache_budget_flood),
        cmocka_unit_test(test_cache_budget_sweep),
        cmocka_unit_test(test_cache_lru_order),
        cmocka_unit_test(test_cache_entry_over_budget),
        cmocka_unit_test(test_cache_tiny_budgets),
        cmocka_unit_test(test_cache_size_zero),
        cmocka_unit_test(test_cache_set_params_shrink),
        cmocka_unit_test(test_cache_answer_truncated),
        cmocka_unit_test(test_cache_prefetch),
        cmocka_unit_test(test_cache_prefetch_after_refresh_and_clamp),
        cmocka_unit_test(test_cache_recheck_timer),
        cmocka_unit_test(test_cache_peek),
        cmocka_unit_test(test_cache_stats_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
