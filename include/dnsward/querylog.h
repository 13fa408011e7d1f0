/* querylog: one line per answer given to a client, to a file (config `query-log`), for
 * an operator who wants to see what the network asks. Off by default: it records which
 * client asked for which name.
 *
 * A line (fields separated by one space; a name is written as DNS presentation text with
 * non-printable bytes and spaces escaped \DDD, so a line is always one line):
 *   2026-11-23T10:15:02.123Z 192.168.1.20 udp example.com. A NOERROR cache - 0.1ms
 *   TIME CLIENT TRANSPORT NAME TYPE RCODE SOURCE UPSTREAM LATENCY
 * TIME is UTC with milliseconds; CLIENT the client's address without its port (IPv6 as
 * inet_ntop writes it), or "-" when unknown. TYPE is a mnemonic (A, AAAA, ...) or TYPEnnn
 * (RFC 3597 §5); RCODE a mnemonic or RCODEnn; SOURCE one of cache, stale, upstream, local
 * (an answer dnsward made itself: REFUSED, FORMERR, NOTIMP, BADVERS, SERVFAIL); UPSTREAM
 * the URL of the upstream that answered (bytes outside printable ASCII escaped as in a
 * name), or "-"; LATENCY from the query's arrival to its answer, in milliseconds, as the
 * event loop measures time (an answer given at once is 0.0ms).
 *
 * Lines are buffered (QUERYLOG_BUF bytes) and written in whole lines with write(2) when
 * the buffer is full, at most a second late (a timer that runs only while lines wait),
 * and at querylog_reopen and querylog_free; a write error is logged (rate-limited) and the
 * lines are dropped, never the process. querylog_reopen (SIGHUP) opens the path again,
 * for logrotate's move-then-HUP. The file is opened O_APPEND|O_CLOEXEC, created 0640.
 *
 * Privileges: querylog_open runs at start-up, before the daemon drops its privileges
 * (config `user`, `chroot`), so the first file may be one only root can create; but
 * querylog_reopen runs as the unprivileged user (and inside the chroot, where the path is
 * resolved), which must be able to create the file in its directory, or the log goes on
 * writing to the file it has.
 */
#ifndef DNSWARD_QUERYLOG_H
#define DNSWARD_QUERYLOG_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsward/dns.h"

enum {
    QUERYLOG_BUF = 64 * 1024, /* lines waiting to be written */
    QUERYLOG_LINE_MAX = 2560, /* the longest line: a name of 255 bytes all escaped (1021
                               * characters) and an upstream URL of 1023 fit */
};

struct querylog;

struct querylog_entry {
    double time; /* Unix time of the answer */
    const struct sockaddr *client;
    socklen_t clientlen;       /* 0: unknown, written "-" */
    const char *transport;     /* "udp", "tcp", "dot", "doh" */
    const uint8_t *query;      /* the client's query, and q its parse; NAME and TYPE are */
    size_t query_len;          /* "-" when either is NULL or q->question_end is 0 (the */
    const struct dns_query *q; /* question did not parse) */
    int rcode;                 /* of the answer (the header's, or an extended one) */
    const char *source;        /* "cache", "stale", "upstream", "local" */
    const char *upstream;      /* NULL: "-" */
    double latency_ms;
};

/* The mnemonic of a query type ("A", "HTTPS"), or NULL for one without. Pure. */
const char *querylog_type_name(uint16_t type);

/* The mnemonic of an RCODE ("NXDOMAIN", "BADVERS"), or NULL for one without. Pure. */
const char *querylog_rcode_name(int rcode);

/* Format e as one line, with its newline, into buf. Returns the length (at most cap - 1,
 * the line cut short but still ending in a newline when it does not fit; 0 when cap is
 * under 2). buf is NUL-terminated when cap > 0. Pure. */
size_t querylog_format(const struct querylog_entry *e, char *buf, size_t cap);

/* Open path for appending (creating it 0640). Returns 0 and *out, or -errno with a reason
 * in err. The loop (borrowed; must outlive the log) drives the flush timer. */
int querylog_open(struct ev_loop *loop, const char *path, struct querylog **out, char *err,
                  size_t errlen);

/* Flush, then open the path again and close the old file. Returns 0, or -errno with a
 * reason in err; the log then keeps writing to the file it had open. */
int querylog_reopen(struct querylog *ql, char *err, size_t errlen);

/* Append one line. Never fails (see above); never calls back. */
void querylog_write(struct querylog *ql, const struct querylog_entry *e);

/* Flush and close. NULL is ignored. */
void querylog_free(struct querylog *ql);

#endif
