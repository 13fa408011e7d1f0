/* Unit tests for DNS stamps (upstream_parse_stamp): a published stamp, stamps built here
 * field by field for each form of address, host name, port, path and certificate hash,
 * every malformed stamp and what is said about it, and the kinds of stamp dnsward does
 * not speak. Stamps are built from their bytes with the small writer below, so that each
 * test shows what it feeds in. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/base64.h"
#include "dnsward/upstream.h"

#define URL_MARK "sdns://set-by-the-caller"

/* Cloudflare's published DoH stamp: 0x02, props 0x07 (DNSSEC, no logs, no filter),
 * addr "1.0.0.1", no hash (VLP of one empty item), "dns.cloudflare.com", "/dns-query". */
#define STAMP_CLOUDFLARE "AgcAAAAAAAAABzEuMC4wLjEAEmRucy5jbG91ZGZsYXJlLmNvbQovZG5zLXF1ZXJ5"

enum { STAMP_DOH = 0x02, STAMP_DOT = 0x03 };

/* A stamp's bytes under construction. */
struct sb {
    uint8_t b[1024];
    size_t n;
};

static void sb_byte(struct sb *s, uint8_t v)
{
    assert_true(s->n < sizeof(s->b));
    s->b[s->n++] = v;
}

static void sb_bytes(struct sb *s, const void *p, size_t n)
{
    assert_true(n <= sizeof(s->b) - s->n);
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

/* An item of an LP or VLP: its length (with 0x80 if another follows) and bytes. */
static void sb_item(struct sb *s, const void *p, size_t n, bool more)
{
    assert_true(n <= (more ? 0x7fu : 0xffu));
    sb_byte(s, (uint8_t)(n | (more ? 0x80u : 0u)));
    sb_bytes(s, p, n);
}

static void sb_lp(struct sb *s, const char *text)
{
    sb_item(s, text, strlen(text), false);
}

/* The type and the props (0x07: DNSSEC, no logs, no filter; dnsward ignores them). */
static void sb_start(struct sb *s, uint8_t type)
{
    static const uint8_t props[8] = {0x07, 0, 0, 0, 0, 0, 0, 0};
    s->n = 0;
    sb_byte(s, type);
    sb_bytes(s, props, sizeof(props));
}

/* VLP of nhash hashes of 32 bytes, or VLP("") for none. */
static void sb_hashes(struct sb *s, const uint8_t (*hashes)[32], size_t nhash)
{
    if (nhash == 0)
        sb_item(s, "", 0, false);
    for (size_t i = 0; i < nhash; i++)
        sb_item(s, hashes[i], 32, i + 1 < nhash);
}

/* A whole stamp: DoH if path is not NULL, else DoT. */
static void sb_stamp(struct sb *s, const char *addr, const uint8_t (*hashes)[32], size_t nhash,
                     const char *host, const char *path)
{
    sb_start(s, path != NULL ? STAMP_DOH : STAMP_DOT);
    sb_lp(s, addr);
    sb_hashes(s, hashes, nhash);
    sb_lp(s, host);
    if (path != NULL)
        sb_lp(s, path);
}

/* The stamp text (what follows "sdns://"); valid until the next call. */
static const char *sb_text(const struct sb *s)
{
    static char text[2048];
    int n = base64url_encode(s->b, s->n, text, sizeof(text));
    assert_true(n >= 0);
    return text;
}

static void expect_error(const char *text, int rc, const char *message);

static void parse_ok(const char *text, struct upstream_spec *spec)
{
    char err[512] = "";
    memset(spec, 0x5a, sizeof(*spec));
    memcpy(spec->url, URL_MARK, sizeof(URL_MARK));
    int rc = upstream_parse_stamp(text, spec, err, sizeof(err));
    if (rc != 0)
        fail_msg("stamp %s: %d: %s", text, rc, err);
    assert_string_equal(err, "");
    /* The URL is the caller's. */
    assert_string_equal(spec->url, URL_MARK);
}

static void parse_sb_ok(const struct sb *s, struct upstream_spec *spec)
{
    parse_ok(sb_text(s), spec);
}

static void assert_ipv4(const struct upstream_spec *s, const char *addr, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->addr;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(s->addrlen, sizeof(struct sockaddr_in));
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_int_equal(s->port, port);
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
    assert_int_equal(s->port, port);
}

static void assert_host(const struct upstream_spec *s, const char *host, bool is_ip)
{
    assert_string_equal(s->host, host);
    assert_string_equal(s->tls_name, host);
    assert_int_equal(s->name_is_ip, is_ip);
}

static void test_cloudflare(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    parse_ok(STAMP_CLOUDFLARE, &s);
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_ipv4(&s, "1.0.0.1", 443);
    assert_host(&s, "dns.cloudflare.com", false);
    assert_string_equal(s.authority, "dns.cloudflare.com");
    assert_string_equal(s.path, "/dns-query");
    assert_int_equal(s.npins, 0);
    assert_int_equal(s.pins_tbs, 0);

    /* The writer here builds that very stamp, so the stamps it builds below are real. */
    sb_stamp(&b, "1.0.0.1", NULL, 0, "dns.cloudflare.com", "/dns-query");
    assert_string_equal(sb_text(&b), STAMP_CLOUDFLARE);
}

static void test_dot(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, "9.9.9.9", NULL, 0, "dns.quad9.net", NULL);
    parse_sb_ok(&b, &s);
    assert_int_equal(s.proto, UPSTREAM_DOT);
    assert_ipv4(&s, "9.9.9.9", 853);
    assert_host(&s, "dns.quad9.net", false);
    /* :authority and :path are DoH's. */
    assert_string_equal(s.authority, "");
    assert_string_equal(s.path, "");

    sb_stamp(&b, "9.9.9.9:8853", NULL, 0, "dns.quad9.net", NULL);
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "9.9.9.9", 8853);
}

