/* metrics: the Prometheus text format (0.0.4) of dnsward's counters. See
 * include/dnsward/metrics.h.
 *
 * One renderer writes both the page and the log: it writes through a struct metrics_out,
 * which either appends to the caller's buffer (the page) or collects one line at a time
 * and logs each sample line as it ends (SIGUSR1), so that the two never differ.
 */
#include "dnsward/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/cache.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/pool.h"
#include "dnsward/proxy.h"
#include "dnsward/upstream.h"
#include "dnsward/util.h"

struct metrics_out {
    char *buf;
    size_t cap;
    size_t len;
    bool full; /* something did not fit */
    /* log mode: buf is one line; each sample line is logged at level when it ends */
    bool log;
    int level;
};

static void out_write(struct metrics_out *o, const char *s, size_t n)
{
    if (o->full && !o->log)
        return;
    size_t room = o->cap - o->len;
    if (n > room) {
        o->full = true;
        n = room; /* a log line is cut; a page is given up */
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_str(struct metrics_out *o, const char *s)
{
    out_write(o, s, strlen(s));
}

/* The end of a line: a newline on the page; in the log, the line itself, unless it is
 * a comment (# HELP, # TYPE). */
static void out_eol(struct metrics_out *o)
{
    if (!o->log) {
        out_write(o, "\n", 1);
        return;
    }
    if (o->len > 0 && o->buf[0] != '#')
        log_msg(o->level, "%.*s", (int)o->len, o->buf);
    o->len = 0;
    o->full = false;
}

/* A label value, escaped as the text format says: \\, \" and \n. */
static void out_label_value(struct metrics_out *o, const char *s)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (esc == NULL)
            continue;
        out_write(o, run, (size_t)(s - run));
        out_write(o, esc, 2);
        run = s + 1;
    }
    out_write(o, run, (size_t)(s - run));
}

/* A family's # HELP and # TYPE lines. help is a constant of ours: nothing in it needs
 * escaping. */
static void out_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
    out_str(o, "# HELP ");
    out_str(o, name);
    out_str(o, " ");
    out_str(o, help);
    out_eol(o);
    out_str(o, "# TYPE ");
    out_str(o, name);
    out_str(o, " ");
    out_str(o, type);
    out_eol(o);
}

struct label {
    const char *name;
    const char *value;
};

/* One sample: name (then suffix, for a histogram's _bucket, _sum, _count), n labels,
 * and the value as text. */
static void out_sample(struct metrics_out *o, const char *name, const char *suffix,
                       const struct label *labels, size_t n, const char *value)
{
    out_str(o, name);
    if (suffix != NULL)
        out_str(o, suffix);
    for (size_t i = 0; i < n; i++) {
        out_str(o, i == 0 ? "{" : ",");
        out_str(o, labels[i].name);
        out_str(o, "=\"");
        out_label_value(o, labels[i].value);
        out_str(o, "\"");
    }
    if (n > 0)
        out_str(o, "}");
    out_str(o, " ");
    out_str(o, value);
    out_eol(o);
}

static void out_u64(struct metrics_out *o, const char *name, const char *suffix,
                    const struct label *labels, size_t n, uint64_t value)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
    out_sample(o, name, suffix, labels, n, text);
}

/* A float, in the fewest digits (up to 17) that read back as the same double: 0.0125
 * rather than 0.012500000000000001, and integers without a fraction. */
static void out_f64(struct metrics_out *o, const char *name, const char *suffix,
                    const struct label *labels, size_t n, double value)
{
    char text[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof(text), "%.*g", digits, value);
        if (strtod(text, NULL) == value)
            break;
    }
    out_sample(o, name, suffix, labels, n, text);
}

/* A family of one unlabelled counter. */
static void out_counter(struct metrics_out *o, const char *name, const char *help, uint64_t value)
{
    out_family(o, name, "counter", help);
    out_u64(o, name, NULL, NULL, 0, value);
}

