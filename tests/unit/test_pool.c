/* Unit tests for the upstream pool: the strategies (failover, round-robin, fastest),
 * retries on failure and on timeout, the attempt bound, RTT smoothing and the timeouts it
 * gives, health (backoff, silent upstreams, probes while all are down) and the counters.
 * The upstreams are fakes whose sends and answers the test scripts; time is libev's,
 * advanced by running the loop (timers fire) or by sleeping and updating ev_now (they do
 * not, until the loop runs). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "dnsward/config.h"
#include "dnsward/log.h"
#include "dnsward/pool.h"
#include "dnsward/util.h"

struct fake {
    struct upstream base;
    int send_result; /* what send returns */
    bool fresh;      /* sends as a connection still being set up would */
    unsigned sends;
    unsigned cancels;
    struct attempt_list carried; /* the attempts it carries, oldest first */
};

static void fake_free(struct upstream *u)
{
    test_free(container_of(u, struct fake, base));
}

static int fake_send(struct upstream *u, struct attempt *a)
{
    struct fake *f = container_of(u, struct fake, base);
    f->sends++;
    if (f->send_result < 0)
        return f->send_result;
    a->fresh = f->fresh;
    TAILQ_INSERT_TAIL(&f->carried, a, entry);
    return 0;
}

static bool fake_carries(const struct fake *f, const struct attempt *a)
{
    const struct attempt *x;
    TAILQ_FOREACH(x, &f->carried, entry) {
        if (x == a)
            return true;
    }
    return false;
}

static unsigned fake_carried(const struct fake *f)
{
    const struct attempt *x;
    unsigned n = 0;
    TAILQ_FOREACH(x, &f->carried, entry) {
        n++;
    }
    return n;
}

static void fake_cancel(struct upstream *u, struct attempt *a)
{
    struct fake *f = container_of(u, struct fake, base);
    assert_true(fake_carries(f, a));
    TAILQ_REMOVE(&f->carried, a, entry);
    f->cancels++;
}

static void fake_drain(struct upstream *u)
{
    (void)u;
}

static const struct upstream_ops fake_ops = {
    .send = fake_send,
    .cancel = fake_cancel,
    .drain = fake_drain,
    .free = fake_free,
};

static struct upstream_spec specs[3];

/* A fake upstream, initialised as the transports do: no connect-rate bound, and the
 * attempt timeout of cfg until an RTT is known. */
static struct fake *fake_new(int i, const struct config *cfg)
{
    struct fake *f = test_calloc(1, sizeof(*f));
    snprintf(specs[i].url, sizeof(specs[i].url), "tls://192.0.2.%d", i + 1);
    upstream_init(&f->base, &fake_ops, &specs[i], 0, 0, cfg->attempt_timeout_ms / 1000.0);
    TAILQ_INIT(&f->carried);
    return f;
}

/* Finish attempt a, which f carries, with err (an answer when err is 0). */
static void fake_finish_attempt(struct fake *f, struct attempt *a, int err)
{
    assert_true(fake_carries(f, a));
    TAILQ_REMOVE(&f->carried, a, entry);
    static const uint8_t answer[12] = {0};
    struct dns_answer ans = {0};
    a->on_done(a, err, err ? NULL : answer, err ? 0 : sizeof(answer), err ? NULL : &ans);
}

/* Finish the oldest attempt f carries. */
static void fake_finish(struct fake *f, int err)
{
    struct attempt *a = TAILQ_FIRST(&f->carried);
    assert_non_null(a);
    fake_finish_attempt(f, a, err);
}

struct outcome {
    unsigned calls;
    int err;
};

struct test_req {
    struct pool_request r;
    struct outcome out;
};

static void on_test_done(struct pool_request *r, int err, const uint8_t *msg, size_t len,
                         const struct dns_answer *ans)
{
    (void)msg;
    (void)len;
    (void)ans;
    struct test_req *t = container_of(r, struct test_req, r);
    t->out.calls++;
    t->out.err = err;
}

struct fixture {
    struct ev_loop *loop;
    struct config cfg;
    struct pool *pool;
    struct fake *f[3];
};

