/* Unit tests for an upstream: the URL forms upstream_parse_url accepts (tls://, https://
 * and sdns://), every form it refuses and what it says, SHA-256 pins, the failure kinds,
 * and the state every transport shares: addresses and the connect-rate bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "dnsward/upstream.h"

#define PIN_ZERO "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define PIN_0_31 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define PIN_DNSWARD "C0drpPTsT3Vy6fhOcAGRDyRbtWkLn/AyPw3I7gsCXfI=" /* sha256("dnsward") */

static void assert_ipv4(const struct upstream_spec *s, const char *addr, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->addr;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(s->addrlen, sizeof(struct sockaddr_in));
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void assert_ipv6(const struct upstream_spec *s, const char *addr, uint16_t port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->addr;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(s->addrlen, sizeof(struct sockaddr_in6));
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void test_url_ipv4(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256] = "";
    assert_int_equal(upstream_parse_url("tls://1.1.1.1", &s, err, sizeof(err)), 0);
    assert_int_equal(s.proto, UPSTREAM_DOT);
    assert_string_equal(s.url, "tls://1.1.1.1");
    assert_ipv4(&s, "1.1.1.1", 853);
    assert_string_equal(s.tls_name, "1.1.1.1");
    assert_true(s.name_is_ip);
    assert_int_equal(s.npins, 0);
    assert_string_equal(err, "");
}

static void test_url_ipv4_port_and_name(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];
    assert_int_equal(upstream_parse_url("tls://9.9.9.9:8853#dns.quad9.net", &s, err, sizeof(err)),
                     0);
    assert_ipv4(&s, "9.9.9.9", 8853);
    assert_string_equal(s.tls_name, "dns.quad9.net");
    assert_false(s.name_is_ip);
    assert_string_equal(s.url, "tls://9.9.9.9:8853#dns.quad9.net");

    assert_int_equal(upstream_parse_url("tls://1.1.1.1#cloudflare-dns.com", &s, err, sizeof(err)),
                     0);
    assert_ipv4(&s, "1.1.1.1", 853);
    assert_string_equal(s.tls_name, "cloudflare-dns.com");
    assert_false(s.name_is_ip);

    assert_int_equal(upstream_parse_url("tls://1.1.1.1:1", &s, err, sizeof(err)), 0);
    assert_ipv4(&s, "1.1.1.1", 1);
    assert_int_equal(upstream_parse_url("tls://1.1.1.1:65535", &s, err, sizeof(err)), 0);
    assert_ipv4(&s, "1.1.1.1", 65535);
}

static void test_url_ipv6(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];
    assert_int_equal(upstream_parse_url("tls://[2606:4700::1111]", &s, err, sizeof(err)), 0);
    assert_ipv6(&s, "2606:4700::1111", 853);
    assert_string_equal(s.tls_name, "2606:4700::1111");
    assert_true(s.name_is_ip);

    assert_int_equal(
        upstream_parse_url("tls://[2620:fe::fe]:8853#dns.quad9.net", &s, err, sizeof(err)), 0);
    assert_ipv6(&s, "2620:fe::fe", 8853);
    assert_string_equal(s.tls_name, "dns.quad9.net");
    assert_false(s.name_is_ip);

    assert_int_equal(upstream_parse_url("tls://[::1]#localhost", &s, err, sizeof(err)), 0);
    assert_ipv6(&s, "::1", 853);
    assert_string_equal(s.tls_name, "localhost");
}

/* A name after '#' that is an IP literal is checked as an IP, and never sent as SNI. */
static void test_url_name_is_ip_literal(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];
    assert_int_equal(upstream_parse_url("tls://1.1.1.1#1.0.0.1", &s, err, sizeof(err)), 0);
    assert_string_equal(s.tls_name, "1.0.0.1");
    assert_true(s.name_is_ip);
}

static void test_url_scheme_case_and_long_name(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];
    char url[UPSTREAM_URL_MAX];
    char name[254];

    assert_int_equal(upstream_parse_url("TLS://8.8.8.8#dns.google", &s, err, sizeof(err)), 0);
    assert_ipv4(&s, "8.8.8.8", 853);

    /* 253 characters in labels of 63: the longest name there is. */
    memset(name, 'a', 253);
    name[63] = name[127] = name[191] = '.';
    name[253] = '\0';
    snprintf(url, sizeof(url), "tls://1.1.1.1#%s", name);
    assert_int_equal(upstream_parse_url(url, &s, err, sizeof(err)), 0);
    assert_string_equal(s.tls_name, name);
}

