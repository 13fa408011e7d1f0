/* log: one line per event, to stderr, with a level; and a rate limiter for the lines a
 * misbehaving peer or a flood of bad packets could otherwise repeat without end.
 *
 * Levels are syslog's (LOG_ERR .. LOG_DEBUG). Lines are written with one write(2) each,
 * so they never interleave. Not thread-safe: dnsward has one thread.
 */
#ifndef DNSWARD_LOG_H
#define DNSWARD_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

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

#endif
