/* log: see include/dnsward/log.h. */
#include "dnsward/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOG_NOTICE;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg",  [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
    [LOG_WARNING] = "warn", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_level(int level)
{
    log_level = level;
}

int log_get_level(void)
{
    return log_level;
}

static void log_write(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "dnsward[%s]: ", level_names[level & 7]);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2 - strlen(suffix))
        len = sizeof(line) - 2 - strlen(suffix);
    memcpy(line + len, suffix, strlen(suffix));
    len += strlen(suffix);
    line[len++] = '\n';
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

void log_limited(struct log_limit *lim, int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    double now = now_seconds();
    if (lim->last > 0) {
        lim->tokens += (now - lim->last) / lim->interval;
        if (lim->tokens > lim->burst)
            lim->tokens = lim->burst;
    }
    lim->last = now;
    if (lim->tokens < 1) {
        lim->suppressed++;
        return;
    }
    lim->tokens -= 1;
    char suffix[64] = "";
    if (lim->suppressed) {
        snprintf(suffix, sizeof(suffix), " (%llu similar suppressed)",
                 (unsigned long long)lim->suppressed);
        lim->suppressed = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    log_write(level, suffix, fmt, ap);
    va_end(ap);
}
