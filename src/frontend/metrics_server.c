/* metrics_server: the HTTP/1.1 listener of /metrics. See include/dnsward/metrics.h.
 *
 * A connection carries one request: its bytes go to the http1 parser as they come; the
 * first whole request (or the parser's error) gets its response, written with
 * "connection: close", and then the connection is closed gracefully (RFC 9112 §9.6):
 * our side is shut down once the response is out, and what the client still sends is
 * read and dropped until it closes too, so that the response is not lost to a reset. A
 * scraper reconnects for each scrape, which for one request every few seconds costs
 * nothing worth a keep-alive state machine.
 *
 * Each connection has one idle timer (METRICS_IDLE_TIMEOUT_S), refreshed whenever bytes
 * move, and the listener stops accepting at METRICS_MAX_CONNECTIONS (the rest wait in the
 * kernel's backlog). A response is built in a buffer of its own, allocated for it and
 * freed once written, never larger than the page cap plus its head.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/http1.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/metrics.h"
#include "dnsward/util.h"

enum {
    METRICS_BACKLOG = 64,
    METRICS_ACCEPTS_PER_WAKEUP = 16,
    METRICS_PAGE_MIN = 16 * 1024, /* the first page buffer; doubled up to METRICS_PAGE_MAX */
    METRICS_HEAD_MAX = 512,       /* room for a response's status line and fields */
    METRICS_READ_SIZE = 4096,
};
#define METRICS_ACCEPT_RETRY_S 0.1
#define METRICS_LINGER_S 2.0 /* after the response, how long the client may take to close */

static const char metrics_ctype[] = "text/plain; version=0.0.4; charset=utf-8";

static struct log_limit metrics_limit = LOG_LIMIT_INIT(10, 5);

struct metrics_conn;

struct metrics_listener {
    struct listener base;
    int fd;
    ev_io io;
    ev_timer retry; /* accept paused after an error (out of descriptors) */
    metrics_view_cb *view_cb;
    void *ctx;
    LIST_HEAD(, metrics_conn) conns;
    unsigned nconns;
    bool stopped;
};

struct metrics_conn {
    LIST_ENTRY(metrics_conn) entry;
    struct metrics_listener *l;
    int fd;
    ev_io rio;
    ev_io wio;
    ev_timer idle;
    struct http1_parser *parser; /* NULL once the request was answered */
    uint8_t *out;                /* the response; out[off..len) is still to send */
    size_t off;
    size_t len;
    bool lingering; /* the response is out and our side shut down: waiting for the close */
};

static void metrics_conn_close(struct metrics_conn *c)
{
    struct metrics_listener *l = c->l;
    struct ev_loop *loop = l->base.loop;
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->idle);
    LIST_REMOVE(c, entry);
    close(c->fd);
    http1_parser_free(c->parser);
    free(c->out);
    free(c);
    if (l->nconns-- == METRICS_MAX_CONNECTIONS && !l->stopped)
        ev_io_start(loop, &l->io); /* room again */
}

/* The response is out: shut our side down and wait (briefly) for the client to close
 * its own, reading and dropping whatever it sends meanwhile. During shutdown, close at
 * once: nothing more is owed. Returns true if c was closed. */
static bool metrics_conn_finish(struct metrics_conn *c)
{
    struct ev_loop *loop = c->l->base.loop;
    free(c->out);
    c->out = NULL;
    c->off = c->len = 0;
    ev_io_stop(loop, &c->wio);
    if (c->l->stopped) {
        metrics_conn_close(c);
        return true;
    }
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    c->idle.repeat = METRICS_LINGER_S;
    ev_timer_again(loop, &c->idle);
    if (!ev_is_active(&c->rio))
        ev_io_start(loop, &c->rio);
    return false;
}

/* Send what is left of the response. Returns true if c was closed. */
static bool metrics_conn_flush(struct metrics_conn *c)
{
    struct ev_loop *loop = c->l->base.loop;
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            metrics_conn_close(c);
            return true;
        }
        c->off += (size_t)n;
        ev_timer_again(loop, &c->idle); /* the client is reading: not idle */
    }
    if (c->off < c->len) {
        ev_io_start(loop, &c->wio);
        return false;
    }
    return metrics_conn_finish(c);
}

/* The page, in a buffer allocated for it (the caller frees *page). Returns its length, or
 * -ENOMEM, or -ENOSPC when it exceeds METRICS_PAGE_MAX. */
static int metrics_page(struct metrics_listener *l, char **page)
{
    struct metrics_view view;
    memset(&view, 0, sizeof(view));
    l->view_cb(l->ctx, &view);
    for (size_t cap = METRICS_PAGE_MIN; cap <= METRICS_PAGE_MAX; cap *= 2) {
        char *buf = malloc(cap);
        if (buf == NULL)
            return -ENOMEM;
        int n = metrics_render(&view, buf, cap);
        if (n >= 0) {
            *page = buf;
            return n;
        }
        free(buf);
        if (n != -ENOSPC)
            return n;
    }
    return -ENOSPC;
}

