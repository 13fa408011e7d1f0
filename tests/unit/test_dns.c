/* Unit tests for the DNS wire module: the query parser and every fault it must turn into
 * an RCODE, the error answers byte for byte, the query sent upstream, the answer parser,
 * question matching, the answer a client receives (ID, spelling, OPT, truncation) and
 * names written for logs. Messages are built by hand with the small writer below, so that
 * each test shows the bytes it feeds in. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/dns.h"

/* A message under construction. */
struct pkt {
    uint8_t b[8192];
    size_t n;
};

static void put8(struct pkt *p, uint8_t v)
{
    assert_true(p->n < sizeof(p->b));
    p->b[p->n++] = v;
}

static void put16(struct pkt *p, uint16_t v)
{
    put8(p, (uint8_t)(v >> 8));
    put8(p, (uint8_t)v);
}

static void put32(struct pkt *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p, (uint16_t)v);
}

static void put_bytes(struct pkt *p, const void *d, size_t n)
{
    assert_true(n <= sizeof(p->b) - p->n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void put_hdr(struct pkt *p, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
                    uint16_t ns, uint16_t ar)
{
    p->n = 0;
    put16(p, id);
    put16(p, flags);
    put16(p, qd);
    put16(p, an);
    put16(p, ns);
    put16(p, ar);
}

/* Labels of a dotted name, without the terminating zero: "www.example.com". */
static void put_labels(struct pkt *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        put8(p, (uint8_t)n);
        put_bytes(p, name, n);
        name += n;
        if (*name == '.')
            name++;
    }
}

/* A whole uncompressed name; "" is the root. */
static void put_name(struct pkt *p, const char *name)
{
    put_labels(p, name);
    put8(p, 0);
}

static void put_ptr(struct pkt *p, uint16_t off)
{
    put16(p, (uint16_t)(0xc000 | off));
}

static void put_question(struct pkt *p, const char *name, uint16_t type, uint16_t cls)
{
    put_name(p, name);
    put16(p, type);
    put16(p, cls);
}

/* TYPE, CLASS, TTL and RDLENGTH of a record whose owner was just written. */
static void put_rr_fixed(struct pkt *p, uint16_t type, uint16_t cls, uint32_t ttl, uint16_t rdlen)
{
    put16(p, type);
    put16(p, cls);
    put32(p, ttl);
    put16(p, rdlen);
}

/* An OPT record; rdlen bytes of options are to follow. */
static void put_opt(struct pkt *p, uint16_t udp, uint8_t ext, uint8_t version, bool do_bit,
                    uint16_t rdlen)
{
    put8(p, 0);
    put_rr_fixed(p, DNS_TYPE_OPT, udp,
                 ((uint32_t)ext << 24) | ((uint32_t)version << 16) | (do_bit ? 0x8000u : 0), rdlen);
}

/* An A record whose owner is a pointer. */
static void put_a_ptr(struct pkt *p, uint16_t owner, uint32_t ttl, const uint8_t addr[4])
{
    put_ptr(p, owner);
    put_rr_fixed(p, DNS_TYPE_A, 1, ttl, 4);
    put_bytes(p, addr, 4);
}

static const uint8_t ADDR1[4] = {192, 0, 2, 1};
static const uint8_t ADDR2[4] = {192, 0, 2, 2};

/* "example.com" A IN query, RD, without EDNS: 29 bytes. */
static void query_plain(struct pkt *p, uint16_t id, const char *name)
{
    put_hdr(p, id, DNS_FLAG_RD, 1, 0, 0, 0);
    put_question(p, name, DNS_TYPE_A, 1);
}

/* The same with an OPT record. */
static void query_edns(struct pkt *p, uint16_t id, const char *name, uint16_t udp, bool do_bit)
{
    put_hdr(p, id, DNS_FLAG_RD, 1, 0, 0, 1);
    put_question(p, name, DNS_TYPE_A, 1);
    put_opt(p, udp, 0, 0, do_bit, 0);
}

static int parse(const struct pkt *p, struct dns_query *q)
{
    return dns_query_parse(p->b, p->n, q);
}

/* A name of exactly wire bytes (uncompressed, at least 2), made of labels of 63 and one
 * shorter label. */
static void put_long_name(struct pkt *p, size_t wire)
{
    size_t left = wire - 1;
    char label[64];
    memset(label, 'a', sizeof(label));
    while (left > 0) {
        size_t n = left - 1 > DNS_MAX_LABEL ? DNS_MAX_LABEL : left - 1;
        put8(p, (uint8_t)n);
        put_bytes(p, label, n);
        left -= n + 1;
    }
    put8(p, 0);
}

/* ---- dns_query_parse: valid queries ---- */

static void test_query_a_without_edns(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 0x1234, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(q.id, 0x1234);
    assert_int_equal(q.flags, DNS_FLAG_RD);
    assert_int_equal(q.qname_len, 13);
    assert_int_equal(q.qtype, DNS_TYPE_A);
    assert_int_equal(q.qclass, 1);
    assert_int_equal(q.question_end, 29);
    assert_false(q.has_edns);
    assert_false(q.do_bit);
    assert_int_equal(q.udp_size, 512);
}

static void test_query_aaaa_with_edns(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 7, DNS_FLAG_RD | DNS_FLAG_AD, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_AAAA, 1);
    put_opt(&p, 1232, 0, 0, true, 0);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(q.qtype, DNS_TYPE_AAAA);
    assert_true(q.has_edns);
    assert_true(q.do_bit);
    assert_int_equal(q.edns_version, 0);
    assert_int_equal(q.udp_size, 1232);
    assert_int_equal(q.question_end, 29);
}

static void test_query_edns_without_do(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 7, "example.com", 4096, false);
    assert_int_equal(parse(&p, &q), 0);
    assert_true(q.has_edns);
    assert_false(q.do_bit);
    assert_int_equal(q.udp_size, 4096);
}

static void test_query_udp_size_below_512_is_512(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 7, "example.com", 100, false);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(q.udp_size, 512);
}

static void test_query_with_options_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    static const uint8_t ecs[] = {0, 1, 24, 0, 198, 51, 100};
    put_hdr(&p, 7, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, (uint16_t)(4 + sizeof(ecs) + 4 + 5));
    put16(&p, DNS_OPT_ECS);
    put16(&p, sizeof(ecs));
    put_bytes(&p, ecs, sizeof(ecs));
    put16(&p, DNS_OPT_PADDING);
    put16(&p, 5);
    put_bytes(&p, "\0\0\0\0\0", 5);
    assert_int_equal(parse(&p, &q), 0);
    assert_true(q.has_edns);
}

static void test_query_record_with_compressed_owner_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* A query may carry records (a prerequisite-free NOTIFY-like query, a cookie...); a
     * pointer back to the question name is fine. */
    put_hdr(&p, 7, 0, 1, 1, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_a_ptr(&p, 12, 300, ADDR1);
    assert_int_equal(parse(&p, &q), 0);
}

static void test_query_label_63_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    char name[64 + 4];
    memset(name, 'x', 63);
    memcpy(name + 63, ".com", 5);
    query_plain(&p, 1, name);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(q.qname_len, 1 + 63 + 4 + 1);
}

static void test_query_name_255_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_long_name(&p, 255);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(q.qname_len, 255);
}

static void test_query_root_name_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_question(&p, "", DNS_TYPE_NS, 1);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(q.qname_len, 1);
    assert_int_equal(q.question_end, 17);
}

/* ---- dns_query_parse: dropped ---- */

static void test_query_empty_dropped(void **state)
{
    (void)state;
    struct dns_query q;
    static const uint8_t b[1] = {0};
    assert_int_equal(dns_query_parse(b, 0, &q), -1);
}

static void test_query_one_byte_dropped(void **state)
{
    (void)state;
    struct dns_query q;
    static const uint8_t b[1] = {0x12};
    assert_int_equal(dns_query_parse(b, 1, &q), -1);
}

static void test_query_eleven_bytes_dropped(void **state)
{
    (void)state;
    struct dns_query q;
    struct pkt p;
    query_plain(&p, 1, "example.com");
    assert_int_equal(dns_query_parse(p.b, 11, &q), -1);
}

static void test_query_qr_set_dropped(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, DNS_FLAG_QR | DNS_FLAG_RD, 1, 0, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    assert_int_equal(parse(&p, &q), -1);
}

/* ---- dns_query_parse: NOTIMP ---- */

static void check_notimp(unsigned opcode)
{
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0x4242, (uint16_t)(opcode << 11), 1, 0, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_SOA, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_NOTIMP);
    assert_int_equal(q.id, 0x4242);
    assert_int_equal(DNS_OPCODE(q.flags), opcode);
    assert_int_equal(q.question_end, 29);
    assert_int_equal(q.qtype, DNS_TYPE_SOA);
}

static void test_query_opcode_iquery_notimp(void **state)
{
    (void)state;
    check_notimp(1);
}

static void test_query_opcode_notify_notimp(void **state)
{
    (void)state;
    check_notimp(4);
}

static void test_query_opcode_update_notimp(void **state)
{
    (void)state;
    check_notimp(5);
}

static void test_query_notimp_keeps_edns(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 9, 4 << 11, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_SOA, 1);
    put_opt(&p, 1400, 0, 0, true, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_NOTIMP);
    assert_true(q.has_edns);
    assert_true(q.do_bit);
    assert_int_equal(q.udp_size, 1400);
}

static void test_query_notimp_with_bad_question(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 9, 4 << 11, 1, 0, 0, 0);
    put_labels(&p, "example"); /* no terminating zero */
    assert_int_equal(parse(&p, &q), DNS_RCODE_NOTIMP);
    assert_int_equal(q.question_end, 0);
}

/* ---- dns_query_parse: FORMERR ---- */

static void test_query_qdcount_0_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0x5555, DNS_FLAG_RD, 0, 0, 0, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.id, 0x5555);
    assert_int_equal(q.flags, DNS_FLAG_RD);
    assert_int_equal(q.question_end, 0);
}

static void test_query_qdcount_2_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 2, 0, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_question(&p, "example.net", DNS_TYPE_A, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.question_end, 0);
}

static void test_query_truncated_qname_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put8(&p, 7);
    put_bytes(&p, "exam", 4);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.question_end, 0);
}

static void test_query_missing_qname_end_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_labels(&p, "example.com");
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_truncated_qtype_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_name(&p, "example.com");
    put8(&p, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.question_end, 0);
}

static void test_query_truncated_qclass_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_name(&p, "example.com");
    put16(&p, DNS_TYPE_A);
    put8(&p, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.question_end, 0);
}

static void test_query_compressed_qname_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* "www" then a pointer to the header: the only thing a QNAME pointer could reach. */
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_labels(&p, "www");
    put_ptr(&p, 2);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.question_end, 0);
}

static void test_query_qname_pointer_to_itself_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_ptr(&p, 12);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

/* A query with one additional record whose owner is given by the caller's bytes. */
static void query_with_owner(struct pkt *p, const uint8_t *owner, size_t n)
{
    put_hdr(p, 1, 0, 1, 0, 0, 1);
    put_question(p, "example.com", DNS_TYPE_A, 1);
    put_bytes(p, owner, n);
    put_rr_fixed(p, DNS_TYPE_A, 1, 60, 4);
    put_bytes(p, ADDR1, 4);
}

static void test_query_owner_pointer_loop_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* The record starts at 29: a pointer to itself. */
    static const uint8_t owner[] = {0xc0, 29};
    query_with_owner(&p, owner, sizeof(owner));
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    /* The question was fine, so a FORMERR answer can carry it. */
    assert_int_equal(q.question_end, 29);
}