/* Padding that completes the last group is accepted, as some encoders add it. */
static void test_padded(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;
    char text[2048 + 2];

    sb_stamp(&b, "1.1.1.1", NULL, 0, "one.one.one.one", "/dnsq");
    assert_int_equal(b.n % 3, 1);
    snprintf(text, sizeof(text), "%s==", sb_text(&b));
    parse_ok(text, &s);
    assert_host(&s, "one.one.one.one", false);
    assert_string_equal(s.path, "/dnsq");
    snprintf(text, sizeof(text), "%s=", sb_text(&b));
    expect_error(text, -EINVAL, "the stamp is not valid base64url (A-Z a-z 0-9 - _)");
}

static void test_ipv6_addr(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, "[2606:4700::1111]:8443", NULL, 0, "cloudflare-dns.com", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_ipv6(&s, "2606:4700::1111", 8443);
    assert_host(&s, "cloudflare-dns.com", false);
    assert_string_equal(s.authority, "cloudflare-dns.com:8443");

    sb_stamp(&b, "[2620:fe::fe]", NULL, 0, "dns.quad9.net", NULL);
    parse_sb_ok(&b, &s);
    assert_ipv6(&s, "2620:fe::fe", 853);
}

/* An addr of only ":PORT": the port, and a host name to resolve. */
static void test_port_only_addr(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, ":8853", NULL, 0, "dns.example", NULL);
    parse_sb_ok(&b, &s);
    assert_int_equal(s.proto, UPSTREAM_DOT);
    assert_int_equal(s.addrlen, 0);
    assert_int_equal(s.port, 8853);
    assert_host(&s, "dns.example", false);

    sb_stamp(&b, ":8443", NULL, 0, "doh.example", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_int_equal(s.addrlen, 0);
    assert_int_equal(s.port, 8443);
    assert_string_equal(s.authority, "doh.example:8443");
}

/* No addr: the host name needs the bootstrap servers. */
static void test_empty_addr(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, "", NULL, 0, "doh.example", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_int_equal(s.proto, UPSTREAM_DOH);
    assert_int_equal(s.addrlen, 0);
    assert_int_equal(s.port, 443);
    assert_host(&s, "doh.example", false);
    assert_string_equal(s.authority, "doh.example");
    assert_string_equal(s.path, "/dns-query");

    sb_stamp(&b, "", NULL, 0, "dot.example", NULL);
    parse_sb_ok(&b, &s);
    assert_int_equal(s.addrlen, 0);
    assert_int_equal(s.port, 853);
}

