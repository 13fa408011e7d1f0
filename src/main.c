/* main: start-up, the event loop, and an orderly shutdown.
 *
 * Start-up errors (a bad configuration, a port that cannot be bound, a trust store that
 * cannot be read) end the process with one line and exit status 1, before anything is
 * sent anywhere. SIGINT and SIGTERM stop the listeners from taking new queries, give the
 * queries in flight until their deadline to be answered (SERVFAIL otherwise), deliver the
 * last answers, and exit 0.
 *
 * SIGHUP reloads the configuration: the file and the command line are read again, as at
 * start, and checked whole (certificates and trust store included) before anything
 * changes; a configuration with an error is refused with one line in the log, and the old
 * one keeps running. What a reload changes takes effect at once: upstreams, strategy,
 * timeouts, the allow list, cache limits (the cache keeps its entries), certificates (for
 * connections accepted afterwards), the log level. Listeners, user, chroot and syslog
 * need a restart: a reload that changes them says so and keeps them as they are.
 *
 * Upstreams belong to a generation: the pool, its upstreams and the bootstrap resolver of
 * one configuration, with their own copy of it. A reload builds a new generation, and new
 * queries go to it; queries in flight finish on the old one, which is freed when its pool
 * has none left. An upstream kept across a reload takes over what the old one learnt of
 * it (addresses, RTT, health, counters), though not its connections.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dnsward/bootstrap.h"
#include "dnsward/config.h"
#include "dnsward/doh.h"
#include "dnsward/dot.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/metrics.h"
#include "dnsward/pool.h"
#include "dnsward/proxy.h"
#include "dnsward/querylog.h"
#include "dnsward/service.h"
#include "dnsward/tls_stream.h"
#include "dnsward/util.h"

enum { MAX_LISTENERS = 2 * CONFIG_MAX_LISTEN + 4 * CONFIG_MAX_SERVER_LISTEN };

/* The last answers on TCP get this long to leave after the last query is done. */
#define SHUTDOWN_FLUSH_S 1.0
#define SHUTDOWN_POLL_S 0.02

/* The upstreams of one configuration; see the top of this file. */
struct generation {
    struct config *cfg; /* a copy of the configuration, read by pool and bootstrap */
    SSL_CTX *tls_ctx;   /* the upstreams' client context (a reference) */
    struct pool *pool;
    struct bootstrap *bootstrap;
    SLIST_ENTRY(generation) entry;
};
SLIST_HEAD(generation_list, generation);

/* How often retired generations are checked for queries left. */
#define RETIRE_POLL_S 0.25

struct daemon {
    struct ev_loop *loop;
    int argc;
    char **argv;
    struct config cfg;       /* the running configuration: the proxy and the listeners read it */
    struct config *pool_cfg; /* the current generation's copy, read by pool and bootstrap */
    struct generation_list retired; /* replaced by reloads, still carrying queries */
    ev_timer retire_timer;
    SSL_CTX *tls_ctx;
    SSL_CTX *dot_ctx; /* server contexts, when dot-listen or doh-listen is configured */
    SSL_CTX *doh_ctx;
    struct bootstrap *bootstrap;
    struct pool *pool;
    struct proxy *proxy;
    struct querylog *qlog; /* the query log, or NULL */
    struct listener *listeners[MAX_LISTENERS];
    size_t nlisteners;
    ev_signal sigint;
    ev_signal sigterm;
    ev_signal sigusr1;
    ev_signal sighup;
    ev_timer shutdown_poll;
    uint64_t reloads;            /* configurations put in force by SIGHUP */
    uint64_t reload_failures;    /* refused, the running one kept */
    double start_time;           /* Unix time of the start, for the metrics */
    ev_tstamp shutdown_deadline; /* queries still in flight then get SERVFAIL */
    ev_tstamp flush_deadline;    /* then the loop ends, whatever is left */
    bool stopping;
};

static size_t daemon_connections(const struct daemon *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nlisteners; i++)
        n += d->listeners[i]->ops->connections(d->listeners[i]);
    return n;
}

