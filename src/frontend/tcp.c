/* tcp: the plain DNS frontend over TCP (RFC 7766).
 *
 * Framing, pipelining, the limits and the idle timeout are the stream layer's
 * (src/frontend/dnsstream.c, shared with DNS over TLS); this file is only the raw
 * socket under it: recv(2) into the stream's buffer, and a write queue of our own that
 * send(2) drains as the client reads. The queue's size is bounded by the stream layer
 * (DNSSTREAM_WRITE_MAX), which also pauses reading beyond DNSSTREAM_WRITE_PAUSE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/dnsstream.h"
#include "dnsward/listener.h"
#include "dnsward/util.h"

enum { TCP_WBUF_MIN = 4096 };

struct tcp_conn {
    struct dnsstream s;
    int fd;
    ev_io rio;
    ev_io wio;
    uint8_t *wbuf; /* answers, framed; wbuf[woff..wlen) is still to send */
    size_t woff;
    size_t wlen;
    size_t wcap;
};

static void tcp_conn_close(struct dnsstream *s, int err)
{
    (void)err;
    struct tcp_conn *c = container_of(s, struct tcp_conn, s);
    struct ev_loop *loop = s->l->base.loop;
    dnsstream_cleanup(s);
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    close(c->fd);
    free(c->wbuf);
    free(c);
}

static size_t tcp_conn_queued(const struct dnsstream *s)
{
    const struct tcp_conn *c = container_of(s, const struct tcp_conn, s);
    return c->wlen - c->woff;
}

/* Append to the write queue, whose size the stream layer bounds (flush runs right after
 * each answer is queued, so all of it has been offered to the kernel). Returns 0 or
 * -ENOMEM. */
static int tcp_conn_write(struct dnsstream *s, const void *data, size_t len)
{
    struct tcp_conn *c = container_of(s, struct tcp_conn, s);
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    size_t need = c->wlen + len;
    if (need > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
            need = c->wlen + len;
        }
        if (need > c->wcap) {
            size_t cap = c->wcap ? c->wcap : TCP_WBUF_MIN;
            while (cap < need)
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

/* Write what is queued. Returns 0, or -errno if the connection broke. */
static int tcp_conn_flush(struct dnsstream *s)
{
    struct tcp_conn *c = container_of(s, struct tcp_conn, s);
    struct ev_loop *loop = s->l->base.loop;
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
        dnsstream_touch(s); /* the client is reading: not idle */
    }
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        ev_io_stop(loop, &c->wio);
    } else {
        ev_io_start(loop, &c->wio);
    }
    return 0;
}

static void tcp_conn_want_read(struct dnsstream *s, bool want)
{
    struct tcp_conn *c = container_of(s, struct tcp_conn, s);
    struct ev_loop *loop = s->l->base.loop;
    if (want && !ev_is_active(&c->rio))
        ev_io_start(loop, &c->rio);
    else if (!want && ev_is_active(&c->rio))
        ev_io_stop(loop, &c->rio);
}

static const struct dnsstream_ops tcp_stream_ops = {
    .write = tcp_conn_write,
    .queued = tcp_conn_queued,
    .unread = tcp_conn_queued, /* every answer is offered to the kernel at once */
    .flush = tcp_conn_flush,
    .want_read = tcp_conn_want_read,
    .close = tcp_conn_close,
};

static void on_tcp_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct tcp_conn *c = container_of(w, struct tcp_conn, rio);
    size_t room = 0;
    uint8_t *buf = dnsstream_read_space(&c->s, &room);
    if (buf == NULL) {
        tcp_conn_close(&c->s, -ENOMEM);
        return;
    }
    ssize_t n = recv(c->fd, buf, room, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        tcp_conn_close(&c->s, -errno);
        return;
    }
    if (n == 0)
        dnsstream_eof(&c->s);
    else
        dnsstream_received(&c->s, (size_t)n);
    dnsstream_progress(&c->s);
}

static void on_tcp_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    dnsstream_progress(&container_of(w, struct tcp_conn, wio)->s);
}

static int tcp_accept(struct dnsstream_listener *l, int fd, const struct sockaddr *peer,
                      socklen_t peerlen)
{
    struct tcp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    ev_io_init(&c->rio, on_tcp_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_tcp_writable, fd, EV_WRITE);
    dnsstream_init(&c->s, l, &tcp_stream_ops, peer, peerlen, false,
                   l->base.cfg->tcp_idle_timeout_ms);
    ev_io_start(l->base.loop, &c->rio);
    return 0;
}

static void tcp_free(struct listener *base)
{
    struct dnsstream_listener *l = container_of(base, struct dnsstream_listener, base);
    dnsstream_listener_cleanup(l);
    free(l);
}

static const struct listener_ops tcp_ops = {
    .name = "tcp",
    .stop = dnsstream_listener_stop,
    .connections = dnsstream_listener_connections,
    .free = tcp_free,
};

int tcp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen)
{
    struct dnsstream_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = dnsstream_listener_init(l, loop, p, cfg, "tcp", addr, len, tcp_accept, err, errlen);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->base.ops = &tcp_ops;
    *out = &l->base;
    return 0;
}
