/* tcp: the plain DNS frontend over TCP (RFC 7766).
 *
 * Each message has a 2-byte length prefix (RFC 1035 §4.2.2). Many queries may be
 * pipelined on one connection; each is answered as soon as its answer is ready, in any
 * order (RFC 7766 §6.2.1.1). Limits: connections per listener (beyond it, accepting
 * pauses), queries in flight per connection and bytes of answers waiting for a slow
 * reader (beyond either, reading pauses, so a client cannot make us buffer without end),
 * and an idle timeout (RFC 7766 §6.2.3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/proxy.h"
#include "dnsward/util.h"

enum {
    TCP_READ_CHUNK = 16384,
    TCP_FRAME_MAX = 2 + DNS_MAX_MSG,
    TCP_WRITE_PAUSE = 256 * 1024, /* answers waiting: stop reading queries */
    TCP_WRITE_MAX = 1024 * 1024,  /* answers waiting: the client is not reading, close */
    TCP_ACCEPTS_PER_WAKEUP = 16,
};
#define TCP_ACCEPT_RETRY_S 0.1

struct tcp_listener;

struct tcp_conn {
    struct tcp_listener *l;
    LIST_ENTRY(tcp_conn) entry;
    int fd;
    struct sockaddr_storage peer; /* for the access list */
    socklen_t peerlen;
    ev_io rio;
    ev_io wio;
    ev_timer idle;
    struct query_list queries;
    unsigned inflight;
    uint8_t *rbuf;
    size_t rlen;
    size_t rcap;
    uint8_t *wbuf;
    size_t woff;
    size_t wlen;
    size_t wcap;
    bool eof;     /* the client will send no more */
    bool stopped; /* no more reading: shutdown */
};

struct tcp_listener {
    struct listener base;
    ev_io io;
    int fd;
    unsigned nconns;
    bool stopped;
    ev_timer retry; /* accepting again after running out of descriptors */
    LIST_HEAD(, tcp_conn) conns;
    uint8_t answer[DNS_MAX_MSG]; /* an immediate answer (a cache hit), until it is queued */
};

static struct log_limit tcp_limit = LOG_LIMIT_INIT(10, 3);

static void tcp_conn_close(struct tcp_conn *c)
{
    struct tcp_listener *l = c->l;
    struct ev_loop *loop = l->base.loop;
    struct query *q;
    while ((q = TAILQ_FIRST(&c->queries)) != NULL) {
        TAILQ_REMOVE(&c->queries, q, client_entry);
        proxy_query_cancel(q);
    }
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->idle);
    close(c->fd);
    LIST_REMOVE(c, entry);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
    if (l->nconns-- == l->base.cfg->tcp_max_connections && !l->stopped)
        ev_io_start(loop, &l->io); /* room again */
}

/* Is the connection finished: nothing more will be read, nothing is owed or queued? */
static bool tcp_conn_done(const struct tcp_conn *c)
{
    return (c->eof || c->stopped) && c->inflight == 0 && c->wlen == c->woff;
}

/* Reading goes on only while the client has room for more queries in flight and has
 * been reading its answers. */
static void tcp_conn_update_read(struct tcp_conn *c)
{
    struct ev_loop *loop = c->l->base.loop;
    bool want = !c->eof && !c->stopped && c->inflight < c->l->base.cfg->tcp_max_inflight &&
                c->wlen - c->woff < TCP_WRITE_PAUSE;
    if (want && !ev_is_active(&c->rio))
        ev_io_start(loop, &c->rio);
    else if (!want && ev_is_active(&c->rio))
        ev_io_stop(loop, &c->rio);
}

/* Write what is queued. Returns 0, or -1 if the connection broke (the caller closes). */
static int tcp_conn_flush(struct tcp_conn *c)
{
    struct ev_loop *loop = c->l->base.loop;
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->woff += (size_t)n;
        ev_timer_again(loop, &c->idle); /* the client is reading: not idle */
    }
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        ev_io_stop(loop, &c->wio);
    } else {
        ev_io_start(loop, &c->wio);
    }
    return 0;
}

/* Queue one framed message. Returns 0, -ENOBUFS if the client has left more than
 * TCP_WRITE_MAX bytes of answers unread (the answers in flight when reading paused can
 * exceed the pause threshold, by up to tcp-max-inflight large answers), or -ENOMEM. */
