/* listener: what the frontends share. See include/dnsward/listener.h. */
#include "dnsward/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dnsward/tls_stream.h"

/* The sockets passed in by socket activation that no listener has taken yet. Start-up
 * runs on one thread, and the registry is empty once it is over
 * (service_close_unused_sockets), so a plain array will do. */
static int adopted[LISTENER_MAX_ADOPTED];
static size_t nadopted;

/* Same family, port and address: what a service manager's ListenStream=127.0.0.1:53 and a
 * `listen = 127.0.0.1:53` both mean. The IPv6 scope counts (fe80::1%eth0 is not
 * fe80::1%eth1); flow information does not. */
static bool addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

int listener_adopt(int fd)
{
    int type;
    socklen_t tlen = sizeof(type);
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
        (type != SOCK_DGRAM && type != SOCK_STREAM) ||
        getsockname(fd, (struct sockaddr *)&ss, &slen) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return -ENOTSOCK;
    if (nadopted == LISTENER_MAX_ADOPTED)
        return -ENOSPC;
    adopted[nadopted++] = fd;
    return 0;
}

int listener_adopted_take_unused(void)
{
    return nadopted > 0 ? adopted[--nadopted] : -1;
}

/* The adopted socket of type bound to addr, removed from the registry; or -1 when there
 * is none. */
static int listener_take_adopted(int type, const struct sockaddr *addr)
{
    for (size_t i = 0; i < nadopted; i++) {
        int fd = adopted[i], t;
        socklen_t tlen = sizeof(t);
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tlen) != 0 || t != type ||
            getsockname(fd, (struct sockaddr *)&ss, &slen) != 0 ||
            !addr_equal((const struct sockaddr *)&ss, addr))
            continue;
        adopted[i] = adopted[--nadopted];
        return fd;
    }
    return -1;
}

int listener_socket(int type, const struct sockaddr *addr, socklen_t len, const char *what,
                    char *err, size_t errlen)
{
    int fd = listener_take_adopted(type, addr);
    if (fd >= 0) {
        /* A service manager hands its sockets over blocking (close-on-exec was set when
         * they were adopted). */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            int e = errno;
            snprintf(err, errlen, "%s: passed-in socket: %s", what, strerror(e));
            close(fd);
            return -e;
        }
        return fd;
    }
    fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: socket: %s", what, strerror(e));
        return -e;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* An IPv6 listener serves IPv6 only, so that [::]:53 and 0.0.0.0:53 can coexist and
     * the configuration says exactly what is listened on. */
    if (addr->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, addr, len) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: bind: %s%s", what, strerror(e),
                 e == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE; try -l "
                               "127.0.0.1:5353)"
                             : "");
        close(fd);
        return -e;
    }
    return fd;
}

SSL_CTX *doh_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    /* RFC 8484 §5.2: HTTP/2 is the minimum; HTTP/1.1 for the clients that have no more. */
    static const char *const alpn[] = {"h2", "http/1.1"};
    SSL_CTX *ctx = tls_server_ctx_new(cert_file, key_file, err, errlen);
    if (ctx != NULL && tls_server_ctx_set_alpn(ctx, alpn, 2) != 0) {
        snprintf(err, errlen, "cannot set up ALPN");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
