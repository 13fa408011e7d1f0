/* dns: the DNS wire format, as much of it as a forwarder needs.
 *
 * Pure functions over byte buffers: no I/O, no allocation, no global state. Every
 * function bounds every read by the length it is given, so any byte string is safe
 * input; this is the most fuzzed code in the tree (tests/fuzz/fuzz_dns.c).
 *
 * Glossary:
 *   query   a message from a client (QR=0) or one we send upstream.
 *   answer  a message from an upstream (QR=1) or one we send a client.
 *   OPT     the EDNS(0) pseudo-record (RFC 6891), at most one, in the additional section.
 *   offsets are from the start of the message; a name is "wire length" long including
 *           its final zero byte (or its final 2-byte compression pointer).
 *
 * Validation follows RFC 1035 §4.1 with the limits of §2.3.4: labels of at most 63
 * bytes, names of at most 255, compression pointers that point strictly backwards into
 * the message (which also rules out loops).
 */
#ifndef DNSWARD_DNS_H
#define DNSWARD_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DNS_HEADER_LEN = 12,
    DNS_MAX_NAME = 255,
    DNS_MAX_LABEL = 63,
    DNS_MAX_MSG = 65535,
    DNS_CLASSIC_UDP = 512,  /* RFC 1035 §4.2.1: without EDNS */
    DNS_EDNS_MIN_UDP = 512, /* RFC 6891 §6.2.5: smaller sizes are treated as 512 */
    DNS_PAD_QUERY = 128,    /* RFC 8467 §4.1: block size for queries */
    DNS_PAD_RESPONSE = 468, /* RFC 8467 §4.1: block size for responses */
};

enum dns_rcode {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
    DNS_RCODE_BADVERS = 16, /* extended: needs an OPT record (RFC 6891 §6.1.3) */
};

enum dns_type {
    DNS_TYPE_A = 1,
    DNS_TYPE_NS = 2,
    DNS_TYPE_CNAME = 5,
    DNS_TYPE_SOA = 6,
    DNS_TYPE_TXT = 16,
    DNS_TYPE_AAAA = 28,
    DNS_TYPE_OPT = 41,
    DNS_TYPE_ANY = 255,
};

enum dns_opt_code {
    DNS_OPT_ECS = 8,        /* RFC 7871 */
    DNS_OPT_KEEPALIVE = 11, /* RFC 7828 */
    DNS_OPT_PADDING = 12,   /* RFC 7830 */
};

/* Header flag bits, as in bytes 2-3 of the header read as a big-endian 16-bit word. */
enum {
    DNS_FLAG_QR = 0x8000,
    DNS_FLAG_AA = 0x0400,
    DNS_FLAG_TC = 0x0200,
    DNS_FLAG_RD = 0x0100,
    DNS_FLAG_RA = 0x0080,
    DNS_FLAG_AD = 0x0020,
    DNS_FLAG_CD = 0x0010,
};
#define DNS_OPCODE(flags) (((flags) >> 11) & 0xf)
#define DNS_RCODE(flags) ((flags)&0xf)

static inline uint16_t dns_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void dns_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint32_t dns_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void dns_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ASCII case folding only: RFC 4343 §3 makes DNS names case-insensitive for the letters
 * A-Z and nothing else. */
static inline uint8_t dns_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* What a forwarder needs to know of a client's query. Offsets point into the message
 * that was parsed, which must outlive any use of them. */
struct dns_query {
    uint16_t id;
    uint16_t flags;
    uint16_t qname_len; /* wire length of QNAME, which starts at DNS_HEADER_LEN */
    uint16_t qtype;
    uint16_t qclass;
    uint16_t question_end; /* offset just past QCLASS */
    bool has_edns;
    bool do_bit;  /* the DO bit of the OPT record (RFC 3225) */
    bool padding; /* the OPT record carried a Padding option (RFC 7830): over an encrypted
                   * transport the answer is to be padded (RFC 8467 §4.1) */
    uint8_t edns_version;
    uint16_t udp_size; /* the client's EDNS payload size (at least 512); 512 without EDNS */
};

/* Parse and validate a client's query.
 *
 * Returns:
 *   0                  a valid standard query: *q is filled in;
 *   -1                 drop silently: shorter than a header, or QR=1 (a response);
 *   DNS_RCODE_NOTIMP   an opcode other than QUERY (RFC 1035 §4.1.1);
 *   DNS_RCODE_FORMERR  QDCOUNT other than 1, a malformed question or record, a label
 *                      over 63 or a name over 255 bytes, a compression pointer out of
 *                      range or not pointing backwards, a compressed QNAME, trailing
 *                      bytes after the last record, more than one OPT, an OPT outside
 *                      the additional section or with a non-root owner;
 *   DNS_RCODE_BADVERS  a valid query whose EDNS version is not 0 (RFC 6891 §6.1.3).
 * For FORMERR, *q holds the ID and flags; q->question_end is non-zero only if the
 * question itself was valid. For NOTIMP and BADVERS the question is valid and *q is
 * filled in as far as the question and the OPT record. */
int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q);

