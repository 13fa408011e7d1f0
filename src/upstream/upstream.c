/* upstream: see include/dnsward/upstream.h. This file holds what an upstream is as
 * configured: its URL and its pins. The transports live beside it (dot.c), the choice
 * between upstreams in pool.c. */
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

#define UPSTREAM_URL_FORM "tls://ADDRESS[:PORT][#NAME]"
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

/* A port as written after ':': decimal digits only, 1-65535. */
static int upstream_parse_port(const char *text, uint16_t *port)
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

/* Letters, digits, hyphens and dots, in labels of 1 to 63 characters, 253 in all: the
 * form of a name that may be sent as SNI (RFC 6066 §3: a host name, no trailing dot). */
static bool upstream_name_valid(const char *name)
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

int upstream_parse_url(const char *url, struct upstream_spec *spec, char *err, size_t errlen)
{
    static const char scheme[] = "tls://";
    struct upstream_spec s;
    char buf[UPSTREAM_URL_MAX];
    char *host, *name, *port_text = NULL;
    uint16_t port = UPSTREAM_DOT_PORT;

    memset(&s, 0, sizeof(s));
    if (strlen(url) >= sizeof(buf))
        return upstream_error(err, errlen, "URL longer than %zu characters", sizeof(buf) - 1);
    if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0) {
        const char *sep = strstr(url, "://");
        if (sep == NULL)
            return upstream_error(err, errlen, "'%s' is not a URL: expected %s", url,
                                  UPSTREAM_URL_FORM);
        return upstream_error(err, errlen, "scheme '%.*s' is not supported: expected %s",
                              (int)(sep - url), url, UPSTREAM_URL_FORM);
    }
    memcpy(buf, url, strlen(url) + 1);
    host = buf + sizeof(scheme) - 1;

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

    if (*host == '[') {
        char *end = strchr(++host, ']');
        if (end == NULL)
            return upstream_error(err, errlen, "missing ']' after the IPv6 address");
        *end++ = '\0';
        if (*end == ':')
            port_text = end + 1;
        else if (*end != '\0')
            return upstream_error(err, errlen, "unexpected '%s' after the address", end);
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s.addr;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return upstream_error(err, errlen, "'%s' is not an IPv6 address", host);
        sin6->sin6_family = AF_INET6;
        s.addrlen = sizeof(*sin6);
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
            return upstream_error(err, errlen, "missing address: expected %s", UPSTREAM_URL_FORM);
        struct sockaddr_in *sin = (struct sockaddr_in *)&s.addr;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            if (upstream_looks_like_name(host))
                return upstream_error(err, errlen,
                                      "'%s' is a name, and resolving an upstream's name "
                                      "(bootstrap) is not supported yet: give its IP address "
                                      "and put the name after '#', as in "
                                      "tls://1.1.1.1#cloudflare-dns.com",
                                      host);
            return upstream_error(err, errlen, "'%s' is not an IPv4 address", host);
        }
        sin->sin_family = AF_INET;
        s.addrlen = sizeof(*sin);
    }

    if (port_text != NULL && upstream_parse_port(port_text, &port) != 0)
        return upstream_error(err, errlen, "port '%s' must be a number between 1 and 65535",
                              port_text);
    if (s.addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&s.addr)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&s.addr)->sin_port = htons(port);

    if (name != NULL) {
        /* A name that is itself an IPv4 literal is verified against the certificate's IP
         * addresses, and must not be sent as SNI (RFC 6066 §3). */
        struct in_addr ip;
        s.name_is_ip = inet_pton(AF_INET, name, &ip) == 1;
        memcpy(s.tls_name, name, strlen(name) + 1);
    } else {
        s.name_is_ip = true;
        memcpy(s.tls_name, host, strlen(host) + 1);
    }
    s.proto = UPSTREAM_DOT;
    memcpy(s.url, url, strlen(url) + 1);
    *spec = s;
    return 0;
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
