/* pool: upstream selection, health, RTT and retries. See include/dnsward/pool.h. */
#include "dnsward/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/log.h"
#include "dnsward/util.h"

enum { POOL_FAILURES_DOWN = 3 };
#define POOL_BACKOFF_MIN 1.0
#define POOL_BACKOFF_MAX 16.0
#define POOL_PROBE_INTERVAL 1.0 /* seconds between probes while every upstream is down */

struct pool {
    struct ev_loop *loop;
    const struct config *cfg;
    size_t n;
    struct upstream *ups[CONFIG_MAX_UPSTREAMS];
    unsigned next;     /* round-robin position */
    unsigned requests; /* for the fastest strategy's share of exploration */
    double last_probe; /* ev_now() of the last probe while all were down */
    size_t pending;    /* requests live */
};

static struct log_limit health_limit = LOG_LIMIT_INIT(5, 10);

const uint32_t upstream_latency_bounds_ms[UPSTREAM_LATENCY_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
};

struct pool *pool_new(struct ev_loop *loop, const struct config *cfg)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->cfg = cfg;
    p->last_probe = -POOL_PROBE_INTERVAL;
    return p;
}

int pool_add(struct pool *p, struct upstream *u)
{
    if (p->n >= CONFIG_MAX_UPSTREAMS) {
        u->ops->free(u);
        return -ENOSPC;
    }
    p->ups[p->n++] = u;
    return 0;
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    /* Freeing an upstream fails the attempts it carries, and their retries must find no
     * upstream at all, never one already freed: the pool is emptied first. */
    pool_drain(p);
    size_t n = p->n;
    p->n = 0;
    for (size_t i = 0; i < n; i++)
        p->ups[i]->ops->free(p->ups[i]);
    free(p);
}

void pool_drain(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        p->ups[i]->ops->drain(p->ups[i]);
}

size_t pool_pending(const struct pool *p)
{
    return p->pending;
}

void pool_inherit(struct pool *p, const struct pool *old)
{
    for (size_t i = 0; i < p->n; i++) {
        struct upstream *u = p->ups[i];
        for (size_t j = 0; j < old->n; j++) {
            const struct upstream *o = old->ups[j];
            if (o->spec->proto != u->spec->proto || strcmp(o->spec->url, u->spec->url) != 0)
                continue;
            u->stats = o->stats;
            if (u->spec->addrlen == 0)
                u->addrs = o->addrs;
            u->failures = o->failures;
            u->failure_events = o->failure_events;
            u->down_until = o->down_until;
            u->backoff = o->backoff;
            u->last_answer = o->last_answer;
            u->srtt = o->srtt;
            u->rttvar = o->rttvar;
            u->rto = o->rto;
            break;
        }
    }
}

/* r is over: neither on_done nor a cancel may follow. */
static void pool_request_end(struct pool_request *r)
{
    if (r->live) {
        r->live = false;
        r->pool->pending--;
    }
}

size_t pool_count(const struct pool *p)
{
    return p->n;
}

const struct upstream *pool_upstream(const struct pool *p, size_t i)
{
    return i < p->n ? p->ups[i] : NULL;
}

struct upstream *pool_upstream_mut(struct pool *p, size_t i)
{
    return i < p->n ? p->ups[i] : NULL;
}

static bool pool_is_down(const struct pool *p, const struct upstream *u)
{
    return u->down_until > ev_now(p->loop);
}

bool pool_upstream_down(const struct pool *p, size_t i)
{
    return i < p->n && pool_is_down(p, p->ups[i]);
}

