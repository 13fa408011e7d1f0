/* fuzz_dns: every function of the DNS wire module over one input, with the invariants the
 * rest of dnsward relies on checked after each call.
 *
 * The input is one DNS message, so the seed corpus is made of real messages. Its ID (the
 * first two bytes) does not change how a message parses, so it doubles as the choice of
 * options: keepalive, ECS, padding block, our payload size and the case of the client's
 * question. The input is used as it is, then as a query and as an answer at once: a copy
 * with the QR bit flipped (and opcode QUERY) stands for the other side, so that every
 * answer the fuzzer finds also goes through dns_answer_for_client.
 *
 * The addresses of every answer that parses are taken as the bootstrap takes them
 * (dns_answer_addrs), and the input's bytes are also tried as a name to build a query
 * for (dns_build_query). The input, every error answer and every answer for a client
 * that has an OPT record are padded (dns_pad_answer) with several caps.
 *
 * Outputs are written into heap buffers of exactly the capacity passed, so that
 * AddressSanitizer sees any write past cap. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/dns.h"

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint8_t *fz_alloc(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    FZ_CHECK(p != NULL);
    return p;
}

static const uint16_t fz_udp_sizes[4] = {512, 1232, 4096, 65535};

/* Write a name for logs at off with several capacities: the result is always a terminated
 * string within cap, a prefix of the complete rendering, and the largest name, every byte
 * escaped, fits the DNS_MAX_NAME * 4 + 1 bytes the proxy gives it. */
static void fz_name_text(const uint8_t *msg, size_t len, size_t off)
{
    static const size_t caps[] = {1, 2, 5, 17, 64};
    size_t fullcap = DNS_MAX_NAME * 4 + 1;
    char *full = (char *)fz_alloc(fullcap);
    int m = dns_name_to_text(msg, len, off, full, fullcap);
    FZ_CHECK(m == -EBADMSG || (m > 0 && (size_t)m == strlen(full)));
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        char *out = (char *)fz_alloc(caps[i]);
        int n = dns_name_to_text(msg, len, off, out, caps[i]);
        size_t slen = strlen(out);
        FZ_CHECK(slen < caps[i]);
        if (m < 0) {
            FZ_CHECK(n == m && slen == 0);
        } else if (n == -ENOSPC) {
            FZ_CHECK((size_t)m >= caps[i] && memcmp(out, full, slen) == 0);
        } else {
            FZ_CHECK(n == m && strcmp(out, full) == 0);
        }
        free(out);
    }
    FZ_CHECK(dns_name_to_text(msg, len, off, full, 0) == -ENOSPC);
    free(full);
}

/* Check a padding of msg (len bytes) to n bytes in out, with cap, against what padding
 * may change: only OPT's RDLENGTH (two adjacent bytes) before len, then one Padding option
 * of zeros up to n, n a multiple of block unless it is the cap. */
static void fz_pad_check(const uint8_t *msg, size_t len, const uint8_t *out, size_t n, size_t cap,
                         uint16_t block)
{
    size_t limit = cap < DNS_MAX_MSG ? cap : DNS_MAX_MSG;
    FZ_CHECK(n >= len + 4 && n <= limit);
    FZ_CHECK(n % block == 0 || n == limit);
    FZ_CHECK(n - len - 4 < block);
    size_t first = len, last = 0;
    for (size_t i = 0; i < len; i++) {
        if (out[i] != msg[i]) {
            if (first == len)
                first = i;
            last = i;
        }
    }
    FZ_CHECK(first == len || last - first <= 1);
    FZ_CHECK(dns_get16(out + len) == DNS_OPT_PADDING && dns_get16(out + len + 2) == n - len - 4);
    for (size_t i = len + 4; i < n; i++)
        FZ_CHECK(out[i] == 0);
    /* The same message, one option longer: it parses as it did, with padding, and is not
     * padded twice. */
    struct dns_answer a, b;
    if (dns_answer_parse(msg, len, &a) == 0) {
        FZ_CHECK(dns_answer_parse(out, n, &b) == 0);
        FZ_CHECK(a.has_edns && b.has_edns && a.records_end == b.records_end);
        FZ_CHECK(a.rcode == b.rcode && a.keepalive == b.keepalive);
    }
    struct dns_query q, r;
    int qrc = dns_query_parse(msg, len, &q);
    if (qrc >= 0) {
        FZ_CHECK(dns_query_parse(out, n, &r) == qrc);
        FZ_CHECK(r.padding && r.has_edns == q.has_edns && r.question_end == q.question_end);
    }
}

