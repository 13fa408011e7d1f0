/* proxy: the life of a query. See include/dnsward/proxy.h.
 *
 * A flight is one query on its way upstream, with the client queries waiting for it.
 * Flights are found by cache key in a small hash table, so that identical queries
 * coalesce, and are all on one list for shutdown. A flight has one timer: first the
 * client timer of serve-stale (stale-client-timeout), then its deadline (timeout).
 *
 * Answers reach clients through callbacks that may re-enter the core (a TCP client's
 * callback reads its next query, or closes and cancels its other queries). A flight
 * that is delivering its final outcome is marked done: no query joins it, a cancel
 * does not free it, and its deliverer frees it when the last waiter is answered.
 */
#include "dnsward/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnsward/acl.h"
#include "dnsward/config.h"
#include "dnsward/log.h"
#include "dnsward/querylog.h"
#include "dnsward/util.h"

enum {
    PROXY_UPSTREAM_QUERY_MAX = 1024,
    /* Queries that may wait on one flight; more start a flight of their own. */
    PROXY_MAX_WAITERS = 1024,
    /* RFC 8767 §4's failure recheck timer: after a failed refresh, a stale entry is
     * answered at once, without a new refresh, for this many seconds. Shorter than the
     * 30 s the RFC suggests: the pool's own backoff already spares a failing upstream,
     * and this only spares clients the client timer's wait, so a recovered upstream is
     * asked again soon. */
    PROXY_FAILURE_RECHECK = 5,
};

struct flight {
    struct proxy *proxy;
    LIST_ENTRY(flight) bucket_entry;
    TAILQ_ENTRY(flight) entry;
    struct query_list waiters;
    unsigned nwaiters;
    bool background; /* goes on without waiters: a prefetch, or a refresh after stale answers */
    bool stale_due;  /* the client timer has fired */
    bool done;       /* delivering its final outcome */
    struct cache_key key;
    struct pool_request req;
    ev_timer timer;
    struct dns_query q; /* offsets into msg */
    uint16_t len;
    uint16_t up_len;
    uint8_t *up_msg; /* the query as sent upstream (in the same allocation) */
    uint8_t msg[];   /* the query that started the flight */
};
LIST_HEAD(flight_bucket, flight);
TAILQ_HEAD(flight_list, flight);

struct proxy {
    struct ev_loop *loop;
    const struct config *cfg;
    struct pool *pool;
    struct cache *cache;
    struct flight_list flights;
    struct flight_bucket *buckets;
    size_t nbuckets; /* a power of two */
    size_t nflights;
    size_t nwaiting; /* client queries waiting on flights */
    struct proxy_stats stats;
    struct querylog *qlog; /* borrowed; NULL: no query log */
    struct dns_upstream_opts up_opts;
    uint8_t answer[DNS_MAX_MSG]; /* one answer at a time: dnsward has one thread */
};

static struct log_limit bad_query_limit = LOG_LIMIT_INIT(10, 5);
static struct log_limit overload_limit = LOG_LIMIT_INIT(10, 1);
static struct log_limit servfail_limit = LOG_LIMIT_INIT(10, 5);
/* Per client: two lines, then one a minute; all clients together one line every 2 s after
 * a burst of ten, so that a flood of spoofed sources cannot fill the log either. */
static struct log_limit_keyed refused_limit = LOG_LIMIT_KEYED_INIT(60, 2, 2, 10);

/* What an immediate answer was, for the query log. */
struct proxy_immediate {
    const char *source; /* "cache", "stale", "local" */
    int rcode;          /* of an answer the core made itself; -1: the answer's header says */
};

/* Whole seconds of a monotonic clock, for the cache: wall-clock steps must not age or
 * rejuvenate entries. The coarse clock is read without a system call. */
static uint32_t proxy_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

static void proxy_cache_params(const struct config *cfg, struct cache_params *cp)
{
    *cp = (struct cache_params){
        .size = cfg->cache_size,
        .min_ttl = cfg->min_ttl,
        .max_ttl = cfg->max_ttl,
        .max_negative_ttl = cfg->max_negative_ttl,
        .stale_max_age = cfg->serve_stale ? cfg->stale_max_age : 0,
    };
}