static void test_query_owner_two_pointer_loop_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* "a" + pointer to 29 at 29: the pointer is after the label but not before the name. */
    static const uint8_t owner[] = {1, 'a', 0xc0, 29};
    query_with_owner(&p, owner, sizeof(owner));
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_owner_pointer_out_of_range_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    static const uint8_t owner[] = {0xff, 0xff};
    query_with_owner(&p, owner, sizeof(owner));
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_owner_forward_pointer_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* Points at offset 41, the RDATA of this very record, which holds a valid-looking name. */
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 41);
    put_rr_fixed(&p, 99, 1, 60, 5);
    assert_int_equal(p.n, 41);
    put_name(&p, "abc");
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_owner_pointer_into_header_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    static const uint8_t owner[] = {0xc0, 4};
    query_with_owner(&p, owner, sizeof(owner));
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_owner_truncated_pointer_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put8(&p, 0xc0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_label_64_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    char name[64 + 5];
    memset(name, 'x', 64);
    memcpy(name + 64, ".com", 5);
    query_plain(&p, 1, name);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_name_256_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_long_name(&p, 256);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_compressed_owner_over_255_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* The question name is 250 bytes; a record owner of "abcde" + pointer to it is 256
     * bytes once decompressed. */
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_long_name(&p, 250);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    put_labels(&p, "abcde");
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_A, 1, 60, 4);
    put_bytes(&p, ADDR1, 4);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_label_type_0x40_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put8(&p, 0x41); /* extended label type, RFC 6891 §5 */
    put_bytes(&p, "a", 1);
    put8(&p, 0);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_label_type_0x80_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put8(&p, 0x81);
    put_bytes(&p, "a", 1);
    put8(&p, 0);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_trailing_after_question_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 1, "example.com");
    put8(&p, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.question_end, 29);
}

static void test_query_trailing_after_opt_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 1, "example.com", 1232, false);
    put_bytes(&p, "xy", 2);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_false(q.has_edns);
}

static void test_query_two_opt_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 2);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    put_opt(&p, 1232, 0, 0, false, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_opt_in_answer_section_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 1, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_opt_in_authority_section_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 1, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_opt_non_root_owner_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_OPT, 1232, 0, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_option_overruns_opt_rdata_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 8);
    put16(&p, DNS_OPT_PADDING);
    put16(&p, 5); /* 5 bytes announced, 4 in the RDATA */
    put32(&p, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_partial_option_header_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 3);
    put16(&p, DNS_OPT_PADDING);
    put8(&p, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_rdlength_past_end_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_A, 1, 60, 5);
    put_bytes(&p, ADDR1, 4);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_record_missing_fixed_fields_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 12);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    put32(&p, 60); /* no RDLENGTH */
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_arcount_too_high_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 1, "example.com", 1232, false);
    p.b[11] = 2;
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

static void test_query_longer_than_65535_formerr(void **state)
{
    (void)state;
    static uint8_t big[DNS_MAX_MSG + 1];
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 0x6565, "example.com");
    memcpy(big, p.b, p.n);
    assert_int_equal(dns_query_parse(big, sizeof(big), &q), DNS_RCODE_FORMERR);
    assert_int_equal(q.id, 0x6565);
    assert_int_equal(q.question_end, 0);
}

/* ---- dns_query_parse: BADVERS ---- */

static void test_query_edns_version_1_badvers(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0x77, DNS_FLAG_RD, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 1, true, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_BADVERS);
    assert_true(q.has_edns);
    assert_int_equal(q.edns_version, 1);
    assert_true(q.do_bit);
    assert_int_equal(q.udp_size, 1232);
    assert_int_equal(q.question_end, 29);
}

static void test_query_edns_version_1_but_malformed_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0x77, DNS_FLAG_RD, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 1, true, 0);
    put8(&p, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

/* ---- dns_build_error ---- */

static void test_error_formerr_header_only(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0xbeef, DNS_FLAG_RD | DNS_FLAG_CD, 0, 0, 0, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    uint8_t out[64];
    memset(out, 0xaa, sizeof(out));
    static const uint8_t want[] = {0xbe, 0xef, 0x81, 0x91, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_FORMERR, 1232, out, sizeof(out)),
                     sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[sizeof(want)], 0xaa);
}

static void test_error_formerr_with_question(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 0x0102, "example.com");
    put8(&p, 0); /* trailing byte: the question is valid, the message is not */
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_FORMERR, 1232, out, sizeof(out)), 29);
    static const uint8_t hdr[] = {0x01, 0x02, 0x81, 0x81, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, p.b + 12, 17);
}

static void test_error_notimp(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0x0a0b, 4 << 11, 1, 0, 0, 0); /* NOTIFY */
    put_question(&p, "example.com", DNS_TYPE_SOA, 1);
    assert_int_equal(parse(&p, &q), DNS_RCODE_NOTIMP);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_NOTIMP, 1232, out, sizeof(out)), 29);
    /* QR, opcode 4, RA, RCODE 4. */
    static const uint8_t hdr[] = {0x0a, 0x0b, 0xa0, 0x84, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, p.b + 12, 17);
}

static void test_error_servfail_without_edns(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 0x1111, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_SERVFAIL, 1232, out, sizeof(out)), 29);
    static const uint8_t hdr[] = {0x11, 0x11, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, p.b + 12, 17);
}

static void test_error_servfail_with_edns(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 0x2222, "example.com", 4096, true);
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_SERVFAIL, 1232, out, sizeof(out)), 40);
    static const uint8_t hdr[] = {0x22, 0x22, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, p.b + 12, 17);
    /* Root, OPT, our 1232, ext rcode 0, version 0, DO, no RDATA. */
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0};
    assert_memory_equal(out + 29, opt, sizeof(opt));
}

static void test_error_refused(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 0x3333, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_REFUSED, 1232, out, sizeof(out)), 29);
    assert_int_equal(dns_get16(out + 2), 0x8185);
}

static void test_error_badvers(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 0x4444, 0, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 2, false, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_BADVERS);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_BADVERS, 1400, out, sizeof(out)), 40);
    /* Header RCODE 0 (16 & 0xf), the OPT says 1 (16 >> 4), version 0. */
    static const uint8_t hdr[] = {0x44, 0x44, 0x80, 0x80, 0, 1, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(out, hdr, sizeof(hdr));
    static const uint8_t opt[] = {0, 0, 41, 0x05, 0x78, 1, 0, 0, 0, 0, 0};
    assert_memory_equal(out + 29, opt, sizeof(opt));
}

static void test_error_enospc(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 1, "example.com", 1232, false);
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_SERVFAIL, 1232, out, 39), -ENOSPC);
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_SERVFAIL, 1232, out, 40), 40);
    assert_int_equal(dns_build_error(p.b, &q, DNS_RCODE_SERVFAIL, 1232, out, 0), -ENOSPC);
}

static void test_error_bound_from_header(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* The header promises DNS_HEADER_LEN + 11 + question_end is always enough. */
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_long_name(&p, 255);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[DNS_HEADER_LEN + 11 + 271];
    int n = dns_build_error(p.b, &q, DNS_RCODE_BADVERS, 1232, out,
                            DNS_HEADER_LEN + 11 + (size_t)q.question_end);
    assert_true(n > 0);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(out, (size_t)n, &a), 0);
    assert_int_equal(a.rcode, DNS_RCODE_BADVERS);
}

static void test_error_rcode_out_of_range_einval(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 1, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[64];
    assert_int_equal(dns_build_error(p.b, &q, -1, 1232, out, sizeof(out)), -EINVAL);
    assert_int_equal(dns_build_error(p.b, &q, 4096, 1232, out, sizeof(out)), -EINVAL);
}

/* ---- dns_upstream_query ---- */

/* Find option code in the OPT record at opt_off of msg; returns its offset or 0. */
static size_t find_option(const uint8_t *msg, size_t len, size_t opt_off, uint16_t code,
                          unsigned *count)
{
    size_t rdlen = dns_get16(msg + opt_off + 9);
    size_t p = opt_off + 11, end = p + rdlen, found = 0;
    assert_true(end <= len);
    *count = 0;
    while (p < end) {
        (*count)++;
        if (dns_get16(msg + p) == code && found == 0)
            found = p;
        p += 4 + dns_get16(msg + p + 2);
    }
    assert_int_equal(p, end);
    return found;
}

static const struct dns_upstream_opts PLAIN_OPTS = {.udp_size = 1232};

static void test_upstream_exact_bytes(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 0x9999, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[512];
    assert_int_equal(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out)), 40);
    static const uint8_t hdr[] = {0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
    static const uint8_t question[] = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e', 3,
                                       'c', 'o', 'm', 0,   0,   1,   0,   1};
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, question, sizeof(question));
    assert_memory_equal(out + 29, opt, sizeof(opt));
}

static void test_upstream_flags_rd_cd_ad_only(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* Every bit a query may set: AA, TC, RD, RA, Z, AD, CD. */
    put_hdr(&p, 5, 0x07f0, 1, 0, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[512];
    assert_true(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out)) > 0);
    assert_int_equal(dns_get16(out), 0);
    assert_int_equal(dns_get16(out + 2), DNS_FLAG_RD | DNS_FLAG_CD | DNS_FLAG_AD);
}

static void test_upstream_question_case_kept(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 5, DNS_FLAG_RD, 1, 0, 0, 0);
    put_question(&p, "WwW.ExAmPlE.CoM", DNS_TYPE_AAAA, 3);
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[512];
    assert_true(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out)) > 0);
    assert_memory_equal(out + 12, p.b + 12, q.question_end - 12u);
}

static void test_upstream_client_ecs_not_forwarded(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    static const uint8_t ecs[] = {0, 1, 24, 0, 198, 51, 100};
    put_hdr(&p, 5, DNS_FLAG_RD, 1, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 4096, 0, 0, false, 4 + sizeof(ecs));
    put16(&p, DNS_OPT_ECS);
    put16(&p, sizeof(ecs));
    put_bytes(&p, ecs, sizeof(ecs));
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[512];
    int n = dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out));
    assert_int_equal(n, 40);
    assert_int_equal(dns_get16(out + 10), 1);
    unsigned count;
    assert_int_equal(find_option(out, (size_t)n, 29, DNS_OPT_ECS, &count), 0);
    assert_int_equal(count, 0);
    /* Our payload size, not the client's. */
    assert_int_equal(dns_get16(out + 29 + 3), 1232);
}

static void test_upstream_keepalive(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 5, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    struct dns_upstream_opts o = {.udp_size = 1232, .keepalive = true};
    uint8_t out[512];
    int n = dns_upstream_query(p.b, &q, &o, out, sizeof(out));
    assert_int_equal(n, 44);
    unsigned count;
    size_t k = find_option(out, (size_t)n, 29, DNS_OPT_KEEPALIVE, &count);
    assert_int_equal(k, 40);
    assert_int_equal(count, 1);
    assert_int_equal(dns_get16(out + k + 2), 0);
}

static void test_upstream_ecs_configured(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 5, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    /* RFC 7871 §7.1.2: family 1, source prefix 0: "do not use my address". */
    static const uint8_t ecs[] = {0, 1, 0, 0};
    struct dns_upstream_opts o = {
        .udp_size = 1232, .keepalive = true, .ecs = ecs, .ecs_len = sizeof(ecs)};
    uint8_t out[512];
    int n = dns_upstream_query(p.b, &q, &o, out, sizeof(out));
    assert_int_equal(n, 52);
    unsigned count;
    size_t e = find_option(out, (size_t)n, 29, DNS_OPT_ECS, &count);
    assert_int_equal(count, 2);
    /* keepalive first, then ECS. */
    assert_int_equal(find_option(out, (size_t)n, 29, DNS_OPT_KEEPALIVE, &count), 40);
    assert_int_equal(e, 44);
    assert_int_equal(dns_get16(out + e + 2), sizeof(ecs));
    assert_memory_equal(out + e + 4, ecs, sizeof(ecs));
}

static void check_padding(uint16_t block, const struct dns_upstream_opts *base, const char *name)
{
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 5, name, 4096, true);
    assert_int_equal(parse(&p, &q), 0);
    struct dns_upstream_opts o = *base;
    o.pad_block = block;
    uint8_t out[1024];
    int n = dns_upstream_query(p.b, &q, &o, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal((size_t)n % block, 0);
    unsigned count;
    size_t pad = find_option(out, (size_t)n, q.question_end, DNS_OPT_PADDING, &count);
    assert_true(pad > 0);
    /* Padding is the last option and ends the message; its octets are zero. */
    size_t plen = dns_get16(out + pad + 2);
    assert_int_equal(pad + 4 + plen, (size_t)n);
    for (size_t i = 0; i < plen; i++)
        assert_int_equal(out[pad + 4 + i], 0);
    /* The smallest multiple that has room for an empty padding option. */
    assert_true(plen < block);
}

static void test_upstream_padding_128(void **state)
{
    (void)state;
    static const uint8_t ecs[] = {0, 1, 24, 0, 198, 51, 100};
    struct dns_upstream_opts with = {
        .udp_size = 1232, .keepalive = true, .ecs = ecs, .ecs_len = sizeof(ecs)};
    check_padding(DNS_PAD_QUERY, &PLAIN_OPTS, "example.com");
    check_padding(DNS_PAD_QUERY, &with, "example.com");
    check_padding(DNS_PAD_QUERY, &with, "a.very.long.name.to.cross.a.block.boundary.example.net");
}

