/* dns: see include/dnsward/dns.h.
 *
 * Every parse goes through one scanner, dns_msg_scan, which walks the question and every
 * record once and remembers what the callers need (where the question ends, where the OPT
 * record is and what it says). The query and the answer parsers differ only in how they
 * judge what the scanner found: a query turns faults into RCODEs for the client, an answer
 * is simply refused. */
#include "dnsward/dns.h"

#include <errno.h>
#include <string.h>

enum {
    DNS_RR_FIXED = 10,  /* TYPE, CLASS, TTL, RDLENGTH after the owner name */
    DNS_OPT_LEN = 11,   /* an OPT record without options: root, TYPE, CLASS, TTL, RDLENGTH */
    DNS_OPTION_HDR = 4, /* OPTION-CODE and OPTION-LENGTH (RFC 6891 §6.1.2) */
    /* Pointer hops allowed in one name. Every hop that adds a label costs at least two of
     * the 255 bytes a name may have, so a valid name needs at most 127; the bound stops a
     * chain of pointers to pointers, which costs nothing, from making each of thousands
     * of records walk the whole message. */
    DNS_MAX_HOPS = DNS_MAX_NAME / 2,
};

/* Types whose RDATA holds domain names that may be compressed (RFC 1035 §3.3, §4.1.4),
 * and which dns_answer_parse therefore checks; the others of them (NS, CNAME, SOA) are in
 * enum dns_type. */
enum {
    DNS_RRTYPE_PTR = 12,
    DNS_RRTYPE_MX = 15,
};

/* What one pass over a message found. */
struct dns_scan {
    size_t qname_len;
    size_t question_end;
    size_t opt_off; /* offset of the OPT record, valid if has_opt */
    uint16_t ar_before_opt;
    bool has_opt;
    uint16_t opt_class;
    uint32_t opt_ttl;
    int32_t keepalive;
    bool padding; /* the OPT record holds a Padding option */
};

/* Where a scan failed: the question, or a record after a valid question. */
enum {
    DNS_SCAN_BAD_QUESTION = -1,
    DNS_SCAN_BAD_RECORD = -2,
};

/* Check the name at off. Returns its wire length at off (up to and including the zero
 * label or the first compression pointer), or -EBADMSG.
 *
 * RFC 1035 §4.1.4: a pointer is two bytes with the top bits 11, and replaces the end of a
 * name by a name that occurs earlier. So a pointer must point past the header (no name
 * can start there) and strictly before the start of the name, or name suffix, in which it
 * is met, and the suffix it leads to must end before that start as well: a compressor
 * only ever points at names it has written in full. Targets then decrease at every hop,
 * so loops are impossible; and every byte of a name reached by a pointer lies before the
 * name, which is what lets dns_answer_for_client drop what follows a record without
 * breaking it. The top bits 01 and 10 are the extended and reserved label types (RFC 6891
 * §5), which are not in use and therefore invalid. §2.3.4: labels of at most 63 bytes,
 * names of at most 255 bytes counted uncompressed. */
static int dns_name_check(const uint8_t *msg, size_t len, size_t off, bool may_compress)
{
    size_t pos = off;
    size_t segment = off; /* where the labels being read started */
    size_t bound = len;   /* and the offset they must stay below */
    size_t total = 1;     /* the final zero label */
    size_t wire = 0;
    unsigned hops = 0;

    for (;;) {
        if (pos >= bound)
            return -EBADMSG;
        uint8_t b = msg[pos];
        if ((b & 0xc0) == 0xc0) {
            if (!may_compress || pos + 1 >= bound)
                return -EBADMSG;
            size_t target = ((size_t)(b & 0x3f) << 8) | msg[pos + 1];
            if (target < DNS_HEADER_LEN || target >= segment || ++hops > DNS_MAX_HOPS)
                return -EBADMSG;
            if (wire == 0)
                wire = pos + 2 - off;
            bound = segment;
            segment = target;
            pos = target;
            continue;
        }
        if ((b & 0xc0) != 0)
            return -EBADMSG;
        if (b == 0)
            break;
        total += (size_t)b + 1;
        if (total > DNS_MAX_NAME)
            return -EBADMSG;
        pos += (size_t)b + 1;
    }
    if (wire == 0)
        wire = pos + 1 - off;
    return (int)wire;
}

/* Check a name that must lie inside [off, end) of the RDATA of a record. Returns the
 * offset just past it, or -EBADMSG. */
