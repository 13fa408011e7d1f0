/* http1: see include/dnsward/http1.h.
 *
 * llhttp does the parsing (request line, field syntax, framing, chunked coding) and calls
 * back with spans of the bytes it was given; this module keeps the few parts the DoH
 * frontend needs, enforces the limits, and pauses llhttp after each whole request so
 * that a buffer holding several pipelined requests yields them one at a time.
 *
 * Header bytes are counted as raw bytes fed to llhttp while the head of a request is
 * being read: while the head is not complete, llhttp is never given more than what is
 * left of the allowance, so whitespace or empty lines that llhttp skips without a
 * callback count too. Once the head is complete the rest of a buffer goes to llhttp
 * whole.
 *
 * Memory: the parser is one allocation; the target, Content-Type and X-Forwarded-For
 * buffers grow (doubling) up to max_header_bytes, the body buffer up to HTTP1_BODY_MAX
 * (or exactly to a Content-Length at once). Buffers are kept for the next request on the
 * connection, except a large body buffer, which http1_next gives back so that an idle
 * keep-alive connection holds little.
 */
#include "dnsward/http1.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

enum {
    HTTP1_BUF_MIN = 128,        /* first allocation of a growing buffer */
    HTTP1_BODY_KEEP = 4096,     /* a body buffer larger than this is freed between requests */
    HTTP1_NAME_KEEP = 24,       /* longest field name we look for: "transfer-encoding" */
    HTTP1_EXPECT_KEEP = 24,     /* enough of an Expect value to compare with 100-continue */
    HTTP1_TE_TOKEN_KEEP = 8,    /* enough of a transfer coding to compare with chunked */
    HTTP1_PENDING_NONE = 0,     /* what the parser holds for the caller */
    HTTP1_PENDING_REQUEST = 1,  /* a whole request, until http1_next */
    HTTP1_PENDING_CONTINUE = 2, /* a head with 100-continue; the next feed goes on */
};

/* Which of the fields we keep is being read. */
enum http1_field {
    HTTP1_F_OTHER,
    HTTP1_F_CTYPE,
    HTTP1_F_XFF,
    HTTP1_F_EXPECT,
    HTTP1_F_TE,
};

/* A buffer that grows up to max bytes. */
struct http1_buf {
    char *data;
    size_t len;
    size_t cap;
};

struct http1_parser {
    llhttp_t llh;
    size_t max_header_bytes;
    int error;   /* the negative status the parser stopped at, or 0 */
    int status;  /* a negative status a callback chose (llhttp then reports a callback error) */
    int pending; /* HTTP1_PENDING_* */
    bool closed; /* a request said the connection ends with it: nothing more is parsed */
    /* Where the bytes llhttp is running over begin, and the last byte before them that
     * is not whitespace, to see what precedes a span. */
    const char *exec_start;
    char prev_nonws;

    /* Per request, reset by http1_next. */
    bool begun;           /* on_message_begin has been called */
    bool headers_done;    /* on_headers_complete has been called: trailers may follow */
    bool in_trailers;     /* the last chunk has been read: the trailer section follows */
    bool trailer_pause;   /* llhttp paused at the last chunk to let the feed loop see it */
    size_t header_bytes;  /* raw bytes of the head so far */
    size_t trailer_bytes; /* raw bytes of the trailer section so far */
    size_t ext_bytes;     /* chunk extension bytes */
    unsigned nfields;
    enum http1_field field;
    char name[HTTP1_NAME_KEEP];
    size_t name_len; /* the whole name's length; only the first HTTP1_NAME_KEEP are kept */
    struct http1_buf target;
    struct http1_buf ctype;
    bool has_ctype;
    struct http1_buf xff;
    bool has_xff;
    bool xff_sep;    /* a new X-Forwarded-For field begins: ", " before its first byte */
    size_t xff_mark; /* where the current field's value begins in xff */
    char expect[HTTP1_EXPECT_KEEP];
    size_t expect_len; /* the whole value's length */
    bool expect_continue;
    /* Transfer-Encoding, read as a list of codings (RFC 9112 §6.1). */
    char te_token[HTTP1_TE_TOKEN_KEEP];
    size_t te_token_len;
    bool te_token_bad; /* whitespace inside it */
    bool te_token_ws;  /* whitespace after some of its characters */
    unsigned te_chunked;
    unsigned te_other;
    struct http1_buf body;
    bool keep_alive;
};