/* The host name's port applies when the address gives none; the address's wins. */
static void test_host_port(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, "", NULL, 0, "doh.example:8443", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_int_equal(s.addrlen, 0);
    assert_int_equal(s.port, 8443);
    assert_host(&s, "doh.example", false);
    assert_string_equal(s.authority, "doh.example:8443");

    sb_stamp(&b, "192.0.2.1", NULL, 0, "doh.example:8443", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "192.0.2.1", 8443);
    assert_string_equal(s.authority, "doh.example:8443");

    sb_stamp(&b, "192.0.2.1:444", NULL, 0, "doh.example:8443", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "192.0.2.1", 444);
    assert_string_equal(s.authority, "doh.example:444");

    /* The default port, written out, is left out of the authority. */
    sb_stamp(&b, "192.0.2.1", NULL, 0, "doh.example:443", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "192.0.2.1", 443);
    assert_string_equal(s.authority, "doh.example");

    sb_stamp(&b, "", NULL, 0, "dot.example:10853", NULL);
    parse_sb_ok(&b, &s);
    assert_int_equal(s.port, 10853);
}

/* A host name that is an IP literal: verified as an IP, and an address of its own. */
static void test_host_ip_literal(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, "1.1.1.1", NULL, 0, "1.1.1.1", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "1.1.1.1", 443);
    assert_host(&s, "1.1.1.1", true);
    assert_string_equal(s.authority, "1.1.1.1");

    sb_stamp(&b, "", NULL, 0, "[2606:4700::1111]:8443", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_ipv6(&s, "2606:4700::1111", 8443);
    assert_host(&s, "2606:4700::1111", true);
    assert_string_equal(s.authority, "[2606:4700::1111]:8443");

    sb_stamp(&b, "", NULL, 0, "[2606:4700::1111]", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_string_equal(s.authority, "[2606:4700::1111]");

    sb_stamp(&b, ":8853", NULL, 0, "9.9.9.9", NULL);
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "9.9.9.9", 8853);
    assert_host(&s, "9.9.9.9", true);

    /* An address given beside the literal is the one used. */
    sb_stamp(&b, "192.0.2.7", NULL, 0, "9.9.9.9", NULL);
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "192.0.2.7", 853);
    assert_host(&s, "9.9.9.9", true);
}