static long dns_rdata_name(const uint8_t *msg, size_t len, size_t off, size_t end)
{
    int n = dns_name_check(msg, len, off, true);
    if (n < 0 || off + (size_t)n > end)
        return -EBADMSG;
    return (long)(off + (size_t)n);
}

/* Check the names inside the RDATA of the types that carry them, and that those names
 * and the fixed fields around them fill the RDATA exactly (RFC 1035 §3.3). Other types
 * are opaque to a forwarder. Returns 0 or -EBADMSG. */
static int dns_rdata_check(const uint8_t *msg, size_t len, uint16_t type, size_t rdata, size_t end)
{
    long p;
    switch (type) {
    case DNS_TYPE_NS:
    case DNS_TYPE_CNAME:
    case DNS_RRTYPE_PTR:
        p = dns_rdata_name(msg, len, rdata, end);
        break;
    case DNS_RRTYPE_MX:
        /* PREFERENCE, then EXCHANGE. */
        if (end - rdata < 2)
            return -EBADMSG;
        p = dns_rdata_name(msg, len, rdata + 2, end);
        break;
    case DNS_TYPE_SOA:
        /* MNAME, RNAME, then SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM. */
        p = dns_rdata_name(msg, len, rdata, end);
        if (p < 0)
            return -EBADMSG;
        p = dns_rdata_name(msg, len, (size_t)p, end);
        if (p < 0 || end - (size_t)p != 20)
            return -EBADMSG;
        return 0;
    default:
        return 0;
    }
    if (p < 0 || (size_t)p != end)
        return -EBADMSG;
    return 0;
}

/* Check the options of an OPT record's RDATA [rdata, end): RFC 6891 §6.1.2, each option a
 * code, a length and that many bytes, filling the RDATA exactly. Notes the keepalive
 * timeout (RFC 7828 §3.1) if the option carries one, and whether a Padding option (RFC
 * 7830) is there. Returns 0 or -EBADMSG. */
static int dns_opt_check(const uint8_t *msg, size_t rdata, size_t end, struct dns_scan *s)
{
    size_t p = rdata;
    while (p < end) {
        if (end - p < DNS_OPTION_HDR)
            return -EBADMSG;
        uint16_t code = dns_get16(msg + p);
        size_t olen = dns_get16(msg + p + 2);
        p += DNS_OPTION_HDR;
        if (olen > end - p)
            return -EBADMSG;
        /* RFC 7828 §3.1: a server's option carries a 2-byte TIMEOUT; an empty one (the
         * form clients send) says nothing about the connection. */
        if (code == DNS_OPT_KEEPALIVE && olen == 2 && s->keepalive < 0)
            s->keepalive = dns_get16(msg + p);
        /* RFC 7830 §3: any length, zero included, and the content is not ours to judge. */
        if (code == DNS_OPT_PADDING)
            s->padding = true;
        p += olen;
    }
    return 0;
}

/* Walk the question and every record of msg, checking everything the forwarder relies
 * on. Returns 0, DNS_SCAN_BAD_QUESTION or DNS_SCAN_BAD_RECORD; s->qname_len and
 * s->question_end are set whenever the question is valid. QDCOUNT is the caller's to
 * check: the scanner reads exactly one question. */
