/* Unit tests for the bootstrap resolver: fake bootstrap servers on 127.0.0.1 UDP sockets,
 * driven by the same event loop as the resolver, answer as each test tells them: right
 * (A and AAAA with a chosen TTL), with a wrong ID or a wrong question before the right
 * answer, NXDOMAIN, SERVFAIL, TC=1, A only, or not at all. Covered: addresses in the
 * order A then AAAA with the upstream's port, the next server on silence, refusal, TC and
 * SERVFAIL, forged answers ignored, NXDOMAIN failing the resolution, old addresses kept,
 * the retry backoff, the lower TTL bound, settling, the watch limits and freeing mid-way.
 * Every fake server checks that it is asked only for the watched names.
 *
 * Answers from another source address cannot be tested: the resolver's socket is
 * connect()ed to the server, so the kernel drops them before the resolver sees them. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
#include <cmocka.h>

#include "dnsward/bootstrap.h"
#include "dnsward/config.h"
#include "dnsward/dns.h"
#include "dnsward/upstream.h"
#include "dnsward/util.h"

static const double WATCHDOG_S = 10.0;

/* --- the fake bootstrap servers ----------------------------------------------------- */

enum fake_mode {
    FAKE_ANSWER,         /* the right answer */
    FAKE_SILENT,         /* reads, counts, never answers */
    FAKE_WRONG_ID,       /* a forged answer with another ID, then the right one */
    FAKE_WRONG_QUESTION, /* a forged answer to another name with the right ID, then the right one */
    FAKE_NXDOMAIN,
    FAKE_SERVFAIL,
    FAKE_TC,     /* TC=1 and no records */
    FAKE_A_ONLY, /* answers A queries, ignores AAAA */
};

enum {
    FAKE_MAX_NAMES = 2,
    FAKE_MAX_QUERIES = 64,
};

struct fake {
    int fd;
    struct sockaddr_in addr;
    ev_io io;
    enum fake_mode mode;
    uint32_t ttl;
    unsigned na, naaaa;                /* addresses in a right answer */
    const char *names[FAKE_MAX_NAMES]; /* the only names it may be asked for */
    const char *nx_name;               /* answered NXDOMAIN whatever the mode */
    unsigned queries;
    unsigned qa, qaaaa;
    unsigned foreign;  /* queries for another name, type or class, or not valid queries */
    unsigned bad_form; /* queries without RD or EDNS */
    double when[FAKE_MAX_QUERIES];
    uint16_t ids[FAKE_MAX_QUERIES];
};

/* The address of a right answer: 192.0.2.(1+i), 2001:db8::(1+i). A forged answer carries
 * 203.0.113.66 and 2001:db8::666, which must never be taken. */
static void good_addr(uint16_t qtype, unsigned i, uint8_t out[16])
{
    memset(out, 0, 16);
    if (qtype == DNS_TYPE_A) {
        out[0] = 192;
        out[1] = 0;
        out[2] = 2;
        out[3] = (uint8_t)(1 + i);
    } else {
        out[0] = 0x20;
        out[1] = 0x01;
        out[2] = 0x0d;
        out[3] = 0xb8;
        out[15] = (uint8_t)(1 + i);
    }
}

static void bad_addr(uint16_t qtype, uint8_t out[16])
{
    memset(out, 0, 16);
    if (qtype == DNS_TYPE_A) {
        out[0] = 203;
        out[1] = 0;
        out[2] = 113;
        out[3] = 66;
    } else {
        out[0] = 0x20;
        out[1] = 0x01;
        out[2] = 0x0d;
        out[3] = 0xb8;
        out[14] = 0x06;
        out[15] = 0x66;
    }
}

/* An answer to the query (q, *pq): its question (spelled as sent), flags QR RD RA and
 * those given, nrec records of qtype owned by the question's name, and an OPT record. */