static void test_upstream_padding_exact_bytes(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 5, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    struct dns_upstream_opts o = {.udp_size = 1232, .pad_block = 128};
    uint8_t out[512];
    /* 40 bytes without options, 44 with an empty padding option: 84 bytes of padding. */
    assert_int_equal(dns_upstream_query(p.b, &q, &o, out, sizeof(out)), 128);
    assert_int_equal(dns_get16(out + 29 + 9), 88);
    assert_int_equal(dns_get16(out + 40), DNS_OPT_PADDING);
    assert_int_equal(dns_get16(out + 42), 84);
}

static void test_upstream_padding_already_aligned(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 5, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    /* 40 + 4 = 44: a block of 44 needs an empty padding option and nothing more. */
    struct dns_upstream_opts o = {.udp_size = 1232, .pad_block = 44};
    uint8_t out[512];
    assert_int_equal(dns_upstream_query(p.b, &q, &o, out, sizeof(out)), 44);
    assert_int_equal(dns_get16(out + 42), 0);
}

static void test_upstream_padding_468(void **state)
{
    (void)state;
    check_padding(DNS_PAD_RESPONSE, &PLAIN_OPTS, "example.com");
}

static void test_upstream_do_bit_copied(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    uint8_t out[512];
    query_edns(&p, 5, "example.com", 4096, true);
    assert_int_equal(parse(&p, &q), 0);
    assert_true(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out)) > 0);
    assert_int_equal(dns_get32(out + 29 + 5), 0x8000);
    query_edns(&p, 5, "example.com", 4096, false);
    assert_int_equal(parse(&p, &q), 0);
    assert_true(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out)) > 0);
    assert_int_equal(dns_get32(out + 29 + 5), 0);
}

static void test_upstream_parses_back(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q, back;
    static const uint8_t ecs[] = {0, 1, 24, 0, 198, 51, 100};
    query_edns(&p, 5, "ExAmPlE.com", 4096, true);
    assert_int_equal(parse(&p, &q), 0);
    struct dns_upstream_opts o = {
        .udp_size = 1400, .pad_block = 128, .keepalive = true, .ecs = ecs, .ecs_len = sizeof(ecs)};
    uint8_t out[512];
    int n = dns_upstream_query(p.b, &q, &o, out, sizeof(out));
    assert_int_equal(n, 128);
    assert_int_equal(dns_query_parse(out, (size_t)n, &back), 0);
    assert_int_equal(back.id, 0);
    assert_true(back.has_edns);
    assert_true(back.do_bit);
    assert_int_equal(back.edns_version, 0);
    assert_int_equal(back.udp_size, 1400);
    assert_int_equal(back.question_end, q.question_end);
    assert_true(dns_question_equal(p.b, p.n, out, (size_t)n));
}

static void test_upstream_enospc(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 5, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    struct dns_upstream_opts o = {.udp_size = 1232, .pad_block = 128};
    uint8_t out[512];
    assert_int_equal(dns_upstream_query(p.b, &q, &o, out, 127), -ENOSPC);
    assert_int_equal(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, 39), -ENOSPC);
    assert_int_equal(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, 40), 40);
}

static void test_upstream_without_question_einval(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 0, 0, 0, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    uint8_t out[512];
    assert_int_equal(dns_upstream_query(p.b, &q, &PLAIN_OPTS, out, sizeof(out)), -EINVAL);
}

/* ---- dns_answer_parse ---- */

/* An answer "example.com A": question at 12, two A records compressed to it. */
static void answer_a(struct pkt *p, uint16_t id, const char *name)
{
    put_hdr(p, id, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 2, 0, 0);
    put_question(p, name, DNS_TYPE_A, 1);
    put_a_ptr(p, 12, 300, ADDR1);
    put_a_ptr(p, 12, 300, ADDR2);
}