static int dns_msg_scan(const uint8_t *msg, size_t len, struct dns_scan *s)
{
    memset(s, 0, sizeof(*s));
    s->keepalive = -1;

    /* RFC 1035 §4.1.4 allows compression only towards earlier names, and nothing before
     * QNAME is a name: a compressed QNAME can only be invalid. */
    int n = dns_name_check(msg, len, DNS_HEADER_LEN, false);
    if (n < 0 || len - DNS_HEADER_LEN - (size_t)n < 4)
        return DNS_SCAN_BAD_QUESTION;
    s->qname_len = (size_t)n;
    s->question_end = DNS_HEADER_LEN + (size_t)n + 4;

    size_t counts[3] = {dns_get16(msg + 6), dns_get16(msg + 8), dns_get16(msg + 10)};
    size_t off = s->question_end;
    uint16_t ar_seen = 0;
    for (int section = 0; section < 3; section++) {
        for (size_t i = 0; i < counts[section]; i++) {
            n = dns_name_check(msg, len, off, true);
            if (n < 0 || len - off - (size_t)n < DNS_RR_FIXED)
                return DNS_SCAN_BAD_RECORD;
            size_t owner = off;
            size_t fixed = off + (size_t)n;
            uint16_t type = dns_get16(msg + fixed);
            size_t rdlen = dns_get16(msg + fixed + 8);
            size_t rdata = fixed + DNS_RR_FIXED;
            if (rdlen > len - rdata)
                return DNS_SCAN_BAD_RECORD;
            off = rdata + rdlen;
            if (type == DNS_TYPE_OPT) {
                /* RFC 6891 §6.1.1: one OPT at most, in the additional section only, with
                 * the root as its owner. */
                if (section != 2 || s->has_opt || msg[owner] != 0)
                    return DNS_SCAN_BAD_RECORD;
                s->has_opt = true;
                s->opt_off = owner;
                s->ar_before_opt = ar_seen;
                s->opt_class = dns_get16(msg + fixed + 2);
                s->opt_ttl = dns_get32(msg + fixed + 4);
                if (dns_opt_check(msg, rdata, off, s) < 0)
                    return DNS_SCAN_BAD_RECORD;
                continue;
            }
            if (dns_rdata_check(msg, len, type, rdata, off) < 0)
                return DNS_SCAN_BAD_RECORD;
            if (section == 2)
                ar_seen++;
        }
    }
    /* RFC 1035 §4.1: the message is its sections and nothing more. */
    if (off != len)
        return DNS_SCAN_BAD_RECORD;
    return 0;
}

/* Copy what the OPT record of a query says into *q (RFC 6891 §6.1.3, RFC 3225 §3). */
static void dns_query_set_edns(struct dns_query *q, const struct dns_scan *s)
{
    q->has_edns = true;
    q->edns_version = (uint8_t)(s->opt_ttl >> 16);
    q->do_bit = (s->opt_ttl & 0x8000) != 0;
    q->padding = s->padding;
    /* RFC 6891 §6.2.5: values below 512 are treated as 512. */
    q->udp_size = s->opt_class < DNS_EDNS_MIN_UDP ? DNS_EDNS_MIN_UDP : s->opt_class;
}

int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q)
{
    memset(q, 0, sizeof(*q));
    q->udp_size = DNS_CLASSIC_UDP;
    if (len < DNS_HEADER_LEN)
        return -1;
    q->id = dns_get16(msg);
    q->flags = dns_get16(msg + 2);
    /* A response is never answered: answering could start a loop between two servers. */
    if (q->flags & DNS_FLAG_QR)
        return -1;
    /* No DNS message is longer than its 16-bit TCP length prefix can say, and the offsets
     * of struct dns_query are 16 bits. */
    if (len > DNS_MAX_MSG)
        return DNS_RCODE_FORMERR;

    bool one_question = dns_get16(msg + 4) == 1;
    struct dns_scan s;
    int rc = one_question ? dns_msg_scan(msg, len, &s) : DNS_SCAN_BAD_QUESTION;
    if (rc != DNS_SCAN_BAD_QUESTION) {
        q->qname_len = (uint16_t)s.qname_len;
        q->qtype = dns_get16(msg + DNS_HEADER_LEN + s.qname_len);
        q->qclass = dns_get16(msg + DNS_HEADER_LEN + s.qname_len + 2);
        q->question_end = (uint16_t)s.question_end;
    }

    /* RFC 1035 §4.1.1: only QUERY is implemented. The question and the OPT record are
     * kept when they are valid so that the NOTIMP answer can echo them. */
    if (DNS_OPCODE(q->flags) != 0) {
        if (rc == 0 && s.has_opt)
            dns_query_set_edns(q, &s);
        return DNS_RCODE_NOTIMP;
    }
    /* RFC 1035 §4.1.2 and RFC 9619: a standard query has exactly one question. */
    if (!one_question)
        return DNS_RCODE_FORMERR;
    if (rc != 0)
        return DNS_RCODE_FORMERR;
    if (s.has_opt) {
        dns_query_set_edns(q, &s);
        /* RFC 6891 §6.1.3: a version we do not implement gets BADVERS, but only for a
         * query that is otherwise valid. */
        if (q->edns_version != 0)
            return DNS_RCODE_BADVERS;
    }
    return 0;
}

/* Write an OPT record without options at p (RFC 6891 §6.1.2, §6.1.3): root owner, CLASS
 * the payload size, TTL the extended RCODE, version 0 and the DO bit. */
