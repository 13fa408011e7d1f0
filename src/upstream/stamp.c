/* stamp: upstream_parse_stamp, see include/dnsward/upstream.h.
 *
 * A DNS stamp (https://dnscrypt.info/stamps-specifications) is base64url of
 *   DoH: 0x02 || props || LP(addr) || VLP(hash...) || LP(hostname) || LP(path)
 *             [ || VLP(bootstrap_ip...) ]
 *   DoT: 0x03 || props || LP(addr) || VLP(hash...) || LP(hostname) [ || VLP(bootstrap_ip...) ]
 * where props is 8 bytes (little-endian flags: DNSSEC, no logs, no filter), LP(x) is one
 * length byte and x, and VLP(x1, ..., xn) is the LP of each item with the high bit of
 * every length but the last set. The props and the bootstrap addresses are informal or
 * for clients that resolve through them; dnsward has its own bootstrap servers, so both
 * are read past and ignored. Everything else is checked as strictly as a URL would be:
 * a stamp is configuration, and a mistake in it is reported at start-up, not at the
 * first query. */
#include "dnsward/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dnsward/base64.h"

enum {
    STAMP_TYPE_PLAIN = 0x00,
    STAMP_TYPE_DNSCRYPT = 0x01,
    STAMP_TYPE_DOH = 0x02,
    STAMP_TYPE_DOT = 0x03,
    STAMP_TYPE_DOQ = 0x04,
    STAMP_TYPE_ODOH = 0x05,
    STAMP_TYPE_DNSCRYPT_RELAY = 0x81,
    STAMP_TYPE_ODOH_RELAY = 0x85,
    STAMP_PROPS_LEN = 8,
    STAMP_HASH_LEN = 32, /* SHA-256 */
    STAMP_VLP_MORE = 0x80,
    /* The longest stamp text: what fits in an upstream's URL after "sdns://". */
    STAMP_TEXT_MAX = UPSTREAM_URL_MAX - 8,
};

/* An LP item is at most 255 bytes, so every host and path a stamp can carry fits. */
_Static_assert(UPSTREAM_PATH_MAX > 255, "a stamp's path must always fit in spec->path");
_Static_assert(UPSTREAM_NAME_MAX > 255, "a stamp's host must always fit in spec->host");