/* Build the response to a request (status 0) or to a parser error (status > 0) in c->out.
 * Returns 0, or -ENOMEM. */
static int metrics_respond(struct metrics_conn *c, const struct http1_request *r, int status)
{
    struct metrics_listener *l = c->l;
    char *page = NULL;
    const char *body = NULL;
    const char *extra = NULL;
    size_t body_len = 0;
    bool head = false;
    if (status == 0) {
        /* RFC 9110 §9.3.2: HEAD is GET without the content, same fields included. */
        bool get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
        head = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
        /* The path alone decides; a query string (Prometheus sends none, a person might)
         * is ignored. */
        size_t path_len = r->target_len;
        const char *q = memchr(r->target, '?', r->target_len);
        if (q != NULL)
            path_len = (size_t)(q - r->target);
        if (path_len != 8 || memcmp(r->target, "/metrics", 8) != 0) {
            status = 404;
        } else if (!get && !head) {
            status = 405;
            extra = "allow: GET, HEAD\r\n"; /* RFC 9110 §15.5.6 */
        } else {
            int n = metrics_page(l, &page);
            if (n < 0) {
                log_limited(&metrics_limit, LOG_WARNING, "%s: cannot render the page: %s",
                            l->base.name, strerror(-n));
                status = 500;
            } else {
                status = 200;
                body = page;
                body_len = (size_t)n;
            }
        }
    }
    const char *ctype = metrics_ctype;
    if (status != 200) {
        switch (status) {
        case 404:
            body = "not found; the metrics are at /metrics\n";
            break;
        case 405:
            body = "method not allowed; use GET or HEAD\n";
            break;
        default:
            body = "error\n";
            break;
        }
        body_len = strlen(body);
        ctype = "text/plain; charset=utf-8";
    }
    int rc = 0;
    size_t cap = body_len + METRICS_HEAD_MAX;
    c->out = malloc(cap);
    if (c->out == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    int n =
        http1_response(c->out, cap, status, ctype, extra, (const uint8_t *)body, body_len, false);
    if (n < 0) {
        rc = n;
        goto out;
    }
    c->off = 0;
    /* A HEAD's response stops where the content would begin; its content-length is the
     * GET's. */
    c->len = head && status == 200 ? (size_t)n - body_len : (size_t)n;
out:
    free(page);
    return rc;
}

/* A request, or the parser's error status: answer it and stop reading requests. Returns
 * true if c was closed. */
static bool metrics_conn_request(struct metrics_conn *c, const struct http1_request *r, int status)
{
    struct ev_loop *loop = c->l->base.loop;
    if (status != 0) {
        char who[64];
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        if (getpeername(c->fd, (struct sockaddr *)&peer, &peerlen) == 0)
            config_format_addr((const struct sockaddr *)&peer, who, sizeof(who));
        else
            snprintf(who, sizeof(who), "?");
        log_limited(&metrics_limit, LOG_INFO, "%s: client %s: HTTP/1.1 %d, closing",
                    c->l->base.name, who, status);
    }
    int rc = metrics_respond(c, r, status);
    /* The parser may hold pointers into r: it goes only after the response is built. */
    http1_parser_free(c->parser);
    c->parser = NULL;
    if (rc < 0) {
        metrics_conn_close(c);
        return true;
    }
    ev_io_stop(loop, &c->rio); /* nothing more is read until the response is out */
    return metrics_conn_flush(c);
}

static void on_metrics_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct metrics_conn *c = container_of(w, struct metrics_conn, rio);
    uint8_t buf[METRICS_READ_SIZE];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        metrics_conn_close(c);
        return;
    }
    if (n == 0) {
        /* The client closed: after our response, as it should; before a whole request,
         * there is nobody to answer. */
        metrics_conn_close(c);
        return;
    }
    ev_timer_again(loop, &c->idle);
    if (c->lingering)
        return; /* dropped: the one request was answered */
    size_t used = 0;
    struct http1_request r;
    int rc = http1_feed(c->parser, buf, (size_t)n, &used, &r);
    if (rc == HTTP1_MORE)
        return;
    /* Expect: 100-continue (RFC 9110 §10.1.1) is answered with the final status at
     * once: no request here has a body worth reading. */
    metrics_conn_request(c, &r, rc < 0 ? -rc : 0);
}

static void on_metrics_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    metrics_conn_flush(container_of(w, struct metrics_conn, wio));
}

