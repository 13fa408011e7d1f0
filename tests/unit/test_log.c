/* Unit tests for the log: the line of each style (plain stderr, the journal's "<N>"
 * prefix, syslog's bare text) and its cut at the line limit; JOURNAL_STREAM matched
 * against stderr's device and inode; the token bucket and the keyed one, driven by a
 * clock the test sets: one noisy key spends only its own bucket, the shared bucket bounds
 * many keys together, suppressed lines are counted and reported, and the least recently
 * seen key gives up its slot. */
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

#include "dnsward/log.h"

static size_t fmt(char *line, size_t cap, enum log_style style, int level, const char *suffix,
                  const char *f, ...) __attribute__((format(printf, 6, 7)));

static size_t fmt(char *line, size_t cap, enum log_style style, int level, const char *suffix,
                  const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    size_t n = log_format(line, cap, style, level, suffix, f, ap);
    va_end(ap);
    assert_int_equal(n, strlen(line));
    return n;
}

/* ---- lines ---- */

static void test_format_styles(void **state)
{
    (void)state;
    char line[256];
    fmt(line, sizeof(line), LOG_STYLE_STDERR, LOG_WARNING, "", "upstream %s: %d", "tls://x", 7);
    assert_string_equal(line, "dnsward[warn]: upstream tls://x: 7\n");
    /* sd-daemon(3): "<4>" is warning, "<7>" debug; the rest of the line as on stderr. */
    fmt(line, sizeof(line), LOG_STYLE_JOURNAL, LOG_WARNING, "", "upstream %s: %d", "tls://x", 7);
    assert_string_equal(line, "<4>dnsward[warn]: upstream tls://x: 7\n");
    fmt(line, sizeof(line), LOG_STYLE_JOURNAL, LOG_DEBUG, " (3 similar suppressed)", "x");
    assert_string_equal(line, "<7>dnsward[debug]: x (3 similar suppressed)\n");
    fmt(line, sizeof(line), LOG_STYLE_JOURNAL, LOG_ERR, "", "e");
    assert_string_equal(line, "<3>dnsward[error]: e\n");
    /* syslog adds ident, PID and priority itself, and ends the line. */
    fmt(line, sizeof(line), LOG_STYLE_SYSLOG, LOG_NOTICE, " (1 similar suppressed)", "a %s", "b");
    assert_string_equal(line, "a b (1 similar suppressed)");
}

/* A text too long is cut; the suffix and the newline stay. */
static void test_format_cut(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char line[128];
    size_t n =
        fmt(line, sizeof(line), LOG_STYLE_JOURNAL, LOG_INFO, " (9 similar suppressed)", "%s", big);
    assert_int_equal(n, sizeof(line) - 1);
    assert_memory_equal(line, "<6>dnsward[info]: xxx", 21);
    assert_string_equal(line + n - 24, " (9 similar suppressed)\n");
    n = fmt(line, sizeof(line), LOG_STYLE_SYSLOG, LOG_INFO, "", "%s", big);
    assert_int_equal(n, sizeof(line) - 2);
    assert_int_equal(line[n - 1], 'x');
}

static void test_journal_stream_parse(void **state)
{
    (void)state;
    assert_true(log_journal_stream_is("8:12345", 8, 12345));
    assert_true(log_journal_stream_is("0:0", 0, 0));
    assert_true(log_journal_stream_is("18446744073709551615:1", UINT64_MAX, 1));
    assert_false(log_journal_stream_is("8:12345", 8, 12346));
    assert_false(log_journal_stream_is("9:12345", 8, 12345));
    assert_false(log_journal_stream_is(NULL, 8, 12345));
    assert_false(log_journal_stream_is("", 0, 0));
    assert_false(log_journal_stream_is("8", 8, 0));
    assert_false(log_journal_stream_is("8:", 8, 0));
    assert_false(log_journal_stream_is(":5", 0, 5));
    assert_false(log_journal_stream_is("8:5x", 8, 5));
    assert_false(log_journal_stream_is("8:-5", 8, (uint64_t)-5));
    assert_false(log_journal_stream_is("-8:5", (uint64_t)-8, 5));
    assert_false(log_journal_stream_is(" 8:5", 8, 5));
    assert_false(log_journal_stream_is("99999999999999999999:5", UINT64_MAX, 5));
}

/* log_open chooses the journal's style only when JOURNAL_STREAM names stderr itself; the
 * lines written then carry the prefix. stderr is a file of the test's for the while. */
static void test_open_detects_journal(void **state)
{
    (void)state;
    char path[] = "/tmp/test_log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    struct stat st;
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    char env[64];
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);

    assert_int_equal(setenv("JOURNAL_STREAM", env, 1), 0);
    log_open(false);
    enum log_style journal = log_get_style();
    log_msg(LOG_WARNING, "to the journal %d", 1);
    /* Inherited by a process whose stderr is elsewhere: plain lines. */
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    assert_int_equal(setenv("JOURNAL_STREAM", env, 1), 0);
    log_open(false);
    enum log_style other = log_get_style();
    log_msg(LOG_WARNING, "plain %d", 2);
    assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
    log_open(false);
    enum log_style none = log_get_style();
    log_msg(LOG_ERR, "plain %d", 3);

    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    assert_int_equal(journal, LOG_STYLE_JOURNAL);
    assert_int_equal(other, LOG_STYLE_STDERR);
    assert_int_equal(none, LOG_STYLE_STDERR);
    char text[256] = "";
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    assert_true(n > 0);
    text[n] = '\0';
    close(fd);
    unlink(path);
    assert_string_equal(text, "<4>dnsward[warn]: to the journal 1\n"
                              "dnsward[warn]: plain 2\n"
                              "dnsward[error]: plain 3\n");
}

