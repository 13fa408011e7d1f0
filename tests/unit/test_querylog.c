/* Unit tests for the query log: the exact line querylog_format writes (IPv4, IPv6 and
 * unknown clients; names with spaces, newlines and bytes outside ASCII escaped; types and
 * RCODEs without a mnemonic; a line cut short), and the file: lines written at
 * querylog_free, by the flush timer and when the buffer fills; querylog_reopen after a
 * rename (logrotate's move-then-HUP) writing to a new file at the path; an open that
 * fails. Files live in a fresh directory under /tmp, removed at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs the headers above, so it is a block of its own that sorting leaves last. */
#include <cmocka.h>

#include "dnsward/dns.h"
#include "dnsward/querylog.h"

/* 2026-11-23T10:15:02Z, and a fraction that does not round to the next millisecond. */
#define T0 (1795428902.0 + 0.1234)

/* A query for the name of the given wire labels (each a length byte then its bytes, the
 * final zero included) and qtype, parsed into *dq. Returns its length. */
static size_t wire_query(uint8_t *b, size_t cap, const uint8_t *name, size_t name_len,
                         uint16_t qtype, struct dns_query *dq)
{
    assert_true(DNS_HEADER_LEN + name_len + 4 <= cap);
    memset(b, 0, DNS_HEADER_LEN);
    dns_put16(b, 0x4242);
    dns_put16(b + 2, DNS_FLAG_RD);
    dns_put16(b + 4, 1);
    memcpy(b + DNS_HEADER_LEN, name, name_len);
    size_t n = DNS_HEADER_LEN + name_len;
    dns_put16(b + n, qtype);
    dns_put16(b + n + 2, 1);
    n += 4;
    assert_int_equal(dns_query_parse(b, n, dq), 0);
    return n;
}

static size_t text_query(uint8_t *b, size_t cap, const char *name, uint16_t qtype,
                         struct dns_query *dq)
{
    int n = dns_build_query(name, qtype, 0x4242, 0, b, cap);
    assert_true(n > 0);
    assert_int_equal(dns_query_parse(b, (size_t)n, dq), 0);
    return (size_t)n;
}

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(53000)};
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    return sin;
}

static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(53000)};
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    return sin6;
}