static void test_answer_a_compressed(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_a(&p, 0x4321, "example.com");
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(a.id, 0x4321);
    assert_int_equal(a.flags, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
    assert_int_equal(a.rcode, 0);
    assert_int_equal(a.question_end, 29);
    assert_int_equal(a.ancount, 2);
    assert_int_equal(a.nscount, 0);
    assert_int_equal(a.arcount, 0);
    assert_int_equal(a.records_end, p.n);
    assert_false(a.has_edns);
    assert_int_equal(a.keepalive, -1);
}

static void test_answer_cname_chain(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    /* www.example.com CNAME a.example.com; a.example.com CNAME b.example.com; b A. */
    put_hdr(&p, 1, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 3, 0, 0);
    put_question(&p, "www.example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_CNAME, 1, 60, 4);
    size_t a_name = p.n;
    put_labels(&p, "a");
    put_ptr(&p, 16); /* example.com inside the question */
    put_ptr(&p, (uint16_t)a_name);
    put_rr_fixed(&p, DNS_TYPE_CNAME, 1, 60, 4);
    size_t b_name = p.n;
    put_labels(&p, "b");
    put_ptr(&p, 16);
    put_ptr(&p, (uint16_t)b_name);
    put_rr_fixed(&p, DNS_TYPE_A, 1, 60, 4);
    put_bytes(&p, ADDR1, 4);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(a.ancount, 3);
    assert_int_equal(a.records_end, p.n);
}

/* NXDOMAIN for nope.example.com with the SOA of example.com, its names compressed. */
static void answer_nxdomain(struct pkt *p)
{
    put_hdr(p, 2, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
    put_question(p, "nope.example.com", DNS_TYPE_A, 1);
    put_ptr(p, 17); /* example.com */
    put_rr_fixed(p, DNS_TYPE_SOA, 1, 900, 5 + 13 + 20);
    put_labels(p, "ns");
    put_ptr(p, 17);
    put_labels(p, "hostmaster");
    put_ptr(p, 17);
    put32(p, 2024010101);
    put32(p, 7200);
    put32(p, 3600);
    put32(p, 1209600);
    put32(p, 300);
}

static void test_answer_nxdomain_soa(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_nxdomain(&p);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(a.ancount, 0);
    assert_int_equal(a.nscount, 1);
}

static void test_answer_soa_bad_fixed_fields(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_nxdomain(&p);
    /* One byte fewer than the five 32-bit fields, in RDLENGTH and in the message. */
    size_t rdlen_off = 12 + 22 + 2 + 8;
    dns_put16(p.b + rdlen_off, (uint16_t)(dns_get16(p.b + rdlen_off) - 1));
    p.n--;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_mx_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    put_hdr(&p, 2, DNS_FLAG_QR, 1, 1, 0, 0);
    put_question(&p, "example.com", 15, 1); /* MX */
    put_ptr(&p, 12);
    put_rr_fixed(&p, 15, 1, 60, 2 + 5 + 2);
    put16(&p, 10);
    put_labels(&p, "mail");
    put_ptr(&p, 12);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
}

/* An answer with an OPT record carrying the given option bytes. */
static void answer_with_opt(struct pkt *p, uint16_t flags, uint8_t ext, bool do_bit,
                            const uint8_t *opts, uint16_t optlen)
{
    put_hdr(p, 3, (uint16_t)(DNS_FLAG_QR | flags), 1, 1, 0, 1);
    put_question(p, "example.com", DNS_TYPE_A, 1);
    put_a_ptr(p, 12, 300, ADDR1);
    put_opt(p, 1232, ext, 0, do_bit, optlen);
    if (optlen)
        put_bytes(p, opts, optlen);
}

static void test_answer_opt_keepalive(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    static const uint8_t opts[] = {0, 12, 0, 2, 0, 0, 0, 11, 0, 2, 0x01, 0x2c};
    answer_with_opt(&p, 0, 0, true, opts, sizeof(opts));
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_true(a.has_edns);
    assert_true(a.do_bit);
    assert_int_equal(a.keepalive, 300);
    assert_int_equal(a.arcount, 0);
    assert_int_equal(a.records_end, 45);
}

static void test_answer_opt_empty_keepalive_ignored(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    static const uint8_t opts[] = {0, 11, 0, 0};
    answer_with_opt(&p, 0, 0, false, opts, sizeof(opts));
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(a.keepalive, -1);
}

static void test_answer_extended_rcode(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    /* BADCOOKIE, 23: header 7, OPT 1. */
    answer_with_opt(&p, 7, 1, false, NULL, 0);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(a.rcode, 23);
}

static void test_answer_records_after_opt_excluded(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    put_hdr(&p, 3, DNS_FLAG_QR, 1, 1, 0, 3);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_a_ptr(&p, 12, 300, ADDR1);
    put_labels(&p, "ns");
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_A, 1, 300, 4);
    put_bytes(&p, ADDR2, 4);
    size_t opt_off = p.n;
    put_opt(&p, 1232, 0, 0, false, 0);
    /* A TSIG-like record after the OPT. */
    put_name(&p, "key");
    put_rr_fixed(&p, 250, 255, 0, 3);
    put_bytes(&p, "sig", 3);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(a.arcount, 1);
    assert_int_equal(a.records_end, opt_off);
}

static void test_answer_qr_0_rejected(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_a(&p, 1, "example.com");
    p.b[2] &= 0x7f;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_qdcount_0_rejected(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    put_hdr(&p, 1, DNS_FLAG_QR | DNS_RCODE_SERVFAIL, 0, 0, 0, 0);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_short_rejected(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_a(&p, 1, "example.com");
    assert_int_equal(dns_answer_parse(p.b, 11, &a), -EBADMSG);
    assert_int_equal(dns_answer_parse(p.b, 0, &a), -EBADMSG);
}

static void test_answer_longer_than_65535_rejected(void **state)
{
    (void)state;
    static uint8_t big[DNS_MAX_MSG + 1];
    struct pkt p;
    struct dns_answer a;
    answer_a(&p, 1, "example.com");
    memcpy(big, p.b, p.n);
    assert_int_equal(dns_answer_parse(big, sizeof(big), &a), -EBADMSG);
}

/* An answer whose records' owners form a chain of pointers, each to the owner of the
 * record before, the first to the question: the last owner takes records hops. */
static void answer_pointer_chain(struct pkt *p, uint16_t records)
{
    put_hdr(p, 1, DNS_FLAG_QR, 1, records, 0, 0);
    put_question(p, "example.com", DNS_TYPE_A, 1);
    uint16_t prev = 12;
    for (uint16_t i = 0; i < records; i++) {
        uint16_t here = (uint16_t)p->n;
        put_ptr(p, prev);
        put_rr_fixed(p, 99, 1, 60, 0);
        prev = here;
    }
}

static void test_answer_pointer_chain_127_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_pointer_chain(&p, 127);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
}

static void test_answer_pointer_chain_128_rejected(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    /* Backwards all the way, but longer than any name needs: a cheap way to make every
     * record walk the whole message. */
    answer_pointer_chain(&p, 128);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

/* Found by fuzzing: a pointer backwards whose target is a label running forward across
 * the very name that points to it. Accepted, it let a kept record's name read bytes of the
 * dropped OPT record, so that dns_answer_for_client produced an invalid answer. */
static void test_answer_pointer_target_running_past_its_name_rejected(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    put_hdr(&p, 1, DNS_FLAG_QR, 1, 0, 0, 2);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put8(&p, 0);
    put_rr_fixed(&p, 99, 1, 0, 1);
    assert_int_equal(p.n, 40);
    put8(&p, 2); /* at 40: a label of 2 that covers the pointer at 41 */
    put_ptr(&p, 40);
    put_rr_fixed(&p, 99, 1, 0, 0);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
    /* The same bytes with the label ending before the pointer are fine. */
    p.b[40] = 0;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
}

static void test_query_pointer_target_running_past_its_name_formerr(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    put_hdr(&p, 1, 0, 1, 0, 0, 2);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put8(&p, 0);
    put_rr_fixed(&p, 99, 1, 0, 1);
    put8(&p, 2);
    put_ptr(&p, 40);
    put_rr_fixed(&p, 99, 1, 0, 0);
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
}

/* An answer whose CNAME RDATA is "x" + a pointer to target. */
static void answer_cname_ptr(struct pkt *p, uint16_t target)
{
    put_hdr(p, 1, DNS_FLAG_QR, 1, 2, 0, 0);
    put_question(p, "www.example.com", DNS_TYPE_A, 1);
    put_ptr(p, 12);
    put_rr_fixed(p, DNS_TYPE_CNAME, 1, 60, 4);
    put_labels(p, "x");
    put_ptr(p, target);
    put_ptr(p, 12);
    put_rr_fixed(p, DNS_TYPE_A, 1, 60, 4);
    put_bytes(p, ADDR1, 4);
}

static void test_answer_cname_rdata_ok(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_cname_ptr(&p, 16);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
}

static void test_answer_cname_rdata_forward_pointer(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    /* 49 is the owner of the next record, a pointer that leads back to a valid name. */
    answer_cname_ptr(&p, 49);
    assert_int_equal(dns_get16(p.b + 49), 0xc00c);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_cname_rdata_pointer_to_itself(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_cname_ptr(&p, 45); /* the start of the RDATA name */
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_cname_rdata_pointer_out_of_range(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_cname_ptr(&p, 0x3fff);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_cname_rdata_longer_than_name(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    put_hdr(&p, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    put_question(&p, "www.example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_CNAME, 1, 60, 3);
    put_ptr(&p, 16);
    put8(&p, 0);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_rdlength_past_end(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_a(&p, 1, "example.com");
    p.n -= 1;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_trailing_bytes(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_a(&p, 1, "example.com");
    put8(&p, 0);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_two_opt(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    answer_with_opt(&p, 0, 0, false, NULL, 0);
    put_opt(&p, 1232, 0, 0, false, 0);
    dns_put16(p.b + 10, 2);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

static void test_answer_opt_in_answer_section(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_answer a;
    put_hdr(&p, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), -EBADMSG);
}

/* ---- dns_question_equal ---- */

static void test_question_equal_ignores_case(void **state)
{
    (void)state;
    struct pkt x, y;
    query_plain(&x, 1, "ExAmPlE.CoM");
    answer_a(&y, 2, "example.com");
    assert_true(dns_question_equal(x.b, x.n, y.b, y.n));
    assert_true(dns_question_equal(y.b, y.n, x.b, x.n));
}

static void test_question_equal_different_type(void **state)
{
    (void)state;
    struct pkt x, y;
    put_hdr(&x, 1, 0, 1, 0, 0, 0);
    put_question(&x, "example.com", DNS_TYPE_AAAA, 1);
    query_plain(&y, 1, "example.com");
    assert_false(dns_question_equal(x.b, x.n, y.b, y.n));
}

static void test_question_equal_different_class(void **state)
{
    (void)state;
    struct pkt x, y;
    put_hdr(&x, 1, 0, 1, 0, 0, 0);
    put_question(&x, "example.com", DNS_TYPE_A, 3);
    query_plain(&y, 1, "example.com");
    assert_false(dns_question_equal(x.b, x.n, y.b, y.n));
}

static void test_question_equal_different_name(void **state)
{
    (void)state;
    struct pkt x, y;
    query_plain(&x, 1, "example.net");
    query_plain(&y, 1, "example.com");
    assert_false(dns_question_equal(x.b, x.n, y.b, y.n));
}

static void test_question_equal_different_length(void **state)
{
    (void)state;
    struct pkt x, y;
    query_plain(&x, 1, "www.example.com");
    query_plain(&y, 1, "example.com");
    assert_false(dns_question_equal(x.b, x.n, y.b, y.n));
}

static void test_question_equal_same_length_other_labels(void **state)
{
    (void)state;
    struct pkt x, y;
    /* Same bytes but for where the labels split. */
    query_plain(&x, 1, "ab.c");
    query_plain(&y, 1, "a.bc");
    assert_false(dns_question_equal(x.b, x.n, y.b, y.n));
}

/* ---- dns_answer_for_client ---- */

static void test_for_client_id_case_rd(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    put_hdr(&c, 0xcafe, 0, 1, 0, 0, 0); /* RD=0 */
    put_question(&c, "ExAmPlE.com", DNS_TYPE_A, 1);
    assert_int_equal(parse(&c, &q), 0);
    answer_a(&u, 0x0001, "example.com"); /* RD=1 */
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    assert_true(dns_question_equal(c.b, c.n, u.b, u.n));
    uint8_t out[512];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, sizeof(out));
    assert_int_equal(n, u.n);
    assert_int_equal(dns_get16(out), 0xcafe);
    assert_int_equal(dns_get16(out + 2), DNS_FLAG_QR | DNS_FLAG_RA);
    assert_memory_equal(out + 4, u.b + 4, 8);
    assert_memory_equal(out + 12, c.b + 12, 17);
    assert_memory_equal(out + 29, u.b + 29, u.n - 29);
}

static void test_for_client_opt_removed_without_edns(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_plain(&c, 0x0101, "example.com");
    assert_int_equal(parse(&c, &q), 0);
    static const uint8_t opts[] = {0, 12, 0, 3, 0, 0, 0};
    answer_with_opt(&u, DNS_FLAG_RD | DNS_FLAG_RA, 0, true, opts, sizeof(opts));
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, sizeof(out));
    assert_int_equal(n, a.records_end);
    assert_int_equal(dns_get16(out + 6), 1);
    assert_int_equal(dns_get16(out + 10), 0);
    struct dns_answer back;
    assert_int_equal(dns_answer_parse(out, (size_t)n, &back), 0);
    assert_false(back.has_edns);
}

static void test_for_client_opt_ours_with_edns(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_edns(&c, 0x0202, "example.com", 4096, true);
    assert_int_equal(parse(&c, &q), 0);
    /* The upstream pads and sends keepalive: neither reaches the client. */
    static const uint8_t opts[] = {0, 11, 0, 2, 0, 100, 0, 12, 0, 3, 0, 0, 0};
    answer_with_opt(&u, DNS_FLAG_RD | DNS_FLAG_RA | DNS_FLAG_AD, 0, true, opts, sizeof(opts));
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1400, 4096, out, sizeof(out));
    assert_int_equal(n, a.records_end + 11);
    assert_int_equal(dns_get16(out + 2), DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_FLAG_AD);
    assert_int_equal(dns_get16(out + 10), 1);
    static const uint8_t opt[] = {0, 0, 41, 0x05, 0x78, 0, 0, 0x80, 0, 0, 0};
    assert_memory_equal(out + a.records_end, opt, sizeof(opt));
}

static void test_for_client_opt_added_when_upstream_had_none(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_edns(&c, 0x0303, "example.com", 1232, false);
    assert_int_equal(parse(&c, &q), 0);
    answer_a(&u, 1, "example.com");
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, 1232, out, sizeof(out));
    assert_int_equal(n, u.n + 11);
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out + u.n, opt, sizeof(opt));
    assert_int_equal(dns_get16(out + 10), 1);
}

static void test_for_client_extended_rcode(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_edns(&c, 0x0404, "example.com", 1232, false);
    assert_int_equal(parse(&c, &q), 0);
    answer_with_opt(&u, 7, 1, false, NULL, 0); /* 23 */
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, 1232, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(DNS_RCODE(dns_get16(out + 2)), 7);
    assert_int_equal(out[n - 11 + 5], 1);
    struct dns_answer back;
    assert_int_equal(dns_answer_parse(out, (size_t)n, &back), 0);
    assert_int_equal(back.rcode, 23);
}

static void test_for_client_records_after_opt_dropped(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_plain(&c, 0x0505, "example.com");
    assert_int_equal(parse(&c, &q), 0);
    answer_with_opt(&u, 0, 0, false, NULL, 0);
    put_name(&u, "key");
    put_rr_fixed(&u, 250, 255, 0, 0);
    dns_put16(u.b + 10, 2);
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, sizeof(out));
    assert_int_equal(n, 45);
    assert_int_equal(dns_get16(out + 10), 0);
}

/* A 3 KB TXT answer: 12 records of 255-byte strings. */
static void answer_big_txt(struct pkt *p)
{
    put_hdr(p, 9, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, 12, 0, 0);
    put_question(p, "big.example.com", DNS_TYPE_TXT, 1);
    uint8_t s[256];
    memset(s, 'x', sizeof(s));
    s[0] = 255;
    for (int i = 0; i < 12; i++) {
        put_ptr(p, 12);
        put_rr_fixed(p, DNS_TYPE_TXT, 1, 60, sizeof(s));
        put_bytes(p, s, sizeof(s));
    }
}

static void test_for_client_truncated_at_512(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    put_hdr(&c, 0x0606, DNS_FLAG_RD, 1, 0, 0, 1);
    put_question(&c, "BIG.example.com", DNS_TYPE_TXT, 1);
    put_opt(&c, 512, 0, 0, false, 0);
    assert_int_equal(parse(&c, &q), 0);
    answer_big_txt(&u);
    assert_true(u.n > 3000);
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[4096];
    int n =
        dns_answer_for_client(u.b, &a, c.b, &q, 1232, dns_udp_limit(&q, 1232), out, sizeof(out));
    assert_int_equal(n, 12 + 21 + 11);
    static const uint8_t hdr[] = {0x06, 0x06, 0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(out, hdr, sizeof(hdr));
    assert_memory_equal(out + 12, c.b + 12, 21);
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out + 33, opt, sizeof(opt));
}

static void test_for_client_truncated_without_edns(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    put_hdr(&c, 0x0607, DNS_FLAG_RD, 1, 0, 0, 0);
    put_question(&c, "big.example.com", DNS_TYPE_TXT, 1);
    assert_int_equal(parse(&c, &q), 0);
    answer_big_txt(&u);
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[4096];
    int n =
        dns_answer_for_client(u.b, &a, c.b, &q, 1232, dns_udp_limit(&q, 1232), out, sizeof(out));
    assert_int_equal(n, 33);
    static const uint8_t hdr[] = {0x06, 0x07, 0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, sizeof(hdr));
}

static void test_for_client_whole_at_65535(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    put_hdr(&c, 0x0606, DNS_FLAG_RD, 1, 0, 0, 0);
    put_question(&c, "big.example.com", DNS_TYPE_TXT, 1);
    assert_int_equal(parse(&c, &q), 0);
    answer_big_txt(&u);
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[4096];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, DNS_MAX_MSG, out, sizeof(out));
    assert_int_equal(n, u.n);
    assert_false(dns_get16(out + 2) & DNS_FLAG_TC);
    assert_int_equal(dns_get16(out + 6), 12);
    assert_memory_equal(out + 12, c.b + 12, 21);
    assert_memory_equal(out + 33, u.b + 33, u.n - 33);
}

static void test_for_client_limit_equal_length_not_truncated(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_edns(&c, 0x0707, "example.com", 1232, false);
    assert_int_equal(parse(&c, &q), 0);
    answer_a(&u, 1, "example.com");
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    size_t whole = u.n + 11;
    uint8_t out[512];
    assert_int_equal(dns_answer_for_client(u.b, &a, c.b, &q, 1232, whole, out, sizeof(out)), whole);
    assert_false(dns_get16(out + 2) & DNS_FLAG_TC);
    assert_int_equal(dns_answer_for_client(u.b, &a, c.b, &q, 1232, whole - 1, out, sizeof(out)),
                     29 + 11);
    assert_true(dns_get16(out + 2) & DNS_FLAG_TC);
    assert_int_equal(dns_get16(out + 6), 0);
}

static void test_for_client_small_cap_truncates(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_plain(&c, 0x0808, "example.com");
    assert_int_equal(parse(&c, &q), 0);
    answer_a(&u, 1, "example.com");
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    /* Room for the question but not the records: the truncated form. */
    assert_int_equal(dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, 40), 29);
    assert_true(dns_get16(out + 2) & DNS_FLAG_TC);
}

static void test_for_client_enospc(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_edns(&c, 0x0909, "example.com", 1232, false);
    assert_int_equal(parse(&c, &q), 0);
    answer_a(&u, 1, "example.com");
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    assert_int_equal(dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, 39), -ENOSPC);
}

static void test_for_client_question_length_differs(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    query_plain(&c, 0x0a0a, "www.example.com");
    assert_int_equal(parse(&c, &q), 0);
    answer_a(&u, 1, "example.com");
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);
    uint8_t out[512];
    assert_int_equal(dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, sizeof(out)), -EINVAL);
}

/* ---- dns_udp_limit ---- */

static void test_udp_limit_without_edns(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_plain(&p, 1, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(dns_udp_limit(&q, 1232), 512);
}

static void test_udp_limit_capped_by_ours(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 1, "example.com", 4096, false);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(dns_udp_limit(&q, 1232), 1232);
}

static void test_udp_limit_clients_smaller(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 1, "example.com", 1000, false);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(dns_udp_limit(&q, 1232), 1000);
}

