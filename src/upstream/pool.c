/* pool: upstream selection, health and retries. See include/dnsward/pool.h. */
#include "dnsward/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/config.h"
#include "dnsward/log.h"
#include "dnsward/util.h"

enum { POOL_FAILURES_DOWN = 3 };
#define POOL_BACKOFF_MIN 1.0
#define POOL_BACKOFF_MAX 16.0

struct pool {
    struct ev_loop *loop;
    const struct config *cfg;
    size_t n;
    struct upstream *ups[CONFIG_MAX_UPSTREAMS];
};

static struct log_limit health_limit = LOG_LIMIT_INIT(5, 10);

struct pool *pool_new(struct ev_loop *loop, const struct config *cfg)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->cfg = cfg;
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
    /* Freeing an upstream fails the attempts it carries, and their retries must find
     * every other upstream refusing (draining), never one already freed. */
    pool_drain(p);
    for (size_t i = 0; i < p->n; i++)
        p->ups[i]->ops->free(p->ups[i]);
    free(p);
}

void pool_drain(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        p->ups[i]->ops->drain(p->ups[i]);
}

size_t pool_count(const struct pool *p)
{
    return p->n;
}

const struct upstream *pool_upstream(const struct pool *p, size_t i)
{
    return i < p->n ? p->ups[i] : NULL;
}

static bool pool_is_down(const struct pool *p, const struct upstream *u)
{
    return u->down_until > ev_now(p->loop);
}

/* Errors that show the upstream cannot be reached at all, as opposed to one broken
 * exchange on a connection that worked. */
static bool pool_connect_error(int err)
{
    return err == -ECONNREFUSED || err == -EKEYREJECTED || err == -EHOSTUNREACH ||
           err == -ENETUNREACH;
}

/* An attempt sent when u had counted sent_events failures failed with err. */
static void pool_note_failure(struct pool *p, struct upstream *u, int err, uint64_t sent_events)
{
    if (sent_events != u->failure_events)
        return; /* part of a failure already counted */
    u->failure_events++;
    u->failures++;
    if (pool_is_down(p, u))
        return; /* one failure per down period escalates the backoff, not every query */
    if (!pool_connect_error(err) && u->failures < POOL_FAILURES_DOWN)
        return;
    u->backoff = u->backoff > 0 ? u->backoff * 2 : POOL_BACKOFF_MIN;
    if (u->backoff > POOL_BACKOFF_MAX)
        u->backoff = POOL_BACKOFF_MAX;
    u->down_until = ev_now(p->loop) + u->backoff;
    log_limited(&health_limit, LOG_WARNING, "upstream %s: down for %.0f s after %u failure%s (%s)",
                u->spec->url, u->backoff, u->failures, u->failures == 1 ? "" : "s", strerror(-err));
}

static void pool_note_success(struct upstream *u)
{
    if (u->backoff > 0)
        log_notice("upstream %s: answering again", u->spec->url);
    u->failures = 0;
    u->backoff = 0;
    u->down_until = 0;
}

/* The next upstream for r, in configured order: one not yet tried and not down; failing
 * that, one tried before that is still not down (a second try on a fresh connection
 * recovers from a connection the server closed under us). */
static struct upstream *pool_pick(struct pool *p, struct pool_request *r, size_t *index)
{
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < p->n; i++) {
            bool tried = r->tried & (1u << i);
            if (tried != (round == 1) || (r->refused & (1u << i)) || pool_is_down(p, p->ups[i]))
                continue;
            *index = i;
            return p->ups[i];
        }
    }
    return NULL;
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
                pool_note_failure(p, u, rc, u->failure_events);
            }
            continue;
        }
        u->stats.queries++;
        r->current = u;
        r->sent_events = u->failure_events;
        ev_timer_set(&r->timer, p->cfg->attempt_timeout_ms / 1000.0, 0);
        ev_timer_start(p->loop, &r->timer);
        return 0;
    }
    return -EAGAIN;
}

static void pool_retry(struct pool *p, struct pool_request *r, int err)
{
    if (pool_next_attempt(p, r) < 0)
        r->on_done(r, err, NULL, 0, NULL);
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
        u->stats.answers++;
        pool_note_success(u);
        r->on_done(r, 0, msg, len, ans);
        return;
    }
    u->stats.failures++;
    pool_note_failure(p, u, err, r->sent_events);
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
    pool_note_failure(p, u, -ETIMEDOUT, r->sent_events);
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
    return pool_next_attempt(p, r);
}

void pool_cancel(struct pool_request *r)
{
    struct pool *p = r->pool;
    if (p == NULL)
        return;
    ev_timer_stop(p->loop, &r->timer);
    if (r->current != NULL) {
        r->current->ops->cancel(r->current, &r->attempt);
        r->current = NULL;
    }
}