/* Format e and check the line is exactly want. */
static void assert_line(const struct querylog_entry *e, const char *want)
{
    char buf[QUERYLOG_LINE_MAX];
    size_t n = querylog_format(e, buf, sizeof(buf));
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

/* ---- the line ---- */

static void test_format_ipv4_cache(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dns_query dq;
    size_t ql = text_query(q, sizeof(q), "Example.COM", DNS_TYPE_A, &dq);
    struct sockaddr_in sin = v4("192.168.1.20");
    struct querylog_entry e = {
        .time = T0,
        .client = (const struct sockaddr *)&sin,
        .clientlen = sizeof(sin),
        .transport = "udp",
        .query = q,
        .query_len = ql,
        .q = &dq,
        .rcode = DNS_RCODE_NOERROR,
        .source = "cache",
        .latency_ms = 0.12,
    };
    /* The name as the client spelled it: the log shows what was asked. */
    assert_line(&e, "2026-11-23T10:15:02.123Z 192.168.1.20 udp Example.COM. A NOERROR cache - "
                    "0.1ms\n");
}

static void test_format_ipv6_upstream(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dns_query dq;
    size_t ql = text_query(q, sizeof(q), "www.example.org", DNS_TYPE_AAAA, &dq);
    struct sockaddr_in6 sin6 = v6("2001:db8::53");
    struct querylog_entry e = {
        .time = T0 + 59.9,
        .client = (const struct sockaddr *)&sin6,
        .clientlen = sizeof(sin6),
        .transport = "doh",
        .query = q,
        .query_len = ql,
        .q = &dq,
        .rcode = DNS_RCODE_NXDOMAIN,
        .source = "upstream",
        .upstream = "https://dns.example/dns-query",
        .latency_ms = 23.46,
    };
    assert_line(&e, "2026-11-23T10:16:02.023Z 2001:db8::53 doh www.example.org. AAAA NXDOMAIN "
                    "upstream https://dns.example/dns-query 23.5ms\n");
}

/* No address (the frontend gave none, or one of another family) and no question (a
 * message that did not parse): "-" for each. */
static void test_format_unknown_client_no_question(void **state)
{
    (void)state;
    struct querylog_entry e = {
        .time = T0,
        .transport = "tcp",
        .rcode = DNS_RCODE_FORMERR,
        .source = "local",
    };
    assert_line(&e, "2026-11-23T10:15:02.123Z - tcp - - FORMERR local - 0.0ms\n");
    /* A family the log does not know, and a length too short for the family given. */
    struct sockaddr sa = {.sa_family = AF_UNIX};
    e.client = &sa;
    e.clientlen = sizeof(sa);
    assert_line(&e, "2026-11-23T10:15:02.123Z - tcp - - FORMERR local - 0.0ms\n");
    struct sockaddr_in sin = v4("10.0.0.1");
    e.client = (const struct sockaddr *)&sin;
    e.clientlen = sizeof(sa_family_t);
    assert_line(&e, "2026-11-23T10:15:02.123Z - tcp - - FORMERR local - 0.0ms\n");
    /* A query whose question did not parse (question_end 0) has no name either. */
    uint8_t q[512];
    struct dns_query dq;
    size_t ql = text_query(q, sizeof(q), "a.example", DNS_TYPE_A, &dq);
    dq.question_end = 0;
    e.query = q;
    e.query_len = ql;
    e.q = &dq;
    e.clientlen = sizeof(sin);
    assert_line(&e, "2026-11-23T10:15:02.123Z 10.0.0.1 tcp - - FORMERR local - 0.0ms\n");
}

/* A name is one word whatever its bytes: spaces, a newline, a dot inside a label, a
 * backslash and bytes outside ASCII are written \DDD (RFC 1035 §5.1). */
static void test_format_escaped_name(void **state)
{
    (void)state;
    static const uint8_t name[] = {
        6, 'a',  ' ',  'b',  '\n', '.', 'c',         /* "a b\n.c" */
        4, 0xc3, 0xa9, '\\', 0x7f,                   /* UTF-8 é, a backslash, DEL */
        7, 'e',  'x',  'a',  'm',  'p', 'l', 'e', 0, /* example */
    };
    uint8_t q[512];
    struct dns_query dq;
    size_t ql = wire_query(q, sizeof(q), name, sizeof(name), DNS_TYPE_TXT, &dq);
    struct sockaddr_in sin = v4("127.0.0.1");
    struct querylog_entry e = {
        .time = T0,
        .client = (const struct sockaddr *)&sin,
        .clientlen = sizeof(sin),
        .transport = "dot",
        .query = q,
        .query_len = ql,
        .q = &dq,
        .rcode = DNS_RCODE_NOERROR,
        .source = "stale",
        .latency_ms = 1500,
    };
    assert_line(&e, "2026-11-23T10:15:02.123Z 127.0.0.1 dot a\\032b\\010\\046c.\\195\\169\\092\\127"
                    ".example. TXT NOERROR stale - 1500.0ms\n");
    /* The root. */
    static const uint8_t root[] = {0};
    ql = wire_query(q, sizeof(q), root, sizeof(root), DNS_TYPE_NS, &dq);
    e.query_len = ql;
    assert_line(&e, "2026-11-23T10:15:02.123Z 127.0.0.1 dot . NS NOERROR stale - 1500.0ms\n");
}

/* Without a mnemonic: TYPEnnn (RFC 3597 §5) and RCODEnn; an upstream URL with a space is
 * escaped like a name. */
static void test_format_unknown_type_and_rcode(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dns_query dq;
    size_t ql = text_query(q, sizeof(q), "x.example", 65280, &dq);
    struct sockaddr_in sin = v4("10.1.2.3");
    struct querylog_entry e = {
        .time = T0,
        .client = (const struct sockaddr *)&sin,
        .clientlen = sizeof(sin),
        .transport = "udp",
        .query = q,
        .query_len = ql,
        .q = &dq,
        .rcode = 11,
        .source = "upstream",
        .upstream = "tls://a b",
        .latency_ms = 2,
    };
    assert_line(&e, "2026-11-23T10:15:02.123Z 10.1.2.3 udp x.example. TYPE65280 RCODE11 upstream "
                    "tls://a\\032b 2.0ms\n");
    ql = text_query(q, sizeof(q), "x.example", 65, &dq);
    e.query_len = ql;
    e.rcode = DNS_RCODE_BADVERS;
    e.upstream = NULL;
    e.source = "local";
    assert_line(&e, "2026-11-23T10:15:02.123Z 10.1.2.3 udp x.example. HTTPS BADVERS local - "
                    "2.0ms\n");
    assert_string_equal(querylog_type_name(DNS_TYPE_AAAA), "AAAA");
    assert_null(querylog_type_name(0));
    assert_string_equal(querylog_rcode_name(DNS_RCODE_REFUSED), "REFUSED");
    assert_null(querylog_rcode_name(-1));
    assert_null(querylog_rcode_name(17));
}

/* A line that does not fit is cut short and still ends in a newline; the longest line
 * there can be fits QUERYLOG_LINE_MAX. */
static void test_format_truncated(void **state)
{
    (void)state;
    uint8_t q[512];
    struct dns_query dq;
    size_t ql = text_query(q, sizeof(q), "a.example", DNS_TYPE_A, &dq);
    struct sockaddr_in sin = v4("192.0.2.1");
    struct querylog_entry e = {
        .time = T0,
        .client = (const struct sockaddr *)&sin,
        .clientlen = sizeof(sin),
        .transport = "udp",
        .query = q,
        .query_len = ql,
        .q = &dq,
        .source = "cache",
    };
    char buf[32];
    memset(buf, 'x', sizeof(buf));
    size_t n = querylog_format(&e, buf, sizeof(buf));
    assert_int_equal(n, sizeof(buf) - 1);
    assert_string_equal(buf, "2026-11-23T10:15:02.123Z 192.0\n");
    n = querylog_format(&e, buf, 2);
    assert_int_equal(n, 1);
    assert_string_equal(buf, "\n");
    buf[0] = 'x';
    assert_int_equal(querylog_format(&e, buf, 1), 0);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(querylog_format(&e, buf, 0), 0);

    /* The longest: 127 labels of one byte, each escaped (4 characters and a dot), an
     * IPv6 address of the longest form, the longest URL. */
    uint8_t name[DNS_MAX_NAME];
    size_t off = 0;
    while (off + 2 < DNS_MAX_NAME) {
        name[off++] = 1;
        name[off++] = ' ';
    }
    name[off++] = 0;
    ql = wire_query(q, sizeof(q), name, off, 65535, &dq);
    e.query_len = ql;
    struct sockaddr_in6 sin6 = v6("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    e.client = (const struct sockaddr *)&sin6;
    e.clientlen = sizeof(sin6);
    char url[1024];
    memset(url, 'u', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    e.upstream = url;
    e.rcode = 4095;
    e.latency_ms = 1e9;
    char line[QUERYLOG_LINE_MAX];
    n = querylog_format(&e, line, sizeof(line));
    assert_true(n < sizeof(line) - 1);
    const char *tail = " 1000000000.0ms\n";
    assert_string_equal(line + n - strlen(tail), tail);
    assert_non_null(strstr(line, " TYPE65535 RCODE4095 cache uuu"));
}

/* ---- the file ---- */

struct dir {
    char path[64];
    char file[96];
    char moved[96];
};

static int dir_setup(void **state)
{
    struct dir *d = test_calloc(1, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "/tmp/test_querylog.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->file, sizeof(d->file), "%s/query.log", d->path);
    snprintf(d->moved, sizeof(d->moved), "%s/query.log.1", d->path);
    *state = d;
    return 0;
}

static int dir_teardown(void **state)
{
    struct dir *d = *state;
    unlink(d->file);
    unlink(d->moved);
    rmdir(d->path);
    test_free(d);
    return 0;
}

/* The whole of path, NUL-terminated, in a buffer the caller frees; *len its length. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 20;
    char *b = test_malloc(cap + 1);
    *len = fread(b, 1, cap, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* An entry for name from 10.0.0.<last>. */
static void log_one(struct querylog *ql, const char *name, uint8_t last)
{
    uint8_t q[512];
    struct dns_query dq;
    size_t n = text_query(q, sizeof(q), name, DNS_TYPE_A, &dq);
    char ip[16];
    snprintf(ip, sizeof(ip), "10.0.0.%u", last);
    struct sockaddr_in sin = v4(ip);
    struct querylog_entry e = {
        .time = T0,
        .client = (const struct sockaddr *)&sin,
        .clientlen = sizeof(sin),
        .transport = "udp",
        .query = q,
        .query_len = n,
        .q = &dq,
        .rcode = 0,
        .source = "cache",
    };
    querylog_write(ql, &e);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_write_then_free(void **state)
{
    struct dir *d = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct querylog *ql = NULL;
    char err[256];
    mode_t mask = umask(022);
    assert_int_equal(querylog_open(loop, d->file, &ql, err, sizeof(err)), 0);
    umask(mask);
    assert_non_null(ql);
    struct stat st;
    assert_int_equal(stat(d->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    log_one(ql, "one.example", 1);
    log_one(ql, "two.example", 2);
    /* Buffered: nothing written before a flush. */
    assert_int_equal(file_size(d->file), 0);
    querylog_free(ql);
    size_t len;
    char *text = slurp(d->file, &len);
    assert_string_equal(text,
                        "2026-11-23T10:15:02.123Z 10.0.0.1 udp one.example. A NOERROR cache - "
                        "0.0ms\n"
                        "2026-11-23T10:15:02.123Z 10.0.0.2 udp two.example. A NOERROR cache - "
                        "0.0ms\n");
    test_free(text);
    /* Appended to, never truncated. */
    assert_int_equal(querylog_open(loop, d->file, &ql, err, sizeof(err)), 0);
    log_one(ql, "three.example", 3);
    querylog_free(ql);
    text = slurp(d->file, &len);
    assert_int_equal(count_lines(text), 3);
    assert_non_null(strstr(text, "10.0.0.3 udp three.example."));
    test_free(text);
    querylog_free(NULL);
    ev_loop_destroy(loop);
}

/* The timer writes waiting lines within a second, without a free. */
static void test_timer_flushes(void **state)
{
    struct dir *d = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct querylog *ql;
    char err[256];
    assert_int_equal(querylog_open(loop, d->file, &ql, err, sizeof(err)), 0);
    log_one(ql, "late.example", 9);
    assert_int_equal(file_size(d->file), 0);
    /* The log's timer is the only watcher: the loop returns once it has fired. */
    ev_run(loop, 0);
    size_t len;
    char *text = slurp(d->file, &len);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, " late.example. "));
    test_free(text);
    /* Nothing waits any more: the timer is not running, and the loop has nothing to do. */
    assert_int_equal(ev_run(loop, 0), 0);
    querylog_free(ql);
    text = slurp(d->file, &len);
    assert_int_equal(count_lines(text), 1);
    test_free(text);
    ev_loop_destroy(loop);
}

/* A full buffer is written at once, in whole lines. */
static void test_full_buffer_written(void **state)
{
    struct dir *d = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct querylog *ql;
    char err[256];
    assert_int_equal(querylog_open(loop, d->file, &ql, err, sizeof(err)), 0);
    unsigned n = 0;
    while (file_size(d->file) == 0) {
        log_one(ql, "fill.example", (uint8_t)n);
        n++;
        assert_true(n < 10000);
    }
    size_t len;
    char *text = slurp(d->file, &len);
    /* Written when the room left could not take the longest line. */
    assert_true(len > QUERYLOG_BUF - QUERYLOG_LINE_MAX);
    assert_true(len <= QUERYLOG_BUF);
    assert_int_equal(text[len - 1], '\n');
    assert_int_equal(count_lines(text), n - 1);
    test_free(text);
    querylog_free(ql);
    text = slurp(d->file, &len);
    assert_int_equal(count_lines(text), n);
    test_free(text);
    ev_loop_destroy(loop);
}

/* logrotate moves the file and sends SIGHUP: lines before the reopen go to the moved file,
 * lines after it to a new file at the path. */
static void test_reopen_after_rename(void **state)
{
    struct dir *d = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct querylog *ql;
    char err[256];
    assert_int_equal(querylog_open(loop, d->file, &ql, err, sizeof(err)), 0);
    log_one(ql, "before.example", 1);
    assert_int_equal(rename(d->file, d->moved), 0);
    log_one(ql, "moved.example", 2); /* still for the open file, wherever it is now */
    assert_int_equal(querylog_reopen(ql, err, sizeof(err)), 0);
    log_one(ql, "after.example", 3);
    querylog_free(ql);
    size_t len;
    char *old = slurp(d->moved, &len);
    assert_int_equal(count_lines(old), 2);
    assert_non_null(strstr(old, " before.example. "));
    assert_non_null(strstr(old, " moved.example. "));
    assert_null(strstr(old, " after.example. "));
    char *fresh = slurp(d->file, &len);
    assert_int_equal(count_lines(fresh), 1);
    assert_non_null(strstr(fresh, " after.example. "));
    test_free(old);
    test_free(fresh);
    ev_loop_destroy(loop);
}

/* A reopen that fails keeps the file it had; an open that fails says why. */
static void test_open_and_reopen_fail(void **state)
{
    struct dir *d = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct querylog *ql = NULL;
    char err[256] = "";
    char path[128];
    snprintf(path, sizeof(path), "%s/missing/query.log", d->path);
    assert_int_equal(querylog_open(loop, path, &ql, err, sizeof(err)), -ENOENT);
    assert_null(ql);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));

    /* The path becomes a directory: the reopen fails and the lines still land in the
     * moved file. */
    assert_int_equal(querylog_open(loop, d->file, &ql, err, sizeof(err)), 0);
    assert_int_equal(rename(d->file, d->moved), 0);
    assert_int_equal(mkdir(d->file, 0700), 0);
    err[0] = '\0';
    assert_true(querylog_reopen(ql, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, d->file));
    log_one(ql, "kept.example", 4);
    querylog_free(ql);
    assert_int_equal(rmdir(d->file), 0);
    size_t len;
    char *text = slurp(d->moved, &len);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, " kept.example. "));
    test_free(text);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_ipv4_cache),
        cmocka_unit_test(test_format_ipv6_upstream),
        cmocka_unit_test(test_format_unknown_client_no_question),
        cmocka_unit_test(test_format_escaped_name),
        cmocka_unit_test(test_format_unknown_type_and_rcode),
        cmocka_unit_test(test_format_truncated),
        cmocka_unit_test_setup_teardown(test_write_then_free, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_timer_flushes, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_full_buffer_written, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rename, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_open_and_reopen_fail, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
