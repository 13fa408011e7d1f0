/* log: see include/dnsward/log.h. */
#include "dnsward/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { LOG_LINE_MAX = 1024 };

static int log_level = LOG_NOTICE;
static enum log_style log_style = LOG_STYLE_STDERR;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg",  [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
    [LOG_WARNING] = "warn", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

bool log_journal_stream_is(const char *env, uint64_t dev, uint64_t ino)
{
    if (env == NULL || *env < '0' || *env > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long d = strtoull(env, &end, 10);
    if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long long i = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    return d == dev && i == ino;
}

void log_open(bool use_syslog)
{
    if (log_style == LOG_STYLE_SYSLOG)
        closelog();
    if (use_syslog) {
        /* LOG_NDELAY: the socket to /dev/log is opened now, while the daemon can still
         * reach it (before a chroot). */
        openlog("dnsward", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_style = LOG_STYLE_SYSLOG;
        return;
    }
    /* systemd sets JOURNAL_STREAM for a service whose stderr is the journal; a child that
     * inherits the variable but not the stream (stderr redirected to a file) must not
     * write the prefixes, hence the comparison with stderr itself (systemd.exec(5)). */
    struct stat st;
    const char *env = getenv("JOURNAL_STREAM");
    if (env != NULL && fstat(STDERR_FILENO, &st) == 0 &&
        log_journal_stream_is(env, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        log_style = LOG_STYLE_JOURNAL;
    else
        log_style = LOG_STYLE_STDERR;
}

enum log_style log_get_style(void)
{
    return log_style;
}

void log_set_level(int level)
{
    log_level = level;
}

int log_get_level(void)
{
    return log_level;
}

size_t log_format(char *line, size_t cap, enum log_style style, int level, const char *suffix,
                  const char *fmt, va_list ap)
{
    size_t slen = strlen(suffix);
    /* The newline and the NUL always fit; the suffix too, with a cap of at least 64. */
    size_t room = cap - 2 - (slen < cap - 2 ? slen : cap - 2);
    int n = 0;
    if (style == LOG_STYLE_JOURNAL)
        n = snprintf(line, cap, "<%d>dnsward[%s]: ", level & 7, level_names[level & 7]);
    else if (style == LOG_STYLE_STDERR)
        n = snprintf(line, cap, "dnsward[%s]: ", level_names[level & 7]);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > room)
        len = room;
    int m = vsnprintf(line + len, cap - len, fmt, ap);
    len += m < 0 ? 0 : (size_t)m;
    if (len > room)
        len = room;
    memcpy(line + len, suffix, cap - 2 - room);
    len += cap - 2 - room;
    if (style != LOG_STYLE_SYSLOG)
        line[len++] = '\n';
    line[len] = '\0';
    return len;
}

static void log_write(int level, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log_write(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len = log_format(line, sizeof(line), log_style, level, suffix, fmt, ap);
    if (log_style == LOG_STYLE_SYSLOG) {
        syslog(level, "%s", line);
        return;
    }
    /* One write per line, so that lines never interleave; a failed log write has nowhere
     * to be reported. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, "", fmt, ap);
    va_end(ap);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Add the tokens earned since *last, up to the burst, and make now the last time. */
static void log_bucket_refill(double *tokens, double *last, double interval, unsigned burst,
                              double now)
{
    if (*last > 0 && now > *last) {
        *tokens += (now - *last) / interval;
        if (*tokens > burst)
            *tokens = burst;
    }
    *last = now;
}

bool log_limit_take(struct log_limit *lim, double now, uint64_t *suppressed)
{
    log_bucket_refill(&lim->tokens, &lim->last, lim->interval, lim->burst, now);
    if (lim->tokens < 1) {
        lim->suppressed++;
        return false;
    }
    lim->tokens -= 1;
    *suppressed = lim->suppressed;
    lim->suppressed = 0;
    return true;
}

static void log_suppressed_suffix(char *suffix, size_t cap, uint64_t suppressed)
{
    if (suppressed)
        snprintf(suffix, cap, " (%llu similar suppressed)", (unsigned long long)suppressed);
    else
        suffix[0] = '\0';
}

void log_limited(struct log_limit *lim, int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    uint64_t suppressed;
    if (!log_limit_take(lim, now_seconds(), &suppressed))
        return;
    char suffix[64];
    log_suppressed_suffix(suffix, sizeof(suffix), suppressed);
    va_list ap;
    va_start(ap, fmt);
    log_write(level, suffix, fmt, ap);
    va_end(ap);
}

/* The slot of key: its own, else a free one, else the one least recently seen, whose
 * refusals are then carried by the shared bucket so that they are still reported. */
static struct log_limit_slot *log_limit_slot(struct log_limit_keyed *lim, uint64_t key)
{
    struct log_limit_slot *victim = &lim->slots[0];
    for (size_t i = 0; i < LOG_LIMIT_KEYS; i++) {
        struct log_limit_slot *s = &lim->slots[i];
        if (s->last > 0 && s->key == key)
            return s;
        if (victim->last > 0 && s->last < victim->last)
            victim = s;
    }
    lim->all.suppressed += victim->suppressed;
    *victim = (struct log_limit_slot){.key = key, .tokens = lim->burst};
    return victim;
}

bool log_limit_key_take(struct log_limit_keyed *lim, uint64_t key, double now, uint64_t *suppressed)
{
    struct log_limit_slot *s = log_limit_slot(lim, key);
    log_bucket_refill(&s->tokens, &s->last, lim->interval, lim->burst, now);
    if (s->tokens < 1) {
        s->suppressed++;
        return false;
    }
    /* The key may write: the shared bucket decides whether anything may. Its token is
     * spent only with the key's, so a line it refuses costs the key nothing. */
    log_bucket_refill(&lim->all.tokens, &lim->all.last, lim->all.interval, lim->all.burst, now);
    if (lim->all.tokens < 1) {
        lim->all.suppressed++;
        return false;
    }
    s->tokens -= 1;
    lim->all.tokens -= 1;
    *suppressed = s->suppressed + lim->all.suppressed;
    s->suppressed = 0;
    lim->all.suppressed = 0;
    return true;
}

void log_limited_key(struct log_limit_keyed *lim, uint64_t key, int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    uint64_t suppressed;
    if (!log_limit_key_take(lim, key, now_seconds(), &suppressed))
        return;
    char suffix[64];
    log_suppressed_suffix(suffix, sizeof(suffix), suppressed);
    va_list ap;
    va_start(ap, fmt);
    log_write(level, suffix, fmt, ap);
    va_end(ap);
}
