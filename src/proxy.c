/* proxy: the life of a query. See include/dnsward/proxy.h. */
#include "dnsward/proxy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/config.h"
#include "dnsward/log.h"
#include "dnsward/util.h"

enum { PROXY_UPSTREAM_QUERY_MAX = 1024 };

struct proxy {
    struct ev_loop *loop;
    const struct config *cfg;
    struct pool *pool;
    struct query_list inflight;
    size_t ninflight;
    struct proxy_stats stats;
    struct dns_upstream_opts up_opts;
    uint8_t answer[DNS_MAX_MSG]; /* one answer at a time: dnsward has one thread */
};

static struct log_limit bad_query_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit overload_limit = LOG_LIMIT_INIT(10, 1);
static struct log_limit servfail_limit = LOG_LIMIT_INIT(10, 5);

struct proxy *proxy_new(struct ev_loop *loop, const struct config *cfg, struct pool *pool)
{
    struct proxy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->cfg = cfg;
    p->pool = pool;
    TAILQ_INIT(&p->inflight);
    p->up_opts = (struct dns_upstream_opts){
        .udp_size = cfg->udp_max_size,
        .pad_block = cfg->pad_block,
        .keepalive = true,
        .ecs = cfg->ecs_len ? cfg->ecs : NULL,
        .ecs_len = cfg->ecs_len,
    };
    return p;
}

void proxy_free(struct proxy *p)
{
    if (p == NULL)
        return;
    proxy_fail_all(p);
    free(p);
}

size_t proxy_inflight(const struct proxy *p)
{
    return p->ninflight;
}

const struct proxy_stats *proxy_stats(const struct proxy *p)
{
    return &p->stats;
}

static const char *rcode_name(int rcode)
{
    switch (rcode) {
    case DNS_RCODE_FORMERR:
        return "FORMERR";
    case DNS_RCODE_SERVFAIL:
        return "SERVFAIL";
    case DNS_RCODE_NOTIMP:
        return "NOTIMP";
    case DNS_RCODE_REFUSED:
        return "REFUSED";
    case DNS_RCODE_BADVERS:
        return "BADVERS";
    default:
        return "error";
    }
}

/* Deliver msg to q's client (if it is still there) and free q. */
static void proxy_finish(struct query *q, const uint8_t *msg, int len)
{
    struct proxy *p = q->proxy;
    ev_timer_stop(p->loop, &q->deadline);
    TAILQ_REMOVE(&p->inflight, q, entry);
    p->ninflight--;
    if (q->cancelled) {
        p->stats.abandoned++;
    } else {
        /* The frontend unlinks q in its callback: freeing q without it would leave the
         * frontend a dangling pointer. dns_build_error cannot fail into p->answer. */
        if (len <= 0)
            abort();
        q->client.ops->answer(q, msg, (size_t)len);
    }
    free(q);
}

static void proxy_servfail(struct query *q)
{
    struct proxy *p = q->proxy;
    p->stats.servfail++;
    int n = dns_build_error(q->msg, &q->q, DNS_RCODE_SERVFAIL, p->cfg->udp_max_size, p->answer,
                            sizeof(p->answer));
    proxy_finish(q, p->answer, n);
}

static void on_pool_done(struct pool_request *r, int err, const uint8_t *msg, size_t len,
                         const struct dns_answer *ans)
{
    struct query *q = container_of(r, struct query, req);
    struct proxy *p = q->proxy;
    (void)len;
    if (err < 0) {
        char name[DNS_MAX_NAME * 4 + 1];
        dns_name_to_text(q->msg, q->len, DNS_HEADER_LEN, name, sizeof(name));
        log_limited(&servfail_limit, LOG_WARNING, "%s: no upstream answered (%s): SERVFAIL", name,
                    strerror(-err));
        proxy_servfail(q);
        return;
    }
    if (q->cancelled) {
        proxy_finish(q, NULL, 0);
        return;
    }
    size_t limit =
        q->client.datagram ? dns_udp_limit(&q->q, p->cfg->udp_max_size) : (size_t)DNS_MAX_MSG;
    int n = dns_answer_for_client(msg, ans, q->msg, &q->q, p->cfg->udp_max_size, limit, p->answer,
                                  sizeof(p->answer));
    if (n < 0) {
        proxy_servfail(q);
        return;
    }
    p->stats.answered++;
    if ((dns_get16(p->answer + 2) & DNS_FLAG_TC) && !(ans->flags & DNS_FLAG_TC))
        p->stats.truncated++;
    proxy_finish(q, p->answer, n);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct query *q = container_of(w, struct query, deadline);
    pool_cancel(&q->req);
    if (!q->cancelled) {
        char name[DNS_MAX_NAME * 4 + 1];
        dns_name_to_text(q->msg, q->len, DNS_HEADER_LEN, name, sizeof(name));
        log_limited(&servfail_limit, LOG_WARNING, "%s: no answer within %u ms: SERVFAIL", name,
                    q->proxy->cfg->timeout_ms);
    }
    proxy_servfail(q);
}