static void on_shutdown_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct daemon *d = w->data;
    ev_tstamp now = ev_now(loop);
    if (proxy_inflight(d->proxy) > 0 && now >= d->shutdown_deadline)
        proxy_fail_all(d->proxy);
    if (proxy_inflight(d->proxy) == 0 && d->flush_deadline == 0) {
        d->flush_deadline = now + SHUTDOWN_FLUSH_S;
        pool_drain(d->pool);
        struct generation *g;
        SLIST_FOREACH(g, &d->retired, entry)
            pool_drain(g->pool);
    }
    bool flushed = proxy_inflight(d->proxy) == 0 && daemon_connections(d) == 0;
    if (flushed || (d->flush_deadline > 0 && now >= d->flush_deadline))
        ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    struct daemon *d = w->data;
    if (d->stopping) {
        log_notice("second signal: exiting now");
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    d->stopping = true;
    service_notify("STOPPING=1");
    log_notice("%s: stopping; %zu queries in flight", strsignal(w->signum),
               proxy_inflight(d->proxy));
    for (size_t i = 0; i < d->nlisteners; i++)
        d->listeners[i]->ops->stop(d->listeners[i]);
    d->shutdown_deadline = ev_now(loop) + d->cfg.timeout_ms / 1000.0;
    d->flush_deadline = 0;
    ev_timer_init(&d->shutdown_poll, on_shutdown_poll, 0, SHUTDOWN_POLL_S);
    d->shutdown_poll.data = d;
    ev_timer_again(loop, &d->shutdown_poll);
}

/* The metrics of the daemon as it is now: the proxy and the pool are read at every call,
 * as a reload replaces the pool. */
static void daemon_metrics_view(void *ctx, struct metrics_view *v)
{
    struct daemon *d = ctx;
    *v = (struct metrics_view){
        .proxy = d->proxy,
        .pool = d->pool,
        .listeners = d->listeners,
        .nlisteners = d->nlisteners,
        .start_time = d->start_time,
        .reloads = d->reloads,
        .reload_failures = d->reload_failures,
    };
}

static void on_sigusr1(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct daemon *d = w->data;
    /* The one-line summaries first (the integration tests' helpers and the README read
     * them), then every sample of the /metrics page, one line each. */
    proxy_log_stats(d->proxy, LOG_NOTICE);
    pool_log_stats(d->pool, LOG_NOTICE);
    struct metrics_view view;
    daemon_metrics_view(d, &view);
    metrics_log(&view, LOG_NOTICE);
}

/* Load cfg's server certificate and key into new contexts for the DoT and DoH listeners
 * (NULL where cfg has no such listener). Returns 0 with *dot and *doh set (the caller
 * frees them), or -1 with a reason in err and nothing to free. */
static int load_certs(const struct config *cfg, SSL_CTX **dot, SSL_CTX **doh, char *err,
                      size_t errlen)
{
    *dot = *doh = NULL;
    if (cfg->ndot_listen > 0 &&
        (*dot = tls_server_ctx_new(cfg->cert_file, cfg->key_file, err, errlen)) == NULL)
        return -1;
    if (cfg->ndoh_listen > 0 &&
        (*doh = doh_server_ctx_new(cfg->cert_file, cfg->key_file, err, errlen)) == NULL) {
        SSL_CTX_free(*dot);
        *dot = NULL;
        return -1;
    }
    return 0;
}

/* Use dot and doh (owned from now on) as the server contexts: for connections accepted
 * from now on; the old ones are freed (connections still open hold references). */
static void daemon_set_certs(struct daemon *d, SSL_CTX *dot, SSL_CTX *doh)
{
    SSL_CTX_free(d->dot_ctx);
    SSL_CTX_free(d->doh_ctx);
    d->dot_ctx = dot;
    d->doh_ctx = doh;
    for (size_t i = 0; i < d->nlisteners; i++) {
        struct listener *l = d->listeners[i];
        if (l->ops->set_tls != NULL)
            l->ops->set_tls(l, strcmp(l->ops->name, "dot") == 0 ? d->dot_ctx : d->doh_ctx);
    }
}

/* A pool with an upstream for each of cfg's, over the client context ctx (both borrowed,
 * and must outlive it). Returns it, or NULL on allocation failure. */