static int setup(void **state)
{
    struct fixture *fx = test_calloc(1, sizeof(*fx));
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    fx->cfg.max_attempts = 3;
    fx->cfg.attempt_timeout_ms = 20;
    fx->pool = pool_new(fx->loop, &fx->cfg);
    for (int i = 0; i < 3; i++) {
        fx->f[i] = fake_new(i, &fx->cfg);
        assert_int_equal(pool_add(fx->pool, &fx->f[i]->base), 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pool_free(fx->pool);
    ev_loop_destroy(fx->loop);
    test_free(fx);
    return 0;
}

static const uint8_t wire[12] = {0};

/* Run the loop until *counter reaches want (a timer fired), or fail after 5 s. */
static void run_until(struct ev_loop *loop, const unsigned *counter, unsigned want)
{
    ev_tstamp end = ev_time() + 5;
    while (*counter < want && ev_time() < end)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(*counter, want);
}

/* Run the loop for about ms milliseconds. */
static void run_for(struct ev_loop *loop, double ms)
{
    ev_tstamp end = ev_time() + ms / 1000.0;
    while (ev_time() < end) {
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        ev_sleep(0.001);
    }
}

/* Let seconds pass on the clock the pool reads (ev_now) without running the loop: no
 * timer fires until it runs again. An answer given then took that long. */
static void advance(struct ev_loop *loop, double seconds)
{
    ev_sleep(seconds);
    ev_now_update(loop);
}

static bool near(double a, double b, double tolerance)
{
    return a - b <= tolerance && b - a <= tolerance;
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Set the attempt timeout's bounds, and the upstreams' timeout to what upstream_init
 * gives before any RTT is known (the upper bound). */
static void set_timeouts(struct fixture *fx, uint32_t min_ms, uint32_t max_ms)
{
    fx->cfg.attempt_timeout_min_ms = min_ms;
    fx->cfg.attempt_timeout_ms = max_ms;
    for (int i = 0; i < 3; i++)
        fx->f[i]->base.rto = max_ms / 1000.0;
}

/* The fake that carries r's attempt now (there must be one). */
static int carrier(struct fixture *fx, const struct pool_request *r)
{
    for (int i = 0; i < 3; i++)
        if (fake_carries(fx->f[i], &r->attempt))
            return i;
    fail_msg("no upstream carries the attempt");
    return -1;
}

static void test_first_healthy_in_order(void **state)
{
    struct fixture *fx = *state;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fx->f[0]->sends, 1);
    assert_int_equal(fx->f[1]->sends, 0);
    assert_int_equal(t.out.calls, 0); /* never from inside pool_submit */
    fake_finish(fx->f[0], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
    assert_int_equal(fx->f[0]->base.stats.answers, 1);
}

static void test_failure_moves_to_next(void **state)
{
    struct fixture *fx = *state;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], -ECONNRESET);
    assert_int_equal(t.out.calls, 0);
    assert_int_equal(fx->f[1]->sends, 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
    /* One broken exchange does not take the first upstream out of service. */
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fx->f[0]->sends, 2);
    pool_cancel(&t2.r);
}

static void test_refused_marks_down_with_backoff(void **state)
{
    struct fixture *fx = *state;
    fx->f[0]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fx->f[0]->sends, 1);
    assert_int_equal(fx->f[1]->sends, 1);
    assert_true(fx->f[0]->base.down_until > ev_now(fx->loop));
    assert_true(fx->f[0]->base.backoff >= 1.0);
    fake_finish(fx->f[1], 0);
    /* While down, the first upstream is not even tried: no connection storm. */
    for (int i = 0; i < 50; i++) {
        struct test_req ti = {0};
        assert_int_equal(pool_submit(fx->pool, &ti.r, wire, sizeof(wire), on_test_done), 0);
        fake_finish(fx->f[1], 0);
        assert_int_equal(ti.out.calls, 1);
    }
    assert_int_equal(fx->f[0]->sends, 1);
}

static void test_backoff_doubles_and_success_restores(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = &fx->f[0]->base;
    fx->f[0]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[1], 0);
    double first = u->backoff;
    /* Pretend the backoff passed: the next query probes it again, and it fails again. */
    u->down_until = ev_now(fx->loop) - 0.001;
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[1], 0);
    assert_int_equal(fx->f[0]->sends, 2);
    assert_true(u->backoff >= 2 * first);
    /* It recovers: the probe succeeds and it is first again. */
    fx->f[0]->send_result = 0;
    u->down_until = ev_now(fx->loop) - 0.001;
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], 0);
    assert_int_equal(u->failures, 0);
    assert_true(u->backoff == 0);
    assert_true(u->down_until == 0);
}

static void test_timeout_moves_to_next(void **state)
{
    struct fixture *fx = *state;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    run_until(fx->loop, &fx->f[0]->cancels, 1);
    assert_int_equal(fx->f[0]->base.stats.timeouts, 1);
    assert_int_equal(fx->f[1]->sends, 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
}

static void test_attempts_bounded(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.max_attempts = 2;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], -EPROTO);
    fake_finish(fx->f[1], -ECONNRESET);
    assert_int_equal(fx->f[2]->sends, 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, -ECONNRESET);
}

/* While every upstream is down, the first query probes one (the first whose backoff
 * ends), and the others of the same second fail at once, without a connection. */
