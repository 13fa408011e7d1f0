/* doh_server: the DNS-over-HTTPS frontend's inner parts (RFC 8484), shared by its three
 * files and by nothing else (the rest of the tree knows only doh_listener_new in
 * listener.h).
 *
 * Glossary:
 *   listener    one listening socket (src/frontend/doh_server.c): accepting, the
 *               connection limit, the pool of requests, the flusher;
 *   connection  one TCP connection, over TLS (tls_stream) or cleartext (a plain socket),
 *               speaking HTTP/2 (src/frontend/doh_h2.c, nghttp2) or HTTP/1.1
 *               (src/frontend/doh_h1.c, http1.h); which one is decided by ALPN or, in
 *               cleartext, by the first bytes;
 *   request     one DoH exchange: an HTTP/2 stream, or the one HTTP/1.1 request being
 *               served; it may wait in the core (a struct query) for its answer.
 *
 * One request handler serves both HTTP versions (doh_req_*): the versions only read a
 * request's head and body and write its response.
 *
 * Invariants:
 *   - a request's query in the core (req->q) is cancelled before the request is freed,
 *     so the core's answer callback always finds a live request;
 *   - nothing is freed from inside an nghttp2 callback except in on_stream_close, where
 *     nghttp2 says a stream's data may go; a connection is closed only from our own
 *     event callbacks (reading, the flusher, the timer), never from inside nghttp2 or
 *     from the core's answer callback (that one marks the connection and schedules it);
 *   - output is written once per loop iteration per connection (the flusher), and never
 *     pulled from nghttp2 beyond DOH_WRITE_PAUSE bytes queued, so the write queue's cap
 *     is never reached by a client that reads slowly: it stops being read instead.
 */
#ifndef DNSWARD_DOH_SERVER_H
#define DNSWARD_DOH_SERVER_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "dnsward/dns.h"
#include "dnsward/dohreq.h"
#include "dnsward/listener.h"
#include "dnsward/tls_stream.h"

struct nghttp2_session;
struct nghttp2_session_callbacks;
struct nghttp2_option;
struct nghttp2_rcbuf;
struct http1_parser;
struct query;

enum {
    DOH_REQ_INLINE = 1232,        /* a body or an answer up to this lives in the request */
    DOH_MSG_MAX = DNS_MAX_MSG,    /* RFC 8484 §6: a body or an answer is a DNS message */
    DOH_READ_CHUNK = 16384,       /* one read of a cleartext socket */
    DOH_WRITE_PAUSE = 256 * 1024, /* bytes queued for a client: stop reading, stop producing */
    DOH_WRITE_MAX = 1024 * 1024,  /* hard cap of the write queue: beyond it, close */
    DOH_BIG_MAX = 1024 * 1024,    /* per connection: bytes of bodies and answers held beyond
                                   * DOH_REQ_INLINE (large answers waiting for a client) */
    DOH_H1_IN_PAUSE = 16384,      /* pipelined HTTP/1.1 bytes waiting: stop reading */
    DOH_H1_IN_MAX = 4 * 16384,    /* ... and the cap of that buffer */
    DOH_POOL_MAX = 256,           /* free requests kept by a listener */
    DOH_LINGER_MAX = 256 * 1024,  /* bytes dropped while lingering; then reading stops */
};

/* The HTTP/2 connection preface a cleartext client with prior knowledge starts with
 * (RFC 9113 §3.4). */
#define DOH_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define DOH_H2_PREFACE_LEN 24

#define DOH_MEDIA_TYPE "application/dns-message"
#define DOH_LINGER_S 2.0 /* the longest a closing connection lingers */

enum doh_proto {
    DOH_PROTO_NONE, /* TLS handshake, or cleartext bytes not yet telling */
    DOH_PROTO_H2,
    DOH_PROTO_H1,
};

/* A token bucket, for the floods a client may be counted for. */
struct doh_bucket {
    double tokens;
    double last;
};

