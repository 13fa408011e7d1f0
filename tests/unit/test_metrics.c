/* Unit tests for the metrics page (Prometheus text format 0.0.4).
 *
 * The page is rendered from real objects: a core (struct proxy) over a real pool whose
 * two upstreams are fakes that the test answers by hand, as a transport would; queries
 * come from a UDP and a TCP client, so that every counter checked was counted by the
 * code that counts it in the daemon. Counters that are hard to provoke (failures by kind,
 * the latency histogram's buckets, an upstream set aside) are filled in by hand. The
 * listeners are hand-made struct listeners with the ops names the frontends use.
 *
 * Checked: exact sample lines; that every sample follows its family's # HELP and # TYPE
 * and no family appears twice (what promtool checks first); label values escaped
 * (backslash, double quote, line feed); -ENOSPC for a buffer one byte short, and the
 * exact length for one that fits; and that metrics_log writes the page's sample lines,
 * one log line each and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/config.h"
#include "dnsward/dns.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/metrics.h"
#include "dnsward/pool.h"
#include "dnsward/proxy.h"
#include "dnsward/upstream.h"
#include "dnsward/util.h"

/* ---- a fake upstream ---- */

struct fake {
    struct upstream base;
    struct attempt_list carried;
};

static void fake_free(struct upstream *u)
{
    test_free(container_of(u, struct fake, base));
}

static int fake_send(struct upstream *u, struct attempt *a)
{
    struct fake *f = container_of(u, struct fake, base);
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

/* ---- hand-made listeners ---- */

struct fake_listener {
    struct listener base;
    size_t conns;
};

static size_t fake_connections(const struct listener *l)
{
    return container_of(l, const struct fake_listener, base)->conns;
}

static const struct listener_ops udp_ops = {.name = "udp", .connections = fake_connections};
static const struct listener_ops tcp_ops = {.name = "tcp", .connections = fake_connections};
static const struct listener_ops metrics_ops = {.name = "metrics", .connections = fake_connections};

/* ---- clients ---- */

static unsigned answers_received;

static void on_answer(struct query *q, const uint8_t *msg, size_t len)
{
    (void)q;
    (void)msg;
    (void)len;
    answers_received++;
}

static const struct proxy_client_ops client_ops = {.answer = on_answer};

static struct proxy_client client(enum proxy_transport t)
{
    struct proxy_client c = {.ops = &client_ops, .transport = t, .datagram = t == PROXY_UDP};
    struct sockaddr_in *sin = (struct sockaddr_in *)&c.peer;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(0x7f000001);
    c.peerlen = sizeof(*sin);
    return c;
}

/* ---- the fixture ---- */

enum { PAGE_CAP = 64 * 1024 };

struct fixture {
    struct ev_loop *loop;
    struct config *cfg;
    struct pool *pool;
    struct fake *f[2];
    struct upstream_spec spec[2];
    struct proxy *p;
    struct fake_listener listeners[3];
    struct listener *list[3];
    struct metrics_view view;
    char page[PAGE_CAP];
    int page_len;
    uint8_t out[DNS_MAX_MSG];
};

static int setup(void **state)
{
    struct fixture *fx = test_calloc(1, sizeof(*fx));
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(fx->loop);
    fx->cfg = test_calloc(1, sizeof(*fx->cfg));
    config_init(fx->cfg);
    char err[512];
    assert_int_equal(config_finish(fx->cfg, err, sizeof(err)), 0);
    fx->pool = pool_new(fx->loop, fx->cfg);
    assert_non_null(fx->pool);
    /* The second URL holds every character a label value must escape. */
    static const char *const urls[2] = {"tls://192.0.2.1", "https://192.0.2.2/q?a=\"b\"\\c\nd"};
    for (size_t i = 0; i < 2; i++) {
        fx->spec[i].proto = i == 0 ? UPSTREAM_DOT : UPSTREAM_DOH;
        snprintf(fx->spec[i].url, sizeof(fx->spec[i].url), "%s", urls[i]);
        fx->f[i] = test_calloc(1, sizeof(*fx->f[i]));
        upstream_init(&fx->f[i]->base, &fake_ops, &fx->spec[i], 0, 0,
                      fx->cfg->attempt_timeout_ms / 1000.0);
        TAILQ_INIT(&fx->f[i]->carried);
        assert_int_equal(pool_add(fx->pool, &fx->f[i]->base), 0);
    }
    fx->p = proxy_new(fx->loop, fx->cfg, fx->pool);
    assert_non_null(fx->p);

    static const struct listener_ops *const ops[3] = {&udp_ops, &tcp_ops, &metrics_ops};
    static const char *const names[3] = {"udp 127.0.0.1:53", "tcp 127.0.0.1:53",
                                         "metrics 127.0.0.1:9153"};
    for (size_t i = 0; i < 3; i++) {
        fx->listeners[i].base.ops = ops[i];
        snprintf(fx->listeners[i].base.name, sizeof(fx->listeners[i].base.name), "%s", names[i]);
        fx->list[i] = &fx->listeners[i].base;
    }
    fx->view = (struct metrics_view){
        .proxy = fx->p,
        .pool = fx->pool,
        .listeners = fx->list,
        .nlisteners = 3,
        .start_time = 1700000000.5,
        .reloads = 3,
        .reload_failures = 1,
    };
    answers_received = 0;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    proxy_free(fx->p);
    pool_free(fx->pool);
    ev_loop_destroy(fx->loop);
    test_free(fx->cfg);
    test_free(fx);
    return 0;
}

/* ---- helpers ---- */

static void render(struct fixture *fx)
{
    fx->page_len = metrics_render(&fx->view, fx->page, sizeof(fx->page) - 1);
    assert_true(fx->page_len > 0);
    fx->page[fx->page_len] = '\0';
}

/* The page holds line, whole. */
static void assert_line(const struct fixture *fx, const char *line)
{
    size_t n = strlen(line);
    const char *p = fx->page;
    while ((p = strstr(p, line)) != NULL) {
        if ((p == fx->page || p[-1] == '\n') && p[n] == '\n')
            return;
        p += 1;
    }
    print_error("missing line: %s\npage:\n%s\n", line, fx->page);
    fail();
}

static void assert_no_line_starting(const struct fixture *fx, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = fx->page; *p != '\0'; p = strchr(p, '\n') + 1) {
        if (strncmp(p, prefix, n) == 0) {
            print_error("unexpected line starting %s\n", prefix);
            fail();
        }
    }
}