static struct pool *new_pool(struct ev_loop *loop, const struct config *cfg, SSL_CTX *ctx)
{
    struct pool *pool = pool_new(loop, cfg);
    if (pool == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct upstream_spec *spec = &cfg->upstream[i];
        struct upstream *u = spec->proto == UPSTREAM_DOH ? doh_upstream_new(loop, spec, cfg, ctx)
                                                         : dot_upstream_new(loop, spec, cfg, ctx);
        if (u == NULL || pool_add(pool, u) < 0) {
            pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

/* Start resolving the upstreams of pool that are given by name, through cfg's bootstrap
 * servers. Returns 0 with *out (NULL when no upstream needs it), or -1 with a reason in
 * err. */
static int watch_names(struct ev_loop *loop, const struct config *cfg, struct pool *pool,
                       struct bootstrap **out, char *err, size_t errlen)
{
    *out = NULL;
    bool needed = false;
    for (size_t i = 0; i < pool_count(pool); i++)
        needed |= pool_upstream(pool, i)->spec->addrlen == 0;
    if (!needed)
        return 0;
    struct bootstrap *b = bootstrap_new(loop, cfg);
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < pool_count(pool); i++) {
        struct upstream *u = pool_upstream_mut(pool, i);
        int rc = u->spec->addrlen == 0 ? bootstrap_watch(b, u) : 0;
        if (rc < 0) {
            snprintf(err, errlen, "upstream %.200s: cannot resolve '%.200s': %s", u->spec->url,
                     u->spec->host, strerror(-rc));
            bootstrap_free(b);
            return -1;
        }
    }
    *out = b;
    return 0;
}

static void generation_free(struct generation *g)
{
    bootstrap_free(g->bootstrap);
    pool_free(g->pool);
    SSL_CTX_free(g->tls_ctx);
    free(g->cfg);
    free(g);
}

/* Free the retired generations whose queries are all done. */
static void on_retire_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct daemon *d = container_of(w, struct daemon, retire_timer);
    struct generation **link = &SLIST_FIRST(&d->retired);
    while (*link != NULL) {
        struct generation *g = *link;
        if (pool_pending(g->pool) > 0) {
            link = &SLIST_NEXT(g, entry);
            continue;
        }
        *link = SLIST_NEXT(g, entry);
        generation_free(g);
    }
    if (SLIST_EMPTY(&d->retired))
        ev_timer_stop(loop, w);
}

/* The text of a list of listener addresses, to tell two lists apart. */
static void format_listen(const struct config_listen *list, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        char where[64];
        config_format_addr((const struct sockaddr *)&list[i].addr, where, sizeof(where));
        int m = snprintf(out + used, cap - used, "%s%s", i ? " " : "", where);
        used += m > 0 ? (size_t)m : 0;
    }
}

/* What a reload cannot change: a new value of each is reported and replaced in next by
 * the running one, so that the configuration in force describes what runs. */
static void keep_restart_settings(const struct config *old, struct config *next)
{
    static const struct {
        const char *key;
        size_t list, count;
    } lists[] = {
        {"listen", offsetof(struct config, listen), offsetof(struct config, nlisten)},
        {"dot-listen", offsetof(struct config, dot_listen), offsetof(struct config, ndot_listen)},
        {"doh-listen", offsetof(struct config, doh_listen), offsetof(struct config, ndoh_listen)},
        {"doh-plain-listen", offsetof(struct config, doh_plain_listen),
         offsetof(struct config, ndoh_plain_listen)},
        {"metrics-listen", offsetof(struct config, metrics_listen),
         offsetof(struct config, nmetrics_listen)},
    };
    for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
        const struct config_listen *a = (const void *)((const char *)old + lists[i].list);
        struct config_listen *b = (void *)((char *)next + lists[i].list);
        size_t na = *(const size_t *)(const void *)((const char *)old + lists[i].count);
        size_t *nb = (size_t *)(void *)((char *)next + lists[i].count);
        char was[1024], now[1024];
        format_listen(a, na, was, sizeof(was));
        format_listen(b, *nb, now, sizeof(now));
        if (strcmp(was, now) == 0)
            continue;
        log_warn("reload: %s changed to '%s': needs a restart; still '%s'", lists[i].key, now, was);
        memcpy(b, a, na * sizeof(*a));
        *nb = na;
    }
    static const struct {
        const char *key;
        size_t offset, size;
    } fields[] = {
        {"user", offsetof(struct config, user), sizeof(old->user)},
        {"chroot", offsetof(struct config, chroot_dir), sizeof(old->chroot_dir)},
        {"syslog", offsetof(struct config, syslog), sizeof(old->syslog)},
    };
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        const char *a = (const char *)old + fields[i].offset;
        char *b = (char *)next + fields[i].offset;
        if (memcmp(a, b, fields[i].size) == 0)
            continue;
        log_warn("reload: %s changed: needs a restart; keeping the running value", fields[i].key);
        memcpy(b, a, fields[i].size);
    }
}