const char *proxy_transport_name(enum proxy_transport t)
{
    static const char *const names[PROXY_TRANSPORTS] = {
        [PROXY_UDP] = "udp", [PROXY_TCP] = "tcp", [PROXY_DOT] = "dot", [PROXY_DOH] = "doh"};
    return (unsigned)t < PROXY_TRANSPORTS ? names[t] : "?";
}

static void proxy_upstream_opts(struct proxy *p)
{
    const struct config *cfg = p->cfg;
    p->up_opts = (struct dns_upstream_opts){
        .udp_size = cfg->udp_max_size,
        .pad_block = cfg->pad_block,
        .keepalive = true,
        .ecs = cfg->ecs_len ? cfg->ecs : NULL,
        .ecs_len = cfg->ecs_len,
    };
}

struct proxy *proxy_new(struct ev_loop *loop, const struct config *cfg, struct pool *pool)
{
    struct proxy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->cfg = cfg;
    p->pool = pool;
    TAILQ_INIT(&p->flights);
    struct cache_params cp;
    proxy_cache_params(cfg, &cp);
    p->cache = cache_new(&cp);
    /* Chains of two flights on average when every query in flight has its own. */
    p->nbuckets = 64;
    while (p->nbuckets * 2 < cfg->max_queries && p->nbuckets < 65536)
        p->nbuckets *= 2;
    p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
    if (p->cache == NULL || p->buckets == NULL) {
        cache_free(p->cache);
        free(p->buckets);
        free(p);
        return NULL;
    }
    proxy_upstream_opts(p);
    return p;
}

void proxy_reconfigure(struct proxy *p, const struct config *cfg, struct pool *pool)
{
    p->cfg = cfg;
    p->pool = pool;
    proxy_upstream_opts(p);
    struct cache_params cp;
    proxy_cache_params(cfg, &cp);
    cache_set_params(p->cache, &cp);
}

void proxy_set_querylog(struct proxy *p, struct querylog *ql)
{
    p->qlog = ql;
}

void proxy_free(struct proxy *p)
{
    if (p == NULL)
        return;
    proxy_fail_all(p);
    cache_free(p->cache);
    free(p->buckets);
    free(p);
}

size_t proxy_inflight(const struct proxy *p)
{
    size_t n = p->nwaiting;
    const struct flight *f;
    TAILQ_FOREACH(f, &p->flights, entry)
        if (f->nwaiters == 0)
            n++;
    return n;
}

const struct proxy_stats *proxy_stats(const struct proxy *p)
{
    return &p->stats;
}

const struct cache *proxy_cache(const struct proxy *p)
{
    return p->cache;
}