static void test_all_down_fails_at_once(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < 3; i++)
        fx->f[i]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(t.out.calls, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->f[i]->sends, 1);
        assert_true(fx->f[i]->base.down_until > ev_now(fx->loop));
    }
    /* Everything is down now: the next query probes one upstream, still refused. */
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(fx->f[0]->sends + fx->f[1]->sends + fx->f[2]->sends, 4);
    assert_int_equal(fx->f[0]->sends, 2); /* all end together: the first in order */
    /* A failure while down does not escalate the backoff. */
    assert_true(fx->f[0]->base.backoff == 1.0);
    /* Within the same second the next ones fail at once: no connection at all. */
    for (int i = 0; i < 10; i++) {
        struct test_req ti = {0};
        assert_int_equal(pool_submit(fx->pool, &ti.r, wire, sizeof(wire), on_test_done), -EAGAIN);
        assert_int_equal(ti.out.calls, 0);
    }
    assert_int_equal(fx->f[0]->sends + fx->f[1]->sends + fx->f[2]->sends, 4);
    assert_int_equal(t.out.calls + t2.out.calls, 0);
}

static void test_single_upstream_retried_after_broken_connection(void **state)
{
    struct fixture *fx = *state;
    fx->f[1]->send_result = -ECONNREFUSED;
    fx->f[2]->send_result = -ECONNREFUSED;
    fx->cfg.max_attempts = 4;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    /* The server closed the connection under the query: the others are refused, and the
     * first is tried once more on a new connection. */
    fake_finish(fx->f[0], -ECONNRESET);
    assert_int_equal(fx->f[0]->sends, 2);
    fake_finish(fx->f[0], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
}

static void test_cancel_withdraws_attempt(void **state)
{
    struct fixture *fx = *state;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    pool_cancel(&t.r);
    assert_int_equal(fx->f[0]->cancels, 1);
    assert_true(TAILQ_EMPTY(&fx->f[0]->carried));
    run_for(fx->loop, 60); /* its timer is stopped too: nothing more happens */
    assert_int_equal(fx->f[1]->sends, 0);
    assert_int_equal(t.out.calls, 0);
}

/* Regression: a transport that is merely full (-ENOBUFS) is not a failing upstream. */
static void test_full_upstream_not_charged(void **state)
{
    struct fixture *fx = *state;
    fx->f[0]->send_result = -ENOBUFS;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fx->f[0]->sends, 1); /* not offered the same query again */
    assert_int_equal(fx->f[1]->sends, 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(fx->f[0]->base.failures, 0);
    assert_true(fx->f[0]->base.down_until == 0);
}

/* Regression: one connection loss fails every attempt it carried; that is one failure of
 * the upstream, not one per attempt, so a server's idle close cannot take it down. */
static void test_one_event_one_failure(void **state)
{
    struct fixture *fx = *state;
    enum { N = 5 };
    struct test_req t[N];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < N; i++)
        assert_int_equal(pool_submit(fx->pool, &t[i].r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fake_carried(fx->f[0]), N);
    for (int i = 0; i < N; i++) {
        fake_finish_attempt(fx->f[0], &t[i].r.attempt, -ECONNRESET);
        /* each is retried on the second upstream */
        fake_finish(fx->f[1], 0);
        assert_int_equal(t[i].out.calls, 1);
        assert_int_equal(t[i].out.err, 0);
    }
    assert_int_equal(fx->f[0]->base.failures, 1);
    assert_true(fx->f[0]->base.down_until == 0);
}

/* Regression: a wrong answer on a working connection does not take the upstream down at
 * once, as a refused connection does. */
static void test_bad_answer_not_connect_failure(void **state)
{
    struct fixture *fx = *state;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], -EBADMSG);
    fake_finish(fx->f[1], 0);
    assert_true(fx->f[0]->base.down_until == 0);
}

/* While every upstream is down, a probe goes out at most once a second, to the upstream
 * whose backoff ends first. */