struct doh_conn;
struct doh_listener;

/* The indexes of the request header fields an HTTP/2 request keeps until its head ends. */
enum doh_hdr {
    DOH_HDR_METHOD,
    DOH_HDR_PATH,
    DOH_HDR_CTYPE,
    DOH_HDR_XFF,
    DOH_HDR_N,
};

struct doh_req {
    struct doh_conn *c;
    LIST_ENTRY(doh_req) entry;    /* c->reqs, or the listener's pool */
    TAILQ_ENTRY(doh_req) reading; /* c->reading: HTTP/2, its request not complete yet */
    struct query *q;              /* waiting in the core for its answer, or NULL */
    double started;               /* when its first byte came (for the header timeout) */
    int32_t id;                   /* HTTP/2 stream */
    uint16_t status;              /* an error status decided while reading, or 0 */
    enum dohreq_method method;
    bool on_reading;   /* on c->reading */
    bool head_done;    /* HTTP/2: its header block has ended */
    bool complete;     /* the whole request is in (END_STREAM) */
    bool responded;    /* a response is submitted: what still comes is ignored */
    bool reset_after;  /* HTTP/2: responded before the request was complete: reset the
                        * stream (NO_ERROR) once the response is sent, unless the
                        * client finishes within drain more bytes */
    bool sent;         /* HTTP/2: the response's last frame is sent */
    bool keep_alive;   /* HTTP/1.1: the connection stays open after the response */
    uint8_t xfamily;   /* the forwarded client (AF_INET, AF_INET6), or 0 for the peer */
    uint8_t xaddr[16]; /* its address */
    /* HTTP/2 head, until it ends: the fields kept (referenced, not copied), the count */
    struct nghttp2_rcbuf *hdr[DOH_HDR_N];
    size_t hdr_bytes;
    unsigned nfields;
    int64_t clen;    /* content-length, -1 when absent */
    size_t received; /* HTTP/2: DATA bytes received */
    size_t drain;    /* HTTP/2: body bytes still let finish after an early response */
    /* The body (POST), then the answer: in buf, or in big when larger */
    uint8_t *data;
    size_t len;
    const uint8_t *out; /* the response body being sent (HTTP/2) */
    size_t out_len;
    size_t out_off;
    uint8_t *big;
    size_t big_cap;
    uint8_t buf[DOH_REQ_INLINE];
};
LIST_HEAD(doh_req_list, doh_req);
TAILQ_HEAD(doh_req_queue, doh_req);

struct doh_conn {
    struct doh_listener *l;
    LIST_ENTRY(doh_conn) entry;
    TAILQ_ENTRY(doh_conn) fentry; /* on l->flushq while scheduled */
    bool scheduled;
    bool in_run; /* the flusher is running it */
    enum doh_proto proto;
    bool tls;
    bool ready;      /* TLS: handshake done; cleartext: always */
    bool paused;     /* reading paused */
    bool more;       /* the producer (HTTP/2 output, the HTTP/1.1 parser) stopped at
                      * DOH_WRITE_PAUSE with more to come */
    bool finishing;  /* reading nothing more: close once nothing is owed and all is written */
    bool broken;     /* a write failed where it could not close: the flusher closes */
    bool linger;     /* closing after an error: linger once all is written (see below) */
    bool lingering;  /* all written; reading and dropping what the client still sends, so
                      * that our close does not reset the connection before the client
                      * has read our last words (RFC 9112 §9.6) */
    size_t lingered; /* bytes dropped while lingering */
    bool dead;
    bool allowed; /* the peer is in cfg->allow */
    bool trusted; /* the peer is in cfg->trusted_proxies (cleartext listener only) */
    struct sockaddr_storage peer;
    socklen_t peerlen;

    /* transport: TLS */
    struct tls_stream ts;
    ev_prepare drain;  /* active while bytes wait in the TLS stream's queue */
    size_t drain_seen; /* what the queue held when drain last looked, plus writes since */
    /* transport: cleartext */
    int fd;
    ev_io rio;
    ev_io wio;
    uint8_t *wbuf;
    size_t woff;
    size_t wlen;
    size_t wcap;

