/* querylog: see include/dnsward/querylog.h.
 *
 * The buffer holds whole lines only: a line is formatted straight into it when the room
 * left could take the longest line, after a flush otherwise, so a write(2) never splits
 * a line unless the disk refuses part of it.
 */
#include "dnsward/querylog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsward/log.h"
#include "dnsward/util.h"

#define QUERYLOG_FLUSH_S 1.0

struct querylog {
    struct ev_loop *loop;
    ev_timer timer; /* running while lines wait in buf */
    int fd;
    char *path;
    size_t len;
    char buf[QUERYLOG_BUF];
};

static struct log_limit write_limit = LOG_LIMIT_INIT(60, 2);

const char *querylog_type_name(uint16_t type)
{
    switch (type) {
    case 1:
        return "A";
    case 2:
        return "NS";
    case 5:
        return "CNAME";
    case 6:
        return "SOA";
    case 12:
        return "PTR";
    case 13:
        return "HINFO";
    case 15:
        return "MX";
    case 16:
        return "TXT";
    case 28:
        return "AAAA";
    case 33:
        return "SRV";
    case 35:
        return "NAPTR";
    case 39:
        return "DNAME";
    case 41:
        return "OPT";
    case 43:
        return "DS";
    case 46:
        return "RRSIG";
    case 47:
        return "NSEC";
    case 48:
        return "DNSKEY";
    case 50:
        return "NSEC3";
    case 51:
        return "NSEC3PARAM";
    case 52:
        return "TLSA";
    case 64:
        return "SVCB";
    case 65:
        return "HTTPS";
    case 99:
        return "SPF";
    case 251:
        return "IXFR";
    case 252:
        return "AXFR";
    case 255:
        return "ANY";
    case 257:
        return "CAA";
    default:
        return NULL;
    }
}

const char *querylog_rcode_name(int rcode)
{
    /* RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6891 §6.1.3. */
    static const char *const names[] = {
        "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
        "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE",
    };
    if (rcode >= 0 && (size_t)rcode < ARRAY_SIZE(names))
        return names[rcode];
    if (rcode == DNS_RCODE_BADVERS)
        return "BADVERS";
    return NULL;
}

/* A line being written into buf, of which at most cap - 2 bytes are text: the newline and
 * the NUL always fit. */
struct line {
    char *buf;
    size_t cap;
    size_t len;
};

static void line_put(struct line *l, const char *s, size_t n)
{
    size_t room = l->cap - 2 - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_str(struct line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* s with every byte that is not printable ASCII, and the space, escaped \DDD: a field
 * must stay one word and the line one line, whatever a configuration file held. */
static void line_escaped(struct line *l, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f) {
            char esc[5];
            snprintf(esc, sizeof(esc), "\\%03u", c);
            line_put(l, esc, 4);
        } else {
            line_put(l, s, 1);
        }
    }
}

static void line_time(struct line *l, double t)
{
    /* Whole milliseconds, truncated, so that the seconds never read 60. */
    long long ms = t > 0 ? (long long)(t * 1000.0) : 0;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[40];
    if (gmtime_r(&secs, &tm) == NULL) {
        line_str(l, "-");
        return;
    }
    int n = snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    line_put(l, text, n > 0 ? (size_t)n : 0);
}