static size_t fake_answer(const uint8_t *q, const struct dns_query *pq, uint16_t id, uint16_t flags,
                          unsigned nrec, bool forged, uint32_t ttl, uint8_t *out)
{
    size_t n = pq->question_end;
    memcpy(out, q, n);
    dns_put16(out, id);
    dns_put16(out + 2, (uint16_t)(DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | flags));
    dns_put16(out + 4, 1);
    dns_put16(out + 6, (uint16_t)nrec);
    dns_put16(out + 8, 0);
    dns_put16(out + 10, 1);
    size_t rdlen = pq->qtype == DNS_TYPE_A ? 4 : 16;
    for (unsigned i = 0; i < nrec; i++) {
        uint8_t addr[16];
        if (forged)
            bad_addr(pq->qtype, addr);
        else
            good_addr(pq->qtype, i, addr);
        dns_put16(out + n, 0xc000 | DNS_HEADER_LEN);
        dns_put16(out + n + 2, pq->qtype);
        dns_put16(out + n + 4, 1);
        dns_put32(out + n + 6, ttl);
        dns_put16(out + n + 10, (uint16_t)rdlen);
        memcpy(out + n + 12, addr, rdlen);
        n += 12 + rdlen;
    }
    /* OPT: root, 1232, version 0. */
    static const uint8_t opt[11] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    memcpy(out + n, opt, sizeof(opt));
    return n + sizeof(opt);
}

/* Is the query's name one of the names the fake may be asked for? */
static bool fake_name_is(const uint8_t *q, const struct dns_query *pq, const char *name)
{
    uint8_t probe[512];
    int n = dns_build_query(name, pq->qtype, 0, 0, probe, sizeof(probe));
    assert_true(n > 0);
    return dns_question_equal(q, pq->question_end, probe, (size_t)n);
}

static void fake_send(struct fake *f, const uint8_t *msg, size_t len, const struct sockaddr *to,
                      socklen_t tolen)
{
    ssize_t n = sendto(f->fd, msg, len, 0, to, tolen);
    assert_int_equal(n, (ssize_t)len);
}

static void on_fake_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct fake *f = container_of(w, struct fake, io);
    for (;;) {
        uint8_t q[2048];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(f->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return;
        }
        struct dns_query pq;
        if (dns_query_parse(q, (size_t)n, &pq) != 0 || pq.qclass != 1 ||
            (pq.qtype != DNS_TYPE_A && pq.qtype != DNS_TYPE_AAAA)) {
            f->foreign++;
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < FAKE_MAX_NAMES; i++)
            if (f->names[i] != NULL && fake_name_is(q, &pq, f->names[i]))
                known = true;
        if (!known) {
            f->foreign++;
            continue;
        }
        if (!(pq.flags & DNS_FLAG_RD) || !pq.has_edns)
            f->bad_form++;
        if (f->queries < FAKE_MAX_QUERIES) {
            f->when[f->queries] = ev_time();
            f->ids[f->queries] = pq.id;
        }
        f->queries++;
        if (pq.qtype == DNS_TYPE_A)
            f->qa++;
        else
            f->qaaaa++;

        const struct sockaddr *to = (const struct sockaddr *)&from;
        uint8_t out[2048];
        size_t len;
        unsigned nrec = pq.qtype == DNS_TYPE_A ? f->na : f->naaaa;
        if (f->nx_name != NULL && fake_name_is(q, &pq, f->nx_name)) {
            len = fake_answer(q, &pq, pq.id, DNS_RCODE_NXDOMAIN, 0, false, 0, out);
            fake_send(f, out, len, to, fromlen);
            continue;
        }
        switch (f->mode) {
        case FAKE_SILENT:
            continue;
        case FAKE_A_ONLY:
            if (pq.qtype != DNS_TYPE_A)
                continue;
            break;
        case FAKE_WRONG_ID:
            len = fake_answer(q, &pq, (uint16_t)(pq.id ^ 0x5a5a), 0, nrec, true, f->ttl, out);
            fake_send(f, out, len, to, fromlen);
            break;
        case FAKE_WRONG_QUESTION:
            len = fake_answer(q, &pq, pq.id, 0, nrec, true, f->ttl, out);
            out[DNS_HEADER_LEN + 1] ^= 0x01; /* "dns" becomes "ens" */
            fake_send(f, out, len, to, fromlen);
            break;
        case FAKE_NXDOMAIN:
            len = fake_answer(q, &pq, pq.id, DNS_RCODE_NXDOMAIN, 0, false, 0, out);
            fake_send(f, out, len, to, fromlen);
            continue;
        case FAKE_SERVFAIL:
            len = fake_answer(q, &pq, pq.id, DNS_RCODE_SERVFAIL, 0, false, 0, out);
            fake_send(f, out, len, to, fromlen);
            continue;
        case FAKE_TC:
            len = fake_answer(q, &pq, pq.id, DNS_FLAG_TC, 0, false, 0, out);
            fake_send(f, out, len, to, fromlen);
            continue;
        case FAKE_ANSWER:
            break;
        }
        len = fake_answer(q, &pq, pq.id, 0, nrec, false, f->ttl, out);
        fake_send(f, out, len, to, fromlen);
    }
}