static int http1_fail(struct http1_parser *p, int status)
{
    if (p->status == 0)
        p->status = status;
    return -1;
}

/* Append n bytes to b, growing it (doubling, from HTTP1_BUF_MIN) up to max. Returns false
 * when max would be exceeded or memory runs out (p->status is then set: over the limit is
 * the limit's status, out of memory is 500). */
static bool http1_buf_append(struct http1_parser *p, struct http1_buf *b, const char *at, size_t n,
                             size_t max, int over_status)
{
    /* llhttp calls back with empty spans (an empty value); a buffer not allocated yet
     * has no address to add 0 to. */
    if (n == 0)
        return true;
    if (n > max - b->len) {
        http1_fail(p, over_status);
        return false;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : HTTP1_BUF_MIN;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *d = realloc(b->data, cap);
        if (!d) {
            http1_fail(p, -500);
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, at, n);
    b->len += n;
    return true;
}

/* Make room for exactly cap bytes at once (a body of known length). */
static bool http1_buf_reserve(struct http1_parser *p, struct http1_buf *b, size_t cap)
{
    if (cap <= b->cap)
        return true;
    char *d = realloc(b->data, cap);
    if (!d) {
        http1_fail(p, -500);
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

static void http1_buf_free(struct http1_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static char http1_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* Is s (n bytes) equal to lower (lower case, NUL-terminated), ignoring ASCII case? */
static bool http1_equal_nocase(const char *s, size_t n, const char *lower)
{
    if (n != strlen(lower))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (http1_lower(s[i]) != lower[i])
            return false;
    }
    return true;
}

static bool http1_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Everything that belongs to one request, so that the next one starts clean. Buffers are
 * kept (emptied), except a large body buffer. */
static void http1_reset_request(struct http1_parser *p)
{
    p->begun = false;
    p->headers_done = false;
    p->in_trailers = false;
    p->trailer_pause = false;
    p->header_bytes = 0;
    p->trailer_bytes = 0;
    p->ext_bytes = 0;
    p->nfields = 0;
    p->field = HTTP1_F_OTHER;
    p->name_len = 0;
    p->target.len = 0;
    p->ctype.len = 0;
    p->has_ctype = false;
    p->xff.len = 0;
    p->has_xff = false;
    p->xff_sep = false;
    p->xff_mark = 0;
    p->expect_len = 0;
    p->expect_continue = false;
    p->te_token_len = 0;
    p->te_token_bad = false;
    p->te_token_ws = false;
    p->te_chunked = 0;
    p->te_other = 0;
    p->body.len = 0;
    if (p->body.cap > HTTP1_BODY_KEEP)
        http1_buf_free(&p->body);
    p->keep_alive = false;
}

static struct http1_parser *http1_of(llhttp_t *llh)
{
    return llh->data;
}

static int on_message_begin(llhttp_t *llh)
{
    http1_of(llh)->begun = true;
    return 0;
}

static int on_url(llhttp_t *llh, const char *at, size_t n)
{
    struct http1_parser *p = http1_of(llh);
    /* The request line counts against the header allowance (RFC 9112 §3: a server that
     * receives a longer target than it wishes to parse may answer 414; one status for
     * the whole head keeps it simple, and the head limit is what bounds it). */
    return http1_buf_append(p, &p->target, at, n, p->max_header_bytes, -431) ? 0 : -1;
}

static int on_version_complete(llhttp_t *llh)
{
    /* RFC 9110 §15.6.6: 505 is for a major version not supported. HTTP/2 has its own
     * connection preface and ALPN, so "HTTP/2.0" on this path is a client that got it
     * wrong. Only the versions llhttp knows get here (0.9, 1.0, 1.1, 2.0); a minor
     * version above 1, which RFC 9112 §2.3 would have us take as 1.1, is refused by
     * llhttp as malformed. */
    if (llh->http_major != 1)
        return http1_fail(http1_of(llh), -505);
    return 0;
}

static int on_header_field(llhttp_t *llh, const char *at, size_t n)
{
    struct http1_parser *p = http1_of(llh);
    /* RFC 9112 §5.1: whitespace between a field name and the colon MUST be answered with
     * 400 (a request smuggling vector: proxies disagree on the name). llhttp's loose mode
     * passes "Host :" on with the space in the name. */
    if (memchr(at, ' ', n) || memchr(at, '\t', n))
        return http1_fail(p, -400);
    if (p->name_len < HTTP1_NAME_KEEP) {
        size_t k = HTTP1_NAME_KEEP - p->name_len;
        memcpy(p->name + p->name_len, at, n < k ? n : k);
    }
    p->name_len += n;
    return 0;
}

static int on_header_field_complete(llhttp_t *llh)
{
    struct http1_parser *p = http1_of(llh);
    if (++p->nfields > HTTP1_MAX_FIELDS)
        return http1_fail(p, -431);
    size_t n = p->name_len;
    p->name_len = 0;
    p->field = HTTP1_F_OTHER;
    /* RFC 9110 §5.1: a field name is a token, at least one character; llhttp lets ": x"
     * through as an empty name. */
    if (n == 0)
        return http1_fail(p, -400);
    /* RFC 9110 §6.5.1: trailer fields are not to change how the request is handled, so
     * none of them is kept. */
    if (p->headers_done || n > HTTP1_NAME_KEEP)
        return 0;
    /* RFC 9110 §5.1: field names are case-insensitive. */
    if (http1_equal_nocase(p->name, n, "content-type")) {
        /* RFC 9110 §8.3: a singleton field; two of them make the content ambiguous. */
        if (p->has_ctype)
            return http1_fail(p, -400);
        p->has_ctype = true;
        p->field = HTTP1_F_CTYPE;
    } else if (http1_equal_nocase(p->name, n, "x-forwarded-for")) {
        /* A list field: several field lines are one list, joined by ", " (RFC 9110 §5.3). */
        p->xff_sep = true;
        p->has_xff = true;
        p->field = HTTP1_F_XFF;
    } else if (http1_equal_nocase(p->name, n, "expect")) {
        p->expect_len = 0;
        p->field = HTTP1_F_EXPECT;
    } else if (http1_equal_nocase(p->name, n, "transfer-encoding")) {
        p->field = HTTP1_F_TE;
    }
    return 0;
}

/* The end of one transfer coding of the Transfer-Encoding list. */
static void http1_te_token_end(struct http1_parser *p)
{
    size_t n = p->te_token_len;
    /* RFC 9110 §5.6.1: empty list elements are allowed and ignored. */
    if (n == 0 && !p->te_token_bad)
        ;
    else if (!p->te_token_bad && n <= HTTP1_TE_TOKEN_KEEP &&
             http1_equal_nocase(p->te_token, n, "chunked"))
        p->te_chunked++;
    else
        p->te_other++;
    p->te_token_len = 0;
    p->te_token_bad = false;
    p->te_token_ws = false;
}

static void http1_te_bytes(struct http1_parser *p, const char *at, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = at[i];
        if (c == ',') {
            http1_te_token_end(p);
        } else if (http1_ows(c)) {
            if (p->te_token_len > 0)
                p->te_token_ws = true;
        } else {
            /* A coding with parameters ("gzip;q=1") or with whitespace inside is not
             * chunked either way: only the bare token is. */
            if (p->te_token_ws)
                p->te_token_bad = true;
            if (p->te_token_len < HTTP1_TE_TOKEN_KEEP)
                p->te_token[p->te_token_len] = c;
            if (p->te_token_len <= HTTP1_TE_TOKEN_KEEP)
                p->te_token_len++;
        }
    }
}

static int on_header_value(llhttp_t *llh, const char *at, size_t n)
{
    struct http1_parser *p = http1_of(llh);
    /* A value continues over the next line when that line begins with whitespace
     * (obs-fold): llhttp hands the continuation on as a span that begins after an LF and
     * whitespace. RFC 9112 §5.2: a server MUST refuse it with 400 or replace it; we
     * refuse. Any other span of a value follows the colon (and whitespace), or a byte of
     * the value itself where a feed began in the middle of it. */
    if (n > 0) {
        const char *q = at;
        while (q > p->exec_start && http1_ows(q[-1]))
            q--;
        char before = q > p->exec_start ? q[-1] : p->prev_nonws;
        if (before == '\n')
            return http1_fail(p, -400);
    }
    if (p->headers_done) /* a trailer field */
        return 0;
    switch (p->field) {
    case HTTP1_F_CTYPE:
        if (!http1_buf_append(p, &p->ctype, at, n, p->max_header_bytes, -431))
            return -1;
        break;
    case HTTP1_F_XFF:
        if (n > 0 && p->xff_sep) {
            /* The separator only between two non-empty values. */
            p->xff_sep = false;
            if (p->xff.len > 0 && !http1_buf_append(p, &p->xff, ", ", 2, p->max_header_bytes, -431))
                return -1;
            p->xff_mark = p->xff.len;
        }
        if (!http1_buf_append(p, &p->xff, at, n, p->max_header_bytes, -431))
            return -1;
        break;
    case HTTP1_F_EXPECT:
        if (p->expect_len < HTTP1_EXPECT_KEEP) {
            size_t k = HTTP1_EXPECT_KEEP - p->expect_len;
            memcpy(p->expect + p->expect_len, at, n < k ? n : k);
        }
        p->expect_len += n;
        break;
    case HTTP1_F_TE:
        http1_te_bytes(p, at, n);
        break;
    case HTTP1_F_OTHER:
        break;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *llh)
{
    struct http1_parser *p = http1_of(llh);
    if (p->field == HTTP1_F_EXPECT && p->expect_len <= HTTP1_EXPECT_KEEP) {
        size_t b = 0;
        size_t e = p->expect_len;
        while (b < e && http1_ows(p->expect[b]))
            b++;
        while (e > b && http1_ows(p->expect[e - 1]))
            e--;
        /* RFC 9110 §10.1.1: the expectation is case-insensitive. Any other expectation is
         * ignored (the 417 that section allows is not sent): the request is answered as if
         * there were no Expect at all. */
        if (http1_equal_nocase(p->expect + b, e - b, "100-continue"))
            p->expect_continue = true;
    } else if (p->field == HTTP1_F_TE) {
        http1_te_token_end(p);
    } else if (p->field == HTTP1_F_CTYPE) {
        /* RFC 9112 §5.1: whitespace around a value is not part of it. llhttp drops what
         * precedes the value but keeps what follows it. */
        while (p->ctype.len > 0 && http1_ows(p->ctype.data[p->ctype.len - 1]))
            p->ctype.len--;
    } else if (p->field == HTTP1_F_XFF) {
        /* The value's own first byte is not whitespace, so this stops within it. */
        while (p->xff.len > p->xff_mark && http1_ows(p->xff.data[p->xff.len - 1]))
            p->xff.len--;
    }
    p->field = HTTP1_F_OTHER;
    return 0;
}

static int on_headers_complete(llhttp_t *llh)
{
    struct http1_parser *p = http1_of(llh);
    p->headers_done = true;
    /* A request line without a version ("GET /", HTTP/0.9) gets past llhttp. */
    if (llh->http_major != 1)
        return http1_fail(p, -505);
    if (llh->flags & F_TRANSFER_ENCODING) {
        /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing. */
        if (llh->http_minor == 0)
            return http1_fail(p, -400);
        /* RFC 9112 §6.1: a transfer coding the server does not understand is 501; chunked
         * is the only one understood, and applying it twice is malformed (§6.1: a sender
         * MUST NOT). llhttp alone would say 400 for codings that do not end in chunked and
         * pass "gzip, chunked" on with the body still gzipped. */
        if (p->te_other > 0)
            return http1_fail(p, -501);
        if (p->te_chunked != 1)
            return http1_fail(p, -400);
    }
    bool has_body = (llh->flags & F_CHUNKED) || llh->content_length > 0;
    if (!(llh->flags & F_CHUNKED) && (llh->flags & F_CONTENT_LENGTH)) {
        /* Refused before a byte of it is read (RFC 9110 §15.5.14). */
        if (llh->content_length > HTTP1_BODY_MAX)
            return http1_fail(p, -413);
        if (!http1_buf_reserve(p, &p->body, (size_t)llh->content_length))
            return -1;
    }
    /* RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request, and
     * need not send 100 when the framing says there is no content. */
    if (p->expect_continue && has_body && llh->http_minor >= 1) {
        p->keep_alive = llhttp_should_keep_alive(llh) && llh->method != HTTP_CONNECT;
        p->pending = HTTP1_PENDING_CONTINUE;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_body(llhttp_t *llh, const char *at, size_t n)
{
    struct http1_parser *p = http1_of(llh);
    /* A chunked body is capped as its chunks come; a Content-Length one was checked. */
    return http1_buf_append(p, &p->body, at, n, HTTP1_BODY_MAX, -413) ? 0 : -1;
}

static int on_chunk_header(llhttp_t *llh)
{
    struct http1_parser *p = http1_of(llh);
    /* The last chunk (size 0): the trailer section follows, whose bytes are counted like
     * the head's. llhttp stops here so that the feed loop gives it no more than the
     * allowance from this byte on. */
    if (llh->content_length == 0) {
        p->in_trailers = true;
        p->trailer_pause = true;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_chunk_extension(llhttp_t *llh, const char *at, size_t n)
{
    (void)at;
    struct http1_parser *p = http1_of(llh);
    /* Extensions are ignored (RFC 9112 §7.1.1) but still bytes a client makes us read:
     * as many as a head may have, per request. */
    p->ext_bytes += n;
    if (p->ext_bytes > p->max_header_bytes)
        return http1_fail(p, -400);
    return 0;
}

static int on_message_complete(llhttp_t *llh)
{
    struct http1_parser *p = http1_of(llh);
    /* A CONNECT request turns the connection into a tunnel (RFC 9110 §9.3.6): what follows
     * is not HTTP, so the connection is not to be used again. Other upgrades are ignored
     * (RFC 9110 §7.8: a server MAY) and the connection stays HTTP/1.1. */
    p->keep_alive = llhttp_should_keep_alive(llh) && llh->method != HTTP_CONNECT;
    p->pending = HTTP1_PENDING_REQUEST;
    /* RFC 9112 §9.6: after a request that closes the connection, no further request is
     * processed. llhttp's loose mode would parse on. */
    p->closed = !p->keep_alive;
    return HPE_PAUSED;
}

static const llhttp_settings_t http1_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_message_complete = on_message_complete,
};

struct http1_parser *http1_parser_new(size_t max_header_bytes)
{
    struct http1_parser *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    /* At least one byte: a zero allowance could never let a request through. */
    p->max_header_bytes = max_header_bytes ? max_header_bytes : 1;
    llhttp_init(&p->llh, HTTP_REQUEST, &http1_settings);
    p->llh.data = p;
    http1_reset_request(p);
    return p;
}

void http1_parser_free(struct http1_parser *p)
{
    if (!p)
        return;
    http1_buf_free(&p->target);
    http1_buf_free(&p->ctype);
    http1_buf_free(&p->xff);
    http1_buf_free(&p->body);
    free(p);
}

/* The status for an llhttp error: our own callbacks' choice first, then llhttp's. */
static int http1_status_of(struct http1_parser *p, llhttp_errno_t e)
{
    if (p->status != 0)
        return p->status;
    switch (e) {
    case HPE_INVALID_VERSION:
        /* llhttp refuses the versions it does not know ("HTTP/3.0") itself, after it has
         * read the major digit: a major version of 2 or more is one we do not speak
         * (RFC 9110 §15.6.6). Anything else wrong in the version is malformed. */
        if (p->llh.http_major >= 2)
            return -505;
        return -400;
    default:
        /* Everything else llhttp refuses is a malformed request: bad syntax in the request
         * line or a field, a NUL, CR or LF in a value, Content-Length together with
         * Transfer-Encoding or twice (RFC 9112 §6.3), a Transfer-Encoding whose last
         * coding is not chunked (ibid.), a bad chunk. */
        return -400;
    }
}

static void http1_fill(const struct http1_parser *p, struct http1_request *req)
{
    memset(req, 0, sizeof(*req));
    req->method = llhttp_method_name((llhttp_method_t)p->llh.method);
    req->method_len = strlen(req->method);
    req->target = p->target.data ? p->target.data : "";
    req->target_len = p->target.len;
    if (p->has_ctype) {
        req->content_type = p->ctype.data ? p->ctype.data : "";
        req->content_type_len = p->ctype.len;
    }
    if (p->has_xff) {
        req->forwarded_for = p->xff.data ? p->xff.data : "";
        req->forwarded_for_len = p->xff.len;
    }
    if (p->pending == HTTP1_PENDING_REQUEST) {
        req->body = (const uint8_t *)p->body.data;
        req->body_len = p->body.len;
    }
    req->keep_alive = p->keep_alive;
}

/* Remember the last byte of s (n bytes, just run through llhttp) that is not whitespace. */
static void http1_note_last(struct http1_parser *p, const char *s, size_t n)
{
    while (n > 0 && http1_ows(s[n - 1]))
        n--;
    if (n > 0)
        p->prev_nonws = s[n - 1];
}

int http1_feed(struct http1_parser *p, const uint8_t *data, size_t len, size_t *used,
               struct http1_request *req)
{
    *used = 0;
    if (p->error)
        return p->error;
    if (p->pending == HTTP1_PENDING_REQUEST) {
        /* Fed again before http1_next: the same request, nothing taken. */
        http1_fill(p, req);
        return HTTP1_REQUEST;
    }
    if (p->closed) {
        /* Whatever follows a request that closes the connection is taken and ignored. */
        *used = len;
        return HTTP1_MORE;
    }
    if (p->pending == HTTP1_PENDING_CONTINUE) {
        p->pending = HTTP1_PENDING_NONE;
        llhttp_resume(&p->llh);
    }

    const char *base = (const char *)data;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        /* The head and the trailer section are counted in raw bytes: llhttp gets no more
         * than what is left of the allowance, so the limit is met at the same byte however
         * the stream was cut. */
        size_t *count = !p->headers_done ? &p->header_bytes
                        : p->in_trailers ? &p->trailer_bytes
                                         : NULL;
        if (count && n > p->max_header_bytes - *count)
            n = p->max_header_bytes - *count;
        p->exec_start = base + off;
        llhttp_errno_t e = llhttp_execute(&p->llh, base + off, n);
        if (e == HPE_OK) {
            http1_note_last(p, base + off, n);
            off += n;
            /* All of it was head (or trailer section), and that is not over: a head that
             * is complete stops counting; a trailer section ends with the request, which
             * pauses. */
            if (count && (count != &p->header_bytes || !p->headers_done)) {
                *count += n;
                if (*count >= p->max_header_bytes) {
                    p->error = -431;
                    break;
                }
            }
            continue;
        }
        size_t taken = (size_t)(llhttp_get_error_pos(&p->llh) - (base + off));
        http1_note_last(p, base + off, taken);
        off += taken;
        if (e == HPE_PAUSED_UPGRADE) {
            /* After a request with an Upgrade (or a CONNECT) llhttp stops once more, at
             * the point where we resumed; on_message_complete has already said what
             * becomes of the connection. Parse on as HTTP/1.1. */
            llhttp_resume_after_upgrade(&p->llh);
            continue;
        }
        if (e == HPE_PAUSED && p->trailer_pause) {
            p->trailer_pause = false;
            llhttp_resume(&p->llh);
            continue;
        }
        if (e == HPE_PAUSED && p->pending != HTTP1_PENDING_NONE) {
            *used = off;
            http1_fill(p, req);
            return p->pending == HTTP1_PENDING_REQUEST ? HTTP1_REQUEST : HTTP1_CONTINUE;
        }
        p->error = http1_status_of(p, e);
        break;
    }
    *used = off;
    return p->error ? p->error : HTTP1_MORE;
}

void http1_next(struct http1_parser *p)
{
    if (p->pending != HTTP1_PENDING_REQUEST)
        return;
    p->pending = HTTP1_PENDING_NONE;
    http1_reset_request(p);
    llhttp_resume(&p->llh);
}

bool http1_in_request(const struct http1_parser *p)
{
    return p->begun && p->pending != HTTP1_PENDING_REQUEST;
}

/* The reason phrase of a status (RFC 9110 §15), or "" for one not listed (RFC 9112 §4:
 * the reason phrase may be empty). */
static const char *http1_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/* Append n bytes at *pos if they fit. */
static bool http1_put(uint8_t *out, size_t cap, size_t *pos, const void *s, size_t n)
{
    if (n > cap - *pos)
        return false;
    if (n > 0)
        memcpy(out + *pos, s, n);
    *pos += n;
    return true;
}

static bool http1_puts(uint8_t *out, size_t cap, size_t *pos, const char *s)
{
    return http1_put(out, cap, pos, s, strlen(s));
}

int http1_response(uint8_t *out, size_t cap, int status, const char *ctype, const char *extra,
                   const uint8_t *body, size_t body_len, bool keep_alive)
{
    if (status < 100 || status > 599)
        return -EINVAL;
    /* RFC 9110 §8.6: no Content-Length in a 1xx or 204 response; a 1xx has no content
     * and is not the response that decides about the connection either. */
    bool interim = status < 200;
    bool no_length = interim || status == 204;
    char line[64];
    size_t pos = 0;
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, http1_reason(status));
    if (!http1_put(out, cap, &pos, line, (size_t)n))
        return -ENOSPC;
    if (!no_length) {
        n = snprintf(line, sizeof(line), "content-length: %zu\r\n", body_len);
        if (!http1_put(out, cap, &pos, line, (size_t)n))
            return -ENOSPC;
    }
    if (ctype && !interim &&
        !(http1_puts(out, cap, &pos, "content-type: ") && http1_puts(out, cap, &pos, ctype) &&
          http1_puts(out, cap, &pos, "\r\n")))
        return -ENOSPC;
    if (extra && !http1_puts(out, cap, &pos, extra))
        return -ENOSPC;
    if (!keep_alive && !interim && !http1_puts(out, cap, &pos, "connection: close\r\n"))
        return -ENOSPC;
    if (!http1_puts(out, cap, &pos, "\r\n"))
        return -ENOSPC;
    if (!interim && !no_length && !http1_put(out, cap, &pos, body, body_len))
        return -ENOSPC;
    if (pos > (size_t)INT_MAX)
        return -ENOSPC;
    return (int)pos;
}