    ev_timer timer;       /* every deadline of the connection; see doh_conn_check */
    double timer_at;      /* when it fires */
    double opened;        /* accept */
    double proto_at;      /* the protocol began (TLS handshake done, or first bytes) */
    double last_progress; /* a request came or completed, or the client took output */

    unsigned nreqs;    /* requests open */
    unsigned npending; /* of which waiting in the core */
    size_t big;        /* bytes of request buffers beyond DOH_REQ_INLINE */
    struct doh_req_list reqs;
    struct doh_req_queue reading;

    /* HTTP/1.1 input not yet taken by the parser (pipelined requests), or, in cleartext,
     * the first bytes until they tell the protocol */
    uint8_t *in;
    size_t in_off;
    size_t in_len;
    size_t in_cap;

    /* HTTP/2 */
    struct nghttp2_session *h2;
    bool h2_settings;  /* the client's SETTINGS came (after its preface) */
    uint32_t h2_calm;  /* an error code to end the session with (a flood), or 0 */
    bool h2_goaway;    /* our GOAWAY is submitted */
    unsigned h2_conts; /* CONTINUATION frames of the header block being read */
    struct doh_bucket h2_resets;
    struct doh_bucket h2_control;
    struct doh_bucket h2_errors;

    /* HTTP/1.1 */
    struct http1_parser *h1;
    struct doh_req *h1_req; /* the request being served, or NULL */
    double h1_start;        /* the request being read began, or 0 */
};
LIST_HEAD(doh_conn_list, doh_conn);
TAILQ_HEAD(doh_conn_queue, doh_conn);

struct doh_listener {
    struct listener base;
    ev_io io;
    int fd;
    bool tls;
    SSL_CTX *ctx; /* TLS: for connections accepted from now on; our own reference */
    unsigned nconns;
    bool stopped;
    ev_timer retry; /* accepting again after running out of descriptors */
    struct doh_conn_list conns;
    struct doh_conn_queue flushq; /* connections with output or work for the flusher */
    ev_prepare flusher;           /* never started: fed (doh_conn_schedule) */
    bool flush_fed;
    struct nghttp2_session_callbacks *h2_callbacks;
    struct nghttp2_option *h2_option;
    struct doh_req_list pool;
    unsigned npool;
    uint8_t query[DOH_MSG_MAX];         /* a GET's decoded query, for the call */
    uint8_t answer[DOH_MSG_MAX];        /* an immediate answer, for the call */
    uint8_t h1_out[DOH_MSG_MAX + 1024]; /* an HTTP/1.1 response, until written */
};

/* --- doh_server.c: connections and requests --- */

/* A request for c, from the pool; NULL when out of memory. Not yet on any list. */
struct doh_req *doh_req_new(struct doh_conn *c);

/* Cancel req's query if it has one, and give req back to the pool. Never calls back. */
void doh_req_free(struct doh_req *req);

/* Room for len bytes in req (its own buffer, or a heap one within DOH_BIG_MAX per
 * connection); req->data then points to it. Returns NULL when over the budget or out of
 * memory. */
uint8_t *doh_req_reserve(struct doh_req *req, size_t len);

/* A trusted proxy's X-Forwarded-For (value of len bytes): its last address becomes req's
 * client. Returns 0, or 400 when that address is not an IPv4 or IPv6 literal. */
int doh_req_forwarded(struct doh_req *req, const char *value, size_t len);

/* Hand the query msg (len bytes, borrowed) of req to the core: checked (400), the client
 * against cfg->allow (403), then answered at once or later. Responds through req's
 * protocol in every case but a pending query. */
void doh_req_query(struct doh_req *req, const uint8_t *msg, size_t len);

/* Respond to req with an error status (a short text/plain body when the request is
 * complete). */
