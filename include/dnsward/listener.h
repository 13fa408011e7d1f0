/* listener: the plain-DNS frontends, as a small table of function pointers.
 *
 * A listener owns its socket(s) and connections and turns bytes into calls of
 * proxy_query; it is the only place that knows the transport. main.c creates one UDP and
 * one TCP listener per configured address (src/frontend/udp.c, src/frontend/tcp.c).
 * Sockets are bound when the listener is created, so that a start-up error (address in
 * use, no permission for port 53) is reported before anything else starts.
 */
#ifndef DNSWARD_LISTENER_H
#define DNSWARD_LISTENER_H

#include <ev.h>
#include <stddef.h>
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
};

struct listener {
    const struct listener_ops *ops;
    struct ev_loop *loop;
    struct proxy *proxy;
    const struct config *cfg;
    char name[80]; /* "udp 127.0.0.1:53", for logs */
};

/* Create a UDP or TCP listener bound to addr. Returns 0 and *out, or -errno with a
 * reason in err ("udp 127.0.0.1:53: Address already in use"). */
int udp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen);
int tcp_listener_new(struct ev_loop *loop, struct proxy *p, const struct config *cfg,
                     const struct sockaddr *addr, socklen_t len, struct listener **out, char *err,
                     size_t errlen);

/* Shared by the frontends: a non-blocking socket of type bound to addr (SO_REUSEADDR,
 * IPV6_V6ONLY for IPv6). Returns the descriptor or -errno with a reason in err. */
int listener_socket(int type, const struct sockaddr *addr, socklen_t len, const char *what,
                    char *err, size_t errlen);

#endif
