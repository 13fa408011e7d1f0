/* udp: the plain DNS frontend over UDP.
 *
 * Datagrams are read and written in batches (recvmmsg/sendmmsg): answers the core gives
 * at once (cache hits, error answers) leave in one sendmmsg per batch read.
 * Answers that come back from an upstream are collected, and leave in one sendmmsg
 * before the event loop next waits (an ev_prepare watcher) or when a batch is full: one
 * TLS read from an upstream often completes dozens of queries. A datagram answer that
 * does not fit what the client may receive has been truncated by the core.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/proxy.h"
#include "dnsward/util.h"

enum {
    UDP_BATCH = 64,
    UDP_RX_MAX = 4096,     /* a query is far smaller; a longer datagram is not a query */
    UDP_ANSWER_MAX = 4096, /* the largest udp-max-size */
    UDP_BATCHES_PER_WAKEUP = 8,
    UDP_SOCKET_BUFFER = 4 * 1024 * 1024,
};

struct udp_listener {
    struct listener base;
    ev_io io;
    int fd;
    uint64_t send_errors;
    struct mmsghdr rx[UDP_BATCH];
    struct iovec rx_iov[UDP_BATCH];
    struct sockaddr_storage rx_peer[UDP_BATCH];
    struct mmsghdr tx[UDP_BATCH];
    struct iovec tx_iov[UDP_BATCH];
    uint8_t rx_buf[UDP_BATCH][UDP_RX_MAX];
    uint8_t tx_buf[UDP_BATCH][UDP_ANSWER_MAX];
    /* upstream answers waiting for the next flush */
    ev_prepare flush;
    unsigned nout;
    struct mmsghdr out[UDP_BATCH];
    struct iovec out_iov[UDP_BATCH];
    struct sockaddr_storage out_peer[UDP_BATCH];
    uint8_t out_buf[UDP_BATCH][UDP_ANSWER_MAX];
};

static struct log_limit send_limit = LOG_LIMIT_INIT(10, 3);

static void udp_send_batch(struct udp_listener *l, struct mmsghdr *msgs, unsigned n)
{
    /* A full socket buffer drops answers, as the network could have: the clients retry.
     * Nothing else is worth more than a log line. */
    unsigned sent = 0;
    while (sent < n) {
        int rc = sendmmsg(l->fd, msgs + sent, n - sent, 0);
        if (rc <= 0) {
            l->send_errors += n - sent;
            log_limited(&send_limit, LOG_WARNING, "%s: send: %s", l->base.name, strerror(errno));
            return;
        }
        sent += (unsigned)rc;
    }
}

static void udp_flush(struct udp_listener *l)
{
    if (l->nout > 0)
        udp_send_batch(l, l->out, l->nout);
    l->nout = 0;
    ev_prepare_stop(l->base.loop, &l->flush);
}

static void on_udp_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    udp_flush(container_of(w, struct udp_listener, flush));
}

static void on_udp_answer(struct query *q, const uint8_t *msg, size_t len)
{
    struct udp_listener *l = q->client.conn;
    if (len > UDP_ANSWER_MAX)
        return; /* cannot happen: the core truncates to at most udp-max-size */
    unsigned i = l->nout++;
    memcpy(l->out_buf[i], msg, len);
    memcpy(&l->out_peer[i], &q->client.peer, q->client.peerlen);
    l->out_iov[i] = (struct iovec){.iov_base = l->out_buf[i], .iov_len = len};
    l->out[i].msg_hdr = (struct msghdr){.msg_name = &l->out_peer[i],
                                        .msg_namelen = q->client.peerlen,
                                        .msg_iov = &l->out_iov[i],
                                        .msg_iovlen = 1};
    if (l->nout == UDP_BATCH)
        udp_flush(l);
    else if (l->nout == 1)
        ev_prepare_start(l->base.loop, &l->flush);
}

static const struct proxy_client_ops udp_client_ops = {
    .answer = on_udp_answer,
};