void proxy_log_stats(const struct proxy *p, int level)
{
    const struct proxy_stats *s = &p->stats;
    const struct cache_stats *cs = cache_stats(p->cache);
    log_msg(level,
            "stats: queries=%llu hits=%llu misses=%llu stale=%llu prefetches=%llu "
            "coalesced=%llu forwarded=%llu answered=%llu servfail=%llu refused=%llu entries=%llu "
            "bytes=%llu evictions=%llu",
            (unsigned long long)s->queries, (unsigned long long)cs->hits,
            (unsigned long long)cs->misses, (unsigned long long)cs->stale,
            (unsigned long long)s->prefetched, (unsigned long long)s->coalesced,
            (unsigned long long)s->forwarded, (unsigned long long)s->answered,
            (unsigned long long)s->servfail, (unsigned long long)s->refused,
            (unsigned long long)cs->entries, (unsigned long long)cs->bytes,
            (unsigned long long)cs->evictions);
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

/* The largest answer a client may receive. */
static size_t proxy_limit(const struct proxy *p, const struct proxy_client *c,
                          const struct dns_query *dq)
{
    return c->datagram ? dns_udp_limit(dq, p->cfg->udp_max_size) : (size_t)DNS_MAX_MSG;
}

/* RFC 8467 §4.1: over an encrypted transport, the answer to a query that carried a
 * Padding option is padded to a multiple of 468 bytes (or to the most the client may
 * receive, when the next multiple would be more; see dns_pad_answer). answer holds len
 * bytes in a buffer of cap. Returns the length to send: the padded one, or len as it was
 * when there is nothing to pad (no OPT record in the answer, or no room at all). Applied
 * to every answer a client gets, from the cache, an upstream, serve-stale or an error. */
static int proxy_pad(const struct proxy *p, const struct proxy_client *c,
                     const struct dns_query *dq, uint8_t *answer, int len, size_t cap)
{
    if (len <= 0 || !c->encrypted || !dq->padding)
        return len;
    size_t limit = proxy_limit(p, c, dq);
    int n = dns_pad_answer(answer, (size_t)len, limit < cap ? limit : cap, DNS_PAD_RESPONSE);
    return n > 0 ? n : len;
}

/* May the client ask? Its address must be in the allow list; a client whose address the
 * frontend did not give (peerlen 0, or too short for its family) is denied, so that a
 * frontend that forgets it fails closed. */
static bool proxy_allowed(const struct proxy *p, const struct proxy_client *c)
{
    const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
    if (c->peerlen < sizeof(sa_family_t))
        return false;
    if (sa->sa_family == AF_INET && c->peerlen < sizeof(struct sockaddr_in))
        return false;
    if (sa->sa_family == AF_INET6 && c->peerlen < sizeof(struct sockaddr_in6))
        return false;
    return acl_match(&p->cfg->allow, sa);
}

/* FNV-1a over n bytes, from h: the key of a client's address for the keyed limiter. */
static uint64_t proxy_hash(uint64_t h, const void *data, size_t n)
{
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* Log a denied client, rate-limited per address (its port aside: a client's port changes
 * with each query), so that one client denied again and again cannot hide the others.
 * At the default level nothing is formatted or hashed, as a flood of denied queries must
 * cost little. */
static void proxy_log_refused(const struct proxy_client *c)
{
    if (log_get_level() < LOG_INFO)
        return;
    char text[INET6_ADDRSTRLEN] = "an unknown address";
    uint64_t key = 0xcbf29ce484222325ULL; /* FNV's offset basis: the unknown address */
    const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
    if (c->peerlen >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)sa)->sin_addr;
        key = proxy_hash(key, a, sizeof(*a));
        inet_ntop(AF_INET, a, text, sizeof(text));
    } else if (c->peerlen >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        key = proxy_hash(key ^ 6, a, sizeof(*a));
        inet_ntop(AF_INET6, a, text, sizeof(text));
    }
    log_limited_key(&refused_limit, key, LOG_INFO, "query from %s refused: not in allow", text);
}

/* One line of the query log for the answer to client c's query (msg, len; its parse *dq):
 * rcode, from source (and upstream, its URL, or NULL), for a query that arrived at
 * ev_now() arrived. Called only with a log attached. */
static void proxy_log_answer(struct proxy *p, const struct proxy_client *c, const uint8_t *msg,
                             size_t len, const struct dns_query *dq, int rcode, const char *source,
                             const char *upstream, double arrived)
{
    double now = ev_now(p->loop);
    struct querylog_entry e = {
        .time = now,
        .client = (const struct sockaddr *)&c->peer,
        .clientlen = c->peerlen,
        .transport = proxy_transport_name(c->transport),
        .query = msg,
        .query_len = len,
        .q = dq,
        .rcode = rcode,
        .source = source,
        .upstream = upstream,
        .latency_ms = (now - arrived) * 1000.0,
    };
    querylog_write(p->qlog, &e);
}

static void flight_free(struct flight *f)
{
    struct proxy *p = f->proxy;
    ev_timer_stop(p->loop, &f->timer);
    LIST_REMOVE(f, bucket_entry);
    TAILQ_REMOVE(&p->flights, f, entry);
    p->nflights--;
    free(f);
}

/* Unlink q from its flight, give it the answer of len bytes in p->answer (padded for its
 * client first, if it asked) and free it. source and upstream (a URL, or NULL) say where
 * the answer came from, for the query log. */
