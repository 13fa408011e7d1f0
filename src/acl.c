/* acl: see include/dnsward/acl.h. */
#include "dnsward/acl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* The first 12 bytes of an IPv4-mapped IPv6 address, ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
static const uint8_t acl_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int acl_parse(const char *text, struct acl_net *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t len = strlen(text);
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, len + 1);

    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        const char *p = slash + 1;
        /* Digits only, and no leading zero ("/08"): a prefix is written one way, as
         * inet_pton takes IPv4 octets, so that a typo is refused rather than guessed. */
        if (*p < '0' || *p > '9' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0'))
            return -EINVAL;
        prefix = 0;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            prefix = prefix * 10 + (*p - '0');
        }
    }

    struct acl_net net;
    memset(&net, 0, sizeof(net));
    unsigned bits;
    if (inet_pton(AF_INET, buf, net.addr) == 1) {
        net.family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, buf, net.addr) == 1) {
        net.family = AF_INET6;
        bits = 128;
    } else {
        return -EINVAL;
    }
    if (prefix > (long)bits)
        return -ERANGE;
    net.prefix = (uint8_t)(prefix < 0 ? bits : (unsigned long)prefix);

    /* An IPv4-mapped network (::ffff:a.b.c.d/96 and longer) is an IPv4
     * network: acl_match_raw sees a mapped client as IPv4, so kept as IPv6 it would never
     * match anything. */
    if (net.family == AF_INET6 && net.prefix >= 96 &&
        memcmp(net.addr, acl_v4mapped, sizeof(acl_v4mapped)) == 0) {
        memmove(net.addr, net.addr + sizeof(acl_v4mapped), 4);
        memset(net.addr + 4, 0, sizeof(net.addr) - 4);
        net.family = AF_INET;
        net.prefix = (uint8_t)(net.prefix - 96);
        bits = 32;
    }

    /* Clear the host bits, so that matching is a plain comparison of the prefix. */
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned keep = net.prefix > i * 8 ? net.prefix - i * 8 : 0;
        if (keep < 8)
            net.addr[i] &= (uint8_t)(0xff00u >> keep);
    }
    *out = net;
    return 0;
}

int acl_add(struct acl *acl, const struct acl_net *net)
{
    if (acl->n >= ACL_MAX)
        return -ENOSPC;
    acl->net[acl->n++] = *net;
    return 0;
}

static bool acl_net_match(const struct acl_net *net, const uint8_t *addr)
{
    unsigned whole = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr, whole) != 0)
        return false;
    return rest == 0 || ((net->addr[whole] ^ addr[whole]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool acl_match_raw(const struct acl *acl, int family, const uint8_t *addr)
{
    if (family == AF_INET6 && memcmp(addr, acl_v4mapped, sizeof(acl_v4mapped)) == 0) {
        family = AF_INET;
        addr += sizeof(acl_v4mapped);
    }
    for (size_t i = 0; i < acl->n; i++)
        if (acl->net[i].family == family && acl_net_match(&acl->net[i], addr))
            return true;
    return false;
}

bool acl_match(const struct acl *acl, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return acl_match_raw(acl, AF_INET,
                             (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return acl_match_raw(acl, AF_INET6, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return false;
}

void acl_format(const struct acl_net *net, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(net->family, net->addr, text, sizeof(text)) == NULL)
        snprintf(text, sizeof(text), "?");
    snprintf(out, cap, "%s/%u", text, (unsigned)net->prefix);
}