void doh_req_error(struct doh_req *req, int status);

/* The body of an error response: a short line of text. */
const char *doh_status_text(int status);

/* Write len bytes for c's client. Returns 0, or -ENOBUFS (over DOH_WRITE_MAX), -ENOMEM,
 * -EPIPE. Never calls back. */
int doh_conn_write(struct doh_conn *c, const void *data, size_t len);

/* Bytes queued for the client. */
size_t doh_conn_queued(const struct doh_conn *c);

/* Have the flusher run c in this loop iteration (once, whatever the number of calls). */
void doh_conn_schedule(struct doh_conn *c);

/* Make sure c's timer fires no later than at (ev_now time). */
void doh_conn_arm(struct doh_conn *c, double at);

/* Stop (true) or resume reading from c's client. */
void doh_conn_pause(struct doh_conn *c, bool pause);

/* Write an unsigned decimal into out (at least 11 bytes); returns its length. */
size_t doh_utoa(char *out, uint32_t v);

/* Take a token; false when the bucket (burst, refilled at rate a second) is empty. */
bool doh_bucket_take(struct doh_bucket *b, double now, double burst, double rate);

/* --- doh_h2.c: HTTP/2 --- */

/* The listener's nghttp2 callbacks and options. Returns 0 or -ENOMEM. */
int doh_h2_setup(struct doh_listener *l);
void doh_h2_teardown(struct doh_listener *l);

/* Begin HTTP/2 on c: the server session, our SETTINGS queued. Returns 0 or -ENOMEM. */
int doh_h2_start(struct doh_conn *c);

/* Bytes from the client. Returns 0, or -EPROTO when the connection is to close now. */
int doh_h2_input(struct doh_conn *c, const uint8_t *data, size_t len);

/* Pull what nghttp2 has to send into the write queue, up to DOH_WRITE_PAUSE queued.
 * Returns 0 or -errno (close). */
int doh_h2_output(struct doh_conn *c);

/* Respond on req's stream: status, then body (len bytes that stay valid until the stream
 * closes: req's buffer or static text) with ctype. max_age is sent for a 200. */
void doh_h2_respond(struct doh_req *req, int status, const char *ctype, const uint8_t *body,
                    size_t len, uint32_t max_age);

/* A GOAWAY: NO_ERROR after the last stream we took (shutdown, idle), so that the
 * requests in flight are still answered. */
void doh_h2_goaway(struct doh_conn *c);

/* Is the session over (both sides said GOAWAY or it was terminated, no stream open,
 * nothing left to send)? */
bool doh_h2_done(const struct doh_conn *c);

/* Does nghttp2 still have frames to send? */
bool doh_h2_want_write(const struct doh_conn *c);

/* Requests whose head or body is not complete by now + the header timeout: answered 408
 * and reset. */
void doh_h2_expire(struct doh_conn *c, double now);

/* Free the session and every request of c (their queries cancelled). */
void doh_h2_close(struct doh_conn *c);

/* --- doh_h1.c: HTTP/1.1 --- */

/* Begin HTTP/1.1 on c. Returns 0 or -ENOMEM. */
int doh_h1_start(struct doh_conn *c);

/* Bytes from the client: kept until the parser takes them. Returns 0 or -ENOBUFS. */
int doh_h1_input(struct doh_conn *c, const uint8_t *data, size_t len);

/* Read and serve the requests waiting in c's buffer, one at a time, in order. Returns 0
 * or -errno (close). */
int doh_h1_progress(struct doh_conn *c);

/* Write the response to req (and free req). */
void doh_h1_respond(struct doh_req *req, int status, const char *ctype, const uint8_t *body,
                    size_t len, uint32_t max_age);

/* The request being read has not completed in time: 408 and close after it. */
void doh_h1_expire(struct doh_conn *c);

/* Free the parser and the request being served (its query cancelled). */
void doh_h1_close(struct doh_conn *c);

#endif