static void expect_url_error(const char *url, const char *message)
{
    struct upstream_spec s;
    char err[512] = "";
    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(upstream_parse_url(url, &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, message);
    /* A refused URL leaves the spec as it was. */
    for (size_t i = 0; i < sizeof(s); i++)
        assert_int_equal(((const uint8_t *)&s)[i], 0x5a);
}

#define NOT_A_URL                                                                                  \
    " is not a URL: expected tls://HOST[:PORT][#NAME], https://HOST[:PORT]/PATH[#NAME] or "        \
    "sdns://STAMP"

static void test_url_bad_scheme(void **state)
{
    (void)state;
    expect_url_error("udp://1.1.1.1",
                     "scheme 'udp' is not supported: expected tls://, https:// or sdns://");
    expect_url_error("http://1.1.1.1/dns-query",
                     "scheme 'http' is not supported: expected tls://, https:// or sdns://");
    expect_url_error("quic://1.1.1.1",
                     "scheme 'quic' is not supported: expected tls://, https:// or sdns://");
    expect_url_error("1.2.3.4", "'1.2.3.4'" NOT_A_URL);
    expect_url_error("", "''" NOT_A_URL);
    expect_url_error("tls:/1.1.1.1", "'tls:/1.1.1.1'" NOT_A_URL);
    expect_url_error("sdns:AgcAAAAAAAAABzEuMC4wLjE", "'sdns:AgcAAAAAAAAABzEuMC4wLjE'" NOT_A_URL);
}

static void assert_no_address(const struct upstream_spec *s)
{
    assert_int_equal(s->addrlen, 0);
    assert_int_equal(s->addr.ss_family, AF_UNSPEC);
}

/* A host name is accepted, with no address: the bootstrap servers will resolve it (and
 * config_finish refuses it when there are none). */
static void test_url_host_name_needs_bootstrap(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256] = "";

    assert_int_equal(upstream_parse_url("tls://dns.example", &s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(s.proto, UPSTREAM_DOT);
    assert_string_equal(s.url, "tls://dns.example");
    assert_no_address(&s);
    assert_string_equal(s.host, "dns.example");
    assert_int_equal(s.port, 853);
    assert_string_equal(s.tls_name, "dns.example");
    assert_false(s.name_is_ip);

    assert_int_equal(upstream_parse_url("tls://dns.google:8853#dns.google", &s, err, sizeof(err)),
                     0);
    assert_no_address(&s);
    assert_string_equal(s.host, "dns.google");
    assert_int_equal(s.port, 8853);
    assert_string_equal(s.tls_name, "dns.google");

    /* The name after '#' is the certificate's; the host is still the one to resolve. */
    assert_int_equal(
        upstream_parse_url("tls://resolver1.example#dns.example", &s, err, sizeof(err)), 0);
    assert_no_address(&s);
    assert_string_equal(s.host, "resolver1.example");
    assert_string_equal(s.tls_name, "dns.example");
    assert_int_equal(s.port, 853);

    /* A name given as an address literal needs no bootstrap: it is the address. */
    assert_int_equal(upstream_parse_url("tls://1.1.1.1", &s, err, sizeof(err)), 0);
    assert_string_equal(s.host, "1.1.1.1");
    assert_int_equal(s.port, 853);
    assert_int_equal(upstream_parse_url("tls://[2606:4700::1111]:8853", &s, err, sizeof(err)), 0);
    assert_string_equal(s.host, "2606:4700::1111");
    assert_int_equal(s.port, 8853);
}

static void test_url_bad_host_name(void **state)
{
    (void)state;
    char url[UPSTREAM_URL_MAX];
    char name[300];
    char message[512];

    expect_url_error("tls://dns..example", "'dns..example' is not a valid host name (letters, "
                                           "digits, hyphens and dots; at most 253 characters)");
    expect_url_error("tls://dns.example.:853", "'dns.example.' is not a valid host name (letters, "
                                               "digits, hyphens and dots; at most 253 characters)");
    expect_url_error("https://.example/dns-query",
                     "'.example' is not a valid host name (letters, digits, hyphens and dots; at "
                     "most 253 characters)");

    /* 254 characters, in labels of 63 at most. */
    memset(name, 'a', 254);
    name[63] = name[127] = name[191] = '.';
    name[254] = '\0';
    snprintf(url, sizeof(url), "tls://%s", name);
    snprintf(message, sizeof(message),
             "'%s' is not a valid host name (letters, digits, hyphens and dots; at most 253 "
             "characters)",
             name);
    expect_url_error(url, message);
    /* 253 is the longest there is. */
    name[253] = '\0';
    struct upstream_spec s;
    snprintf(url, sizeof(url), "tls://%s", name);
    assert_int_equal(upstream_parse_url(url, &s, NULL, 0), 0);
    assert_string_equal(s.host, name);
    assert_no_address(&s);
}

static void test_url_bad_address(void **state)
{
    (void)state;
    expect_url_error("tls://2606:4700::1111",
                     "an IPv6 address must be in brackets, as in tls://[2606:4700::1111]");
    expect_url_error("tls://[2606:4700::1111", "missing ']' after the IPv6 address");
    expect_url_error("tls://[1.1.1.1]", "'1.1.1.1' is not an IPv6 address");
    expect_url_error("tls://[]", "'' is not an IPv6 address");
    expect_url_error("tls://[::1]853", "unexpected '853' after the address");
    expect_url_error("tls://999.1.1.1", "'999.1.1.1' is not an IPv4 address");
    expect_url_error("tls://1.1.1", "'1.1.1' is not an IPv4 address");
    expect_url_error("tls://", "missing address: expected tls://HOST[:PORT][#NAME]");
    expect_url_error("tls://:853", "missing address: expected tls://HOST[:PORT][#NAME]");
    expect_url_error("tls://#dns.google", "missing address: expected tls://HOST[:PORT][#NAME]");
    expect_url_error("tls://1.1.1.1/dns-query", "unexpected '/dns-query' after the address");
    expect_url_error("tls://user@1.1.1.1", "unexpected '@1.1.1.1' after the address");
}

static void test_url_bad_port(void **state)
{
    (void)state;
    expect_url_error("tls://1.1.1.1:", "port '' must be a number between 1 and 65535");
    expect_url_error("tls://1.1.1.1:0", "port '0' must be a number between 1 and 65535");
    expect_url_error("tls://1.1.1.1:65536", "port '65536' must be a number between 1 and 65535");
    expect_url_error("tls://1.1.1.1:853853", "port '853853' must be a number between 1 and 65535");
    expect_url_error("tls://1.1.1.1:dot", "port 'dot' must be a number between 1 and 65535");
    expect_url_error("tls://1.1.1.1:-1", "port '-1' must be a number between 1 and 65535");
    expect_url_error("tls://[::1]:x", "port 'x' must be a number between 1 and 65535");
}

static void test_url_bad_name(void **state)
{
    (void)state;
    char url[UPSTREAM_URL_MAX];
    char name[300];
    char message[512];

    expect_url_error("tls://1.1.1.1#", "empty name after '#'");
    expect_url_error("tls://1.1.1.1#bad_name",
                     "'bad_name' is not a valid TLS name (letters, digits, hyphens and dots; at "
                     "most 253 characters)");
    expect_url_error("tls://1.1.1.1#a..b",
                     "'a..b' is not a valid TLS name (letters, digits, hyphens and dots; at most "
                     "253 characters)");
    expect_url_error("tls://1.1.1.1#.a",
                     "'.a' is not a valid TLS name (letters, digits, hyphens and dots; at most "
                     "253 characters)");
    expect_url_error("tls://1.1.1.1#dns.google.",
                     "'dns.google.' is not a valid TLS name (letters, digits, hyphens and dots; "
                     "at most 253 characters)");
    expect_url_error("tls://1.1.1.1#a b",
                     "'a b' is not a valid TLS name (letters, digits, hyphens and dots; at most "
                     "253 characters)");

    /* 254 characters, and a label of 64. */
    memset(name, 'a', 254);
    name[63] = name[127] = name[191] = '.';
    name[254] = '\0';
    snprintf(url, sizeof(url), "tls://1.1.1.1#%s", name);
    snprintf(message, sizeof(message),
             "'%s' is not a valid TLS name (letters, digits, hyphens and dots; at most 253 "
             "characters)",
             name);
    expect_url_error(url, message);
    memset(name, 'b', 64);
    name[64] = '\0';
    snprintf(url, sizeof(url), "tls://1.1.1.1#%s.com", name);
    snprintf(message, sizeof(message),
             "'%s.com' is not a valid TLS name (letters, digits, hyphens and dots; at most 253 "
             "characters)",
             name);
    expect_url_error(url, message);
}

static void test_url_too_long(void **state)
{
    (void)state;
    char url[UPSTREAM_URL_MAX + 1];
    char message[64];
    memset(url, 'a', sizeof(url) - 1);
    memcpy(url, "tls://1.1.1.1#", strlen("tls://1.1.1.1#"));
    url[sizeof(url) - 1] = '\0';
    snprintf(message, sizeof(message), "URL longer than %d characters", UPSTREAM_URL_MAX - 1);
    expect_url_error(url, message);
}

/* config_finish parses its defaults without an error buffer. */
static void test_url_without_err_buffer(void **state)
{
    (void)state;
    struct upstream_spec s;
    assert_int_equal(upstream_parse_url("udp://1.1.1.1", &s, NULL, 0), -EINVAL);
    assert_int_equal(upstream_parse_url("tls://dns..example", &s, NULL, 0), -EINVAL);
    assert_int_equal(upstream_parse_url("https://1.1.1.1/a b", &s, NULL, 0), -EINVAL);
    assert_int_equal(upstream_parse_url("sdns://!", &s, NULL, 0), -EINVAL);
    assert_int_equal(upstream_parse_url("tls://8.8.8.8#dns.google", &s, NULL, 0), 0);
    assert_int_equal(upstream_parse_url("tls://dns.example", &s, NULL, 0), 0);
}

/* DoH: https://HOST[:PORT][/PATH][#NAME], port 443, path "/dns-query" when none. */
static void test_https_ipv4(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256] = "";

    assert_int_equal(upstream_parse_url("https://1.1.1.1/dns-query", &s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_string_equal(s.url, "https://1.1.1.1/dns-query");
    assert_ipv4(&s, "1.1.1.1", 443);
    assert_string_equal(s.host, "1.1.1.1");
    assert_int_equal(s.port, 443);
    assert_string_equal(s.tls_name, "1.1.1.1");
    assert_true(s.name_is_ip);
    assert_string_equal(s.authority, "1.1.1.1");
    assert_string_equal(s.path, "/dns-query");
    assert_int_equal(s.npins, 0);

    /* RFC 8484 §3 leaves the path to the server; none, or "/", is "/dns-query". */
    assert_int_equal(upstream_parse_url("https://1.1.1.1", &s, err, sizeof(err)), 0);
    assert_string_equal(s.path, "/dns-query");
    assert_string_equal(s.url, "https://1.1.1.1");
    assert_int_equal(upstream_parse_url("https://1.1.1.1/", &s, err, sizeof(err)), 0);
    assert_string_equal(s.path, "/dns-query");
    assert_string_equal(s.authority, "1.1.1.1");

    /* A path of its own, with a query string, is kept as written. */
    assert_int_equal(
        upstream_parse_url("https://9.9.9.9:5053/resolve/v1?ct=x&a=%2F", &s, err, sizeof(err)), 0);
    assert_ipv4(&s, "9.9.9.9", 5053);
    assert_int_equal(s.port, 5053);
    assert_string_equal(s.path, "/resolve/v1?ct=x&a=%2F");
    assert_string_equal(s.authority, "9.9.9.9:5053");
    assert_string_equal(s.tls_name, "9.9.9.9");

    /* RFC 9110 §7.2: the default port is not written in the authority. */
    assert_int_equal(upstream_parse_url("https://1.1.1.1:443/dns-query", &s, err, sizeof(err)), 0);
    assert_string_equal(s.authority, "1.1.1.1");
    assert_int_equal(upstream_parse_url("https://1.1.1.1:853", &s, err, sizeof(err)), 0);
    assert_string_equal(s.authority, "1.1.1.1:853");
    assert_ipv4(&s, "1.1.1.1", 853);

    assert_int_equal(upstream_parse_url("HTTPS://8.8.8.8/dns-query", &s, err, sizeof(err)), 0);
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_ipv4(&s, "8.8.8.8", 443);
    assert_string_equal(s.url, "HTTPS://8.8.8.8/dns-query");
}

/* RFC 3986 §3.2.2: an IPv6 literal is written in brackets, in the URL and the authority. */
static void test_https_ipv6(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];

    assert_int_equal(
        upstream_parse_url("https://[2606:4700::1111]/dns-query", &s, err, sizeof(err)), 0);
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_ipv6(&s, "2606:4700::1111", 443);
    assert_string_equal(s.host, "2606:4700::1111");
    assert_string_equal(s.tls_name, "2606:4700::1111");
    assert_true(s.name_is_ip);
    assert_string_equal(s.authority, "[2606:4700::1111]");
    assert_string_equal(s.path, "/dns-query");

    assert_int_equal(upstream_parse_url("https://[2606:4700::1111]:8443", &s, err, sizeof(err)), 0);
    assert_ipv6(&s, "2606:4700::1111", 8443);
    assert_string_equal(s.authority, "[2606:4700::1111]:8443");
    assert_string_equal(s.path, "/dns-query");

    assert_int_equal(upstream_parse_url("https://[::1]:4443/q?x=1", &s, err, sizeof(err)), 0);
    assert_ipv6(&s, "::1", 4443);
    assert_string_equal(s.authority, "[::1]:4443");
    assert_string_equal(s.path, "/q?x=1");
}

/* #NAME: what the certificate must carry, and the authority the request names. */
static void test_https_name(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];

    assert_int_equal(
        upstream_parse_url("https://1.1.1.1/dns-query#cloudflare-dns.com", &s, err, sizeof(err)),
        0);
    assert_ipv4(&s, "1.1.1.1", 443);
    assert_string_equal(s.host, "1.1.1.1");
    assert_string_equal(s.tls_name, "cloudflare-dns.com");
    assert_false(s.name_is_ip);
    assert_string_equal(s.authority, "cloudflare-dns.com");
    assert_string_equal(s.path, "/dns-query");
    assert_string_equal(s.url, "https://1.1.1.1/dns-query#cloudflare-dns.com");

    /* The name follows the path and its query string; the port stays in the authority. */
    assert_int_equal(upstream_parse_url("https://[2606:4700::1111]:8443/q?a=b#cloudflare-dns.com",
                                        &s, err, sizeof(err)),
                     0);
    assert_ipv6(&s, "2606:4700::1111", 8443);
    assert_string_equal(s.tls_name, "cloudflare-dns.com");
    assert_false(s.name_is_ip);
    assert_string_equal(s.authority, "cloudflare-dns.com:8443");
    assert_string_equal(s.path, "/q?a=b");

    /* Without a path. */
    assert_int_equal(upstream_parse_url("https://9.9.9.9#dns.quad9.net", &s, err, sizeof(err)), 0);
    assert_string_equal(s.path, "/dns-query");
    assert_string_equal(s.authority, "dns.quad9.net");

    /* A name that is an IP literal is verified as an IP, and never sent as SNI. */
    assert_int_equal(upstream_parse_url("https://1.1.1.1/dns-query#1.0.0.1", &s, err, sizeof(err)),
                     0);
    assert_string_equal(s.tls_name, "1.0.0.1");
    assert_true(s.name_is_ip);
    assert_string_equal(s.authority, "1.0.0.1");
}

static void test_https_host_name_needs_bootstrap(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256];

    assert_int_equal(upstream_parse_url("https://dns.example/dns-query", &s, err, sizeof(err)), 0);
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_no_address(&s);
    assert_string_equal(s.host, "dns.example");
    assert_int_equal(s.port, 443);
    assert_string_equal(s.tls_name, "dns.example");
    assert_false(s.name_is_ip);
    assert_string_equal(s.authority, "dns.example");
    assert_string_equal(s.path, "/dns-query");

    assert_int_equal(
        upstream_parse_url("https://doh.example:5443/resolve?ct#cdn.example", &s, err, sizeof(err)),
        0);
    assert_no_address(&s);
    assert_string_equal(s.host, "doh.example");
    assert_int_equal(s.port, 5443);
    assert_string_equal(s.tls_name, "cdn.example");
    assert_string_equal(s.authority, "cdn.example:5443");
    assert_string_equal(s.path, "/resolve?ct");

    assert_int_equal(upstream_parse_url("https://Dns.Google", &s, err, sizeof(err)), 0);
    assert_no_address(&s);
    assert_string_equal(s.host, "Dns.Google");
    assert_string_equal(s.authority, "Dns.Google");
    assert_string_equal(s.path, "/dns-query");
}

