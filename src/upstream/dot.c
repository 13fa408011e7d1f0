/* dot: the DNS-over-TLS upstream transport. See include/dnsward/dot.h. */
#include "dnsward/dot.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dnsward/config.h"
#include "dnsward/idmap.h"
#include "dnsward/log.h"
#include "dnsward/tls_stream.h"
#include "dnsward/util.h"

enum {
    DOT_FRAME_MAX = 2 + DNS_MAX_MSG,
    DOT_QUERY_MAX = 1024,       /* a padded upstream query is far smaller */
    DOT_WRITE_MAX = 512 * 1024, /* queued bytes per connection */
    DOT_ID_TRIES = 64,
    DOT_CANCELLED_IDS = 16, /* IDs of cancelled attempts a connection remembers */
};

struct dot_upstream;

struct dot_conn {
    struct tls_stream ts;
    struct dot_upstream *up;
    LIST_ENTRY(dot_conn) entry;
    struct attempt_list inflight;
    struct idmap ids;
    unsigned ninflight;
    ev_timer timer;      /* the handshake's deadline, then the idle timer */
    double idle_timeout; /* seconds; lowered by the upstream's EDNS keepalive */
    double last_rx;      /* when something was last received, or waiting began */
    uint8_t *rbuf;       /* an incomplete frame carried over between reads */
    size_t rlen;
    size_t rcap;
    bool ready;
    bool stale;   /* presumed half-open: closed from its timer, takes no new attempts */
    bool dead;    /* closed: no attempt may be added */
    bool in_read; /* inside on_data: freeing is deferred until it returns */
    bool free_pending;
    /* The IDs of the last attempts cancelled on it (ID | 0x10000; 0: none), whose answers
     * may still arrive: such an answer is expected, not a sign of a confused upstream. */
    uint32_t cancelled[DOT_CANCELLED_IDS];
    unsigned cancelled_next;
};

struct dot_upstream {
    struct upstream base;
    struct ev_loop *loop;
    const struct config *cfg;
    SSL_CTX *ctx;
    SSL_SESSION *session; /* the last one the upstream gave us, to resume */
    LIST_HEAD(, dot_conn) conns;
    unsigned nconns;
    bool draining;
    uint8_t random[512];
    size_t random_pos;
};

static struct log_limit unmatched_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit conn_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit late_limit = LOG_LIMIT_INIT(60, 3);

/* IDs come from OpenSSL's CSPRNG, a batch at a time: the TLS session already protects the
 * ID from off-path guessing, but a predictable ID would still tell the upstream how many
 * queries we send. */
static uint16_t dot_random_id(struct dot_upstream *up)
{
    if (up->random_pos + 2 > sizeof(up->random)) {
        if (RAND_bytes(up->random, sizeof(up->random)) != 1)
            abort(); /* a CSPRNG that fails is a broken invariant, not a peer's fault */
        up->random_pos = 0;
    }
    uint16_t id = dns_get16(up->random + up->random_pos);
    up->random_pos += 2;
    return id;
}

static void dot_conn_free(struct dot_conn *c)
{
    idmap_cleanup(&c->ids);
    free(c->rbuf);
    free(c);
}

/* Take c out of service: no new attempts, the socket closed, every attempt it carried
 * failed with err (their owners retry elsewhere). c is freed here, or when on_data
 * returns if we are inside it. */
static void dot_conn_close(struct dot_conn *c, int err)
{
    if (c->dead)
        return;
    struct dot_upstream *up = c->up;
    c->dead = true;
    LIST_REMOVE(c, entry);
    up->nconns--;
    ev_timer_stop(up->loop, &c->timer);
    tls_stream_close(&c->ts);
    struct attempt *a;
    while ((a = TAILQ_FIRST(&c->inflight)) != NULL) {
        TAILQ_REMOVE(&c->inflight, a, entry);
        idmap_remove(&c->ids, a->id);
        c->ninflight--;
        a->conn = NULL;
        a->on_done(a, err, NULL, 0, NULL);
    }
    if (c->in_read)
        c->free_pending = true;
    else
        dot_conn_free(c);
}

/* Nothing in flight any more: start counting idle time, or close now when the upstream
 * asked for that (keepalive 0) or we are shutting down. */
static void dot_conn_idle(struct dot_conn *c)
{
    if (c->up->draining || c->idle_timeout <= 0) {
        dot_conn_close(c, -ESHUTDOWN);
        return;
    }
    c->timer.repeat = c->idle_timeout;
    ev_timer_again(c->up->loop, &c->timer);
}