/* The decoded stamp, read front to back. */
struct stamp_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static int stamp_error(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int stamp_error(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* One LP item: its bytes (borrowed from the reader) and length. Returns 0 or -EINVAL if
 * the stamp ends within it. */
static int stamp_read_lp(struct stamp_reader *r, const uint8_t **item, size_t *n)
{
    if (r->off >= r->len)
        return -EINVAL;
    size_t len = r->p[r->off];
    if (r->len - r->off - 1 < len)
        return -EINVAL;
    *item = r->p + r->off + 1;
    *n = len;
    r->off += 1 + len;
    return 0;
}

/* One item of a VLP set: like an LP item, but its length is 7 bits and the high bit says
 * whether another item follows (*more). */
static int stamp_read_vlp_item(struct stamp_reader *r, const uint8_t **item, size_t *n, bool *more)
{
    if (r->off >= r->len)
        return -EINVAL;
    uint8_t vlen = r->p[r->off];
    size_t len = vlen & (uint8_t)~STAMP_VLP_MORE;
    if (r->len - r->off - 1 < len)
        return -EINVAL;
    *item = r->p + r->off + 1;
    *n = len;
    *more = (vlen & STAMP_VLP_MORE) != 0;
    r->off += 1 + len;
    return 0;
}

/* A host name as upstream_name_valid has it, and not all digits in the last label (RFC
 * 3696 §2: no top-level domain is numeric, so "1.1.1" is a mistyped address, not a
 * name). */
static bool stamp_name_valid(const char *name)
{
    if (!upstream_name_valid(name))
        return false;
    const char *last = strrchr(name, '.');
    last = last != NULL ? last + 1 : name;
    return last[strspn(last, "0123456789")] != '\0';
}

/* Split "IP", "[IPv6]", either with ":PORT", or ":PORT" alone (what a stamp's addr and
 * hostname may hold) in place: *host is what precedes the port, without brackets (empty
 * for ":PORT"), *port_text what follows ':' or NULL, *bracketed whether it was in
 * brackets. Returns 0, or -EINVAL with a reason in err; what is named is the field. */
static int stamp_split_port(char *text, const char *what, char **host, char **port_text,
                            bool *bracketed, char *err, size_t errlen)
{
    *port_text = NULL;
    *bracketed = false;
    if (text[0] == '[') {
        char *end = strchr(text + 1, ']');
        if (end == NULL)
            return stamp_error(err, errlen, -EINVAL, "missing ']' in the stamp's %s '%s'", what,
                               text);
        if (end[1] == ':')
            *port_text = end + 2;
        else if (end[1] != '\0')
            return stamp_error(err, errlen, -EINVAL, "unexpected '%s' in the stamp's %s '%s'",
                               end + 1, what, text);
        *end = '\0';
        *host = text + 1;
        *bracketed = true;
        return 0;
    }
    char *colon = strchr(text, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
        return stamp_error(err, errlen, -EINVAL,
                           "the stamp's %s '%s' is an IPv6 address without brackets, as in "
                           "[2606:4700::1111]",
                           what, text);
    if (colon != NULL) {
        *colon = '\0';
        *port_text = colon + 1;
    }
    *host = text;
    return 0;
}

/* An LP item (n < cap) as a C string, if it is printable ASCII without spaces: what an
 * address, a host name or a URL path can hold. A NUL would cut the string short, and a
 * control character would break the one-line message that quotes the item. */
static int stamp_item_text(const uint8_t *item, size_t n, char *out, size_t cap, const char *what,
                           char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (item[i] <= 0x20 || item[i] >= 0x7f)
            return stamp_error(err, errlen, -EINVAL,
                               "the stamp's %s holds the byte 0x%02x, which it cannot", what,
                               item[i]);
    }
    if (n >= cap)
        return stamp_error(err, errlen, -EINVAL, "the stamp's %s is too long", what);
    memcpy(out, item, n);
    out[n] = '\0';
    return 0;
}

/* What the addr and hostname items share: the item as text (in text, for messages), a
 * copy split in place into *host and its port (in copy), and the port parsed into *port
 * (*has_port set) if there is one. what names the field. Returns 0, or -EINVAL with a
 * reason in err. */
static int stamp_item_hostport(const uint8_t *item, size_t n, const char *what, char text[256],
                               char copy[256], char **host, uint16_t *port, bool *has_port,
                               bool *bracketed, char *err, size_t errlen)
{
    char *port_text;
    int rc = stamp_item_text(item, n, text, 256, what, err, errlen);
    if (rc != 0)
        return rc;
    memcpy(copy, text, n + 1);
    rc = stamp_split_port(copy, what, host, &port_text, bracketed, err, errlen);
    if (rc != 0)
        return rc;
    if (port_text != NULL) {
        if (upstream_parse_port(port_text, port) != 0)
            return stamp_error(err, errlen, -EINVAL,
                               "port '%s' in the stamp's %s must be a number between 1 and "
                               "65535",
                               port_text, what);
        *has_port = true;
    }
    return 0;
}

/* The stamp's addr: empty, ":PORT", "IPv4[:PORT]" or "[IPv6][:PORT]". Fills s->addr (port
 * left 0) when there is an address, and *port when there is a port. */
static int stamp_parse_addr(const uint8_t *item, size_t n, struct upstream_spec *s, uint16_t *port,
                            bool *has_port, char *err, size_t errlen)
{
    char text[256], copy[256];
    char *host;
    bool bracketed;

    *has_port = false;
    if (n == 0)
        return 0;
    int rc = stamp_item_hostport(item, n, "address", text, copy, &host, port, has_port, &bracketed,
                                 err, errlen);
    if (rc != 0)
        return rc;
    if (bracketed) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->addr;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return stamp_error(err, errlen, -EINVAL,
                               "the stamp's address '%s' is not an IPv6 address in brackets", text);
        sin6->sin6_family = AF_INET6;
        s->addrlen = sizeof(*sin6);
    } else if (*host != '\0') {
        struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return stamp_error(err, errlen, -EINVAL,
                               "the stamp's address '%s' is not an IP address (a name belongs "
                               "in its host name)",
                               text);
        sin->sin_family = AF_INET;
        s->addrlen = sizeof(*sin);
    }
    return 0;
}

/* The stamp's hostname: "NAME", "IPv4" or "[IPv6]", with an optional ":PORT". Fills
 * s->host, s->tls_name and s->name_is_ip, and *port when there is a port. */
static int stamp_parse_host(const uint8_t *item, size_t n, struct upstream_spec *s, uint16_t *port,
                            bool *has_port, char *err, size_t errlen)
{
    char text[256], copy[256];
    char *host;
    bool bracketed;

    *has_port = false;
    if (n == 0)
        return stamp_error(err, errlen, -EINVAL, "the stamp has no host name");
    int rc = stamp_item_hostport(item, n, "host name", text, copy, &host, port, has_port,
                                 &bracketed, err, errlen);
    if (rc != 0)
        return rc;
    if (*host == '\0')
        return stamp_error(err, errlen, -EINVAL, "the stamp has no host name, only '%s'", text);

    struct in6_addr ip6;
    struct in_addr ip4;
    if (bracketed) {
        if (inet_pton(AF_INET6, host, &ip6) != 1)
            return stamp_error(err, errlen, -EINVAL,
                               "the stamp's host name '%s' is not an IPv6 address in brackets",
                               text);
        s->name_is_ip = true;
    } else if (inet_pton(AF_INET, host, &ip4) == 1) {
        s->name_is_ip = true;
    } else if (!stamp_name_valid(host)) {
        return stamp_error(err, errlen, -EINVAL,
                           "the stamp's host name '%s' is neither an IP address nor a valid "
                           "name (letters, digits, hyphens and dots; at most 253 characters)",
                           host);
    }
    size_t len = strlen(host);
    memcpy(s->host, host, len + 1);
    memcpy(s->tls_name, host, len + 1);
    return 0;
}

/* The certificate hashes: a VLP of SHA-256 digests of a certificate's to-be-signed part,
 * kept as TBS pins. An empty item stands for "no hash" (the stamp of a server that is
 * verified by its chain alone is VLP("")), and is skipped. */
static int stamp_parse_hashes(struct stamp_reader *r, struct upstream_spec *s, char *err,
                              size_t errlen)
{
    bool more = true;
    while (more) {
        const uint8_t *item;
        size_t n;
        if (stamp_read_vlp_item(r, &item, &n, &more) != 0)
            return stamp_error(err, errlen, -EINVAL,
                               "the stamp ends within its certificate hashes");
        if (n == 0)
            continue;
        if (n != STAMP_HASH_LEN)
            return stamp_error(err, errlen, -EINVAL,
                               "a certificate hash in the stamp has %zu bytes: a SHA-256 "
                               "digest has 32",
                               n);
        if (s->npins >= UPSTREAM_MAX_PINS)
            return stamp_error(err, errlen, -EINVAL,
                               "the stamp has more than %d certificate hashes", UPSTREAM_MAX_PINS);
        memcpy(s->pins[s->npins], item, STAMP_HASH_LEN);
        s->pins_tbs |= UINT32_C(1) << s->npins;
        s->npins++;
    }
    return 0;
}

/* The :path of a DoH stamp, kept as written. RFC 9113 §8.3.1: it is the path and query
 * of the URI, so it begins with '/' and has no fragment. */
static int stamp_parse_path(const uint8_t *item, size_t n, struct upstream_spec *s, char *err,
                            size_t errlen)
{
    int rc = stamp_item_text(item, n, s->path, sizeof(s->path), "path", err, errlen);
    if (rc != 0)
        return rc;
    if (s->path[0] != '/')
        return stamp_error(err, errlen, -EINVAL, "the stamp's path '%s' does not begin with '/'",
                           s->path);
    if (strchr(s->path, '#') != NULL)
        return stamp_error(err, errlen, -EINVAL,
                           "the stamp's path '%s' has a fragment ('#'), which a request cannot",
                           s->path);
    return 0;
}

/* The name of a kind of stamp dnsward does not speak, for the message that says so. */
static const char *stamp_kind(uint8_t type)
{
    switch (type) {
    case STAMP_TYPE_PLAIN:
        return "plain DNS";
    case STAMP_TYPE_DNSCRYPT:
        return "DNSCrypt";
    case STAMP_TYPE_DOQ:
        return "DNS-over-QUIC";
    case STAMP_TYPE_ODOH:
        return "Oblivious DoH target";
    case STAMP_TYPE_DNSCRYPT_RELAY:
        return "Anonymized DNSCrypt relay";
    case STAMP_TYPE_ODOH_RELAY:
        return "Oblivious DoH relay";
    default:
        return NULL;
    }
}

int upstream_parse_stamp(const char *stamp, struct upstream_spec *spec, char *err, size_t errlen)
{
    uint8_t bin[STAMP_TEXT_MAX / 4 * 3 + 3];
    struct upstream_spec s;
    struct stamp_reader r;
    const uint8_t *item;
    size_t n;
    uint16_t port, addr_port = 0, host_port = 0;
    bool addr_has_port, host_has_port;
    int rc;

    memset(&s, 0, sizeof(s));
    size_t textlen = strlen(stamp);
    if (textlen == 0)
        return stamp_error(err, errlen, -EINVAL, "empty stamp after sdns://");
    if (textlen > STAMP_TEXT_MAX)
        return stamp_error(err, errlen, -EINVAL, "stamp longer than %d characters", STAMP_TEXT_MAX);
    rc = base64url_decode(stamp, textlen, bin, sizeof(bin));
    if (rc < 0)
        return stamp_error(err, errlen, -EINVAL,
                           "the stamp is not valid base64url (A-Z a-z 0-9 - _)");
    r.p = bin;
    r.len = (size_t)rc;
    r.off = 1;

    uint8_t type = bin[0];
    if (type == STAMP_TYPE_DOH) {
        s.proto = UPSTREAM_DOH;
        port = UPSTREAM_DOH_PORT;
    } else if (type == STAMP_TYPE_DOT) {
        s.proto = UPSTREAM_DOT;
        port = UPSTREAM_DOT_PORT;
    } else if (stamp_kind(type) != NULL) {
        return stamp_error(err, errlen, -ENOTSUP,
                           "%s stamps are not supported: only DoH and DoT stamps are",
                           stamp_kind(type));
    } else {
        return stamp_error(err, errlen, -ENOTSUP,
                           "unknown stamp type 0x%02x: only DoH and DoT stamps are supported",
                           type);
    }

    /* props: informal flags about the resolver's policy (DNSSEC, logs, filtering). */
    if (r.len - r.off < STAMP_PROPS_LEN)
        return stamp_error(err, errlen, -EINVAL, "the stamp ends within its properties");
    r.off += STAMP_PROPS_LEN;

    if (stamp_read_lp(&r, &item, &n) != 0)
        return stamp_error(err, errlen, -EINVAL, "the stamp ends within its address");
    rc = stamp_parse_addr(item, n, &s, &addr_port, &addr_has_port, err, errlen);
    if (rc != 0)
        return rc;

    rc = stamp_parse_hashes(&r, &s, err, errlen);
    if (rc != 0)
        return rc;

    if (stamp_read_lp(&r, &item, &n) != 0)
        return stamp_error(err, errlen, -EINVAL, "the stamp ends within its host name");
    rc = stamp_parse_host(item, n, &s, &host_port, &host_has_port, err, errlen);
    if (rc != 0)
        return rc;

    if (s.proto == UPSTREAM_DOH) {
        if (stamp_read_lp(&r, &item, &n) != 0)
            return stamp_error(err, errlen, -EINVAL, "the stamp ends within its path");
        rc = stamp_parse_path(item, n, &s, err, errlen);
        if (rc != 0)
            return rc;
    }

    /* The bootstrap addresses, if any: read past, so that what follows them is seen. */
    if (r.off < r.len) {
        bool more = true;
        while (more) {
            if (stamp_read_vlp_item(&r, &item, &n, &more) != 0)
                return stamp_error(err, errlen, -EINVAL,
                                   "the stamp ends within its bootstrap addresses");
        }
    }
    if (r.off < r.len)
        return stamp_error(err, errlen, -EINVAL, "%zu unexpected byte%s at the end of the stamp",
                           r.len - r.off, r.len - r.off == 1 ? "" : "s");

    /* The address's port is where to connect; the host name's says the same for when
     * there is no address to carry one. */
    if (addr_has_port)
        port = addr_port;
    else if (host_has_port)
        port = host_port;
    s.port = port;

    /* A host name that is an IP literal is an address as well: it needs no bootstrap. */
    if (s.addrlen == 0 && s.name_is_ip) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s.addr;
        struct sockaddr_in *sin = (struct sockaddr_in *)&s.addr;
        if (inet_pton(AF_INET, s.host, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            s.addrlen = sizeof(*sin);
        } else if (inet_pton(AF_INET6, s.host, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            s.addrlen = sizeof(*sin6);
        }
    }
    if (s.addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&s.addr)->sin6_port = htons(port);
    else if (s.addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&s.addr)->sin_port = htons(port);

    /* RFC 9110 §7.2: the authority names the port when it is not the scheme's default;
     * an IPv6 literal is written in brackets (RFC 3986 §3.2.2). */
    if (s.proto == UPSTREAM_DOH) {
        bool v6 = strchr(s.host, ':') != NULL;
        if (port == UPSTREAM_DOH_PORT)
            snprintf(s.authority, sizeof(s.authority), v6 ? "[%s]" : "%s", s.host);
        else
            snprintf(s.authority, sizeof(s.authority), v6 ? "[%s]:%u" : "%s:%u", s.host,
                     (unsigned)port);
    }

    /* The URL is the caller's: keep what it wrote there. */
    memcpy(s.url, spec->url, sizeof(s.url));
    *spec = s;
    return 0;
}
