/* bootstrap: resolving upstreams' host names. See include/dnsward/bootstrap.h.
 *
 * Each watched upstream has one resolution at a time, and each resolution one attempt at a
 * time: a UDP socket of its own, connect()ed to one bootstrap server, carrying two queries
 * (A and AAAA) with random IDs. An attempt ends when both are answered, when the server
 * fails (a refusal, a bad RCODE, TC=1, its timeout), or when the name turns out not to
 * exist. A failed server hands the resolution to the next, for two rounds of the list at
 * most; then the resolution has failed and is retried after a backoff. A resolution that
 * succeeds gives the upstream its addresses and is repeated when their TTL runs out.
 *
 * Nothing here grows: one socket and two queries per watch, CONFIG_MAX_UPSTREAMS watches,
 * and a read buffer on the stack. */
#include "dnsward/bootstrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsward/config.h"
#include "dnsward/dns.h"
#include "dnsward/log.h"
#include "dnsward/util.h"

enum {
    BS_QUERY_MAX = DNS_HEADER_LEN + DNS_MAX_NAME + 4 + 11, /* a query with an OPT record */
    /* The EDNS payload size we advertise (the DNS flag day 2020 value, which avoids IP
     * fragmentation), and the datagrams we read: anything longer than the buffer is
     * dropped, as a server that honours our size never sends it. */
    BS_EDNS_SIZE = 1232,
    BS_RECV_MAX = 4096,
    BS_READ_BATCH = 16, /* datagrams read per wake-up: a flood cannot hold the loop */
    BS_ROUNDS = 2,      /* times the list of servers is tried in one resolution */
    BS_NQ = 2,          /* queries per attempt: A, then AAAA */
};

static const uint16_t bs_qtypes[BS_NQ] = {DNS_TYPE_A, DNS_TYPE_AAAA};

struct bootstrap;

/* One watched upstream and its resolution. */
struct bs_watch {
    struct bootstrap *b;
    struct upstream *u;
    int fd; /* the attempt's socket; -1 between attempts */
    ev_io io;
    ev_timer timer; /* the attempt's timeout, or the wait for the next resolution */
    bool asking;    /* an attempt is in flight (the timer is its timeout) */
    uint8_t query[BS_NQ][BS_QUERY_MAX];
    size_t qlen[BS_NQ];
    bool answered[BS_NQ];
    uint8_t addr[BS_NQ][UPSTREAM_MAX_ADDRS][16];
    size_t naddr[BS_NQ];
    uint32_t ttl[BS_NQ];
    size_t server;     /* the server asked now, or first in the next resolution */
    size_t asked;      /* attempts made in this resolution */
    char why[64];      /* why the last attempt failed, for the resolution's log line */
    double backoff;    /* seconds before a failed resolution is retried */
    bool has_addrs;    /* a resolution has succeeded */
    bool first_failed; /* the first resolution failed on every server */
};

struct bootstrap {
    struct ev_loop *loop;
    const struct config *cfg;
    struct bs_watch *watch[CONFIG_MAX_UPSTREAMS];
    size_t nwatch;
};

static struct log_limit server_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit drop_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit fail_limit = LOG_LIMIT_INIT(10, 5);

/* What reading one datagram led to. */
enum bs_next {
    BS_CONTINUE, /* the attempt goes on: read on */
    BS_ENDED,    /* the attempt has ended (its socket is closed): stop reading */
};

static void bs_ask(struct bs_watch *w);

/* IDs come from OpenSSL's CSPRNG. With the random source port the kernel gives the
 * socket, they are the 32 bits an off-path attacker would have to guess to forge an
 * answer (RFC 5452 §9.2). Two queries a resolution, minutes apart: no batching needed. */
static uint16_t bs_random_id(void)
{
    uint8_t id[2];
    if (RAND_bytes(id, sizeof(id)) != 1)
        abort(); /* a CSPRNG that fails is a broken invariant, not a peer's fault */
    return dns_get16(id);
}

static const char *bs_server_text(const struct bs_watch *w, char *out, size_t cap)
{
    const struct config_listen *srv = &w->b->cfg->bootstrap[w->server];
    config_format_addr((const struct sockaddr *)&srv->addr, out, cap);
    return out;
}