/* Read the configuration again and, if it is good, put it in force (see the top of this
 * file). Returns 0, or -1 with the reason in err and nothing changed. */
static int daemon_reload(struct daemon *d, char *err, size_t errlen)
{
    struct config *next = malloc(sizeof(*next));
    struct generation *old = calloc(1, sizeof(*old));
    struct config *gen_cfg = malloc(sizeof(*gen_cfg));
    SSL_CTX *tls_ctx = NULL, *dot = NULL, *doh = NULL;
    struct pool *pool = NULL;
    struct bootstrap *bootstrap = NULL;
    struct querylog *qlog = NULL;
    bool check_only = false;
    int rc = -1;

    if (next == NULL || old == NULL || gen_cfg == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    config_init(next);
    int prc = config_parse_args(next, d->argc, d->argv, &check_only, err, errlen);
    if (prc != 0 || config_finish(next, err, errlen) < 0) {
        if (prc > 0)
            snprintf(err, errlen, "the command line asks for help or the version");
        goto out;
    }
    keep_restart_settings(&d->cfg, next);
    /* The trust store is read again only when another is named: under a chroot the
     * system's may no longer be reachable. */
    if (strcmp(next->ca_file, d->cfg.ca_file) == 0) {
        SSL_CTX_up_ref(d->tls_ctx);
        tls_ctx = d->tls_ctx;
    } else if ((tls_ctx = tls_client_ctx_new(next->ca_file, err, errlen)) == NULL) {
        goto out;
    }
    if (load_certs(next, &dot, &doh, err, errlen) < 0)
        goto out;
    bool new_qlog = strcmp(next->query_log, d->cfg.query_log) != 0;
    if (new_qlog && next->query_log[0] != '\0' &&
        querylog_open(d->loop, next->query_log, &qlog, err, errlen) < 0)
        goto out;
    *gen_cfg = *next;
    pool = new_pool(d->loop, gen_cfg, tls_ctx);
    if (pool == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (watch_names(d->loop, gen_cfg, pool, &bootstrap, err, errlen) < 0)
        goto out;
    pool_inherit(pool, d->pool);

    /* Nothing can fail from here on. */
    *old = (struct generation){
        .cfg = d->pool_cfg, .tls_ctx = d->tls_ctx, .pool = d->pool, .bootstrap = d->bootstrap};
    SLIST_INSERT_HEAD(&d->retired, old, entry);
    ev_timer_again(d->loop, &d->retire_timer);
    old = NULL;
    d->pool_cfg = gen_cfg;
    d->tls_ctx = tls_ctx;
    d->pool = pool;
    d->bootstrap = bootstrap;
    gen_cfg = NULL;
    tls_ctx = NULL;
    pool = NULL;
    bootstrap = NULL;
    d->cfg = *next;
    log_set_level(d->cfg.log_level);
    proxy_reconfigure(d->proxy, &d->cfg, d->pool);
    if (dot != NULL || doh != NULL)
        daemon_set_certs(d, dot, doh);
    dot = doh = NULL;
    if (new_qlog) {
        proxy_set_querylog(d->proxy, qlog);
        querylog_free(d->qlog);
        d->qlog = qlog;
        qlog = NULL;
    }
    rc = 0;
out:
    querylog_free(qlog);
    SSL_CTX_free(dot);
    SSL_CTX_free(doh);
    bootstrap_free(bootstrap);
    pool_free(pool);
    SSL_CTX_free(tls_ctx);
    free(gen_cfg);
    free(old);
    free(next);
    return rc;
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct daemon *d = w->data;
    char err[CONFIG_ERR_LEN];
    /* logrotate's move-then-HUP: the query log goes to a new file at the path. */
    if (d->qlog != NULL && querylog_reopen(d->qlog, err, sizeof(err)) < 0)
        log_err("SIGHUP: %s; the query log stays in the file it had", err);
    if (d->stopping)
        return;
    service_notify("RELOADING=1");
    if (daemon_reload(d, err, sizeof(err)) < 0) {
        d->reload_failures++;
        log_err("SIGHUP: %s; the running configuration stays in force", err);
    } else {
        d->reloads++;
        log_notice("SIGHUP: configuration reloaded: %zu upstream%s, strategy %s", d->cfg.nupstreams,
                   d->cfg.nupstreams == 1 ? "" : "s", config_strategy_name(d->cfg.strategy));
        if (d->dot_ctx != NULL || d->doh_ctx != NULL)
            log_notice("SIGHUP: certificate %s reloaded", d->cfg.cert_file);
    }
    /* Whatever the outcome: the daemon serves again, with the old or the new settings. */
    service_notify("READY=1");
}

typedef int server_listener_new_fn(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                                   const struct sockaddr *addr, socklen_t len, SSL_CTX *ctx,
                                   struct listener **out, char *err, size_t errlen);

/* Create a listener of one server kind at each of n addresses. */
static int daemon_listen_servers(struct daemon *d, server_listener_new_fn *fn,
                                 const struct config_listen *list, size_t n, SSL_CTX *ctx,
                                 const char *what)
{
    char err[256], where[64];
    for (size_t i = 0; i < n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&list[i].addr;
        if (fn(d->loop, d->proxy, &d->cfg, sa, list[i].addrlen, ctx, &d->listeners[d->nlisteners],
               err, sizeof(err)) < 0) {
            log_err("%s", err);
            return -1;
        }
        d->nlisteners++;
        config_format_addr(sa, where, sizeof(where));
        log_notice("listening on %s (%s)", where, what);
    }
    return 0;
}

/* An address that only this machine can reach: 127.0.0.0/8 or ::1. */
static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
    static const struct acl loopback = {
        .net = {{.addr = {127}, .family = AF_INET, .prefix = 8},
                {.addr = {[15] = 1}, .family = AF_INET6, .prefix = 128}},
        .n = 2,
    };
    return acl_match(&loopback, (const struct sockaddr *)ss);
}

/* A listener on an address others can reach, with the loopback-only default of allow,
 * answers them all REFUSED: say so once, since an upgraded configuration has no allow
 * line to show it. */
static void daemon_check_allow(const struct daemon *d)
{
    const struct config *c = &d->cfg;
    const struct {
        const struct config_listen *list;
        size_t n;
    } kinds[] = {{c->listen, c->nlisten},
                 {c->dot_listen, c->ndot_listen},
                 {c->doh_listen, c->ndoh_listen},
                 {c->doh_plain_listen, c->ndoh_plain_listen}};
    if (!c->allow_default)
        return;
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        for (size_t i = 0; i < kinds[k].n; i++) {
            if (!addr_is_loopback(&kinds[k].list[i].addr)) {
                char where[64];
                config_format_addr((const struct sockaddr *)&kinds[k].list[i].addr, where,
                                   sizeof(where));
                log_warn("listening on %s, but only loopback clients are allowed: others get "
                         "REFUSED (HTTP 403); add `allow = NETWORK/PREFIX` for them",
                         where);
                return;
            }
        }
    }
}