/* Pad msg (len bytes) to block with several caps. must_pad: msg is an answer with an OPT
 * record at its end and no padding, as the proxy pads them, so only room may be lacking. */
static void fz_pad(const uint8_t *msg, size_t len, uint16_t block, bool must_pad)
{
    if (len > DNS_MAX_MSG)
        return;
    /* Exactly DNS_MAX_MSG bytes with a cap beyond: a write past the largest message is
     * caught. */
    uint8_t *out = fz_alloc(DNS_MAX_MSG);
    memcpy(out, msg, len);
    int full = dns_pad_answer(out, len, SIZE_MAX, block);
    FZ_CHECK(full > 0 || full == -EINVAL || full == -ENOSPC);
    FZ_CHECK(full != -ENOSPC || len + 4 > DNS_MAX_MSG);
    FZ_CHECK(!must_pad || full > 0 || full == -ENOSPC);
    if (full > 0)
        fz_pad_check(msg, len, out, (size_t)full, SIZE_MAX, block);
    else
        FZ_CHECK(memcmp(out, msg, len) == 0);
    free(out);

    /* Every cap gives what the full padding gives, or less, never a different verdict
     * on the message. */
    size_t caps[] = {len,
                     len + 3,
                     len + 4,
                     len + 5,
                     full > 0 ? (size_t)full - 1 : len + 100,
                     full > 0 ? (size_t)full : 0};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        size_t cap = caps[i];
        out = fz_alloc(cap > len ? cap : len);
        memcpy(out, msg, len);
        int n = dns_pad_answer(out, len, cap, block);
        if (full == -EINVAL) {
            FZ_CHECK(n == -EINVAL);
        } else if (len + 4 > cap || len + 4 > DNS_MAX_MSG) {
            FZ_CHECK(n == -ENOSPC);
        } else {
            FZ_CHECK(n > 0 && (size_t)n == ((size_t)full < cap ? (size_t)full : cap));
            fz_pad_check(msg, len, out, (size_t)n, cap, block);
        }
        if (n < 0)
            FZ_CHECK(memcmp(out, msg, len) == 0);
        free(out);
    }
}

/* The error answers to a query that parsed with rc (not -1). */
static void fz_build_errors(const uint8_t *msg, size_t len, const struct dns_query *q, int rc,
                            uint16_t our_udp)
{
    static const int rcodes[] = {DNS_RCODE_FORMERR, DNS_RCODE_SERVFAIL, DNS_RCODE_NOTIMP,
                                 DNS_RCODE_REFUSED, DNS_RCODE_BADVERS};
    (void)len;
    for (size_t i = 0; i <= sizeof(rcodes) / sizeof(rcodes[0]); i++) {
        int rcode = i < sizeof(rcodes) / sizeof(rcodes[0]) ? rcodes[i] : rc;
        /* The bound the header promises. */
        size_t cap = DNS_HEADER_LEN + 11 + (size_t)q->question_end;
        uint8_t *out = fz_alloc(cap);
        int n = dns_build_error(msg, q, rcode, our_udp, out, cap);
        FZ_CHECK(n >= DNS_HEADER_LEN && (size_t)n <= cap);
        FZ_CHECK(dns_get16(out) == q->id);
        uint16_t flags = dns_get16(out + 2);
        FZ_CHECK((flags & DNS_FLAG_QR) && DNS_OPCODE(flags) == DNS_OPCODE(q->flags));
        FZ_CHECK(DNS_RCODE(flags) == (rcode & 0xf));
        bool opt = q->has_edns || rcode > 15;
        FZ_CHECK(dns_get16(out + 10) == (opt ? 1 : 0));
        struct dns_answer a;
        int arc = dns_answer_parse(out, (size_t)n, &a);
        if (q->question_end) {
            FZ_CHECK(arc == 0);
            FZ_CHECK(a.has_edns == opt);
            FZ_CHECK(a.rcode == rcode);
            FZ_CHECK(a.records_end == a.question_end + 0u);
            FZ_CHECK(dns_question_equal(msg, len, out, (size_t)n));
        } else {
            FZ_CHECK(arc == -EBADMSG && n == (opt ? 23 : 12));
        }
        /* An error answer with an OPT record is padded when its client asked. */
        if (opt)
            fz_pad(out, (size_t)n, DNS_PAD_RESPONSE, q->question_end != 0);
        /* One byte less does not fit, and nothing is written past cap. */
        FZ_CHECK(dns_build_error(msg, q, rcode, our_udp, out, (size_t)n - 1) == -ENOSPC);
        free(out);
    }
}