static void test_all_down_probe_once_a_second(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < 3; i++)
        fx->f[i]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    /* Long backoffs, the second's ending first. */
    double now = ev_now(fx->loop);
    fx->f[0]->base.down_until = now + 30;
    fx->f[1]->base.down_until = now + 20;
    fx->f[2]->base.down_until = now + 30;

    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(fx->f[0]->sends, 1);
    assert_int_equal(fx->f[1]->sends, 2);
    assert_int_equal(fx->f[2]->sends, 1);
    assert_true(fx->f[1]->base.down_until == now + 20); /* still down, backoff unchanged */
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(fx->f[0]->sends + fx->f[1]->sends + fx->f[2]->sends, 4);

    /* A second later, the next query probes again. */
    advance(fx->loop, 1.05);
    struct test_req t4 = {0};
    assert_int_equal(pool_submit(fx->pool, &t4.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(fx->f[1]->sends, 3);
    struct test_req t5 = {0};
    assert_int_equal(pool_submit(fx->pool, &t5.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(fx->f[0]->sends + fx->f[1]->sends + fx->f[2]->sends, 5);
    assert_int_equal(t.out.calls + t2.out.calls + t3.out.calls + t4.out.calls + t5.out.calls, 0);
}

/* A probe that is answered brings its upstream back at once, long before its backoff ends
 * (the network came back). */
static void test_all_down_probe_brings_back(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < 3; i++)
        fx->f[i]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    double now = ev_now(fx->loop);
    fx->f[0]->base.down_until = now + 16;
    fx->f[1]->base.down_until = now + 16;
    fx->f[2]->base.down_until = now + 8;
    for (int i = 0; i < 3; i++)
        fx->f[i]->send_result = 0;

    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fx->f[2]->sends, 2);
    assert_int_equal(t2.out.calls, 0);
    fake_finish(fx->f[2], 0);
    assert_int_equal(t2.out.calls, 1);
    assert_int_equal(t2.out.err, 0);
    assert_true(fx->f[2]->base.down_until == 0);
    assert_int_equal(fx->f[2]->base.failures, 0);
    assert_true(fx->f[2]->base.backoff == 0);

    /* In service again: the next queries go to it at once; the others stay down. */
    for (int i = 0; i < 5; i++) {
        struct test_req ti = {0};
        assert_int_equal(pool_submit(fx->pool, &ti.r, wire, sizeof(wire), on_test_done), 0);
        fake_finish(fx->f[2], 0);
        assert_int_equal(ti.out.calls, 1);
    }
    assert_int_equal(fx->f[2]->sends, 7);
    assert_int_equal(fx->f[0]->sends, 1);
    assert_int_equal(fx->f[1]->sends, 1);
}

static void test_round_robin_spreads(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.strategy = CONFIG_STRATEGY_ROUND_ROBIN;
    for (int i = 0; i < 9; i++) {
        struct test_req t = {0};
        assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
        assert_int_equal(carrier(fx, &t.r), i % 3);
        assert_int_equal(fx->f[i % 3]->sends, i / 3 + 1);
        fake_finish(fx->f[i % 3], 0);
        assert_int_equal(t.out.calls, 1);
        assert_int_equal(t.out.err, 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->f[i]->base.stats.answers, 3);

    /* A failed attempt moves on to the next in turn. */
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t.r), 0);
    fake_finish(fx->f[0], -ECONNRESET);
    assert_int_equal(carrier(fx, &t.r), 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);

    /* A down upstream is skipped; the others still share the queries. */
    fx->f[1]->base.down_until = ev_now(fx->loop) + 10;
    unsigned before = fx->f[1]->sends;
    for (int i = 0; i < 6; i++) {
        struct test_req ti = {0};
        assert_int_equal(pool_submit(fx->pool, &ti.r, wire, sizeof(wire), on_test_done), 0);
        int c = carrier(fx, &ti.r);
        assert_int_not_equal(c, 1);
        fake_finish(fx->f[c], 0);
        assert_int_equal(ti.out.calls, 1);
    }
    assert_int_equal(fx->f[1]->sends, before);
    assert_true(fx->f[0]->sends > 4 && fx->f[2]->sends > 3);
}

static void test_fastest_picks_lowest_srtt(void **state)
{
    struct fixture *fx = *state;
    static const double delay[3] = {0.030, 0.005, 0.015};
    fx->cfg.strategy = CONFIG_STRATEGY_FASTEST;
    set_timeouts(fx, 1, 1000);

    /* Never measured counts as fastest: each is tried in turn, so each gets measured. */
    for (int i = 0; i < 3; i++) {
        struct test_req t = {0};
        assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
        assert_int_equal(carrier(fx, &t.r), i);
        advance(fx->loop, delay[i]);
        fake_finish(fx->f[i], 0);
        assert_int_equal(t.out.calls, 1);
    }
    assert_true(fx->f[1]->base.srtt > 0);
    assert_true(fx->f[1]->base.srtt < fx->f[2]->base.srtt);
    assert_true(fx->f[2]->base.srtt < fx->f[0]->base.srtt);

    /* Then the fastest, except one request in POOL_EXPLORE, which goes round-robin:
     * over three rounds, each of the others is explored once. */
    unsigned to[3] = {0, 0, 0};
    for (int k = 3; k < 3 * POOL_EXPLORE; k++) {
        struct test_req t = {0};
        assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
        int c = carrier(fx, &t.r);
        if (k % POOL_EXPLORE != POOL_EXPLORE - 1 && c != 1)
            fail_msg("request %d went to upstream %d, not the fastest", k, c);
        if (k == POOL_EXPLORE - 1 && c == 1)
            fail_msg("request %d was not an exploration", k);
        to[c]++;
        fake_finish(fx->f[c], 0);
        assert_int_equal(t.out.calls, 1);
    }
    assert_int_equal(to[0], 1);
    assert_int_equal(to[2], 1);
    assert_int_equal(to[1], 3 * POOL_EXPLORE - 3 - 2);

    /* A down upstream is skipped: the next fastest takes its place. */
    fx->f[1]->base.down_until = ev_now(fx->loop) + 10;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t.r), 2);
    /* It fails: the next one is the slowest, the one not tried yet. */
    fake_finish(fx->f[2], -ECONNRESET);
    assert_int_equal(carrier(fx, &t.r), 0);
    fake_finish(fx->f[0], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
}

