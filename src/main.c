/* main: start-up, the event loop, and an orderly shutdown.
 *
 * Start-up errors (a bad configuration, a port that cannot be bound, a trust store that
 * cannot be read) end the process with one line and exit status 1, before anything is
 * sent anywhere. SIGINT and SIGTERM stop the listeners from taking new queries, give the
 * queries in flight until their deadline to be answered (SERVFAIL otherwise), deliver the
 * last answers, and exit 0. SIGHUP re-reads the server certificate and key: connections
 * accepted afterwards use them, open ones keep theirs, and a pair that cannot be loaded
 * is logged and the old one kept.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsward/bootstrap.h"
#include "dnsward/config.h"
#include "dnsward/doh.h"
#include "dnsward/dot.h"
#include "dnsward/listener.h"
#include "dnsward/log.h"
#include "dnsward/pool.h"
#include "dnsward/proxy.h"
#include "dnsward/tls_stream.h"
#include "dnsward/util.h"

enum { MAX_LISTENERS = 2 * CONFIG_MAX_LISTEN + 3 * CONFIG_MAX_SERVER_LISTEN };

/* The last answers on TCP get this long to leave after the last query is done. */
#define SHUTDOWN_FLUSH_S 1.0
#define SHUTDOWN_POLL_S 0.02

struct daemon {
    struct ev_loop *loop;
    struct config cfg;
    SSL_CTX *tls_ctx;
    SSL_CTX *dot_ctx; /* server contexts, when dot-listen or doh-listen is configured */
    SSL_CTX *doh_ctx;
    struct bootstrap *bootstrap;
    struct pool *pool;
    struct proxy *proxy;
    struct listener *listeners[MAX_LISTENERS];
    size_t nlisteners;
    ev_signal sigint;
    ev_signal sigterm;
    ev_signal sigusr1;
    ev_signal sighup;
    ev_timer shutdown_poll;
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

static void on_sigusr1(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct daemon *d = w->data;
    proxy_log_stats(d->proxy, LOG_NOTICE);
    pool_log_stats(d->pool, LOG_NOTICE);
}

/* Load the server certificate and key into new contexts for the DoT and DoH listeners.
 * Returns 0 (and replaces d's contexts, freeing the old ones) or -1 with a reason in err,
 * leaving d's contexts as they were. */
static int daemon_load_certs(struct daemon *d, char *err, size_t errlen)
{
    SSL_CTX *dot = NULL, *doh = NULL;
    if (d->cfg.ndot_listen > 0 &&
        (dot = tls_server_ctx_new(d->cfg.cert_file, d->cfg.key_file, err, errlen)) == NULL)
        return -1;
    if (d->cfg.ndoh_listen > 0 &&
        (doh = doh_server_ctx_new(d->cfg.cert_file, d->cfg.key_file, err, errlen)) == NULL) {
        SSL_CTX_free(dot);
        return -1;
    }
    SSL_CTX_free(d->dot_ctx);
    SSL_CTX_free(d->doh_ctx);
    d->dot_ctx = dot;
    d->doh_ctx = doh;
    return 0;
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct daemon *d = w->data;
    char err[CONFIG_ERR_LEN];
    if (d->dot_ctx == NULL && d->doh_ctx == NULL)
        return;
    if (daemon_load_certs(d, err, sizeof(err)) < 0) {
        log_err("SIGHUP: %s; keeping the certificate in use", err);
        return;
    }
    for (size_t i = 0; i < d->nlisteners; i++) {
        struct listener *l = d->listeners[i];
        if (l->ops->set_tls != NULL)
            l->ops->set_tls(l, strcmp(l->ops->name, "dot") == 0 ? d->dot_ctx : d->doh_ctx);
    }
    log_notice("SIGHUP: certificate %s reloaded", d->cfg.cert_file);
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
    bool needed = false;
    for (size_t i = 0; i < pool_count(d->pool); i++)
        needed |= pool_upstream(d->pool, i)->spec->addrlen == 0;
    if (!needed)
        return 0;
    d->bootstrap = bootstrap_new(d->loop, &d->cfg);
    if (d->bootstrap == NULL) {
        log_err("out of memory");
        return -1;
    }
    for (size_t i = 0; i < pool_count(d->pool); i++) {
        struct upstream *u = pool_upstream_mut(d->pool, i);
        int rc = u->spec->addrlen == 0 ? bootstrap_watch(d->bootstrap, u) : 0;
        if (rc < 0) {
            log_err("upstream %s: cannot resolve '%s': %s", u->spec->url, u->spec->host,
                    strerror(-rc));
            return -1;
        }
    }
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
    bootstrap_free(d->bootstrap);
    pool_free(d->pool);
    SSL_CTX_free(d->tls_ctx);
    SSL_CTX_free(d->dot_ctx);
    SSL_CTX_free(d->doh_ctx);
    if (d->loop != NULL) {
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigusr1);
        ev_signal_stop(d->loop, &d->sighup);
        ev_timer_stop(d->loop, &d->shutdown_poll);
        ev_loop_destroy(d->loop);
    }
}

int main(int argc, char **argv)
{
    static struct daemon d;
    char err[CONFIG_ERR_LEN];
    bool check_only = false;
    int status = 1;

    config_init(&d.cfg);
    int rc = config_parse_args(&d.cfg, argc, argv, &check_only, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0 || config_finish(&d.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "dnsward: %s\n", err);
        return 1;
    }
    log_set_level(d.cfg.log_level);
    d.tls_ctx = tls_client_ctx_new(d.cfg.ca_file, err, sizeof(err));
    if (d.tls_ctx == NULL || daemon_load_certs(&d, err, sizeof(err)) < 0) {
        fprintf(stderr, "dnsward: %s\n", err);
        daemon_cleanup(&d);
        return 1;
    }
    if (check_only) {
        size_t n = d.cfg.nlisten + d.cfg.ndot_listen + d.cfg.ndoh_listen + d.cfg.ndoh_plain_listen;
        printf("dnsward: configuration ok: %zu listener%s, %zu upstream%s\n", n, n == 1 ? "" : "s",
               d.cfg.nupstreams, d.cfg.nupstreams == 1 ? "" : "s");
        daemon_cleanup(&d);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Until its handler is installed, after the bootstrap, a certificate renewal's SIGHUP
     * must not end the process. */
    signal(SIGHUP, SIG_IGN);

    d.loop = ev_default_loop(EVFLAG_AUTO);
    if (d.loop == NULL) {
        log_err("cannot start the event loop");
        goto out;
    }
    d.pool = pool_new(d.loop, &d.cfg);
    if (d.pool == NULL) {
        log_err("out of memory");
        goto out;
    }
    for (size_t i = 0; i < d.cfg.nupstreams; i++) {
        const struct upstream_spec *spec = &d.cfg.upstream[i];
        struct upstream *u = spec->proto == UPSTREAM_DOH
                                 ? doh_upstream_new(d.loop, spec, &d.cfg, d.tls_ctx)
                                 : dot_upstream_new(d.loop, spec, &d.cfg, d.tls_ctx);
        if (u == NULL || pool_add(d.pool, u) < 0) {
            log_err("out of memory");
            goto out;
        }
    }
    if (daemon_bootstrap(&d) < 0)
        goto out;
    d.proxy = proxy_new(d.loop, &d.cfg, d.pool);
    if (d.proxy == NULL) {
        log_err("out of memory");
        goto out;
    }
    if (daemon_listen(&d) < 0)
        goto out;
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