/* The query sent upstream for a valid client query. */
static void fz_upstream(const uint8_t *msg, size_t len, const struct dns_query *q, uint16_t seed)
{
    struct dns_upstream_opts o = {
        .udp_size = fz_udp_sizes[(seed >> 4) & 3],
        .keepalive = (seed & 1) != 0,
    };
    static const uint16_t blocks[4] = {0, DNS_PAD_QUERY, DNS_PAD_RESPONSE, 0};
    o.pad_block = blocks[(seed >> 2) & 3];
    if (((seed >> 2) & 3) == 3)
        o.pad_block = (uint16_t)((seed >> 8) + 1);
    if (seed & 2) {
        /* Any bytes will do as ECS data: the option is opaque to us. */
        o.ecs = msg;
        o.ecs_len = (uint16_t)(len < 40 ? len : 40);
    }
    size_t cap = 2048;
    uint8_t *out = fz_alloc(cap);
    int n = dns_upstream_query(msg, q, &o, out, cap);
    FZ_CHECK(n > 0 && (size_t)n <= cap);
    if (o.pad_block)
        FZ_CHECK(n % o.pad_block == 0);
    FZ_CHECK(dns_get16(out) == 0);
    FZ_CHECK(dns_get16(out + 2) == (q->flags & (DNS_FLAG_RD | DNS_FLAG_CD | DNS_FLAG_AD)));
    FZ_CHECK(memcmp(out + DNS_HEADER_LEN, msg + DNS_HEADER_LEN,
                    q->question_end - (size_t)DNS_HEADER_LEN) == 0);

    struct dns_query back;
    FZ_CHECK(dns_query_parse(out, (size_t)n, &back) == 0);
    FZ_CHECK(back.has_edns && back.edns_version == 0);
    FZ_CHECK(back.do_bit == (q->has_edns && q->do_bit));
    FZ_CHECK(back.udp_size == (o.udp_size < 512 ? 512 : o.udp_size));
    FZ_CHECK(back.question_end == q->question_end);
    FZ_CHECK(back.qtype == q->qtype && back.qclass == q->qclass);
    FZ_CHECK(dns_question_equal(msg, len, out, (size_t)n));
    free(out);

    /* Exactly n bytes fit; one less does not. */
    out = fz_alloc((size_t)n);
    FZ_CHECK(dns_upstream_query(msg, q, &o, out, (size_t)n) == n);
    FZ_CHECK(dns_upstream_query(msg, q, &o, out, (size_t)n - 1) == -ENOSPC);
    free(out);
}