static int daemon_listen(struct daemon *d)
{
    char err[256];
    for (size_t i = 0; i < d->cfg.nlisten; i++) {
        const struct config_listen *cl = &d->cfg.listen[i];
        const struct sockaddr *sa = (const struct sockaddr *)&cl->addr;
        if (udp_listener_new(d->loop, d->proxy, &d->cfg, sa, cl->addrlen,
                             &d->listeners[d->nlisteners], err, sizeof(err)) < 0 ||
            (d->nlisteners++,
             tcp_listener_new(d->loop, d->proxy, &d->cfg, sa, cl->addrlen,
                              &d->listeners[d->nlisteners], err, sizeof(err)) < 0)) {
            log_err("%s", err);
            return -1;
        }
        d->nlisteners++;
        char where[64];
        config_format_addr(sa, where, sizeof(where));
        log_notice("listening on %s (udp, tcp)", where);
    }
    if (daemon_listen_servers(d, dot_listener_new, d->cfg.dot_listen, d->cfg.ndot_listen,
                              d->dot_ctx, "dns-over-tls") < 0 ||
        daemon_listen_servers(d, doh_listener_new, d->cfg.doh_listen, d->cfg.ndoh_listen,
                              d->doh_ctx, "dns-over-https") < 0 ||
        daemon_listen_servers(d, doh_listener_new, d->cfg.doh_plain_listen,
                              d->cfg.ndoh_plain_listen, NULL, "dns-over-http, cleartext") < 0)
        return -1;
    for (size_t i = 0; i < d->cfg.nmetrics_listen; i++) {
        const struct config_listen *cl = &d->cfg.metrics_listen[i];
        const struct sockaddr *sa = (const struct sockaddr *)&cl->addr;
        if (metrics_listener_new(d->loop, sa, cl->addrlen, daemon_metrics_view, d,
                                 &d->listeners[d->nlisteners], err, sizeof(err)) < 0) {
            log_err("%s", err);
            return -1;
        }
        d->nlisteners++;
        char where[64];
        config_format_addr(sa, where, sizeof(where));
        log_notice("listening on %s (metrics, http://%s/metrics)", where, where);
    }
    daemon_check_allow(d);
    return 0;
}

