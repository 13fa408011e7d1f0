/* dnsstream: see include/dnsward/dnsstream.h.
 *
 * The life of a connection: the transport accepts it (on_accept, then dnsstream_init),
 * feeds in what it reads, and calls dnsstream_progress after each event; progress hands
 * whole frames to the core, flushes, and decides whether reading goes on, pauses, or the
 * connection is finished. Answers come back through on_stream_answer, from the loop.
 * Every path that closes goes through ops->close, which frees the connection: whoever
 * calls progress, or anything that may close, must return at once when told it closed.
 */
#include "dnsward/dnsstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/log.h"
#include "dnsward/util.h"

enum {
    DNSSTREAM_RBUF_MIN = 512,
    DNSSTREAM_ACCEPTS_PER_WAKEUP = 16,
    DNSSTREAM_BACKLOG = 1024,
};
#define DNSSTREAM_ACCEPT_RETRY_S 0.1

static struct log_limit stream_limit = LOG_LIMIT_INIT(10, 3);

static const struct proxy_client_ops stream_client_ops;

/* Is the connection finished: nothing more will be read, nothing is owed or queued? */
static bool stream_done(const struct dnsstream *s)
{
    return (s->eof || s->stopped) && s->inflight == 0 && s->ops->queued(s) == 0;
}

/* Reading goes on only while the client has room for more queries in flight and has
 * been reading its answers. */
static void stream_update_read(struct dnsstream *s)
{
    bool want = !s->eof && !s->stopped && s->inflight < s->l->base.cfg->tcp_max_inflight &&
                s->ops->queued(s) < DNSSTREAM_WRITE_PAUSE;
    s->ops->want_read(s, want);
}

/* Queue one framed answer. Returns 0, -ENOBUFS if the client has left more than
 * DNSSTREAM_WRITE_MAX bytes of answers unread (the answers in flight when reading paused
 * can exceed the pause threshold, by up to tcp-max-inflight large answers) or the
 * transport cannot hold more, or what the transport's write returned. */
static int stream_queue(struct dnsstream *s, const uint8_t *msg, size_t len)
{
    int rc = -ENOBUFS;
    if (s->ops->unread(s) + 2 + len <= DNSSTREAM_WRITE_MAX) {
        uint8_t prefix[2];
        dns_put16(prefix, (uint16_t)len);
        rc = s->ops->write(s, prefix, sizeof(prefix));
        if (rc == 0)
            rc = s->ops->write(s, msg, len);
    }
    if (rc == -ENOBUFS)
        log_limited(&stream_limit, LOG_WARNING, "%s: a client leaves its answers unread: closing",
                    s->l->base.name);
    return rc;
}

/* Hand every whole message in the read buffer to the core, while the limits allow.
 * Returns 0, or -errno if the connection must close. */
static int stream_dispatch(struct dnsstream *s)
{
    struct dnsstream_listener *l = s->l;
    struct proxy_client client = {
        .ops = &stream_client_ops,
        .conn = s,
        .peer = s->peer,
        .peerlen = s->peerlen,
        .encrypted = s->encrypted,
        .transport = s->encrypted ? PROXY_DOT : PROXY_TCP,
    };
    size_t off = 0;
    int rc = 0;
    while (s->rlen - off >= 2 && s->inflight < l->base.cfg->tcp_max_inflight &&
           s->ops->queued(s) < DNSSTREAM_WRITE_PAUSE) {
        size_t len = dns_get16(s->rbuf + off);
        if (s->rlen - off < 2 + len)
            break;
        /* A frame of length 0 or 1 is handed over like any other: the core drops what is
         * too short to be a query, as it does for a datagram. */
        struct query *q;
        l->base.queries++;
        int n = proxy_query(l->base.proxy, s->rbuf + off + 2, len, &client, &q, l->answer,
                            sizeof(l->answer));
        off += 2 + len;
        if (n == PROXY_PENDING) {
            TAILQ_INSERT_TAIL(&s->queries, q, client_entry);
            s->inflight++;
        } else if (n > 0 && (rc = stream_queue(s, l->answer, (size_t)n)) < 0) {
            break;
        }
    }
    if (off > 0) {
        memmove(s->rbuf, s->rbuf + off, s->rlen - off);
        s->rlen -= off;
    }
    return rc;
}

