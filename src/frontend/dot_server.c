/* dot_server: the DNS-over-TLS frontend (RFC 7858).
 *
 * TLS over TCP (a tls_stream in server mode), and inside it exactly the framing,
 * pipelining, limits and idle timeout of plain DNS over TCP (RFC 7858 §3.3, RFC 7766):
 * the stream layer (src/frontend/dnsstream.c) does all of that, for TCP too, and this
 * file is only the TLS under it. What TLS adds:
 *   - a deadline for the handshake: a client has cfg->doh_header_timeout_ms from accept
 *     to a finished handshake (one byte a second cannot hold a connection slot); the
 *     idle timeout runs from then on;
 *   - the client is marked encrypted, so that the core pads the answers to padded
 *     queries (RFC 8467 §4.1);
 *   - the TLS stream owns the write queue and drains it from its own watcher without
 *     telling us: while answers wait in it, a prepare watcher (run once per loop
 *     iteration, before the loop blocks) sees how much the client took, for the idle
 *     timer, to resume reading, and to close once the last answer is out;
 *   - for the same reason, answers queued lately have not been offered to the kernel yet
 *     (TCP writes each through at once): only bytes queued before the prepare watcher's
 *     last look but one have surely been (the stream's watcher had a turn of the loop in
 *     between), and only those count as unread, against DNSSTREAM_WRITE_MAX; the TLS
 *     stream's own cap, DOT_QUEUE_MAX, bounds a burst of answers finishing together as
 *     TCP's socket buffer would;
 *   - after the client's close_notify the TLS stream sends nothing more, so a clean close
 *     by the client ends the connection at once, and the queries still in flight are
 *     cancelled (a TCP client's FIN, by contrast, still gets its answers);
 *   - a certificate reload (set_tls) takes effect for the connections accepted after it.
 * A failed handshake costs one log line (rate-limited) and the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/dnsstream.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/tls_stream.h"
#include "dnsward/util.h"

/* The TLS stream's write queue: the unread answers, plus a burst not yet offered to the
 * kernel, as much as TCP's socket buffer could take (tcp_wmem's default maximum). */
enum { DOT_QUEUE_MAX = DNSSTREAM_WRITE_MAX + 4 * 1024 * 1024 };

/* Byte counts below are since the connection began: written, handed to the TLS stream;
 * taken, of those, taken from its queue by the kernel (written - tls_stream_queued). */
struct dot_conn {
    struct dnsstream s;
    struct tls_stream ts;
    ev_prepare drain;      /* active while answers wait in the TLS stream's queue */
    uint64_t written;      /* bytes handed to the TLS stream */
    uint64_t taken_seen;   /* taken when drain last looked */
    uint64_t offered_cur;  /* written when drain last looked */
    uint64_t offered_prev; /* written when drain looked the time before: a turn of the
                            * loop has passed since, so all of it was offered */
    bool ready;            /* the handshake is done */
};

struct dot_listener {
    struct dnsstream_listener sl;
    SSL_CTX *ctx; /* for connections accepted from now on; our own reference */
};

static struct log_limit dot_limit = LOG_LIMIT_INIT(10, 5);

/* A handshake that did not finish: one line, at INFO (a client's failure, not ours). A
 * TLS protocol error (a client that does not speak TLS, or rejects our certificate) was
 * logged already by the TLS stream, with OpenSSL's reason: only a debug line here. */
static void dot_log_handshake_failure(struct dot_conn *c, int err)
{
    char who[64];
    const char *name = c->s.l->base.name;
    config_format_addr((const struct sockaddr *)&c->s.peer, who, sizeof(who));
    if (err == -EPROTO)
        log_debug("%s: client %s: TLS handshake failed", name, who);
    else if (err == -ETIMEDOUT)
        log_limited(&dot_limit, LOG_INFO, "%s: client %s: no TLS handshake within %u ms: closing",
                    name, who, c->s.l->base.cfg->doh_header_timeout_ms);
    else if (err < 0)
        log_limited(&dot_limit, LOG_INFO, "%s: client %s: TLS handshake failed: %s", name, who,
                    strerror(-err));
}

static void dot_conn_close(struct dnsstream *s, int err)
{
    struct dot_conn *c = container_of(s, struct dot_conn, s);
    if (!c->ready)
        dot_log_handshake_failure(c, err);
    ev_prepare_stop(s->l->base.loop, &c->drain);
    dnsstream_cleanup(s);
    /* Safe from inside the TLS stream's callbacks: it touches nothing of itself after a
     * callback that closed it, so its memory can go with ours. */
    tls_stream_close(&c->ts);
    free(c);
}

/* Returns 0, -ENOBUFS beyond DOT_QUEUE_MAX, -ENOMEM, or -EPIPE (the stream is
 * finishing). */
static int dot_conn_write(struct dnsstream *s, const void *data, size_t len)
{
    struct dot_conn *c = container_of(s, struct dot_conn, s);
    int rc = tls_stream_write(&c->ts, data, len);
    if (rc == 0)
        c->written += len;
    return rc;
}

static uint64_t dot_conn_taken(const struct dot_conn *c)
{
    return c->written - tls_stream_queued(&c->ts);
}

static size_t dot_conn_queued(const struct dnsstream *s)
{
    const struct dot_conn *c = container_of(s, const struct dot_conn, s);
    return tls_stream_queued(&c->ts);
}

/* The queue drains from its front: of the bytes surely offered, those not taken. The cap
 * may so act a turn or two of the loop late, never early. */