static void dns_opt_write(uint8_t *p, uint16_t udp_size, uint8_t ext_rcode, bool do_bit,
                          uint16_t rdlen)
{
    p[0] = 0;
    dns_put16(p + 1, DNS_TYPE_OPT);
    dns_put16(p + 3, udp_size);
    dns_put32(p + 5, ((uint32_t)ext_rcode << 24) | (do_bit ? 0x8000u : 0));
    dns_put16(p + 9, rdlen);
}

int dns_build_error(const uint8_t *query, const struct dns_query *q, int rcode,
                    uint16_t our_udp_size, uint8_t *out, size_t cap)
{
    /* RFC 6891 §6.1.3: an RCODE is 12 bits, the upper 8 of them in the OPT record. */
    if (rcode < 0 || rcode > 0xfff)
        return -EINVAL;
    bool opt = q->has_edns || rcode > 0xf;
    size_t qlen = q->question_end ? q->question_end - DNS_HEADER_LEN : 0;
    size_t need = DNS_HEADER_LEN + qlen + (opt ? DNS_OPT_LEN : 0);
    if (need > cap)
        return -ENOSPC;

    /* RFC 1035 §4.1.1: the ID, opcode and RD are copied from the query; CD as well
     * (RFC 4035 §3.2.2). We are a recursive service, so RA=1. */
    uint16_t flags = (uint16_t)(DNS_FLAG_QR | (q->flags & (0x7800 | DNS_FLAG_RD | DNS_FLAG_CD)) |
                                DNS_FLAG_RA | (rcode & 0xf));
    dns_put16(out, q->id);
    dns_put16(out + 2, flags);
    dns_put16(out + 4, q->question_end ? 1 : 0);
    dns_put16(out + 6, 0);
    dns_put16(out + 8, 0);
    dns_put16(out + 10, opt ? 1 : 0);
    if (qlen)
        memcpy(out + DNS_HEADER_LEN, query + DNS_HEADER_LEN, qlen);
    /* RFC 6891 §7: a responder answers an EDNS query with an OPT record; the DO bit is
     * copied back (RFC 3225 §3). */
    if (opt)
        dns_opt_write(out + DNS_HEADER_LEN + qlen, our_udp_size, (uint8_t)(rcode >> 4),
                      q->has_edns && q->do_bit, 0);
    return (int)need;
}

/* RFC 8467 §4.1: the bytes of padding that bring a message of bare bytes (the Padding
 * option's own 4-byte header included) to a multiple of block. An empty option is allowed
 * (RFC 7830 §3), so a message already on a multiple needs none. */
static size_t dns_pad_len(size_t bare, uint16_t block)
{
    return (block - bare % block) % block;
}

/* Write a Padding option with pad zero bytes at p (RFC 7830 §3: the padding octets SHOULD
 * be zero, so that they say nothing). */
static void dns_padding_write(uint8_t *p, size_t pad)
{
    dns_put16(p, DNS_OPT_PADDING);
    dns_put16(p + 2, (uint16_t)pad);
    memset(p + DNS_OPTION_HDR, 0, pad);
}

int dns_pad_answer(uint8_t *msg, size_t len, size_t cap, uint16_t block)
{
    if (block == 0 || len < DNS_HEADER_LEN || len > DNS_MAX_MSG || dns_get16(msg + 4) != 1)
        return -EINVAL;
    /* The whole message is checked rather than its last 11 bytes trusted: the end of any
     * record's RDATA can look like an empty OPT record. */
    struct dns_scan s;
    if (dns_msg_scan(msg, len, &s) != 0 || !s.has_opt || s.padding)
        return -EINVAL;
    /* The OPT owner is the root, one byte, so its RDLENGTH is at opt_off + 9. */
    size_t rdlen = dns_get16(msg + s.opt_off + DNS_OPT_LEN - 2);
    if (s.opt_off + DNS_OPT_LEN + rdlen != len)
        return -EINVAL;
    if (cap > DNS_MAX_MSG)
        cap = DNS_MAX_MSG;
    if (len + DNS_OPTION_HDR > cap)
        return -ENOSPC;
    size_t pad = dns_pad_len(len + DNS_OPTION_HDR, block);
    if (len + DNS_OPTION_HDR + pad > cap)
        pad = cap - len - DNS_OPTION_HDR;
    /* RDLENGTH cannot overflow: the OPT record lies inside a message of at most
     * DNS_MAX_MSG bytes. */
    dns_put16(msg + s.opt_off + DNS_OPT_LEN - 2, (uint16_t)(rdlen + DNS_OPTION_HDR + pad));
    dns_padding_write(msg + len, pad);
    return (int)(len + DNS_OPTION_HDR + pad);
}