bool dnsstream_progress(struct dnsstream *s)
{
    int rc = stream_dispatch(s);
    if (rc == 0)
        rc = s->ops->flush(s);
    if (rc < 0 || stream_done(s)) {
        s->ops->close(s, rc);
        return true;
    }
    stream_update_read(s);
    return false;
}

static void on_stream_answer(struct query *q, const uint8_t *msg, size_t len)
{
    struct dnsstream *s = q->client.conn;
    TAILQ_REMOVE(&s->queries, q, client_entry);
    s->inflight--;
    int rc = stream_queue(s, msg, len);
    if (rc < 0) {
        s->ops->close(s, rc);
        return;
    }
    dnsstream_progress(s);
}

static const struct proxy_client_ops stream_client_ops = {
    .answer = on_stream_answer,
};

/* Make the read buffer hold at least need bytes (need <= DNSSTREAM_READ_MAX): doubling,
 * so that a stream fed a little at a time reallocates rarely. Returns 0 or -ENOMEM. */
static int stream_reserve(struct dnsstream *s, size_t need)
{
    if (need <= s->rcap)
        return 0;
    size_t cap = s->rcap ? s->rcap : DNSSTREAM_RBUF_MIN;
    while (cap < need)
        cap *= 2;
    if (cap > DNSSTREAM_READ_MAX)
        cap = DNSSTREAM_READ_MAX;
    uint8_t *nb = realloc(s->rbuf, cap);
    if (nb == NULL)
        return -ENOMEM;
    s->rbuf = nb;
    s->rcap = cap;
    return 0;
}

uint8_t *dnsstream_read_space(struct dnsstream *s, size_t *room)
{
    /* Room for at least the frame being read, up to the largest frame there is. Reading
     * is wanted only while the buffer holds less than one whole frame (whole ones are
     * dispatched first, or reading pauses), so there is always room. */
    size_t want = s->rlen + DNSSTREAM_READ_CHUNK;
    if (s->rlen >= 2 && 2 + (size_t)dns_get16(s->rbuf) > want)
        want = 2 + (size_t)dns_get16(s->rbuf);
    if (want > DNSSTREAM_READ_MAX)
        want = DNSSTREAM_READ_MAX;
    if (s->rlen >= want || stream_reserve(s, want) < 0)
        return NULL;
    *room = s->rcap - s->rlen;
    return s->rbuf + s->rlen;
}

void dnsstream_received(struct dnsstream *s, size_t n)
{
    s->rlen += n;
    ev_timer_again(s->l->base.loop, &s->timer);
}

int dnsstream_input(struct dnsstream *s, const uint8_t *data, size_t len)
{
    if (len > DNSSTREAM_READ_MAX - s->rlen)
        return -ENOBUFS;
    if (stream_reserve(s, s->rlen + len) < 0)
        return -ENOMEM;
    memcpy(s->rbuf + s->rlen, data, len);
    dnsstream_received(s, len);
    return 0;
}

void dnsstream_eof(struct dnsstream *s)
{
    /* RFC 7766 §6.2.4 leaves the close to whoever has nothing more to send: the answers
     * still owed are delivered first. */
    s->eof = true;
}

void dnsstream_touch(struct dnsstream *s)
{
    ev_timer_again(s->l->base.loop, &s->timer);
}

void dnsstream_set_timeout(struct dnsstream *s, uint32_t timeout_ms)
{
    s->timer.repeat = timeout_ms / 1000.0;
    ev_timer_again(s->l->base.loop, &s->timer);
}

static void on_stream_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct dnsstream *s = container_of(w, struct dnsstream, timer);
    /* Answers still owed keep it open. Answers queued for a whole idle period that the
     * client does not read do not: reading and writing both refresh this timer. */
    if (s->inflight > 0) {
        ev_timer_again(loop, w);
        return;
    }
    s->ops->close(s, -ETIMEDOUT);
}

void dnsstream_init(struct dnsstream *s, struct dnsstream_listener *l,
                    const struct dnsstream_ops *ops, const struct sockaddr *peer, socklen_t peerlen,
                    bool encrypted, uint32_t timeout_ms)
{
    s->ops = ops;
    s->l = l;
    if (peerlen > sizeof(s->peer))
        peerlen = sizeof(s->peer);
    memcpy(&s->peer, peer, peerlen);
    s->peerlen = peerlen;
    s->encrypted = encrypted;
    TAILQ_INIT(&s->queries);
    ev_init(&s->timer, on_stream_timer);
    dnsstream_set_timeout(s, timeout_ms);
    LIST_INSERT_HEAD(&l->conns, s, entry);
    l->nconns++;
}

