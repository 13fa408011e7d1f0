/* Unit tests for the proxy core's access list and its padding of answers.
 *
 * Access list: a client outside cfg->allow, or whose address the frontend did not give,
 * gets REFUSED for whatever query it sent (the question echoed when it is valid), and
 * nothing of it reaches the cache or an upstream; a response (QR=1) is dropped whoever
 * sent it. Padding (RFC 8467 §4.1): an encrypted client whose query carried an EDNS
 * Padding option (RFC 7830) gets every answer padded to a multiple of 468 bytes, from an
 * upstream, from the cache, or an error; a plain client, or a query without the option,
 * gets the answer as it is; two clients waiting on one flight each get their own form.
 *
 * The core runs over a real pool with one fake upstream whose carried attempts the test
 * answers by hand, as a transport would from its read callback; the loop is then run
 * once without waiting, so that anything the core deferred happens before the checks.
 * Each client's answers go to a sink of its own (the client's conn), so that the form one
 * waiter got cannot be mistaken for another's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/acl.h"
#include "dnsward/cache.h"
#include "dnsward/config.h"
#include "dnsward/dns.h"
#include "dnsward/pool.h"
#include "dnsward/proxy.h"
#include "dnsward/querylog.h"
#include "dnsward/upstream.h"
#include "dnsward/util.h"

/* ---- a fake upstream ---- */

struct fake {
    struct upstream base;
    unsigned sends;
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
    TAILQ_INSERT_TAIL(&f->carried, a, entry);
    return 0;
}

static void fake_cancel(struct upstream *u, struct attempt *a)
{
    struct fake *f = container_of(u, struct fake, base);
    TAILQ_REMOVE(&f->carried, a, entry);
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

static unsigned fake_carried(const struct fake *f)
{
    const struct attempt *a;
    unsigned n = 0;
    TAILQ_FOREACH(a, &f->carried, entry) {
        n++;
    }
    return n;
}

/* ---- clients and what they receive ---- */

/* Every answer one client received; the last one's bytes. */
struct sink {
    unsigned calls;
    struct query *q; /* the query the last answer was for (freed since) */
    size_t len;
    uint8_t msg[DNS_MAX_MSG];
};

static void on_answer(struct query *q, const uint8_t *msg, size_t len)
{
    struct sink *s = q->client.conn;
    assert_true(len <= sizeof(s->msg));
    s->calls++;
    s->q = q;
    s->len = len;
    memcpy(s->msg, msg, len);
}

static const struct proxy_client_ops client_ops = {.answer = on_answer};

/* A client at the IPv4 address ip (NULL: the frontend gave no address), answered into
 * sink. */
static struct proxy_client client_v4(const char *ip, bool encrypted, struct sink *sink)
{
    struct proxy_client c = {.ops = &client_ops, .conn = sink, .encrypted = encrypted};
    if (ip != NULL) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&c.peer;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(40000);
        assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
        c.peerlen = sizeof(*sin);
    }
    return c;
}

/* ---- messages ---- */

enum {
    EDNS_SIZE = 1232,
    OPT_LEN = 11,  /* an OPT record without options: root, type, class, TTL, RDLENGTH */
    A_RR_LEN = 16, /* an A record whose owner is a compression pointer */
};

/* Write a client's query for name, type A, with ID id into b: with an OPT record of EDNS
 * version version when edns, carrying an empty Padding option (RFC 7830 §3) when pad.
 * Returns its length. */
static size_t build_query(uint8_t *b, size_t cap, uint16_t id, const char *name, bool edns,
                          bool pad, uint8_t version)
{
    int n = dns_build_query(name, DNS_TYPE_A, id, edns ? EDNS_SIZE : 0, b, cap);
    assert_true(n > 0);
    if (edns)
        b[n - OPT_LEN + 6] = version; /* TTL: extended RCODE, then the version */
    if (pad) {
        assert_true(edns && (size_t)n + 4 <= cap);
        dns_put16(b + n - 2, 4); /* the OPT record's RDLENGTH */
        dns_put16(b + n, DNS_OPT_PADDING);
        dns_put16(b + n + 2, 0);
        n += 4;
    }
    return (size_t)n;
}

/* The length of the unpadded answer to query (one A record): header and question, the
 * record, and an OPT record without options if the query had one. */
static size_t plain_answer_len(const uint8_t *query, size_t len)
{
    struct dns_query dq;
    assert_int_equal(dns_query_parse(query, len, &dq), 0);
    return dq.question_end + A_RR_LEN + (dq.has_edns ? OPT_LEN : 0);
}