/* Close the attempt's socket and stop its timeout. No callback. */
static void bs_attempt_close(struct bs_watch *w)
{
    struct ev_loop *loop = w->b->loop;
    if (w->fd >= 0) {
        ev_io_stop(loop, &w->io);
        close(w->fd);
        w->fd = -1;
    }
    ev_timer_stop(loop, &w->timer);
    w->asking = false;
}

/* Wait after seconds, then resolve again. */
static void bs_schedule(struct bs_watch *w, double after)
{
    ev_timer_set(&w->timer, after, 0);
    ev_timer_start(w->b->loop, &w->timer);
}

/* The TTL the addresses are kept for: their smallest, within BOOTSTRAP_MIN_TTL (a server
 * that says 0 must not make us ask it in a loop) and BOOTSTRAP_MAX_TTL (an upstream that
 * moves is followed within a day). */
static uint32_t bs_clamp_ttl(uint32_t ttl)
{
    if (ttl < BOOTSTRAP_MIN_TTL)
        return BOOTSTRAP_MIN_TTL;
    if (ttl > BOOTSTRAP_MAX_TTL)
        return BOOTSTRAP_MAX_TTL;
    return ttl;
}

/* The resolution failed: the upstream keeps the addresses it has, and we retry later,
 * waiting twice as long each time up to BOOTSTRAP_RETRY_MAX. */
static void bs_resolution_failed(struct bs_watch *w, const char *why)
{
    bs_attempt_close(w);
    if (!w->has_addrs)
        w->first_failed = true;
    log_limited(&fail_limit, LOG_WARNING,
                "upstream %s: could not resolve %s (%s); retrying in %.0f s", w->u->spec->url,
                w->u->spec->host, why, w->backoff);
    bs_schedule(w, w->backoff);
    w->backoff *= 2;
    if (w->backoff > BOOTSTRAP_RETRY_MAX)
        w->backoff = BOOTSTRAP_RETRY_MAX;
}

/* The server asked did not give a usable answer: ask the next. */
static void bs_server_failed(struct bs_watch *w, const char *why)
{
    char where[64];
    log_limited(&server_limit, LOG_WARNING, "upstream %s: bootstrap server %s: %s", w->u->spec->url,
                bs_server_text(w, where, sizeof(where)), why);
    bs_attempt_close(w);
    snprintf(w->why, sizeof(w->why), "%s", why);
    w->server = (w->server + 1) % w->b->cfg->nbootstrap;
    bs_ask(w);
}

/* Give the upstream what the attempt found: the A addresses, then the AAAA ones, with the
 * upstream's port; and resolve again when the smallest TTL of those kept runs out. */
static void bs_resolved(struct bs_watch *w)
{
    struct sockaddr_storage addrs[UPSTREAM_MAX_ADDRS];
    socklen_t lens[UPSTREAM_MAX_ADDRS];
    size_t n = 0;
    uint32_t ttl = UINT32_MAX;
    uint16_t port = htons(w->u->spec->port);
    for (size_t t = 0; t < BS_NQ; t++) {
        if (w->naddr[t] > 0 && n < UPSTREAM_MAX_ADDRS && w->ttl[t] < ttl)
            ttl = w->ttl[t];
        for (size_t i = 0; i < w->naddr[t] && n < UPSTREAM_MAX_ADDRS; i++, n++) {
            memset(&addrs[n], 0, sizeof(addrs[n]));
            if (bs_qtypes[t] == DNS_TYPE_A) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&addrs[n];
                sin->sin_family = AF_INET;
                sin->sin_port = port;
                memcpy(&sin->sin_addr, w->addr[t][i], 4);
                lens[n] = sizeof(*sin);
            } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addrs[n];
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = port;
                memcpy(&sin6->sin6_addr, w->addr[t][i], 16);
                lens[n] = sizeof(*sin6);
            }
        }
    }
    bs_attempt_close(w);
    upstream_set_addrs(w->u, addrs, lens, n);
    w->has_addrs = true;
    w->backoff = 1;
    ttl = bs_clamp_ttl(ttl);
    log_notice("upstream %s: %s resolved to %zu addresses (ttl %u s)", w->u->spec->url,
               w->u->spec->host, n, ttl);
    bs_schedule(w, ttl);
}

/* Both queries are answered, or the attempt's time is up with one of them answered: use
 * what came if it holds an address. Waiting for the other at the timeout would lose a
 * good answer to a server (or a middlebox) that drops AAAA queries, which still exist. */
