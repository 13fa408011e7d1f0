/* doh_server: the DNS-over-HTTPS frontend (RFC 8484): listeners, connections, and the one
 * request handler that HTTP/2 (doh_h2.c) and HTTP/1.1 (doh_h1.c) share. See
 * include/dnsward/doh_server.h for the parts and their invariants.
 *
 * A connection: TLS (tls_stream_accept; after the handshake ALPN "h2" is HTTP/2, anything
 * else or none is HTTP/1.1) or cleartext for a reverse proxy in front (the first bytes tell:
 * the HTTP/2 connection preface is HTTP/2 with prior knowledge, RFC 9113 §3.3, anything
 * else HTTP/1.1).
 *
 * A request (either version): its head is judged (dohreq_head: 404, 405, 415, 400), a
 * POST's body read (413 beyond 65535 bytes), the query checked (dohreq_check_query: 400),
 * the client checked against cfg->allow (403), and the query handed to the core. A cache
 * hit answers at once; otherwise the core calls on_doh_answer later. The answer is a 200
 * with the DNS message whatever its rcode (RFC 8484 §4.2.1), with cache-control max-age
 * from its TTLs (RFC 8484 §5.1).
 *
 * The client's address is the peer's. Behind a reverse proxy (the cleartext listener, and
 * a peer in cfg->trusted_proxies) it is the LAST address of X-Forwarded-For: each proxy
 * appends the address it received the request from, so the last entry is the one our
 * trusted peer wrote itself, and everything before it came from the client or from hops
 * we know nothing about and could be forged. A malformed last entry is a 400. An
 * X-Forwarded-For from an untrusted peer is ignored. The TLS listener never believes it:
 * trusted-proxy is a setting of the cleartext listener (config.h).
 *
 * Writes are batched: a response only queues (nghttp2's frames, or an HTTP/1.1 response)
 * and schedules its connection; the flusher, an ev_prepare fed as a pending event (the
 * pattern of src/upstream/doh.c), runs each scheduled connection once after the callback
 * that scheduled it, so that all the answers to one read leave in one write. Behind that,
 * the TLS stream writes by itself (its queue's drain is watched by a per-connection
 * ev_prepare, as the DoT listener does) and the cleartext socket is written with send(2)
 * from a bounded buffer.
 *
 * Limits, per connection: cfg->tcp_max_connections per listener (accepting pauses);
 * DOH_WRITE_PAUSE bytes queued for a client that does not read (reading and producing
 * stop; DOH_WRITE_MAX is the hard cap that closes); DOH_BIG_MAX bytes of large bodies and
 * answers (503 beyond); the HTTP/2 limits of doh_h2.c; the HTTP/1.1 limits of http1.h.
 *
 * Deadlines, on one timer per connection (on_doh_timer):
 *   - cfg->doh_header_timeout_ms: from accept to a finished TLS handshake; from the start
 *     of the protocol to the client's HTTP/2 preface and SETTINGS; from a request's first
 *     byte to its end (its head and its body: HTTP/1.1 408 and close, HTTP/2 408 and a
 *     reset of that stream, or a GOAWAY when its header block has not ended); from the
 *     first cleartext byte to knowing the protocol; and, once closing, for the client to
 *     take the last bytes;
 *   - cfg->doh_idle_timeout_ms: no query of the connection waiting in the core, and no
 *     progress (no request begun or completed, nothing taken by the client) for that
 *     long: HTTP/2 gets a GOAWAY and closes, HTTP/1.1 closes. A client that leaves its
 *     answers unread is closed by the same rule.
 *
 * A connection closed for an error (an HTTP/1.1 400, 408, 413 or 431; a GOAWAY for a
 * flood) lingers for DOH_LINGER_S once its last bytes are written, reading and dropping
 * what the client still sends, so that the close does not reset the connection before
 * the client has read why (doh_conn_linger).
 *
 * Shutdown (stop): no more accepting; HTTP/2 connections get a GOAWAY and close when
 * their streams are done; HTTP/1.1 connections answer the request being served with
 * "connection: close"; connections in a TLS handshake or not yet telling their protocol
 * close at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsward/acl.h"
#include "dnsward/config.h"
#include "dnsward/doh_server.h"
#include "dnsward/dohreq.h"
#include "dnsward/http1.h"
#include "dnsward/log.h"
#include "dnsward/proxy.h"
#include "dnsward/util.h"

enum {
    DOH_ACCEPTS_PER_WAKEUP = 16,
    DOH_WBUF_MIN = 16384,
    DOH_WBUF_KEEP = 65536, /* an emptied cleartext write buffer larger than this is freed */
};
#define DOH_ACCEPT_RETRY_S 0.1

static struct log_limit conn_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit req_limit = LOG_LIMIT_INIT(10, 5);

static void doh_conn_close(struct doh_conn *c);

