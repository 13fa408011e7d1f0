/* Unit tests for the upstream pool: failover order, retries on failure and on timeout,
 * the attempt bound, backoff of a failing upstream, and recovery. The upstreams are fakes
 * whose sends and answers the test scripts; time is libev's, advanced by running the
 * loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsward/config.h"
#include "dnsward/pool.h"
#include "dnsward/util.h"

struct fake {
    struct upstream base;
    int send_result; /* what send returns */
    unsigned sends;
    unsigned cancels;
    struct attempt *carrying;
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
    f->carrying = a;
    return 0;
}

static void fake_cancel(struct upstream *u, struct attempt *a)
{
    struct fake *f = container_of(u, struct fake, base);
    assert_ptr_equal(f->carrying, a);
    f->carrying = NULL;
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

static struct fake *fake_new(int i)
{
    struct fake *f = test_calloc(1, sizeof(*f));
    f->base.ops = &fake_ops;
    f->base.spec = &specs[i];
    snprintf(specs[i].url, sizeof(specs[i].url), "tls://192.0.2.%d", i + 1);
    return f;
}

/* Finish the attempt that f carries, with err (an answer when err is 0). */
static void fake_finish(struct fake *f, int err)
{
    struct attempt *a = f->carrying;
    assert_non_null(a);
    f->carrying = NULL;
    static const uint8_t answer[12] = {0};
    struct dns_answer ans = {0};
    a->on_done(a, err, err ? NULL : answer, err ? 0 : sizeof(answer), err ? NULL : &ans);
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
        fx->f[i] = fake_new(i);
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

static void test_all_down_fails_at_once(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < 3; i++)
        fx->f[i]->send_result = -ECONNREFUSED;
    struct test_req t = {0};
    assert_int_equal(pool_submit(fx->pool, &t.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    assert_int_equal(t.out.calls, 0);
    /* Everything is down now: the next query is refused without any connection. */
    struct test_req t2 = {0};
    assert_int_equal(pool_submit(fx->pool, &t2.r, wire, sizeof(wire), on_test_done), -EAGAIN);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->f[i]->sends, 1);
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
    assert_null(fx->f[0]->carrying);
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
    struct attempt *carried[N];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < N; i++) {
        assert_int_equal(pool_submit(fx->pool, &t[i].r, wire, sizeof(wire), on_test_done), 0);
        carried[i] = fx->f[0]->carrying;
    }
    for (int i = 0; i < N; i++) {
        fx->f[0]->carrying = carried[i];
        fake_finish(fx->f[0], -ECONNRESET);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