static void query_answer(struct query *q, int len, const char *source, const char *upstream)
{
    struct flight *f = q->flight;
    struct proxy *p = f->proxy;
    TAILQ_REMOVE(&f->waiters, q, entry);
    f->nwaiters--;
    p->nwaiting--;
    /* The frontend unlinks q in its callback: freeing q without it would leave the
     * frontend a dangling pointer. Every answer written here fits p->answer. */
    if (len <= 0)
        abort();
    len = proxy_pad(p, &q->client, &q->q, p->answer, len, sizeof(p->answer));
    p->stats.rcodes[p->answer[3] & 0xf]++;
    /* Logged before the callback, which may re-enter the core and reuse p->answer. */
    if (p->qlog != NULL)
        proxy_log_answer(p, &q->client, q->msg, q->len, &q->q, p->answer[3] & 0xf, source, upstream,
                         q->arrived);
    q->client.ops->answer(q, p->answer, (size_t)len);
    free(q);
}

static void query_servfail(struct query *q)
{
    struct proxy *p = q->flight->proxy;
    p->stats.servfail++;
    int n = dns_build_error(q->msg, &q->q, DNS_RCODE_SERVFAIL, p->cfg->udp_max_size, p->answer,
                            sizeof(p->answer));
    query_answer(q, n, "local", NULL);
}

/* Answer q from the cache entry of its flight's key, if there is one. Returns false if
 * there is none. upstream is the URL of the upstream whose answer has just made the entry
 * (the answer's source is then that upstream), or NULL (the cache, or stale). */
static bool query_answer_cached(struct query *q, uint32_t now, const char *upstream)
{
    struct flight *f = q->flight;
    struct proxy *p = f->proxy;
    /* Looked up again for each waiter: an entry pointer does not outlive a callback. */
    struct cache_entry *e = cache_peek(p->cache, &f->key);
    if (e == NULL)
        return false;
    bool fresh = cache_entry_ttl(e, now) > 0;
    int n = cache_answer(p->cache, e, q->msg, &q->q, now, proxy_limit(p, &q->client, &q->q),
                         p->answer, sizeof(p->answer));
    if (n < 0)
        return false;
    if (fresh)
        p->stats.answered++;
    query_answer(q, n, upstream != NULL ? "upstream" : fresh ? "cache" : "stale", upstream);
    return true;
}

static void flight_log_failure(const struct flight *f, const char *why)
{
    if (f->nwaiters == 0)
        return;
    char name[DNS_MAX_NAME * 4 + 1];
    dns_name_to_text(f->msg, f->len, DNS_HEADER_LEN, name, sizeof(name));
    log_limited(&servfail_limit, LOG_WARNING, "%s: %s", name, why);
}

/* The flight failed (no upstream answered, or by its deadline): its waiters get the stale
 * entry if serve-stale has one, else SERVFAIL. The flight is freed. */
static void flight_fail(struct flight *f, const char *why)
{
    struct proxy *p = f->proxy;
    uint32_t now = proxy_now();
    f->done = true;
    struct cache_entry *e = p->cfg->serve_stale ? cache_peek(p->cache, &f->key) : NULL;
    if (e != NULL && cache_entry_ttl(e, now) == 0)
        cache_entry_set_recheck(e, now + PROXY_FAILURE_RECHECK);
    if (e == NULL)
        flight_log_failure(f, why);
    struct query *q;
    while ((q = TAILQ_FIRST(&f->waiters)) != NULL)
        if (!p->cfg->serve_stale || !query_answer_cached(q, now, NULL))
            query_servfail(q);
    flight_free(f);
}