/* The answer a client receives, for one limit, checked against what it must contain. */
static void fz_for_client_one(const uint8_t *ans, const struct dns_answer *a, const uint8_t *qm,
                              size_t qlen, const struct dns_query *q, uint16_t our_udp,
                              size_t limit)
{
    size_t opt = q->has_edns ? 11 : 0;
    size_t small = q->question_end + opt;
    size_t whole = a->records_end + opt;
    size_t caps[3] = {whole, small, DNS_MAX_MSG + 11};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *out = fz_alloc(caps[i]);
        int n = dns_answer_for_client(ans, a, qm, q, our_udp, limit, out, caps[i]);
        FZ_CHECK(n > 0 && (size_t)n <= caps[i]);
        bool trunc = whole > limit || whole > caps[i];
        FZ_CHECK((size_t)n == (trunc ? small : whole));
        uint16_t flags = dns_get16(out + 2);
        FZ_CHECK(dns_get16(out) == q->id);
        FZ_CHECK((flags & DNS_FLAG_RD) == (q->flags & DNS_FLAG_RD));
        if (trunc)
            FZ_CHECK((flags & DNS_FLAG_TC) && dns_get16(out + 6) == 0 && dns_get16(out + 8) == 0);
        /* The client's own spelling of the question. */
        FZ_CHECK(memcmp(out + DNS_HEADER_LEN, qm + DNS_HEADER_LEN,
                        q->question_end - (size_t)DNS_HEADER_LEN) == 0);

        struct dns_answer back;
        FZ_CHECK(dns_answer_parse(out, (size_t)n, &back) == 0);
        FZ_CHECK(back.has_edns == q->has_edns);
        FZ_CHECK(back.rcode == (q->has_edns ? a->rcode : (a->rcode & 0xf)));
        FZ_CHECK(back.keepalive == -1);
        FZ_CHECK(back.arcount == (trunc ? 0 : a->arcount));
        FZ_CHECK(back.ancount == (trunc ? 0 : a->ancount));
        FZ_CHECK(back.records_end == (trunc ? q->question_end : a->records_end));
        if (q->has_edns)
            FZ_CHECK(back.do_bit == a->do_bit);
        FZ_CHECK(dns_question_equal(out, (size_t)n, qm, qlen));
        FZ_CHECK(dns_question_equal(out, (size_t)n, ans, a->records_end));
        if (!trunc)
            FZ_CHECK(memcmp(out + a->question_end, ans + a->question_end,
                            (size_t)a->records_end - a->question_end) == 0);
        /* What the client receives, padded for it (once per limit). */
        if (i == 0 && q->has_edns)
            fz_pad(out, (size_t)n, DNS_PAD_RESPONSE, true);
        /* Not even the truncated form fits one byte less than it needs. */
        if (i == 1)
            FZ_CHECK(dns_answer_for_client(ans, a, qm, q, our_udp, limit, out, small - 1) ==
                     -ENOSPC);
        free(out);
    }
}

/* Flip the case of the letters in the labels of the name at the start of the question,
 * leaving every length byte alone: the other side of dns0x20 and of a cache shared
 * between clients. */
static void fz_flip_case(uint8_t *m, size_t len)
{
    size_t p = DNS_HEADER_LEN;
    while (p < len && m[p] != 0 && m[p] <= DNS_MAX_LABEL) {
        size_t n = m[p];
        for (size_t i = 1; i <= n && p + i < len; i++) {
            uint8_t c = (uint8_t)(m[p + i] | 0x20);
            if (c >= 'a' && c <= 'z')
                m[p + i] ^= 0x20;
        }
        p += n + 1;
    }
}

/* One message as an answer, and its twin as the client's query. */
static void fz_for_client(const uint8_t *ans, size_t alen, const uint8_t *qm, size_t qlen,
                          uint16_t our_udp)
{
    struct dns_answer a;
    struct dns_query q;
    int arc = dns_answer_parse(ans, alen, &a);
    int qrc = dns_query_parse(qm, qlen, &q);
    /* The twins differ only in QR, the opcode and the case of the question's letters: both
     * parsers walk them the same way, so they agree (but for an EDNS version, which only a
     * query cares about). */
    FZ_CHECK((arc == 0) == (qrc == 0 || qrc == DNS_RCODE_BADVERS));
    if (arc != 0 || qrc != 0)
        return;
    FZ_CHECK(a.question_end == q.question_end);
    FZ_CHECK(a.records_end <= alen && a.question_end <= a.records_end);
    FZ_CHECK(dns_question_equal(ans, alen, qm, qlen));

    size_t whole = a.records_end + (q.has_edns ? 11u : 0u);
    size_t limits[] = {0,     DNS_HEADER_LEN, DNS_CLASSIC_UDP, dns_udp_limit(&q, our_udp),
                       whole, whole - 1,      whole + 1,       DNS_MAX_MSG};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        fz_for_client_one(ans, &a, qm, qlen, &q, our_udp, limits[i]);
}