static void test_udp_limit_tiny_edns_is_512(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    query_edns(&p, 1, "example.com", 1, false);
    assert_int_equal(parse(&p, &q), 0);
    assert_int_equal(dns_udp_limit(&q, 1232), 512);
}

/* ---- dns_name_to_text ---- */

static void test_name_text_root(void **state)
{
    (void)state;
    struct pkt p;
    char s[16];
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_question(&p, "", DNS_TYPE_NS, 1);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, sizeof(s)), 1);
    assert_string_equal(s, ".");
}

static void test_name_text_normal(void **state)
{
    (void)state;
    struct pkt p;
    char s[64];
    query_plain(&p, 1, "www.Example.com");
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, sizeof(s)), 16);
    assert_string_equal(s, "www.Example.com.");
}

static void test_name_text_escapes(void **state)
{
    (void)state;
    struct pkt p;
    char s[64];
    static const uint8_t label[] = {'a', '.', 'b', '\\', 0, 0xff, ' ', 'z'};
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put8(&p, sizeof(label));
    put_bytes(&p, label, sizeof(label));
    put_name(&p, "com");
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, sizeof(s)), 28);
    assert_string_equal(s, "a\\046b\\092\\000\\255\\032z.com.");
}

static void test_name_text_compressed(void **state)
{
    (void)state;
    struct pkt p;
    char s[64];
    put_hdr(&p, 1, DNS_FLAG_QR, 1, 1, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_CNAME, 1);
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_CNAME, 1, 60, 8);
    size_t target = p.n;
    put_labels(&p, "alias");
    put_ptr(&p, 20); /* "com" */
    assert_int_equal(dns_name_to_text(p.b, p.n, 29, s, sizeof(s)), 12);
    assert_string_equal(s, "example.com.");
    assert_int_equal(dns_name_to_text(p.b, p.n, target, s, sizeof(s)), 10);
    assert_string_equal(s, "alias.com.");
}

static void test_name_text_enospc(void **state)
{
    (void)state;
    struct pkt p;
    char s[64];
    query_plain(&p, 1, "www.example.com");
    memset(s, 'Q', sizeof(s));
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, 8), -ENOSPC);
    assert_string_equal(s, "www.exa");
    /* Exactly the length plus the terminator fits. */
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, 17), 16);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, 16), -ENOSPC);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, 1), -ENOSPC);
    assert_string_equal(s, "");
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, 0), -ENOSPC);
}

static void test_name_text_escape_not_split(void **state)
{
    (void)state;
    struct pkt p;
    char s[64];
    static const uint8_t label[] = {'a', 0x01};
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put8(&p, sizeof(label));
    put_bytes(&p, label, sizeof(label));
    put8(&p, 0);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, 4), -ENOSPC);
    assert_string_equal(s, "a");
}

static void test_name_text_longest_fits_proxy_buffer(void **state)
{
    (void)state;
    struct pkt p;
    char s[DNS_MAX_NAME * 4 + 1];
    uint8_t label[63];
    memset(label, 0xfe, sizeof(label));
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        put8(&p, 63);
        put_bytes(&p, label, 63);
    }
    put8(&p, 61);
    put_bytes(&p, label, 61);
    put8(&p, 0);
    put16(&p, DNS_TYPE_A);
    put16(&p, 1);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, sizeof(s)), 250 * 4 + 4);
}

static void test_name_text_invalid_name(void **state)
{
    (void)state;
    struct pkt p;
    char s[64];
    put_hdr(&p, 1, 0, 1, 0, 0, 0);
    put_ptr(&p, 12);
    assert_int_equal(dns_name_to_text(p.b, p.n, 12, s, sizeof(s)), -EBADMSG);
    assert_string_equal(s, "");
}

/* --- dns_build_query ------------------------------------------------------------------ */

static void test_build_query_parses_back(void **state)
{
    (void)state;
    uint8_t out[512];
    struct dns_query q;
    int n = dns_build_query("dns.example", DNS_TYPE_AAAA, 0x1234, 1232, out, sizeof(out));
    assert_int_equal(n, DNS_HEADER_LEN + 13 + 4 + 11);
    assert_int_equal(dns_query_parse(out, (size_t)n, &q), 0);
    assert_int_equal(q.id, 0x1234);
    assert_int_equal(q.flags, DNS_FLAG_RD);
    assert_int_equal(q.qtype, DNS_TYPE_AAAA);
    assert_int_equal(q.qclass, 1);
    assert_int_equal(q.qname_len, 13);
    assert_memory_equal(out + DNS_HEADER_LEN, "\3dns\7example\0", 13);
    assert_true(q.has_edns);
    assert_int_equal(q.edns_version, 0);
    assert_false(q.do_bit);
    assert_int_equal(q.udp_size, 1232);
    /* It asks what a hand-built query for the same name asks. */
    struct pkt p;
    put_hdr(&p, 7, DNS_FLAG_RD, 1, 0, 0, 0);
    put_question(&p, "DNS.example", DNS_TYPE_AAAA, 1);
    assert_true(dns_question_equal(out, (size_t)n, p.b, p.n));
}

static void test_build_query_exact_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0xab, 0xcd, 0x01, 0x00, 0,    1,   0,   0,   0,   0, 0, 1, /* header: RD, QD 1, AR 1 */
        3,    'd',  'n',  's',  4,    't', 'e', 's', 't', 0,       /* dns.test */
        0,    1,    0,    1,                                       /* A, IN */
        0,    0,    41,   0x04, 0xd0, 0,   0,   0,   0,   0, 0,    /* OPT: root, 1232, v0, no DO */
    };
    uint8_t out[64];
    memset(out, 0xee, sizeof(out));
    int n = dns_build_query("dns.test", DNS_TYPE_A, 0xabcd, 1232, out, sizeof(out));
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[n], 0xee);
}

static void test_build_query_without_opt(void **state)
{
    (void)state;
    uint8_t out[64];
    struct dns_query q;
    int n = dns_build_query("dns.test", DNS_TYPE_A, 9, 0, out, sizeof(out));
    assert_int_equal(n, DNS_HEADER_LEN + 10 + 4);
    assert_int_equal(dns_get16(out + 10), 0);
    assert_int_equal(dns_query_parse(out, (size_t)n, &q), 0);
    assert_false(q.has_edns);
    assert_int_equal(q.id, 9);
    assert_int_equal(q.flags, DNS_FLAG_RD);
}

static void test_build_query_trailing_dot_same(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    int na = dns_build_query("dns.example", DNS_TYPE_A, 1, 1232, a, sizeof(a));
    int nb = dns_build_query("dns.example.", DNS_TYPE_A, 1, 1232, b, sizeof(b));
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na);
    /* A single label is a name too. */
    assert_int_equal(dns_build_query("localhost", DNS_TYPE_A, 1, 0, a, sizeof(a)),
                     DNS_HEADER_LEN + 11 + 4);
}

static void test_build_query_spelling_kept(void **state)
{
    (void)state;
    uint8_t out[64];
    int n = dns_build_query("DnS.Example", DNS_TYPE_A, 1, 0, out, sizeof(out));
    assert_true(n > 0);
    assert_memory_equal(out + DNS_HEADER_LEN, "\3DnS\7Example\0", 13);
}

static void test_build_query_root_and_empty_einval(void **state)
{
    (void)state;
    uint8_t out[64];
    assert_int_equal(dns_build_query(".", DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
    assert_int_equal(dns_build_query("", DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
}

static void test_build_query_empty_label_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {"a..b", ".a", "..", "a..", ".a.", "a.b..", ".."};
    uint8_t out[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dns_build_query(bad[i], DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
}

/* A string of n copies of c. */
static void fill(char *s, char c, size_t n)
{
    memset(s, c, n);
    s[n] = '\0';
}

static void test_build_query_label_63_ok_64_einval(void **state)
{
    (void)state;
    char name[80];
    uint8_t out[512];
    struct dns_query q;
    fill(name, 'a', 63);
    strcat(name, ".test");
    int n = dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(dns_query_parse(out, (size_t)n, &q), 0);
    assert_int_equal(out[DNS_HEADER_LEN], 63);
    assert_int_equal(q.qname_len, 1 + 63 + 1 + 4 + 1);

    fill(name, 'a', 64);
    strcat(name, ".test");
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
    /* The last label is checked as well as the others. */
    strcpy(name, "test.");
    fill(name + 5, 'b', 64);
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
    fill(name + 5, 'b', 63);
    assert_true(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)) > 0);
}

/* A name of len characters (no final dot) in labels of 63 and a last shorter one. */
static void long_name(char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t label = len - i < 63 ? len - i : 63;
        memset(s + i, 'x', label);
        i += label;
        if (i < len)
            s[i++] = '.';
    }
    s[len] = '\0';
}

static void test_build_query_name_253_ok_254_einval(void **state)
{
    (void)state;
    char name[300];
    uint8_t out[512];
    struct dns_query q;
    /* 253 characters: 255 bytes on the wire, the most there can be. */
    long_name(name, 253);
    int n = dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out));
    assert_int_equal(n, DNS_HEADER_LEN + 255 + 4 + 11);
    assert_int_equal(dns_query_parse(out, (size_t)n, &q), 0);
    assert_int_equal(q.qname_len, 255);
    /* The same with its final dot. */
    strcat(name, ".");
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), n);
    /* 254 characters would be 256 bytes, with or without a final dot. */
    long_name(name, 254);
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
    strcat(name, ".");
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
    /* 255 and more. */
    long_name(name, 255);
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
    long_name(name, 290);
    assert_int_equal(dns_build_query(name, DNS_TYPE_A, 1, 1232, out, sizeof(out)), -EINVAL);
}

static void test_build_query_enospc(void **state)
{
    (void)state;
    uint8_t out[64];
    int n = dns_build_query("dns.test", DNS_TYPE_A, 1, 1232, out, sizeof(out));
    assert_int_equal(n, 37);
    memset(out, 0xee, sizeof(out));
    assert_int_equal(dns_build_query("dns.test", DNS_TYPE_A, 1, 1232, out, 36), -ENOSPC);
    assert_int_equal(out[0], 0xee); /* nothing written */
    assert_int_equal(dns_build_query("dns.test", DNS_TYPE_A, 1, 1232, out, 37), 37);
    assert_int_equal(dns_build_query("dns.test", DNS_TYPE_A, 1, 0, out, 25), -ENOSPC);
    assert_int_equal(dns_build_query("dns.test", DNS_TYPE_A, 1, 0, out, 26), 26);
    assert_int_equal(dns_build_query("dns.test", DNS_TYPE_A, 1, 0, out, 0), -ENOSPC);
    /* An invalid name is invalid whatever the room. */
    assert_int_equal(dns_build_query("a..b", DNS_TYPE_A, 1, 0, out, 0), -EINVAL);
}

/* --- dns_answer_addrs ----------------------------------------------------------------- */

static const uint8_t ADDR6_1[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t ADDR6_2[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

/* The start of a NOERROR answer to dns.example/qtype with an answers; records follow. */
static void addrs_answer(struct pkt *p, uint16_t qtype, uint16_t an, uint16_t ar)
{
    put_hdr(p, 0x4242, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, an, 0, ar);
    put_question(p, "dns.example", qtype, 1);
}

/* A record owned by the question's name (a pointer to it). */
static void put_rr(struct pkt *p, uint16_t type, uint16_t cls, uint32_t ttl, const void *rdata,
                   uint16_t rdlen)
{
    put_ptr(p, DNS_HEADER_LEN);
    put_rr_fixed(p, type, cls, ttl, rdlen);
    put_bytes(p, rdata, rdlen);
}

static void test_addrs_a(void **state)
{
    (void)state;
    struct pkt p;
    static const uint8_t addr2[4] = {198, 51, 100, 7};
    addrs_answer(&p, DNS_TYPE_A, 2, 0);
    put_rr(&p, DNS_TYPE_A, 1, 300, ADDR1, 4);
    put_rr(&p, DNS_TYPE_A, 1, 200, addr2, 4);
    uint8_t out[4][16];
    memset(out, 0xee, sizeof(out));
    size_t n = 99;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 4, &n, &ttl), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ttl, 200);
    assert_memory_equal(out[0], ADDR1, 4);
    assert_memory_equal(out[1], addr2, 4);
    /* An A record fills the first 4 bytes and no more. */
    assert_int_equal(out[0][4], 0xee);
    assert_int_equal(out[0][15], 0xee);
    assert_int_equal(out[2][0], 0xee);
}