/* The structure promtool checks first: every line ends in \n; a family is "# HELP name
 * text", then "# TYPE name type", then its samples, whose names are the family's (with
 * _bucket, _sum, _count for a histogram); no family comes twice; sample values parse as
 * numbers. Returns the number of samples. */
static unsigned check_structure(const char *page, size_t len)
{
    assert_true(len > 0 && page[len - 1] == '\n');
    char families[128][96];
    unsigned nfamilies = 0, samples = 0;
    char family[96] = "", type[64] = "";
    const char *end = page + len;
    for (const char *p = page; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        char line[4096];
        size_t n = (size_t)(nl - p);
        assert_true(n < sizeof(line));
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        char name[96], rest[64];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            for (unsigned i = 0; i < nfamilies; i++)
                assert_string_not_equal(families[i], name);
            assert_true(nfamilies < ARRAY_SIZE(families));
            snprintf(families[nfamilies++], sizeof(families[0]), "%s", name);
            snprintf(family, sizeof(family), "%s", name);
            type[0] = '\0';
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s %63s", name, rest), 2);
            assert_string_equal(name, family);
            assert_true(strcmp(rest, "counter") == 0 || strcmp(rest, "gauge") == 0 ||
                        strcmp(rest, "histogram") == 0);
            snprintf(type, sizeof(type), "%s", rest);
            if (strcmp(rest, "counter") == 0) /* the naming convention */
                assert_non_null(strstr(name, "_total"));
            continue;
        }
        assert_true(line[0] != '#');
        assert_true(type[0] != '\0'); /* a sample after its family's TYPE */
        size_t name_len = strcspn(line, "{ ");
        size_t flen = strlen(family);
        assert_true(name_len >= flen && strncmp(line, family, flen) == 0);
        const char *suffix = line + flen;
        size_t slen = name_len - flen;
        if (strcmp(type, "histogram") == 0)
            assert_true((slen == 7 && strncmp(suffix, "_bucket", 7) == 0) ||
                        (slen == 4 && strncmp(suffix, "_sum", 4) == 0) ||
                        (slen == 6 && strncmp(suffix, "_count", 6) == 0));
        else
            assert_int_equal(slen, 0);
        assert_true(strncmp(line, "dnsward_", 8) == 0);
        /* The value: after the last space, a number. */
        const char *value = strrchr(line, ' ');
        assert_non_null(value);
        char *vend;
        strtod(value + 1, &vend);
        assert_true(vend > value + 1 && *vend == '\0');
        samples++;
    }
    return samples;
}