/* Build an error answer with RCODE rcode (FORMERR, SERVFAIL, NOTIMP, REFUSED or BADVERS)
 * to a query whose parse filled in *q. The answer has the query's ID, QR=1, the query's
 * opcode, RD and CD bits, RA=1; the question if q->question_end is non-zero (else
 * QDCOUNT=0); and an OPT record (version 0, our_udp_size, the client's DO bit) if the
 * client sent one or rcode is BADVERS, carrying the upper 8 bits of an extended rcode.
 * Returns the answer's length, or -ENOSPC if cap is too small (DNS_HEADER_LEN + 11 +
 * q->question_end always suffices). */
int dns_build_error(const uint8_t *query, const struct dns_query *q, int rcode,
                    uint16_t our_udp_size, uint8_t *out, size_t cap);

/* Pad msg, a message of len bytes with one question whose last record is its OPT record
 * (as dns_answer_for_client, dns_build_error and the cache write answers), with an EDNS(0)
 * Padding option (RFC 7830) of zero bytes appended to that OPT record (its RDLENGTH and
 * the message grow), so that the whole message is a multiple of block bytes (RFC 8467
 * §4.1: 468 for responses). The message may grow to cap bytes (the room in msg and the
 * most the client may receive, whichever is smaller; at most DNS_MAX_MSG): if the next
 * multiple of block is beyond cap, the message is padded to exactly cap instead, since a
 * responder must pad whatever fits (RFC 7830 §3) and the largest size that fits hides
 * the most. The message is walked and checked in full first, so any bytes are safe input.
 * Returns the new length;
 *   -ENOSPC   not even the option's 4-byte header fits in cap (msg is unchanged);
 *   -EINVAL   block is 0, or msg is not a valid message with exactly one question, an OPT
 *             record that is its last record, and no Padding option yet (msg unchanged).
 * Pure: no allocation. */
int dns_pad_answer(uint8_t *msg, size_t len, size_t cap, uint16_t block);

/* How a query to an upstream is to be written. */
struct dns_upstream_opts {
    uint16_t udp_size;  /* our EDNS payload size, advertised upstream */
    uint16_t pad_block; /* pad the whole message to a multiple of this (RFC 8467); 0: none */
    bool keepalive;     /* add an empty edns-tcp-keepalive option (RFC 7828 §3.2.1) */
    const uint8_t *ecs; /* a whole ECS option's data (RFC 7871 §6) to send, or NULL */
    uint16_t ecs_len;
};

/* Write the query to send upstream for the client query (query, *q): ID 0, the client's
 * RD and CD bits (AD as well, RFC 6840 §5.7), the question exactly as the client spelled
 * it, and one OPT record of version 0 with the client's DO bit, o->udp_size, and the
 * options o asks for: keepalive, then ECS, then padding last. Nothing else of the client's
 * OPT is forwarded (in particular no ECS of the client's). Returns the length, or -ENOSPC.
 * The ID is 0: the transport sets its own (dns_put16(out, id)). */
int dns_upstream_query(const uint8_t *query, const struct dns_query *q,
                       const struct dns_upstream_opts *o, uint8_t *out, size_t cap);

/* What a forwarder needs to know of an upstream's answer. */
struct dns_answer {
    uint16_t id;
    uint16_t flags;
    uint16_t rcode; /* with the extended bits of the OPT record, if any */
    uint16_t question_end;
    uint16_t ancount, nscount, arcount; /* as counted, OPT excluded from arcount */
    uint16_t records_end; /* offset past the last record kept: the OPT record and anything
                           * after it in the additional section are not kept */
    bool has_edns;
    bool do_bit;
    int32_t keepalive; /* RFC 7828 timeout in units of 100 ms, or -1 if not present */
};

/* Parse and validate an upstream's answer completely: QR=1, QDCOUNT=1, a valid question,
 * every record's owner name (and the names inside the RDATA of NS, CNAME, SOA, PTR, MX)
 * valid with backward-only pointers inside the message, RDLENGTH within the message, at
 * most one OPT (in the additional section, root owner), no trailing bytes. Returns 0 and
 * fills *a, or -EBADMSG. */
int dns_answer_parse(const uint8_t *msg, size_t len, struct dns_answer *a);

/* Do the questions of two messages (query or answer) ask the same thing: QNAME equal
 * ignoring ASCII case, QTYPE and QCLASS equal? Both messages must have passed a parse
 * (dns_query_parse or dns_answer_parse) so that their questions are known to be valid. */
bool dns_question_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Write the answer a client receives, from an upstream's parsed answer (ans, *a) and the
 * client's parsed query (query, *q): the client's ID, the upstream's flags (QR, AA, TC,
 * RA, AD, CD; the client's RD), the question as the client spelled it, the records up to
 * a->records_end, and, only if the client sent EDNS, an OPT of version 0 with
 * our_udp_size, the upstream's DO bit and extended rcode (no options: padding and
 * keepalive were for the hop to the upstream).
 *
 * If the whole answer would exceed limit bytes it is truncated (RFC 2181 §9): header,
 * question and OPT only, TC=1, so that the client retries over TCP and never sees a
 * partial RRset. Returns the length written, or -ENOSPC if cap is too small for even
 * the truncated form. */