static void test_addrs_aaaa(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_AAAA, 2, 0);
    put_rr(&p, DNS_TYPE_AAAA, 1, 3600, ADDR6_1, 16);
    put_rr(&p, DNS_TYPE_AAAA, 1, 3600, ADDR6_2, 16);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_AAAA, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ttl, 3600);
    assert_memory_equal(out[0], ADDR6_1, 16);
    assert_memory_equal(out[1], ADDR6_2, 16);
}

static void test_addrs_cname_chain_then_a(void **state)
{
    (void)state;
    struct pkt p;
    static const uint8_t addr2[4] = {198, 51, 100, 7};
    /* dns.example CNAME edge.cdn.test; edge.cdn.test A, A. */
    addrs_answer(&p, DNS_TYPE_A, 3, 0);
    put_ptr(&p, DNS_HEADER_LEN);
    put_rr_fixed(&p, DNS_TYPE_CNAME, 1, 30, 15);
    size_t target = p.n;
    put_name(&p, "edge.cdn.test");
    put_ptr(&p, (uint16_t)target);
    put_rr_fixed(&p, DNS_TYPE_A, 1, 120, 4);
    put_bytes(&p, ADDR1, 4);
    put_ptr(&p, (uint16_t)target);
    put_rr_fixed(&p, DNS_TYPE_A, 1, 120, 4);
    put_bytes(&p, addr2, 4);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out[0], ADDR1, 4);
    assert_memory_equal(out[1], addr2, 4);
    /* The TTL is that of the addresses: the CNAME's is not theirs. */
    assert_int_equal(ttl, 120);
}

static void test_addrs_only_qtype_taken(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_A, 4, 0);
    put_rr(&p, DNS_TYPE_AAAA, 1, 10, ADDR6_1, 16);
    put_rr(&p, DNS_TYPE_A, 1, 500, ADDR1, 4);
    put_rr(&p, DNS_TYPE_TXT, 1, 5, "\3abc", 4);
    put_rr(&p, DNS_TYPE_AAAA, 1, 20, ADDR6_2, 16);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ttl, 500);
    assert_memory_equal(out[0], ADDR1, 4);
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_AAAA, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ttl, 10);
    assert_memory_equal(out[0], ADDR6_1, 16);
    assert_memory_equal(out[1], ADDR6_2, 16);
}

static void test_addrs_class_ch_ignored(void **state)
{
    (void)state;
    struct pkt p;
    /* A CHAOS A record holds a name and a 16-bit address (RFC 1035 §3.4.1 is for IN): its
     * length is no fault, and it is not an address of ours. */
    addrs_answer(&p, DNS_TYPE_A, 2, 0);
    put_rr(&p, DNS_TYPE_A, 3, 5, "\1a\0\x12\x34", 5);
    put_rr(&p, DNS_TYPE_A, 1, 60, ADDR1, 4);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ttl, 60);
    assert_memory_equal(out[0], ADDR1, 4);
}

static void test_addrs_more_than_max(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_A, 5, 0);
    for (uint8_t i = 0; i < 5; i++) {
        uint8_t addr[4] = {192, 0, 2, (uint8_t)(10 + i)};
        /* The last two, which do not fit, have the smallest TTLs. */
        put_rr(&p, DNS_TYPE_A, 1, i < 3 ? 300u - i : 7u, addr, 4);
    }
    uint8_t out[3][16];
    memset(out, 0, sizeof(out));
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 3, &n, &ttl), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ttl, 298);
    for (uint8_t i = 0; i < 3; i++) {
        uint8_t addr[4] = {192, 0, 2, (uint8_t)(10 + i)};
        assert_memory_equal(out[i], addr, 4);
    }
    /* No room at all. */
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, NULL, 0, &n, &ttl), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ttl, UINT32_MAX);
}

static void test_addrs_bad_rdlength_ebadmsg(void **state)
{
    (void)state;
    struct pkt p;
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    /* An A record of 5 bytes parses (its RDATA is opaque to dns_answer_parse), but is
     * not an address. */
    addrs_answer(&p, DNS_TYPE_A, 2, 0);
    put_rr(&p, DNS_TYPE_A, 1, 60, ADDR1, 4);
    put_rr(&p, DNS_TYPE_A, 1, 60, "\1\2\3\4\5", 5);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), -EBADMSG);
    assert_int_equal(n, 0);
    /* Even when it comes after max addresses. */
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 1, &n, &ttl), -EBADMSG);
    /* An AAAA of 4 bytes. */
    addrs_answer(&p, DNS_TYPE_AAAA, 1, 0);
    put_rr(&p, DNS_TYPE_AAAA, 1, 60, ADDR1, 4);
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_AAAA, out, 8, &n, &ttl), -EBADMSG);
    /* But a malformed record of a type not asked for is none of our business. */
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 0);
}

static void test_addrs_nodata(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_AAAA, 0, 0);
    uint8_t out[8][16];
    size_t n = 99;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_AAAA, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ttl, UINT32_MAX);
}

static void test_addrs_answer_section_only(void **state)
{
    (void)state;
    struct pkt p;
    /* An A in the additional section (glue, say) is not an answer. */
    addrs_answer(&p, DNS_TYPE_A, 1, 1);
    put_rr(&p, DNS_TYPE_A, 1, 60, ADDR1, 4);
    static const uint8_t glue[4] = {203, 0, 113, 9};
    put_rr(&p, DNS_TYPE_A, 1, 1, glue, 4);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ttl, 60);
    assert_memory_equal(out[0], ADDR1, 4);
}

static void test_addrs_ttl_top_bit_is_zero(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_A, 2, 0);
    put_rr(&p, DNS_TYPE_A, 1, 60, ADDR1, 4);
    put_rr(&p, DNS_TYPE_A, 1, 0x80000001u, ADDR1, 4);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 1;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ttl, 0);
}

static void test_addrs_with_opt(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_A, 1, 1);
    put_rr(&p, DNS_TYPE_A, 1, 60, ADDR1, 4);
    put_opt(&p, 1232, 0, 0, false, 0);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ttl, 60);
}

static void test_addrs_invalid_message_ebadmsg(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_A, 1, 0);
    put_rr(&p, DNS_TYPE_A, 1, 60, ADDR1, 4);
    uint8_t out[8][16];
    size_t n = 99;
    uint32_t ttl = 0;
    /* Cut short, and a query rather than an answer. */
    assert_int_equal(dns_answer_addrs(p.b, p.n - 1, DNS_TYPE_A, out, 8, &n, &ttl), -EBADMSG);
    assert_int_equal(n, 0);
    assert_int_equal(ttl, UINT32_MAX);
    p.b[2] &= 0x7f;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_A, out, 8, &n, &ttl), -EBADMSG);
    assert_int_equal(dns_answer_addrs(p.b, 3, DNS_TYPE_A, out, 8, &n, &ttl), -EBADMSG);
}

static void test_addrs_other_qtype_einval(void **state)
{
    (void)state;
    struct pkt p;
    addrs_answer(&p, DNS_TYPE_TXT, 1, 0);
    put_rr(&p, DNS_TYPE_TXT, 1, 60, "\3abc", 4);
    uint8_t out[8][16];
    size_t n = 0;
    uint32_t ttl = 0;
    assert_int_equal(dns_answer_addrs(p.b, p.n, DNS_TYPE_TXT, out, 8, &n, &ttl), -EINVAL);
    assert_int_equal(n, 0);
}

/* ---- RFC 7830/8467 padding: the query's flag and dns_pad_answer ---- */

/* A query for example.com A with an OPT record holding the given option bytes. */
static void query_with_options(struct pkt *p, uint16_t flags, uint8_t version, const uint8_t *opts,
                               uint16_t optlen)
{
    put_hdr(p, 0x5150, flags, 1, 0, 0, 1);
    put_question(p, "example.com", DNS_TYPE_A, 1);
    put_opt(p, 1232, 0, version, false, optlen);
    if (optlen)
        put_bytes(p, opts, optlen);
}

static void test_query_padding_flag(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_query q;
    /* An empty Padding option, the form kdig +padding sends when the query is aligned. */
    static const uint8_t empty[] = {0, 12, 0, 0};
    /* Padding with content: RFC 7830 §3 asks for zeros but a receiver takes any. */
    static const uint8_t junk[] = {0, 12, 0, 3, 'a', 'b', 'c'};
    /* Keepalive, then ECS, then padding last. */
    static const uint8_t after[] = {0, 11, 0, 0, 0, 8, 0, 4, 0, 1, 0, 0, 0, 12, 0, 1, 0};
    /* Keepalive alone: no padding asked for. */
    static const uint8_t keepalive[] = {0, 11, 0, 0};
    /* Option code 13 is not Padding (nor is 0x0c00). */
    static const uint8_t near[] = {0, 13, 0, 0, 0x0c, 0, 0, 0};

    query_with_options(&p, DNS_FLAG_RD, 0, empty, sizeof(empty));
    assert_int_equal(parse(&p, &q), 0);
    assert_true(q.padding);
    query_with_options(&p, DNS_FLAG_RD, 0, junk, sizeof(junk));
    assert_int_equal(parse(&p, &q), 0);
    assert_true(q.padding);
    query_with_options(&p, DNS_FLAG_RD, 0, after, sizeof(after));
    assert_int_equal(parse(&p, &q), 0);
    assert_true(q.padding);
    query_with_options(&p, DNS_FLAG_RD, 0, keepalive, sizeof(keepalive));
    assert_int_equal(parse(&p, &q), 0);
    assert_false(q.padding);
    query_with_options(&p, DNS_FLAG_RD, 0, near, sizeof(near));
    assert_int_equal(parse(&p, &q), 0);
    assert_false(q.padding);
    query_edns(&p, 1, "example.com", 1232, true);
    assert_int_equal(parse(&p, &q), 0);
    assert_false(q.padding);
    query_plain(&p, 1, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    assert_false(q.padding);

    /* Kept with the rest of the OPT record for NOTIMP and BADVERS, whose answers carry an
     * OPT record and so are padded too. */
    query_with_options(&p, 4 << 11, 0, empty, sizeof(empty));
    assert_int_equal(parse(&p, &q), DNS_RCODE_NOTIMP);
    assert_true(q.padding);
    query_with_options(&p, DNS_FLAG_RD, 1, empty, sizeof(empty));
    assert_int_equal(parse(&p, &q), DNS_RCODE_BADVERS);
    assert_true(q.padding);
    /* A malformed option list is FORMERR, and its OPT record is not believed. */
    static const uint8_t overrun[] = {0, 12, 0, 9, 0};
    query_with_options(&p, DNS_FLAG_RD, 0, overrun, sizeof(overrun));
    assert_int_equal(parse(&p, &q), DNS_RCODE_FORMERR);
    assert_false(q.padding);
    assert_false(q.has_edns);
}

/* Write into out a valid answer to "example.com A" of exactly len bytes (40 or at least
 * 52): TXT records of opaque data fill what the header, the question and a last, empty OPT
 * record (11 bytes) leave. */
static void answer_of_len(struct pkt *out, size_t len)
{
    size_t fill = len - 12 - 17 - 11;
    assert_true(len <= sizeof(out->b) && (fill == 0 || fill >= 12));
    uint16_t an = 0;
    out->n = 29;
    while (fill > 0) {
        /* Records of at most 268 bytes, none left shorter than a record's 12. */
        size_t take = fill <= 268 ? fill : (fill - 268 >= 12 ? 268 : fill - 12);
        put_ptr(out, 12);
        put_rr_fixed(out, DNS_TYPE_TXT, 1, 300, (uint16_t)(take - 12));
        for (size_t i = 12; i < take; i++)
            put8(out, 'x');
        fill -= take;
        an++;
    }
    put_opt(out, 1232, 0, 0, false, 0);
    size_t end = out->n;
    put_hdr(out, 0x7777, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 1, an, 0, 1);
    put_question(out, "example.com", DNS_TYPE_A, 1);
    out->n = end;
    assert_int_equal(out->n, len);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(out->b, out->n, &a), 0);
    assert_true(a.has_edns);
}

/* msg was padded from len to n bytes: the OPT record at opt_off now ends the message with
 * one more option, Padding, of zeros, and nothing before it changed but OPT's RDLENGTH. */