/* The addresses of a parsed answer, for both types and several capacities: the result
 * never depends on max but for the cut, and the TTL is set exactly when an address is. */
static void fz_answer_addrs(const uint8_t *msg, size_t len)
{
    static const uint16_t types[2] = {DNS_TYPE_A, DNS_TYPE_AAAA};
    enum { FZ_ADDRS_MAX = 16 };
    for (size_t t = 0; t < 2; t++) {
        uint8_t(*full)[16] = (uint8_t(*)[16])fz_alloc(FZ_ADDRS_MAX * 16);
        size_t nfull = 0;
        uint32_t ttl_full = 0;
        int rc = dns_answer_addrs(msg, len, types[t], full, FZ_ADDRS_MAX, &nfull, &ttl_full);
        FZ_CHECK(rc == 0 || rc == -EBADMSG);
        FZ_CHECK(nfull <= FZ_ADDRS_MAX);
        FZ_CHECK((nfull == 0) == (ttl_full == UINT32_MAX));
        FZ_CHECK(nfull == 0 || ttl_full <= INT32_MAX);
        FZ_CHECK(rc == 0 || nfull == 0);
        static const size_t maxes[] = {0, 1, 3};
        for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
            uint8_t(*out)[16] = maxes[i] ? (uint8_t(*)[16])fz_alloc(maxes[i] * 16) : NULL;
            size_t n = 99;
            uint32_t ttl = 0;
            FZ_CHECK(dns_answer_addrs(msg, len, types[t], out, maxes[i], &n, &ttl) == rc);
            FZ_CHECK(n == (nfull < maxes[i] ? nfull : maxes[i]));
            FZ_CHECK(n == 0 || ttl >= ttl_full);
            for (size_t k = 0; k < n; k++)
                FZ_CHECK(memcmp(out[k], full[k], t == 0 ? 4 : 16) == 0);
            free(out);
        }
        free(full);
    }
}

/* The input's first bytes as a name to ask for: anything dns_build_query accepts must
 * come back from dns_query_parse as the question it was built for, in exactly the length
 * returned. */