/* The length of the Padding option in the OPT record of msg, an answer with one question
 * whose OPT record is its last record; -1 if it has no OPT record or no Padding option. */
static int padding_len(const uint8_t *msg, size_t len)
{
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(msg, len, &a), 0);
    if (!a.has_edns)
        return -1;
    size_t opt = a.records_end;
    assert_true(opt + OPT_LEN <= len);
    assert_int_equal(msg[opt], 0);
    assert_int_equal(dns_get16(msg + opt + 1), DNS_TYPE_OPT);
    size_t off = opt + OPT_LEN, end = off + dns_get16(msg + opt + 9);
    assert_int_equal(end, len);
    while (off + 4 <= end) {
        uint16_t code = dns_get16(msg + off), olen = dns_get16(msg + off + 2);
        if (code == DNS_OPT_PADDING)
            return olen;
        off += 4 + (size_t)olen;
    }
    return -1;
}

/* msg is padded for an encrypted client: a multiple of 468 bytes that still parses, its
 * OPT record carrying a Padding option. */
static void assert_padded(const uint8_t *msg, size_t len)
{
    assert_true(len > 0);
    assert_int_equal(len % DNS_PAD_RESPONSE, 0);
    assert_true(padding_len(msg, len) >= 0);
}

/* msg is exactly the unpadded form of want bytes, without a Padding option. */
static void assert_unpadded(const uint8_t *msg, size_t len, size_t want)
{
    assert_int_equal(len, want);
    assert_int_equal(padding_len(msg, len), -1);
}

/* msg answers the query (query, qlen): its ID, QR=1, the RCODE rcode in the header (the
 * low four bits) and the question echoed. */
static void assert_answers(const uint8_t *msg, size_t len, const uint8_t *query, size_t qlen,
                           int rcode)
{
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(msg, len, &a), 0);
    assert_int_equal(a.id, dns_get16(query));
    assert_int_equal(a.rcode, rcode);
    assert_true(dns_question_equal(msg, len, query, qlen));
}

/* The last octet of the one A record of msg (192.0.2.X), which ends the answer section. */
static uint8_t answer_addr(const uint8_t *msg, size_t len)
{
    struct dns_answer a;
    assert_int_equal(dns_answer_parse(msg, len, &a), 0);
    assert_int_equal(a.ancount, 1);
    const uint8_t *rdata = msg + a.records_end - 4;
    assert_int_equal(dns_get16(rdata - 2), 4);
    assert_int_equal(rdata[0], 192);
    assert_int_equal(rdata[1], 0);
    assert_int_equal(rdata[2], 2);
    return rdata[3];
}

/* ---- the fixture ---- */

struct fixture {
    struct ev_loop *loop;
    struct config *cfg;
    struct pool *pool;
    struct fake *f;
    struct proxy *p;
    struct sink *sink[2];
    uint8_t out[DNS_MAX_MSG];
    struct upstream_spec spec;
};

static int setup(void **state)
{
    struct fixture *fx = test_calloc(1, sizeof(*fx));
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(fx->loop);
    /* The allow list is written out rather than left to the default, so that the test
     * says which clients are in it. */
    fx->cfg = test_calloc(1, sizeof(*fx->cfg));
    config_init(fx->cfg);
    static const char *const allow[] = {"127.0.0.0/8", "::1/128"};
    for (size_t i = 0; i < ARRAY_SIZE(allow); i++) {
        struct acl_net net;
        assert_int_equal(acl_parse(allow[i], &net), 0);
        assert_int_equal(acl_add(&fx->cfg->allow, &net), 0);
    }
    char err[512];
    assert_int_equal(config_finish(fx->cfg, err, sizeof(err)), 0);
    assert_int_equal(fx->cfg->allow.n, ARRAY_SIZE(allow));
    assert_true(fx->cfg->cache_size > 0);

    fx->pool = pool_new(fx->loop, fx->cfg);
    assert_non_null(fx->pool);
    fx->f = test_calloc(1, sizeof(*fx->f));
    snprintf(fx->spec.url, sizeof(fx->spec.url), "tls://192.0.2.1");
    upstream_init(&fx->f->base, &fake_ops, &fx->spec, 0, 0, fx->cfg->attempt_timeout_ms / 1000.0);
    TAILQ_INIT(&fx->f->carried);
    assert_int_equal(pool_add(fx->pool, &fx->f->base), 0);
    fx->p = proxy_new(fx->loop, fx->cfg, fx->pool);
    assert_non_null(fx->p);
    for (size_t i = 0; i < ARRAY_SIZE(fx->sink); i++)
        fx->sink[i] = test_calloc(1, sizeof(*fx->sink[i]));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    proxy_free(fx->p);
    pool_free(fx->pool);
    ev_loop_destroy(fx->loop);
    for (size_t i = 0; i < ARRAY_SIZE(fx->sink); i++)
        test_free(fx->sink[i]);
    test_free(fx->cfg);
    test_free(fx);
    return 0;
}