static void out_gauge(struct metrics_out *o, const char *name, const char *help, double value)
{
    out_family(o, name, "gauge", help);
    out_f64(o, name, NULL, NULL, 0, value);
}

/* RCODEs by name where RFC 1035 §4.1.1 gives one that a forwarder sends; the rest by
 * number. */
static const char *const rcode_names[6] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                           "NXDOMAIN", "NOTIMP",  "REFUSED"};

static bool is_metrics_listener(const struct listener *l)
{
    return strcmp(l->ops->name, "metrics") == 0;
}

static void render_process(struct metrics_out *o, const struct metrics_view *v)
{
    out_family(o, "dnsward_build_info", "gauge", "The version of dnsward running; always 1.");
    const struct label version = {"version", DNSWARD_VERSION};
    out_u64(o, "dnsward_build_info", NULL, &version, 1, 1);
    out_gauge(o, "dnsward_start_time_seconds", "Unix time at which the process started.",
              v->start_time);
    out_counter(o, "dnsward_reloads_total", "Configurations reloaded.", v->reloads);
    out_counter(o, "dnsward_reload_failures_total",
                "Reloads refused, the configuration in use being kept.", v->reload_failures);
}

static void render_listeners(struct metrics_out *o, const struct metrics_view *v)
{
    size_t dns = 0;
    for (size_t i = 0; i < v->nlisteners; i++)
        dns += !is_metrics_listener(v->listeners[i]);
    if (dns > 0) {
        out_family(o, "dnsward_listener_queries_total", "counter",
                   "DNS messages a listener handed to the core.");
        for (size_t i = 0; i < v->nlisteners; i++) {
            const struct listener *l = v->listeners[i];
            if (is_metrics_listener(l))
                continue;
            const struct label labels[] = {{"listener", l->name}, {"transport", l->ops->name}};
            out_u64(o, "dnsward_listener_queries_total", NULL, labels, ARRAY_SIZE(labels),
                    l->queries);
        }
    }
    if (v->nlisteners > 0) {
        out_family(o, "dnsward_listener_connections", "gauge",
                   "Connections open on a listener (0 for UDP).");
        for (size_t i = 0; i < v->nlisteners; i++) {
            const struct listener *l = v->listeners[i];
            const struct label label = {"listener", l->name};
            out_u64(o, "dnsward_listener_connections", NULL, &label, 1, l->ops->connections(l));
        }
    }
}