int dns_upstream_query(const uint8_t *query, const struct dns_query *q,
                       const struct dns_upstream_opts *o, uint8_t *out, size_t cap)
{
    if (q->question_end == 0)
        return -EINVAL;
    bool ecs = o->ecs != NULL && o->ecs_len > 0;
    size_t qlen = q->question_end - DNS_HEADER_LEN;
    size_t opt_off = DNS_HEADER_LEN + qlen;
    size_t rdlen =
        (o->keepalive ? DNS_OPTION_HDR : 0) + (ecs ? DNS_OPTION_HDR + (size_t)o->ecs_len : 0);
    size_t pad = 0;
    if (o->pad_block > 0) {
        /* RFC 8467 §4.1: pad the whole message to the first multiple of the block that
         * has room for the option's header. */
        pad = dns_pad_len(opt_off + DNS_OPT_LEN + rdlen + DNS_OPTION_HDR, o->pad_block);
        rdlen += DNS_OPTION_HDR + pad;
    }
    size_t need = opt_off + DNS_OPT_LEN + rdlen;
    if (need > cap || need > DNS_MAX_MSG)
        return -ENOSPC;

    /* RFC 1035 §4.1.1: QR=0, opcode QUERY. RD and CD are the client's to choose, and AD
     * asks for the AD bit in the answer (RFC 6840 §5.7). */
    dns_put16(out, 0);
    dns_put16(out + 2, (uint16_t)(q->flags & (DNS_FLAG_RD | DNS_FLAG_CD | DNS_FLAG_AD)));
    dns_put16(out + 4, 1);
    dns_put16(out + 6, 0);
    dns_put16(out + 8, 0);
    dns_put16(out + 10, 1);
    /* The client's spelling is kept byte for byte: case randomisation (draft-vixie-dnsext-
     * dns0x20) and the case checks of the answer depend on it. */
    memcpy(out + DNS_HEADER_LEN, query + DNS_HEADER_LEN, qlen);
    dns_opt_write(out + opt_off, o->udp_size, 0, q->has_edns && q->do_bit, (uint16_t)rdlen);

    uint8_t *p = out + opt_off + DNS_OPT_LEN;
    if (o->keepalive) {
        /* RFC 7828 §3.2.1: a client sends the option with no TIMEOUT. */
        dns_put16(p, DNS_OPT_KEEPALIVE);
        dns_put16(p + 2, 0);
        p += DNS_OPTION_HDR;
    }
    if (ecs) {
        dns_put16(p, DNS_OPT_ECS);
        dns_put16(p + 2, o->ecs_len);
        memcpy(p + DNS_OPTION_HDR, o->ecs, o->ecs_len);
        p += DNS_OPTION_HDR + o->ecs_len;
    }
    /* Padding goes last so that nothing after it changes the length it was computed for. */
    if (o->pad_block > 0)
        dns_padding_write(p, pad);
    return (int)need;
}

int dns_answer_parse(const uint8_t *msg, size_t len, struct dns_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->keepalive = -1;
    if (len < DNS_HEADER_LEN || len > DNS_MAX_MSG)
        return -EBADMSG;
    uint16_t flags = dns_get16(msg + 2);
    /* An answer is a response to one question (RFC 1035 §4.1.1, RFC 9619). */
    if (!(flags & DNS_FLAG_QR) || dns_get16(msg + 4) != 1)
        return -EBADMSG;
    struct dns_scan s;
    if (dns_msg_scan(msg, len, &s) != 0)
        return -EBADMSG;

    a->id = dns_get16(msg);
    a->flags = flags;
    a->rcode = DNS_RCODE(flags);
    a->question_end = (uint16_t)s.question_end;
    a->ancount = dns_get16(msg + 6);
    a->nscount = dns_get16(msg + 8);
    a->arcount = dns_get16(msg + 10);
    a->records_end = (uint16_t)len;
    if (s.has_opt) {
        /* The OPT record is hop-by-hop (RFC 6891 §6.1.1): the client gets its own. What
         * follows it (a TSIG, say) is dropped with it; no name of a kept record reads any
         * dropped byte, because dns_name_check keeps what a pointer leads to wholly
         * before the name that holds it. */
        a->arcount = s.ar_before_opt;
        a->records_end = (uint16_t)s.opt_off;
        a->has_edns = true;
        a->do_bit = (s.opt_ttl & 0x8000) != 0;
        /* RFC 6891 §6.1.3: the upper 8 bits of the 12-bit RCODE. */
        a->rcode = (uint16_t)(a->rcode | ((s.opt_ttl >> 24) << 4));
        a->keepalive = s.keepalive;
    }
    return 0;
}

