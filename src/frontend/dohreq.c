/* dohreq: see include/dnsward/dohreq.h.
 *
 * Everything here judges bytes a client chose, so every read is bounded by a length
 * given with the bytes, and nothing assumes a NUL terminator. */
#include "dnsward/dohreq.h"

#include <stdbool.h>
#include <string.h>

#include "dnsward/base64.h"
#include "dnsward/dns.h"

#define DOHREQ_CTYPE "application/dns-message"

enum dohreq_method dohreq_method(const char *name, size_t len)
{
    if (len == 3 && memcmp(name, "GET", 3) == 0)
        return DOHREQ_GET;
    if (len == 4 && memcmp(name, "POST", 4) == 0)
        return DOHREQ_POST;
    return DOHREQ_OTHER;
}

static char dohreq_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* Does s (of len bytes) begin with prefix (lower case), ignoring ASCII case? */
static bool dohreq_prefix_nocase(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (dohreq_lower(s[i]) != prefix[i])
            return false;
    }
    return true;
}

/* The length of the path part of target (origin-form, RFC 9112 §3.2.1: up to the first
 * '?'), with *start set to where it begins. An absolute-form target
 * ("http://host/dns-query?..."), which RFC 9112 §3.2.2 says a server MUST accept, has its
 * scheme (http or https, case-insensitive: RFC 3986 §3.1) and authority skipped first;
 * what is left may be empty, a path that matches nothing. */
static size_t dohreq_path(const char *target, size_t len, size_t *start)
{
    size_t i = 0;
    size_t skip = dohreq_prefix_nocase(target, len, "http://")    ? 7
                  : dohreq_prefix_nocase(target, len, "https://") ? 8
                                                                  : 0;
    if (skip > 0) {
        i = skip;
        while (i < len && target[i] != '/' && target[i] != '?')
            i++;
    }
    *start = i;
    const char *q = memchr(target + i, '?', len - i);
    return q ? (size_t)(q - (target + i)) : len - i;
}

/* Is the media type ctype (a Content-Type field value) application/dns-message?
 * RFC 9110 §8.3.1: type and subtype are case-insensitive, parameters follow ';' (ignored:
 * a DNS message has none, and "charset" sent by some clients means nothing here), and
 * optional whitespace may surround the value. */
static bool dohreq_ctype_ok(const char *ctype, size_t len)
{
    size_t b = 0;
    size_t e = len;
    const char *semi = memchr(ctype, ';', len);
    if (semi)
        e = (size_t)(semi - ctype);
    while (b < e && (ctype[b] == ' ' || ctype[b] == '\t'))
        b++;
    while (e > b && (ctype[e - 1] == ' ' || ctype[e - 1] == '\t'))
        e--;
    if (e - b != sizeof(DOHREQ_CTYPE) - 1)
        return false;
    for (size_t i = 0; i < e - b; i++) {
        if (dohreq_lower(ctype[b + i]) != DOHREQ_CTYPE[i])
            return false;
    }
    return true;
}

/* Find the value of the first parameter named "dns" in query (the part after '?', of len
 * bytes): '&'-separated name=value pairs (RFC 8484 §4.1 and the URI Template of §4.1.1).
 * The name is compared exactly: parameter names are case-sensitive. "dns" without '='
 * counts as an empty value. Returns false when there is none. */
static bool dohreq_find_dns(const char *query, size_t len, const char **val, size_t *vlen)
{
    size_t i = 0;
    while (i <= len) {
        const char *amp = memchr(query + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - query) : len;
        const char *pair = query + i;
        size_t plen = end - i;
        if (plen >= 3 && memcmp(pair, "dns", 3) == 0 && (plen == 3 || pair[3] == '=')) {
            *val = plen == 3 ? pair + 3 : pair + 4;
            *vlen = plen == 3 ? 0 : plen - 4;
            return true;
        }
        i = end + 1;
    }
    return false;
}

int dohreq_head(const char *path, enum dohreq_method m, const char *target, size_t target_len,
                const char *ctype, size_t ctype_len, uint8_t *out, size_t cap, size_t *outlen)
{
    if (outlen)
        *outlen = 0;

    /* The order when several things are wrong: the resource first (404: nothing is served
     * at another path, whatever the method), then the method (405), then what the method
     * carries (415 for POST's content type, 400 for GET's dns parameter). This is the
     * order in which RFC 9110 §15.5 has a server look at a request: is there a resource,
     * does it allow the method, is the content acceptable. */
    if (target_len == 0)
        return 404;
    size_t start;
    size_t plen = dohreq_path(target, target_len, &start);
    size_t want = strlen(path);
    if (plen != want || memcmp(target + start, path, want) != 0)
        return 404;
    if (m == DOHREQ_OTHER)
        return 405;

    if (m == DOHREQ_POST) {
        /* RFC 8484 §4.1: a POST carries the message with this media type. */
        if (!ctype || !dohreq_ctype_ok(ctype, ctype_len))
            return 415;
        return 0;
    }

    /* GET: the query is the dns parameter. Other parameters (ct= of early drafts, cache
     * busters) are ignored. Only the first dns parameter counts. */
    size_t qstart = start + plen;
    if (qstart >= target_len) /* no '?' */
        return 400;
    const char *val;
    size_t vlen;
    if (!dohreq_find_dns(target + qstart + 1, target_len - qstart - 1, &val, &vlen) || vlen == 0)
        return 400;
    /* RFC 8484 §6: base64url without padding. Trailing '=' padding is accepted all the same
     * (base64url_decode takes it where it completes the last group), as some clients send
     * it; anything percent-encoded is not base64url ('%' is outside the alphabet) and is
     * refused, as is a query longer than cap. */
    int n = base64url_decode(val, vlen, out, cap);
    if (n <= 0)
        return 400;
    *outlen = (size_t)n;
    return 0;
}

int dohreq_check_query(const uint8_t *msg, size_t len)
{
    if (len < DNS_HEADER_LEN)
        return 400;
    struct dns_query q;
    int rc = dns_query_parse(msg, len, &q);
    /* -1 is a response (QR=1) or a short message; FORMERR a malformed one. Neither is a
     * query to hand on: RFC 8484 §4.2.1 lets a server answer 400 for what it cannot parse.
     * NOTIMP and BADVERS are valid queries that the DNS answer itself refuses. */
    if (rc < 0 || rc == DNS_RCODE_FORMERR)
        return 400;
    return 0;
}

uint32_t dohreq_max_age(const uint8_t *answer, size_t len)
{
    struct dns_ttl_scan s;
    /* dns_answer_ttls parses the answer in full (dns_answer_parse) before walking it. */
    if (dns_answer_ttls(answer, len, NULL, 0, &s) < 0 || s.nttl == 0)
        return 0;
    if (s.negative) {
        /* RFC 2308 §5, as the cache computes it: the SOA's TTL or MINIMUM, the smaller,
         * and no longer than any record of the answer; a negative answer without an SOA
         * is not to be cached at all (RFC 2308 §5: SHOULD NOT). */
        if (!s.has_soa)
            return 0;
        return s.soa_ttl < s.min_ttl ? s.soa_ttl : s.min_ttl;
    }
    /* RFC 8484 §5.1: the freshness lifetime is at most the smallest TTL. This holds for
     * any other rcode (SERVFAIL, REFUSED) that carries records too. */
    return s.min_ttl;
}
