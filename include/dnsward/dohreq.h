/* dohreq: what RFC 8484 asks of a DoH server's request and response, as pure functions
 * that the HTTP/2 and HTTP/1.1 paths of the DoH frontend share. No I/O, no allocation. */
#ifndef DNSWARD_DOHREQ_H
#define DNSWARD_DOHREQ_H

#include <stddef.h>
#include <stdint.h>

enum dohreq_method {
    DOHREQ_GET,
    DOHREQ_POST,
    DOHREQ_OTHER,
};

/* The method named by name (exact, case-sensitive as RFC 9110 §9.1 says). */
enum dohreq_method dohreq_method(const char *name, size_t len);

/* Judge a request's head: method, target (":path" or the HTTP/1.1 request-target) and
 * content type (NULL when absent), against the configured path (NUL-terminated).
 * Returns 0 when the request may go on: for GET the query, decoded from the `dns`
 * parameter (base64url without padding, RFC 8484 §4.1; other parameters ignored), is in
 * out with its length in *outlen; for POST the body is to be read (*outlen is 0).
 * Otherwise the HTTP status to answer: 404 another path; 405 another method (the response
 * carries "allow: GET, POST"); 415 a POST whose content type is not
 * application/dns-message (parameters after ';', case and surrounding whitespace
 * ignored) or that has none; 400 a GET without `dns`, with an empty one, or one that is
 * not base64url or decodes to more than cap bytes.
 *
 * When several are wrong, the first of 404, 405, then 415 or 400 is returned.
 * The path is the target's part before the first '?', compared exactly (case-sensitive);
 * an absolute-form target ("https://host/dns-query?...", RFC 9112 §3.2.2) is compared
 * by its path. The query string is '&'-separated name=value pairs; the first one named
 * exactly "dns" counts ("dns" without '=' is empty). Trailing '=' padding is accepted
 * (leniently: some clients send it); percent-encoded characters are not base64url (400).
 * Borrows everything; writes only out[0..cap) and *outlen. */
int dohreq_head(const char *path, enum dohreq_method m, const char *target, size_t target_len,
                const char *ctype, size_t ctype_len, uint8_t *out, size_t cap, size_t *outlen);

/* Is msg, of len bytes, a DNS query a DoH server should hand on? Returns 0, or 400 for
 * what is not a DNS query at all: empty, shorter than a header, QR=1, or malformed
 * (dns_query_parse's FORMERR). NOTIMP and BADVERS queries pass: the DNS answer says so. */
int dohreq_check_query(const uint8_t *msg, size_t len);

/* The cache-control max-age of an answer: the smallest TTL of its records (OPT aside; a
 * TTL with the top bit set counts as 0, RFC 2181 §8), whatever the rcode (a SERVFAIL or
 * REFUSED with records too); for NXDOMAIN and NODATA the negative lifetime (RFC 2308 §5:
 * the SOA's TTL or MINIMUM, the smaller, and no longer than any other record's TTL), or
 * 0 when there is no SOA in the authority section; 0 for an answer without records or
 * one that does not parse (dns_answer_parse). The same judgement as src/cache.c's,
 * without its min/max clamps. */
uint32_t dohreq_max_age(const uint8_t *answer, size_t len);

#endif