static void on_pool_done(struct pool_request *r, int err, const uint8_t *msg, size_t len,
                         const struct dns_answer *ans)
{
    struct flight *f = container_of(r, struct flight, req);
    struct proxy *p = f->proxy;
    (void)len;
    if (err < 0) {
        flight_fail(f, err == -ETIMEDOUT ? "no upstream answered in time: SERVFAIL"
                                         : "no upstream answered: SERVFAIL");
        return;
    }
    uint32_t now = proxy_now();
    /* RFC 8767 §5: an upstream's SERVFAIL is a failure to refresh like any other, where
     * a stale answer is there to give instead. */
    if (ans->rcode == DNS_RCODE_SERVFAIL && p->cfg->serve_stale &&
        cache_peek(p->cache, &f->key) != NULL) {
        flight_fail(f, "upstream answered SERVFAIL");
        return;
    }
    /* The cache keeps the answer as the flight's own client would receive it, whole. */
    int n = dns_answer_for_client(msg, ans, f->msg, &f->q, p->cfg->udp_max_size, DNS_MAX_MSG,
                                  p->answer, sizeof(p->answer));
    bool cached = n > 0 && cache_insert(p->cache, &f->key, p->answer, (size_t)n, now) == 0;
    /* The pool names the upstream that answered; its URL is read now, while it exists
     * (a reload may free it once the flight is done). */
    const char *url = r->answered_by != NULL ? r->answered_by->spec->url : NULL;
    f->done = true;
    struct query *q;
    while ((q = TAILQ_FIRST(&f->waiters)) != NULL) {
        if (cached && query_answer_cached(q, now, url != NULL ? url : "-"))
            continue;
        size_t limit = proxy_limit(p, &q->client, &q->q);
        int m = dns_answer_for_client(msg, ans, q->msg, &q->q, p->cfg->udp_max_size, limit,
                                      p->answer, sizeof(p->answer));
        if (m < 0) {
            query_servfail(q);
            continue;
        }
        p->stats.answered++;
        if ((dns_get16(p->answer + 2) & DNS_FLAG_TC) && !(ans->flags & DNS_FLAG_TC))
            p->stats.truncated++;
        query_answer(q, m, "upstream", url);
    }
    flight_free(f);
}

static void on_flight_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct flight *f = container_of(w, struct flight, timer);
    struct proxy *p = f->proxy;
    if (!f->stale_due) {
        /* RFC 8767 §5: the client response timer. Waiters get the stale entry, if there
         * is one, and the flight goes on in the background to refresh it. */
        f->stale_due = true;
        ev_timer_set(w, (p->cfg->timeout_ms - p->cfg->stale_client_timeout_ms) / 1000.0, 0);
        ev_timer_start(loop, w);
        uint32_t now = proxy_now();
        struct cache_entry *e = cache_peek(p->cache, &f->key);
        if (e == NULL || cache_entry_ttl(e, now) > 0)
            return;
        f->background = true;
        struct query *q;
        while ((q = TAILQ_FIRST(&f->waiters)) != NULL)
            if (!query_answer_cached(q, now, NULL))
                query_servfail(q);
        return;
    }
    pool_cancel(&f->req);
    flight_fail(f, "no answer in time: SERVFAIL");
}

/* The flight of k that a query may join, if there is one. */
static struct flight *flight_find(struct proxy *p, const struct cache_key *k)
{
    struct flight *f;
    LIST_FOREACH(f, &p->buckets[k->hash & (p->nbuckets - 1)], bucket_entry)
        if (!f->done && f->nwaiters < PROXY_MAX_WAITERS && cache_key_equal(&f->key, k))
            return f;
    return NULL;
}

/* Send the query (msg, *dq) with key k upstream as a new flight. Returns 0 and sets *out,
 * or a negative errno: -EAGAIN when no upstream can take it now, -ENOSPC, -ENOMEM. */
static int flight_start(struct proxy *p, const struct cache_key *k, const uint8_t *msg, size_t len,
                        const struct dns_query *dq, bool background, struct flight **out)
{
    uint8_t up[PROXY_UPSTREAM_QUERY_MAX];
    int up_len = dns_upstream_query(msg, dq, &p->up_opts, up, sizeof(up));
    if (up_len < 0)
        return up_len;
    /* One allocation holds the flight, its query and the upstream's. */
    struct flight *f = malloc(sizeof(*f) + len + (size_t)up_len);
    if (f == NULL)
        return -ENOMEM;
    f->proxy = p;
    TAILQ_INIT(&f->waiters);
    f->nwaiters = 0;
    f->background = background;
    f->stale_due = false;
    f->done = false;
    f->key = *k;
    f->q = *dq;
    f->len = (uint16_t)len;
    f->up_len = (uint16_t)up_len;
    f->up_msg = f->msg + len;
    memcpy(f->msg, msg, len);
    memcpy(f->up_msg, up, (size_t)up_len);
    int rc = pool_submit(p->pool, &f->req, f->up_msg, f->up_len, on_pool_done);
    if (rc < 0) {
        free(f);
        return rc;
    }
    uint32_t first = p->cfg->timeout_ms;
    if (p->cfg->serve_stale && p->cfg->stale_client_timeout_ms < first)
        first = p->cfg->stale_client_timeout_ms;
    else
        f->stale_due = true;
    ev_timer_init(&f->timer, on_flight_timer, first / 1000.0, 0);
    ev_timer_start(p->loop, &f->timer);
    LIST_INSERT_HEAD(&p->buckets[k->hash & (p->nbuckets - 1)], f, bucket_entry);
    TAILQ_INSERT_TAIL(&p->flights, f, entry);
    p->nflights++;
    p->stats.forwarded++;
    *out = f;
    return 0;
}