/* Hand msg from client c to the core. */
static int ask(struct fixture *fx, const uint8_t *msg, size_t len, const struct proxy_client *c,
               struct query **qp)
{
    *qp = NULL;
    return proxy_query(fx->p, msg, len, c, qp, fx->out, sizeof(fx->out));
}

/* Answer the oldest attempt the fake carries as an upstream would: QR, RD, RA, one A
 * record 192.0.2.last with TTL 300 for the attempt's question, and an OPT record of its
 * own that carries a Padding option (the upstream pads its answer to our padded query;
 * that padding is for its hop only). Then let the loop run once. */
static void upstream_answers(struct fixture *fx, uint8_t last)
{
    struct attempt *a = TAILQ_FIRST(&fx->f->carried);
    assert_non_null(a);
    TAILQ_REMOVE(&fx->f->carried, a, entry);
    struct dns_query up;
    assert_int_equal(dns_query_parse(a->wire, a->len, &up), 0);

    uint8_t ans[512];
    size_t n = up.question_end;
    assert_true(n + A_RR_LEN + OPT_LEN + 4 + 8 <= sizeof(ans));
    memcpy(ans, a->wire, n);
    dns_put16(ans, a->id);
    dns_put16(ans + 2, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
    dns_put16(ans + 4, 1);
    dns_put16(ans + 6, 1);
    dns_put16(ans + 8, 0);
    dns_put16(ans + 10, 1);
    const uint8_t rr[A_RR_LEN] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, last};
    memcpy(ans + n, rr, sizeof(rr));
    n += sizeof(rr);
    const uint8_t opt[OPT_LEN + 4 + 8] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 12, 0, 8};
    memcpy(ans + n, opt, sizeof(opt));
    n += sizeof(opt);

    struct dns_answer da;
    assert_int_equal(dns_answer_parse(ans, n, &da), 0);
    assert_true(dns_question_equal(ans, n, a->wire, a->len));
    a->on_done(a, 0, ans, n, &da);
    ev_run(fx->loop, EVRUN_NOWAIT);
}

/* Send the query (msg, len) from client c, which must go upstream, and answer it with
 * 192.0.2.last: the answer c's sink then holds. */
static void ask_upstream(struct fixture *fx, const uint8_t *msg, size_t len,
                         const struct proxy_client *c, uint8_t last)
{
    struct sink *s = c->conn;
    unsigned calls = s->calls;
    struct query *q;
    assert_int_equal(ask(fx, msg, len, c, &q), PROXY_PENDING);
    assert_non_null(q);
    ev_run(fx->loop, EVRUN_NOWAIT);
    assert_int_equal(s->calls, calls); /* nothing before the upstream answers */
    upstream_answers(fx, last);
    assert_int_equal(s->calls, calls + 1);
    assert_ptr_equal(s->q, q);
}

/* Nothing of a refused query went anywhere: no attempt, no waiter, no cache lookup. */
static void assert_nothing_forwarded(const struct fixture *fx)
{
    assert_int_equal(fx->f->sends, 0);
    assert_int_equal(fake_carried(fx->f), 0);
    assert_int_equal(proxy_inflight(fx->p), 0);
    assert_int_equal(proxy_stats(fx->p)->forwarded, 0);
    const struct cache_stats *cs = cache_stats(proxy_cache(fx->p));
    assert_int_equal(cs->hits, 0);
    assert_int_equal(cs->misses, 0);
}

/* ---- the access list ---- */

static void test_client_outside_allow_refused(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 0x1234, "a.example", true, false, 0);
    struct proxy_client c = client_v4("10.0.0.1", false, fx->sink[0]);
    c.datagram = true;
    struct query *qp;
    int n = ask(fx, q, ql, &c, &qp);
    assert_true(n > 0);
    assert_null(qp);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    assert_int_equal(dns_get16(fx->out + 6), 0); /* no answer records */
    /* Never larger than the query: nothing to amplify for a spoofed UDP source. */
    assert_true((size_t)n <= ql);
    ev_run(fx->loop, EVRUN_NOWAIT);
    assert_int_equal(fx->sink[0]->calls, 0);
    assert_nothing_forwarded(fx);
    /* An IPv6 client outside the list likewise. */
    struct proxy_client c6 = {.ops = &client_ops, .conn = fx->sink[0]};
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c6.peer;
    sin6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr), 1);
    c6.peerlen = sizeof(*sin6);
    n = ask(fx, q, ql, &c6, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    assert_nothing_forwarded(fx);
}