/* ---- rate limits ---- */

static void test_bucket(void **state)
{
    (void)state;
    struct log_limit lim = LOG_LIMIT_INIT(10, 3);
    uint64_t sup = 99;
    double t = 1000;
    for (int i = 0; i < 3; i++) {
        assert_true(log_limit_take(&lim, t, &sup));
        assert_int_equal(sup, 0);
    }
    assert_false(log_limit_take(&lim, t, &sup));
    assert_false(log_limit_take(&lim, t + 5, &sup));
    /* One token per interval. */
    assert_true(log_limit_take(&lim, t + 10, &sup));
    assert_int_equal(sup, 2);
    assert_false(log_limit_take(&lim, t + 10, &sup));
    /* A long silence refills up to the burst, no more. */
    t += 1000;
    for (int i = 0; i < 3; i++)
        assert_true(log_limit_take(&lim, t, &sup));
    assert_int_equal(sup, 0); /* the one refusal at t + 10 was reported with the first */
    assert_false(log_limit_take(&lim, t, &sup));
}

/* One noisy key spends its own bucket: the others still get their lines. */
static void test_keyed_noisy_key_alone(void **state)
{
    (void)state;
    struct log_limit_keyed lim = LOG_LIMIT_KEYED_INIT(60, 2, 1, 100);
    uint64_t sup;
    double t = 500;
    assert_true(log_limit_key_take(&lim, 1, t, &sup));
    assert_true(log_limit_key_take(&lim, 1, t, &sup));
    for (int i = 0; i < 1000; i++)
        assert_false(log_limit_key_take(&lim, 1, t + i * 0.01, &sup));
    /* Another peer is unaffected, ... */
    assert_true(log_limit_key_take(&lim, 2, t + 10, &sup));
    assert_int_equal(sup, 0);
    assert_true(log_limit_key_take(&lim, 2, t + 10, &sup));
    assert_false(log_limit_key_take(&lim, 2, t + 10, &sup));
    /* ... and the noisy one gets a line a minute, saying how many it lost. */
    assert_false(log_limit_key_take(&lim, 1, t + 59, &sup));
    assert_true(log_limit_key_take(&lim, 1, t + 61, &sup));
    assert_int_equal(sup, 1001);
    assert_false(log_limit_key_take(&lim, 1, t + 61, &sup));
}

/* Many keys together cannot flood: the shared bucket bounds them, and its refusals are
 * reported by the next line of any key. */
static void test_keyed_shared_bound(void **state)
{
    (void)state;
    struct log_limit_keyed lim = LOG_LIMIT_KEYED_INIT(60, 2, 2, 5);
    uint64_t sup;
    double t = 100;
    unsigned written = 0;
    for (uint64_t k = 0; k < 1000; k++)
        written += log_limit_key_take(&lim, k, t, &sup);
    assert_int_equal(written, 5);
    /* 2 s later one more line, for a new key; it reports the 995 refused. */
    assert_true(log_limit_key_take(&lim, 5000, t + 2, &sup));
    assert_int_equal(sup, 995);
    assert_false(log_limit_key_take(&lim, 5001, t + 2, &sup));
    /* A refusal by the shared bucket costs the key nothing: key 6000 still has its two. */
    assert_true(log_limit_key_take(&lim, 6000, t + 4, &sup));
    assert_int_equal(sup, 1);
    assert_true(log_limit_key_take(&lim, 6000, t + 6, &sup));
    assert_false(log_limit_key_take(&lim, 6000, t + 8, &sup));
}

/* The table holds LOG_LIMIT_KEYS keys: a new key takes the slot of the one seen least
 * recently, whose count of lost lines is kept for the next line. A key that keeps
 * knocking stays in the table with its empty bucket. */
static void test_keyed_lru(void **state)
{
    (void)state;
    struct log_limit_keyed lim = LOG_LIMIT_KEYED_INIT(1000, 1, 0.001, 1000000);
    uint64_t sup;
    double t = 1;
    /* Key 0 spends its token and loses 3 lines; then keys 1..N-1 fill the table. */
    assert_true(log_limit_key_take(&lim, 0, t, &sup));
    for (int i = 0; i < 3; i++)
        assert_false(log_limit_key_take(&lim, 0, t, &sup));
    for (uint64_t k = 1; k < LOG_LIMIT_KEYS; k++)
        assert_true(log_limit_key_take(&lim, k, t + (double)k, &sup));
    /* Key 1 spends its slot's time again: now key 0 is the least recent. Key 1 knocking
     * keeps its empty bucket. */
    assert_false(log_limit_key_take(&lim, 1, t + 100, &sup));
    /* A new key takes key 0's slot; key 0's 3 lost lines go to the next line written. */
    assert_true(log_limit_key_take(&lim, 1000, t + 101, &sup));
    assert_int_equal(sup, 3);
    /* Key 0 comes back as new: a fresh bucket (it was forgotten), in key 2's slot. */
    assert_true(log_limit_key_take(&lim, 0, t + 102, &sup));
    assert_int_equal(sup, 0);
    /* Key 1 was not evicted: still no token. */
    assert_false(log_limit_key_take(&lim, 1, t + 103, &sup));
    /* Key 2 was: back with a fresh bucket. */
    assert_true(log_limit_key_take(&lim, 2, t + 104, &sup));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_styles),
        cmocka_unit_test(test_format_cut),
        cmocka_unit_test(test_journal_stream_parse),
        cmocka_unit_test(test_open_detects_journal),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_keyed_noisy_key_alone),
        cmocka_unit_test(test_keyed_shared_bound),
        cmocka_unit_test(test_keyed_lru),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
