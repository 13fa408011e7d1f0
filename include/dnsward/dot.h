/* dot: the DNS-over-TLS upstream transport (RFC 7858).
 *
 * Persistent TLS connections to one upstream, each carrying many queries at once:
 * 2-byte length framing (RFC 1035 §4.2.2), a fresh random ID per query unique on its
 * connection, answers matched on ID and question and accepted in any order (RFC 7766
 * §7). A second connection is opened only when the first carries upstream-max-inflight
 * queries, up to upstream-max-connections. Idle connections close after
 * upstream-idle-timeout, or sooner when the upstream's EDNS keepalive (RFC 7828) says
 * so; a connection on which nothing has been received for an attempt timeout while a
 * query waited is presumed dead (a half-open connection after sleep) and closed. A new
 * connection resumes the last TLS session.
 */
#ifndef DNSWARD_DOT_H
#define DNSWARD_DOT_H

#include <ev.h>
#include <openssl/ssl.h>

#include "dnsward/upstream.h"

struct config;

/* A DoT upstream for *spec; spec, cfg and ctx are borrowed and must outlive it. No
 * connection is opened until the first attempt. Returns NULL on allocation failure. */
struct upstream *dot_upstream_new(struct ev_loop *loop, const struct upstream_spec *spec,
                                  const struct config *cfg, SSL_CTX *ctx);

#endif