static void on_metrics_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct metrics_conn *c = container_of(w, struct metrics_conn, idle);
    metrics_conn_close(c);
}

static void metrics_accept(struct metrics_listener *l, int fd)
{
    struct ev_loop *loop = l->base.loop;
    struct metrics_conn *c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->parser = http1_parser_new(METRICS_MAX_HEADER);
    if (c == NULL || c->parser == NULL) {
        log_limited(&metrics_limit, LOG_WARNING, "%s: cannot take a connection: out of memory",
                    l->base.name);
        free(c);
        close(fd);
        return;
    }
    c->l = l;
    c->fd = fd;
    ev_io_init(&c->rio, on_metrics_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_metrics_writable, fd, EV_WRITE);
    ev_init(&c->idle, on_metrics_idle);
    c->idle.repeat = METRICS_IDLE_TIMEOUT_S;
    LIST_INSERT_HEAD(&l->conns, c, entry);
    l->nconns++;
    ev_io_start(loop, &c->rio);
    ev_timer_again(loop, &c->idle);
}

static void on_metrics_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct metrics_listener *l = container_of(w, struct metrics_listener, io);
    for (int i = 0; i < METRICS_ACCEPTS_PER_WAKEUP; i++) {
        if (l->nconns >= METRICS_MAX_CONNECTIONS) {
            /* The rest wait in the backlog until one closes (metrics_conn_close). */
            log_limited(&metrics_limit, LOG_WARNING, "%s: %d connections, the most it takes",
                        l->base.name, METRICS_MAX_CONNECTIONS);
            ev_io_stop(loop, &l->io);
            return;
        }
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED)
                return;
            log_limited(&metrics_limit, LOG_WARNING, "%s: accept: %s", l->base.name, strerror(e));
            /* Out of descriptors or memory: the connection stays in the backlog and the
             * socket readable, so pause rather than spin. */
            ev_io_stop(loop, &l->io);
            ev_timer_set(&l->retry, METRICS_ACCEPT_RETRY_S, 0);
            ev_timer_start(loop, &l->retry);
            return;
        }
        metrics_accept(l, fd);
    }
}

static void on_metrics_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct metrics_listener *l = container_of(w, struct metrics_listener, retry);
    if (!l->stopped && l->nconns < METRICS_MAX_CONNECTIONS)
        ev_io_start(loop, &l->io);
}

/* Shutdown: take no new connections; close those not writing a response now (a
 * response being written closes the connection when it is out). */
static void metrics_stop(struct listener *base)
{
    struct metrics_listener *l = container_of(base, struct metrics_listener, base);
    l->stopped = true;
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    struct metrics_conn *c, *next;
    for (c = LIST_FIRST(&l->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, entry);
        if (c->out == NULL)
            metrics_conn_close(c);
    }
}

static size_t metrics_connections(const struct listener *base)
{
    return container_of(base, const struct metrics_listener, base)->nconns;
}

static void metrics_free(struct listener *base)
{
    struct metrics_listener *l = container_of(base, struct metrics_listener, base);
    l->stopped = true;
    struct metrics_conn *c;
    while ((c = LIST_FIRST(&l->conns)) != NULL)
        metrics_conn_close(c);
    ev_io_stop(base->loop, &l->io);
    ev_timer_stop(base->loop, &l->retry);
    close(l->fd);
    free(l);
}

static const struct listener_ops metrics_ops = {
    .name = "metrics",
    .stop = metrics_stop,
    .connections = metrics_connections,
    .free = metrics_free,
};

int metrics_listener_new(struct ev_loop *loop, const struct sockaddr *addr, socklen_t len,
                         metrics_view_cb *view_cb, void *ctx, struct listener **out, char *err,
                         size_t errlen)
{
    int rc;
    struct metrics_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char where[64];
    config_format_addr(addr, where, sizeof(where));
    snprintf(l->base.name, sizeof(l->base.name), "metrics %s", where);
    int fd = listener_socket(SOCK_STREAM, addr, len, l->base.name, err, errlen);
    if (fd < 0) {
        rc = fd;
        goto fail_free;
    }
    if (listen(fd, METRICS_BACKLOG) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: listen: %s", l->base.name, strerror(-rc));
        goto fail_close;
    }
    l->base.ops = &metrics_ops;
    l->base.loop = loop;
    l->fd = fd;
    l->view_cb = view_cb;
    l->ctx = ctx;
    LIST_INIT(&l->conns);
    ev_init(&l->retry, on_metrics_accept_retry);
    ev_io_init(&l->io, on_metrics_accept, fd, EV_READ);
    ev_io_start(loop, &l->io);
    *out = &l->base;
    return 0;
fail_close:
    close(fd);
fail_free:
    free(l);
    return rc;
}