size_t doh_utoa(char *out, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

bool doh_bucket_take(struct doh_bucket *b, double now, double burst, double rate)
{
    if (now > b->last) {
        b->tokens += (now - b->last) * rate;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last = now;
    }
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

static void doh_conn_label(const struct doh_conn *c, char *out, size_t cap)
{
    config_format_addr((const struct sockaddr *)&c->peer, out, cap);
}

/* Requests */

struct doh_req *doh_req_new(struct doh_conn *c)
{
    struct doh_listener *l = c->l;
    struct doh_req *req = LIST_FIRST(&l->pool);
    if (req != NULL) {
        LIST_REMOVE(req, entry);
        l->npool--;
    } else {
        req = malloc(sizeof(*req));
        if (req == NULL)
            return NULL;
    }
    /* Everything but the buffer, which is written before it is read. */
    memset(req, 0, offsetof(struct doh_req, buf));
    req->c = c;
    req->clen = -1;
    req->started = ev_now(l->base.loop);
    LIST_INSERT_HEAD(&c->reqs, req, entry);
    c->nreqs++;
    return req;
}

void doh_req_free(struct doh_req *req)
{
    struct doh_conn *c = req->c;
    struct doh_listener *l = c->l;
    if (req->q != NULL) {
        proxy_query_cancel(req->q);
        req->q = NULL;
        c->npending--;
    }
    for (size_t i = 0; i < DOH_HDR_N; i++) {
        if (req->hdr[i] != NULL)
            nghttp2_rcbuf_decref(req->hdr[i]);
    }
    if (req->on_reading)
        TAILQ_REMOVE(&c->reading, req, reading);
    LIST_REMOVE(req, entry);
    c->nreqs--;
    if (req->big != NULL) {
        c->big -= req->big_cap;
        free(req->big);
    }
    if (l->npool < DOH_POOL_MAX) {
        LIST_INSERT_HEAD(&l->pool, req, entry);
        l->npool++;
    } else {
        free(req);
    }
}

uint8_t *doh_req_reserve(struct doh_req *req, size_t len)
{
    struct doh_conn *c = req->c;
    if (req->data == NULL)
        req->data = req->buf;
    size_t cap = req->data == req->buf ? sizeof(req->buf) : req->big_cap;
    if (len <= cap)
        return req->data;
    if (len > DOH_MSG_MAX)
        return NULL;
    /* Doubling, so that a body arriving a byte per DATA frame costs no more than twice
     * its length in copies. */
    size_t ncap = cap * 2 > len ? cap * 2 : len;
    if (ncap > DOH_MSG_MAX)
        ncap = DOH_MSG_MAX;
    if (c->big - req->big_cap + ncap > DOH_BIG_MAX)
        return NULL;
    uint8_t *nb = realloc(req->big, ncap);
    if (nb == NULL)
        return NULL;
    if (req->data == req->buf && req->len > 0)
        memcpy(nb, req->buf, req->len);
    c->big = c->big - req->big_cap + ncap;
    req->big = nb;
    req->big_cap = ncap;
    req->data = nb;
    return nb;
}

const char *doh_status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request\n";
    case 403:
        return "Forbidden\n";
    case 404:
        return "Not Found\n";
    case 405:
        return "Method Not Allowed\n";
    case 408:
        return "Request Timeout\n";
    case 413:
        return "Content Too Large\n";
    case 415:
        return "Unsupported Media Type\n";
    case 431:
        return "Request Header Fields Too Large\n";
    case 501:
        return "Not Implemented\n";
    case 503:
        return "Service Unavailable\n";
    case 505:
        return "HTTP Version Not Supported\n";
    default:
        return "Error\n";
    }
}

static bool doh_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

int doh_req_forwarded(struct doh_req *req, const char *value, size_t len)
{
    /* The last element of the list (RFC 7239 §5.2's de facto predecessor: each proxy
     * appends, separated by commas), without the optional whitespace around it. */
    const char *end = value + len;
    const char *start = value;
    for (const char *p = end; p > value; p--) {
        if (p[-1] == ',') {
            start = p;
            break;
        }
    }
    while (start < end && doh_ows(*start))
        start++;
    while (end > start && doh_ows(end[-1]))
        end--;
    /* An IPv6 address may come bracketed ("[2001:db8::1]", as some proxies write it). */
    if (end - start >= 2 && *start == '[' && end[-1] == ']') {
        start++;
        end--;
    }
    char text[INET6_ADDRSTRLEN];
    size_t n = (size_t)(end - start);
    if (n == 0 || n >= sizeof(text))
        return 400;
    memcpy(text, start, n);
    text[n] = '\0';
    if (inet_pton(AF_INET, text, req->xaddr) == 1)
        req->xfamily = AF_INET;
    else if (inet_pton(AF_INET6, text, req->xaddr) == 1)
        req->xfamily = AF_INET6;
    else
        return 400;
    return 0;
}