/* --- the bench: one loop, the fakes, a configuration, an upstream, the resolver ------- */

enum { MAX_FAKES = 2 };

struct env {
    struct ev_loop *loop;
    struct fake fake[MAX_FAKES];
    size_t nfake;
    struct config cfg;
    struct upstream_spec spec;
    struct upstream u;
    struct bootstrap *b;
    ev_timer watchdog;
    ev_timer stop; /* run_for's end */
    ev_prepare check;
    bool timed_out;
    bool (*done)(struct env *);
};

static const struct upstream_ops no_ops;

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct env *env = container_of(w, struct env, watchdog);
    env->timed_out = true;
    ev_break(loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void on_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct env *env = container_of(w, struct env, check);
    if (env->done != NULL && env->done(env))
        ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until done(env) holds; a bug that would hang fails on the watchdog. */
static void run_until(struct env *env, bool (*done)(struct env *))
{
    env->done = done;
    env->timed_out = false;
    if (!done(env)) {
        ev_timer_set(&env->watchdog, WATCHDOG_S, 0);
        ev_timer_start(env->loop, &env->watchdog);
        ev_prepare_start(env->loop, &env->check);
        ev_run(env->loop, 0);
        ev_prepare_stop(env->loop, &env->check);
        ev_timer_stop(env->loop, &env->watchdog);
    }
    env->done = NULL;
    assert_false(env->timed_out);
}

/* Run the loop for seconds, whatever happens. */
static void run_for(struct env *env, double seconds)
{
    ev_timer_set(&env->stop, seconds, 0);
    ev_timer_start(env->loop, &env->stop);
    ev_run(env->loop, 0);
    ev_timer_stop(env->loop, &env->stop);
}

static void fake_open(struct env *env, enum fake_mode mode)
{
    assert_true(env->nfake < MAX_FAKES);
    struct fake *f = &env->fake[env->nfake++];
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->ttl = 300;
    f->na = 2;
    f->naaaa = 1;
    f->names[0] = "dns.test";
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    f->addr.sin_family = AF_INET;
    f->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
    socklen_t len = sizeof(f->addr);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&f->addr, &len), 0);
    ev_io_init(&f->io, on_fake_read, f->fd, EV_READ);
    ev_io_start(env->loop, &f->io);
}

/* Add a bootstrap server to the configuration. */
static void add_server(struct env *env, const struct sockaddr_in *addr)
{
    assert_true(env->cfg.nbootstrap < CONFIG_MAX_BOOTSTRAP);
    struct config_listen *l = &env->cfg.bootstrap[env->cfg.nbootstrap++];
    memcpy(&l->addr, addr, sizeof(*addr));
    l->addrlen = sizeof(*addr);
}

