/* listener: the frontends, as a small table of function pointers.
 *
 * A listener owns its socket(s) and connections and turns bytes into calls of
 * proxy_query; it is the only place that knows the transport. main.c creates one UDP and
 * one TCP listener per `listen` address (src/frontend/udp.c, src/frontend/tcp.c), a DoT
 * listener per `dot-listen` (src/frontend/dot_server.c), and a DoH listener per
 * `doh-listen` and `doh-plain-listen` (src/frontend/doh_server.c). Sockets are bound when
 * the listener is created, so that a start-up error (address in use, no permission for
 * port 53) is reported before anything else starts.
 *
 * Socket activation: sockets a service manager passed in (service.c) are adopted here
 * first; listener_socket() then hands out an adopted socket of the same type bound to the
 * same address instead of binding a new one, so that the listeners never need to know
 * where their socket came from.
 *
 * Access: every listener hands the core its client's address (the forwarded one, for a
 * trusted reverse proxy); the core answers REFUSED outside cfg->allow, and the DoH
 * listener answers 403 before a request reaches the core.
 */
#ifndef DNSWARD_LISTENER_H
#define DNSWARD_LISTENER_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct proxy;
struct listener;

struct listener_ops {
    const char *name;
    /* Stop taking new queries (shutdown). Answers still go out. */
    void (*stop)(struct listener *l);
    /* Connections still open (0 for datagram listeners). */
    size_t (*connections)(const struct listener *l);
    /* Close everything and free l. */
    void (*free)(struct listener *l);
    /* TLS listeners only (NULL for the others): use ctx for connections accepted from now
     * on (a certificate reload). The listener takes its own reference (SSL_CTX_up_ref) and
     * drops the one it held; connections already open keep theirs. */
    void (*set_tls)(struct listener *l, SSL_CTX *ctx);
};

struct listener {
    const struct listener_ops *ops;
    struct ev_loop *loop;
    struct proxy *proxy;
    const struct config *cfg;
    char name[80];    /* "udp 127.0.0.1:53", for logs and metrics */
    uint64_t queries; /* messages this listener handed to the core */
};

/* Create a UDP or TCP listener bound to addr. Returns 0 and *out, or -errno with a
 * reason in err ("udp 127.0.0.1:53: Address already in use"). */
int udp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen);
int tcp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen);

/* A DNS-over-TLS listener (RFC 7858): TLS over TCP, then the framing, pipelining, limits
 * and timeouts of the TCP listener (RFC 7766). ctx is a server context
 * (tls_server_ctx_new); the listener takes its own reference. Returns 0 and *out, or
 * -errno with a reason in err. */
int dot_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, SSL_CTX *ctx,
                     struct listener **out, char *err, size_t errlen);

/* A DNS-over-HTTPS listener (RFC 8484). With ctx (a server context offering ALPN h2 and
 * http/1.1, see doh_server_ctx_new; the listener takes its own reference): HTTPS, HTTP/2
 * or HTTP/1.1 as ALPN agrees (HTTP/1.1 without ALPN). With ctx NULL: cleartext, for a reverse
 * proxy in front: HTTP/2 with prior knowledge (RFC 9113 §3.3) or HTTP/1.1, told apart by
 * the connection's first bytes, and the client's address taken from X-Forwarded-For when
 * the peer is in cfg->trusted_proxies. Returns 0 and *out, or -errno with a reason in err. */
int doh_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, SSL_CTX *ctx,
                     struct listener **out, char *err, size_t errlen);

/* The server context of a DoH listener: tls_server_ctx_new with ALPN h2 and http/1.1.
 * Returns it (the caller frees it) or NULL with a reason in err. */
SSL_CTX *doh_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Shared by the frontends: a non-blocking socket of type bound to addr (SO_REUSEADDR,
 * IPV6_V6ONLY for IPv6). An adopted socket of that type bound to an equal address (family,
 * port, address; see listener_adopt) is taken and returned instead: the caller owns it
 * from then on, as it would a new one, and may call listen() on it again. Returns the
 * descriptor or -errno with a reason in err. */
int listener_socket(int type, const struct sockaddr *addr, socklen_t len, const char *what,
                    char *err, size_t errlen);

/* Most sockets that can wait for a listener at once. */
#define LISTENER_MAX_ADOPTED 64

/* Keep fd, a bound socket the service manager passed in, for listener_socket() to hand
 * out. Ownership of fd moves here on success; on failure the caller keeps it. Returns 0,
 * -ENOTSOCK (not a socket, or not a UDP or TCP socket of IPv4 or IPv6) or -ENOSPC (already
 * LISTENER_MAX_ADOPTED waiting). */
int listener_adopt(int fd);

/* Take back one adopted socket that no listener took. Returns it (the caller owns it
 * now) or -1 when none is left. */
int listener_adopted_take_unused(void);

#endif