/* Refresh the entry of k in the background, unless a flight for it is already on its
 * way or the core is full. */
static void proxy_prefetch(struct proxy *p, const struct cache_key *k, const uint8_t *msg,
                           size_t len, const struct dns_query *dq)
{
    struct flight *f;
    if (flight_find(p, k) != NULL || p->nflights >= p->cfg->max_queries)
        return;
    if (flight_start(p, k, msg, len, dq, true, &f) == 0)
        p->stats.prefetched++;
}

static int proxy_error(struct proxy *p, const uint8_t *msg, const struct dns_query *dq, int rcode,
                       uint8_t *out, size_t cap, struct proxy_immediate *im)
{
    im->source = "local";
    im->rcode = rcode;
    if (rcode == DNS_RCODE_SERVFAIL)
        p->stats.servfail++;
    int n = dns_build_error(msg, dq, rcode, p->cfg->udp_max_size, out, cap);
    return n > 0 ? n : 0;
}

/* proxy_query without the padding of immediate answers: *dq is filled in by the parse,
 * whatever the outcome, and *im says what an immediate answer was. */
static int proxy_query_handle(struct proxy *p, const uint8_t *msg, size_t len,
                              const struct proxy_client *client, struct dns_query *dq,
                              struct query **qp, uint8_t *out, size_t cap,
                              struct proxy_immediate *im)
{
    p->stats.queries++;
    int rc = dns_query_parse(msg, len, dq);
    if (rc < 0) {
        /* Not a query at all (a response, or shorter than a header): answering could
         * start a loop between two servers, so the packet is dropped, whoever sent it. */
        p->stats.dropped++;
        return 0;
    }
    /* Access control comes before any judgement of the query, so that a stranger learns
     * nothing beyond "refused": its malformed or unsupported query gets REFUSED too, not
     * FORMERR, NOTIMP or BADVERS, and nothing it sends reaches the cache or an upstream.
     * The answer echoes the question when it is valid (RFC 1035 §4.1.1) and is never
     * larger than the query, so it amplifies nothing for a spoofed UDP source (only an
     * encrypted stream client, which cannot be spoofed, gets it padded). */
    if (!proxy_allowed(p, client)) {
        p->stats.refused++;
        proxy_log_refused(client);
        return proxy_error(p, msg, dq, DNS_RCODE_REFUSED, out, cap, im);
    }
    if (rc > 0) {
        if (rc == DNS_RCODE_FORMERR)
            p->stats.formerr++;
        else if (rc == DNS_RCODE_NOTIMP)
            p->stats.notimp++;
        else
            p->stats.badvers++;
        log_limited(&bad_query_limit, LOG_INFO, "bad query of %zu bytes: %s", len, rcode_name(rc));
        return proxy_error(p, msg, dq, rc, out, cap, im);
    }

    uint32_t now = proxy_now();
    size_t limit = proxy_limit(p, client, dq);
    struct cache_key k;
    cache_key_init(p->cache, &k, msg, dq);
    struct cache_entry *e = cache_lookup(p->cache, &k, now);
    bool stale = e != NULL && cache_entry_ttl(e, now) == 0;
    if (e != NULL && !stale) {
        int n = cache_answer(p->cache, e, msg, dq, now, limit, out, cap);
        if (n > 0) {
            im->source = "cache";
            if (p->cfg->prefetch && cache_entry_prefetch(p->cache, e, now))
                proxy_prefetch(p, &k, msg, len, dq);
            return n;
        }
    }