static void spec_for(struct upstream_spec *spec, const char *host)
{
    memset(spec, 0, sizeof(*spec));
    spec->proto = UPSTREAM_DOT;
    snprintf(spec->url, sizeof(spec->url), "tls://%s:8443", host);
    snprintf(spec->host, sizeof(spec->host), "%s", host);
    snprintf(spec->tls_name, sizeof(spec->tls_name), "%s", host);
    spec->port = 8443;
}

/* The bench with nfakes fake servers of the given modes, all of them configured as
 * bootstrap servers in that order, and an upstream for dns.test (not yet watched). */
static struct env *env_new(size_t nfakes, const enum fake_mode *modes)
{
    struct env *env = test_calloc(1, sizeof(*env));
    env->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(env->loop);
    ev_timer_init(&env->watchdog, on_watchdog, WATCHDOG_S, 0);
    ev_timer_init(&env->stop, on_stop, 0, 0);
    ev_prepare_init(&env->check, on_check);
    config_init(&env->cfg);
    for (size_t i = 0; i < nfakes; i++) {
        fake_open(env, modes[i]);
        add_server(env, &env->fake[i].addr);
    }
    spec_for(&env->spec, "dns.test");
    upstream_init(&env->u, &no_ops, &env->spec, 0, 0, 1.0);
    env->b = bootstrap_new(env->loop, &env->cfg);
    assert_non_null(env->b);
    return env;
}

static void env_free(struct env *env)
{
    bootstrap_free(env->b);
    for (size_t i = 0; i < env->nfake; i++) {
        struct fake *f = &env->fake[i];
        /* The bootstrap servers are asked for the watched names and nothing else, in
         * queries of the form a resolver sends. */
        assert_int_equal(f->foreign, 0);
        assert_int_equal(f->bad_form, 0);
        ev_io_stop(env->loop, &f->io);
        close(f->fd);
    }
    ev_loop_destroy(env->loop);
    test_free(env);
}

static bool settled(struct env *env)
{
    return bootstrap_settled(env->b);
}

static bool has_addrs(struct env *env)
{
    return env->u.addrs.n > 0;
}

/* The upstream's addresses, as config_format_addr writes them, are want[0..n). */
static void expect_addrs(const struct upstream *u, const char *const *want, size_t n)
{
    assert_int_equal(u->addrs.n, n);
    for (size_t i = 0; i < n; i++) {
        char text[64];
        config_format_addr((const struct sockaddr *)&u->addrs.addr[i], text, sizeof(text));
        assert_string_equal(text, want[i]);
        socklen_t len = u->addrs.addr[i].ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                              : sizeof(struct sockaddr_in6);
        assert_int_equal(u->addrs.len[i], len);
    }
}

static const char *const GOOD3[] = {"192.0.2.1:8443", "192.0.2.2:8443", "[2001:db8::1]:8443"};

/* --- the cases ----------------------------------------------------------------------- */

static void test_resolves_a_then_aaaa(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(1, modes);
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    /* Nothing happens before the loop runs: no address, no query, not settled. */
    assert_false(bootstrap_settled(env->b));
    assert_int_equal(env->u.addrs.n, 0);
    const struct sockaddr *sa;
    socklen_t salen;
    assert_int_equal(upstream_addr(&env->u, &sa, &salen), -EAGAIN);

    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    assert_int_equal(upstream_addr(&env->u, &sa, &salen), 0);
    char text[64];
    config_format_addr(sa, text, sizeof(text));
    assert_string_equal(text, "192.0.2.1:8443");
    /* One A and one AAAA query, with different IDs. */
    assert_int_equal(env->fake[0].queries, 2);
    assert_int_equal(env->fake[0].qa, 1);
    assert_int_equal(env->fake[0].qaaaa, 1);
    assert_int_not_equal(env->fake[0].ids[0], env->fake[0].ids[1]);
    env_free(env);
}

static void test_trailing_dot_host(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(1, modes);
    spec_for(&env->spec, "dns.test.");
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    env_free(env);
}