int dns_answer_for_client(const uint8_t *ans, const struct dns_answer *a, const uint8_t *query,
                          const struct dns_query *q, uint16_t our_udp_size, size_t limit,
                          uint8_t *out, size_t cap);

/* The largest answer a client may receive over UDP: 512 without EDNS, else the client's
 * EDNS payload size capped by our maximum. */
static inline size_t dns_udp_limit(const struct dns_query *q, uint16_t our_max)
{
    if (!q->has_edns)
        return DNS_CLASSIC_UDP;
    return q->udp_size < our_max ? q->udp_size : our_max;
}

/* The cache key bits of a query beyond its question: everything else in a query that can
 * change the answer. AD is kept apart because an answer's AD bit depends on whether the
 * client asked for it (RFC 6840 §5.7: with AD or DO set); with DO set it is implied. */
enum {
    DNS_KEY_EDNS = 0x01, /* the query had an OPT record: the answer carries one */
    DNS_KEY_DO = 0x02,   /* DNSSEC records wanted (RFC 3225) */
    DNS_KEY_CD = 0x04,   /* checking disabled (RFC 4035 §3.2.2) */
    DNS_KEY_AD = 0x08,   /* the AD bit is wanted in the answer (AD or DO set) */
};

/* The key bits (DNS_KEY_*) of a parsed query. */
static inline uint8_t dns_query_key_bits(const struct dns_query *q)
{
    uint8_t bits = 0;
    if (q->has_edns)
        bits |= DNS_KEY_EDNS;
    if (q->do_bit)
        bits |= DNS_KEY_DO | DNS_KEY_AD;
    if (q->flags & DNS_FLAG_CD)
        bits |= DNS_KEY_CD;
    if (q->flags & DNS_FLAG_AD)
        bits |= DNS_KEY_AD;
    return bits;
}

/* What a cache needs to know of an answer's records. */
struct dns_ttl_scan {
    uint16_t rcode;   /* with the extended bits of the OPT record, as struct dns_answer's */
    uint16_t nttl;    /* TTL fields found (every record but OPT) */
    uint16_t opt_off; /* offset of the OPT record, or 0 if there is none */
    uint32_t min_ttl; /* the smallest TTL of those records; UINT32_MAX if there are none */
    bool negative;    /* NXDOMAIN, or NODATA: NOERROR without a record of the type asked */
    bool has_soa;     /* an SOA record in the authority section */
    uint32_t soa_ttl; /* the negative lifetime the first such SOA gives (RFC 2308 §5):
                       * the smaller of its TTL and its MINIMUM field */
};

/* Find the offset of every TTL field of msg (an answer that passed dns_answer_parse, or
 * that dns_answer_for_client wrote) and what a cache needs to judge its lifetime. Offsets
 * are written to ttl_off as long as cap allows; s->nttl counts them all, so nttl > cap
 * means some were not written. "The type asked" is the question's QTYPE; an answer
 * record of type QTYPE (any type for ANY, 255) makes the answer positive, so a CNAME
 * chain that ends without one is NODATA. Returns 0, or -EBADMSG if msg is not a valid
 * message (which a parsed answer never is). Pure: no allocation. */
int dns_answer_ttls(const uint8_t *msg, size_t len, uint16_t *ttl_off, size_t cap,
                    struct dns_ttl_scan *s);

/* Write a name in presentation format ("www.example.com.") for logs. name_off points at
 * a valid (already parsed) name in msg; compression is followed. Returns the string
 * length, or -ENOSPC (out is then still a terminated, truncated string). */
int dns_name_to_text(const uint8_t *msg, size_t len, size_t name_off, char *out, size_t cap);

/* Write a standard query for name (presentation format, "dns.example" or
 * "dns.example.", no escapes) and qtype, class IN, with ID id, RD=1 and an OPT record of
 * version 0 advertising udp_size (0: no OPT). Returns the length, -EINVAL for a name that
 * is empty, has an empty label, a label over 63 bytes or a wire length over 255, or
 * -ENOSPC if cap is too small. */
int dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint16_t udp_size, uint8_t *out,
                    size_t cap);

/* The addresses of an answer that passed dns_answer_parse: the RDATA of every answer
 * record of type qtype (DNS_TYPE_A, 4 bytes, or DNS_TYPE_AAAA, 16 bytes) and class IN,
 * whatever its owner (the bootstrap server is trusted to follow CNAMEs), copied to
 * out[i] (an A record fills the first 4 bytes), at most max of them. *n is set to the
 * number written and *ttl to the smallest TTL of those records (UINT32_MAX if none).
 * Returns 0, -EINVAL for a qtype other than A or AAAA, or -EBADMSG for a record whose
 * RDLENGTH does not fit its type (then *n is 0 and *ttl UINT32_MAX). Pure. */
int dns_answer_addrs(const uint8_t *msg, size_t len, uint16_t qtype, uint8_t (*out)[16], size_t max,
                     size_t *n, uint32_t *ttl);

#endif