static int tcp_conn_queue(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
    if (c->wlen - c->woff + 2 + len > TCP_WRITE_MAX) {
        log_limited(&tcp_limit, LOG_WARNING, "%s: a client leaves its answers unread: closing",
                    c->l->base.name);
        return -ENOBUFS;
    }
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    size_t need = c->wlen + 2 + len;
    if (need > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
            need = c->wlen + 2 + len;
        }
        if (need > c->wcap) {
            size_t cap = c->wcap ? c->wcap : 4096;
            while (cap < need)
                cap *= 2;
            uint8_t *nb = realloc(c->wbuf, cap);
            if (nb == NULL)
                return -ENOMEM;
            c->wbuf = nb;
            c->wcap = cap;
        }
    }
    dns_put16(c->wbuf + c->wlen, (uint16_t)len);
    memcpy(c->wbuf + c->wlen + 2, msg, len);
    c->wlen += 2 + len;
    return 0;
}

static const struct proxy_client_ops tcp_client_ops;

/* Hand every whole message in the read buffer to the core. Returns 0, or -1 if the
 * connection must close. */
static int tcp_conn_dispatch(struct tcp_conn *c)
{
    struct tcp_listener *l = c->l;
    struct proxy_client client = {
        .ops = &tcp_client_ops, .conn = c, .peer = c->peer, .peerlen = c->peerlen};
    size_t off = 0;
    while (c->rlen - off >= 2 && c->inflight < l->base.cfg->tcp_max_inflight &&
           c->wlen - c->woff < TCP_WRITE_PAUSE) {
        size_t len = dns_get16(c->rbuf + off);
        if (c->rlen - off < 2 + len)
            break;
        struct query *q;
        int rc = proxy_query(l->base.proxy, c->rbuf + off + 2, len, &client, &q, l->answer,
                             sizeof(l->answer));
        off += 2 + len;
        if (rc == PROXY_PENDING) {
            TAILQ_INSERT_TAIL(&c->queries, q, client_entry);
            c->inflight++;
        } else if (rc > 0 && tcp_conn_queue(c, l->answer, (size_t)rc) < 0) {
            return -1;
        }
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

/* After any event: take the queries that can be taken, write what can be written, and
 * close when finished. Returns true if the connection was closed (and freed). */
static bool tcp_conn_progress(struct tcp_conn *c)
{
    if (tcp_conn_dispatch(c) < 0 || tcp_conn_flush(c) < 0 || tcp_conn_done(c)) {
        tcp_conn_close(c);
        return true;
    }
    tcp_conn_update_read(c);
    return false;
}

static void on_tcp_answer(struct query *q, const uint8_t *msg, size_t len)
{
    struct tcp_conn *c = q->client.conn;
    TAILQ_REMOVE(&c->queries, q, client_entry);
    c->inflight--;
    if (tcp_conn_queue(c, msg, len) < 0) {
        tcp_conn_close(c);
        return;
    }
    tcp_conn_progress(c);
}

static const struct proxy_client_ops tcp_client_ops = {
    .answer = on_tcp_answer,
};

static void on_tcp_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct tcp_conn *c = container_of(w, struct tcp_conn, rio);
    /* Make room for at least the frame being read, up to the largest frame there is. */
    size_t want = c->rlen + TCP_READ_CHUNK;
    if (c->rlen >= 2 && 2 + (size_t)dns_get16(c->rbuf) > want)
        want = 2 + (size_t)dns_get16(c->rbuf);
    if (want > TCP_FRAME_MAX + TCP_READ_CHUNK)
        want = TCP_FRAME_MAX + TCP_READ_CHUNK;
    if (c->rcap < want) {
        uint8_t *nb = realloc(c->rbuf, want);
        if (nb == NULL) {
            tcp_conn_close(c);
            return;
        }
        c->rbuf = nb;
        c->rcap = want;
    }
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        tcp_conn_close(c);
        return;
    }
    if (n == 0) {
        /* The client has sent all it will; answers still owed are delivered first
         * (RFC 7766 §6.2.4 leaves the close to whoever has nothing more to send). */
        c->eof = true;
    } else {
        c->rlen += (size_t)n;
        ev_timer_again(loop, &c->idle);
    }
    tcp_conn_progress(c);
}