static size_t dot_conn_unread(const struct dnsstream *s)
{
    const struct dot_conn *c = container_of(s, const struct dot_conn, s);
    uint64_t taken = dot_conn_taken(c);
    return c->offered_prev > taken ? (size_t)(c->offered_prev - taken) : 0;
}

/* The TLS stream sends by itself; we only watch its queue while something is in it. */
static int dot_conn_flush(struct dnsstream *s)
{
    struct dot_conn *c = container_of(s, struct dot_conn, s);
    if (tls_stream_queued(&c->ts) > 0 && !ev_is_active(&c->drain)) {
        /* What was queued before the queue last emptied is all taken. */
        c->taken_seen = c->offered_prev = c->offered_cur = dot_conn_taken(c);
        ev_prepare_start(s->l->base.loop, &c->drain);
    }
    return 0;
}

static void dot_conn_want_read(struct dnsstream *s, bool want)
{
    struct dot_conn *c = container_of(s, struct dot_conn, s);
    tls_stream_pause_read(&c->ts, !want);
}

static const struct dnsstream_ops dot_stream_ops = {
    .write = dot_conn_write,
    .queued = dot_conn_queued,
    .unread = dot_conn_unread,
    .flush = dot_conn_flush,
    .want_read = dot_conn_want_read,
    .close = dot_conn_close,
};

/* Before the loop blocks: the TLS stream's watcher may have sent some of the queue in
 * the turn of the loop that ends. */
static void on_dot_drain(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct dot_conn *c = container_of(w, struct dot_conn, drain);
    uint64_t taken = dot_conn_taken(c);
    bool took = taken > c->taken_seen;
    c->taken_seen = taken;
    c->offered_prev = c->offered_cur;
    c->offered_cur = c->written;
    if (tls_stream_queued(&c->ts) == 0)
        ev_prepare_stop(loop, w);
    if (took) {
        dnsstream_touch(&c->s); /* the client is reading: not idle */
        dnsstream_progress(&c->s);
    }
}

static void on_dot_ready(struct tls_stream *ts)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    c->ready = true;
    dnsstream_set_timeout(&c->s, c->s.l->base.cfg->tcp_idle_timeout_ms);
}

static void on_dot_data(struct tls_stream *ts, const uint8_t *data, size_t len)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    /* The stream layer takes this much: the TLS stream hands over one record (at most
     * DNSSTREAM_READ_CHUNK bytes) at a time, and stops at once when paused. */
    int rc = dnsstream_input(&c->s, data, len);
    if (rc < 0) {
        dot_conn_close(&c->s, rc);
        return;
    }
    dnsstream_progress(&c->s);
}

static void on_dot_close(struct tls_stream *ts, int err)
{
    struct dot_conn *c = container_of(ts, struct dot_conn, ts);
    /* err 0 is the client's close_notify; a handshake cut short by one is no success. */
    dot_conn_close(&c->s, !c->ready && err == 0 ? -ECONNRESET : err);
}

static const struct tls_stream_cbs dot_tls_cbs = {
    .on_ready = on_dot_ready,
    .on_data = on_dot_data,
    .on_close = on_dot_close,
};

static int dot_accept(struct dnsstream_listener *sl, int fd, const struct sockaddr *peer,
                      socklen_t peerlen)
{
    struct dot_listener *l = container_of(sl, struct dot_listener, sl);
    struct dot_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    /* The TLS stream calls back only from the loop: the connection is complete first. */
    int rc = tls_stream_accept(&c->ts, sl->base.loop, l->ctx, fd, &dot_tls_cbs, DOT_QUEUE_MAX);
    if (rc < 0) {
        free(c);
        return rc;
    }
    ev_prepare_init(&c->drain, on_dot_drain);
    dnsstream_init(&c->s, sl, &dot_stream_ops, peer, peerlen, true,
                   sl->base.cfg->doh_header_timeout_ms);
    return 0;
}

static void dot_set_tls(struct listener *base, SSL_CTX *ctx)
{
    struct dot_listener *l = container_of(base, struct dot_listener, sl.base);
    if (ctx == NULL || ctx == l->ctx || SSL_CTX_up_ref(ctx) != 1)
        return;
    /* Open connections hold their own reference (SSL_new takes one). */
    SSL_CTX_free(l->ctx);
    l->ctx = ctx;
}

static void dot_free(struct listener *base)
{
    struct dot_listener *l = container_of(base, struct dot_listener, sl.base);
    dnsstream_listener_cleanup(&l->sl);
    SSL_CTX_free(l->ctx);
    free(l);
}

static const struct listener_ops dot_ops = {
    .name = "dot",
    .stop = dnsstream_listener_stop,
    .connections = dnsstream_listener_connections,
    .free = dot_free,
    .set_tls = dot_set_tls,
};

int dot_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, SSL_CTX *ctx,
                     struct listener **out, char *err, size_t errlen)
{
    if (ctx == NULL) {
        snprintf(err, errlen, "dot-listen: no TLS context (cert and key are needed)");
        return -EINVAL;
    }
    struct dot_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (SSL_CTX_up_ref(ctx) != 1) {
        snprintf(err, errlen, "dot-listen: cannot reference the TLS context");
        free(l);
        return -ENOMEM;
    }
    l->ctx = ctx;
    int rc =
        dnsstream_listener_init(&l->sl, loop, p, cfg, "dot", addr, len, dot_accept, err, errlen);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        free(l);
        return rc;
    }
    l->sl.base.ops = &dot_ops;
    *out = &l->sl.base;
    return 0;
}