static void doh_req_respond(struct doh_req *req, int status, const char *ctype, const uint8_t *body,
                            size_t len, uint32_t max_age)
{
    if (req->c->proto == DOH_PROTO_H2)
        doh_h2_respond(req, status, ctype, body, len, max_age);
    else
        doh_h1_respond(req, status, ctype, body, len, max_age);
}

void doh_req_error(struct doh_req *req, int status)
{
    struct doh_conn *c = req->c;
    char who[64];
    char fwd[INET6_ADDRSTRLEN + 16] = "";
    doh_conn_label(c, who, sizeof(who));
    if (req->xfamily != 0) {
        char addr[INET6_ADDRSTRLEN];
        inet_ntop(req->xfamily, req->xaddr, addr, sizeof(addr));
        snprintf(fwd, sizeof(fwd), " for %s", addr);
    }
    log_limited(&req_limit, LOG_INFO, "%s: client %s%s: HTTP %d", c->l->base.name, who, fwd,
                status);
    const char *text = doh_status_text(status);
    doh_req_respond(req, status, "text/plain", (const uint8_t *)text, strlen(text), 0);
}

/* The DNS answer msg (len bytes, borrowed) to req: a 200. HTTP/2 serves it from req's
 * buffer through nghttp2's data provider, so it is copied there, once; HTTP/1.1 writes
 * the response at once. */
static void doh_req_answer(struct doh_req *req, const uint8_t *msg, size_t len)
{
    struct doh_conn *c = req->c;
    c->last_progress = ev_now(c->l->base.loop);
    uint32_t max_age = dohreq_max_age(msg, len);
    if (c->proto != DOH_PROTO_H2) {
        doh_h1_respond(req, 200, DOH_MEDIA_TYPE, msg, len, max_age);
        return;
    }
    req->len = 0;
    uint8_t *dst = doh_req_reserve(req, len);
    if (dst == NULL) {
        doh_req_error(req, 503);
        return;
    }
    memcpy(dst, msg, len);
    req->len = len;
    doh_h2_respond(req, 200, DOH_MEDIA_TYPE, dst, len, max_age);
}

/* The core's answer to a query that waited. It comes from the loop, never from inside
 * proxy_query, and q is freed when we return: req forgets it first. */
static void on_doh_answer(struct query *q, const uint8_t *msg, size_t len)
{
    struct doh_req *req = q->client.conn;
    req->q = NULL;
    req->c->npending--;
    doh_req_answer(req, msg, len);
}

static const struct proxy_client_ops doh_client_ops = {
    .answer = on_doh_answer,
};

void doh_req_query(struct doh_req *req, const uint8_t *msg, size_t len)
{
    struct doh_conn *c = req->c;
    struct doh_listener *l = c->l;
    if (dohreq_check_query(msg, len) != 0) {
        doh_req_error(req, 400);
        return;
    }
    /* .encrypted also in cleartext: the hop from the client to the reverse proxy is that
     * proxy's business, and the client asked for padding for the whole way. */
    struct proxy_client client = {.ops = &doh_client_ops,
                                  .conn = req,
                                  .datagram = false,
                                  .encrypted = true,
                                  .transport = PROXY_DOH};
    bool allowed;
    if (req->xfamily == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&client.peer;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, req->xaddr, 4);
        client.peerlen = sizeof(*sin);
        allowed = acl_match(&l->base.cfg->allow, (const struct sockaddr *)sin);
    } else if (req->xfamily == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&client.peer;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, req->xaddr, 16);
        client.peerlen = sizeof(*sin6);
        allowed = acl_match(&l->base.cfg->allow, (const struct sockaddr *)sin6);
    } else {
        memcpy(&client.peer, &c->peer, c->peerlen);
        client.peerlen = c->peerlen;
        allowed = c->allowed;
    }
    /* 403 before the core: a stranger's request reaches neither the cache nor an
     * upstream (the core would answer REFUSED, but HTTP has the better word). */
    if (!allowed) {
        doh_req_error(req, 403);
        return;
    }
    struct query *q = NULL;
    l->base.queries++;
    int rc = proxy_query(l->base.proxy, msg, len, &client, &q, l->answer, sizeof(l->answer));
    if (rc == PROXY_PENDING) {
        req->q = q;
        c->npending++;
    } else if (rc > 0) {
        doh_req_answer(req, l->answer, (size_t)rc);
    } else {
        doh_req_error(req, 400); /* dropped by the core: not a query after all */
    }
}

/* Transport */

int doh_conn_write(struct doh_conn *c, const void *data, size_t len)
{
    if (c->tls) {
        int rc = tls_stream_write(&c->ts, data, len);
        if (rc == 0)
            c->drain_seen += len;
        return rc;
    }
    if (c->wlen - c->woff + len > DOH_WRITE_MAX)
        return -ENOBUFS;
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + len > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + len > c->wcap) {
            size_t cap = c->wcap ? c->wcap : DOH_WBUF_MIN;
            while (cap < c->wlen + len)
                cap *= 2;
            uint8_t *nb = realloc(c->wbuf, cap);
            if (nb == NULL)
                return -ENOMEM;
            c->wbuf = nb;
            c->wcap = cap;
        }
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    return 0;
}