/* However fast the measured ones, one never measured is tried first, so that it is. */
static void test_fastest_tries_unmeasured_first(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.strategy = CONFIG_STRATEGY_FASTEST;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t.r), 0);
    fake_finish(fx->f[0], 0); /* at once: as fast as can be */
    assert_true(fx->f[0]->base.srtt > 0);

    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t2.r), 1);
    fake_finish(fx->f[1], -ECONNRESET); /* a failure gives no RTT */
    assert_int_equal(carrier(fx, &t2.r), 2);
    fake_finish(fx->f[2], -ECONNRESET);
    assert_int_equal(carrier(fx, &t2.r), 0);
    fake_finish(fx->f[0], 0);
    assert_int_equal(t2.out.err, 0);
    assert_true(fx->f[1]->base.srtt == 0);

    /* Still unmeasured: still tried first. */
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t3.r), 1);
    advance(fx->loop, 0.005);
    fake_finish(fx->f[1], 0);
    assert_true(fx->f[1]->base.srtt > fx->f[0]->base.srtt);
    /* The third has never answered: it comes first, before the fastest. */
    struct test_req t4 = {0};
    assert_int_equal(pool_submit(fx->pool, &t4.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t4.r), 2);
    advance(fx->loop, 0.002);
    fake_finish(fx->f[2], 0);
    /* Every one measured: the fastest it is. */
    struct test_req t5 = {0};
    assert_int_equal(pool_submit(fx->pool, &t5.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t5.r), 0);
    pool_cancel(&t5.r);
}

/* RFC 6298 §2: srtt and rttvar from the samples, and the attempt timeout
 * clamp(srtt + 4 rttvar, attempt-timeout-min, attempt-timeout), which the next attempt's
 * timer then uses. */
static void test_rtt_smoothing(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = &fx->f[0]->base;
    set_timeouts(fx, 10, 2000);

    struct test_req t1 = {0};
    assert_int_equal(pool_submit(fx->pool, &t1.r, wire, sizeof(wire), on_test_done), 0);
    /* Before any sample, the timeout is attempt-timeout. */
    assert_true(near(ev_timer_remaining(fx->loop, &t1.r.timer), 2.0, 1e-6));
    advance(fx->loop, 0.1);
    double r1 = ev_now(fx->loop) - t1.r.sent_at;
    fake_finish(fx->f[0], 0);
    assert_true(near(u->srtt, r1, 1e-9));
    assert_true(near(u->rttvar, r1 / 2, 1e-9));
    assert_true(near(u->rto, clamp(r1 + 4 * (r1 / 2), 0.01, 2.0), 1e-9));

    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    advance(fx->loop, 0.02);
    double r2 = ev_now(fx->loop) - t2.r.sent_at;
    fake_finish(fx->f[0], 0);
    double rttvar = 0.75 * (r1 / 2) + 0.25 * (r1 > r2 ? r1 - r2 : r2 - r1);
    double srtt = 0.875 * r1 + 0.125 * r2;
    assert_true(near(u->srtt, srtt, 1e-9));
    assert_true(near(u->rttvar, rttvar, 1e-9));
    double rto = clamp(srtt + 4 * rttvar, 0.01, 2.0);
    assert_true(near(u->rto, rto, 1e-9));
    assert_true(rto > 0.1 && rto < 1.0); /* neither bound applies */

    /* The next attempt times out after rto, not attempt-timeout. */
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    assert_true(near(ev_timer_remaining(fx->loop, &t3.r.timer), rto, 1e-6));
    double start = ev_time();
    run_until(fx->loop, &fx->f[0]->cancels, 1);
    double elapsed = ev_time() - start;
    if (elapsed < rto - 0.01 || elapsed > 1.5)
        fail_msg("timed out after %.3f s, rto %.3f s", elapsed, rto);
    assert_int_equal(u->stats.timeouts, 1);
    /* The retry's timeout is its own upstream's: still attempt-timeout, unmeasured. */
    assert_int_equal(carrier(fx, &t3.r), 1);
    assert_true(near(ev_timer_remaining(fx->loop, &t3.r.timer), 2.0, 1e-3));
    pool_cancel(&t3.r);
    assert_int_equal(t3.out.calls, 0);
}

static void test_rto_bounds(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = &fx->f[0]->base;

    /* An answer at once would give a timeout of nothing: attempt-timeout-min it is. */
    set_timeouts(fx, 200, 1000);
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], 0);
    assert_true(u->srtt > 0 && u->srtt < 0.01);
    assert_true(near(u->rto, 0.2, 1e-9));
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_true(near(ev_timer_remaining(fx->loop, &t2.r.timer), 0.2, 1e-6));

    /* A slow answer would give more than attempt-timeout: attempt-timeout it is. */
    set_timeouts(fx, 10, 100);
    advance(fx->loop, 0.15);
    fake_finish(fx->f[0], 0);
    assert_true(u->srtt + 4 * u->rttvar > 0.1);
    assert_true(near(u->rto, 0.1, 1e-9));
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    assert_true(near(ev_timer_remaining(fx->loop, &t3.r.timer), 0.1, 1e-6));
    pool_cancel(&t3.r);
}