/* Count an answer that took seconds in h. */
static void pool_latency_record(struct upstream_latency *h, double seconds)
{
    if (seconds < 0)
        seconds = 0; /* ev_now() is wall-clock time: a step back is no negative latency */
    double ms = seconds * 1000;
    size_t i = 0;
    while (i < UPSTREAM_LATENCY_BUCKETS && ms > upstream_latency_bounds_ms[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

static double pool_clamp_rto(const struct pool *p, double rto)
{
    double lo = p->cfg->attempt_timeout_min_ms / 1000.0;
    double hi = p->cfg->attempt_timeout_ms / 1000.0;
    if (rto < lo)
        rto = lo;
    return rto > hi ? hi : rto; /* the upper bound wins, should the bounds cross */
}

/* RFC 6298 §2: the first sample sets srtt and rttvar = R/2; later ones smooth with
 * alpha 1/8 and beta 1/4. */
static void pool_rtt_sample(struct pool *p, struct upstream *u, double rtt)
{
    if (u->srtt <= 0) {
        u->srtt = rtt > 0 ? rtt : 1e-6;
        u->rttvar = rtt / 2;
    } else {
        double delta = u->srtt - rtt;
        u->rttvar = 0.75 * u->rttvar + 0.25 * (delta < 0 ? -delta : delta);
        u->srtt = 0.875 * u->srtt + 0.125 * rtt;
    }
    u->rto = pool_clamp_rto(p, u->srtt + 4 * u->rttvar);
}

/* Errors that show the upstream cannot be reached at all, as opposed to one broken
 * exchange on a connection that worked. */
static bool pool_connect_error(int err)
{
    return err == -ECONNREFUSED || err == -EKEYREJECTED || err == -EHOSTUNREACH ||
           err == -ENETUNREACH || err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL;
}

static void pool_mark_down(struct pool *p, struct upstream *u, int err)
{
    u->backoff = u->backoff > 0 ? u->backoff * 2 : POOL_BACKOFF_MIN;
    if (u->backoff > POOL_BACKOFF_MAX)
        u->backoff = POOL_BACKOFF_MAX;
    u->down_until = ev_now(p->loop) + u->backoff;
    log_limited(&health_limit, LOG_WARNING, "upstream %s: down for %.0f s after %u failure%s (%s)",
                u->spec->url, u->backoff, u->failures, u->failures == 1 ? "" : "s", strerror(-err));
}

/* Is some upstream other than u not down? */
static bool pool_has_alternative(const struct pool *p, const struct upstream *u)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->ups[i] != u && !pool_is_down(p, p->ups[i]))
            return true;
    return false;
}

/* An attempt sent at sent_at, when u had counted sent_events failures, failed with err. */
static void pool_note_failure(struct pool *p, struct upstream *u, int err, uint64_t sent_events,
                              double sent_at)
{
    if (sent_events != u->failure_events)
        return; /* part of a failure already counted */
    u->failure_events++;
    u->failures++;
    if (err == -ETIMEDOUT) /* RFC 6298 §5.5: back off until an answer gives a sample */
        u->rto = pool_clamp_rto(p, u->rto * 2);
    if (pool_is_down(p, u))
        return; /* one failure per down period escalates the backoff, not every query */
    /* A timeout from an upstream that has answered nothing since the attempt left is
     * likely no slow name: the upstream is silent (black-holed, or the path to it is
     * gone), and the next queries go elsewhere at once. Only where there is an
     * elsewhere, though: a lone upstream that is slow with one name must keep serving
     * the others. */
    bool silent =
        err == -ETIMEDOUT && sent_at >= 0 && u->last_answer < sent_at && pool_has_alternative(p, u);
    if (!pool_connect_error(err) && !silent && u->failures < POOL_FAILURES_DOWN)
        return;
    pool_mark_down(p, u, err);
}

static void pool_note_success(struct upstream *u)
{
    if (u->backoff > 0)
        log_notice("upstream %s: answering again", u->spec->url);
    u->failures = 0;
    u->backoff = 0;
    u->down_until = 0;
}

/* The order in which r tries the upstreams, by strategy. */
static void pool_order(struct pool *p, struct pool_request *r)
{
    size_t n = p->n;
    enum config_strategy s = p->cfg->strategy;
    if (s == CONFIG_STRATEGY_FASTEST && p->requests++ % POOL_EXPLORE == POOL_EXPLORE - 1)
        s = CONFIG_STRATEGY_ROUND_ROBIN; /* exploration: keep the others' RTT known */
    size_t start = 0;
    if (s == CONFIG_STRATEGY_ROUND_ROBIN && n > 0)
        start = p->next++ % n;
    for (size_t i = 0; i < n; i++)
        r->order[i] = (uint8_t)((start + i) % n);
    if (s != CONFIG_STRATEGY_FASTEST)
        return;
    /* Insertion sort by srtt, stable, so that ties keep the configured order; never
     * measured (srtt 0) sorts first. */
    for (size_t i = 1; i < n; i++) {
        uint8_t v = r->order[i];
        size_t j = i;
        while (j > 0 && p->ups[r->order[j - 1]]->srtt > p->ups[v]->srtt) {
            r->order[j] = r->order[j - 1];
            j--;
        }
        r->order[j] = v;
    }
}

/* The next upstream for r, in its order: one not yet tried and not down; failing that,
 * one tried before that is still not down (a second try on a fresh connection recovers
 * from a connection the server closed under us); failing that, while every upstream is
 * down, a probe of the one whose backoff ends first, at most one a second. */
static struct upstream *pool_pick(struct pool *p, struct pool_request *r, size_t *index)
{
    for (int round = 0; round < 2; round++) {
        for (size_t k = 0; k < p->n; k++) {
            size_t i = r->order[k];
            bool tried = r->tried & (1u << i);
            if (tried != (round == 1) || (r->refused & (1u << i)) || pool_is_down(p, p->ups[i]))
                continue;
            *index = i;
            return p->ups[i];
        }
    }
    double now = ev_now(p->loop);
    if (r->tried != 0 || now - p->last_probe < POOL_PROBE_INTERVAL)
        return NULL;
    struct upstream *best = NULL;
    for (size_t i = 0; i < p->n; i++) {
        if (r->refused & (1u << i))
            continue;
        if (best == NULL || p->ups[i]->down_until < best->down_until) {
            best = p->ups[i];
            *index = i;
        }
    }
    if (best != NULL)
        p->last_probe = now;
    return best;
}

static void on_attempt_done(struct attempt *a, int err, const uint8_t *msg, size_t len,
                            const struct dns_answer *ans);

/* Start the next attempt of r. Returns 0, or -EAGAIN when no upstream can take it. */
static int pool_next_attempt(struct pool *p, struct pool_request *r)
{
    while (r->attempts < p->cfg->max_attempts) {
        size_t i;
        struct upstream *u = pool_pick(p, r, &i);
        if (u == NULL)
            return -EAGAIN;
        r->tried |= 1u << i;
        r->attempts++;
        memset(&r->attempt, 0, sizeof(r->attempt));
        r->attempt.wire = r->wire;
        r->attempt.len = r->len;
        r->attempt.on_done = on_attempt_done;
        int rc = u->ops->send(u, &r->attempt);
        if (rc < 0) {
            r->refused |= 1u << i;
            if (pool_connect_error(rc)) {
                u->stats.failures++;
                u->stats.failed[upstream_fail_kind(rc)]++;
                pool_note_failure(p, u, rc, u->failure_events, ev_now(p->loop));
            } else {
                /* Full, no address yet, or throttled: nothing was tried, so neither the
                 * attempt is spent nor does the request count as having tried. */
                r->tried &= ~(1u << i);
                r->attempts--;
            }
            continue;
        }
        u->stats.queries++;
        r->current = u;
        r->sent_events = u->failure_events;
        r->sent_at = ev_now(p->loop);
        /* A try that must first set up its connection gets the whole attempt timeout:
         * the RTT measured on warm connections knows nothing of a handshake. */
        ev_timer_set(&r->timer, r->attempt.fresh ? p->cfg->attempt_timeout_ms / 1000.0 : u->rto, 0);
        ev_timer_start(p->loop, &r->timer);
        return 0;
    }
    return -EAGAIN;
}

static void pool_retry(struct pool *p, struct pool_request *r, int err)
{
    if (pool_next_attempt(p, r) < 0) {
        pool_request_end(r);
        r->on_done(r, err, NULL, 0, NULL);
    }
}

static void on_attempt_done(struct attempt *a, int err, const uint8_t *msg, size_t len,
                            const struct dns_answer *ans)
{
    struct pool_request *r = container_of(a, struct pool_request, attempt);
    struct pool *p = r->pool;
    struct upstream *u = r->current;
    r->current = NULL;
    ev_timer_stop(p->loop, &r->timer);
    if (err == 0) {
        double now = ev_now(p->loop);
        u->stats.answers++;
        u->last_answer = now;
        /* Every answer is timed, fresh connections' too: their handshake is part of the
         * wait their clients saw, though it gives no RTT sample. */
        pool_latency_record(&u->stats.latency, now - r->sent_at);
        if (!a->fresh)
            pool_rtt_sample(p, u, now - r->sent_at);
        pool_note_success(u);
        pool_request_end(r);
        r->answered_by = u;
        r->on_done(r, 0, msg, len, ans);
        return;
    }
    u->stats.failures++;
    u->stats.failed[upstream_fail_kind(err)]++;
    if (err == -ECONNABORTED && !r->free_retry) {
        /* A GOAWAY's unprocessed stream: the query was never processed, so its retry is
         * free (once). It still counts towards the three failures in a row, so that a
         * server that sends GOAWAY on every connection is set aside, while one that
         * restarts now and then is not. */
        r->free_retry = true;
        r->attempts--;
    }
    pool_note_failure(p, u, err, r->sent_events, r->sent_at);
    pool_retry(p, r, err);
}

static void on_attempt_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct pool_request *r = container_of(w, struct pool_request, timer);
    struct pool *p = r->pool;
    struct upstream *u = r->current;
    r->current = NULL;
    u->ops->cancel(u, &r->attempt);
    u->stats.timeouts++;
    /* A fresh connection's timeout is no sign of silence: the handshake is still going
     * on, or failed, and says so itself. */
    pool_note_failure(p, u, -ETIMEDOUT, r->sent_events, r->attempt.fresh ? -1 : r->sent_at);
    pool_retry(p, r, -ETIMEDOUT);
}