static void bs_attempt_done(struct bs_watch *w)
{
    if (w->naddr[0] + w->naddr[1] == 0) {
        bs_server_failed(w, "no address in its answers");
        return;
    }
    bs_resolved(w);
}

/* One datagram from the server the socket is connected to (the kernel drops any other
 * source, so the address is not checked again). Only an answer that parses, carries the
 * ID of a query still waiting and asks its question is taken. */
static enum bs_next bs_handle(struct bs_watch *w, const uint8_t *msg, size_t len)
{
    const char *url = w->u->spec->url;
    struct dns_answer ans;
    if (dns_answer_parse(msg, len, &ans) < 0) {
        log_limited(&drop_limit, LOG_WARNING,
                    "upstream %s: dropped a malformed answer from a bootstrap server", url);
        return BS_CONTINUE;
    }
    size_t t = 0;
    while (t < BS_NQ && (w->answered[t] || ans.id != dns_get16(w->query[t])))
        t++;
    if (t == BS_NQ) {
        log_limited(&drop_limit, LOG_WARNING,
                    "upstream %s: dropped a bootstrap answer with an ID no query waits for (%u)",
                    url, ans.id);
        return BS_CONTINUE;
    }
    /* The ID is that of a waiting query, but the question is not its own: never taken
     * (DESIGN.md), and the query goes on waiting for its real answer. */
    if (!dns_question_equal(w->query[t], w->qlen[t], msg, len)) {
        log_limited(&drop_limit, LOG_WARNING,
                    "upstream %s: dropped a bootstrap answer to a question that was not asked",
                    url);
        return BS_CONTINUE;
    }
    /* TC=1: the server could not fit the answer in our 1232 bytes. We do not retry over
     * TCP: a name with more addresses than that holds has far more than the
     * UPSTREAM_MAX_ADDRS we keep, and a server that truncates a small answer (as some do
     * under a spoofing attack) is better replaced by the next one. */
    if (ans.flags & DNS_FLAG_TC) {
        bs_server_failed(w, "truncated answer");
        return BS_ENDED;
    }
    if (ans.rcode == DNS_RCODE_NXDOMAIN) {
        /* The name does not exist: another server would only say so again. */
        bs_resolution_failed(w, "no such name");
        return BS_ENDED;
    }
    if (ans.rcode != DNS_RCODE_NOERROR) {
        bs_server_failed(w, ans.rcode == DNS_RCODE_SERVFAIL  ? "SERVFAIL"
                            : ans.rcode == DNS_RCODE_REFUSED ? "REFUSED"
                                                             : "error RCODE");
        return BS_ENDED;
    }
    if (dns_answer_addrs(msg, len, bs_qtypes[t], w->addr[t], UPSTREAM_MAX_ADDRS, &w->naddr[t],
                         &w->ttl[t]) < 0) {
        bs_server_failed(w, "malformed address record");
        return BS_ENDED;
    }
    w->answered[t] = true;
    if (!w->answered[0] || !w->answered[1])
        return BS_CONTINUE;
    bs_attempt_done(w);
    return BS_ENDED;
}

static void on_bs_read(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct bs_watch *w = container_of(io, struct bs_watch, io);
    uint8_t buf[BS_RECV_MAX];
    for (int i = 0; i < BS_READ_BATCH; i++) {
        if (w->fd < 0)
            return;
        /* MSG_TRUNC: the datagram's real length, to tell a cut one from a whole one. */
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            /* On a connected UDP socket an ICMP error (port unreachable: nothing listens
             * there) comes back as ECONNREFUSED: no need to wait for the timeout. */
            bs_server_failed(w, strerror(errno));
            return;
        }
        if ((size_t)n > sizeof(buf)) {
            log_limited(&drop_limit, LOG_WARNING,
                        "upstream %s: dropped a %zd-byte answer from a bootstrap server",
                        w->u->spec->url, n);
            continue;
        }
        if (bs_handle(w, buf, (size_t)n) == BS_ENDED)
            return;
    }
}

/* Open the socket of an attempt to the current server and send both queries. Returns 0,
 * or -errno (nothing left open). */