#define BAD_PATH "the path may not hold spaces or control characters; percent-encode them"

static void test_https_bad(void **state)
{
    (void)state;
    char url[UPSTREAM_URL_MAX];
    char path[UPSTREAM_PATH_MAX + 1];
    struct upstream_spec s;

    /* The path goes into a request line of its own: nothing that could split it. */
    expect_url_error("https://1.1.1.1/dns query", BAD_PATH);
    expect_url_error("https://1.1.1.1/dns-query\t", BAD_PATH);
    expect_url_error("https://1.1.1.1/dns-query\r\nX-Injected: 1", BAD_PATH);
    expect_url_error("https://1.1.1.1/\x01", BAD_PATH);
    expect_url_error("https://1.1.1.1/\x1f", BAD_PATH);
    expect_url_error("https://1.1.1.1/\x7f", BAD_PATH);
    expect_url_error("https://1.1.1.1/caf\xc3\xa9", BAD_PATH);
    expect_url_error("https://dns.example/a b#dns.example", BAD_PATH);

    expect_url_error("https://1.1.1.1:0/dns-query",
                     "port '0' must be a number between 1 and 65535");
    expect_url_error("https://1.1.1.1:65536", "port '65536' must be a number between 1 and 65535");
    expect_url_error("https://1.1.1.1:/dns-query", "port '' must be a number between 1 and 65535");
    expect_url_error("https://1.1.1.1:https/", "port 'https' must be a number between 1 and 65535");
    expect_url_error("https://[::1]:x/dns-query", "port 'x' must be a number between 1 and 65535");
    expect_url_error("https://dns.example:-1/dns-query",
                     "port '-1' must be a number between 1 and 65535");

    expect_url_error("https://", "missing address: expected https://HOST[:PORT]/PATH[#NAME]");
    expect_url_error("https:///dns-query",
                     "missing address: expected https://HOST[:PORT]/PATH[#NAME]");
    expect_url_error("https://:443/dns-query",
                     "missing address: expected https://HOST[:PORT]/PATH[#NAME]");
    expect_url_error("https://#dns.google",
                     "missing address: expected https://HOST[:PORT]/PATH[#NAME]");
    expect_url_error("https://[2606:4700::1111/dns-query", "missing ']' after the IPv6 address");
    expect_url_error("https://[1.1.1.1]/dns-query", "'1.1.1.1' is not an IPv6 address");
    expect_url_error("https://user@1.1.1.1/dns-query", "unexpected '@1.1.1.1' after the address");
    expect_url_error("https://1.1.1.1?dns=AAAB", "unexpected '?dns=AAAB' after the address");
    expect_url_error("https://999.1.1.1/dns-query", "'999.1.1.1' is not an IPv4 address");
    expect_url_error("https://1.1.1.1/dns-query#", "empty name after '#'");
    expect_url_error("https://1.1.1.1/dns-query#bad_name",
                     "'bad_name' is not a valid TLS name (letters, digits, hyphens and dots; at "
                     "most 253 characters)");

    /* An IPv6 address without brackets is refused (the example it gives is a DoT URL). */
    char err[256] = "";
    assert_int_equal(upstream_parse_url("https://2606:4700::1111/dns-query", &s, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "an IPv6 address must be in brackets"));

    /* The path fits in UPSTREAM_PATH_MAX - 1 characters. */
    memset(path, 'p', sizeof(path));
    path[0] = '/';
    path[UPSTREAM_PATH_MAX - 1] = '\0';
    snprintf(url, sizeof(url), "https://1.1.1.1%s", path);
    assert_int_equal(upstream_parse_url(url, &s, NULL, 0), 0);
    assert_string_equal(s.path, path);
    path[UPSTREAM_PATH_MAX - 1] = 'p';
    path[UPSTREAM_PATH_MAX] = '\0';
    snprintf(url, sizeof(url), "https://1.1.1.1%s", path);
    char message[64];
    snprintf(message, sizeof(message), "path longer than %d characters", UPSTREAM_PATH_MAX - 1);
    expect_url_error(url, message);
}