/* A frontend that forgets to give the address fails closed. */
static void test_client_without_address_refused(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 7, "a.example", true, false, 0);
    struct proxy_client c = client_v4(NULL, false, fx->sink[0]);
    assert_int_equal(c.peerlen, 0);
    struct query *qp;
    int n = ask(fx, q, ql, &c, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    /* peerlen is what says the address was given: an allowed address in peer does not
     * count without it. */
    struct proxy_client nolen = client_v4("127.0.0.1", false, fx->sink[0]);
    nolen.peerlen = 0;
    n = ask(fx, q, ql, &nolen, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    /* An allowed address with a length too short for its family is not believed. */
    struct proxy_client shortlen = client_v4("127.0.0.1", false, fx->sink[0]);
    shortlen.peerlen = sizeof(sa_family_t) + 2;
    n = ask(fx, q, ql, &shortlen, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    assert_nothing_forwarded(fx);
    assert_int_equal(proxy_stats(fx->p)->refused, 3);
}

/* A stranger learns nothing beyond "refused": its malformed query gets REFUSED, not
 * FORMERR; its response is dropped as anyone's is. */
static void test_denied_malformed_refused_response_dropped(void **state)
{
    struct fixture *fx = *state;
    struct proxy_client c = client_v4("10.0.0.1", false, fx->sink[0]);
    struct query *qp;
    /* QDCOUNT 2, no question at all: FORMERR for an allowed client. */
    uint8_t bad[DNS_HEADER_LEN] = {0, 9, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0};
    int n = ask(fx, bad, sizeof(bad), &c, &qp);
    assert_int_equal(n, DNS_HEADER_LEN);
    assert_int_equal(dns_get16(fx->out), 9);
    uint16_t flags = dns_get16(fx->out + 2);
    assert_true(flags & DNS_FLAG_QR);
    assert_int_equal(DNS_RCODE(flags), DNS_RCODE_REFUSED);
    assert_int_equal(dns_get16(fx->out + 4), 0); /* no valid question to echo */
    assert_int_equal(proxy_stats(fx->p)->formerr, 0);
    assert_int_equal(proxy_stats(fx->p)->refused, 1);

    /* The same header with QR=1 is a response: dropped, not refused. */
    bad[2] |= 0x80;
    assert_int_equal(ask(fx, bad, sizeof(bad), &c, &qp), 0);
    /* So is anything shorter than a header. */
    assert_int_equal(ask(fx, bad, DNS_HEADER_LEN - 1, &c, &qp), 0);
    assert_int_equal(proxy_stats(fx->p)->dropped, 2);
    assert_int_equal(proxy_stats(fx->p)->refused, 1);

    /* A query of an EDNS version we lack is BADVERS for an allowed client only. */
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 10, "a.example", true, false, 1);
    n = ask(fx, q, ql, &c, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    assert_int_equal(proxy_stats(fx->p)->badvers, 0);
    assert_nothing_forwarded(fx);
    assert_int_equal(fx->sink[0]->calls, 0);
}

static void test_allowed_client_query_goes_upstream(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 0x4242, "a.example", true, false, 0);
    struct proxy_client c = client_v4("127.0.0.1", false, fx->sink[0]);
    struct query *qp;
    assert_int_equal(ask(fx, q, ql, &c, &qp), PROXY_PENDING);
    assert_non_null(qp);
    assert_int_equal(fx->f->sends, 1);
    assert_int_equal(fake_carried(fx->f), 1);
    assert_int_equal(proxy_inflight(fx->p), 1);
    assert_int_equal(proxy_stats(fx->p)->forwarded, 1);
    /* The upstream is asked the client's question. */
    const struct attempt *a = TAILQ_FIRST(&fx->f->carried);
    struct dns_query up;
    assert_int_equal(dns_query_parse(a->wire, a->len, &up), 0);
    assert_true(dns_question_equal(a->wire, a->len, q, ql));

    upstream_answers(fx, 7);
    assert_int_equal(fx->sink[0]->calls, 1);
    assert_ptr_equal(fx->sink[0]->q, qp);
    assert_answers(fx->sink[0]->msg, fx->sink[0]->len, q, ql, DNS_RCODE_NOERROR);
    assert_int_equal(answer_addr(fx->sink[0]->msg, fx->sink[0]->len), 7);
    assert_int_equal(proxy_inflight(fx->p), 0);
    assert_int_equal(proxy_stats(fx->p)->refused, 0);

    /* ::1 is in the list as well. */
    size_t ql6 = build_query(q, sizeof(q), 0x4343, "b.example", true, false, 0);
    struct proxy_client c6 = {.ops = &client_ops, .conn = fx->sink[1]};
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c6.peer;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    c6.peerlen = sizeof(*sin6);
    ask_upstream(fx, q, ql6, &c6, 8);
    assert_int_equal(answer_addr(fx->sink[1]->msg, fx->sink[1]->len), 8);
    assert_int_equal(fx->f->sends, 2);
}

/* A denied client gets REFUSED even for a name the cache holds: the cache answers only
 * those who may ask. */
static void test_denied_client_refused_when_cached(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 1, "a.example", true, false, 0);
    struct proxy_client ok = client_v4("127.0.0.1", false, fx->sink[0]);
    ask_upstream(fx, q, ql, &ok, 7);
    struct query *qp;
    int n = ask(fx, q, ql, &ok, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_NOERROR);
    uint64_t hits = cache_stats(proxy_cache(fx->p))->hits;
    assert_int_equal(hits, 1);

    struct proxy_client denied = client_v4("192.0.2.99", false, fx->sink[1]);
    n = ask(fx, q, ql, &denied, &qp);
    assert_true(n > 0);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);
    assert_int_equal(dns_get16(fx->out + 6), 0);
    assert_int_equal(cache_stats(proxy_cache(fx->p))->hits, hits);
    assert_int_equal(fx->f->sends, 1);
}