bool dns_question_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen < DNS_HEADER_LEN || blen < DNS_HEADER_LEN)
        return false;
    int an = dns_name_check(a, alen, DNS_HEADER_LEN, false);
    int bn = dns_name_check(b, blen, DNS_HEADER_LEN, false);
    if (an < 0 || an != bn)
        return false;
    size_t qlen = (size_t)an + 4;
    if (alen - DNS_HEADER_LEN < qlen || blen - DNS_HEADER_LEN < qlen)
        return false;
    /* Uncompressed names of equal length, compared byte by byte: while they agree their
     * length bytes sit at the same offsets, and a length (at most 63) is never folded, so
     * the labels are compared exactly and only the letters ignoring case. */
    const uint8_t *pa = a + DNS_HEADER_LEN, *pb = b + DNS_HEADER_LEN;
    for (size_t i = 0; i < (size_t)an; i++)
        if (dns_lower(pa[i]) != dns_lower(pb[i]))
            return false;
    return memcmp(pa + an, pb + an, 4) == 0;
}

int dns_answer_for_client(const uint8_t *ans, const struct dns_answer *a, const uint8_t *query,
                          const struct dns_query *q, uint16_t our_udp_size, size_t limit,
                          uint8_t *out, size_t cap)
{
    /* The records are copied at the offsets they had, which holds only if the client's
     * question is exactly as long as the upstream's (dns_question_equal ensures it). */
    if (q->question_end == 0 || a->question_end != q->question_end ||
        a->records_end < a->question_end)
        return -EINVAL;
    size_t qlen = q->question_end - DNS_HEADER_LEN;
    size_t opt = q->has_edns ? DNS_OPT_LEN : 0;
    size_t body = (size_t)a->records_end - a->question_end;
    size_t whole = DNS_HEADER_LEN + qlen + body + opt;
    size_t small = DNS_HEADER_LEN + qlen + opt;
    if (small > cap)
        return -ENOSPC;
    /* RFC 2181 §9: an answer that does not fit is cut to its question with TC=1, never to
     * a partial RRset. What does not fit the caller's buffer is treated alike. */
    bool truncate = whole > limit || whole > cap;

    /* RFC 1035 §4.1.1: RD is copied from the query; everything else is the upstream's.
     * The client sees the low 4 bits of the RCODE in the header, the rest in its OPT. */
    uint16_t flags =
        (uint16_t)((a->flags & ~(DNS_FLAG_RD | 0xf)) | (q->flags & DNS_FLAG_RD) | (a->rcode & 0xf));
    if (truncate)
        flags |= DNS_FLAG_TC;
    dns_put16(out, q->id);
    dns_put16(out + 2, flags);
    dns_put16(out + 4, 1);
    dns_put16(out + 6, truncate ? 0 : a->ancount);
    dns_put16(out + 8, truncate ? 0 : a->nscount);
    dns_put16(out + 10, (uint16_t)((truncate ? 0 : a->arcount) + (opt ? 1 : 0)));
    /* The question as the client spelled it: a client may check the case it sent
     * (draft-vixie-dnsext-dns0x20), and answers are shared between clients. */
    memcpy(out + DNS_HEADER_LEN, query + DNS_HEADER_LEN, qlen);
    size_t n = DNS_HEADER_LEN + qlen;
    if (!truncate) {
        memcpy(out + n, ans + a->question_end, body);
        n += body;
    }
    /* RFC 6891 §7: only a client that sent EDNS gets an OPT record, and it is ours: the
     * upstream's options (padding, keepalive) were for the hop to the upstream. */
    if (opt) {
        dns_opt_write(out + n, our_udp_size, (uint8_t)(a->rcode >> 4), a->do_bit, 0);
        n += opt;
    }
    return (int)n;
}