/* RFC 6298 §5.5: each timeout doubles the timeout, within attempt-timeout, until an answer
 * gives a new sample. */
static void test_timeout_doubles_rto(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = &fx->f[0]->base;
    static const double expect[] = {0.04, 0.08, 0.1, 0.1};
    set_timeouts(fx, 20, 100);
    fx->cfg.max_attempts = 1;

    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], 0);
    assert_true(near(u->rto, 0.02, 1e-9));
    double rto = u->rto;
    for (unsigned i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        u->down_until = 0; /* pretend its backoff passed, so that it is tried again */
        struct test_req ti = {0};
        assert_int_equal(pool_submit(fx->pool, &ti.r, wire, sizeof(wire), on_test_done), 0);
        assert_int_equal(carrier(fx, &ti.r), 0);
        assert_true(near(ev_timer_remaining(fx->loop, &ti.r.timer), rto, 1e-6));
        run_until(fx->loop, &fx->f[0]->cancels, i + 1);
        assert_int_equal(ti.out.calls, 1);
        assert_int_equal(ti.out.err, -ETIMEDOUT);
        if (!near(u->rto, expect[i], 1e-9))
            fail_msg("after timeout %u: rto %.4f, expected %.4f", i + 1, u->rto, expect[i]);
        rto = u->rto;
    }
    assert_int_equal(u->stats.timeouts, 4);

    /* An answer: the timeout follows the RTT again. */
    u->down_until = 0;
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], 0);
    assert_true(near(u->rto, clamp(u->srtt + 4 * u->rttvar, 0.02, 0.1), 1e-9));
    assert_true(u->rto < 0.1);
}

/* A try on a connection still being set up waits the whole attempt timeout, however
 * short the RTT, gives no RTT sample, and its timeout does not count as silence: the
 * handshake is not the upstream going quiet. */
static void test_fresh_connection_attempt(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = &fx->f[0]->base;
    fx->cfg.attempt_timeout_min_ms = 2;
    u->rto = 0.002; /* as a fast, warm upstream has it */
    fx->f[0]->fresh = true;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    advance(fx->loop, 0.010); /* past rto, within attempt-timeout (20 ms) */
    assert_int_equal(fx->f[0]->cancels, 0);
    assert_int_equal(carrier(fx, &t.r), 0);
    fake_finish(fx->f[0], 0);
    assert_int_equal(t.out.err, 0);
    assert_true(u->srtt == 0); /* the handshake's time is no RTT */

    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    run_until(fx->loop, &fx->f[0]->cancels, 1);
    assert_int_equal(u->stats.timeouts, 1);
    assert_true(u->down_until == 0); /* not silent: one failure of three */
    assert_int_equal(u->failures, 1);
    pool_cancel(&t2.r);
}

/* A timeout on an upstream that has answered nothing since the attempt left: it is
 * silent, and is taken out of service at once rather than after three timeouts. */
static void test_silent_timeout_marks_down(void **state)
{
    struct fixture *fx = *state;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    run_until(fx->loop, &fx->f[0]->cancels, 1);
    assert_int_equal(fx->f[0]->base.stats.timeouts, 1);
    assert_int_equal(fx->f[0]->base.failures, 1);
    assert_true(fx->f[0]->base.down_until > ev_now(fx->loop));
    assert_true(fx->f[0]->base.backoff == 1.0);
    assert_int_equal(carrier(fx, &t.r), 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);

    /* The next query goes straight to the next upstream, without waiting on the first. */
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t2.r), 1);
    assert_int_equal(fx->f[0]->sends, 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t2.out.calls, 1);

    /* The same when it had answered before, but not since the attempt left. */
    fx->f[0]->base.down_until = 0;
    fx->f[0]->base.backoff = 0;
    fx->f[0]->base.failures = 0;
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], 0);
    advance(fx->loop, 0.002);
    struct test_req t4 = {0};
    assert_int_equal(pool_submit(fx->pool, &t4.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t4.r), 0);
    run_until(fx->loop, &fx->f[0]->cancels, 2);
    assert_true(fx->f[0]->base.down_until > ev_now(fx->loop));
    pool_cancel(&t4.r);
}

/* A timeout while the upstream answers other queries is a slow name, not a dead upstream:
 * it counts as one failure, and the upstream stays in service. */
