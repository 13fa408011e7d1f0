/* http1: HTTP/1.1 requests read from a byte stream (with llhttp), and the responses to them.
 *
 * Pure: no I/O, no event loop. The DoH frontend feeds it what it reads from a connection and
 * writes what http1_response returns. One request at a time: http1_feed stops after each
 * whole request (llhttp paused), so pipelined requests are answered in order (RFC 9112 §9.3.2).
 * Limits fixed at creation: header bytes (request line + fields, counted as raw bytes,
 * whitespace and empty lines included; the trailer section of a chunked body has an
 * allowance of the same size, counted the same way), header field count (trailer fields
 * included), body bytes (HTTP1_BODY_MAX), chunk extension bytes (the header allowance
 * again). A limit is met at the same byte of the stream however it is cut into feeds.
 *
 * Memory: one allocation for the parser; buffers for the target, Content-Type,
 * X-Forwarded-For and the body grow as needed, the first three up to max_header_bytes,
 * the body up to HTTP1_BODY_MAX. llhttp is used in its default (loose) mode, with the
 * checks RFC 9112 asks of a server that loose mode skips done here (see http1_feed).
 */
#ifndef DNSWARD_HTTP1_H
#define DNSWARD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HTTP1_BODY_MAX = 65535, /* RFC 8484 §6: a DNS message is at most this long */
    HTTP1_MAX_FIELDS = 100, /* header fields per request */
};

/* What http1_feed returns besides a negative HTTP status. */
enum {
    HTTP1_MORE = 0,     /* everything given was taken; no request is complete yet */
    HTTP1_REQUEST = 1,  /* one whole request is in *req */
    HTTP1_CONTINUE = 2, /* the head of a request that sent "Expect: 100-continue" is in *req
                         * (body not read yet): the caller answers "100 Continue" (or a final
                         * error status) and feeds on */
};

/* One request. Strings are not NUL-terminated; all point into the parser and are valid
 * until the next http1_feed or http1_next. */
struct http1_request {
    const char *method;
    size_t method_len;
    const char *target; /* the request-target as sent: "/dns-query?dns=..." */
    size_t target_len;
    const char *content_type; /* NULL when absent */
    size_t content_type_len;
    const char *forwarded_for; /* X-Forwarded-For; several fields joined by ", "; NULL if none */
    size_t forwarded_for_len;
    const uint8_t *body; /* NULL or empty for HTTP1_CONTINUE (the body is not read yet) */
    size_t body_len;
    bool keep_alive; /* the connection may carry another request (llhttp_should_keep_alive:
                      * HTTP/1.1 without "Connection: close", HTTP/1.0 only with
                      * "Connection: keep-alive"); false after a CONNECT */
};

struct http1_parser;

/* A parser allowing max_header_bytes of request line and header fields per request (0 is
 * taken as 1). Returns NULL when out of memory. Free it with http1_parser_free (NULL is
 * fine). */
struct http1_parser *http1_parser_new(size_t max_header_bytes);
void http1_parser_free(struct http1_parser *p);

/* Feed len bytes. *used is set to how many were taken; the rest (a pipelined next
 * request) is to be fed again after http1_next. On HTTP1_REQUEST and HTTP1_CONTINUE,
 * *used is exactly where the request (or its head) ends.
 * Returns HTTP1_MORE, HTTP1_REQUEST, HTTP1_CONTINUE, or the negation of the HTTP status
 * to answer before closing the connection:
 *   -400  malformed request (llhttp error, bad chunked encoding, a Content-Length and a
 *         Transfer-Encoding together, two Content-Length fields even if equal, a header
 *         field name or value that llhttp refuses, an empty field name, whitespace
 *         before the colon, a folded value (obs-fold), two Content-Type fields,
 *         Transfer-Encoding in an HTTP/1.0 request, "chunked" applied twice or not last,
 *         chunk extensions over max_header_bytes in all);
 *   -413  a body over HTTP1_BODY_MAX (known from Content-Length at once, or when the
 *         chunks exceed it);
 *   -431  the head (or the trailer section) over max_header_bytes, or more than
 *         HTTP1_MAX_FIELDS fields;
 *   -500  out of memory;
 *   -501  a Transfer-Encoding with a coding other than chunked ("gzip", "gzip, chunked");
 *   -505  a major version other than 1 (HTTP/2.0, HTTP/3.0, HTTP/0.9 or a request line
 *         without a version); a version llhttp does not know within major version 1
 *         ("HTTP/1.2") or one that is not DIGIT.DIGIT is -400.
 * After an error, the parser takes nothing more.
 *
 * HTTP1_CONTINUE comes once per request, only for an HTTP/1.1 request that carries
 * "Expect: 100-continue" (case-insensitive) and announces a body; any other expectation
 * is ignored (no 417). The next http1_feed reads on into the body (no http1_next between).
 * Feeding again after HTTP1_REQUEST without http1_next returns the same request and takes
 * nothing. After a request whose keep_alive is false, everything fed is taken and ignored
 * (RFC 9112 §9.6: no further request is processed). Calls back nothing. */
int http1_feed(struct http1_parser *p, const uint8_t *data, size_t len, size_t *used,
               struct http1_request *req);

/* The request returned (HTTP1_REQUEST) is done with: get ready for the next one on the
 * connection. Does nothing when no whole request is held. */
void http1_next(struct http1_parser *p);

/* Has a request begun and not been completed (for the header-read timeout)? True from
 * the first byte of a request line (empty lines before it do not count) until
 * HTTP1_REQUEST, and after HTTP1_CONTINUE while the body is read. */
bool http1_in_request(const struct http1_parser *p);

/* Write a whole response into out: the status line (HTTP/1.1, the standard reason phrase,
 * empty for a status it does not know), "content-length" (always, 0 without a body),
 * "content-type: ctype" when ctype is not NULL, the lines in extra ("name: value\r\n"
 * each, or NULL), "connection: close" when keep_alive is false, then the body. A 1xx
 * status (100 Continue) is the status line, extra and the empty line only; a 204 has no
 * content-length and no body (RFC 9110 §8.6). Returns the length, -ENOSPC when cap is too
 * small, or -EINVAL for a status outside 100-599. */
int http1_response(uint8_t *out, size_t cap, int status, const char *ctype, const char *extra,
                   const uint8_t *body, size_t body_len, bool keep_alive);

#endif