size_t doh_conn_queued(const struct doh_conn *c)
{
    return c->tls ? tls_stream_queued(&c->ts) : c->wlen - c->woff;
}

void doh_conn_pause(struct doh_conn *c, bool pause)
{
    if (c->paused == pause)
        return;
    c->paused = pause;
    if (c->tls)
        tls_stream_pause_read(&c->ts, pause);
    else if (pause)
        ev_io_stop(c->l->base.loop, &c->rio);
    else
        ev_io_start(c->l->base.loop, &c->rio);
}

/* Cleartext: send what is queued. Returns 0, or -errno when the connection broke. */
static int doh_conn_send(struct doh_conn *c)
{
    struct ev_loop *loop = c->l->base.loop;
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c->woff += (size_t)n;
        c->last_progress = ev_now(loop); /* the client is reading */
    }
    if (c->woff < c->wlen) {
        ev_io_start(loop, &c->wio);
        return 0;
    }
    c->woff = c->wlen = 0;
    if (c->wcap > DOH_WBUF_KEEP) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    /* All sent, but nghttp2 may hold more (or pipelined HTTP/1.1 requests wait unparsed)
     * that the queue's pause kept back: produce it when the socket can take it, through
     * the loop rather than in a loop of our own. */
    if (c->more)
        ev_io_start(loop, &c->wio);
    else
        ev_io_stop(loop, &c->wio);
    return 0;
}

/* The flusher */

void doh_conn_schedule(struct doh_conn *c)
{
    struct doh_listener *l = c->l;
    if (c->scheduled || c->in_run || c->dead)
        return;
    c->scheduled = true;
    TAILQ_INSERT_TAIL(&l->flushq, c, fentry);
    if (!l->flush_fed) {
        l->flush_fed = true;
        ev_feed_event(l->base.loop, &l->flusher, EV_CUSTOM);
    }
}

/* Is c finished: nothing more to read, nothing owed, everything written? */
static bool doh_conn_done(const struct doh_conn *c)
{
    if (doh_conn_queued(c) > 0)
        return false;
    if (c->proto == DOH_PROTO_H2) {
        if (doh_h2_done(c))
            return true;
        return c->finishing && c->npending == 0 && !doh_h2_want_write(c);
    }
    return c->finishing && c->npending == 0 && c->h1_req == NULL;
}

/* Read on only while the client takes its answers, and, for HTTP/1.1, while the
 * pipelined requests waiting for their turn are few. */
static void doh_conn_update_read(struct doh_conn *c)
{
    bool want = !c->finishing && doh_conn_queued(c) < DOH_WRITE_PAUSE &&
                (c->proto != DOH_PROTO_H1 || c->in_len - c->in_off < DOH_H1_IN_PAUSE);
    doh_conn_pause(c, !want);
}

/* Everything is written after an error: read and drop what the client still sends for
 * DOH_LINGER_S (at most DOH_LINGER_MAX bytes of it), then close. Closing with unread bytes
 * in the socket would send a TCP reset, which destroys our last response (a 413, a
 * GOAWAY) in the client's socket if the client has not read it yet (RFC 9112 §9.6). A
 * cleartext socket is half-closed first, so the client sees the end. */
static void doh_conn_linger(struct doh_conn *c)
{
    c->lingering = true;
    c->finishing = true;
    c->last_progress = ev_now(c->l->base.loop);
    if (!c->tls)
        (void)shutdown(c->fd, SHUT_WR);
    doh_conn_pause(c, false);
    doh_conn_arm(c, ev_now(c->l->base.loop) + DOH_LINGER_S);
}

/* One connection's turn in the flusher: serve what waits, write, close when done. */
static void doh_conn_run(struct doh_conn *c)
{
    int rc = 0;
    if (c->lingering)
        return;       /* only the timer or the client's close ends it now */
    c->in_run = true; /* what schedules c from here on is done by this run */
    if (c->broken) {
        doh_conn_close(c);
        return;
    }
    if (c->proto == DOH_PROTO_H1)
        rc = doh_h1_progress(c);
    else if (c->proto == DOH_PROTO_H2)
        rc = doh_h2_output(c);
    if (rc < 0 || c->broken) {
        doh_conn_close(c);
        return;
    }
    if (c->tls) {
        if (tls_stream_queued(&c->ts) > 0 && !ev_is_active(&c->drain))
            ev_prepare_start(c->l->base.loop, &c->drain);
    } else if (doh_conn_send(c) < 0) {
        doh_conn_close(c);
        return;
    }
    if (doh_conn_done(c)) {
        if (c->linger) {
            c->in_run = false;
            doh_conn_linger(c);
            return;
        }
        doh_conn_close(c);
        return;
    }
    c->in_run = false;
    doh_conn_update_read(c);
    /* Closing once the last bytes are out: the client has the header timeout to take
     * them (on_doh_timer), which may be sooner than the timer is set for. */
    if (c->finishing)
        doh_conn_arm(c, c->last_progress + c->l->base.cfg->doh_header_timeout_ms / 1000.0);
}