/* Ask the core: a query for name over transport t. Returns what proxy_query returned. */
static int ask(struct fixture *fx, enum proxy_transport t, uint16_t id, const char *name)
{
    uint8_t q[512];
    int n = dns_build_query(name, DNS_TYPE_A, id, 0, q, sizeof(q));
    assert_true(n > 0);
    struct proxy_client c = client(t);
    struct query *qp = NULL;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(fx->list[i]->ops->name, proxy_transport_name(t)) == 0)
            fx->list[i]->queries++;
    return proxy_query(fx->p, q, (size_t)n, &c, &qp, fx->out, sizeof(fx->out));
}

/* Answer the oldest attempt upstream f carries: one A record, TTL 300. */
static void upstream_answers(struct fixture *fx, struct fake *f)
{
    struct attempt *a = TAILQ_FIRST(&f->carried);
    assert_non_null(a);
    TAILQ_REMOVE(&f->carried, a, entry);
    struct dns_query up;
    assert_int_equal(dns_query_parse(a->wire, a->len, &up), 0);
    uint8_t ans[512];
    size_t n = up.question_end;
    memcpy(ans, a->wire, n);
    dns_put16(ans, a->id);
    dns_put16(ans + 2, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
    dns_put16(ans + 4, 1);
    dns_put16(ans + 6, 1);
    dns_put16(ans + 8, 0);
    dns_put16(ans + 10, 0);
    const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1};
    memcpy(ans + n, rr, sizeof(rr));
    n += sizeof(rr);
    /* The padded query carried an OPT record, so the answer has one too. */
    if (up.has_edns) {
        const uint8_t opt[11] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
        memcpy(ans + n, opt, sizeof(opt));
        n += sizeof(opt);
        dns_put16(ans + 10, 1);
    }
    struct dns_answer da;
    assert_int_equal(dns_answer_parse(ans, n, &da), 0);
    a->on_done(a, 0, ans, n, &da);
    ev_run(fx->loop, EVRUN_NOWAIT);
}

/* ---- tests ---- */

/* Queries through the real core and pool, counted where the daemon counts them. */
static void test_counts_from_real_objects(void **state)
{
    struct fixture *fx = *state;
    ev_now_update(fx->loop);
    /* A miss over UDP goes upstream (the first upstream, by failover); after 30 ms the
     * answer comes, which the latency histogram must place above 20 ms. */
    assert_int_equal(ask(fx, PROXY_UDP, 0x1111, "a.example"), PROXY_PENDING);
    ev_sleep(0.03);
    ev_now_update(fx->loop);
    upstream_answers(fx, fx->f[0]);
    assert_int_equal(answers_received, 1);
    /* The same name again, over TCP: a hit. Then one more name over UDP that stays in
     * flight. */
    assert_true(ask(fx, PROXY_TCP, 0x2222, "a.example") > 0);
    assert_int_equal(ask(fx, PROXY_UDP, 0x3333, "b.example"), PROXY_PENDING);
    fx->listeners[1].conns = 2;
    fx->listeners[2].conns = 1;

    render(fx);
    assert_true(check_structure(fx->page, (size_t)fx->page_len) > 50);
    assert_line(fx, "dnsward_queries_total{transport=\"udp\"} 2");
    assert_line(fx, "dnsward_queries_total{transport=\"tcp\"} 1");
    assert_line(fx, "dnsward_queries_total{transport=\"dot\"} 0");
    assert_line(fx, "dnsward_queries_total{transport=\"doh\"} 0");
    assert_line(fx, "dnsward_answers_total{rcode=\"NOERROR\"} 2");
    assert_line(fx, "dnsward_answers_total{rcode=\"SERVFAIL\"} 0");
    assert_no_line_starting(fx, "dnsward_answers_total{rcode=\"6\"}");
    assert_line(fx, "dnsward_forwarded_total 2");
    assert_line(fx, "dnsward_inflight 1");
    assert_line(fx, "dnsward_cache_hits_total 1");
    assert_line(fx, "dnsward_cache_misses_total 2");
    assert_line(fx, "dnsward_cache_inserts_total 1");
    assert_line(fx, "dnsward_cache_entries 1");
    assert_line(fx, "dnsward_listener_queries_total{listener=\"udp 127.0.0.1:53\","
                    "transport=\"udp\"} 2");
    assert_line(fx, "dnsward_listener_queries_total{listener=\"tcp 127.0.0.1:53\","
                    "transport=\"tcp\"} 1");
    assert_no_line_starting(fx, "dnsward_listener_queries_total{listener=\"metrics");
    assert_line(fx, "dnsward_listener_connections{listener=\"tcp 127.0.0.1:53\"} 2");
    assert_line(fx, "dnsward_listener_connections{listener=\"metrics 127.0.0.1:9153\"} 1");
    assert_line(fx, "dnsward_upstream_queries_total{upstream=\"tls://192.0.2.1\","
                    "transport=\"dot\"} 2");
    assert_line(fx, "dnsward_upstream_answers_total{upstream=\"tls://192.0.2.1\"} 1");
    assert_line(fx, "dnsward_upstream_up{upstream=\"tls://192.0.2.1\"} 1");
    assert_line(fx, "dnsward_upstream_latency_seconds_bucket{upstream=\"tls://192.0.2.1\","
                    "le=\"0.02\"} 0");
    assert_line(fx, "dnsward_upstream_latency_seconds_bucket{upstream=\"tls://192.0.2.1\","
                    "le=\"+Inf\"} 1");
    assert_line(fx, "dnsward_upstream_latency_seconds_count{upstream=\"tls://192.0.2.1\"} 1");
    /* The sum is the one latency: at least the 30 ms slept. */
    const struct upstream *u = pool_upstream(fx->pool, 0);
    assert_true(u->stats.latency.sum >= 0.03 && u->stats.latency.sum < 5);
    assert_true(u->srtt > 0);
    assert_line(fx, "dnsward_reloads_total 3");
    assert_line(fx, "dnsward_reload_failures_total 1");
    assert_line(fx, "dnsward_start_time_seconds 1700000000.5");
    assert_line(fx, "dnsward_build_info{version=\"" DNSWARD_VERSION "\"} 1");
    assert_line(fx, "# TYPE dnsward_upstream_latency_seconds histogram");
    assert_line(fx, "# TYPE dnsward_cache_entries gauge");
    assert_line(fx, "# TYPE dnsward_queries_total counter");
}