static int proxy_error(struct proxy *p, const uint8_t *msg, const struct dns_query *dq, int rcode,
                       uint8_t *out, size_t cap)
{
    int n = dns_build_error(msg, dq, rcode, p->cfg->udp_max_size, out, cap);
    return n > 0 ? n : 0;
}

int proxy_query(struct proxy *p, const uint8_t *msg, size_t len, const struct proxy_client *client,
                struct query **qp, uint8_t *out, size_t cap)
{
    p->stats.queries++;
    struct dns_query dq;
    int rc = dns_query_parse(msg, len, &dq);
    if (rc < 0) {
        /* Not a query at all (a response, or shorter than a header): answering could
         * start a loop between two servers, so the packet is dropped. */
        p->stats.dropped++;
        return 0;
    }
    if (rc > 0) {
        if (rc == DNS_RCODE_FORMERR)
            p->stats.formerr++;
        else if (rc == DNS_RCODE_NOTIMP)
            p->stats.notimp++;
        else
            p->stats.badvers++;
        log_limited(&bad_query_limit, LOG_INFO, "bad query of %zu bytes: %s", len, rcode_name(rc));
        return proxy_error(p, msg, &dq, rc, out, cap);
    }
    if (p->ninflight >= p->cfg->max_queries) {
        p->stats.servfail++;
        log_limited(&overload_limit, LOG_WARNING,
                    "%zu queries in flight (max-queries): answering SERVFAIL", p->ninflight);
        return proxy_error(p, msg, &dq, DNS_RCODE_SERVFAIL, out, cap);
    }
    uint8_t up[PROXY_UPSTREAM_QUERY_MAX];
    int up_len = dns_upstream_query(msg, &dq, &p->up_opts, up, sizeof(up));
    if (up_len < 0) {
        p->stats.servfail++;
        return proxy_error(p, msg, &dq, DNS_RCODE_SERVFAIL, out, cap);
    }
    /* One allocation holds the query, the client's message and the upstream's. */
    struct query *q = malloc(sizeof(*q) + len + (size_t)up_len);
    if (q == NULL) {
        p->stats.servfail++;
        return proxy_error(p, msg, &dq, DNS_RCODE_SERVFAIL, out, cap);
    }
    q->proxy = p;
    q->client = *client;
    q->q = dq;
    q->cancelled = false;
    q->len = (uint16_t)len;
    q->up_len = (uint16_t)up_len;
    q->up_msg = q->msg + len;
    memcpy(q->msg, msg, len);
    memcpy(q->up_msg, up, (size_t)up_len);
    rc = pool_submit(p->pool, &q->req, q->up_msg, q->up_len, on_pool_done);
    if (rc < 0) {
        free(q);
        p->stats.servfail++;
        log_limited(&servfail_limit, LOG_WARNING, "no upstream available: SERVFAIL");
        return proxy_error(p, msg, &dq, DNS_RCODE_SERVFAIL, out, cap);
    }
    p->stats.forwarded++;
    ev_timer_init(&q->deadline, on_deadline, p->cfg->timeout_ms / 1000.0, 0);
    ev_timer_start(p->loop, &q->deadline);
    TAILQ_INSERT_TAIL(&p->inflight, q, entry);
    p->ninflight++;
    *qp = q;
    return PROXY_PENDING;
}

void proxy_query_cancel(struct query *q)
{
    /* The upstream slot is given back at once, so that clients that send and leave
     * cannot fill the upstream connections with queries nobody waits for. */
    q->cancelled = true;
    pool_cancel(&q->req);
    proxy_finish(q, NULL, 0);
}

void proxy_fail_all(struct proxy *p)
{
    struct query *q;
    while ((q = TAILQ_FIRST(&p->inflight)) != NULL) {
        pool_cancel(&q->req);
        proxy_servfail(q);
    }
}