static void check_padded(const uint8_t *before, size_t len, const uint8_t *msg, size_t n,
                         size_t opt_off)
{
    size_t rdlen = dns_get16(before + opt_off + 9);
    assert_true(n >= len + 4);
    assert_int_equal(dns_get16(msg + opt_off + 9), rdlen + (n - len));
    assert_memory_equal(msg, before, opt_off + 9);
    assert_memory_equal(msg + opt_off + 11, before + opt_off + 11, len - opt_off - 11);
    assert_int_equal(dns_get16(msg + len), DNS_OPT_PADDING);
    assert_int_equal(dns_get16(msg + len + 2), n - len - 4);
    for (size_t i = len + 4; i < n; i++)
        assert_int_equal(msg[i], 0);
    /* Still a valid answer, with the same records. */
    struct dns_answer a, b;
    assert_int_equal(dns_answer_parse(before, len, &a), 0);
    assert_int_equal(dns_answer_parse(msg, n, &b), 0);
    assert_int_equal(b.records_end, a.records_end);
    assert_int_equal(b.ancount, a.ancount);
    assert_int_equal(b.arcount, a.arcount);
    assert_int_equal(b.rcode, a.rcode);
    assert_true(b.has_edns);
    /* Padded once only. */
    static uint8_t again[DNS_MAX_MSG];
    memcpy(again, msg, n);
    assert_int_equal(dns_pad_answer(again, n, sizeof(again), DNS_PAD_RESPONSE), -EINVAL);
}

/* Pad an answer of len bytes with room for cap; returns the result and checks it. */
static int pad_len(size_t len, size_t cap, uint16_t block)
{
    struct pkt p, before;
    answer_of_len(&p, len);
    before = p;
    int n = dns_pad_answer(p.b, p.n, cap, block);
    if (n > 0)
        check_padded(before.b, len, p.b, (size_t)n, len - 11);
    else
        assert_memory_equal(p.b, before.b, sizeof(p.b));
    return n;
}

static void test_pad_to_block(void **state)
{
    (void)state;
    /* With the option's 4 bytes, exactly a block: an empty Padding option. */
    assert_int_equal(pad_len(464, 8192, DNS_PAD_RESPONSE), 468);
    /* One under: one byte of padding. */
    assert_int_equal(pad_len(463, 8192, DNS_PAD_RESPONSE), 468);
    /* One over: the next block. */
    assert_int_equal(pad_len(465, 8192, DNS_PAD_RESPONSE), 936);
    /* Already a multiple: there is no room for the option, so the next block. */
    assert_int_equal(pad_len(468, 8192, DNS_PAD_RESPONSE), 936);
    /* The smallest answer, and larger ones. */
    assert_int_equal(pad_len(40, 8192, DNS_PAD_RESPONSE), 468);
    assert_int_equal(pad_len(1000, 8192, DNS_PAD_RESPONSE), 1404);
    assert_int_equal(pad_len(4680 - 4, 8192, DNS_PAD_RESPONSE), 4680);
    assert_int_equal(pad_len(4680 - 3, 8192, DNS_PAD_RESPONSE), 5148);
    /* Other blocks: the query's, and a block of 1 (just the option). */
    assert_int_equal(pad_len(100, 8192, DNS_PAD_QUERY), 128);
    assert_int_equal(pad_len(124, 8192, DNS_PAD_QUERY), 128);
    assert_int_equal(pad_len(125, 8192, DNS_PAD_QUERY), 256);
    assert_int_equal(pad_len(100, 8192, 1), 104);
}

/* When the next block is beyond what the client may receive, the answer is padded to
 * exactly that much; when not even the option fits, it is left alone. */
static void test_pad_cap(void **state)
{
    (void)state;
    /* Room for the block exactly. */
    assert_int_equal(pad_len(463, 468, DNS_PAD_RESPONSE), 468);
    /* Room for less than the block: padded to the cap. */
    assert_int_equal(pad_len(463, 467, DNS_PAD_RESPONSE), 467);
    assert_int_equal(pad_len(465, 900, DNS_PAD_RESPONSE), 900);
    /* Room for the empty option only. */
    assert_int_equal(pad_len(465, 469, DNS_PAD_RESPONSE), 469);
    /* Not even that: unchanged. */
    assert_int_equal(pad_len(465, 468, DNS_PAD_RESPONSE), -ENOSPC);
    assert_int_equal(pad_len(465, 465, DNS_PAD_RESPONSE), -ENOSPC);
    assert_int_equal(pad_len(465, 0, DNS_PAD_RESPONSE), -ENOSPC);
}

/* Write into msg a valid answer of exactly len bytes, as answer_of_len does, for sizes
 * beyond struct pkt. */
static void big_answer(uint8_t *msg, size_t len)
{
    static const uint8_t question[] = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e', 3,
                                       'c', 'o', 'm', 0,   0,   1,   0,   1};
    static const uint8_t hdr[] = {0x12, 0x34, 0x81, 0x80, 0, 1};
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    size_t off = 29, fill = len - 40;
    uint16_t an = 0;
    memset(msg, 0, 12);
    memcpy(msg, hdr, sizeof(hdr));
    memcpy(msg + 12, question, sizeof(question));
    while (fill > 0) {
        size_t take = fill <= 268 ? fill : (fill - 268 >= 12 ? 268 : fill - 12);
        dns_put16(msg + off, 0xc00c);
        dns_put16(msg + off + 2, DNS_TYPE_TXT);
        dns_put16(msg + off + 4, 1);
        dns_put32(msg + off + 6, 300);
        dns_put16(msg + off + 10, (uint16_t)(take - 12));
        memset(msg + off + 12, 'x', take - 12);
        off += take;
        fill -= take;
        an++;
    }
    memcpy(msg + off, opt, sizeof(opt));
    assert_int_equal(off + sizeof(opt), len);
    dns_put16(msg + 6, an);
    dns_put16(msg + 10, 1);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(msg, len, &a), 0);
}

/* Near the largest message there is: a cap beyond it counts as DNS_MAX_MSG. */
static void test_pad_near_max_message(void **state)
{
    (void)state;
    static uint8_t msg[DNS_MAX_MSG + 16], before[DNS_MAX_MSG + 16];
    struct dns_answer a;

    /* 65517 bytes: the next multiple of 468 (65988) is beyond 65535, so the answer is
     * padded to 65535 exactly, even with a cap beyond it. */
    memset(msg, 0xee, sizeof(msg));
    big_answer(msg, 65517);
    memcpy(before, msg, sizeof(msg));
    assert_int_equal(dns_pad_answer(msg, 65517, SIZE_MAX, DNS_PAD_RESPONSE), DNS_MAX_MSG);
    check_padded(before, 65517, msg, DNS_MAX_MSG, 65517 - 11);
    assert_int_equal(dns_answer_parse(msg, DNS_MAX_MSG, &a), 0);
    /* Nothing written past the largest message. */
    assert_memory_equal(msg + DNS_MAX_MSG, before + DNS_MAX_MSG, 16);

    /* 65516 bytes: 65520 is a multiple of 468, and fits. */
    big_answer(msg, 65516);
    assert_int_equal(dns_pad_answer(msg, 65516, sizeof(msg), DNS_PAD_RESPONSE), 65520);

    /* 65531 bytes take the option's header and nothing more; at 65532 it does not fit. */
    big_answer(msg, 65531);
    assert_int_equal(dns_pad_answer(msg, 65531, SIZE_MAX, DNS_PAD_RESPONSE), DNS_MAX_MSG);
    assert_int_equal(dns_get16(msg + 65531 + 2), 0);
    big_answer(msg, 65532);
    memcpy(before, msg, sizeof(msg));
    assert_int_equal(dns_pad_answer(msg, 65532, SIZE_MAX, DNS_PAD_RESPONSE), -ENOSPC);
    assert_memory_equal(msg, before, sizeof(msg));
}

/* The error answers dns_build_error writes for an EDNS client are padded like any other. */
static void test_pad_error_answers(void **state)
{
    (void)state;
    static const uint8_t empty[] = {0, 12, 0, 0};
    static const int rcodes[] = {DNS_RCODE_REFUSED, DNS_RCODE_SERVFAIL, DNS_RCODE_FORMERR,
                                 DNS_RCODE_NOTIMP, DNS_RCODE_BADVERS};
    struct pkt p;
    struct dns_query q;
    query_with_options(&p, DNS_FLAG_RD, 0, empty, sizeof(empty));
    assert_int_equal(parse(&p, &q), 0);
    for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
        uint8_t out[1024], before[1024];
        int n = dns_build_error(p.b, &q, rcodes[i], 1232, out, sizeof(out));
        assert_int_equal(n, 40);
        memcpy(before, out, sizeof(out));
        int m = dns_pad_answer(out, (size_t)n, sizeof(out), DNS_PAD_RESPONSE);
        assert_int_equal(m, 468);
        check_padded(before, (size_t)n, out, (size_t)m, 29);
    }
    /* Without EDNS there is no OPT record to pad. */
    query_plain(&p, 1, "example.com");
    assert_int_equal(parse(&p, &q), 0);
    uint8_t out[1024];
    int n = dns_build_error(p.b, &q, DNS_RCODE_REFUSED, 1232, out, sizeof(out));
    assert_int_equal(dns_pad_answer(out, (size_t)n, sizeof(out), DNS_PAD_RESPONSE), -EINVAL);
}

/* The answer a client receives from dns_answer_for_client, whole or truncated. */
static void test_pad_client_answer(void **state)
{
    (void)state;
    struct pkt c, u;
    struct dns_query q;
    struct dns_answer a;
    static const uint8_t empty[] = {0, 12, 0, 0};
    put_hdr(&c, 0x0606, DNS_FLAG_RD, 1, 0, 0, 1);
    put_question(&c, "BIG.example.com", DNS_TYPE_TXT, 1);
    put_opt(&c, 1232, 0, 0, false, sizeof(empty));
    put_bytes(&c, empty, sizeof(empty));
    assert_int_equal(parse(&c, &q), 0);
    assert_true(q.padding);
    answer_big_txt(&u);
    assert_int_equal(dns_answer_parse(u.b, u.n, &a), 0);

    uint8_t out[8192], before[8192];
    int n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, DNS_MAX_MSG, out, sizeof(out));
    assert_true(n > 3000);
    memcpy(before, out, sizeof(out));
    int m = dns_pad_answer(out, (size_t)n, sizeof(out), DNS_PAD_RESPONSE);
    assert_true(m > n && m % DNS_PAD_RESPONSE == 0 && m - n < DNS_PAD_RESPONSE + 4);
    check_padded(before, (size_t)n, out, (size_t)m, (size_t)n - 11);

    /* Truncated to its question and OPT (TC=1): padded all the same. */
    n = dns_answer_for_client(u.b, &a, c.b, &q, 1232, 512, out, sizeof(out));
    assert_int_equal(n, 12 + 21 + 11);
    memcpy(before, out, sizeof(out));
    m = dns_pad_answer(out, (size_t)n, sizeof(out), DNS_PAD_RESPONSE);
    assert_int_equal(m, 468);
    check_padded(before, (size_t)n, out, (size_t)m, 33);
}

/* An OPT record with options of its own keeps them, and the padding goes after them. */
static void test_pad_after_other_options(void **state)
{
    (void)state;
    struct pkt p, before;
    static const uint8_t keepalive[] = {0, 11, 0, 2, 0, 100};
    answer_with_opt(&p, 0, 0, true, keepalive, sizeof(keepalive));
    before = p;
    int n = dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE);
    assert_int_equal(n, 468);
    check_padded(before.b, before.n, p.b, (size_t)n, 45);
    unsigned count;
    assert_int_equal(find_option(p.b, (size_t)n, 45, DNS_OPT_KEEPALIVE, &count), 56);
    assert_int_equal(count, 2);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(p.b, (size_t)n, &a), 0);
    assert_int_equal(a.keepalive, 100);
}