static void test_hashes(void **state)
{
    (void)state;
    uint8_t h[UPSTREAM_MAX_PINS][32];
    struct upstream_spec s;
    struct sb b;

    for (size_t i = 0; i < UPSTREAM_MAX_PINS; i++)
        for (size_t j = 0; j < 32; j++)
            h[i][j] = (uint8_t)(i * 32 + j);

    sb_stamp(&b, "1.1.1.1", h, 1, "cloudflare-dns.com", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_int_equal(s.npins, 1);
    assert_int_equal(s.pins_tbs, 0x1);
    assert_memory_equal(s.pins[0], h[0], 32);

    sb_stamp(&b, "1.1.1.1", h, 2, "cloudflare-dns.com", NULL);
    parse_sb_ok(&b, &s);
    assert_int_equal(s.npins, 2);
    assert_int_equal(s.pins_tbs, 0x3);
    assert_memory_equal(s.pins[0], h[0], 32);
    assert_memory_equal(s.pins[1], h[1], 32);

    sb_stamp(&b, "1.1.1.1", h, UPSTREAM_MAX_PINS, "cloudflare-dns.com", "/dns-query");
    parse_sb_ok(&b, &s);
    assert_int_equal(s.npins, UPSTREAM_MAX_PINS);
    assert_int_equal(s.pins_tbs, (1u << UPSTREAM_MAX_PINS) - 1);
    assert_memory_equal(s.pins[UPSTREAM_MAX_PINS - 1], h[UPSTREAM_MAX_PINS - 1], 32);

    /* Empty items are no hash at all, wherever they are. */
    sb_start(&b, STAMP_DOH);
    sb_lp(&b, "1.1.1.1");
    sb_item(&b, "", 0, true);
    sb_item(&b, h[0], 32, true);
    sb_item(&b, "", 0, true);
    sb_item(&b, h[1], 32, true);
    sb_item(&b, "", 0, false);
    sb_lp(&b, "cloudflare-dns.com");
    sb_lp(&b, "/dns-query");
    parse_sb_ok(&b, &s);
    assert_int_equal(s.npins, 2);
    assert_int_equal(s.pins_tbs, 0x3);
    assert_memory_equal(s.pins[0], h[0], 32);
    assert_memory_equal(s.pins[1], h[1], 32);
}

/* The bootstrap addresses are read past and ignored, and so are props. */
static void test_bootstrap_and_props(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;

    sb_stamp(&b, "", NULL, 0, "doh.example", "/dns-query");
    sb_item(&b, "192.0.2.53", 10, true);
    sb_item(&b, "[2001:db8::53]", 14, false);
    parse_sb_ok(&b, &s);
    assert_int_equal(s.addrlen, 0);
    assert_host(&s, "doh.example", false);

    sb_stamp(&b, "", NULL, 0, "dot.example", NULL);
    sb_lp(&b, "192.0.2.53");
    parse_sb_ok(&b, &s);
    assert_host(&s, "dot.example", false);

    /* An empty bootstrap set. */
    sb_stamp(&b, "", NULL, 0, "dot.example", NULL);
    sb_item(&b, "", 0, false);
    parse_sb_ok(&b, &s);

    sb_stamp(&b, "1.1.1.1", NULL, 0, "cloudflare-dns.com", "/dns-query");
    memset(b.b + 1, 0xff, 8);
    parse_sb_ok(&b, &s);
    assert_ipv4(&s, "1.1.1.1", 443);
}

/* The path is kept as written, query string and all. */
static void test_path(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;
    char path[256];

    sb_stamp(&b, "", NULL, 0, "doh.example", "/");
    parse_sb_ok(&b, &s);
    assert_string_equal(s.path, "/");

    sb_stamp(&b, "", NULL, 0, "doh.example", "/resolve?ct=application/dns-message&x=%41");
    parse_sb_ok(&b, &s);
    assert_string_equal(s.path, "/resolve?ct=application/dns-message&x=%41");

    /* The longest an LP item can be. */
    memset(path, 'p', 255);
    path[0] = '/';
    path[255] = '\0';
    sb_stamp(&b, "", NULL, 0, "doh.example", path);
    parse_sb_ok(&b, &s);
    assert_string_equal(s.path, path);
}

/* The longest host name there is: 253 characters in labels of 63; and with a port. */
static void test_long_host(void **state)
{
    (void)state;
    struct upstream_spec s;
    struct sb b;
    char name[260];

    memset(name, 'a', 253);
    name[63] = name[127] = name[191] = '.';
    name[253] = '\0';
    sb_stamp(&b, "", NULL, 0, name, "/dns-query");
    parse_sb_ok(&b, &s);
    assert_host(&s, name, false);
    assert_string_equal(s.authority, name);

    /* An LP item holds 255 bytes: a name of 249 and ":65535". */
    memcpy(name + 249, ":65535", 7);
    sb_stamp(&b, "", NULL, 0, name, "/dns-query");
    parse_sb_ok(&b, &s);
    name[249] = '\0';
    assert_host(&s, name, false);
    assert_int_equal(s.port, 65535);
    assert_int_equal(strlen(s.authority), 249 + 6);
}

/* The stamp text is refused with rc and message, and spec is left as it was. */
static void expect_error(const char *text, int rc, const char *message)
{
    struct upstream_spec s;
    char err[512] = "";
    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(upstream_parse_stamp(text, &s, err, sizeof(err)), rc);
    if (message != NULL)
        assert_string_equal(err, message);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    for (size_t i = 0; i < sizeof(s); i++)
        assert_int_equal(((const uint8_t *)&s)[i], 0x5a);
    /* Without an error buffer, the same answer. */
    assert_int_equal(upstream_parse_stamp(text, &s, NULL, 0), rc);
}

static void expect_sb_error(const struct sb *b, const char *message)
{
    expect_error(sb_text(b), -EINVAL, message);
}

static void test_bad_base64(void **state)
{
    (void)state;
    static const char bad_b64[] = "the stamp is not valid base64url (A-Z a-z 0-9 - _)";
    char text[128];

    expect_error("", -EINVAL, "empty stamp after sdns://");
    /* The Cloudflare stamp in base64, and with a character changed or added. */
    expect_error("AgcAAAAAAAAABzEuMC4wLjEAEmRucy5jbG91ZGZsYXJlLmNvbQovZG5zLXF1ZXJ5+", -EINVAL,
                 bad_b64);
    snprintf(text, sizeof(text), "%s", STAMP_CLOUDFLARE);
    text[10] = '/';
    expect_error(text, -EINVAL, bad_b64);
    text[10] = '=';
    expect_error(text, -EINVAL, bad_b64);
    text[10] = ' ';
    expect_error(text, -EINVAL, bad_b64);
    /* A last group of one character. */
    snprintf(text, sizeof(text), "%sA", STAMP_CLOUDFLARE);
    expect_error(text, -EINVAL, bad_b64);
    /* Trailing white space is not part of a stamp. */
    snprintf(text, sizeof(text), "%s\n", STAMP_CLOUDFLARE);
    expect_error(text, -EINVAL, bad_b64);
    /* The "sdns://" is the caller's to strip. */
    snprintf(text, sizeof(text), "sdns://%s", STAMP_CLOUDFLARE);
    expect_error(text, -EINVAL, bad_b64);
}

static void test_too_long(void **state)
{
    (void)state;
    char text[UPSTREAM_URL_MAX + 1];
    memset(text, 'A', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    expect_error(text, -EINVAL, "stamp longer than 1016 characters");
}

/* Every strict prefix of a stamp without bootstrap addresses ends within a field. */
static void test_truncated(void **state)
{
    (void)state;
    static const char *const messages[] = {
        "the stamp ends within its properties",
        "the stamp ends within its address",
        "the stamp ends within its certificate hashes",
        "the stamp ends within its host name",
        "the stamp ends within its path",
    };
    uint8_t h[2][32];
    struct sb b, cut;

    memset(h, 0x11, sizeof(h));
    sb_stamp(&b, "[2606:4700::1111]:8443", h, 2, "cloudflare-dns.com", "/dns-query");
    size_t ends[5] = {1 + 8, 0, 0, 0, 0};
    ends[1] = ends[0] + 1 + strlen("[2606:4700::1111]:8443");
    ends[2] = ends[1] + 2 * 33;
    ends[3] = ends[2] + 1 + strlen("cloudflare-dns.com");
    ends[4] = b.n;
    for (size_t len = 1; len < b.n; len++) {
        size_t field = 0;
        while (len >= ends[field])
            field++;
        memcpy(cut.b, b.b, len);
        cut.n = len;
        expect_sb_error(&cut, messages[field]);
    }

    /* A DoT stamp ends with its host name. */
    sb_stamp(&b, "", NULL, 0, "dot.example", NULL);
    b.n--;
    expect_sb_error(&b, "the stamp ends within its host name");

    /* A VLP whose last item says another follows. */
    sb_start(&b, STAMP_DOT);
    sb_lp(&b, "");
    sb_item(&b, "", 0, true);
    expect_sb_error(&b, "the stamp ends within its certificate hashes");
    sb_stamp(&b, "", NULL, 0, "dot.example", NULL);
    sb_item(&b, "192.0.2.53", 10, true);
    expect_sb_error(&b, "the stamp ends within its bootstrap addresses");
    sb_stamp(&b, "", NULL, 0, "doh.example", "/dns-query");
    sb_byte(&b, 10);
    sb_bytes(&b, "192.0.2", 7);
    expect_sb_error(&b, "the stamp ends within its bootstrap addresses");
}

static void test_trailing(void **state)
{
    (void)state;
    struct sb b;

    sb_stamp(&b, "", NULL, 0, "doh.example", "/dns-query");
    sb_lp(&b, "192.0.2.53");
    sb_byte(&b, 0);
    expect_sb_error(&b, "1 unexpected byte at the end of the stamp");

    /* A DoH path given to a DoT stamp is a bootstrap set of one item: a second item past
     * it is too much. */
    sb_stamp(&b, "", NULL, 0, "dot.example", NULL);
    sb_lp(&b, "/dns-query");
    sb_lp(&b, "192.0.2.53");
    expect_sb_error(&b, "11 unexpected bytes at the end of the stamp");
}

static void test_hash_errors(void **state)
{
    (void)state;
    uint8_t h[UPSTREAM_MAX_PINS + 1][32];
    struct sb b;

    memset(h, 0x22, sizeof(h));
    sb_stamp(&b, "1.1.1.1", h, UPSTREAM_MAX_PINS + 1, "cloudflare-dns.com", "/dns-query");
    expect_sb_error(&b, "the stamp has more than 4 certificate hashes");

    sb_start(&b, STAMP_DOH);
    sb_lp(&b, "1.1.1.1");
    sb_item(&b, h[0], 31, false);
    sb_lp(&b, "cloudflare-dns.com");
    sb_lp(&b, "/dns-query");
    expect_sb_error(&b, "a certificate hash in the stamp has 31 bytes: a SHA-256 digest has 32");

    sb_start(&b, STAMP_DOT);
    sb_lp(&b, "1.1.1.1");
    sb_item(&b, h[0], 32, true);
    sb_item(&b, h, 64, false);
    sb_lp(&b, "cloudflare-dns.com");
    expect_sb_error(&b, "a certificate hash in the stamp has 64 bytes: a SHA-256 digest has 32");
}

static void test_addr_errors(void **state)
{
    (void)state;
    struct sb b;

    sb_stamp(&b, "dns.example", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "the stamp's address 'dns.example' is not an IP address (a name "
                        "belongs in its host name)");
    sb_stamp(&b, "1.1.1", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "the stamp's address '1.1.1' is not an IP address (a name belongs in "
                        "its host name)");
    sb_stamp(&b, "2606:4700::1111", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "the stamp's address '2606:4700::1111' is an IPv6 address without "
                        "brackets, as in [2606:4700::1111]");
    sb_stamp(&b, "[2606:4700::1111", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "missing ']' in the stamp's address '[2606:4700::1111'");
    sb_stamp(&b, "[1.1.1.1]", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "the stamp's address '[1.1.1.1]' is not an IPv6 address in brackets");
    sb_stamp(&b, "[::1]853", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "unexpected '853' in the stamp's address '[::1]853'");
    sb_stamp(&b, "1.1.1.1 ", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "the stamp's address holds the byte 0x20, which it cannot");

    sb_stamp(&b, "1.1.1.1:", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "port '' in the stamp's address must be a number between 1 and 65535");
    sb_stamp(&b, ":", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "port '' in the stamp's address must be a number between 1 and 65535");
    sb_stamp(&b, "1.1.1.1:0", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "port '0' in the stamp's address must be a number between 1 and 65535");
    sb_stamp(&b, "[::1]:65536", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "port '65536' in the stamp's address must be a number between 1 and 65535");
    sb_stamp(&b, ":dot", NULL, 0, "dns.example", NULL);
    expect_sb_error(&b, "port 'dot' in the stamp's address must be a number between 1 and 65535");

    /* A NUL would end the text early. */
    sb_start(&b, STAMP_DOT);
    sb_item(&b, "1.1.1.1\0x", 9, false);
    sb_hashes(&b, NULL, 0);
    sb_lp(&b, "dns.example");
    expect_sb_error(&b, "the stamp's address holds the byte 0x00, which it cannot");
}

static void test_host_errors(void **state)
{
    (void)state;
    static const char bad_name[] = "the stamp's host name '%s' is neither an IP address nor a "
                                   "valid name (letters, digits, hyphens and dots; at most 253 "
                                   "characters)";
    static const char *const bad[] = {
        "bad_name", "a..b", ".a", "dns.google.", "a/b", "dns.example@x", "999.1.1.1", "1.1.1",
    };
    struct sb b;
    char name[300];
    char message[600];

    sb_stamp(&b, "1.1.1.1", NULL, 0, "", "/dns-query");
    expect_sb_error(&b, "the stamp has no host name");
    sb_stamp(&b, "1.1.1.1", NULL, 0, ":443", "/dns-query");
    expect_sb_error(&b, "the stamp has no host name, only ':443'");

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb_stamp(&b, "1.1.1.1", NULL, 0, bad[i], "/dns-query");
        snprintf(message, sizeof(message), bad_name, bad[i]);
        expect_sb_error(&b, message);
    }
    sb_stamp(&b, "1.1.1.1", NULL, 0, "a b", "/dns-query");
    expect_sb_error(&b, "the stamp's host name holds the byte 0x20, which it cannot");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "d\xc3\xa9.example", "/dns-query");
    expect_sb_error(&b, "the stamp's host name holds the byte 0xc3, which it cannot");

    /* 254 characters, and a label of 64. */
    memset(name, 'a', 254);
    name[63] = name[127] = name[191] = '.';
    name[254] = '\0';
    sb_stamp(&b, "1.1.1.1", NULL, 0, name, "/dns-query");
    snprintf(message, sizeof(message), bad_name, name);
    expect_sb_error(&b, message);
    memset(name, 'b', 64);
    memcpy(name + 64, ".com", 5);
    sb_stamp(&b, "1.1.1.1", NULL, 0, name, "/dns-query");
    snprintf(message, sizeof(message), bad_name, name);
    expect_sb_error(&b, message);

    sb_stamp(&b, "1.1.1.1", NULL, 0, "2606:4700::1111", "/dns-query");
    expect_sb_error(&b, "the stamp's host name '2606:4700::1111' is an IPv6 address without "
                        "brackets, as in [2606:4700::1111]");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "[dns.example]", "/dns-query");
    expect_sb_error(&b, "the stamp's host name '[dns.example]' is not an IPv6 address in "
                        "brackets");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example:0", "/dns-query");
    expect_sb_error(&b, "port '0' in the stamp's host name must be a number between 1 and 65535");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example:", "/dns-query");
    expect_sb_error(&b, "port '' in the stamp's host name must be a number between 1 and 65535");
}

