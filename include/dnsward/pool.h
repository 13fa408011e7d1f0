/* pool: which upstream an attempt goes to, how healthy each upstream is, and retries.
 *
 * Strategies (config `strategy`): failover, the first healthy upstream in configured
 * order; round-robin, healthy upstreams in turn; fastest, the healthy upstream with the
 * lowest smoothed RTT, except that one request in POOL_EXPLORE goes round-robin so that
 * the others' RTT stays known (one never measured counts as fastest, so it is measured).
 * DoT and DoH upstreams mix freely: the pool sees only struct upstream.
 *
 * RTT and timeouts: every answer gives its upstream an RTT sample, smoothed as TCP does
 * (RFC 6298: srtt, rttvar); an attempt's timeout is srtt + 4 rttvar within
 * [attempt-timeout-min, attempt-timeout], attempt-timeout until a sample exists, and it
 * doubles (within the bound) after a timeout event, as TCP backs off its RTO. A try that
 * must first open its connection (attempt.fresh) gets attempt-timeout, gives no sample,
 * and its timeout is no sign of silence.
 *
 * Health: an upstream that fails is "down" for a backoff period that doubles with each
 * consecutive failure (1 s up to 16 s) and is avoided meanwhile; the first query after
 * the period probes it, and the first success brings it back. A connect-phase failure
 * (refused, unreachable, certificate rejected) marks it down at once, and so does a
 * timeout on an upstream that has answered nothing since the attempt was sent, if
 * another upstream is up (it is black-holed, so the next queries go elsewhere at once
 * instead of each waiting for its own timeout; a lone upstream slow with one name is
 * not set aside); other failures (a broken stream, garbage, a timeout while other answers
 * arrive) after three in a row, so that one lost race with a server's idle close does
 * not take a good upstream out of service. Failures are counted per event, not per
 * attempt: the attempts a broken connection carried fail together, once. An upstream
 * that is merely full, has no address yet, or may not open another connection this
 * second (upstream-connect-rate) is skipped for that query, not charged. A GOAWAY's
 * unprocessed stream is retried once without spending an attempt; it counts as an
 * ordinary failure (three in a row set the upstream aside). When every upstream is down,
 * one query a second probes the one whose backoff ends first, so that the pool notices a
 * network that came back without waiting out every backoff.
 *
 * A request moves to the next upstream when an attempt fails or outlives its timeout,
 * until max_attempts or every upstream was tried. Each attempt opens at most one
 * connection, so a query causes at most max_attempts connection attempts, and an
 * upstream at most upstream-connect-rate a second: one that accepts and closes cannot
 * cause a reconnect storm. The query's overall deadline belongs to the caller
 * (proxy.c), which cancels the request.
 */
#ifndef DNSWARD_POOL_H
#define DNSWARD_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsward/config.h"
#include "dnsward/upstream.h"

enum { POOL_EXPLORE = 20 };

struct pool;
struct pool_request;

/* The request's end: err 0 with a validated answer (valid during the call only), or err < 0
 * when no upstream could answer. Called once, never from inside pool_submit. */
typedef void (*pool_done_cb)(struct pool_request *r, int err, const uint8_t *msg, size_t len,
                             const struct dns_answer *ans);

/* One query's journey through the upstreams; embedded in its owner (the proxy's query). */
struct pool_request {
    struct attempt attempt;
    ev_timer timer;           /* the current attempt's timeout */
    struct upstream *current; /* carrying the attempt now, or NULL */
    unsigned attempts;
    uint32_t tried;       /* bit i: upstream i was tried */
    uint32_t refused;     /* bit i: upstream i could not take it (full): skip it */
    uint64_t sent_events; /* the upstream's failure_events when the attempt was sent */
    double sent_at;       /* ev_now() when the attempt was sent */
    bool free_retry;      /* a GOAWAY's retry was granted without spending an attempt */
    bool live;            /* submitted, and neither done nor cancelled */
    const struct upstream *answered_by;  /* set just before on_done, when an answer came */
    uint8_t order[CONFIG_MAX_UPSTREAMS]; /* upstream indexes in the strategy's order */
    const uint8_t *wire;                 /* the query, borrowed until the request ends */
    uint16_t len;
    pool_done_cb on_done;
    struct pool *pool;
};

/* An empty pool; cfg must outlive it. Returns NULL on allocation failure. */
struct pool *pool_new(struct ev_loop *loop, const struct config *cfg);

/* Add u as the next upstream in configured order; ownership of u moves to the pool (it
 * calls u->ops->free). Returns 0, or -ENOSPC beyond CONFIG_MAX_UPSTREAMS (u is then freed). */
int pool_add(struct pool *p, struct upstream *u);

/* Close every upstream connection (attempts still in flight fail first) and free. */
void pool_free(struct pool *p);

/* Send wire (a query with ID 0, borrowed until the request ends) to the best upstream.
 * Returns 0: on_done will be called later; or -EAGAIN if no upstream can take it now
 * (all down, or all full), with no callback. */
int pool_submit(struct pool *p, struct pool_request *r, const uint8_t *wire, uint16_t len,
                pool_done_cb on_done);

/* Abandon r: its attempt is withdrawn from its upstream and no callback follows. */
void pool_cancel(struct pool_request *r);

/* Shutdown: close idle upstream connections and let busy ones finish. */
void pool_drain(struct pool *p);

/* Requests submitted and not yet done or cancelled: a pool replaced by a reload is freed
 * once this is 0. */
size_t pool_pending(const struct pool *p);

/* A reload: each upstream of p with the URL of one in old takes over what old learnt of
 * it (addresses, RTT, health, counters), so that a new configuration starts where the
 * old one was. Never fails. */
void pool_inherit(struct pool *p, const struct pool *old);

/* Log one line per upstream at level: its state and counters (see the README). */
void pool_log_stats(const struct pool *p, int level);

/* Upstreams, for statistics and logs. */
size_t pool_count(const struct pool *p);
const struct upstream *pool_upstream(const struct pool *p, size_t i);
struct upstream *pool_upstream_mut(struct pool *p, size_t i);

/* Is upstream i down (avoided until its backoff ends, see Health above)? False for an
 * index out of range. */
bool pool_upstream_down(const struct pool *p, size_t i);

#endif
