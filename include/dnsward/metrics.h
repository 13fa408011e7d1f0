/* metrics: dnsward's counters in the Prometheus text format (version 0.0.4), served at
 * /metrics by a small HTTP/1.1 listener (metrics-listen) and written to the log on
 * SIGUSR1.
 *
 * What is exported: queries by transport and by listener, answers by RCODE and the other
 * core counters (struct proxy_stats), the cache (hits, misses, stale, evictions, entries,
 * bytes), per upstream (queries, answers, failures by kind, timeouts, state, srtt, and an
 * answer latency histogram), connections open per listener, reloads, the start time and
 * the build. Every name starts with dnsward_; counters end in _total; times are in
 * seconds. Every family has its # HELP and # TYPE lines, and its samples follow them
 * together, as the format requires. Label values (a listener's name, an upstream's URL)
 * are escaped as the format says: backslash, double quote and line feed.
 *
 * Rendering is pure (reads the stats, writes a buffer; no I/O). The listener is a
 * struct listener (ops name "metrics", proxy NULL) so the daemon stops and frees it with
 * the others; it answers GET (and HEAD) of /metrics (a query string is ignored) with 200
 * and text/plain; version=0.0.4, another path with 404, another method with 405, a
 * malformed request with the status http1_feed gives (400, 431, ...), and closes each
 * connection after its response ("connection: close"). A request body is never looked
 * at (the parser skips it, within HTTP1_BODY_MAX). Limits: METRICS_MAX_CONNECTIONS
 * connections (more wait in the kernel's backlog), METRICS_MAX_HEADER bytes of request
 * head, METRICS_PAGE_MAX bytes of page, and METRICS_IDLE_TIMEOUT_S of silence before a
 * connection is closed.
 */
#ifndef DNSWARD_METRICS_H
#define DNSWARD_METRICS_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct listener;
struct pool;
struct proxy;

enum {
    METRICS_MAX_CONNECTIONS = 16,
    METRICS_MAX_HEADER = 8192,       /* request line and header fields */
    METRICS_PAGE_MAX = 512 * 1024,   /* a page (and so a response body) never grows past */
    METRICS_IDLE_TIMEOUT_S = 10,     /* a connection silent this long is closed */
    METRICS_LINE_MAX = 2 * 1024 + 2, /* a sample line metrics_log writes (longer: cut) */
};

/* What a page is rendered from; every pointer is borrowed for the call. proxy and pool
 * may be NULL (their families are left out). Listeners whose ops name is "metrics" count
 * connections only. */
struct metrics_view {
    const struct proxy *proxy;
    const struct pool *pool;
    struct listener *const *listeners;
    size_t nlisteners;
    double start_time;        /* Unix time the process started */
    uint64_t reloads;         /* configurations reloaded */
    uint64_t reload_failures; /* reloads refused (the old configuration kept) */
};

/* Write the page into buf (cap bytes). Returns its length, or -ENOSPC if it does not fit
 * (nothing useful is in buf then). Pure. */
int metrics_render(const struct metrics_view *v, char *buf, size_t cap);

/* Write every sample line of the page (not the # HELP and # TYPE lines) to the log at
 * level, one line each, as metrics_render writes it (a line longer than the log takes is
 * cut). Allocates nothing; calls back nothing. */
void metrics_log(const struct metrics_view *v, int level);

/* Fills *view with the current state, for a page or a log: called for every request. */
typedef void metrics_view_cb(void *ctx, struct metrics_view *view);

/* A metrics listener bound to addr. view_cb(ctx, ...) is called for every page; ctx must
 * outlive the listener. Returns 0 and *out, or -errno with a reason in err. Free it with
 * (*out)->ops->free. */
int metrics_listener_new(struct ev_loop *loop, const struct sockaddr *addr, socklen_t len,
                         metrics_view_cb *view_cb, void *ctx, struct listener **out, char *err,
                         size_t errlen);

#endif