static void dot_attempt_detach(struct dot_conn *c, struct attempt *a)
{
    TAILQ_REMOVE(&c->inflight, a, entry);
    idmap_remove(&c->ids, a->id);
    c->ninflight--;
    a->conn = NULL;
}

static void dot_handle_frame(struct dot_conn *c, const uint8_t *msg, size_t len)
{
    struct dot_upstream *up = c->up;
    const char *url = up->base.spec->url;
    if (len < DNS_HEADER_LEN) {
        up->base.stats.unmatched++;
        log_limited(&unmatched_limit, LOG_WARNING, "upstream %s: dropped a %zu-byte message", url,
                    len);
        return;
    }
    uint16_t id = dns_get16(msg);
    struct attempt *a = idmap_find(&c->ids, id);
    if (a == NULL) {
        up->base.stats.unmatched++;
        /* A client that leaves (or a flight past its deadline) cancels its attempt, and
         * the upstream answers anyway: every such query would otherwise be a warning. */
        for (size_t i = 0; i < DOT_CANCELLED_IDS; i++) {
            if (c->cancelled[i] == (0x10000u | id)) {
                c->cancelled[i] = 0;
                log_limited(&late_limit, LOG_INFO,
                            "upstream %s: dropped an answer with ID %u, to a query given up", url,
                            id);
                return;
            }
        }
        log_limited(&unmatched_limit, LOG_WARNING,
                    "upstream %s: dropped an answer with ID %u, which no query waits for", url, id);
        return;
    }
    struct dns_answer ans;
    int err = 0;
    if (dns_answer_parse(msg, len, &ans) < 0) {
        err = -EBADMSG;
        log_limited(&unmatched_limit, LOG_WARNING, "upstream %s: malformed answer", url);
    } else if (!dns_question_equal(a->wire, a->len, msg, len)) {
        /* The ID is ours but the question is not: never accept it (DESIGN.md). The
         * attempt fails now rather than at its timeout, so that it is retried sooner. */
        err = -EBADMSG;
        up->base.stats.unmatched++;
        log_limited(&unmatched_limit, LOG_WARNING,
                    "upstream %s: dropped an answer to a question that was not asked", url);
    }
    if (err == 0 && ans.keepalive >= 0) {
        /* RFC 7828 §3.3.2: the server's timeout is how long it will keep an idle
         * connection; closing before that avoids racing its close. */
        double server = ans.keepalive / 10.0;
        double ours = up->cfg->upstream_idle_timeout_ms / 1000.0;
        c->idle_timeout = server < ours ? server : ours;
    }
    dot_attempt_detach(c, a);
    a->on_done(a, err, err ? NULL : msg, err ? 0 : len, err ? NULL : &ans);
}

/* Make room for need bytes of carried-over frame (at most DOT_FRAME_MAX). Returns 0 or
 * -ENOMEM. */
static int dot_rbuf_reserve(struct dot_conn *c, size_t need)
{
    if (c->rcap >= need)
        return 0;
    size_t cap = need < 2048 ? 2048 : need;
    uint8_t *nb = realloc(c->rbuf, cap);
    if (nb == NULL)
        return -ENOMEM;
    c->rbuf = nb;
    c->rcap = cap;
    return 0;
}

/* Split the stream into frames. Whole frames are handled straight from the read buffer;
 * only a frame cut by the end of a read is copied, and its buffer is bounded by the
 * largest frame there can be. */
static void on_dot_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    c->last_rx = ev_now(c->up->loop);
    c->in_read = true;
    while (len > 0 && !c->dead) {
        if (c->rlen > 0 || len < 2 || len < 2 + (size_t)dns_get16(data)) {
            /* A frame cut by the end of this read, or the rest of one cut before: carry
             * it over, the length prefix first, then the body. */
            size_t need = c->rlen < 2 ? 2 : 2 + (size_t)dns_get16(c->rbuf);
            size_t take = need - c->rlen < len ? need - c->rlen : len;
            if (dot_rbuf_reserve(c, need) < 0) {
                dot_conn_close(c, -ENOMEM);
                break;
            }
            memcpy(c->rbuf + c->rlen, data, take);
            c->rlen += take;
            data += take;
            len -= take;
            if (c->rlen >= 2 && c->rlen == 2 + (size_t)dns_get16(c->rbuf)) {
                c->rlen = 0;
                dot_handle_frame(c, c->rbuf + 2, dns_get16(c->rbuf));
            }
            continue;
        }
        size_t flen = dns_get16(data);
        dot_handle_frame(c, data + 2, flen);
        data += 2 + flen;
        len -= 2 + flen;
    }
    c->in_read = false;
    if (c->free_pending) {
        dot_conn_free(c);
        return;
    }
    if (!c->dead && c->ninflight == 0)
        dot_conn_idle(c);
}