static void test_refused_counted(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512], bad[DNS_HEADER_LEN] = {0, 9, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0};
    size_t ql = build_query(q, sizeof(q), 1, "a.example", true, false, 0);
    struct proxy_client denied = client_v4("10.0.0.1", false, fx->sink[0]);
    struct proxy_client none = client_v4(NULL, false, fx->sink[0]);
    struct proxy_client ok = client_v4("127.0.0.1", false, fx->sink[1]);
    struct query *qp;
    assert_true(ask(fx, q, ql, &denied, &qp) > 0);
    assert_true(ask(fx, q, ql, &none, &qp) > 0);
    assert_true(ask(fx, bad, sizeof(bad), &denied, &qp) > 0);
    assert_int_equal(proxy_stats(fx->p)->refused, 3);
    /* What is not refused is not counted there: a dropped response, an allowed client's
     * bad query and its good one. */
    bad[2] |= 0x80;
    assert_int_equal(ask(fx, bad, sizeof(bad), &denied, &qp), 0);
    uint8_t v1[512];
    size_t v1l = build_query(v1, sizeof(v1), 2, "a.example", true, false, 1);
    assert_true(ask(fx, v1, v1l, &ok, &qp) > 0);
    ask_upstream(fx, q, ql, &ok, 7);

    const struct proxy_stats *st = proxy_stats(fx->p);
    assert_int_equal(st->refused, 3);
    assert_int_equal(st->queries, 6);
    assert_int_equal(st->dropped, 1);
    assert_int_equal(st->badvers, 1);
    assert_int_equal(st->formerr, 0);
    assert_int_equal(st->forwarded, 1);
}

/* ---- padding (RFC 8467 §4.1) ---- */

static void test_encrypted_padded_query_padded_from_upstream(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 0x0a0a, "pad.example", true, true, 0);
    struct proxy_client c = client_v4("127.0.0.1", true, fx->sink[0]);
    ask_upstream(fx, q, ql, &c, 7);
    const struct sink *s = fx->sink[0];
    assert_padded(s->msg, s->len);
    assert_int_equal(s->len, DNS_PAD_RESPONSE);
    assert_answers(s->msg, s->len, q, ql, DNS_RCODE_NOERROR);
    assert_int_equal(answer_addr(s->msg, s->len), 7);
}

static void test_encrypted_padded_query_padded_from_cache(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 0x0b0b, "pad.example", true, true, 0);
    struct proxy_client c = client_v4("127.0.0.1", true, fx->sink[0]);
    ask_upstream(fx, q, ql, &c, 7);

    dns_put16(q, 0x0c0c);
    struct query *qp;
    int n = ask(fx, q, ql, &c, &qp);
    assert_true(n > 0);
    assert_int_equal(cache_stats(proxy_cache(fx->p))->hits, 1);
    assert_int_equal(fx->f->sends, 1);
    assert_padded(fx->out, (size_t)n);
    assert_int_equal(n, DNS_PAD_RESPONSE);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_NOERROR);
    assert_int_equal(answer_addr(fx->out, (size_t)n), 7);
}