static void on_doh_flusher(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct doh_listener *l = container_of(w, struct doh_listener, flusher);
    l->flush_fed = false;
    /* A connection's run never schedules another connection, and its own schedule calls
     * during the run are taken by the run: the queue only shrinks. */
    struct doh_conn *c;
    while ((c = TAILQ_FIRST(&l->flushq)) != NULL) {
        TAILQ_REMOVE(&l->flushq, c, fentry);
        c->scheduled = false;
        doh_conn_run(c);
    }
}

/* The TLS stream sends by itself: before the loop blocks, see how much the client took. */
static void on_doh_drain(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct doh_conn *c = container_of(w, struct doh_conn, drain);
    size_t queued = tls_stream_queued(&c->ts);
    bool took = queued < c->drain_seen;
    c->drain_seen = queued;
    if (queued == 0)
        ev_prepare_stop(loop, w);
    if (took) {
        c->last_progress = ev_now(loop);
        doh_conn_schedule(c); /* resume reading, produce more, or close once all is out */
    }
}

static void on_doh_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct doh_conn *c = container_of(w, struct doh_conn, wio);
    ev_io_stop(loop, w);
    doh_conn_schedule(c);
}

/* Timers */

void doh_conn_arm(struct doh_conn *c, double at)
{
    struct ev_loop *loop = c->l->base.loop;
    if (ev_is_active(&c->timer) && c->timer_at <= at)
        return;
    double now = ev_now(loop);
    c->timer_at = at;
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, at > now ? at - now : 0, 0);
    ev_timer_start(loop, &c->timer);
}

static double doh_min(double a, double b)
{
    return a < b ? a : b;
}

/* The timer fires at the earliest deadline it was armed for; events only move
 * timestamps (no timer work on the hot path), and here every deadline is looked at
 * afresh: what is due acts, and the timer is set for the next one. */
static void on_doh_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct doh_conn *c = container_of(w, struct doh_conn, timer);
    struct doh_listener *l = c->l;
    const struct config *cfg = l->base.cfg;
    double now = ev_now(loop);
    double hdr = cfg->doh_header_timeout_ms / 1000.0;
    double idle = cfg->doh_idle_timeout_ms / 1000.0;
    char who[64];
    double next;
    doh_conn_label(c, who, sizeof(who));
    if (c->lingering) {
        next = c->last_progress + DOH_LINGER_S;
        if (now >= next) {
            doh_conn_close(c);
            return;
        }
        goto arm;
    }
    if (!c->ready) {
        next = c->opened + hdr;
        if (now >= next) {
            log_limited(&conn_limit, LOG_INFO, "%s: client %s: no TLS handshake within %u ms",
                        l->base.name, who, cfg->doh_header_timeout_ms);
            doh_conn_close(c);
            return;
        }
        goto arm;
    }
    if (c->finishing) {
        /* Only the last bytes are left to go: the client has the header timeout to take
         * some of them each time. */
        next = c->last_progress + hdr;
        /* A query still in the core is answered by its own deadline (cfg->timeout_ms),
         * which may be later: its answer is owed, so wait for it as the idle timeout does. */
        if (c->npending > 0)
            next = now + hdr;
        if (now >= next) {
            doh_conn_close(c);
            return;
        }
        goto arm;
    }
    /* Idle: no query waiting in the core, and no progress for the idle timeout. A query
     * in the core has a deadline of its own (cfg->timeout_ms), after which it is answered. */
    next = c->npending > 0 ? now + idle : c->last_progress + idle;
    if (now >= next) {
        if (c->proto == DOH_PROTO_H2 && !c->h2_goaway) {
            /* RFC 9113 §9.1: a GOAWAY first, so the client knows which requests were
             * seen (none are open here, or they are stuck behind a client not reading). */
            log_debug("%s: client %s: idle, GOAWAY", l->base.name, who);
            doh_h2_goaway(c);
            c->finishing = true;
            c->last_progress = now;
            doh_conn_schedule(c);
            next = now + hdr;
            goto arm;
        }
        log_debug("%s: client %s: idle, closing", l->base.name, who);
        doh_conn_close(c);
        return;
    }
    double at;
    switch (c->proto) {
    case DOH_PROTO_NONE:
        if (c->in_len > 0) {
            at = c->proto_at + hdr;
            if (now >= at) {
                log_limited(&conn_limit, LOG_INFO, "%s: client %s: no request within %u ms",
                            l->base.name, who, cfg->doh_header_timeout_ms);
                doh_conn_close(c);
                return;
            }
            next = doh_min(next, at);
        }
        break;
    case DOH_PROTO_H2:
        if (!c->h2_settings) {
            at = c->proto_at + hdr;
            if (now >= at) {
                log_limited(&conn_limit, LOG_INFO,
                            "%s: client %s: no HTTP/2 preface and SETTINGS within %u ms",
                            l->base.name, who, cfg->doh_header_timeout_ms);
                doh_conn_close(c);
                return;
            }
            next = doh_min(next, at);
        }
        doh_h2_expire(c, now);
        if (!TAILQ_EMPTY(&c->reading))
            next = doh_min(next, TAILQ_FIRST(&c->reading)->started + hdr);
        if (c->finishing)
            next = doh_min(next, now + hdr);
        break;
    case DOH_PROTO_H1:
        if (c->h1_start > 0) {
            at = c->h1_start + hdr;
            if (now >= at) {
                doh_h1_expire(c);
                next = now + hdr;
            } else {
                next = doh_min(next, at);
            }
        }
        break;
    }