/* A DoH stamp of Cloudflare: address 1.0.0.1, host name dns.cloudflare.com, path
 * /dns-query, no hashes. */
#define STAMP_DOH "AgcAAAAAAAAABzEuMC4wLjEAEmRucy5jbG91ZGZsYXJlLmNvbQovZG5zLXF1ZXJ5"
/* A DoT stamp with no address and the host name dns.example. */
#define STAMP_DOT_NAME "AwAAAAAAAAAAAAALZG5zLmV4YW1wbGU"
/* A DNSCrypt stamp (type 0x01). */
#define STAMP_DNSCRYPT "AQAAAAAAAAAABzEuMi4zLjQ"

/* sdns:// goes to the stamp parser (tested in test_stamp.c); the URL is kept as written. */
static void test_sdns_dispatch(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[256] = "";

    assert_int_equal(upstream_parse_url("sdns://" STAMP_DOH, &s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_string_equal(s.url, "sdns://" STAMP_DOH);
    assert_ipv4(&s, "1.0.0.1", 443);
    assert_int_equal(s.port, 443);
    assert_string_equal(s.host, "dns.cloudflare.com");
    assert_string_equal(s.tls_name, "dns.cloudflare.com");
    assert_false(s.name_is_ip);
    assert_string_equal(s.authority, "dns.cloudflare.com");
    assert_string_equal(s.path, "/dns-query");
    assert_int_equal(s.npins, 0);

    assert_int_equal(upstream_parse_url("SDNS://" STAMP_DOH, &s, err, sizeof(err)), 0);
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_string_equal(s.url, "SDNS://" STAMP_DOH);

    assert_int_equal(upstream_parse_url("sdns://" STAMP_DOT_NAME, &s, err, sizeof(err)), 0);
    assert_int_equal(s.proto, UPSTREAM_DOT);
    assert_string_equal(s.url, "sdns://" STAMP_DOT_NAME);
    assert_no_address(&s);
    assert_string_equal(s.host, "dns.example");
    assert_int_equal(s.port, 853);

    /* The stamp parser's errors come through as they are, and the spec is left alone. */
    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(upstream_parse_url("sdns://" STAMP_DNSCRYPT, &s, err, sizeof(err)), -ENOTSUP);
    assert_string_equal(err, "DNSCrypt stamps are not supported: only DoH and DoT stamps are");
    for (size_t i = 0; i < sizeof(s); i++)
        assert_int_equal(((const uint8_t *)&s)[i], 0x5a);
    expect_url_error("sdns://", "empty stamp after sdns://");
    expect_url_error("sdns://not*base64", "the stamp is not valid base64url (A-Z a-z 0-9 - _)");
}

static void test_fail_kind(void **state)
{
    (void)state;
    static const struct {
        int err;
        enum upstream_fail kind;
        const char *name;
    } cases[] = {
        {-ECONNREFUSED, UPSTREAM_FAIL_CONNECT, "connect"},
        {-EHOSTUNREACH, UPSTREAM_FAIL_CONNECT, "connect"},
        {-ENETUNREACH, UPSTREAM_FAIL_CONNECT, "connect"},
        {-ETIMEDOUT, UPSTREAM_FAIL_CONNECT, "connect"},
        {-EKEYREJECTED, UPSTREAM_FAIL_TLS, "tls"},
        {-EPROTO, UPSTREAM_FAIL_TLS, "tls"},
        {-ECONNRESET, UPSTREAM_FAIL_CLOSED, "closed"},
        {-EPIPE, UPSTREAM_FAIL_CLOSED, "closed"},
        {-EBADMSG, UPSTREAM_FAIL_ANSWER, "answer"},
        {-EMSGSIZE, UPSTREAM_FAIL_ANSWER, "answer"},
        {-EREMOTEIO, UPSTREAM_FAIL_HTTP, "http"},
        {-EMEDIUMTYPE, UPSTREAM_FAIL_HTTP, "http"},
        {-ECONNABORTED, UPSTREAM_FAIL_GOAWAY, "goaway"},
        {-ESHUTDOWN, UPSTREAM_FAIL_OTHER, "other"},
        {-ENOMEM, UPSTREAM_FAIL_OTHER, "other"},
        {0, UPSTREAM_FAIL_OTHER, "other"},
        {ECONNREFUSED, UPSTREAM_FAIL_OTHER, "other"}, /* errors are negative */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (upstream_fail_kind(cases[i].err) != cases[i].kind)
            fail_msg("error %d: kind %d, expected %d", cases[i].err,
                     (int)upstream_fail_kind(cases[i].err), (int)cases[i].kind);
        assert_string_equal(upstream_fail_name(upstream_fail_kind(cases[i].err)), cases[i].name);
    }
    /* Every kind has a name of its own. */
    for (int i = 0; i < UPSTREAM_FAIL_KINDS; i++) {
        assert_non_null(upstream_fail_name((enum upstream_fail)i));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(upstream_fail_name((enum upstream_fail)i),
                                    upstream_fail_name((enum upstream_fail)j));
    }
    assert_string_equal(upstream_fail_name(UPSTREAM_FAIL_KINDS), "other");
    assert_string_equal(upstream_fail_name((enum upstream_fail) - 1), "other");
}

static const struct upstream_ops no_ops = {NULL, NULL, NULL, NULL};

/* A socket address of text (an IPv4 or IPv6 literal) and port, zero-filled beyond. */
static socklen_t make_addr(struct sockaddr_storage *ss, const char *text, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return sizeof(*sin);
    }
    assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    return sizeof(*sin6);
}

/* The address upstream_addr gives now, as "ADDR:PORT" / "[ADDR]:PORT". */
static const char *current_addr(const struct upstream *u)
{
    static char text[64];
    char host[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = NULL;
    socklen_t len = 0;
    assert_int_equal(upstream_addr(u, &sa, &len), 0);
    assert_non_null(sa);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        assert_int_equal(len, sizeof(*sin6));
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(text, sizeof(text), "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        assert_int_equal(sa->sa_family, AF_INET);
        assert_int_equal(len, sizeof(*sin));
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(text, sizeof(text), "%s:%u", host, ntohs(sin->sin_port));
    }
    return text;
}

static void test_init_with_address(void **state)
{
    (void)state;
    struct upstream_spec spec;
    struct upstream u;
    assert_int_equal(upstream_parse_url("tls://192.0.2.1:8853#dns.example", &spec, NULL, 0), 0);
    memset(&u, 0x5a, sizeof(u));
    upstream_init(&u, &no_ops, &spec, 5, 3, 1.5);
    assert_ptr_equal(u.ops, &no_ops);
    assert_ptr_equal(u.spec, &spec);
    assert_int_equal(u.addrs.n, 1);
    assert_string_equal(current_addr(&u), "192.0.2.1:8853");
    assert_true(u.connect_rate == 5);
    assert_true(u.connect_burst == 3);
    assert_true(u.connect_tokens == 3);
    assert_true(u.rto == 1.5);
    /* Everything else starts at zero: no stats, healthy, no RTT sample. */
    assert_int_equal(u.stats.queries, 0);
    assert_int_equal(u.stats.throttled, 0);
    assert_int_equal(u.failures, 0);
    assert_int_equal(u.failure_events, 0);
    assert_true(u.down_until == 0);
    assert_true(u.backoff == 0);
    assert_true(u.srtt == 0);
    assert_true(u.rttvar == 0);

    assert_int_equal(upstream_parse_url("https://[2001:db8::1]/dns-query", &spec, NULL, 0), 0);
    upstream_init(&u, &no_ops, &spec, 5, 3, 1.5);
    assert_string_equal(current_addr(&u), "[2001:db8::1]:443");
}

static void test_init_without_address(void **state)
{
    (void)state;
    struct upstream_spec spec;
    struct upstream u;
    const struct sockaddr *sa = (const struct sockaddr *)&spec;
    socklen_t len = 12345;
    assert_int_equal(upstream_parse_url("https://dns.example/dns-query", &spec, NULL, 0), 0);
    upstream_init(&u, &no_ops, &spec, 5, 3, 1.5);
    assert_int_equal(u.addrs.n, 0);
    assert_int_equal(upstream_addr(&u, &sa, &len), -EAGAIN);
    assert_ptr_equal(sa, (const struct sockaddr *)&spec);
    assert_int_equal(len, 12345);
    /* Nothing to move to. */
    upstream_addr_failed(&u);
    assert_int_equal(upstream_addr(&u, &sa, &len), -EAGAIN);
}

static void test_set_addrs_keeps_current(void **state)
{
    (void)state;
    struct upstream_spec spec;
    struct upstream u;
    struct sockaddr_storage a[4];
    socklen_t l[4];
    assert_int_equal(upstream_parse_url("tls://dns.example", &spec, NULL, 0), 0);
    upstream_init(&u, &no_ops, &spec, 0, 0, 1);

    l[0] = make_addr(&a[0], "192.0.2.1", 853);
    l[1] = make_addr(&a[1], "2001:db8::2", 853);
    l[2] = make_addr(&a[2], "192.0.2.3", 853);
    upstream_set_addrs(&u, a, l, 3);
    assert_int_equal(u.addrs.n, 3);
    assert_string_equal(current_addr(&u), "192.0.2.1:853");
    upstream_addr_failed(&u);
    assert_string_equal(current_addr(&u), "[2001:db8::2]:853");

    /* Resolved again: the one in use is among the new addresses, and stays in use. */
    l[0] = make_addr(&a[0], "192.0.2.3", 853);
    l[1] = make_addr(&a[1], "192.0.2.4", 853);
    l[2] = make_addr(&a[2], "2001:db8::2", 853);
    upstream_set_addrs(&u, a, l, 3);
    assert_int_equal(u.addrs.n, 3);
    assert_string_equal(current_addr(&u), "[2001:db8::2]:853");
    upstream_addr_failed(&u); /* wraps around */
    assert_string_equal(current_addr(&u), "192.0.2.3:853");

    /* The same address on another port is another address. */
    l[0] = make_addr(&a[0], "192.0.2.4", 853);
    l[1] = make_addr(&a[1], "192.0.2.3", 8853);
    upstream_set_addrs(&u, a, l, 2);
    assert_int_equal(u.addrs.n, 2);
    assert_string_equal(current_addr(&u), "192.0.2.4:853");

    /* Gone: the first new one is used. */
    l[0] = make_addr(&a[0], "198.51.100.1", 853);
    l[1] = make_addr(&a[1], "198.51.100.2", 853);
    upstream_set_addrs(&u, a, l, 2);
    assert_string_equal(current_addr(&u), "198.51.100.1:853");

    /* None at all: no address until the next resolution. */
    upstream_set_addrs(&u, a, l, 0);
    const struct sockaddr *sa;
    socklen_t len;
    assert_int_equal(upstream_addr(&u, &sa, &len), -EAGAIN);
    upstream_set_addrs(&u, a, l, 1);
    assert_string_equal(current_addr(&u), "198.51.100.1:853");
}

static void test_set_addrs_capped(void **state)
{
    (void)state;
    enum { N = UPSTREAM_MAX_ADDRS + 3 };
    struct upstream_spec spec;
    struct upstream u;
    struct sockaddr_storage a[N];
    socklen_t l[N];
    char text[32];
    assert_int_equal(upstream_parse_url("https://dns.example", &spec, NULL, 0), 0);
    upstream_init(&u, &no_ops, &spec, 0, 0, 1);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "192.0.2.%d", i + 1);
        l[i] = make_addr(&a[i], text, 443);
    }
    upstream_set_addrs(&u, a, l, N);
    assert_int_equal(u.addrs.n, UPSTREAM_MAX_ADDRS);

    /* Rotation goes through the first UPSTREAM_MAX_ADDRS only, and around. */
    for (int i = 0; i < 2 * UPSTREAM_MAX_ADDRS; i++) {
        snprintf(text, sizeof(text), "192.0.2.%d:443", i % UPSTREAM_MAX_ADDRS + 1);
        assert_string_equal(current_addr(&u), text);
        upstream_addr_failed(&u);
    }

    /* An address past the cap is not among the new ones, even if in use before. */
    l[0] = make_addr(&a[0], "198.51.100.9", 443);
    upstream_set_addrs(&u, a, l, 1);
    assert_string_equal(current_addr(&u), "198.51.100.9:443");
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "192.0.2.%d", i + 1);
        l[i] = make_addr(&a[i], text, 443);
    }
    l[N - 1] = make_addr(&a[N - 1], "198.51.100.9", 443);
    upstream_set_addrs(&u, a, l, N);
    assert_int_equal(u.addrs.n, UPSTREAM_MAX_ADDRS);
    assert_string_equal(current_addr(&u), "192.0.2.1:443");
}

