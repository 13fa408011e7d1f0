/* bootstrap: resolve the host names of upstreams through the configured bootstrap
 * servers, over plain DNS, and for nothing else.
 *
 * An upstream whose URL names its host (https://dns.example/dns-query, tls://dns.example)
 * needs that name's addresses before it can connect. They are asked, A and AAAA, of the
 * bootstrap servers only (config `bootstrap`), one server after the other with a
 * per-query timeout; an answer is accepted only from the server's address and port, with
 * the query's random ID and question, and is parsed like any upstream answer. The
 * addresses found (A first, then AAAA, UPSTREAM_MAX_ADDRS at most) are given to the
 * upstream (upstream_set_addrs) and resolved again when their smallest TTL runs out
 * (within BOOTSTRAP_MIN_TTL and BOOTSTRAP_MAX_TTL). A failed resolution keeps the old
 * addresses and is retried with a backoff from 1 s to BOOTSTRAP_RETRY_MAX. No other name
 * is ever sent to a bootstrap server, and without a bootstrap server config_finish has
 * already refused such an upstream.
 */
#ifndef DNSWARD_BOOTSTRAP_H
#define DNSWARD_BOOTSTRAP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "dnsward/upstream.h"

struct config;
struct bootstrap;

enum {
    BOOTSTRAP_MIN_TTL = 60,    /* seconds */
    BOOTSTRAP_MAX_TTL = 86400, /* seconds */
    BOOTSTRAP_RETRY_MAX = 60,  /* seconds */
    BOOTSTRAP_TIMEOUT_MS = 1000,
};

/* A resolver over the bootstrap servers of cfg (cfg->bootstrap, cfg->nbootstrap); cfg is
 * borrowed and must outlive it. Returns NULL on allocation failure. */
struct bootstrap *bootstrap_new(struct ev_loop *loop, const struct config *cfg);

/* Keep u's addresses resolved from u->spec->host (port u->spec->port): the first
 * resolution starts now, from the loop (never calls back into u before returning). u is
 * borrowed and must outlive the bootstrap (free the bootstrap first). Returns 0, -EINVAL
 * if u needs no resolution (u->spec->addrlen > 0) or its host cannot be put in a query,
 * -ENOSPC beyond CONFIG_MAX_UPSTREAMS watches, or -ENOMEM. */
int bootstrap_watch(struct bootstrap *b, struct upstream *u);

/* Have all watched upstreams received addresses at least once (or failed a first
 * resolution on every server)? main waits for this, bounded, before it serves. */
bool bootstrap_settled(const struct bootstrap *b);

/* Stop every resolution and free b. NULL is allowed. */
void bootstrap_free(struct bootstrap *b);

#endif
