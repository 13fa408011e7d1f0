/* doh: the DNS-over-HTTPS upstream transport (RFC 8484), HTTP/2 through nghttp2.
 *
 * Persistent TLS connections (ALPN "h2", nothing else) to one upstream, each carrying
 * one HTTP/2 stream per query, as many at once as the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS and upstream-max-inflight allow; a second connection
 * is opened only when the first is full, up to upstream-max-connections. A query is a
 * POST of application/dns-message, or (doh-method = get) a GET with ?dns= and the query
 * in base64url; its DNS ID is 0 (RFC 8484 §4.1) and it arrives padded (RFC 8467) from the
 * proxy. An answer is accepted only with status 200, content-type
 * application/dns-message, ID 0 and a body that parses as an answer to the question of
 * that stream; anything else (another status or type, garbage, RST_STREAM, a body cut
 * short or over 65,535 bytes) fails the attempt, and the pool retries.
 *
 * GOAWAY: the streams the server did not process fail with -ECONNABORTED and are
 * retried; the connection takes no new stream, finishes the others, and closes. A
 * connection on which nothing was received for DOH_PING_IDLE seconds is sent a PING
 * with the next query, and so is one on which an attempt timed out with no response on
 * the connection since it was sent; if nothing comes back within the upstream's attempt
 * timeout it is closed, failing what it carried, so a half-open connection (after sleep
 * or a network change) costs one retry, not a hang, while a connection that was only
 * slow to answer one name is kept. Idle connections close after upstream-idle-timeout; a
 * new connection resumes the last TLS session.
 */
#ifndef DNSWARD_DOH_H
#define DNSWARD_DOH_H

#include <ev.h>
#include <openssl/ssl.h>

#include "dnsward/upstream.h"

struct config;

enum { DOH_PING_IDLE = 10 /* seconds */ };

/* A DoH upstream for *spec (spec->proto UPSTREAM_DOH); spec, cfg and ctx are borrowed and
 * must outlive it. No connection is opened until the first attempt. Returns NULL on
 * allocation failure. */
struct upstream *doh_upstream_new(struct ev_loop *loop, const struct upstream_spec *spec,
                                  const struct config *cfg, SSL_CTX *ctx);

#endif