int pool_submit(struct pool *p, struct pool_request *r, const uint8_t *wire, uint16_t len,
                pool_done_cb on_done)
{
    memset(r, 0, sizeof(*r));
    r->pool = p;
    r->wire = wire;
    r->len = len;
    r->on_done = on_done;
    ev_timer_init(&r->timer, on_attempt_timeout, 0, 0);
    pool_order(p, r);
    int rc = pool_next_attempt(p, r);
    if (rc == 0) {
        r->live = true;
        p->pending++;
    }
    return rc;
}

void pool_cancel(struct pool_request *r)
{
    struct pool *p = r->pool;
    if (p == NULL)
        return;
    pool_request_end(r);
    ev_timer_stop(p->loop, &r->timer);
    if (r->current != NULL) {
        r->current->ops->cancel(r->current, &r->attempt);
        r->current = NULL;
    }
}

void pool_log_stats(const struct pool *p, int level)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct upstream *u = p->ups[i];
        const struct upstream_stats *s = &u->stats;
        log_msg(level,
                "upstream %s: state=%s queries=%llu answers=%llu failures=%llu timeouts=%llu "
                "unmatched=%llu connects=%llu resumed=%llu throttled=%llu srtt-ms=%.0f "
                "rto-ms=%.0f connect=%llu tls=%llu closed=%llu answer=%llu http=%llu "
                "goaway=%llu other=%llu",
                u->spec->url, pool_is_down(p, u) ? "down" : "up", (unsigned long long)s->queries,
                (unsigned long long)s->answers, (unsigned long long)s->failures,
                (unsigned long long)s->timeouts, (unsigned long long)s->unmatched,
                (unsigned long long)s->connects, (unsigned long long)s->resumed,
                (unsigned long long)s->throttled, u->srtt * 1000, u->rto * 1000,
                (unsigned long long)s->failed[UPSTREAM_FAIL_CONNECT],
                (unsigned long long)s->failed[UPSTREAM_FAIL_TLS],
                (unsigned long long)s->failed[UPSTREAM_FAIL_CLOSED],
                (unsigned long long)s->failed[UPSTREAM_FAIL_ANSWER],
                (unsigned long long)s->failed[UPSTREAM_FAIL_HTTP],
                (unsigned long long)s->failed[UPSTREAM_FAIL_GOAWAY],
                (unsigned long long)s->failed[UPSTREAM_FAIL_OTHER]);
    }
}
