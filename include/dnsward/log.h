/* log: one line per event, to stderr, the systemd journal or syslog, with a level; and
 * rate limiters for the lines a misbehaving peer or a flood of bad packets could otherwise
 * repeat without end.
 *
 * Levels are syslog's (LOG_ERR .. LOG_DEBUG). Where a line goes is chosen once, by
 * log_open:
 *   stderr    "dnsward[warn]: text", one write(2) per line, so lines never interleave;
 *   journal   stderr when it is systemd's journal stream (the environment variable
 *             JOURNAL_STREAM, "DEV:INODE", names the device and inode of stderr): the
 *             same line with the sd-daemon(3) priority prefix "<N>" in front
 *             ("<4>dnsward[warn]: text"), so that the journal records each line at its
 *             level;
 *   syslog    syslog(3), facility daemon, ident "dnsward" with the PID, and the text alone
 *             (syslog adds the rest).
 * Lines are cut at 1 KiB. Not thread-safe: dnsward has one thread.
 */
#ifndef DNSWARD_LOG_H
#define DNSWARD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* Where lines go. */
enum log_style {
    LOG_STYLE_STDERR,  /* "dnsward[warn]: text\n" */
    LOG_STYLE_JOURNAL, /* "<4>dnsward[warn]: text\n" */
    LOG_STYLE_SYSLOG,  /* "text", handed to syslog(3) */
};

/* Choose where lines go: syslog(3) when use_syslog (the connection is opened now, before
 * any chroot), else stderr, in the journal's style when JOURNAL_STREAM names stderr. Until
 * it is called, lines go to stderr in the plain style. Call once, at start-up. */
void log_open(bool use_syslog);

/* The style log_open chose. */
enum log_style log_get_style(void);

/* The most verbose level that is written (default LOG_NOTICE). */
void log_set_level(int level);
int log_get_level(void);

/* Write one line at level, if level is enabled. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

/* Format one line of style at level into line (cap bytes, at least 64): the prefix of the
 * style, fmt with ap, then suffix; ending in a newline except for LOG_STYLE_SYSLOG, and
 * always NUL-terminated. A text too long is cut so that the suffix and the newline still
 * fit. Returns the length. Pure. */
size_t log_format(char *line, size_t cap, enum log_style style, int level, const char *suffix,
                  const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Does env, the value of JOURNAL_STREAM ("DEV:INODE", both decimal), name the file of
 * device dev and inode ino? NULL or anything malformed does not. Pure. */
bool log_journal_stream_is(const char *env, uint64_t dev, uint64_t ino);

/* A token bucket: at most `burst` lines at once, then one per `interval` seconds. Keep
 * one per kind of event (a static in the function that logs it). */
struct log_limit {
    double interval;
    unsigned burst;
    double tokens;
    double last;
    uint64_t suppressed;
};
#define LOG_LIMIT_INIT(interval_s, burst_n)                                                        \
    {                                                                                              \
        .interval = (interval_s), .burst = (burst_n), .tokens = (burst_n)                          \
    }

/* Like log_msg, but only while the limiter has tokens; when a line is written after some
 * were suppressed, it says how many. */
void log_limited(struct log_limit *lim, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The decision of log_limited at time now (seconds of a monotonic clock): true if a line
 * may be written, with *suppressed set to the lines refused since the last one written;
 * false if not (and the refusal is counted). Pure but for *lim. */
bool log_limit_take(struct log_limit *lim, double now, uint64_t *suppressed);

/* A token bucket per key (a peer's address, hashed), for an event that names its peer:
 * one noisy peer spends its own bucket (`burst` lines, then one per `interval` seconds)
 * and not the other peers'. The table holds LOG_LIMIT_KEYS keys; a new key takes a free
 * slot or the one least recently seen (a peer that keeps sending stays in the table with
 * its empty bucket). So that many peers (or spoofed UDP sources) cannot flood the log
 * together either, every line also needs a token of `all`, a bucket shared by every key.
 * Keep one per kind of event (a static). */
enum { LOG_LIMIT_KEYS = 32 };

struct log_limit_slot {
    uint64_t key;
    double tokens;
    double last; /* when the key was last seen; 0: the slot is free */
    uint64_t suppressed;
};

struct log_limit_keyed {
    double interval;
    unsigned burst;
    struct log_limit all;
    struct log_limit_slot slots[LOG_LIMIT_KEYS];
};
#define LOG_LIMIT_KEYED_INIT(interval_s, burst_n, all_interval_s, all_burst_n)                     \
    {                                                                                              \
        .interval = (interval_s), .burst = (burst_n),                                              \
        .all = LOG_LIMIT_INIT(all_interval_s, all_burst_n)                                         \
    }

/* Like log_limited, with the bucket of key. The suppressed count a line reports is that of
 * its key plus the lines any key lost to the shared bucket (or with a slot given to
 * another key). */
void log_limited_key(struct log_limit_keyed *lim, uint64_t key, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The decision of log_limited_key at time now (seconds of a monotonic clock, never 0), as
 * log_limit_take's. Pure but for *lim. */
bool log_limit_key_take(struct log_limit_keyed *lim, uint64_t key, double now,
                        uint64_t *suppressed);

#endif