/* Padding is for encrypted transports: over plain DNS it would only cost bytes. */
static void test_plain_client_padded_query_unpadded(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 0x0d0d, "pad.example", true, true, 0);
    size_t want = plain_answer_len(q, ql);
    struct proxy_client c = client_v4("127.0.0.1", false, fx->sink[0]);
    ask_upstream(fx, q, ql, &c, 7);
    assert_unpadded(fx->sink[0]->msg, fx->sink[0]->len, want);
    assert_answers(fx->sink[0]->msg, fx->sink[0]->len, q, ql, DNS_RCODE_NOERROR);

    struct query *qp;
    int n = ask(fx, q, ql, &c, &qp);
    assert_int_equal(cache_stats(proxy_cache(fx->p))->hits, 1);
    assert_true(n > 0);
    assert_unpadded(fx->out, (size_t)n, want);
}

/* An encrypted client that did not ask for padding does not get it. */
static void test_encrypted_unpadded_query_unpadded(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    size_t ql = build_query(q, sizeof(q), 0x0e0e, "pad.example", true, false, 0);
    size_t want = plain_answer_len(q, ql);
    struct proxy_client c = client_v4("127.0.0.1", true, fx->sink[0]);
    ask_upstream(fx, q, ql, &c, 7);
    assert_unpadded(fx->sink[0]->msg, fx->sink[0]->len, want);

    struct query *qp;
    int n = ask(fx, q, ql, &c, &qp);
    assert_int_equal(cache_stats(proxy_cache(fx->p))->hits, 1);
    assert_true(n > 0);
    assert_unpadded(fx->out, (size_t)n, want);
}

/* One flight, two waiters: an encrypted client that asked for padding and a plain UDP
 * client that did not. Each gets the answer in its own form and with its own ID. */
static void test_waiters_get_own_form(void **state)
{
    struct fixture *fx = *state;
    uint8_t q1[512], q2[512];
    size_t ql1 = build_query(q1, sizeof(q1), 0x1111, "both.example", true, true, 0);
    size_t ql2 = build_query(q2, sizeof(q2), 0x2222, "both.example", true, false, 0);
    struct proxy_client enc = client_v4("127.0.0.1", true, fx->sink[0]);
    struct proxy_client udp = client_v4("127.0.0.2", false, fx->sink[1]);
    udp.datagram = true;
    struct query *qp1, *qp2;
    assert_int_equal(ask(fx, q1, ql1, &enc, &qp1), PROXY_PENDING);
    assert_int_equal(ask(fx, q2, ql2, &udp, &qp2), PROXY_PENDING);
    assert_int_equal(fx->f->sends, 1);
    assert_int_equal(proxy_stats(fx->p)->coalesced, 1);
    assert_int_equal(proxy_inflight(fx->p), 2);

    upstream_answers(fx, 9);
    const struct sink *s1 = fx->sink[0], *s2 = fx->sink[1];
    assert_int_equal(s1->calls, 1);
    assert_int_equal(s2->calls, 1);
    assert_ptr_equal(s1->q, qp1);
    assert_ptr_equal(s2->q, qp2);
    assert_padded(s1->msg, s1->len);
    assert_answers(s1->msg, s1->len, q1, ql1, DNS_RCODE_NOERROR);
    assert_int_equal(answer_addr(s1->msg, s1->len), 9);
    assert_unpadded(s2->msg, s2->len, plain_answer_len(q2, ql2));
    assert_answers(s2->msg, s2->len, q2, ql2, DNS_RCODE_NOERROR);
    assert_int_equal(answer_addr(s2->msg, s2->len), 9);
    assert_int_equal(proxy_inflight(fx->p), 0);
}

/* Error answers are padded too: BADVERS (an EDNS version we lack) and NOTIMP (an opcode
 * other than QUERY), whose queries' OPT records are parsed; REFUSED for a denied
 * encrypted client, which cannot be a spoofed source. */