static void line_client(struct line *l, const struct sockaddr *sa, socklen_t salen)
{
    char text[INET6_ADDRSTRLEN] = "-";
    if (sa != NULL && salen >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
    else if (sa != NULL && salen >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof(text));
    line_str(l, text);
}

size_t querylog_format(const struct querylog_entry *e, char *buf, size_t cap)
{
    if (cap < 2) {
        if (cap == 1)
            buf[0] = '\0';
        return 0;
    }
    struct line l = {.buf = buf, .cap = cap};
    line_time(&l, e->time);
    line_str(&l, " ");
    line_client(&l, e->client, e->clientlen);
    line_str(&l, " ");
    line_escaped(&l, e->transport != NULL ? e->transport : "-");

    /* dns_name_to_text escapes what is not printable and the space (RFC 1035 §5.1). */
    char text[DNS_MAX_NAME * 4 + 1];
    bool question = e->query != NULL && e->q != NULL && e->q->question_end > 0;
    if (!question ||
        dns_name_to_text(e->query, e->query_len, DNS_HEADER_LEN, text, sizeof(text)) < 0)
        snprintf(text, sizeof(text), "-");
    line_str(&l, " ");
    line_str(&l, text);
    line_str(&l, " ");
    const char *name = question ? querylog_type_name(e->q->qtype) : "-";
    if (name == NULL) {
        snprintf(text, sizeof(text), "TYPE%u", (unsigned)e->q->qtype);
        name = text;
    }
    line_str(&l, name);
    line_str(&l, " ");
    name = querylog_rcode_name(e->rcode);
    if (name == NULL) {
        snprintf(text, sizeof(text), "RCODE%d", e->rcode);
        name = text;
    }
    line_str(&l, name);
    line_str(&l, " ");
    line_escaped(&l, e->source != NULL ? e->source : "-");
    line_str(&l, " ");
    line_escaped(&l, e->upstream != NULL && e->upstream[0] != '\0' ? e->upstream : "-");
    int n = snprintf(text, sizeof(text), " %.1fms", e->latency_ms > 0 ? e->latency_ms : 0.0);
    line_put(&l, text, n > 0 ? (size_t)n : 0);
    buf[l.len++] = '\n';
    buf[l.len] = '\0';
    return l.len;
}

/* Write what waits in the buffer. A failure drops it: a full disk must cost the operator
 * lines, not the daemon its memory or its answers. */
static void querylog_flush(struct querylog *ql)
{
    ev_timer_stop(ql->loop, &ql->timer);
    size_t off = 0;
    while (off < ql->len) {
        ssize_t n = write(ql->fd, ql->buf + off, ql->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            log_limited(&write_limit, LOG_ERR, "query-log %s: %s: %zu bytes of lines dropped",
                        ql->path, strerror(e), ql->len - off);
            break;
        }
        off += (size_t)n;
    }
    ql->len = 0;
}

static void on_flush_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    querylog_flush(container_of(w, struct querylog, timer));
}

static int querylog_open_fd(const char *path, char *err, size_t errlen)
{
    /* O_APPEND: lines land at the end whoever else writes the file (a logrotate
     * copytruncate included); 0640: it says who asked for what, not for every user. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "query-log %s: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

int querylog_open(struct ev_loop *loop, const char *path, struct querylog **out, char *err,
                  size_t errlen)
{
    int rc;
    struct querylog *ql = malloc(sizeof(*ql));
    if (ql == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    ql->path = strdup(path);
    if (ql->path == NULL) {
        rc = -ENOMEM;
        goto fail_ql;
    }
    ql->fd = querylog_open_fd(path, err, errlen);
    if (ql->fd < 0) {
        rc = ql->fd;
        goto fail_path;
    }
    ql->loop = loop;
    ql->len = 0;
    ev_timer_init(&ql->timer, on_flush_timer, QUERYLOG_FLUSH_S, 0);
    *out = ql;
    return 0;

fail_path:
    free(ql->path);
fail_ql:
    free(ql);
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "query-log %s: out of memory", path);
    return rc;
}

int querylog_reopen(struct querylog *ql, char *err, size_t errlen)
{
    /* The lines so far belong to the file they were written for (the one logrotate has
     * just moved). */
    querylog_flush(ql);
    int fd = querylog_open_fd(ql->path, err, errlen);
    if (fd < 0)
        return fd;
    close(ql->fd);
    ql->fd = fd;
    return 0;
}

void querylog_write(struct querylog *ql, const struct querylog_entry *e)
{
    if (sizeof(ql->buf) - ql->len < QUERYLOG_LINE_MAX)
        querylog_flush(ql);
    ql->len += querylog_format(e, ql->buf + ql->len, QUERYLOG_LINE_MAX);
    if (!ev_is_active(&ql->timer))
        ev_timer_start(ql->loop, &ql->timer);
}

void querylog_free(struct querylog *ql)
{
    if (ql == NULL)
        return;
    querylog_flush(ql);
    close(ql->fd);
    free(ql->path);
    free(ql);
}