/* Counters filled in by hand: failures by kind, the histogram's cumulative buckets, an
 * upstream set aside, a rare RCODE; and the escaped URL. */
static void test_hand_filled(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = pool_upstream_mut(fx->pool, 1);
    u->stats.queries = 40;
    u->stats.answers = 30;
    u->stats.failed[UPSTREAM_FAIL_TLS] = 4;
    u->stats.failed[UPSTREAM_FAIL_GOAWAY] = 2;
    u->stats.timeouts = 5;
    u->stats.unmatched = 6;
    u->stats.connects = 7;
    u->srtt = 0.0125;
    u->stats.latency.buckets[0] = 3;                        /* <= 1 ms */
    u->stats.latency.buckets[3] = 10;                       /* (5, 10] ms */
    u->stats.latency.buckets[UPSTREAM_LATENCY_BUCKETS] = 2; /* > 5 s */
    u->stats.latency.count = 15;
    u->stats.latency.sum = 12.25;
    ev_now_update(fx->loop);
    u->down_until = ev_now(fx->loop) + 60;
    struct proxy_stats *ps = (struct proxy_stats *)proxy_stats(fx->p);
    ps->rcodes[9] = 4;

    render(fx);
    check_structure(fx->page, (size_t)fx->page_len);
    const char *lbl = "{upstream=\"https://192.0.2.2/q?a=\\\"b\\\"\\\\c\\nd\"";
    char line[512];
#define LINE(...)                                                                                  \
    do {                                                                                           \
        snprintf(line, sizeof(line), __VA_ARGS__);                                                 \
        assert_line(fx, line);                                                                     \
    } while (0)
    LINE("dnsward_upstream_queries_total%s,transport=\"doh\"} 40", lbl);
    LINE("dnsward_upstream_answers_total%s} 30", lbl);
    LINE("dnsward_upstream_failures_total%s,kind=\"tls\"} 4", lbl);
    LINE("dnsward_upstream_failures_total%s,kind=\"goaway\"} 2", lbl);
    LINE("dnsward_upstream_failures_total%s,kind=\"connect\"} 0", lbl);
    LINE("dnsward_upstream_timeouts_total%s} 5", lbl);
    LINE("dnsward_upstream_unmatched_total%s} 6", lbl);
    LINE("dnsward_upstream_connects_total%s} 7", lbl);
    LINE("dnsward_upstream_up%s} 0", lbl);
    LINE("dnsward_upstream_srtt_seconds%s} 0.0125", lbl);
    LINE("dnsward_upstream_latency_seconds_bucket%s,le=\"0.001\"} 3", lbl);
    LINE("dnsward_upstream_latency_seconds_bucket%s,le=\"0.005\"} 3", lbl);
    LINE("dnsward_upstream_latency_seconds_bucket%s,le=\"0.01\"} 13", lbl);
    LINE("dnsward_upstream_latency_seconds_bucket%s,le=\"5\"} 13", lbl);
    LINE("dnsward_upstream_latency_seconds_bucket%s,le=\"+Inf\"} 15", lbl);
    LINE("dnsward_upstream_latency_seconds_sum%s} 12.25", lbl);
    LINE("dnsward_upstream_latency_seconds_count%s} 15", lbl);
#undef LINE
    assert_line(fx, "dnsward_upstream_up{upstream=\"tls://192.0.2.1\"} 1");
    assert_true(pool_upstream_down(fx->pool, 1));
    assert_false(pool_upstream_down(fx->pool, 0));
    assert_false(pool_upstream_down(fx->pool, 2));
    assert_line(fx, "dnsward_answers_total{rcode=\"9\"} 4");
    /* No raw line feed, quote or backslash of the URL reached the page. */
    assert_null(strstr(fx->page, "\nd\""));
    assert_null(strstr(fx->page, "a=\"b"));
}