static void test_path_errors(void **state)
{
    (void)state;
    struct sb b;

    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example", "");
    expect_sb_error(&b, "the stamp's path '' does not begin with '/'");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example", "dns-query");
    expect_sb_error(&b, "the stamp's path 'dns-query' does not begin with '/'");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example", "/dns query");
    expect_sb_error(&b, "the stamp's path holds the byte 0x20, which it cannot");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example", "/dns-query\r\nX: y");
    expect_sb_error(&b, "the stamp's path holds the byte 0x0d, which it cannot");
    sb_stamp(&b, "1.1.1.1", NULL, 0, "dns.example", "/dns-query#frag");
    expect_sb_error(&b, "the stamp's path '/dns-query#frag' has a fragment ('#'), which a "
                        "request cannot");
}

/* The kinds of stamp dnsward does not speak are named, and refused with -ENOTSUP. */
static void test_unsupported(void **state)
{
    (void)state;
    static const struct {
        uint8_t type;
        const char *message;
    } kinds[] = {
        {0x00, "plain DNS stamps are not supported: only DoH and DoT stamps are"},
        {0x01, "DNSCrypt stamps are not supported: only DoH and DoT stamps are"},
        {0x04, "DNS-over-QUIC stamps are not supported: only DoH and DoT stamps are"},
        {0x05, "Oblivious DoH target stamps are not supported: only DoH and DoT stamps are"},
        {0x81, "Anonymized DNSCrypt relay stamps are not supported: only DoH and DoT stamps are"},
        {0x85, "Oblivious DoH relay stamps are not supported: only DoH and DoT stamps are"},
        {0x06, "unknown stamp type 0x06: only DoH and DoT stamps are supported"},
        {0x82, "unknown stamp type 0x82: only DoH and DoT stamps are supported"},
        {0xff, "unknown stamp type 0xff: only DoH and DoT stamps are supported"},
    };
    struct sb b;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        sb_start(&b, kinds[i].type);
        sb_lp(&b, "1.1.1.1");
        expect_error(sb_text(&b), -ENOTSUP, kinds[i].message);
        /* The type alone decides. */
        b.n = 1;
        expect_error(sb_text(&b), -ENOTSUP, kinds[i].message);
    }

    /* A real DNSCrypt stamp (sdns://AQ... is type 0x01). */
    sb_start(&b, 0x01);
    sb_lp(&b, "208.67.220.220");
    sb_item(&b, "0123456789abcdef0123456789abcdef", 32, false);
    sb_lp(&b, "2.dnscrypt-cert.opendns.com");
    assert_memory_equal(sb_text(&b), "AQ", 2);
    expect_error(sb_text(&b), -ENOTSUP,
                 "DNSCrypt stamps are not supported: only DoH and DoT stamps are");
}

/* A message cut short by a small err buffer is still a terminated string. */
static void test_small_err_buffer(void **state)
{
    (void)state;
    struct upstream_spec s;
    char err[8];
    memset(err, 'x', sizeof(err));
    assert_int_equal(upstream_parse_stamp("+", &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "the sta");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cloudflare),     cmocka_unit_test(test_dot),
        cmocka_unit_test(test_padded),         cmocka_unit_test(test_ipv6_addr),
        cmocka_unit_test(test_port_only_addr), cmocka_unit_test(test_empty_addr),
        cmocka_unit_test(test_host_port),      cmocka_unit_test(test_host_ip_literal),
        cmocka_unit_test(test_hashes),         cmocka_unit_test(test_bootstrap_and_props),
        cmocka_unit_test(test_path),           cmocka_unit_test(test_long_host),
        cmocka_unit_test(test_bad_base64),     cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_truncated),      cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_hash_errors),    cmocka_unit_test(test_addr_errors),
        cmocka_unit_test(test_host_errors),    cmocka_unit_test(test_path_errors),
        cmocka_unit_test(test_unsupported),    cmocka_unit_test(test_small_err_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