arm:
    c->timer_at = next;
    ev_timer_set(w, next > now ? next - now : 0.001, 0);
    ev_timer_start(loop, w);
}

/* Connections */

static void doh_conn_close(struct doh_conn *c)
{
    struct doh_listener *l = c->l;
    struct ev_loop *loop = l->base.loop;
    c->dead = true;
    if (c->scheduled) {
        TAILQ_REMOVE(&l->flushq, c, fentry);
        c->scheduled = false;
    }
    /* Every request's query is cancelled before the session goes, so the core never
     * answers into freed memory; nghttp2_session_del calls nothing back. */
    struct doh_req *req;
    while ((req = LIST_FIRST(&c->reqs)) != NULL)
        doh_req_free(req);
    c->h1_req = NULL;
    if (c->h2 != NULL)
        doh_h2_close(c);
    if (c->h1 != NULL)
        doh_h1_close(c);
    free(c->in);
    ev_timer_stop(loop, &c->timer);
    ev_prepare_stop(loop, &c->drain);
    if (c->tls) {
        /* Safe from inside the TLS stream's callbacks: it touches nothing of itself after
         * a callback that closed it, so its memory can go with ours. */
        tls_stream_close(&c->ts);
    } else {
        ev_io_stop(loop, &c->rio);
        ev_io_stop(loop, &c->wio);
        if (c->fd >= 0)
            close(c->fd);
        free(c->wbuf);
    }
    LIST_REMOVE(c, entry);
    free(c);
    if (l->nconns-- == l->base.cfg->tcp_max_connections && !l->stopped)
        ev_io_start(loop, &l->io); /* room again */
}

/* Start speaking proto on c. Returns 0, or -ENOMEM (the caller closes). */
static int doh_conn_begin(struct doh_conn *c, enum doh_proto proto)
{
    struct doh_listener *l = c->l;
    double now = ev_now(l->base.loop);
    double hdr = l->base.cfg->doh_header_timeout_ms / 1000.0;
    double idle = l->base.cfg->doh_idle_timeout_ms / 1000.0;
    c->proto = proto;
    c->proto_at = now;
    c->last_progress = now;
    /* The timer may be set for the handshake's deadline: idle time counts from now. */
    doh_conn_arm(c, now + idle);
    if (proto == DOH_PROTO_H2) {
        int rc = doh_h2_start(c);
        if (rc < 0)
            return rc;
        doh_conn_arm(c, now + hdr); /* the client's preface and SETTINGS */
        doh_conn_schedule(c);       /* our SETTINGS */
        return 0;
    }
    return doh_h1_start(c);
}

/* Bytes from the client. Returns 0, or -1 when c was closed. */
static int doh_conn_input(struct doh_conn *c, const uint8_t *data, size_t len)
{
    int rc = 0;
    if (c->lingering) {
        /* Beyond the cap, reading stops and the client's bytes stay in the kernel until
         * the linger time is over: a client that sends on without reading gets its
         * window filled, and still finds our last bytes when it reads. */
        c->lingered += len;
        if (c->lingered > DOH_LINGER_MAX)
            doh_conn_pause(c, true);
        return 0;
    }
    switch (c->proto) {
    case DOH_PROTO_NONE: {
        /* Cleartext: the HTTP/2 preface, or anything else for HTTP/1.1. */
        if (c->in_len == 0) {
            c->proto_at = ev_now(c->l->base.loop);
            doh_conn_arm(c, c->proto_at + c->l->base.cfg->doh_header_timeout_ms / 1000.0);
        }
        rc = doh_h1_input(c, data, len);
        if (rc < 0)
            break;
        size_t n = c->in_len < DOH_H2_PREFACE_LEN ? c->in_len : DOH_H2_PREFACE_LEN;
        if (memcmp(c->in, DOH_H2_PREFACE, n) != 0) {
            rc = doh_conn_begin(c, DOH_PROTO_H1); /* the buffer is HTTP/1.1's input */
        } else if (n == DOH_H2_PREFACE_LEN) {
            rc = doh_conn_begin(c, DOH_PROTO_H2);
            if (rc == 0)
                rc = doh_h2_input(c, c->in, c->in_len);
            c->in_off = c->in_len = 0;
        }
        break;
    }
    case DOH_PROTO_H2:
        rc = doh_h2_input(c, data, len);
        break;
    case DOH_PROTO_H1:
        rc = doh_h1_input(c, data, len);
        break;
    }
    if (rc < 0) {
        doh_conn_close(c);
        return -1;
    }
    doh_conn_schedule(c);
    return 0;
}