static void on_bootstrap_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct daemon *d = w->data;
    if (bootstrap_settled(d->bootstrap))
        ev_break(loop, EVBREAK_ONE);
}

static void on_bootstrap_limit(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

/* Resolve the upstreams that are given by name, through the bootstrap servers, and wait
 * (a bounded time) for the first answers, so that the first queries find addresses.
 * Names that could not be resolved yet are retried in the background. */
static int daemon_bootstrap(struct daemon *d)
{
    char err[CONFIG_ERR_LEN];
    if (watch_names(d->loop, d->pool_cfg, d->pool, &d->bootstrap, err, sizeof(err)) < 0) {
        log_err("%s", err);
        return -1;
    }
    if (d->bootstrap == NULL)
        return 0;
    ev_timer poll, limit;
    ev_timer_init(&poll, on_bootstrap_poll, 0.01, 0.01);
    poll.data = d;
    ev_timer_start(d->loop, &poll);
    /* Two rounds over every bootstrap server at most, as bootstrap.c tries them. */
    ev_timer_init(&limit, on_bootstrap_limit,
                  2.0 * (double)d->cfg.nbootstrap * BOOTSTRAP_TIMEOUT_MS / 1000.0 + 0.5, 0);
    ev_timer_start(d->loop, &limit);
    ev_run(d->loop, 0);
    ev_timer_stop(d->loop, &poll);
    ev_timer_stop(d->loop, &limit);
    if (!bootstrap_settled(d->bootstrap))
        log_warn("bootstrap: upstream names not resolved yet; still trying");
    return 0;
}

static void daemon_cleanup(struct daemon *d)
{
    /* Queries still in flight (a second signal cut the shutdown short) are answered
     * while their listeners still exist. */
    if (d->proxy != NULL)
        proxy_fail_all(d->proxy);
    for (size_t i = 0; i < d->nlisteners; i++)
        d->listeners[i]->ops->free(d->listeners[i]);
    proxy_free(d->proxy);
    querylog_free(d->qlog);
    struct generation *g;
    while ((g = SLIST_FIRST(&d->retired)) != NULL) {
        SLIST_REMOVE_HEAD(&d->retired, entry);
        generation_free(g);
    }
    bootstrap_free(d->bootstrap);
    pool_free(d->pool);
    free(d->pool_cfg);
    SSL_CTX_free(d->tls_ctx);
    SSL_CTX_free(d->dot_ctx);
    SSL_CTX_free(d->doh_ctx);
    if (d->loop != NULL) {
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigusr1);
        ev_signal_stop(d->loop, &d->sighup);
        ev_timer_stop(d->loop, &d->shutdown_poll);
        ev_timer_stop(d->loop, &d->retire_timer);
        ev_loop_destroy(d->loop);
    }
}

