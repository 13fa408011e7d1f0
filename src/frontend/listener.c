/* listener: what the frontends share. See include/dnsward/listener.h. */
#include "dnsward/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dnsward/tls_stream.h"

int listener_socket(int type, const struct sockaddr *addr, socklen_t len, const char *what,
                    char *err, size_t errlen)
{
    int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