static void on_dot_ready(struct tls_stream *ts)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    c->ready = true;
    if (tls_stream_resumed(ts))
        c->up->base.stats.resumed++;
    log_debug("upstream %s: connected%s", c->up->base.spec->url,
              tls_stream_resumed(ts) ? " (session resumed)" : "");
    c->last_rx = ev_now(c->up->loop);
    if (c->ninflight == 0) {
        dot_conn_idle(c); /* shutdown began while it connected: nothing to carry */
        return;
    }
    c->timer.repeat = c->idle_timeout;
    ev_timer_again(c->up->loop, &c->timer);
}

static void on_dot_close(struct tls_stream *ts, int err)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    if (err != 0 || c->ninflight > 0)
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: connection %s: %s",
                    c->up->base.spec->url, c->ready ? "lost" : "failed",
                    err ? strerror(-err) : "closed by the upstream");
    if (!c->ready)
        upstream_addr_failed(&c->up->base);
    dot_conn_close(c, err ? err : -ECONNRESET);
}

static void on_dot_session(struct tls_stream *ts, SSL_SESSION *session)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    SSL_SESSION_free(c->up->session);
    c->up->session = session;
}

static const struct tls_stream_cbs dot_stream_cbs = {
    .on_ready = on_dot_ready,
    .on_data = on_dot_data,
    .on_close = on_dot_close,
    .on_session = on_dot_session,
};

static void on_dot_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct dot_conn *c = container_of(w, struct dot_conn, timer);
    if (c->stale) {
        dot_conn_close(c, -ETIMEDOUT);
    } else if (!c->ready) {
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: connection timed out",
                    c->up->base.spec->url);
        upstream_addr_failed(&c->up->base);
        dot_conn_close(c, -ETIMEDOUT);
    } else if (c->ninflight == 0) {
        log_debug("upstream %s: closing idle connection", c->up->base.spec->url);
        dot_conn_close(c, -ESHUTDOWN);
    } else {
        ev_timer_again(c->up->loop, &c->timer);
    }
}

/* Open a connection to the upstream's current address. Returns it, or NULL with *err:
 * -EAGAIN (no address yet, or the connect-rate bound), -ENOMEM, or a socket error. */
static struct dot_conn *dot_conn_new(struct dot_upstream *up, int *err)
{
    const struct upstream_spec *spec = up->base.spec;
    const struct sockaddr *sa;
    socklen_t salen;
    *err = upstream_connect_target(&up->base, ev_now(up->loop), &sa, &salen);
    if (*err < 0)
        return NULL;
    *err = -ENOMEM;
    struct dot_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->up = up;
    TAILQ_INIT(&c->inflight);
    c->idle_timeout = up->cfg->upstream_idle_timeout_ms / 1000.0;
    if (idmap_init(&c->ids, up->cfg->upstream_max_inflight) < 0)
        goto fail_conn;
    struct tls_peer peer;
    upstream_tls_peer(spec, up->session, &peer);
    *err = tls_stream_connect(&c->ts, up->loop, up->ctx, sa, salen, &peer, &dot_stream_cbs,
                              DOT_WRITE_MAX);
    if (*err < 0) {
        /* No socket for this address (no IPv6 on this host, say): try the next one. */
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: %s", spec->url, strerror(-*err));
        upstream_addr_failed(&up->base);
        goto fail_ids;
    }
    ev_timer_init(&c->timer, on_dot_timer, 0, up->cfg->attempt_timeout_ms / 1000.0);
    ev_timer_again(up->loop, &c->timer);
    LIST_INSERT_HEAD(&up->conns, c, entry);
    up->nconns++;
    up->base.stats.connects++;
    return c;

fail_ids:
    idmap_cleanup(&c->ids);
fail_conn:
    free(c);
    return NULL;
}

/* The connection to carry the next attempt: one with room, else a new one while the
 * limit allows. Several connections exist only when one cannot carry the load. Returns
 * NULL with *err set when there is none. */
static struct dot_conn *dot_pick_conn(struct dot_upstream *up, int *err)
{
    struct dot_conn *c;
    LIST_FOREACH(c, &up->conns, entry) {
        if (!c->stale && !idmap_full(&c->ids))
            return c;
    }
    if (up->nconns >= up->cfg->upstream_max_connections) {
        *err = -ENOBUFS;
        return NULL;
    }
    return dot_conn_new(up, err);
}

