/* Unit tests for the access lists: parsing (every form, host bits, the limits of a
 * prefix, malformed and over-long text), matching (both families, IPv4-mapped clients,
 * the bits on either side of a prefix's boundary, other families), the list's limit and
 * the text form. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "dnsward/acl.h"

/* The text form of a parsed network, "ADDR/PREFIX". */
static const char *net_text(const struct acl_net *net)
{
    static char buf[64];
    acl_format(net, buf, sizeof(buf));
    return buf;
}

/* An acl of the networks given, each of which must parse. */
static void acl_of(struct acl *acl, const char *const *nets, size_t n)
{
    memset(acl, 0, sizeof(*acl));
    for (size_t i = 0; i < n; i++) {
        struct acl_net net;
        if (acl_parse(nets[i], &net) != 0)
            fail_msg("'%s' does not parse", nets[i]);
        assert_int_equal(acl_add(acl, &net), 0);
    }
}

/* Does the address text (IPv4 or IPv6) match acl, asked through a struct sockaddr of its
 * own family? */
static bool match_text(const struct acl *acl, const char *addr)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(5353);
    } else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(5353);
    } else {
        fail_msg("'%s' is not an address", addr);
    }
    bool m = acl_match(acl, (const struct sockaddr *)&ss);
    /* acl_match_raw must agree with acl_match. */
    if (ss.ss_family == AF_INET)
        assert_int_equal(acl_match_raw(acl, AF_INET, (const uint8_t *)&sin->sin_addr), m);
    else
        assert_int_equal(acl_match_raw(acl, AF_INET6, sin6->sin6_addr.s6_addr), m);
    return m;
}

static void expect_match(const char *net, const char *const *yes, size_t nyes,
                         const char *const *no, size_t nno)
{
    struct acl acl;
    acl_of(&acl, &net, 1);
    for (size_t i = 0; i < nyes; i++)
        if (!match_text(&acl, yes[i]))
            fail_msg("%s should match %s", net, yes[i]);
    for (size_t i = 0; i < nno; i++)
        if (match_text(&acl, no[i]))
            fail_msg("%s should not match %s", net, no[i]);
}

#define EXPECT_MATCH(net, yes, no) expect_match(net, yes, ARRAY_LEN(yes), no, ARRAY_LEN(no))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse_v4(void **state)
{
    (void)state;
    struct acl_net net;
    assert_int_equal(acl_parse("192.168.1.0/24", &net), 0);
    assert_int_equal(net.family, AF_INET);
    assert_int_equal(net.prefix, 24);
    static const uint8_t want[16] = {192, 168, 1, 0};
    assert_memory_equal(net.addr, want, sizeof(want));
    assert_string_equal(net_text(&net), "192.168.1.0/24");

    assert_int_equal(acl_parse("10.0.0.0/8", &net), 0);
    assert_string_equal(net_text(&net), "10.0.0.0/8");
    assert_int_equal(acl_parse("203.0.113.7/32", &net), 0);
    assert_string_equal(net_text(&net), "203.0.113.7/32");
    assert_int_equal(acl_parse("255.255.255.255/32", &net), 0);
    assert_string_equal(net_text(&net), "255.255.255.255/32");
}

