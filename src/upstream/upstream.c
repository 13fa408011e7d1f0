/* upstream: see include/dnsward/upstream.h. This file holds what an upstream is as
 * configured (its URL and its pins; stamps in stamp.c) and the state every transport
 * shares: addresses, the connect-rate bound, failure kinds. The transports live beside
 * it (dot.c, doh.c), the choice between upstreams in pool.c. */
#include "dnsward/upstream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "dnsward/tls_stream.h"

#define UPSTREAM_URL_FORM "tls://HOST[:PORT][#NAME]"
#define UPSTREAM_DOH_FORM "https://HOST[:PORT]/PATH[#NAME]"
#define UPSTREAM_PIN_B64_LEN 44 /* base64 of 32 bytes: 43 characters and one '=' */

static int upstream_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int upstream_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int upstream_parse_port(const char *text, uint16_t *port)
{
    unsigned long v = 0;
    size_t n = strlen(text);
    if (n == 0 || n > 5)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)text[i]))
            return -EINVAL;
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

bool upstream_name_valid(const char *name)
{
    size_t n = strlen(name);
    size_t label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* True if text looks like a host name rather than a mistyped address: it has a letter and
 * nothing a name cannot hold. Only used to choose the error message. */
static bool upstream_looks_like_name(const char *text)
{
    bool letter = false;
    for (const char *p = text; *p != '\0'; p++) {
        if (isalpha((unsigned char)*p))
            letter = true;
        else if (!isdigit((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
    }
    return letter;
}

/* Parse "HOST[:PORT]" (HOST an IPv4 literal, a bracketed IPv6 literal or a name) of a URL
 * into s: the address when HOST is one, s->host and s->port. text is modified. */
static int upstream_parse_hostport(char *text, uint16_t default_port, struct upstream_spec *s,
                                   const char *form, char *err, size_t errlen)
{
    char *host = text, *port_text = NULL;
    bool v6 = false;
    uint16_t port = default_port;

    if (*host == '[') {
        char *end = strchr(++host, ']');
        if (end == NULL)
            return upstream_error(err, errlen, "missing ']' after the IPv6 address");
        *end++ = '\0';
        if (*end == ':')
            port_text = end + 1;
        else if (*end != '\0')
            return upstream_error(err, errlen, "unexpected '%s' after the address", end);
        v6 = true;
    } else {
        size_t len = strcspn(host, ":/?@");
        if (host[len] == ':' && strchr(host + len + 1, ':') != NULL)
            return upstream_error(err, errlen,
                                  "an IPv6 address must be in brackets, as in "
                                  "tls://[2606:4700::1111]");
        if (host[len] == ':')
            port_text = host + len + 1;
        else if (host[len] != '\0')
            return upstream_error(err, errlen, "unexpected '%s' after the address", host + len);
        host[len] = '\0';
        if (len == 0)
            return upstream_error(err, errlen, "missing address: expected %s", form);
    }
    if (port_text != NULL && upstream_parse_port(port_text, &port) != 0)
        return upstream_error(err, errlen, "port '%s' must be a number between 1 and 65535",
                              port_text);
    if (strlen(host) >= sizeof(s->host))
        return upstream_error(err, errlen, "host name longer than %zu characters",
                              sizeof(s->host) - 1);

    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->addr;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return upstream_error(err, errlen, "'%s' is not an IPv6 address", host);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        s->addrlen = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr;
        if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons(port);
            s->addrlen = sizeof(*sin);
        } else if (!upstream_looks_like_name(host)) {
            return upstream_error(err, errlen, "'%s' is not an IPv4 address", host);
        } else if (!upstream_name_valid(host)) {
            return upstream_error(err, errlen,
                                  "'%s' is not a valid host name (letters, digits, hyphens "
                                  "and dots; at most 253 characters)",
                                  host);
        }
        /* else a name: resolved through the bootstrap servers (addrlen stays 0) */
    }
    memcpy(s->host, host, strlen(host) + 1);
    s->port = port;
    return 0;
}

int upstream_parse_url(const char *url, struct upstream_spec *spec, char *err, size_t errlen)
{
    static const char tls_scheme[] = "tls://", https_scheme[] = "https://",
                      sdns_scheme[] = "sdns://";
    struct upstream_spec s;
    char buf[UPSTREAM_URL_MAX];
    char *host, *name, *path = NULL;
    const char *form;
    int rc;

    memset(&s, 0, sizeof(s));
    if (strlen(url) >= sizeof(buf))
        return upstream_error(err, errlen, "URL longer than %zu characters", sizeof(buf) - 1);
    memcpy(buf, url, strlen(url) + 1);
    if (strncasecmp(url, sdns_scheme, sizeof(sdns_scheme) - 1) == 0) {
        rc = upstream_parse_stamp(url + sizeof(sdns_scheme) - 1, &s, err, errlen);
        if (rc < 0)
            return rc;
        goto done;
    } else if (strncasecmp(url, tls_scheme, sizeof(tls_scheme) - 1) == 0) {
        s.proto = UPSTREAM_DOT;
        form = UPSTREAM_URL_FORM;
        host = buf + sizeof(tls_scheme) - 1;
    } else if (strncasecmp(url, https_scheme, sizeof(https_scheme) - 1) == 0) {
        s.proto = UPSTREAM_DOH;
        form = UPSTREAM_DOH_FORM;
        host = buf + sizeof(https_scheme) - 1;
    } else {
        const char *sep = strstr(url, "://");
        if (sep == NULL)
            return upstream_error(err, errlen, "'%s' is not a URL: expected %s, %s or sdns://STAMP",
                                  url, UPSTREAM_URL_FORM, UPSTREAM_DOH_FORM);
        return upstream_error(err, errlen,
                              "scheme '%.*s' is not supported: expected tls://, https:// or "
                              "sdns://",
                              (int)(sep - url), url);
    }

    /* The TLS name travels as the URL's fragment, so it is split off first. */
    name = strchr(host, '#');
    if (name != NULL) {
        *name++ = '\0';
        if (*name == '\0')
            return upstream_error(err, errlen, "empty name after '#'");
        if (!upstream_name_valid(name))
            return upstream_error(err, errlen,
                                  "'%s' is not a valid TLS name (letters, digits, hyphens "
                                  "and dots; at most 253 characters)",
                                  name);
    }
    if (s.proto == UPSTREAM_DOH) {
        path = strchr(host, '/');
        if (path != NULL) {
            if (strlen(path) >= sizeof(s.path))
                return upstream_error(err, errlen, "path longer than %zu characters",
                                      sizeof(s.path) - 1);
            memcpy(s.path, path, strlen(path) + 1);
            *path = '\0';
        }
        /* RFC 8484 §3 leaves the path to the server; "/dns-query" is what they use. */
        if (path == NULL || strcmp(s.path, "/") == 0)
            memcpy(s.path, "/dns-query", sizeof("/dns-query"));
        for (const char *p = s.path; *p != '\0'; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
                return upstream_error(err, errlen,
                                      "the path may not hold spaces or control "
                                      "characters; percent-encode them");
    }
    rc = upstream_parse_hostport(host,
                                 s.proto == UPSTREAM_DOH ? UPSTREAM_DOH_PORT : UPSTREAM_DOT_PORT,
                                 &s, form, err, errlen);
    if (rc < 0)
        return rc;

    /* A name that is itself an IP literal is verified against the certificate's IP
     * addresses, and must not be sent as SNI (RFC 6066 §3). */
    const char *tls_name = name != NULL ? name : s.host;
    struct in6_addr ip;
    s.name_is_ip =
        inet_pton(AF_INET, tls_name, &ip) == 1 || inet_pton(AF_INET6, tls_name, &ip) == 1;
    memcpy(s.tls_name, tls_name, strlen(tls_name) + 1);
    if (s.proto == UPSTREAM_DOH) {
        bool v6 = strchr(tls_name, ':') != NULL;
        if (s.port == UPSTREAM_DOH_PORT)
            snprintf(s.authority, sizeof(s.authority), "%s%.255s%s", v6 ? "[" : "", tls_name,
                     v6 ? "]" : "");
        else
            snprintf(s.authority, sizeof(s.authority), "%s%.255s%s:%u", v6 ? "[" : "", tls_name,
                     v6 ? "]" : "", s.port);
    }

done:
    memcpy(s.url, url, strlen(url) + 1);
    *spec = s;
    return 0;
}

void upstream_tls_peer(const struct upstream_spec *spec, SSL_SESSION *session,
                       struct tls_peer *peer)
{
    *peer = (struct tls_peer){
        .name = spec->tls_name,
        .name_is_ip = spec->name_is_ip,
        .pins = spec->npins ? (const uint8_t(*)[TLS_PIN_LEN])spec->pins : NULL,
        .npins = spec->npins,
        .pins_tbs = spec->pins_tbs,
        .session = session,
    };
}

int upstream_add_pin(struct upstream_spec *spec, const char *base64)
{
    /* EVP_DecodeBlock decodes whole 4-character groups and counts the zero bytes that
     * padding stands for, and it skips surrounding white space; so the form is checked
     * here: 43 characters of the standard alphabet and one '=', which decode to 33
     * bytes whose last must be 0 (else the encoding was not canonical). */
    unsigned char out[UPSTREAM_PIN_B64_LEN / 4 * 3];
    if (strlen(base64) != UPSTREAM_PIN_B64_LEN)
        return -EINVAL;
    for (size_t i = 0; i < UPSTREAM_PIN_B64_LEN - 1; i++) {
        unsigned char c = (unsigned char)base64[i];
        if (!isalnum(c) && c != '+' && c != '/')
            return -EINVAL;
    }
    if (base64[UPSTREAM_PIN_B64_LEN - 1] != '=')
        return -EINVAL;
    if (EVP_DecodeBlock(out, (const unsigned char *)base64, UPSTREAM_PIN_B64_LEN) !=
            (int)sizeof(out) ||
        out[32] != 0)
        return -EINVAL;
    if (spec->npins >= UPSTREAM_MAX_PINS)
        return -ENOSPC;
    memcpy(spec->pins[spec->npins++], out, 32);
    return 0;
}

enum upstream_fail upstream_fail_kind(int err)
{
    switch (err) {
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ETIMEDOUT:
        return UPSTREAM_FAIL_CONNECT;
    case -EKEYREJECTED:
    case -EPROTO:
        return UPSTREAM_FAIL_TLS;
    case -ECONNRESET:
    case -EPIPE:
        return UPSTREAM_FAIL_CLOSED;
    case -EBADMSG:
    case -EMSGSIZE:
        return UPSTREAM_FAIL_ANSWER;
    case -EREMOTEIO:
    case -EMEDIUMTYPE:
        return UPSTREAM_FAIL_HTTP;
    case -ECONNABORTED:
        return UPSTREAM_FAIL_GOAWAY;
    default:
        return UPSTREAM_FAIL_OTHER;
    }
}

const char *upstream_fail_name(enum upstream_fail kind)
{
    static const char *const names[UPSTREAM_FAIL_KINDS] = {
        [UPSTREAM_FAIL_CONNECT] = "connect", [UPSTREAM_FAIL_TLS] = "tls",
        [UPSTREAM_FAIL_CLOSED] = "closed",   [UPSTREAM_FAIL_ANSWER] = "answer",
        [UPSTREAM_FAIL_HTTP] = "http",       [UPSTREAM_FAIL_GOAWAY] = "goaway",
        [UPSTREAM_FAIL_OTHER] = "other",
    };
    return (unsigned)kind < UPSTREAM_FAIL_KINDS ? names[kind] : "other";
}

void upstream_init(struct upstream *u, const struct upstream_ops *ops,
                   const struct upstream_spec *spec, double rate, double burst, double rto)
{
    memset(u, 0, sizeof(*u));
    u->ops = ops;
    u->spec = spec;
    if (spec->addrlen > 0)
        upstream_set_addrs(u, &spec->addr, &spec->addrlen, 1);
    u->connect_rate = rate;
    u->connect_burst = burst;
    u->connect_tokens = burst;
    u->connect_stamp = -1;
    u->rto = rto;
}

int upstream_addr(const struct upstream *u, const struct sockaddr **sa, socklen_t *len)
{
    if (u->addrs.n == 0)
        return -EAGAIN;
    *sa = (const struct sockaddr *)&u->addrs.addr[u->addrs.next];
    *len = u->addrs.len[u->addrs.next];
    return 0;
}

void upstream_addr_failed(struct upstream *u)
{
    if (u->addrs.n > 0)
        u->addrs.next = (u->addrs.next + 1) % u->addrs.n;
}

void upstream_set_addrs(struct upstream *u, const struct sockaddr_storage *addrs,
                        const socklen_t *lens, size_t n)
{
    struct upstream_addrs *a = &u->addrs;
    struct sockaddr_storage current;
    socklen_t current_len = a->n > 0 ? a->len[a->next] : 0;
    if (current_len > 0)
        memcpy(&current, &a->addr[a->next], current_len);
    if (n > UPSTREAM_MAX_ADDRS)
        n = UPSTREAM_MAX_ADDRS;
    a->n = 0;
    a->next = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(&a->addr[a->n], &addrs[i], lens[i]);
        a->len[a->n] = lens[i];
        if (lens[i] == current_len && memcmp(&addrs[i], &current, current_len) == 0)
            a->next = a->n;
        a->n++;
    }
}

bool upstream_may_connect(struct upstream *u, double now)
{
    if (u->connect_rate <= 0)
        return true;
    if (u->connect_stamp >= 0) {
        u->connect_tokens += (now - u->connect_stamp) * u->connect_rate;
        if (u->connect_tokens > u->connect_burst)
            u->connect_tokens = u->connect_burst;
    }
    u->connect_stamp = now;
    if (u->connect_tokens < 1) {
        u->stats.throttled++;
        return false;
    }
    u->connect_tokens -= 1;
    return true;
}

int upstream_connect_target(struct upstream *u, double now, const struct sockaddr **sa,
                            socklen_t *len)
{
    if (upstream_addr(u, sa, len) < 0 || !upstream_may_connect(u, now))
        return -EAGAIN;
    return 0;
}