static void test_error_answers_padded_for_encrypted_client(void **state)
{
    struct fixture *fx = *state;
    uint8_t q[512];
    struct proxy_client enc = client_v4("127.0.0.1", true, fx->sink[0]);
    struct query *qp;

    size_t ql = build_query(q, sizeof(q), 0x3333, "err.example", true, true, 1);
    int n = ask(fx, q, ql, &enc, &qp);
    assert_true(n > 0);
    assert_padded(fx->out, (size_t)n);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_BADVERS);
    assert_int_equal(proxy_stats(fx->p)->badvers, 1);

    ql = build_query(q, sizeof(q), 0x4444, "err.example", true, true, 0);
    dns_put16(q + 2, (uint16_t)(dns_get16(q + 2) | (2 << 11))); /* opcode STATUS */
    n = ask(fx, q, ql, &enc, &qp);
    assert_true(n > 0);
    assert_padded(fx->out, (size_t)n);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_NOTIMP);
    assert_int_equal(proxy_stats(fx->p)->notimp, 1);

    ql = build_query(q, sizeof(q), 0x5555, "err.example", true, true, 0);
    struct proxy_client denied = client_v4("10.0.0.1", true, fx->sink[0]);
    n = ask(fx, q, ql, &denied, &qp);
    assert_true(n > 0);
    assert_padded(fx->out, (size_t)n);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_REFUSED);

    /* The same BADVERS query from a plain client: header, question and OPT only. */
    ql = build_query(q, sizeof(q), 0x6666, "err.example", true, true, 1);
    struct proxy_client plain = client_v4("127.0.0.1", false, fx->sink[0]);
    n = ask(fx, q, ql, &plain, &qp);
    assert_true(n > 0);
    struct dns_query dq;
    assert_int_equal(dns_query_parse(q, ql, &dq), DNS_RCODE_BADVERS);
    assert_unpadded(fx->out, (size_t)n, dq.question_end + OPT_LEN);
    assert_answers(fx->out, (size_t)n, q, ql, DNS_RCODE_BADVERS);
    assert_nothing_forwarded(fx);
    assert_int_equal(fx->sink[0]->calls, 0);
}

/* ---- the query log ---- */

/* A query log in a fresh temporary file, attached to the core. */
struct qlog_file {
    char dir[64];
    char path[96];
    struct querylog *ql;
};

static void qlog_attach(struct fixture *fx, struct qlog_file *lf)
{
    snprintf(lf->dir, sizeof(lf->dir), "/tmp/test_proxy_qlog.XXXXXX");
    assert_non_null(mkdtemp(lf->dir));
    snprintf(lf->path, sizeof(lf->path), "%s/query.log", lf->dir);
    char err[256];
    assert_int_equal(querylog_open(fx->loop, lf->path, &lf->ql, err, sizeof(err)), 0);
    proxy_set_querylog(fx->p, lf->ql);
}

/* Detach and close the log (which writes its lines) and read them: up to max lines, each
 * split into its nine fields (the strings point into text, which the caller frees).
 * Returns the number of lines. */
static size_t qlog_read(struct fixture *fx, struct qlog_file *lf, char **text, char *fields[][9],
                        size_t max)
{
    proxy_set_querylog(fx->p, NULL);
    querylog_free(lf->ql);
    FILE *f = fopen(lf->path, "r");
    assert_non_null(f);
    *text = test_calloc(1, 65536);
    size_t len = fread(*text, 1, 65535, f);
    fclose(f);
    unlink(lf->path);
    rmdir(lf->dir);
    assert_true(len > 0);
    assert_int_equal((*text)[len - 1], '\n');
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(*text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        assert_true(n < max);
        size_t i = 0;
        char *fsave = NULL;
        for (char *w = strtok_r(line, " ", &fsave); w != NULL; w = strtok_r(NULL, " ", &fsave)) {
            assert_true(i < 9);
            fields[n][i++] = w;
        }
        assert_int_equal(i, 9);
        n++;
    }
    return n;
}

/* One line says: client, transport, name, type, rcode, source, upstream; a time in UTC
 * with milliseconds and a latency in milliseconds. */
static void assert_logged(char *const f[9], const char *client, const char *transport,
                          const char *name, const char *type, const char *rcode, const char *source,
                          const char *upstream)
{
    assert_int_equal(strlen(f[0]), strlen("2026-11-23T10:15:02.123Z"));
    assert_int_equal(f[0][23], 'Z');
    assert_string_equal(f[1], client);
    assert_string_equal(f[2], transport);
    assert_string_equal(f[3], name);
    assert_string_equal(f[4], type);
    assert_string_equal(f[5], rcode);
    assert_string_equal(f[6], source);
    assert_string_equal(f[7], upstream);
    size_t n = strlen(f[8]);
    assert_true(n >= 5);
    assert_string_equal(f[8] + n - 2, "ms");
    assert_true(strtod(f[8], NULL) >= 0);
}

