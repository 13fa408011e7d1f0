/* Unit tests for an upstream as configured: the URL forms upstream_parse_url accepts,
 * every form it refuses and what it says, and SHA-256 pins. */
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

static void test_url_bad_scheme(void **state)
{
    (void)state;
    expect_url_error("https://1.1.1.1/dns-query",
                     "scheme 'https' is not supported: expected tls://ADDRESS[:PORT][#NAME]");
    expect_url_error("udp://1.1.1.1",
                     "scheme 'udp' is not supported: expected tls://ADDRESS[:PORT][#NAME]");
    expect_url_error("1.2.3.4", "'1.2.3.4' is not a URL: expected tls://ADDRESS[:PORT][#NAME]");
    expect_url_error("", "'' is not a URL: expected tls://ADDRESS[:PORT][#NAME]");
    expect_url_error("tls:/1.1.1.1",
                     "'tls:/1.1.1.1' is not a URL: expected tls://ADDRESS[:PORT][#NAME]");
}

static void test_url_host_name_needs_bootstrap(void **state)
{
    (void)state;
    expect_url_error("tls://dns.example",
                     "'dns.example' is a name, and resolving an upstream's name (bootstrap) is "
                     "not supported yet: give its IP address and put the name after '#', as in "
                     "tls://1.1.1.1#cloudflare-dns.com");
    expect_url_error("tls://dns.google:853#dns.google",
                     "'dns.google' is a name, and resolving an upstream's name (bootstrap) is "
                     "not supported yet: give its IP address and put the name after '#', as in "
                     "tls://1.1.1.1#cloudflare-dns.com");
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
    expect_url_error("tls://", "missing address: expected tls://ADDRESS[:PORT][#NAME]");
    expect_url_error("tls://:853", "missing address: expected tls://ADDRESS[:PORT][#NAME]");
    expect_url_error("tls://#dns.google", "missing address: expected tls://ADDRESS[:PORT][#NAME]");
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
    memset(url, 'a', sizeof(url) - 1);
    memcpy(url, "tls://1.1.1.1#", strlen("tls://1.1.1.1#"));
    url[sizeof(url) - 1] = '\0';
    expect_url_error(url, "URL longer than 511 characters");
}

/* config_finish parses its defaults without an error buffer. */
static void test_url_without_err_buffer(void **state)
{
    (void)state;
    struct upstream_spec s;
    assert_int_equal(upstream_parse_url("tls://dns.example", &s, NULL, 0), -EINVAL);
    assert_int_equal(upstream_parse_url("tls://8.8.8.8#dns.google", &s, NULL, 0), 0);
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
        cmocka_unit_test(test_url_bad_address),
        cmocka_unit_test(test_url_bad_port),
        cmocka_unit_test(test_url_bad_name),
        cmocka_unit_test(test_url_too_long),
        cmocka_unit_test(test_url_without_err_buffer),
        cmocka_unit_test(test_pin_good),
        cmocka_unit_test(test_pin_bad),
        cmocka_unit_test(test_pin_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