    struct flight *f = flight_find(p, &k);
    /* RFC 8767 §5: a stale answer now, without a new refresh, when one just failed or
     * when the refresh on its way has already outlived the client timer. */
    if (stale && (cache_entry_recheck(e, now) || (f != NULL && f->stale_due))) {
        int n = cache_answer(p->cache, e, msg, dq, now, limit, out, cap);
        if (n > 0) {
            im->source = "stale";
            return n;
        }
    }
    if (p->nwaiting >= p->cfg->max_queries) {
        log_limited(&overload_limit, LOG_WARNING,
                    "%zu queries in flight (max-queries): answering SERVFAIL", p->nwaiting);
        return proxy_error(p, msg, dq, DNS_RCODE_SERVFAIL, out, cap, im);
    }
    struct query *q = malloc(sizeof(*q) + len);
    if (q == NULL)
        return proxy_error(p, msg, dq, DNS_RCODE_SERVFAIL, out, cap, im);
    if (f != NULL) {
        p->stats.coalesced++;
    } else {
        rc = p->nflights < p->cfg->max_queries ? flight_start(p, &k, msg, len, dq, false, &f)
                                               : -EAGAIN;
        if (rc < 0) {
            free(q);
            /* Every upstream is down or full: a stale answer beats SERVFAIL (RFC 8767). */
            if (stale) {
                int n = cache_answer(p->cache, e, msg, dq, now, limit, out, cap);
                if (n > 0) {
                    im->source = "stale";
                    return n;
                }
            }
            log_limited(&servfail_limit, LOG_WARNING, "no upstream available: SERVFAIL");
            return proxy_error(p, msg, dq, DNS_RCODE_SERVFAIL, out, cap, im);
        }
    }
    q->client = *client;
    q->flight = f;
    q->arrived = ev_now(p->loop);
    q->q = *dq;
    q->len = (uint16_t)len;
    memcpy(q->msg, msg, len);
    TAILQ_INSERT_TAIL(&f->waiters, q, entry);
    f->nwaiters++;
    p->nwaiting++;
    *qp = q;
    return PROXY_PENDING;
}

int proxy_query(struct proxy *p, const uint8_t *msg, size_t len, const struct proxy_client *client,
                struct query **qp, uint8_t *out, size_t cap)
{
    struct dns_query dq;
    struct proxy_immediate im = {.source = "local", .rcode = -1};
    p->stats.by_transport[(unsigned)client->transport % PROXY_TRANSPORTS]++;
    int n = proxy_query_handle(p, msg, len, client, &dq, qp, out, cap, &im);
    if (n > 0)
        p->stats.rcodes[out[3] & 0xf]++;
    if (n > 0 && p->qlog != NULL)
        proxy_log_answer(p, client, msg, len, &dq, im.rcode >= 0 ? im.rcode : out[3] & 0xf,
                         im.source, NULL, ev_now(p->loop));
    return proxy_pad(p, client, &dq, out, n, cap);
}

void proxy_query_cancel(struct query *q)
{
    struct flight *f = q->flight;
    struct proxy *p = f->proxy;
    TAILQ_REMOVE(&f->waiters, q, entry);
    f->nwaiters--;
    p->nwaiting--;
    p->stats.abandoned++;
    free(q);
    /* The upstream slot is given back at once, so that clients that send and leave
     * cannot fill the upstream connections with queries nobody waits for. A flight that
     * refreshes the cache, or is delivering, stays. */
    if (f->nwaiters == 0 && !f->background && !f->done) {
        pool_cancel(&f->req);
        flight_free(f);
    }
}

void proxy_fail_all(struct proxy *p)
{
    struct flight *f;
    while ((f = TAILQ_FIRST(&p->flights)) != NULL) {
        pool_cancel(&f->req);
        f->done = true;
        struct query *q;
        while ((q = TAILQ_FIRST(&f->waiters)) != NULL)
            query_servfail(q);
        flight_free(f);
    }
}