static void test_more_addresses_than_max(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(1, modes);
    env->fake[0].na = 6;
    env->fake[0].naaaa = 6;
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    static const char *const want[UPSTREAM_MAX_ADDRS] = {
        "192.0.2.1:8443", "192.0.2.2:8443", "192.0.2.3:8443",     "192.0.2.4:8443",
        "192.0.2.5:8443", "192.0.2.6:8443", "[2001:db8::1]:8443", "[2001:db8::2]:8443",
    };
    expect_addrs(&env->u, want, UPSTREAM_MAX_ADDRS);
    env_free(env);
}

static void test_second_server_when_first_silent(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_SILENT, FAKE_ANSWER};
    struct env *env = env_new(2, modes);
    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    double took = ev_time() - t0;
    expect_addrs(&env->u, GOOD3, 3);
    /* The first server had its full timeout, then the second answered. */
    assert_true(took >= BOOTSTRAP_TIMEOUT_MS / 1000.0 * 0.9);
    assert_true(took < BOOTSTRAP_TIMEOUT_MS / 1000.0 + 1.0);
    assert_int_equal(env->fake[0].queries, 2);
    assert_int_equal(env->fake[1].queries, 2);
    env_free(env);
}

static void test_refused_port_next_server_at_once(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(0, modes);
    /* A port where nothing listens: the ICMP error ends the attempt, no timeout needed. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in closed = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&closed, sizeof(closed)), 0);
    socklen_t len = sizeof(closed);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&closed, &len), 0);
    close(fd);
    add_server(env, &closed);
    fake_open(env, FAKE_ANSWER);
    add_server(env, &env->fake[0].addr);

    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    assert_true(ev_time() - t0 < BOOTSTRAP_TIMEOUT_MS / 1000.0 / 2);
    env_free(env);
}

/* A forged answer (of the given mode) comes first and carries other addresses: it is
 * ignored, and the right answer that follows it on the same attempt is taken. */
static void forged_first(enum fake_mode mode)
{
    enum fake_mode modes[] = {mode};
    struct env *env = env_new(1, modes);
    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    /* Taken from the same attempt: no timeout, no second query. */
    assert_true(ev_time() - t0 < BOOTSTRAP_TIMEOUT_MS / 1000.0 / 2);
    assert_int_equal(env->fake[0].queries, 2);
    env_free(env);
}

static void test_wrong_id_ignored(void **state)
{
    (void)state;
    forged_first(FAKE_WRONG_ID);
}

static void test_wrong_question_ignored(void **state)
{
    (void)state;
    forged_first(FAKE_WRONG_QUESTION);
}

/* The first server fails at once (mode), the second answers: no timeout is waited for. */
static void next_server_at_once(enum fake_mode mode)
{
    enum fake_mode modes[] = {mode, FAKE_ANSWER};
    struct env *env = env_new(2, modes);
    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    assert_true(ev_time() - t0 < BOOTSTRAP_TIMEOUT_MS / 1000.0 / 2);
    assert_int_equal(env->fake[0].queries, 2);
    assert_int_equal(env->fake[1].queries, 2);
    env_free(env);
}

static void test_tc_next_server(void **state)
{
    (void)state;
    next_server_at_once(FAKE_TC);
}

static void test_servfail_next_server(void **state)
{
    (void)state;
    next_server_at_once(FAKE_SERVFAIL);
}

static void test_nxdomain_fails_resolution(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_NXDOMAIN, FAKE_ANSWER};
    struct env *env = env_new(2, modes);
    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    /* The name does not exist: the resolution fails at once, without asking the second
     * server, and settles with no address. */
    assert_true(ev_time() - t0 < BOOTSTRAP_TIMEOUT_MS / 1000.0 / 2);
    assert_int_equal(env->u.addrs.n, 0);
    assert_int_equal(env->fake[0].queries, 2);
    assert_int_equal(env->fake[1].queries, 0);
    env_free(env);
}