void dnsstream_cleanup(struct dnsstream *s)
{
    struct dnsstream_listener *l = s->l;
    struct ev_loop *loop = l->base.loop;
    struct query *q;
    while ((q = TAILQ_FIRST(&s->queries)) != NULL) {
        TAILQ_REMOVE(&s->queries, q, client_entry);
        proxy_query_cancel(q);
    }
    s->inflight = 0;
    ev_timer_stop(loop, &s->timer);
    LIST_REMOVE(s, entry);
    free(s->rbuf);
    s->rbuf = NULL;
    s->rlen = s->rcap = 0;
    if (l->nconns-- == l->base.cfg->tcp_max_connections && !l->stopped)
        ev_io_start(loop, &l->io); /* room again */
}

static void on_stream_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct dnsstream_listener *l = container_of(w, struct dnsstream_listener, io);
    for (int i = 0; i < DNSSTREAM_ACCEPTS_PER_WAKEUP; i++) {
        if (l->nconns >= l->base.cfg->tcp_max_connections) {
            /* Pending connections wait in the kernel's backlog until one closes. */
            log_limited(&stream_limit, LOG_WARNING, "%s: %u connections (tcp-max-connections)",
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
            log_limited(&stream_limit, LOG_WARNING, "%s: accept: %s", l->base.name, strerror(e));
            /* Out of descriptors (EMFILE, ENFILE) or memory: the pending connection stays
             * in the backlog and the socket stays readable, so pause rather than spin. */
            ev_io_stop(loop, &l->io);
            ev_timer_set(&l->retry, DNSSTREAM_ACCEPT_RETRY_S, 0);
            ev_timer_start(loop, &l->retry);
            return;
        }
        int rc = l->on_accept(l, fd, (struct sockaddr *)&peer, peerlen);
        if (rc < 0) {
            log_limited(&stream_limit, LOG_WARNING, "%s: cannot take a connection: %s",
                        l->base.name, strerror(-rc));
            return;
        }
    }
}

static void on_stream_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct dnsstream_listener *l = container_of(w, struct dnsstream_listener, retry);
    if (!l->stopped)
        ev_io_start(loop, &l->io);
}

void dnsstream_listener_stop(struct listener *base)
{
    struct dnsstream_listener *l = container_of(base, struct dnsstream_listener, base);
    l->stopped = true;
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    struct dnsstream *s, *next;
    for (s = LIST_FIRST(&l->conns); s != NULL; s = next) {
        next = LIST_NEXT(s, entry);
        s->stopped = true;
        if (stream_done(s))
            s->ops->close(s, 0);
        else
            stream_update_read(s);
    }
}

size_t dnsstream_listener_connections(const struct listener *base)
{
    const struct dnsstream_listener *l = container_of(base, const struct dnsstream_listener, base);
    return l->nconns;
}

void dnsstream_listener_cleanup(struct dnsstream_listener *l)
{
    l->stopped = true;
    struct dnsstream *s;
    while ((s = LIST_FIRST(&l->conns)) != NULL)
        s->ops->close(s, 0);
    ev_io_stop(l->base.loop, &l->io);
    ev_timer_stop(l->base.loop, &l->retry);
    close(l->fd);
    l->fd = -1;
}

int dnsstream_listener_init(struct dnsstream_listener *l, struct ev_loop *loop, struct proxy *p,
                            const struct config *cfg, const char *kind, const struct sockaddr *addr,
                            socklen_t len, dnsstream_accept_cb *on_accept, char *err, size_t errlen)
{
    char where[64];
    config_format_addr(addr, where, sizeof(where));
    snprintf(l->base.name, sizeof(l->base.name), "%s %s", kind, where);
    int fd = listener_socket(SOCK_STREAM, addr, len, l->base.name, err, errlen);
    if (fd < 0)
        return fd;
    if (listen(fd, DNSSTREAM_BACKLOG) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: listen: %s", l->base.name, strerror(e));
        close(fd);
        return -e;
    }
    l->fd = fd;
    l->base.loop = loop;
    l->base.proxy = p;
    l->base.cfg = cfg;
    l->on_accept = on_accept;
    LIST_INIT(&l->conns);
    ev_init(&l->retry, on_stream_accept_retry);
    ev_io_init(&l->io, on_stream_accept, fd, EV_READ);
    ev_io_start(loop, &l->io);
    return 0;
}