static void on_doh_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct doh_conn *c = container_of(w, struct doh_conn, rio);
    uint8_t buf[DOH_READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        doh_conn_close(c);
        return;
    }
    if (n == 0 && c->lingering) {
        doh_conn_close(c);
        return;
    }
    if (n == 0) {
        /* The client sends nothing more; what it is owed still goes out (a cleartext
         * client, unlike a TLS one, can half-close). */
        c->finishing = true;
        doh_conn_pause(c, true);
        doh_conn_schedule(c);
        return;
    }
    doh_conn_input(c, buf, (size_t)n);
}

/* TLS stream callbacks */

static void on_doh_ready(struct tls_stream *ts)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    c->ready = true;
    size_t len = 0;
    const char *alpn = tls_stream_alpn(ts, &len);
    /* RFC 8484 §5.2: HTTP/2 when the client offered it; HTTP/1.1 otherwise, with or
     * without ALPN ("http/1.1"). */
    bool h2 = alpn != NULL && len == 2 && memcmp(alpn, "h2", 2) == 0;
    if (doh_conn_begin(c, h2 ? DOH_PROTO_H2 : DOH_PROTO_H1) < 0)
        doh_conn_close(c);
}

static void on_doh_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    doh_conn_input(c, data, len);
}

static void on_doh_tls_close(struct tls_stream *ts, int err)
{
    struct doh_conn *c = container_of(ts, struct doh_conn, ts);
    if (!c->ready && err != 0 && err != -EPROTO) {
        /* A TLS protocol error was logged by the TLS stream already, with OpenSSL's
         * reason. */
        char who[64];
        doh_conn_label(c, who, sizeof(who));
        log_limited(&conn_limit, LOG_INFO, "%s: client %s: TLS handshake failed: %s",
                    c->l->base.name, who, strerror(-err));
    }
    doh_conn_close(c);
}

static const struct tls_stream_cbs doh_tls_cbs = {
    .on_ready = on_doh_ready,
    .on_data = on_doh_data,
    .on_close = on_doh_tls_close,
};

/* Listener */

static void on_doh_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct doh_listener *l = container_of(w, struct doh_listener, io);
    const struct config *cfg = l->base.cfg;
    for (int i = 0; i < DOH_ACCEPTS_PER_WAKEUP; i++) {
        if (l->nconns >= cfg->tcp_max_connections) {
            /* Pending connections wait in the kernel's backlog until one closes. */
            log_limited(&conn_limit, LOG_WARNING, "%s: %u connections (tcp-max-connections)",
                        l->base.name, l->nconns);
            ev_io_stop(loop, &l->io);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED)
                return;
            log_limited(&conn_limit, LOG_WARNING, "%s: accept: %s", l->base.name, strerror(e));
            /* Out of descriptors or memory: pause rather than spin on a readable socket. */
            ev_io_stop(loop, &l->io);
            ev_timer_set(&l->retry, DOH_ACCEPT_RETRY_S, 0);
            ev_timer_start(loop, &l->retry);
            return;
        }
        struct doh_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            return;
        }
        double now = ev_now(loop);
        c->l = l;
        c->fd = -1;
        c->peer = peer;
        c->peerlen = peerlen;
        c->allowed = acl_match(&cfg->allow, (const struct sockaddr *)&peer);
        c->trusted = !l->tls && acl_match(&cfg->trusted_proxies, (const struct sockaddr *)&peer);
        c->opened = now;
        c->last_progress = now;
        LIST_INIT(&c->reqs);
        TAILQ_INIT(&c->reading);
        ev_init(&c->timer, on_doh_timer);
        ev_prepare_init(&c->drain, on_doh_drain);
        if (l->tls) {
            c->tls = true;
            if (tls_stream_accept(&c->ts, loop, l->ctx, fd, &doh_tls_cbs, DOH_WRITE_MAX) < 0) {
                free(c); /* the stream closed fd */
                continue;
            }
            LIST_INSERT_HEAD(&l->conns, c, entry);
            l->nconns++;
            doh_conn_arm(c, now + cfg->doh_header_timeout_ms / 1000.0);
            continue;
        }
        /* Responses are batched already: Nagle would only hold the last one back. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->ready = true;
        ev_io_init(&c->rio, on_doh_readable, fd, EV_READ);
        ev_io_init(&c->wio, on_doh_writable, fd, EV_WRITE);
        ev_io_start(loop, &c->rio);
        LIST_INSERT_HEAD(&l->conns, c, entry);
        l->nconns++;
        doh_conn_arm(c, now + cfg->doh_idle_timeout_ms / 1000.0);
    }
}

static void on_doh_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct doh_listener *l = container_of(w, struct doh_listener, retry);
    if (!l->stopped)
        ev_io_start(loop, &l->io);
}

static void doh_stop(struct listener *base)
{
    struct doh_listener *l = container_of(base, struct doh_listener, base);
    l->stopped = true;
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    struct doh_conn *c, *next;
    for (c = LIST_FIRST(&l->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, entry);
        if (!c->ready || c->proto == DOH_PROTO_NONE) {
            doh_conn_close(c);
        } else if (c->proto == DOH_PROTO_H2) {
            /* The streams already opened are answered; the client opens new ones
             * elsewhere (RFC 9113 §6.8). */
            doh_h2_goaway(c);
        } else if (c->h1_req == NULL && !http1_in_request(c->h1)) {
            c->finishing = true;
            c->in_off = c->in_len = 0;
            doh_conn_schedule(c);
        }
        /* An HTTP/1.1 request being read or served is answered with "connection:
         * close" (doh_h1_respond looks at l->stopped). */
    }
}

