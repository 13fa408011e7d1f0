/* acl: lists of networks (CIDR), for who may ask (allow) and whose forwarded address is
 * believed (trusted-proxy).
 *
 * Pure: no I/O, no allocation. An IPv4 address seen as an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, as a dual-stack socket reports it) is an IPv4 client: it matches the
 * IPv4 networks, and never an IPv6 one (not even ::/0, which means "every IPv6 client").
 * A mapped network written as IPv6 (::ffff:10.0.0.0/104) is stored as the IPv4 network
 * it names (10.0.0.0/8), so that it matches the same clients.
 */
#ifndef DNSWARD_ACL_H
#define DNSWARD_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum { ACL_MAX = 64 };

struct acl_net {
    uint8_t addr[16]; /* network address, host bits zero; IPv4 in the first 4 bytes */
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint8_t prefix;   /* 0..32 or 0..128 */
};

struct acl {
    struct acl_net net[ACL_MAX];
    size_t n;
};

/* Parse "ADDR/PREFIX" or a bare "ADDR" (a host: /32 or /128) into *out; host bits set in
 * ADDR are cleared ("192.168.1.7/24" is 192.168.1.0/24). PREFIX is decimal digits without
 * a leading zero; no white space is allowed anywhere. Returns 0, -EINVAL for a malformed
 * text, or -ERANGE for a prefix beyond the family's length. */
int acl_parse(const char *text, struct acl_net *out);

/* Add a network to acl. Returns 0 or -ENOSPC when it already holds ACL_MAX. */
int acl_add(struct acl *acl, const struct acl_net *net);

/* Is the address (AF_INET or AF_INET6; anything else never matches) in one of acl's
 * networks? */
bool acl_match(const struct acl *acl, const struct sockaddr *sa);

/* The same for a raw address of family (4 or 16 bytes at addr). */
bool acl_match_raw(const struct acl *acl, int family, const uint8_t *addr);

/* Write net as "ADDR/PREFIX" into out, truncated to cap. */
void acl_format(const struct acl_net *net, char *out, size_t cap);

#endif