static int bs_attempt_open(struct bs_watch *w)
{
    struct bootstrap *b = w->b;
    const struct config_listen *srv = &b->cfg->bootstrap[w->server];
    for (size_t t = 0; t < BS_NQ; t++) {
        uint16_t id = bs_random_id();
        /* Distinct IDs, so that an answer to one query can never be taken for the other. */
        while (t > 0 && id == dns_get16(w->query[0]))
            id = bs_random_id();
        int n = dns_build_query(w->u->spec->host, bs_qtypes[t], id, BS_EDNS_SIZE, w->query[t],
                                sizeof(w->query[t]));
        if (n < 0)
            return n; /* bootstrap_watch has checked the name */
        w->qlen[t] = (size_t)n;
        w->answered[t] = false;
        w->naddr[t] = 0;
        w->ttl[t] = UINT32_MAX;
    }
    int fd = socket(srv->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* connect(): the kernel then delivers only datagrams from the server's address and
     * port, which is the first check an answer must pass. */
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)&srv->addr, srv->addrlen) < 0)
        rc = -errno;
    for (size_t t = 0; t < BS_NQ && rc == 0; t++) {
        ssize_t sent = send(fd, w->query[t], w->qlen[t], 0);
        if (sent < 0)
            rc = -errno;
        else if ((size_t)sent != w->qlen[t])
            rc = -EMSGSIZE;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    w->fd = fd;
    ev_io_set(&w->io, fd, EV_READ);
    ev_io_start(b->loop, &w->io);
    return 0;
}

/* Ask the current server, or the next that can be asked, while the resolution has
 * attempts left; else it has failed. */
static void bs_ask(struct bs_watch *w)
{
    size_t nservers = w->b->cfg->nbootstrap;
    while (w->asked < BS_ROUNDS * nservers) {
        w->asked++;
        int rc = bs_attempt_open(w);
        if (rc == 0) {
            w->asking = true;
            ev_timer_set(&w->timer, BOOTSTRAP_TIMEOUT_MS / 1000.0, 0);
            ev_timer_start(w->b->loop, &w->timer);
            return;
        }
        char where[64];
        snprintf(w->why, sizeof(w->why), "%s", strerror(-rc));
        log_limited(&server_limit, LOG_WARNING, "upstream %s: bootstrap server %s: %s",
                    w->u->spec->url, bs_server_text(w, where, sizeof(where)), w->why);
        w->server = (w->server + 1) % nservers;
    }
    bs_resolution_failed(w, nservers ? w->why : "no bootstrap server");
}

static void on_bs_timer(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct bs_watch *w = container_of(timer, struct bs_watch, timer);
    if (!w->asking) {
        /* Time to resolve (again). The next resolution starts with the server that
         * answered the last, or the one after the last that failed. */
        w->asked = 0;
        snprintf(w->why, sizeof(w->why), "no answer");
        bs_ask(w);
        return;
    }
    if (w->answered[0] || w->answered[1]) {
        bs_attempt_done(w);
        return;
    }
    bs_server_failed(w, "no answer");
}

struct bootstrap *bootstrap_new(struct ev_loop *loop, const struct config *cfg)
{
    struct bootstrap *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->loop = loop;
    b->cfg = cfg;
    return b;
}

int bootstrap_watch(struct bootstrap *b, struct upstream *u)
{
    if (u->spec->addrlen > 0)
        return -EINVAL;
    /* A host name that cannot be asked for is refused now rather than at every retry. */
    uint8_t probe[BS_QUERY_MAX];
    if (dns_build_query(u->spec->host, DNS_TYPE_A, 0, BS_EDNS_SIZE, probe, sizeof(probe)) < 0)
        return -EINVAL;
    if (b->nwatch >= CONFIG_MAX_UPSTREAMS)
        return -ENOSPC;
    struct bs_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->b = b;
    w->u = u;
    w->fd = -1;
    w->backoff = 1;
    ev_init(&w->io, on_bs_read);
    /* The first resolution starts from the loop, so nothing calls back before we return. */
    ev_timer_init(&w->timer, on_bs_timer, 0, 0);
    ev_timer_start(b->loop, &w->timer);
    b->watch[b->nwatch++] = w;
    return 0;
}

bool bootstrap_settled(const struct bootstrap *b)
{
    for (size_t i = 0; i < b->nwatch; i++)
        if (!b->watch[i]->has_addrs && !b->watch[i]->first_failed)
            return false;
    return true;
}

void bootstrap_free(struct bootstrap *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nwatch; i++) {
        bs_attempt_close(b->watch[i]);
        free(b->watch[i]);
    }
    free(b);
}