/* The buckets the pool records into, from its own code: latencies on the bounds. */
static void test_bucket_bounds(void **state)
{
    (void)state;
    static const uint32_t want[UPSTREAM_LATENCY_BUCKETS] = {1,   2,   5,   10,   20,   50,
                                                            100, 200, 500, 1000, 2000, 5000};
    assert_memory_equal(upstream_latency_bounds_ms, want, sizeof(want));
}

/* A buffer too small: -ENOSPC, whatever the size; the exact size fits. */
static void test_enospc(void **state)
{
    struct fixture *fx = *state;
    render(fx);
    size_t len = (size_t)fx->page_len;
    char *buf = test_malloc(len);
    assert_int_equal(metrics_render(&fx->view, buf, 0), -ENOSPC);
    assert_int_equal(metrics_render(&fx->view, buf, 10), -ENOSPC);
    assert_int_equal(metrics_render(&fx->view, buf, len - 1), -ENOSPC);
    assert_int_equal(metrics_render(&fx->view, buf, len), (int)len);
    assert_memory_equal(buf, fx->page, len);
    test_free(buf);
}

/* Without a proxy or a pool (their families are left out) the page is still valid. */
static void test_partial_view(void **state)
{
    struct fixture *fx = *state;
    fx->view.proxy = NULL;
    fx->view.pool = NULL;
    fx->view.nlisteners = 0;
    render(fx);
    assert_int_equal(check_structure(fx->page, (size_t)fx->page_len), 4);
    assert_no_line_starting(fx, "dnsward_queries_total");
    assert_no_line_starting(fx, "dnsward_upstream");
    assert_no_line_starting(fx, "# HELP dnsward_listener");
}

/* metrics_log writes each sample line of the page, in order, one log line each, and no
 * comment. stderr (where the log goes) is captured in a file for the call. */
static void test_log_matches_page(void **state)
{
    struct fixture *fx = *state;
    struct upstream *u = pool_upstream_mut(fx->pool, 0);
    u->stats.answers = 12345;
    render(fx);

    char path[] = "/tmp/test_metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    int level = log_get_level();
    log_set_level(LOG_NOTICE);
    metrics_log(&fx->view, LOG_INFO); /* below the level: nothing */
    metrics_log(&fx->view, LOG_NOTICE);
    log_set_level(level);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);

    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 0);
    char *log = test_malloc((size_t)size + 1);
    assert_int_equal(pread(fd, log, (size_t)size, 0), size);
    log[size] = '\0';
    close(fd);

    /* The page without its comment lines, each prefixed as the log writes it. */
    char *want = test_malloc((size_t)fx->page_len * 2 + 1);
    size_t wlen = 0;
    static const char prefix[] = "dnsward[notice]: ";
    for (const char *p = fx->page; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p) + 1;
        if (p[0] != '#') {
            memcpy(want + wlen, prefix, sizeof(prefix) - 1);
            wlen += sizeof(prefix) - 1;
            memcpy(want + wlen, p, n);
            wlen += n;
        }
        p = nl + 1;
    }
    want[wlen] = '\0';
    assert_string_equal(log, want);
    assert_non_null(strstr(log, "]: dnsward_upstream_answers_total{upstream=\"tls://192.0.2.1\"} "
                                "12345\n"));
    test_free(want);
    test_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_from_real_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hand_filled, setup, teardown),
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_matches_page, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