static int dot_send(struct upstream *u, struct attempt *a)
{
    struct dot_upstream *up = container_of(u, struct dot_upstream, base);
    if (up->draining)
        return -ESHUTDOWN;
    if (a->len > DOT_QUERY_MAX || a->len < DNS_HEADER_LEN)
        return -EMSGSIZE;
    int rc;
    struct dot_conn *c = dot_pick_conn(up, &rc);
    if (c == NULL)
        return rc;
    uint16_t id = 0;
    rc = -EAGAIN;
    for (int i = 0; i < DOT_ID_TRIES && rc != 0; i++) {
        id = dot_random_id(up);
        rc = idmap_insert(&c->ids, id, a);
    }
    if (rc < 0)
        return rc;
    uint8_t frame[2 + DOT_QUERY_MAX];
    dns_put16(frame, a->len);
    memcpy(frame + 2, a->wire, a->len);
    dns_put16(frame + 2, id);
    /* Queued bytes leave only after the handshake has verified the upstream: a query is
     * never sent in the clear or to an unverified peer. */
    rc = tls_stream_write(&c->ts, frame, 2 + (size_t)a->len);
    if (rc < 0) {
        idmap_remove(&c->ids, id);
        return rc;
    }
    if (c->ninflight == 0)
        c->last_rx = ev_now(up->loop); /* the silence that matters starts now */
    a->conn = c;
    a->id = id;
    a->sent = true;
    a->fresh = !c->ready;
    TAILQ_INSERT_TAIL(&c->inflight, a, entry);
    c->ninflight++;
    return 0;
}

static void dot_cancel(struct upstream *u, struct attempt *a)
{
    struct dot_upstream *up = container_of(u, struct dot_upstream, base);
    struct dot_conn *c = a->conn;
    if (c == NULL)
        return;
    dot_attempt_detach(c, a);
    c->cancelled[c->cancelled_next++ % DOT_CANCELLED_IDS] = 0x10000u | a->id;
    /* An attempt given up on a connection that has stayed silent for a whole attempt
     * timeout: the connection is presumably half-open (the laptop slept, the network
     * changed). It takes no new attempts, and is closed from its timer rather than here:
     * closing fails the other attempts it carries, and cancel must not call back. */
    double silent = ev_now(up->loop) - c->last_rx;
    if (c->ready && !c->stale && silent >= up->cfg->attempt_timeout_ms / 1000.0) {
        log_limited(&conn_limit, LOG_WARNING, "upstream %s: no answer for %.1f s, reconnecting",
                    u->spec->url, silent);
        c->stale = true;
        ev_timer_stop(up->loop, &c->timer);
        ev_timer_set(&c->timer, 0, 0);
        ev_timer_start(up->loop, &c->timer);
        return;
    }
    if (c->ready && c->ninflight == 0)
        dot_conn_idle(c);
}

static void dot_drain(struct upstream *u)
{
    struct dot_upstream *up = container_of(u, struct dot_upstream, base);
    up->draining = true;
    struct dot_conn *c, *next;
    for (c = LIST_FIRST(&up->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, entry);
        if (c->ninflight == 0)
            dot_conn_close(c, -ESHUTDOWN);
    }
}

static void dot_free(struct upstream *u)
{
    struct dot_upstream *up = container_of(u, struct dot_upstream, base);
    up->draining = true;
    struct dot_conn *c;
    while ((c = LIST_FIRST(&up->conns)) != NULL)
        dot_conn_close(c, -ESHUTDOWN);
    SSL_SESSION_free(up->session);
    free(up);
}

static const struct upstream_ops dot_ops = {
    .send = dot_send,
    .cancel = dot_cancel,
    .drain = dot_drain,
    .free = dot_free,
};

struct upstream *dot_upstream_new(struct ev_loop *loop, const struct upstream_spec *spec,
                                  const struct config *cfg, SSL_CTX *ctx)
{
    struct dot_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    upstream_init(&up->base, &dot_ops, spec, cfg->upstream_connect_rate,
                  cfg->upstream_connect_rate + cfg->upstream_max_connections,
                  cfg->attempt_timeout_ms / 1000.0);
    up->loop = loop;
    up->cfg = cfg;
    up->ctx = ctx;
    up->random_pos = sizeof(up->random);
    LIST_INIT(&up->conns);
    return &up->base;
}