static void on_udp_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct udp_listener *l = container_of(w, struct udp_listener, io);
    struct proxy_client client = {
        .ops = &udp_client_ops, .conn = l, .datagram = true, .transport = PROXY_UDP};
    for (int batch = 0; batch < UDP_BATCHES_PER_WAKEUP; batch++) {
        for (int i = 0; i < UDP_BATCH; i++) {
            l->rx_iov[i] = (struct iovec){.iov_base = l->rx_buf[i], .iov_len = UDP_RX_MAX};
            l->rx[i].msg_hdr = (struct msghdr){.msg_name = &l->rx_peer[i],
                                               .msg_namelen = sizeof(l->rx_peer[i]),
                                               .msg_iov = &l->rx_iov[i],
                                               .msg_iovlen = 1};
        }
        int n = recvmmsg(l->fd, l->rx, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return; /* EAGAIN: drained; another error: nothing to do but wait */
        unsigned ntx = 0;
        for (int i = 0; i < n; i++) {
            if (l->rx[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue; /* longer than any query: not DNS worth answering */
            memcpy(&client.peer, &l->rx_peer[i], l->rx[i].msg_hdr.msg_namelen);
            client.peerlen = l->rx[i].msg_hdr.msg_namelen;
            struct query *q;
            l->base.queries++;
            int rc = proxy_query(l->base.proxy, l->rx_buf[i], l->rx[i].msg_len, &client, &q,
                                 l->tx_buf[ntx], UDP_ANSWER_MAX);
            if (rc <= 0)
                continue;
            l->tx_iov[ntx] = (struct iovec){.iov_base = l->tx_buf[ntx], .iov_len = (size_t)rc};
            l->tx[ntx].msg_hdr = (struct msghdr){.msg_name = &l->rx_peer[i],
                                                 .msg_namelen = l->rx[i].msg_hdr.msg_namelen,
                                                 .msg_iov = &l->tx_iov[ntx],
                                                 .msg_iovlen = 1};
            ntx++;
        }
        if (ntx > 0 && sendmmsg(l->fd, l->tx, ntx, 0) < 0) {
            l->send_errors++;
            log_limited(&send_limit, LOG_WARNING, "%s: send: %s", l->base.name, strerror(errno));
        }
        if (n < UDP_BATCH)
            return;
    }
}

static void udp_stop(struct listener *base)
{
    struct udp_listener *l = container_of(base, struct udp_listener, base);
    ev_io_stop(base->loop, &l->io);
}

static size_t udp_connections(const struct listener *base)
{
    (void)base;
    return 0;
}

static void udp_free(struct listener *base)
{
    struct udp_listener *l = container_of(base, struct udp_listener, base);
    udp_flush(l);
    ev_io_stop(base->loop, &l->io);
    close(l->fd);
    free(l);
}

static const struct listener_ops udp_ops = {
    .name = "udp",
    .stop = udp_stop,
    .connections = udp_connections,
    .free = udp_free,
};

int udp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen)
{
    struct udp_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char where[64];
    config_format_addr(addr, where, sizeof(where));
    snprintf(l->base.name, sizeof(l->base.name), "udp %s", where);
    int fd = listener_socket(SOCK_DGRAM, addr, len, l->base.name, err, errlen);
    if (fd < 0) {
        free(l);
        return fd;
    }
    /* Bursts of queries (a browser opening a page, a benchmark) must not be dropped by a
     * small default buffer; the kernel caps these at its own limits. */
    int size = UDP_SOCKET_BUFFER;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    l->fd = fd;
    l->base.ops = &udp_ops;
    l->base.loop = loop;
    l->base.proxy = p;
    l->base.cfg = cfg;
    ev_prepare_init(&l->flush, on_udp_flush);
    ev_io_init(&l->io, on_udp_readable, fd, EV_READ);
    ev_io_start(loop, &l->io);
    *out = &l->base;
    return 0;
}