/* What cannot be padded is left exactly as it was. */
static void test_pad_refused(void **state)
{
    (void)state;
    struct pkt p, before;
    uint8_t out[8192];

    /* No OPT record. */
    answer_a(&p, 1, "example.com");
    before = p;
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_memory_equal(p.b, before.b, sizeof(p.b));

    /* OPT not last: an A record follows it in the additional section. */
    put_hdr(&p, 3, DNS_FLAG_QR, 1, 0, 0, 2);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    put_a_ptr(&p, 12, 300, ADDR1);
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(p.b, p.n, &a), 0);
    before = p;
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_memory_equal(p.b, before.b, sizeof(p.b));

    /* Already padded. */
    static const uint8_t pad[] = {0, 12, 0, 2, 0, 0};
    answer_with_opt(&p, 0, 0, false, pad, sizeof(pad));
    before = p;
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_memory_equal(p.b, before.b, sizeof(p.b));

    /* No question: a header and an OPT record (an error answer to a query whose question
     * was unreadable has no OPT, but the function must not be fooled). */
    put_hdr(&p, 3, DNS_FLAG_QR | DNS_RCODE_FORMERR, 0, 0, 0, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    before = p;
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_memory_equal(p.b, before.b, sizeof(p.b));

    /* Two questions. */
    put_hdr(&p, 3, DNS_FLAG_QR, 2, 0, 0, 1);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_question(&p, "example.net", DNS_TYPE_A, 1);
    put_opt(&p, 1232, 0, 0, false, 0);
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);

    /* Not a valid message: trailing bytes, a truncated OPT, a header alone, nothing. */
    answer_of_len(&p, 100);
    put8(&p, 0);
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    answer_of_len(&p, 100);
    assert_int_equal(dns_pad_answer(p.b, p.n - 1, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_int_equal(dns_pad_answer(p.b, 12, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_int_equal(dns_pad_answer(p.b, 11, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_int_equal(dns_pad_answer(out, 0, sizeof(out), DNS_PAD_RESPONSE), -EINVAL);

    /* A record whose data ends like an empty OPT record is not one. */
    put_hdr(&p, 3, DNS_FLAG_QR, 1, 1, 0, 0);
    put_question(&p, "example.com", DNS_TYPE_A, 1);
    put_ptr(&p, 12);
    put_rr_fixed(&p, DNS_TYPE_TXT, 1, 300, 12);
    put8(&p, 0);
    put_opt(&p, 1232, 0, 0, false, 0);
    before = p;
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), DNS_PAD_RESPONSE), -EINVAL);
    assert_memory_equal(p.b, before.b, sizeof(p.b));

    /* A block of 0 means nothing. */
    answer_of_len(&p, 100);
    assert_int_equal(dns_pad_answer(p.b, p.n, sizeof(p.b), 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_a_without_edns),
        cmocka_unit_test(test_query_aaaa_with_edns),
        cmocka_unit_test(test_query_edns_without_do),
        cmocka_unit_test(test_query_udp_size_below_512_is_512),
        cmocka_unit_test(test_query_with_options_ok),
        cmocka_unit_test(test_query_record_with_compressed_owner_ok),
        cmocka_unit_test(test_query_label_63_ok),
        cmocka_unit_test(test_query_name_255_ok),
        cmocka_unit_test(test_query_root_name_ok),
        cmocka_unit_test(test_query_empty_dropped),
        cmocka_unit_test(test_query_one_byte_dropped),
        cmocka_unit_test(test_query_eleven_bytes_dropped),
        cmocka_unit_test(test_query_qr_set_dropped),
        cmocka_unit_test(test_query_opcode_iquery_notimp),
        cmocka_unit_test(test_query_opcode_notify_notimp),
        cmocka_unit_test(test_query_opcode_update_notimp),
        cmocka_unit_test(test_query_notimp_keeps_edns),
        cmocka_unit_test(test_query_notimp_with_bad_question),
        cmocka_unit_test(test_query_qdcount_0_formerr),
        cmocka_unit_test(test_query_qdcount_2_formerr),
        cmocka_unit_test(test_query_truncated_qname_formerr),
        cmocka_unit_test(test_query_missing_qname_end_formerr),
        cmocka_unit_test(test_query_truncated_qtype_formerr),
        cmocka_unit_test(test_query_truncated_qclass_formerr),
        cmocka_unit_test(test_query_compressed_qname_formerr),
        cmocka_unit_test(test_query_qname_pointer_to_itself_formerr),
        cmocka_unit_test(test_query_owner_pointer_loop_formerr),
        cmocka_unit_test(test_query_owner_two_pointer_loop_formerr),
        cmocka_unit_test(test_query_owner_pointer_out_of_range_formerr),
        cmocka_unit_test(test_query_owner_forward_pointer_formerr),
        cmocka_unit_test(test_query_owner_pointer_into_header_formerr),
        cmocka_unit_test(test_query_owner_truncated_pointer_formerr),
        cmocka_unit_test(test_query_label_64_formerr),
        cmocka_unit_test(test_query_name_256_formerr),
        cmocka_unit_test(test_query_compressed_owner_over_255_formerr),
        cmocka_unit_test(test_query_label_type_0x40_formerr),
        cmocka_unit_test(test_query_label_type_0x80_formerr),
        cmocka_unit_test(test_query_trailing_after_question_formerr),
        cmocka_unit_test(test_query_trailing_after_opt_formerr),
        cmocka_unit_test(test_query_two_opt_formerr),
        cmocka_unit_test(test_query_opt_in_answer_section_formerr),
        cmocka_unit_test(test_query_opt_in_authority_section_formerr),
        cmocka_unit_test(test_query_opt_non_root_owner_formerr),
        cmocka_unit_test(test_query_option_overruns_opt_rdata_formerr),
        cmocka_unit_test(test_query_partial_option_header_formerr),
        cmocka_unit_test(test_query_rdlength_past_end_formerr),
        cmocka_unit_test(test_query_record_missing_fixed_fields_formerr),
        cmocka_unit_test(test_query_arcount_too_high_formerr),
        cmocka_unit_test(test_query_longer_than_65535_formerr),
        cmocka_unit_test(test_query_edns_version_1_badvers),
        cmocka_unit_test(test_query_edns_version_1_but_malformed_formerr),
        cmocka_unit_test(test_error_formerr_header_only),
        cmocka_unit_test(test_error_formerr_with_question),
        cmocka_unit_test(test_error_notimp),
        cmocka_unit_test(test_error_servfail_without_edns),
        cmocka_unit_test(test_error_servfail_with_edns),
        cmocka_unit_test(test_error_refused),
        cmocka_unit_test(test_error_badvers),
        cmocka_unit_test(test_error_enospc),
        cmocka_unit_test(test_error_bound_from_header),
        cmocka_unit_test(test_error_rcode_out_of_range_einval),
        cmocka_unit_test(test_upstream_exact_bytes),
        cmocka_unit_test(test_upstream_flags_rd_cd_ad_only),
        cmocka_unit_test(test_upstream_question_case_kept),
        cmocka_unit_test(test_upstream_client_ecs_not_forwarded),
        cmocka_unit_test(test_upstream_keepalive),
        cmocka_unit_test(test_upstream_ecs_configured),
        cmocka_unit_test(test_upstream_padding_128),
        cmocka_unit_test(test_upstream_padding_exact_bytes),
        cmocka_unit_test(test_upstream_padding_already_aligned),
        cmocka_unit_test(test_upstream_padding_468),
        cmocka_unit_test(test_query_padding_flag),
        cmocka_unit_test(test_pad_to_block),
        cmocka_unit_test(test_pad_cap),
        cmocka_unit_test(test_pad_near_max_message),
        cmocka_unit_test(test_pad_error_answers),
        cmocka_unit_test(test_pad_client_answer),
        cmocka_unit_test(test_pad_after_other_options),
        cmocka_unit_test(test_pad_refused),
        cmocka_unit_test(test_upstream_do_bit_copied),
        cmocka_unit_test(test_upstream_parses_back),
        cmocka_unit_test(test_upstream_enospc),
        cmocka_unit_test(test_upstream_without_question_einval),
        cmocka_unit_test(test_answer_a_compressed),
        cmocka_unit_test(test_answer_cname_chain),
        cmocka_unit_test(test_answer_nxdomain_soa),
        cmocka_unit_test(test_answer_soa_bad_fixed_fields),
        cmocka_unit_test(test_answer_mx_ok),
        cmocka_unit_test(test_answer_opt_keepalive),
        cmocka_unit_test(test_answer_opt_empty_keepalive_ignored),
        cmocka_unit_test(test_answer_extended_rcode),
        cmocka_unit_test(test_answer_records_after_opt_excluded),
        cmocka_unit_test(test_answer_qr_0_rejected),
        cmocka_unit_test(test_answer_qdcount_0_rejected),
        cmocka_unit_test(test_answer_short_rejected),
        cmocka_unit_test(test_answer_longer_than_65535_rejected),
        cmocka_unit_test(test_answer_pointer_chain_127_ok),
        cmocka_unit_test(test_answer_pointer_chain_128_rejected),
        cmocka_unit_test(test_answer_pointer_target_running_past_its_name_rejected),
        cmocka_unit_test(test_query_pointer_target_running_past_its_name_formerr),
        cmocka_unit_test(test_answer_cname_rdata_ok),
        cmocka_unit_test(test_answer_cname_rdata_forward_pointer),
        cmocka_unit_test(test_answer_cname_rdata_pointer_to_itself),
        cmocka_unit_test(test_answer_cname_rdata_pointer_out_of_range),
        cmocka_unit_test(test_answer_cname_rdata_longer_than_name),
        cmocka_unit_test(test_answer_rdlength_past_end),
        cmocka_unit_test(test_answer_trailing_bytes),
        cmocka_unit_test(test_answer_two_opt),
        cmocka_unit_test(test_answer_opt_in_answer_section),
        cmocka_unit_test(test_question_equal_ignores_case),
        cmocka_unit_test(test_question_equal_different_type),
        cmocka_unit_test(test_question_equal_different_class),
        cmocka_unit_test(test_question_equal_different_name),
        cmocka_unit_test(test_question_equal_different_length),
        cmocka_unit_test(test_question_equal_same_length_other_labels),
        cmocka_unit_test(test_for_client_id_case_rd),
        cmocka_unit_test(test_for_client_opt_removed_without_edns),
        cmocka_unit_test(test_for_client_opt_ours_with_edns),
        cmocka_unit_test(test_for_client_opt_added_when_upstream_had_none),
        cmocka_unit_test(test_for_client_extended_rcode),
        cmocka_unit_test(test_for_client_records_after_opt_dropped),
        cmocka_unit_test(test_for_client_truncated_at_512),
        cmocka_unit_test(test_for_client_truncated_without_edns),
        cmocka_unit_test(test_for_client_whole_at_65535),
        cmocka_unit_test(test_for_client_limit_equal_length_not_truncated),
        cmocka_unit_test(test_for_client_small_cap_truncates),
        cmocka_unit_test(test_for_client_enospc),
        cmocka_unit_test(test_for_client_question_length_differs),
        cmocka_unit_test(test_udp_limit_without_edns),
        cmocka_unit_test(test_udp_limit_capped_by_ours),
        cmocka_unit_test(test_udp_limit_clients_smaller),
        cmocka_unit_test(test_udp_limit_tiny_edns_is_512),
        cmocka_unit_test(test_name_text_root),
        cmocka_unit_test(test_name_text_normal),
        cmocka_unit_test(test_name_text_escapes),
        cmocka_unit_test(test_name_text_compressed),
        cmocka_unit_test(test_name_text_enospc),
        cmocka_unit_test(test_name_text_escape_not_split),
        cmocka_unit_test(test_name_text_longest_fits_proxy_buffer),
        cmocka_unit_test(test_name_text_invalid_name),
        cmocka_unit_test(test_build_query_parses_back),
        cmocka_unit_test(test_build_query_exact_bytes),
        cmocka_unit_test(test_build_query_without_opt),
        cmocka_unit_test(test_build_query_trailing_dot_same),
        cmocka_unit_test(test_build_query_spelling_kept),
        cmocka_unit_test(test_build_query_root_and_empty_einval),
        cmocka_unit_test(test_build_query_empty_label_einval),
        cmocka_unit_test(test_build_query_label_63_ok_64_einval),
        cmocka_unit_test(test_build_query_name_253_ok_254_einval),
        cmocka_unit_test(test_build_query_enospc),
        cmocka_unit_test(test_addrs_a),
        cmocka_unit_test(test_addrs_aaaa),
        cmocka_unit_test(test_addrs_cname_chain_then_a),
        cmocka_unit_test(test_addrs_only_qtype_taken),
        cmocka_unit_test(test_addrs_class_ch_ignored),
        cmocka_unit_test(test_addrs_more_than_max),
        cmocka_unit_test(test_addrs_bad_rdlength_ebadmsg),
        cmocka_unit_test(test_addrs_nodata),
        cmocka_unit_test(test_addrs_answer_section_only),
        cmocka_unit_test(test_addrs_ttl_top_bit_is_zero),
        cmocka_unit_test(test_addrs_with_opt),
        cmocka_unit_test(test_addrs_invalid_message_ebadmsg),
        cmocka_unit_test(test_addrs_other_qtype_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