static void render_core(struct metrics_out *o, const struct proxy *p)
{
    const struct proxy_stats *s = proxy_stats(p);
    out_family(o, "dnsward_queries_total", "counter",
               "DNS messages from clients, by the transport they came by.");
    for (int t = 0; t < PROXY_TRANSPORTS; t++) {
        const struct label label = {"transport", proxy_transport_name((enum proxy_transport)t)};
        out_u64(o, "dnsward_queries_total", NULL, &label, 1, s->by_transport[t]);
    }
    out_family(o, "dnsward_answers_total", "counter",
               "Answers given to clients, by the RCODE of their header (its low 4 bits).");
    for (int rc = 0; rc < 16; rc++) {
        char number[4];
        snprintf(number, sizeof(number), "%d", rc);
        /* The common six always, so that a rate() of each exists from the start; the
         * rare ones once they occur. */
        if (rc >= (int)ARRAY_SIZE(rcode_names) && s->rcodes[rc] == 0)
            continue;
        const struct label label = {"rcode",
                                    rc < (int)ARRAY_SIZE(rcode_names) ? rcode_names[rc] : number};
        out_u64(o, "dnsward_answers_total", NULL, &label, 1, s->rcodes[rc]);
    }
    out_counter(o, "dnsward_dropped_total",
                "Messages dropped without an answer: not a query, or too short.", s->dropped);
    out_counter(o, "dnsward_refused_total",
                "Queries answered REFUSED because the client is outside the allow list.",
                s->refused);
    out_counter(o, "dnsward_coalesced_total",
                "Queries that joined an identical query already on its way upstream.",
                s->coalesced);
    out_counter(o, "dnsward_forwarded_total",
                "Queries sent to the upstreams, prefetches and refreshes included.", s->forwarded);
    out_counter(o, "dnsward_prefetched_total",
                "Queries sent upstream to refresh a cache entry before it expires.", s->prefetched);
    out_counter(o, "dnsward_truncated_total", "Answers truncated for a UDP client.", s->truncated);
    out_counter(o, "dnsward_abandoned_total", "Queries whose client left before the answer came.",
                s->abandoned);
    out_gauge(o, "dnsward_inflight",
              "Client queries waiting for an upstream, plus background refreshes.",
              (double)proxy_inflight(p));

    const struct cache_stats *c = cache_stats(proxy_cache(p));
    out_counter(o, "dnsward_cache_hits_total", "Cache lookups that found a fresh entry.", c->hits);
    out_counter(o, "dnsward_cache_misses_total",
                "Cache lookups that found nothing, or only a stale entry.", c->misses);
    out_counter(o, "dnsward_cache_stale_total", "Stale answers given from the cache (RFC 8767).",
                c->stale);
    out_counter(o, "dnsward_cache_inserts_total", "Answers stored in the cache.", c->inserts);
    out_counter(o, "dnsward_cache_evictions_total",
                "Cache entries dropped to stay within the memory budget.", c->evictions);
    out_counter(o, "dnsward_cache_expired_total",
                "Cache entries dropped because they were past their stale window.", c->expired);
    out_gauge(o, "dnsward_cache_entries", "Entries in the cache.", (double)c->entries);
    out_gauge(o, "dnsward_cache_bytes", "Bytes the cache holds, entries and index.",
              (double)c->bytes);
}

/* A family with one counter per upstream, read at offset off of its struct upstream_stats. */
static void render_upstream_counter(struct metrics_out *o, const struct pool *p, const char *name,
                                    const char *help, size_t off)
{
    out_family(o, name, "counter", help);
    for (size_t i = 0; i < pool_count(p); i++) {
        const struct upstream *u = pool_upstream(p, i);
        uint64_t value;
        memcpy(&value, (const char *)&u->stats + off, sizeof(value));
        const struct label label = {"upstream", u->spec->url};
        out_u64(o, name, NULL, &label, 1, value);
    }
}