static size_t doh_connections(const struct listener *base)
{
    const struct doh_listener *l = container_of(base, const struct doh_listener, base);
    return l->nconns;
}

static void doh_free(struct listener *base)
{
    struct doh_listener *l = container_of(base, struct doh_listener, base);
    l->stopped = true;
    struct doh_conn *c;
    while ((c = LIST_FIRST(&l->conns)) != NULL)
        doh_conn_close(c);
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    ev_clear_pending(base->loop, &l->flusher);
    struct doh_req *req;
    while ((req = LIST_FIRST(&l->pool)) != NULL) {
        LIST_REMOVE(req, entry);
        free(req);
    }
    doh_h2_teardown(l);
    SSL_CTX_free(l->ctx);
    close(l->fd);
    free(l);
}

static void doh_set_tls(struct listener *base, SSL_CTX *ctx)
{
    struct doh_listener *l = container_of(base, struct doh_listener, base);
    if (!l->tls || ctx == NULL || ctx == l->ctx)
        return;
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(l->ctx); /* connections hold their own reference (their SSL objects) */
    l->ctx = ctx;
}

static const struct listener_ops doh_tls_ops = {
    .name = "doh",
    .stop = doh_stop,
    .connections = doh_connections,
    .free = doh_free,
    .set_tls = doh_set_tls,
};

/* The cleartext listener has no certificate to reload: no set_tls. */
static const struct listener_ops doh_plain_ops = {
    .name = "doh",
    .stop = doh_stop,
    .connections = doh_connections,
    .free = doh_free,
};

int doh_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, SSL_CTX *ctx,
                     struct listener **out, char *err, size_t errlen)
{
    int rc;
    struct doh_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char where[64];
    config_format_addr(addr, where, sizeof(where));
    snprintf(l->base.name, sizeof(l->base.name), "%s %s", ctx ? "doh" : "doh-plain", where);
    int fd = listener_socket(SOCK_STREAM, addr, len, l->base.name, err, errlen);
    if (fd < 0) {
        rc = fd;
        goto fail;
    }
    if (listen(fd, 1024) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: listen: %s", l->base.name, strerror(-rc));
        goto fail_fd;
    }
    l->fd = fd;
    l->base.ops = ctx ? &doh_tls_ops : &doh_plain_ops;
    l->base.loop = loop;
    l->base.proxy = p;
    l->base.cfg = cfg;
    LIST_INIT(&l->conns);
    TAILQ_INIT(&l->flushq);
    LIST_INIT(&l->pool);
    rc = doh_h2_setup(l);
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory", l->base.name);
        goto fail_fd;
    }
    if (ctx != NULL) {
        SSL_CTX_up_ref(ctx);
        l->ctx = ctx;
        l->tls = true;
    }
    ev_init(&l->retry, on_doh_accept_retry);
    ev_prepare_init(&l->flusher, on_doh_flusher); /* never started: fed */
    ev_io_init(&l->io, on_doh_accept, fd, EV_READ);
    ev_io_start(loop, &l->io);
    *out = &l->base;
    return 0;

fail_fd:
    close(fd);
fail:
    free(l);
    return rc;
}