/* Every answer is a line, whatever its source: a miss answered by the upstream (with its
 * URL), the waiter that joined it (answered from the entry that answer just made, which
 * counts as upstream too), a hit, REFUSED, FORMERR and BADVERS made by the core, and
 * SERVFAIL for a query still waiting at shutdown. Without the log, nothing is written. */
static void test_querylog_records_sources(void **state)
{
    struct fixture *fx = *state;
    struct qlog_file lf;
    qlog_attach(fx, &lf);
    uint8_t q[512];
    struct query *qp, *qp2;

    size_t ql = build_query(q, sizeof(q), 0x0101, "miss.example", true, false, 0);
    struct proxy_client tcp = client_v4("127.0.0.1", false, fx->sink[0]);
    tcp.transport = PROXY_TCP;
    struct proxy_client udp = client_v4("127.0.0.2", false, fx->sink[1]);
    udp.transport = PROXY_UDP;
    udp.datagram = true;
    assert_int_equal(ask(fx, q, ql, &tcp, &qp), PROXY_PENDING);
    assert_int_equal(ask(fx, q, ql, &udp, &qp2), PROXY_PENDING);
    upstream_answers(fx, 1);
    assert_int_equal(fx->sink[0]->calls, 1);
    assert_int_equal(fx->sink[1]->calls, 1);

    /* A hit, over DoT. */
    struct proxy_client dot = client_v4("127.0.0.3", true, fx->sink[0]);
    dot.transport = PROXY_DOT;
    assert_true(ask(fx, q, ql, &dot, &qp) > 0);
    /* REFUSED for a client outside the allow list, over DoH. */
    struct proxy_client denied = client_v4("10.9.8.7", true, fx->sink[0]);
    denied.transport = PROXY_DOH;
    assert_true(ask(fx, q, ql, &denied, &qp) > 0);
    /* FORMERR: two questions; the name is not judged, so it is not logged. */
    uint8_t bad[512];
    memcpy(bad, q, ql);
    dns_put16(bad + 4, 2);
    assert_true(ask(fx, bad, ql, &udp, &qp) > 0);
    /* BADVERS: an extended RCODE, by its name. */
    size_t vl = build_query(q, sizeof(q), 0x0202, "vers.example", true, false, 1);
    assert_true(ask(fx, q, vl, &udp, &qp) > 0);
    /* A response is dropped, and not logged. */
    dns_put16(bad + 2, DNS_FLAG_QR);
    assert_int_equal(ask(fx, bad, ql, &udp, &qp), 0);
    /* A query still waiting when the core gives up: SERVFAIL, by the core. */
    size_t wl = build_query(q, sizeof(q), 0x0303, "wait.example", false, false, 0);
    assert_int_equal(ask(fx, q, wl, &tcp, &qp), PROXY_PENDING);
    proxy_fail_all(fx->p);
    assert_int_equal(fx->sink[0]->calls, 2);

    char *text;
    char *f[16][9];
    size_t n = qlog_read(fx, &lf, &text, f, 16);
    assert_int_equal(n, 7);
    assert_logged(f[0], "127.0.0.1", "tcp", "miss.example.", "A", "NOERROR", "upstream",
                  "tls://192.0.2.1");
    assert_logged(f[1], "127.0.0.2", "udp", "miss.example.", "A", "NOERROR", "upstream",
                  "tls://192.0.2.1");
    assert_logged(f[2], "127.0.0.3", "dot", "miss.example.", "A", "NOERROR", "cache", "-");
    assert_string_equal(f[2][8], "0.0ms");
    assert_logged(f[3], "10.9.8.7", "doh", "miss.example.", "A", "REFUSED", "local", "-");
    assert_logged(f[4], "127.0.0.2", "udp", "-", "-", "FORMERR", "local", "-");
    assert_logged(f[5], "127.0.0.2", "udp", "vers.example.", "A", "BADVERS", "local", "-");
    assert_logged(f[6], "127.0.0.1", "tcp", "wait.example.", "A", "SERVFAIL", "local", "-");
    test_free(text);

    /* Detached: the core answers as before and writes nowhere. */
    ql = build_query(q, sizeof(q), 0x0404, "miss.example", true, false, 0);
    assert_true(ask(fx, q, ql, &dot, &qp) > 0);
    assert_int_equal(access(lf.path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_outside_allow_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_without_address_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_malformed_refused_response_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_allowed_client_query_goes_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_client_refused_when_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encrypted_padded_query_padded_from_upstream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_encrypted_padded_query_padded_from_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plain_client_padded_query_unpadded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encrypted_unpadded_query_unpadded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiters_get_own_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_answers_padded_for_encrypted_client, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_querylog_records_sources, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