static void render_upstreams(struct metrics_out *o, const struct pool *p)
{
    size_t n = pool_count(p);
    if (n == 0)
        return;
    out_family(o, "dnsward_upstream_queries_total", "counter",
               "Attempts given to an upstream's transport.");
    for (size_t i = 0; i < n; i++) {
        const struct upstream *u = pool_upstream(p, i);
        const struct label labels[] = {
            {"upstream", u->spec->url},
            {"transport", u->spec->proto == UPSTREAM_DOH ? "doh" : "dot"},
        };
        out_u64(o, "dnsward_upstream_queries_total", NULL, labels, ARRAY_SIZE(labels),
                u->stats.queries);
    }
    render_upstream_counter(o, p, "dnsward_upstream_answers_total",
                            "Answers accepted from an upstream.",
                            offsetof(struct upstream_stats, answers));
    out_family(o, "dnsward_upstream_failures_total", "counter",
               "Attempts ended by a transport error, by kind.");
    for (size_t i = 0; i < n; i++) {
        const struct upstream *u = pool_upstream(p, i);
        for (int k = 0; k < UPSTREAM_FAIL_KINDS; k++) {
            const struct label labels[] = {
                {"upstream", u->spec->url},
                {"kind", upstream_fail_name((enum upstream_fail)k)},
            };
            out_u64(o, "dnsward_upstream_failures_total", NULL, labels, ARRAY_SIZE(labels),
                    u->stats.failed[k]);
        }
    }
    render_upstream_counter(o, p, "dnsward_upstream_timeouts_total",
                            "Attempts on an upstream ended by their timeout.",
                            offsetof(struct upstream_stats, timeouts));
    render_upstream_counter(o, p, "dnsward_upstream_unmatched_total",
                            "Answers dropped: an unknown ID or another question.",
                            offsetof(struct upstream_stats, unmatched));
    render_upstream_counter(o, p, "dnsward_upstream_connects_total",
                            "Connections opened to an upstream.",
                            offsetof(struct upstream_stats, connects));
    render_upstream_counter(o, p, "dnsward_upstream_tls_resumed_total",
                            "Connections to an upstream that resumed a TLS session.",
                            offsetof(struct upstream_stats, resumed));
    render_upstream_counter(o, p, "dnsward_upstream_connects_throttled_total",
                            "Connections not opened because of upstream-connect-rate.",
                            offsetof(struct upstream_stats, throttled));

    out_family(o, "dnsward_upstream_up", "gauge",
               "1 if the upstream is in service, 0 while it is set aside after failures.");
    for (size_t i = 0; i < n; i++) {
        const struct label label = {"upstream", pool_upstream(p, i)->spec->url};
        out_u64(o, "dnsward_upstream_up", NULL, &label, 1, pool_upstream_down(p, i) ? 0 : 1);
    }
    out_family(o, "dnsward_upstream_srtt_seconds", "gauge",
               "Smoothed round-trip time of an upstream's answers (RFC 6298); 0 before the "
               "first sample.");
    for (size_t i = 0; i < n; i++) {
        const struct upstream *u = pool_upstream(p, i);
        const struct label label = {"upstream", u->spec->url};
        out_f64(o, "dnsward_upstream_srtt_seconds", NULL, &label, 1, u->srtt);
    }
    out_family(o, "dnsward_upstream_latency_seconds", "histogram",
               "Time from sending a query to an upstream to its answer, handshakes included.");
    for (size_t i = 0; i < n; i++) {
        const struct upstream *u = pool_upstream(p, i);
        const struct upstream_latency *h = &u->stats.latency;
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= UPSTREAM_LATENCY_BUCKETS; b++) {
            char le[24];
            if (b < UPSTREAM_LATENCY_BUCKETS)
                snprintf(le, sizeof(le), "%g", upstream_latency_bounds_ms[b] / 1000.0);
            else
                snprintf(le, sizeof(le), "+Inf");
            cumulative += h->buckets[b];
            const struct label labels[] = {{"upstream", u->spec->url}, {"le", le}};
            out_u64(o, "dnsward_upstream_latency_seconds", "_bucket", labels, ARRAY_SIZE(labels),
                    cumulative);
        }
        const struct label label = {"upstream", u->spec->url};
        out_f64(o, "dnsward_upstream_latency_seconds", "_sum", &label, 1, h->sum);
        out_u64(o, "dnsward_upstream_latency_seconds", "_count", &label, 1, h->count);
    }
}

static void render(struct metrics_out *o, const struct metrics_view *v)
{
    render_process(o, v);
    render_listeners(o, v);
    if (v->proxy != NULL)
        render_core(o, v->proxy);
    if (v->pool != NULL)
        render_upstreams(o, v->pool);
}

int metrics_render(const struct metrics_view *v, char *buf, size_t cap)
{
    struct metrics_out o = {.buf = buf, .cap = cap};
    render(&o, v);
    if (o.full || o.len > (size_t)INT32_MAX)
        return -ENOSPC;
    return (int)o.len;
}

void metrics_log(const struct metrics_view *v, int level)
{
    if (level > log_get_level())
        return;
    char line[METRICS_LINE_MAX];
    struct metrics_out o = {.buf = line, .cap = sizeof(line), .log = true, .level = level};
    render(&o, v);
}