static void test_timeout_while_answering_not_down(void **state)
{
    struct fixture *fx = *state;
    struct test_req t1 = {0}, t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t1.r, wire, sizeof(wire), on_test_done), 0);
    advance(fx->loop, 0.002);
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fake_carried(fx->f[0]), 2);
    advance(fx->loop, 0.002);
    fake_finish_attempt(fx->f[0], &t2.r.attempt, 0);
    assert_int_equal(t2.out.calls, 1);
    assert_true(fx->f[0]->base.last_answer > t1.r.sent_at);

    run_until(fx->loop, &fx->f[0]->cancels, 1);
    assert_int_equal(fx->f[0]->base.stats.timeouts, 1);
    assert_int_equal(fx->f[0]->base.failures, 1);
    assert_true(fx->f[0]->base.down_until == 0);
    assert_int_equal(carrier(fx, &t1.r), 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t1.out.calls, 1);
    assert_int_equal(t1.out.err, 0);

    /* Still first in line. */
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t3.r), 0);
    assert_int_equal(fx->f[0]->sends, 3);
    pool_cancel(&t3.r);
}

/* GOAWAY or REFUSED_STREAM: the server did not process the query. It is retried, and
 * counts as an ordinary failure: a server that restarts now and then stays in service,
 * one that sends GOAWAY on every connection is set aside after three in a row. */
static void test_goaway_retried_and_counted(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = &fx->f[0]->base;

    /* With no other upstream to take it, it goes to the same one again (on a new
     * connection), without spending an attempt, and the answer there counts. */
    fx->f[1]->send_result = -ENOBUFS;
    fx->f[2]->send_result = -ENOBUFS;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], -ECONNABORTED);
    assert_int_equal(t.out.calls, 0);
    assert_int_equal(carrier(fx, &t.r), 0);
    assert_int_equal(fx->f[0]->sends, 2);
    fake_finish(fx->f[0], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
    assert_int_equal(u->failures, 0);

    /* Otherwise the next upstream takes it; two in a row leave the first in service... */
    fx->f[1]->send_result = 0;
    fx->f[2]->send_result = 0;
    for (int i = 0; i < 3; i++) {
        struct test_req g = {0};
        assert_int_equal(pool_submit(fx->pool, &g.r, wire, sizeof(wire), on_test_done), 0);
        assert_int_equal(carrier(fx, &g.r), 0);
        fake_finish(fx->f[0], -ECONNABORTED);
        assert_int_equal(g.out.calls, 0);
        assert_int_equal(carrier(fx, &g.r), 1);
        fake_finish(fx->f[1], 0);
        assert_int_equal(g.out.calls, 1);
        assert_int_equal(g.out.err, 0);
        if (i < 2)
            assert_true(u->down_until == 0);
    }
    /* ...and the third sets it aside: the next query goes straight to the second. */
    assert_int_equal(u->failures, 3);
    assert_true(u->down_until > 0);
    assert_int_equal(u->stats.failed[UPSTREAM_FAIL_GOAWAY], 4);
    struct test_req next = {0};
    assert_int_equal(pool_submit(fx->pool, &next.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &next.r), 1);
    pool_cancel(&next.r);
}

static void assert_not_charged(const struct upstream *u)
{
    assert_int_equal(u->failures, 0);
    assert_int_equal(u->failure_events, 0);
    assert_true(u->down_until == 0);
    assert_int_equal(u->stats.failures, 0);
    assert_int_equal(u->stats.queries, 0);
    for (int k = 0; k < UPSTREAM_FAIL_KINDS; k++)
        assert_int_equal(u->stats.failed[k], 0);
}

/* send() -EAGAIN: no address yet, or the connect-rate bound. The upstream is skipped for
 * that query, without spending an attempt and without being charged. */
static void test_send_eagain_skips_without_spending(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.max_attempts = 1;
    fx->f[0]->send_result = -EAGAIN;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(fx->f[0]->sends, 1);
    assert_int_equal(carrier(fx, &t.r), 1); /* the one attempt is still there to spend */
    assert_int_equal(t.r.attempts, 1);
    fake_finish(fx->f[1], 0);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, 0);
    assert_not_charged(&fx->f[0]->base);

    /* Not charged, so offered the next query again. */
    fx->f[0]->send_result = 0;
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t2.r), 0);
    fake_finish(fx->f[0], 0);
    assert_int_equal(t2.out.err, 0);

    /* None has an address: the query cannot be sent now, and nobody is charged. */
    for (int i = 0; i < 3; i++) {
        fx->f[i]->send_result = -EAGAIN;
        memset(&fx->f[i]->base.stats, 0, sizeof(fx->f[i]->base.stats));
    }
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(t3.out.calls, 0);
    for (int i = 0; i < 3; i++)
        assert_not_charged(&fx->f[i]->base);
}