static void on_tcp_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    tcp_conn_progress(container_of(w, struct tcp_conn, wio));
}

static void on_tcp_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct tcp_conn *c = container_of(w, struct tcp_conn, idle);
    /* Answers still owed keep it open. Answers queued for a whole idle period that the
     * client does not read do not: reading and writing both refresh this timer. */
    if (c->inflight > 0) {
        ev_timer_again(loop, w);
        return;
    }
    tcp_conn_close(c);
}

static void on_tcp_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct tcp_listener *l = container_of(w, struct tcp_listener, io);
    for (int i = 0; i < TCP_ACCEPTS_PER_WAKEUP; i++) {
        if (l->nconns >= l->base.cfg->tcp_max_connections) {
            /* Pending connections wait in the kernel's backlog until one closes. */
            log_limited(&tcp_limit, LOG_WARNING, "%s: %u connections (tcp-max-connections)",
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
            log_limited(&tcp_limit, LOG_WARNING, "%s: accept: %s", l->base.name, strerror(e));
            /* Out of descriptors (EMFILE, ENFILE) or memory: the pending connection stays
             * in the backlog and the socket stays readable, so pause rather than spin. */
            ev_io_stop(loop, &l->io);
            ev_timer_set(&l->retry, TCP_ACCEPT_RETRY_S, 0);
            ev_timer_start(loop, &l->retry);
            return;
        }
        struct tcp_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            return;
        }
        c->l = l;
        c->fd = fd;
        c->peer = peer;
        c->peerlen = peerlen;
        TAILQ_INIT(&c->queries);
        ev_io_init(&c->rio, on_tcp_readable, fd, EV_READ);
        ev_io_init(&c->wio, on_tcp_writable, fd, EV_WRITE);
        ev_init(&c->idle, on_tcp_idle);
        c->idle.repeat = l->base.cfg->tcp_idle_timeout_ms / 1000.0;
        ev_timer_again(loop, &c->idle);
        ev_io_start(loop, &c->rio);
        LIST_INSERT_HEAD(&l->conns, c, entry);
        l->nconns++;
    }
}

static void on_tcp_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct tcp_listener *l = container_of(w, struct tcp_listener, retry);
    if (!l->stopped)
        ev_io_start(loop, &l->io);
}

static void tcp_stop(struct listener *base)
{
    struct tcp_listener *l = container_of(base, struct tcp_listener, base);
    l->stopped = true;
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    struct tcp_conn *c, *next;
    for (c = LIST_FIRST(&l->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, entry);
        c->stopped = true;
        if (tcp_conn_done(c))
            tcp_conn_close(c);
        else
            tcp_conn_update_read(c);
    }
}

static size_t tcp_connections(const struct listener *base)
{
    const struct tcp_listener *l = container_of(base, const struct tcp_listener, base);
    return l->nconns;
}

static void tcp_free(struct listener *base)
{
    struct tcp_listener *l = container_of(base, struct tcp_listener, base);
    l->stopped = true;
    struct tcp_conn *c;
    while ((c = LIST_FIRST(&l->conns)) != NULL)
        tcp_conn_close(c);
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    close(l->fd);
    free(l);
}

static const struct listener_ops tcp_ops = {
    .name = "tcp",
    .stop = tcp_stop,
    .connections = tcp_connections,
    .free = tcp_free,
};

int tcp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen)
{
    struct tcp_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char where[64];
    config_format_addr(addr, where, sizeof(where));
    snprintf(l->base.name, sizeof(l->base.name), "tcp %s", where);
    int fd = listener_socket(SOCK_STREAM, addr, len, l->base.name, err, errlen);
    if (fd < 0) {
        free(l);
        return fd;
    }
    if (listen(fd, 1024) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: listen: %s", l->base.name, strerror(e));
        close(fd);
        free(l);
        return -e;
    }
    l->fd = fd;
    l->base.ops = &tcp_ops;
    l->base.loop = loop;
    l->base.proxy = p;
    l->base.cfg = cfg;
    LIST_INIT(&l->conns);
    ev_init(&l->retry, on_tcp_accept_retry);
    ev_io_init(&l->io, on_tcp_accept, fd, EV_READ);
    ev_io_start(loop, &l->io);
    *out = &l->base;
    return 0;
}