/* What a transport asks before connecting: no address yet, or no token, is -EAGAIN;
 * otherwise the current address, and a token is taken. */
static void test_connect_target(void **state)
{
    (void)state;
    struct upstream_spec spec;
    struct upstream u;
    const struct sockaddr *sa = NULL;
    socklen_t len = 0;
    assert_int_equal(upstream_parse_url("https://dns.example/dns-query", &spec, NULL, 0), 0);
    upstream_init(&u, &no_ops, &spec, 1, 1, 1);
    assert_int_equal(upstream_connect_target(&u, 10.0, &sa, &len), -EAGAIN);
    assert_int_equal(u.stats.throttled, 0); /* no address: no token spent either */
    struct sockaddr_storage a;
    socklen_t l = make_addr(&a, "192.0.2.7", 443);
    upstream_set_addrs(&u, &a, &l, 1);
    assert_int_equal(upstream_connect_target(&u, 10.0, &sa, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(((const struct sockaddr_in *)sa)->sin_port, htons(443));
    assert_int_equal(upstream_connect_target(&u, 10.0, &sa, &len), -EAGAIN);
    assert_int_equal(u.stats.throttled, 1);
    assert_int_equal(upstream_connect_target(&u, 11.0, &sa, &len), 0);
}

/* The connect-rate bound: burst connections at once, then rate a second. */
static void test_may_connect_token_bucket(void **state)
{
    (void)state;
    struct upstream_spec spec;
    struct upstream u;
    assert_int_equal(upstream_parse_url("tls://192.0.2.1", &spec, NULL, 0), 0);
    upstream_init(&u, &no_ops, &spec, 2, 3, 1);

    for (int i = 0; i < 3; i++)
        assert_true(upstream_may_connect(&u, 100.0));
    assert_int_equal(u.stats.throttled, 0);
    assert_false(upstream_may_connect(&u, 100.0));
    assert_false(upstream_may_connect(&u, 100.0));
    assert_int_equal(u.stats.throttled, 2);

    /* Half a token after a quarter of a second: not yet; a whole one after half. */
    assert_false(upstream_may_connect(&u, 100.25));
    assert_int_equal(u.stats.throttled, 3);
    assert_true(upstream_may_connect(&u, 100.5));
    assert_false(upstream_may_connect(&u, 100.5));
    assert_int_equal(u.stats.throttled, 4);
    assert_true(upstream_may_connect(&u, 101.0));
    assert_false(upstream_may_connect(&u, 101.0));

    /* A long pause refills to the burst, no more. */
    for (int i = 0; i < 3; i++)
        assert_true(upstream_may_connect(&u, 1000.0));
    assert_false(upstream_may_connect(&u, 1000.0));
    assert_int_equal(u.stats.throttled, 6);

    /* A steady rate of one every half second is never throttled. */
    for (int i = 1; i <= 20; i++)
        assert_true(upstream_may_connect(&u, 1000.0 + i * 0.5));
    assert_int_equal(u.stats.throttled, 6);

    /* Rate 0: no bound. */
    upstream_init(&u, &no_ops, &spec, 0, 0, 1);
    for (int i = 0; i < 100; i++)
        assert_true(upstream_may_connect(&u, 5.0));
    assert_int_equal(u.stats.throttled, 0);
}

static void test_pin_good(void **state)
{
    (void)state;
    static const uint8_t digest[32] = {
        0x0b, 0x47, 0x6b, 0xa4, 0xf4, 0xec, 0x4f, 0x75, 0x72, 0xe9, 0xf8,
        0x4e, 0x70, 0x01, 0x91, 0x0f, 0x24, 0x5b, 0xb5, 0x69, 0x0b, 0x9f,
        0xf0, 0x32, 0x3f, 0x0d, 0xc8, 0xee, 0x0b, 0x02, 0x5d, 0xf2,
    };
    struct upstream_spec s;
    uint8_t expect[32];

    assert_int_equal(upstream_parse_url("tls://1.1.1.1", &s, NULL, 0), 0);
    assert_int_equal(upstream_add_pin(&s, PIN_ZERO), 0);
    assert_int_equal(upstream_add_pin(&s, PIN_0_31), 0);
    assert_int_equal(upstream_add_pin(&s, PIN_DNSWARD), 0);
    assert_int_equal(s.npins, 3);
    memset(expect, 0, sizeof(expect));
    assert_memory_equal(s.pins[0], expect, 32);
    for (int i = 0; i < 32; i++)
        expect[i] = (uint8_t)i;
    assert_memory_equal(s.pins[1], expect, 32);
    assert_memory_equal(s.pins[2], digest, 32);
}

static void test_pin_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",          /* no padding */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",        /* 45 characters */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==",         /* 31 bytes */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A",         /* 33 bytes, no '=' */
        "C0drpPTsT3Vy6fhOcAGRDyRbtWkLn_AyPw3I7gsCXfI=",         /* base64url, not base64 */
        "C0drpPTsT3Vy6fhOcAGRDyRbtWkLn-AyPw3I7gsCXfI=",         /* base64url, not base64 */
        " AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",         /* space */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*=",         /* not the alphabet */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",         /* bits past the 32nd byte */
        "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* curl's form */
    };
    struct upstream_spec s;
    assert_int_equal(upstream_parse_url("tls://1.1.1.1", &s, NULL, 0), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(upstream_add_pin(&s, bad[i]), -EINVAL);
    assert_int_equal(s.npins, 0);
}

static void test_pin_too_many(void **state)
{
    (void)state;
    struct upstream_spec s;
    assert_int_equal(upstream_parse_url("tls://1.1.1.1", &s, NULL, 0), 0);
    for (int i = 0; i < UPSTREAM_MAX_PINS; i++)
        assert_int_equal(upstream_add_pin(&s, PIN_0_31), 0);
    assert_int_equal(upstream_add_pin(&s, PIN_ZERO), -ENOSPC);
    assert_int_equal(s.npins, UPSTREAM_MAX_PINS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_ipv4),
        cmocka_unit_test(test_url_ipv4_port_and_name),
        cmocka_unit_test(test_url_ipv6),
        cmocka_unit_test(test_url_name_is_ip_literal),
        cmocka_unit_test(test_url_scheme_case_and_long_name),
        cmocka_unit_test(test_url_bad_scheme),
        cmocka_unit_test(test_url_host_name_needs_bootstrap),
        cmocka_unit_test(test_url_bad_host_name),
        cmocka_unit_test(test_url_bad_address),
        cmocka_unit_test(test_url_bad_port),
        cmocka_unit_test(test_url_bad_name),
        cmocka_unit_test(test_url_too_long),
        cmocka_unit_test(test_url_without_err_buffer),
        cmocka_unit_test(test_https_ipv4),
        cmocka_unit_test(test_https_ipv6),
        cmocka_unit_test(test_https_name),
        cmocka_unit_test(test_https_host_name_needs_bootstrap),
        cmocka_unit_test(test_https_bad),
        cmocka_unit_test(test_sdns_dispatch),
        cmocka_unit_test(test_fail_kind),
        cmocka_unit_test(test_init_with_address),
        cmocka_unit_test(test_init_without_address),
        cmocka_unit_test(test_set_addrs_keeps_current),
        cmocka_unit_test(test_set_addrs_capped),
        cmocka_unit_test(test_may_connect_token_bucket),
        cmocka_unit_test(test_connect_target),
        cmocka_unit_test(test_pin_good),
        cmocka_unit_test(test_pin_bad),
        cmocka_unit_test(test_pin_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