static void test_failure_keeps_old_addresses(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_NXDOMAIN};
    struct env *env = env_new(1, modes);
    /* Addresses from an earlier resolution. */
    struct sockaddr_storage old;
    memset(&old, 0, sizeof(old));
    struct sockaddr_in *sin = (struct sockaddr_in *)&old;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(8443);
    sin->sin_addr.s_addr = inet_addr("198.51.100.1");
    socklen_t oldlen = sizeof(*sin);
    upstream_set_addrs(&env->u, &old, &oldlen, 1);
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    static const char *const want[] = {"198.51.100.1:8443"};
    expect_addrs(&env->u, want, 1);
    env_free(env);
}

static bool six_queries(struct env *env)
{
    return env->fake[0].queries >= 6;
}

static void test_retry_backoff_doubles(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_NXDOMAIN};
    struct env *env = env_new(1, modes);
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, six_queries);
    /* Three resolutions of two queries each: retried after 1 s, then after 2 s. */
    const double *when = env->fake[0].when;
    double gap1 = when[2] - when[0];
    double gap2 = when[4] - when[2];
    assert_true(gap1 >= 0.9 && gap1 < 1.6);
    assert_true(gap2 >= 1.9 && gap2 < 2.6);
    /* Each attempt has IDs of its own. */
    assert_true(env->fake[0].ids[0] != env->fake[0].ids[2] ||
                env->fake[0].ids[2] != env->fake[0].ids[4]);
    /* Now the name exists: the next retry finds it. */
    env->fake[0].mode = FAKE_ANSWER;
    env->fake[0].nx_name = NULL;
    run_until(env, has_addrs);
    expect_addrs(&env->u, GOOD3, 3);
    env_free(env);
}

static void test_silent_two_rounds_then_retry(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_SILENT};
    struct env *env = env_new(1, modes);
    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    double failed_at = ev_time();
    /* Two rounds of one server, a timeout each, then the first resolution has failed. */
    double took = failed_at - t0;
    double timeout = BOOTSTRAP_TIMEOUT_MS / 1000.0;
    assert_true(took >= 2 * timeout * 0.9 && took < 2 * timeout + 1.0);
    assert_int_equal(env->fake[0].queries, 4);
    assert_int_equal(env->u.addrs.n, 0);
    /* The server comes back: the retry, 1 s later, finds the addresses. */
    env->fake[0].mode = FAKE_ANSWER;
    run_until(env, has_addrs);
    double waited = ev_time() - failed_at;
    assert_true(waited >= 0.9 && waited < 1.6);
    expect_addrs(&env->u, GOOD3, 3);
    env_free(env);
}

static void test_a_only_taken_at_timeout(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_A_ONLY};
    struct env *env = env_new(1, modes);
    double t0 = ev_time();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    /* The AAAA query was dropped: at the timeout the A addresses are used. */
    assert_true(ev_time() - t0 >= BOOTSTRAP_TIMEOUT_MS / 1000.0 * 0.9);
    static const char *const want[] = {"192.0.2.1:8443", "192.0.2.2:8443"};
    expect_addrs(&env->u, want, 2);
    assert_int_equal(env->fake[0].queries, 2);
    env_free(env);
}

static void test_ttl_below_minimum_not_reresolved(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(1, modes);
    env->fake[0].ttl = 1;
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    /* A TTL of 1 s is raised to BOOTSTRAP_MIN_TTL: nothing is asked a second later. */
    run_for(env, 1.5);
    assert_int_equal(env->fake[0].queries, 2);
    env_free(env);
}

static void test_settled_with_two_upstreams(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(1, modes);
    env->fake[0].names[1] = "gone.test";
    env->fake[0].nx_name = "gone.test";
    struct upstream_spec gone_spec;
    spec_for(&gone_spec, "gone.test");
    struct upstream gone;
    upstream_init(&gone, &no_ops, &gone_spec, 0, 0, 1.0);
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    assert_int_equal(bootstrap_watch(env->b, &gone), 0);
    assert_false(bootstrap_settled(env->b));
    /* Settled when one has addresses and the other has failed its first resolution. */
    run_until(env, settled);
    expect_addrs(&env->u, GOOD3, 3);
    assert_int_equal(gone.addrs.n, 0);
    assert_int_equal(env->fake[0].queries, 4);
    env_free(env);
}