static void test_parse_v6(void **state)
{
    (void)state;
    struct acl_net net;
    assert_int_equal(acl_parse("fd00::/8", &net), 0);
    assert_int_equal(net.family, AF_INET6);
    assert_int_equal(net.prefix, 8);
    static const uint8_t want[16] = {0xfd};
    assert_memory_equal(net.addr, want, sizeof(want));

    assert_int_equal(acl_parse("2001:DB8::/32", &net), 0);
    assert_string_equal(net_text(&net), "2001:db8::/32");
    assert_int_equal(acl_parse("fe80::/10", &net), 0);
    assert_string_equal(net_text(&net), "fe80::/10");
    /* The longest text there is still fits. */
    assert_int_equal(acl_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", &net), 0);
    assert_string_equal(net_text(&net), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    assert_int_equal(acl_parse("0000:0000:0000:0000:0000:0001:255.255.255.255/128", &net), 0);
    assert_string_equal(net_text(&net), "::1:ffff:ffff/128");
}

/* A bare address is a host. */
static void test_parse_bare_host(void **state)
{
    (void)state;
    struct acl_net net;
    assert_int_equal(acl_parse("10.1.2.3", &net), 0);
    assert_int_equal(net.family, AF_INET);
    assert_int_equal(net.prefix, 32);
    assert_string_equal(net_text(&net), "10.1.2.3/32");
    assert_int_equal(acl_parse("::1", &net), 0);
    assert_int_equal(net.family, AF_INET6);
    assert_int_equal(net.prefix, 128);
    assert_string_equal(net_text(&net), "::1/128");
    assert_int_equal(acl_parse("2001:db8::53", &net), 0);
    assert_string_equal(net_text(&net), "2001:db8::53/128");
}

static void test_parse_clears_host_bits(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *net;
    } cases[] = {
        {"192.168.1.7/24", "192.168.1.0/24"},
        {"10.255.255.255/9", "10.128.0.0/9"},
        {"10.0.3.255/23", "10.0.2.0/23"},
        {"192.0.2.255/25", "192.0.2.128/25"},
        {"192.0.2.255/31", "192.0.2.254/31"},
        {"255.255.255.255/1", "128.0.0.0/1"},
        {"2001:db8:ffff::1/33", "2001:db8:8000::/33"},
        {"2001:db8::3/127", "2001:db8::2/127"},
        {"fdff:ffff::/7", "fc00::/7"},
        {"2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::/64"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct acl_net net;
        assert_int_equal(acl_parse(cases[i].text, &net), 0);
        assert_string_equal(net_text(&net), cases[i].net);
        /* Every bit past the prefix is zero, so that matching may compare bytes. */
        for (unsigned bit = net.prefix; bit < 128; bit++)
            if (net.addr[bit / 8] & (0x80 >> (bit % 8)))
                fail_msg("%s: host bit %u is set", cases[i].text, bit);
    }
}

static void test_parse_prefix_zero(void **state)
{
    (void)state;
    struct acl_net net;
    static const uint8_t zero[16] = {0};
    assert_int_equal(acl_parse("0.0.0.0/0", &net), 0);
    assert_int_equal(net.family, AF_INET);
    assert_int_equal(net.prefix, 0);
    assert_string_equal(net_text(&net), "0.0.0.0/0");
    assert_int_equal(acl_parse("203.0.113.9/0", &net), 0);
    assert_memory_equal(net.addr, zero, sizeof(zero));
    assert_int_equal(acl_parse("::/0", &net), 0);
    assert_int_equal(net.family, AF_INET6);
    assert_int_equal(net.prefix, 0);
    assert_int_equal(acl_parse("2001:db8::1/0", &net), 0);
    assert_memory_equal(net.addr, zero, sizeof(zero));
    assert_string_equal(net_text(&net), "::/0");
}

/* A mapped network written as IPv6 is the IPv4 network it names. */
static void test_parse_v4_mapped(void **state)
{
    (void)state;
    struct acl_net net;
    assert_int_equal(acl_parse("::ffff:10.1.2.3/104", &net), 0);
    assert_int_equal(net.family, AF_INET);
    assert_string_equal(net_text(&net), "10.0.0.0/8");
    assert_int_equal(acl_parse("::ffff:192.0.2.1", &net), 0);
    assert_string_equal(net_text(&net), "192.0.2.1/32");
    assert_int_equal(acl_parse("::ffff:0:0/96", &net), 0);
    assert_string_equal(net_text(&net), "0.0.0.0/0");
    /* Shorter than the mapped prefix: an IPv6 network like any other. */
    assert_int_equal(acl_parse("::ffff:0:0/95", &net), 0);
    assert_int_equal(net.family, AF_INET6);
    assert_string_equal(net_text(&net), "::fffe:0:0/95");
    /* ::a.b.c.d (the deprecated IPv4-compatible form) is not mapped. */
    assert_int_equal(acl_parse("::10.0.0.0/104", &net), 0);
    assert_int_equal(net.family, AF_INET6);
}

static void test_parse_bad_prefix(void **state)
{
    (void)state;
    static const char *const out_of_range[] = {
        "192.168.0.0/33", "0.0.0.0/99", "10.0.0.0/999", "::/129", "2001:db8::/200", "::/999",
    };
    static const char *const malformed[] = {
        "10.0.0.0/",     "10.0.0.0/-1",  "10.0.0.0/+8",
        "10.0.0.0/8x",   "10.0.0.0/x",   "10.0.0.0/08",
        "10.0.0.0/00",   "::/00",        "::/0128",
        "10.0.0.0/1000", "::/1280",      "10.0.0.0/8/8",
        "10.0.0.0//8",   "/8",           "/",
        "10.0.0.0/0x8",  "10.0.0.0/8.0", "10.0.0.0/255.0.0.0",
    };
    struct acl_net net, before;
    memset(&before, 0xa5, sizeof(before));
    for (size_t i = 0; i < ARRAY_LEN(out_of_range); i++) {
        net = before;
        if (acl_parse(out_of_range[i], &net) != -ERANGE)
            fail_msg("'%s' is not -ERANGE", out_of_range[i]);
        assert_memory_equal(&net, &before, sizeof(net));
    }
    for (size_t i = 0; i < ARRAY_LEN(malformed); i++) {
        net = before;
        if (acl_parse(malformed[i], &net) != -EINVAL)
            fail_msg("'%s' is not -EINVAL", malformed[i]);
        assert_memory_equal(&net, &before, sizeof(net));
    }
    /* The largest prefixes are fine. */
    assert_int_equal(acl_parse("10.0.0.1/32", &net), 0);
    assert_int_equal(acl_parse("::1/128", &net), 0);
}

static void test_parse_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "abc",
        "localhost",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.-4",
        "0x0a.0.0.1",
        "::g",
        "1::2::3",
        ":::",
        "fe80::1%lo",
        "fe80::1%lo/64",
        "[::1]",
        "[::1]/128",
        "1.2.3.4:53",
        "10.0.0.0\n/8",
        "*",
        "any",
    };
    struct acl_net net;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (acl_parse(bad[i], &net) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
}

/* Leading zeros and white space are refused, not guessed at: "010" is 8 to some parsers. */
static void test_parse_leading_zeros_and_space(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "010.0.0.1",    "10.0.0.01",        "10.0.0.0/08", "::/00",
        " 10.0.0.0/8",  "10.0.0.0/8 ",      "10.0.0.0 /8", "10.0.0.0/ 8",
        "10.0.0.0/8\n", "\t10.0.0.0/8",     "::1 ",        " ::1",
        "10.0.0.0/8\r", "::ffff:010.0.0.1",
    };
    struct acl_net net;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (acl_parse(bad[i], &net) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    /* Zeros inside an IPv6 group are the group's own. */
    assert_int_equal(acl_parse("2001:0db8:0000::/48", &net), 0);
    assert_string_equal(net_text(&net), "2001:db8::/48");
    assert_int_equal(acl_parse("10.0.0.0/0", &net), 0);
}

static void test_parse_too_long(void **state)
{
    (void)state;
    struct acl_net net;
    char text[256];
    /* A valid network followed by enough padding to overflow the parser's buffer. */
    snprintf(text, sizeof(text), "10.0.0.0/8%0200d", 0);
    assert_int_equal(acl_parse(text, &net), -EINVAL);
    memset(text, '1', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    assert_int_equal(acl_parse(text, &net), -EINVAL);
    /* A valid network followed by white space past the buffer. */
    snprintf(text, sizeof(text), "192.168.0.0/16%60s", "");
    assert_int_equal(acl_parse(text, &net), -EINVAL);
    /* The longest valid text (test_parse_v6) is 49 bytes: the buffer holds it. */
    assert_int_equal(acl_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", &net), 0);
}

static void test_match_v4(void **state)
{
    (void)state;
    static const char *const yes[] = {"192.168.0.0", "192.168.0.1", "192.168.200.7",
                                      "192.168.255.255", "::ffff:192.168.1.1"};
    static const char *const no[] = {"192.169.0.0",  "192.167.255.255",    "10.0.0.1",
                                     "0.0.0.0",      "::ffff:192.169.0.1", "c0a8::1",
                                     "::192.168.1.1"};
    EXPECT_MATCH("192.168.0.0/16", yes, no);

    static const char *const host_yes[] = {"127.0.0.2", "::ffff:127.0.0.2"};
    static const char *const host_no[] = {"127.0.0.1", "127.0.0.3", "::1", "::ffff:127.0.0.1"};
    EXPECT_MATCH("127.0.0.2", host_yes, host_no);
}

static void test_match_v6(void **state)
{
    (void)state;
    static const char *const yes[] = {"fd00::", "fd12:3456::1", "fdff:ffff:ffff:ffff::1"};
    static const char *const no[] = {"fe00::1", "fc00::1", "::1", "253.0.0.1", "::ffff:253.0.0.1"};
    EXPECT_MATCH("fd00::/8", yes, no);

    static const char *const lo_yes[] = {"::1"};
    static const char *const lo_no[] = {"::", "::2", "127.0.0.1", "::ffff:127.0.0.1", "8000::1"};
    EXPECT_MATCH("::1", lo_yes, lo_no);
}

/* An IPv4 client on a dual-stack socket (::ffff:a.b.c.d) is an IPv4 client. */
static void test_match_v4_mapped(void **state)
{
    (void)state;
    static const char *const nets[] = {"127.0.0.0/8", "10.0.0.0/8"};
    struct acl acl;
    acl_of(&acl, nets, ARRAY_LEN(nets));
    assert_true(match_text(&acl, "::ffff:127.0.0.1"));
    assert_true(match_text(&acl, "::ffff:10.200.0.1"));
    assert_false(match_text(&acl, "::ffff:11.0.0.1"));
    /* Only the mapped prefix makes an IPv4 client: the compatible and NAT64 forms do not. */
    assert_false(match_text(&acl, "::127.0.0.1"));
    assert_false(match_text(&acl, "64:ff9b::127.0.0.1"));
    assert_false(match_text(&acl, "::fffe:127.0.0.1"));

    /* Every IPv6 client is not every client. */
    static const char *const all6[] = {"::/0"};
    acl_of(&acl, all6, 1);
    assert_true(match_text(&acl, "2001:db8::1"));
    assert_false(match_text(&acl, "::ffff:192.0.2.1"));
    assert_false(match_text(&acl, "192.0.2.1"));

    /* A mapped network written as IPv6 matches both forms of its clients. */
    static const char *const mapped[] = {"::ffff:192.0.2.0/120"};
    acl_of(&acl, mapped, 1);
    assert_true(match_text(&acl, "192.0.2.77"));
    assert_true(match_text(&acl, "::ffff:192.0.2.77"));
    assert_false(match_text(&acl, "192.0.3.1"));
}

static void test_match_other_family(void **state)
{
    (void)state;
    static const char *const all[] = {"0.0.0.0/0", "::/0"};
    struct acl acl;
    acl_of(&acl, all, ARRAY_LEN(all));
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    assert_false(acl_match(&acl, (const struct sockaddr *)&sun));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNSPEC;
    assert_false(acl_match(&acl, (const struct sockaddr *)&ss));
    static const uint8_t addr[16] = {0};
    assert_false(acl_match_raw(&acl, AF_UNIX, addr));
    assert_false(acl_match_raw(&acl, AF_UNSPEC, addr));
    assert_true(acl_match_raw(&acl, AF_INET, addr));
    assert_true(acl_match_raw(&acl, AF_INET6, addr));

    /* An empty list matches nothing at all. */
    memset(&acl, 0, sizeof(acl));
    assert_false(match_text(&acl, "127.0.0.1"));
    assert_false(match_text(&acl, "::1"));
}

/* The bits on either side of each prefix's boundary. */
static void test_match_boundaries(void **state)
{
    (void)state;
    static const char *const y23[] = {"10.0.2.0", "10.0.2.255", "10.0.3.0", "10.0.3.255"};
    static const char *const n23[] = {"10.0.1.255", "10.0.4.0", "10.0.0.2", "10.1.2.0", "11.0.2.0"};
    EXPECT_MATCH("10.0.2.0/23", y23, n23);

    static const char *const y25[] = {"192.0.2.128", "192.0.2.255"};
    static const char *const n25[] = {"192.0.2.127", "192.0.2.0", "192.0.3.128"};
    EXPECT_MATCH("192.0.2.128/25", y25, n25);

    static const char *const y31[] = {"192.0.2.6", "192.0.2.7"};
    static const char *const n31[] = {"192.0.2.5", "192.0.2.8"};
    EXPECT_MATCH("192.0.2.7/31", y31, n31);

    static const char *const y1[] = {"128.0.0.0", "200.1.1.1", "255.255.255.255"};
    static const char *const n1[] = {"127.255.255.255", "0.0.0.0", "::ffff:0:0"};
    EXPECT_MATCH("128.0.0.0/1", y1, n1);

    static const char *const y0[] = {"0.0.0.0", "127.0.0.1", "255.255.255.255", "::ffff:8.8.8.8"};
    static const char *const n0[] = {"::", "::1", "2001:db8::1"};
    EXPECT_MATCH("0.0.0.0/0", y0, n0);

    static const char *const y0v6[] = {"::", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
    static const char *const n0v6[] = {"0.0.0.0", "127.0.0.1"};
    EXPECT_MATCH("::/0", y0v6, n0v6);

    static const char *const y127[] = {"2001:db8::", "2001:db8::1"};
    static const char *const n127[] = {"2001:db8::2", "2001:db8::3", "2001:db8::1:0", "2001:db9::"};
    EXPECT_MATCH("2001:db8::/127", y127, n127);

    static const char *const y128[] = {"2001:db8::1"};
    static const char *const n128[] = {"2001:db8::", "2001:db8::3", "2001:db8::1:1"};
    EXPECT_MATCH("2001:db8::1/128", y128, n128);

    static const char *const y33[] = {"2001:db8::", "2001:db8:7fff:ffff::1"};
    static const char *const n33[] = {"2001:db8:8000::", "2001:db9::", "2001:db7:ffff::"};
    EXPECT_MATCH("2001:db8::/33", y33, n33);

    static const char *const y7[] = {"fc00::", "fd00::1", "fdff::1"};
    static const char *const n7[] = {"fe00::", "fbff:ffff::1"};
    EXPECT_MATCH("fc00::/7", y7, n7);

    static const char *const y64[] = {"2001:db8:1:2::", "2001:db8:1:2:ffff:ffff:ffff:ffff"};
    static const char *const n64[] = {"2001:db8:1:3::", "2001:db8:1:1:ffff:ffff:ffff:ffff"};
    EXPECT_MATCH("2001:db8:1:2::/64", y64, n64);

    /* An IPv4 network never matches an IPv6 address whose first bytes are the same. */
    static const char *const yv4[] = {"32.1.13.184"};
    static const char *const nv4[] = {"2001:db8::"};
    EXPECT_MATCH("32.1.13.184/32", yv4, nv4);
}

static void test_match_any_entry(void **state)
{
    (void)state;
    static const char *const nets[] = {"10.0.0.0/8", "fd00::/8", "192.168.1.0/24", "::1"};
    struct acl acl;
    acl_of(&acl, nets, ARRAY_LEN(nets));
    assert_true(match_text(&acl, "10.9.8.7"));
    assert_true(match_text(&acl, "192.168.1.200"));
    assert_true(match_text(&acl, "fd01::1"));
    assert_true(match_text(&acl, "::1"));
    assert_false(match_text(&acl, "192.168.2.1"));
    assert_false(match_text(&acl, "127.0.0.1"));
    assert_false(match_text(&acl, "fe80::1"));
}

static void test_add_limit(void **state)
{
    (void)state;
    struct acl acl;
    memset(&acl, 0, sizeof(acl));
    char text[32];
    struct acl_net net;
    for (int i = 0; i < ACL_MAX; i++) {
        snprintf(text, sizeof(text), "10.0.%d.0/24", i);
        assert_int_equal(acl_parse(text, &net), 0);
        assert_int_equal(acl_add(&acl, &net), 0);
    }
    assert_int_equal(acl.n, ACL_MAX);
    assert_int_equal(acl_parse("192.0.2.0/24", &net), 0);
    assert_int_equal(acl_add(&acl, &net), -ENOSPC);
    assert_int_equal(acl.n, ACL_MAX);
    /* The list is as it was: the last one added still matches, the refused one does not. */
    assert_true(match_text(&acl, "10.0.63.1"));
    assert_false(match_text(&acl, "10.0.64.1"));
    assert_false(match_text(&acl, "192.0.2.1"));
}

static void test_format(void **state)
{
    (void)state;
    struct acl_net net;
    char buf[64];
    assert_int_equal(acl_parse("192.168.0.0/16", &net), 0);
    acl_format(&net, buf, sizeof(buf));
    assert_string_equal(buf, "192.168.0.0/16");
    assert_int_equal(acl_parse("fd00::/8", &net), 0);
    acl_format(&net, buf, sizeof(buf));
    assert_string_equal(buf, "fd00::/8");

    /* Truncated to cap, and always terminated. */
    assert_int_equal(acl_parse("192.168.0.0/16", &net), 0);
    memset(buf, 'x', sizeof(buf));
    acl_format(&net, buf, 5);
    assert_string_equal(buf, "192.");
    assert_int_equal(buf[5], 'x');
    memset(buf, 'x', sizeof(buf));
    acl_format(&net, buf, 1);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof(buf));
    acl_format(&net, buf, 0);
    assert_int_equal(buf[0], 'x');

    /* What format writes, parse reads back as the same network. */
    static const char *const nets[] = {"0.0.0.0/0",       "10.0.2.0/23", "::/0",
                                       "2001:db8::2/127", "fe80::/10",   "203.0.113.7/32"};
    for (size_t i = 0; i < ARRAY_LEN(nets); i++) {
        struct acl_net again;
        assert_int_equal(acl_parse(nets[i], &net), 0);
        acl_format(&net, buf, sizeof(buf));
        assert_string_equal(buf, nets[i]);
        assert_int_equal(acl_parse(buf, &again), 0);
        assert_memory_equal(&again, &net, sizeof(net));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_v4),
        cmocka_unit_test(test_parse_v6),
        cmocka_unit_test(test_parse_bare_host),
        cmocka_unit_test(test_parse_clears_host_bits),
        cmocka_unit_test(test_parse_prefix_zero),
        cmocka_unit_test(test_parse_v4_mapped),
        cmocka_unit_test(test_parse_bad_prefix),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_parse_leading_zeros_and_space),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_match_v4),
        cmocka_unit_test(test_match_v6),
        cmocka_unit_test(test_match_v4_mapped),
        cmocka_unit_test(test_match_other_family),
        cmocka_unit_test(test_match_boundaries),
        cmocka_unit_test(test_match_any_entry),
        cmocka_unit_test(test_add_limit),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