int dns_answer_ttls(const uint8_t *msg, size_t len, uint16_t *ttl_off, size_t cap,
                    struct dns_ttl_scan *s)
{
    memset(s, 0, sizeof(*s));
    s->min_ttl = UINT32_MAX;
    struct dns_answer a;
    if (dns_answer_parse(msg, len, &a) < 0)
        return -EBADMSG;
    uint16_t qtype = dns_get16(msg + a.question_end - 4);
    bool answered = false;
    size_t counts[3] = {dns_get16(msg + 6), dns_get16(msg + 8), dns_get16(msg + 10)};
    size_t off = a.question_end;
    /* The parse has checked every record, so the walk needs no bounds of its own. */
    for (int section = 0; section < 3; section++) {
        for (size_t i = 0; i < counts[section]; i++) {
            size_t fixed = off + (size_t)dns_name_check(msg, len, off, true);
            uint16_t type = dns_get16(msg + fixed);
            uint32_t ttl = dns_get32(msg + fixed + 4);
            size_t rdlen = dns_get16(msg + fixed + 8);
            size_t end = fixed + DNS_RR_FIXED + rdlen;
            if (type == DNS_TYPE_OPT) {
                s->opt_off = (uint16_t)off;
                off = end;
                continue;
            }
            if (s->nttl < cap)
                ttl_off[s->nttl] = (uint16_t)(fixed + 4);
            s->nttl++;
            /* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
            if (ttl > INT32_MAX)
                ttl = 0;
            if (ttl < s->min_ttl)
                s->min_ttl = ttl;
            if (section == 0 && (type == qtype || qtype == DNS_TYPE_ANY))
                answered = true;
            if (section == 1 && type == DNS_TYPE_SOA && !s->has_soa) {
                /* RFC 2308 §5: the negative lifetime is the smaller of the SOA's TTL and
                 * its MINIMUM field, the last 4 bytes of its RDATA. */
                uint32_t minimum = dns_get32(msg + end - 4);
                if (minimum > INT32_MAX)
                    minimum = 0;
                s->has_soa = true;
                s->soa_ttl = ttl < minimum ? ttl : minimum;
            }
            off = end;
        }
    }
    /* RFC 2308 §1, §2.2: NXDOMAIN, or NOERROR without the data asked for (NODATA). */
    s->rcode = a.rcode;
    s->negative = a.rcode == DNS_RCODE_NXDOMAIN || (a.rcode == DNS_RCODE_NOERROR && !answered);
    return 0;
}

/* Append s to out at *pos if it fits with room for the terminator. */
static bool dns_text_put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (cap - *pos <= n)
        return false;
    memcpy(out + *pos, s, n);
    *pos += n;
    return true;
}

int dns_name_to_text(const uint8_t *msg, size_t len, size_t name_off, char *out, size_t cap)
{
    if (cap == 0)
        return -ENOSPC;
    out[0] = '\0';
    /* Validated again: a name that fails the checks would be one to log, not to crash on. */
    if (dns_name_check(msg, len, name_off, true) < 0)
        return -EBADMSG;

    size_t pos = 0;
    size_t p = name_off;
    int rc = 0;
    for (;;) {
        uint8_t b = msg[p];
        if ((b & 0xc0) == 0xc0) {
            p = ((size_t)(b & 0x3f) << 8) | msg[p + 1];
            continue;
        }
        if (b == 0)
            break;
        for (size_t i = 1; i <= b; i++) {
            uint8_t c = msg[p + i];
            char esc[5];
            size_t n = 1;
            /* RFC 1035 §5.1: \DDD for a byte that is not printable or that would be read
             * as syntax (the label separator and the escape itself). A space is escaped
             * too, so that a logged name is always one word. */
            if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)('0' + c / 100);
                esc[2] = (char)('0' + c / 10 % 10);
                esc[3] = (char)('0' + c % 10);
                n = 4;
            } else {
                esc[0] = (char)c;
            }
            if (!dns_text_put(out, cap, &pos, esc, n)) {
                rc = -ENOSPC;
                goto done;
            }
        }
        if (!dns_text_put(out, cap, &pos, ".", 1)) {
            rc = -ENOSPC;
            goto done;
        }
        p += (size_t)b + 1;
    }
    /* The root is written as a lone dot (RFC 1035 §5.1). */
    if (pos == 0 && !dns_text_put(out, cap, &pos, ".", 1))
        rc = -ENOSPC;