static void test_no_server_settles_failed(void **state)
{
    (void)state;
    struct env *env = env_new(0, NULL);
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, settled);
    assert_int_equal(env->u.addrs.n, 0);
    env_free(env);
}

static void test_watch_errors(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_ANSWER};
    struct env *env = env_new(1, modes);
    /* An upstream with an address needs no resolution. */
    struct upstream_spec ip_spec;
    spec_for(&ip_spec, "192.0.2.9");
    struct sockaddr_in *sin = (struct sockaddr_in *)&ip_spec.addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(853);
    sin->sin_addr.s_addr = inet_addr("192.0.2.9");
    ip_spec.addrlen = sizeof(*sin);
    struct upstream ip;
    upstream_init(&ip, &no_ops, &ip_spec, 0, 0, 1.0);
    assert_int_equal(bootstrap_watch(env->b, &ip), -EINVAL);
    /* A host name no query can carry. */
    struct upstream_spec bad_spec;
    spec_for(&bad_spec, "a..test");
    struct upstream bad;
    upstream_init(&bad, &no_ops, &bad_spec, 0, 0, 1.0);
    assert_int_equal(bootstrap_watch(env->b, &bad), -EINVAL);
    /* CONFIG_MAX_UPSTREAMS watches, and no more. */
    for (size_t i = 0; i < CONFIG_MAX_UPSTREAMS; i++)
        assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    assert_int_equal(bootstrap_watch(env->b, &env->u), -ENOSPC);
    /* Freed before the loop ever ran: the pending starts go with it. */
    env_free(env);
}

/* Open file descriptors of this process. */
static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    size_t n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static bool one_query(struct env *env)
{
    return env->fake[0].queries >= 1;
}

static void test_free_while_asking(void **state)
{
    (void)state;
    enum fake_mode modes[] = {FAKE_SILENT};
    struct env *env = env_new(1, modes);
    size_t fds = count_fds();
    assert_int_equal(bootstrap_watch(env->b, &env->u), 0);
    run_until(env, one_query);
    assert_int_equal(count_fds(), fds + 1); /* the attempt's socket */
    bootstrap_free(env->b);
    env->b = NULL;
    assert_int_equal(count_fds(), fds);
    /* No watcher of the freed resolver is left in the loop (ASan would see it run). */
    run_for(env, 0.2);
    assert_int_equal(env->u.addrs.n, 0);
    env_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolves_a_then_aaaa),
        cmocka_unit_test(test_trailing_dot_host),
        cmocka_unit_test(test_more_addresses_than_max),
        cmocka_unit_test(test_second_server_when_first_silent),
        cmocka_unit_test(test_refused_port_next_server_at_once),
        cmocka_unit_test(test_wrong_id_ignored),
        cmocka_unit_test(test_wrong_question_ignored),
        cmocka_unit_test(test_tc_next_server),
        cmocka_unit_test(test_servfail_next_server),
        cmocka_unit_test(test_nxdomain_fails_resolution),
        cmocka_unit_test(test_failure_keeps_old_addresses),
        cmocka_unit_test(test_retry_backoff_doubles),
        cmocka_unit_test(test_silent_two_rounds_then_retry),
        cmocka_unit_test(test_a_only_taken_at_timeout),
        cmocka_unit_test(test_ttl_below_minimum_not_reresolved),
        cmocka_unit_test(test_settled_with_two_upstreams),
        cmocka_unit_test(test_no_server_settles_failed),
        cmocka_unit_test(test_watch_errors),
        cmocka_unit_test(test_free_while_asking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