/* stats.failed counts each transport error by kind; a timeout is counted apart. */
static void test_failed_counters(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u0 = &fx->f[0]->base, *u1 = &fx->f[1]->base, *u2 = &fx->f[2]->base;

    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[0], -EPROTO);
    fake_finish(fx->f[1], -EREMOTEIO);
    fake_finish(fx->f[2], -EBADMSG);
    assert_int_equal(t.out.calls, 1);
    assert_int_equal(t.out.err, -EBADMSG);

    fx->f[0]->send_result = -ECONNREFUSED; /* refused by send itself */
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[1], -EMEDIUMTYPE);
    fake_finish(fx->f[2], -ECONNRESET);
    assert_int_equal(t2.out.calls, 1);
    assert_int_equal(t2.out.err, -ECONNRESET);

    /* The first is down now: f1 times out, f2 says GOAWAY, its third failure in a row,
     * so every upstream is down and the query ends there. */
    struct test_req t3 = {0};
    assert_int_equal(pool_submit(fx->pool, &t3.r, wire, sizeof(wire), on_test_done), 0);
    assert_int_equal(carrier(fx, &t3.r), 1);
    run_until(fx->loop, &fx->f[1]->cancels, 1);
    fake_finish(fx->f[2], -ECONNABORTED);
    assert_int_equal(t3.out.calls, 1);
    assert_int_equal(t3.out.err, -ECONNABORTED);
    assert_true(u2->down_until > 0);

    assert_int_equal(u0->stats.failed[UPSTREAM_FAIL_TLS], 1);
    assert_int_equal(u0->stats.failed[UPSTREAM_FAIL_CONNECT], 1);
    assert_int_equal(u0->stats.failures, 2);
    assert_int_equal(u0->stats.queries, 1);
    assert_int_equal(u1->stats.failed[UPSTREAM_FAIL_HTTP], 2);
    assert_int_equal(u1->stats.failures, 2);
    assert_int_equal(u1->stats.timeouts, 1);
    assert_int_equal(u1->stats.queries, 3);
    assert_int_equal(u2->stats.failed[UPSTREAM_FAIL_ANSWER], 1);
    assert_int_equal(u2->stats.failed[UPSTREAM_FAIL_CLOSED], 1);
    assert_int_equal(u2->stats.failed[UPSTREAM_FAIL_GOAWAY], 1);
    assert_int_equal(u2->stats.failed[UPSTREAM_FAIL_OTHER], 0);
    assert_int_equal(u2->stats.failures, 3);
    assert_int_equal(u2->stats.timeouts, 0);
    assert_int_equal(u2->stats.queries, 3);
    /* Every failure is counted under exactly one kind. */
    for (int i = 0; i < 3; i++) {
        uint64_t sum = 0;
        for (int k = 0; k < UPSTREAM_FAIL_KINDS; k++)
            sum += fx->f[i]->base.stats.failed[k];
        assert_int_equal(sum, fx->f[i]->base.stats.failures);
    }
}

/* Run pool_log_stats at level with stderr in a file; returns what it wrote. */
static char *capture_log_stats(const struct pool *p, int level, char *buf, size_t size)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    pool_log_stats(p, level);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_log_stats(void **state)
{
    struct fixture *fx = *state;
    char text[4096];
    fx->f[0]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), 0);
    fake_finish(fx->f[1], 0);

    capture_log_stats(fx->pool, LOG_NOTICE, text, sizeof(text));
    assert_non_null(strstr(text, "upstream tls://192.0.2.1: state=down queries=0 answers=0 "
                                 "failures=1 timeouts=0"));
    assert_non_null(strstr(text, "upstream tls://192.0.2.2: state=up queries=1 answers=1 "
                                 "failures=0 timeouts=0"));
    assert_non_null(strstr(text, "upstream tls://192.0.2.3: state=up queries=0"));
    assert_non_null(strstr(text, "connect=1 tls=0 closed=0 answer=0 http=0 goaway=0 other=0"));
    unsigned lines = 0;
    for (const char *c = text; *c != '\0'; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 3);

    /* Below the log level: nothing. */
    assert_true(log_get_level() < LOG_DEBUG);
    capture_log_stats(fx->pool, LOG_DEBUG, text, sizeof(text));
    assert_string_equal(text, "");
}

/* A pool without upstreams takes nothing, and says so at once. */
static void test_empty_pool(void **state)
{
    struct fixture *fx = *state;
    char text[256];
    struct pool *p = pool_new(fx->loop, &fx->cfg);
    assert_non_null(p);
    assert_int_equal(pool_count(p), 0);
    assert_null(pool_upstream(p, 0));
    struct test_req t = {0};
    assert_int_equal(pool_submit(p, &t.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(t.out.calls, 0);
    capture_log_stats(p, LOG_NOTICE, text, sizeof(text));
    assert_string_equal(text, "");
    pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_healthy_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_moves_to_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_marks_down_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_doubles_and_success_restores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_moves_to_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_down_fails_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_upstream_retried_after_broken_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_withdraws_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_upstream_not_charged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_event_one_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_answer_not_connect_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_down_probe_once_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_down_probe_brings_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_robin_spreads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fastest_picks_lowest_srtt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fastest_tries_unmeasured_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rtt_smoothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rto_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_doubles_rto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_timeout_marks_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_while_answering_not_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_goaway_retried_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_connection_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_eagain_skips_without_spending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_pool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