static void fz_build_query(const uint8_t *data, size_t size, uint16_t seed)
{
    char name[300];
    size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    uint16_t udp = (seed & 1) ? 0 : fz_udp_sizes[(seed >> 6) & 3];
    uint16_t qtype = (seed & 2) ? DNS_TYPE_AAAA : DNS_TYPE_A;
    size_t cap = DNS_HEADER_LEN + DNS_MAX_NAME + 4 + 11;
    uint8_t *out = fz_alloc(cap);
    int len = dns_build_query(name, qtype, seed, udp, out, cap);
    FZ_CHECK(len > 0 || len == -EINVAL);
    if (len > 0) {
        struct dns_query q;
        FZ_CHECK(dns_query_parse(out, (size_t)len, &q) == 0);
        FZ_CHECK(q.id == seed && q.flags == DNS_FLAG_RD);
        FZ_CHECK(q.qtype == qtype && q.qclass == 1);
        FZ_CHECK(q.has_edns == (udp != 0));
        FZ_CHECK(q.question_end + (udp ? 11u : 0u) == (size_t)len);
        FZ_CHECK(dns_build_query(name, qtype, seed, udp, out, (size_t)len - 1) == -ENOSPC);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t seed = size >= 2 ? dns_get16(data) : 0;
    uint16_t our_udp = fz_udp_sizes[(seed >> 6) & 3];

    /* The input as a client's query. */
    struct dns_query q;
    int rc = dns_query_parse(data, size, &q);
    FZ_CHECK(rc == -1 || rc == 0 || rc == DNS_RCODE_FORMERR || rc == DNS_RCODE_NOTIMP ||
             rc == DNS_RCODE_BADVERS);
    if (rc == -1) {
        FZ_CHECK(size < DNS_HEADER_LEN || (dns_get16(data + 2) & DNS_FLAG_QR));
    } else {
        FZ_CHECK(q.id == dns_get16(data) && q.flags == dns_get16(data + 2));
        FZ_CHECK(q.question_end <= size);
        if (rc == 0 || rc == DNS_RCODE_BADVERS)
            FZ_CHECK(q.question_end != 0);
        if (q.question_end)
            FZ_CHECK(q.question_end == DNS_HEADER_LEN + q.qname_len + 4);
        FZ_CHECK(q.udp_size >= 512 && (q.has_edns || q.udp_size == 512));
        FZ_CHECK(rc != DNS_RCODE_BADVERS || (q.has_edns && q.edns_version != 0));
        if (rc == 0)
            FZ_CHECK(!q.has_edns || q.edns_version == 0);
        fz_build_errors(data, size, &q, rc, our_udp);
        if (rc == 0)
            fz_upstream(data, size, &q, seed);
        if (q.question_end)
            fz_name_text(data, size, DNS_HEADER_LEN);
    }

    /* The input as an upstream's answer. */
    struct dns_answer a;
    if (dns_answer_parse(data, size, &a) == 0) {
        FZ_CHECK(a.id == dns_get16(data) && (a.flags & DNS_FLAG_QR));
        FZ_CHECK(a.question_end <= a.records_end && a.records_end <= size);
        FZ_CHECK(a.has_edns || a.records_end == size);
        FZ_CHECK(a.rcode <= 0xfff && DNS_RCODE(a.rcode) == DNS_RCODE(a.flags));
        FZ_CHECK(a.keepalive >= -1 && a.keepalive <= 0xffff);
        FZ_CHECK(a.has_edns || a.keepalive == -1);
        fz_name_text(data, size, DNS_HEADER_LEN);
        fz_answer_addrs(data, size);
    }

    /* The input and its twin, as answer and query. */
    if (size >= DNS_HEADER_LEN && size <= DNS_MAX_MSG) {
        uint8_t *twin = fz_alloc(size);
        memcpy(twin, data, size);
        twin[2] ^= 0x80;
        bool input_is_answer = (data[2] & 0x80) != 0;
        const uint8_t *qm = input_is_answer ? twin : data;
        const uint8_t *ans = input_is_answer ? data : twin;
        /* The query must be a QUERY to be forwarded at all. */
        if (input_is_answer)
            twin[2] &= (uint8_t)~0x78;
        if (seed & 0x8000)
            fz_flip_case(twin, size);
        if (DNS_OPCODE(dns_get16(qm + 2)) == 0)
            fz_for_client(ans, size, qm, size, our_udp);
        free(twin);
    }

    /* The input itself, padded to a block the seed chooses. */
    static const uint16_t pad_blocks[4] = {DNS_PAD_RESPONSE, DNS_PAD_QUERY, 1, 0};
    uint16_t block = pad_blocks[(seed >> 10) & 3];
    fz_pad(data, size, block ? block : (uint16_t)((seed & 0x3ff) + 1), false);

    /* The question comparison is safe on anything, and symmetric. */
    size_t half = size / 2;
    bool ab = dns_question_equal(data, half, data + half, size - half);
    bool ba = dns_question_equal(data + half, size - half, data, half);
    FZ_CHECK(ab == ba);

    /* The input's bytes as a name to build a query for. */
    fz_build_query(data, size, seed);

    /* A name at any offset: invalid ones must be refused, not followed. */
    if (size > 0)
        fz_name_text(data, size, (size_t)(seed % size));
    return 0;
}