done:
    out[pos] = '\0';
    return rc < 0 ? rc : (int)pos;
}

int dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint16_t udp_size, uint8_t *out,
                    size_t cap)
{
    /* The name is judged before cap, so that an invalid name is -EINVAL whatever room the
     * caller gives. Without its final dot a name of n characters takes n + 2 bytes on the
     * wire (a length byte per label in place of each dot, one before the first label, and
     * the zero label), so no valid name is longer than DNS_MAX_NAME characters with a
     * final dot, and strnlen need not look further. */
    size_t len = strnlen(name, DNS_MAX_NAME + 1);
    if (len > 0 && name[len - 1] == '.')
        len--;
    /* "" and "." are the root, which no upstream is called. */
    if (len == 0 || len + 2 > DNS_MAX_NAME)
        return -EINVAL;
    /* RFC 1035 §2.3.4: labels of 1 to 63 bytes (an empty one would be the root's). */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        if (i == start || i - start > DNS_MAX_LABEL)
            return -EINVAL;
        start = i + 1;
    }
    size_t qend = DNS_HEADER_LEN + len + 2 + 4;
    size_t need = qend + (udp_size ? DNS_OPT_LEN : 0);
    if (need > cap)
        return -ENOSPC;

    /* RFC 1035 §4.1.1: a standard query (QR=0, opcode QUERY) asking for recursion. */
    dns_put16(out, id);
    dns_put16(out + 2, DNS_FLAG_RD);
    dns_put16(out + 4, 1);
    dns_put16(out + 6, 0);
    dns_put16(out + 8, 0);
    dns_put16(out + 10, udp_size ? 1 : 0);
    uint8_t *p = out + DNS_HEADER_LEN;
    start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        *p++ = (uint8_t)(i - start);
        memcpy(p, name + start, i - start);
        p += i - start;
        start = i + 1;
    }
    *p++ = 0;
    dns_put16(p, qtype);
    dns_put16(p + 2, 1); /* class IN */
    if (udp_size)
        dns_opt_write(out + qend, udp_size, 0, false, 0);
    return (int)need;
}

int dns_answer_addrs(const uint8_t *msg, size_t len, uint16_t qtype, uint8_t (*out)[16], size_t max,
                     size_t *n, uint32_t *ttl)
{
    *n = 0;
    *ttl = UINT32_MAX;
    size_t want;
    if (qtype == DNS_TYPE_A)
        want = 4; /* RFC 1035 §3.4.1 */
    else if (qtype == DNS_TYPE_AAAA)
        want = 16; /* RFC 3596 §2.2 */
    else
        return -EINVAL;
    /* Parsed again, as dns_answer_ttls does, so that the walk below may trust every
     * length it reads whatever the caller passes. */
    struct dns_answer a;
    if (dns_answer_parse(msg, len, &a) < 0)
        return -EBADMSG;

    size_t off = a.question_end;
    size_t found = 0;
    uint32_t min_ttl = UINT32_MAX;
    for (size_t i = 0; i < a.ancount; i++) {
        size_t fixed = off + (size_t)dns_name_check(msg, len, off, true);
        uint16_t type = dns_get16(msg + fixed);
        uint16_t cls = dns_get16(msg + fixed + 2);
        uint32_t rttl = dns_get32(msg + fixed + 4);
        size_t rdlen = dns_get16(msg + fixed + 8);
        size_t rdata = fixed + DNS_RR_FIXED;
        off = rdata + rdlen;
        /* The RDATA of an A record is an address in class IN only: other classes define
         * their own (CHAOS's A holds a name and a 16-bit address), so the class is checked
         * before the length. The owner is not checked: it is the question's name or the
         * end of the CNAME chain the server followed, which we take on trust. */
        if (type != qtype || cls != 1)
            continue;
        if (rdlen != want)
            return -EBADMSG;
        /* Records beyond max are still checked, so that an answer is judged the same
         * whatever max is; their TTLs do not count, as their addresses are not used. */
        if (found >= max)
            continue;
        memcpy(out[found], msg + rdata, want);
        found++;
        /* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
        if (rttl > INT32_MAX)
            rttl = 0;
        if (rttl < min_ttl)
            min_ttl = rttl;
    }
    *n = found;
    *ttl = min_ttl;
    return 0;
}