int main(int argc, char **argv)
{
    static struct daemon d;
    char err[CONFIG_ERR_LEN];
    bool check_only = false;
    int status = 1;

    d.argc = argc;
    d.argv = argv;
    SLIST_INIT(&d.retired);
    config_init(&d.cfg);
    int rc = config_parse_args(&d.cfg, argc, argv, &check_only, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0 || config_finish(&d.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "dnsward: %s\n", err);
        return 1;
    }
    log_set_level(d.cfg.log_level);
    log_open(d.cfg.syslog);
    /* Before any listener binds: the sockets a service manager passed in are taken first. */
    if (service_adopt_sockets(err, sizeof(err)) < 0) {
        fprintf(stderr, "dnsward: %s\n", err);
        return 1;
    }
    d.tls_ctx = tls_client_ctx_new(d.cfg.ca_file, err, sizeof(err));
    if (d.tls_ctx == NULL || load_certs(&d.cfg, &d.dot_ctx, &d.doh_ctx, err, sizeof(err)) < 0) {
        fprintf(stderr, "dnsward: %s\n", err);
        daemon_cleanup(&d);
        return 1;
    }
    if (check_only) {
        size_t n = d.cfg.nlisten + d.cfg.ndot_listen + d.cfg.ndoh_listen + d.cfg.ndoh_plain_listen +
                   d.cfg.nmetrics_listen;
        printf("dnsward: configuration ok: %zu listener%s, %zu upstream%s\n", n, n == 1 ? "" : "s",
               d.cfg.nupstreams, d.cfg.nupstreams == 1 ? "" : "s");
        daemon_cleanup(&d);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Until its handler is installed, after the bootstrap, a certificate renewal's SIGHUP
     * must not end the process. */
    signal(SIGHUP, SIG_IGN);

    d.start_time = ev_time();
    d.loop = ev_default_loop(EVFLAG_AUTO);
    if (d.loop == NULL) {
        log_err("cannot start the event loop");
        goto out;
    }
    ev_init(&d.retire_timer, on_retire_timer);
    d.retire_timer.repeat = RETIRE_POLL_S;
    d.pool_cfg = malloc(sizeof(*d.pool_cfg));
    if (d.pool_cfg != NULL)
        *d.pool_cfg = d.cfg;
    d.pool = d.pool_cfg != NULL ? new_pool(d.loop, d.pool_cfg, d.tls_ctx) : NULL;
    if (d.pool == NULL) {
        log_err("out of memory");
        goto out;
    }
    if (daemon_bootstrap(&d) < 0)
        goto out;
    d.proxy = proxy_new(d.loop, &d.cfg, d.pool);
    if (d.proxy == NULL) {
        log_err("out of memory");
        goto out;
    }
    /* Before the listeners, and while the file may still be one only root can create:
     * privileges are dropped after them. */
    if (d.cfg.query_log[0] != '\0') {
        if (querylog_open(d.loop, d.cfg.query_log, &d.qlog, err, sizeof(err)) < 0) {
            fprintf(stderr, "dnsward: %s\n", err);
            goto out;
        }
        proxy_set_querylog(d.proxy, d.qlog);
    }
    if (daemon_listen(&d) < 0)
        goto out;
    service_close_unused_sockets();
    /* Every socket is bound and the certificates and the trust store are loaded: root is
     * needed no more. */
    if (service_drop_privileges(d.cfg.user, d.cfg.chroot_dir, err, sizeof(err)) < 0) {
        log_err("%s", err);
        goto out;
    }
    for (size_t i = 0; i < d.cfg.nupstreams; i++)
        log_notice("forwarding to %s", d.cfg.upstream[i].url);

    ev_signal_init(&d.sigint, on_signal, SIGINT);
    ev_signal_init(&d.sigterm, on_signal, SIGTERM);
    d.sigint.data = d.sigterm.data = &d;
    ev_signal_start(d.loop, &d.sigint);
    ev_signal_start(d.loop, &d.sigterm);
    ev_signal_init(&d.sigusr1, on_sigusr1, SIGUSR1);
    d.sigusr1.data = &d;
    ev_signal_start(d.loop, &d.sigusr1);
    ev_signal_init(&d.sighup, on_sighup, SIGHUP);
    d.sighup.data = &d;
    ev_signal_start(d.loop, &d.sighup);
    ev_init(&d.shutdown_poll, on_shutdown_poll);

    service_notify("READY=1");
    ev_run(d.loop, 0);

    const struct proxy_stats *st = proxy_stats(d.proxy);
    log_notice("stopped: %llu queries, %llu answered, %llu SERVFAIL, %llu FORMERR, "
               "%llu dropped",
               (unsigned long long)st->queries, (unsigned long long)st->answered,
               (unsigned long long)st->servfail, (unsigned long long)st->formerr,
               (unsigned long long)st->dropped);
    proxy_log_stats(d.proxy, LOG_NOTICE);
    pool_log_stats(d.pool, LOG_NOTICE);
    status = 0;
out:
    daemon_cleanup(&d);
    return status;
}
